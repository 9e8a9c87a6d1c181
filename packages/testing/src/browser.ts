// Debian's Chromium driven by playwright-core, as the browser tests and the bench start it.
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";

/** Where Chromium is: Debian's package, or CHROMIUM_PATH. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Why a browser test cannot run here, or undefined when Chromium is installed. */
export const chromiumMissing = existsSync(chromiumPath)
  ? undefined
  : `Chromium not found at ${chromiumPath}: the browser tests need Debian's chromium package ` +
    "(apt-get update && apt-get install -y chromium; .ci/run does), or CHROMIUM_PATH set to a " +
    "Chromium binary";

/** Starts headless Chromium without anything that would reach out to the network by itself. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Waits until the dashboard's header shows its `stream` as `status`. */
export async function streamIs(page: Page, stream: string, status: string, timeout = 5_000) {
  await page
    .locator(`.header-streams [data-stream="${stream}"][data-status="${status}"]`)
    .waitFor({ timeout });
}

/**
 * Signs the tab in as the admin with the sign-in screen's button, as a person would, unless
 * another tab of the browser already did (the tabs share the session).
 */
export async function signInAsAdmin(page: Page): Promise<void> {
  const button = page.getByRole("button", { name: "Sign in as admin" });
  const signedIn = page.locator('[data-session="admin"]');
  await button.or(signedIn).first().waitFor();
  if (await button.isVisible()) await button.click();
  await signedIn.waitFor();
}
