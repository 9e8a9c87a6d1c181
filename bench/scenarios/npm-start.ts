// `npm start` as a person runs it: from the command to "shop ready" (every service SERVING and the
// dashboard answering), on a new data folder (as on a fresh clone after `npm install`: PostgreSQL
// initialised, migrations applied, no compile cache) and again on the data the first start left.
// Each start is checked from outside (every service's /readyz and the dashboard's page) before it
// counts, then stopped as Ctrl-C stops it: SIGINT to its process group. On the second start, how
// soon a call shows where the dashboard shows it: in a tap, and a CreateOrder's trace in the traces
// the dashboard's OTLP receiver keeps (issue 19); and, in Debian's Chromium, how soon a user, an
// order and a stock change made with a call are in the open page, and a call in the tap page.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TapService } from "@shop/api/shop/mesh/v1/tap_service_pb";
import { freePort, waitFor } from "@shop/testing";
import { chromiumMissing, launchChromium, signInAsAdmin, streamIs } from "@shop/testing/browser";
import type { Locator } from "playwright-core";
import { buildServices } from "../../scripts/build-services.ts";
import { ensureDashboardBuild } from "../../scripts/dashboard.ts";
import { type Pinning, pinnedCommand, root } from "../lib/processes.ts";

/** One fresh start and the start after it on the same data. */
export interface NpmStartSample {
  /** Milliseconds from spawning `npm start` on a new data folder to its "shop ready" line. */
  freshMs: number;
  /** The same, started again on the data the fresh start left. */
  existingMs: number;
  /** Milliseconds from SIGINT to the exit of `npm start` (both stops' longest). */
  stopMs: number;
  /** Milliseconds from a CreateUser's answer to its event in a tap opened on the users service. */
  tapMs: number;
  /**
   * Milliseconds from a CreateOrder's answer to its trace, with spans of all three services, in
   * the dashboard's list of traces.
   */
  traceMs: number;
  /**
   * Milliseconds from a call's answer to what it changed in the dashboard's open page, in
   * Chromium; undefined when Chromium is not installed.
   */
  page: PageVisibility | undefined;
}

/** How soon the dashboard's pages show a call, from its answer (milliseconds). */
export interface PageVisibility {
  /** A CreateUser's row in the Users page. */
  userMs: number;
  /** A CreateOrder's row in the Orders page. */
  orderMs: number;
  /** An AdjustStock's new stock in the Products page. */
  stockMs: number;
  /** A CreateUser in the Tap page. */
  tapMs: number;
}

interface Ports {
  USERS_PORT: number;
  ORDERS_PORT: number;
  INVENTORY_PORT: number;
  DASHBOARD_PORT: number;
  LOCAL_POSTGRES_PORT: number;
}

async function portsForRun(): Promise<Ports> {
  return {
    USERS_PORT: await freePort(),
    ORDERS_PORT: await freePort(),
    INVENTORY_PORT: await freePort(),
    DASHBOARD_PORT: await freePort(),
    LOCAL_POSTGRES_PORT: await freePort(),
  };
}

/** Spawns `npm start` in a process group of its own and resolves on its "shop ready" line. */
function startShop(
  ports: Ports,
  dataDir: string,
  timeoutMs: number,
  pinning: Pinning,
): Promise<{ child: ChildProcess; readyMs: number }> {
  const { DATABASE_URL: _external, ...env } = process.env;
  const started = performance.now();
  // On every core, as a person's `npm start` runs: the bench itself is pinned to one.
  const [command, args] = pinnedCommand(pinning, pinning.allCpus, "npm", ["start"]);
  const child = spawn(command, args, {
    cwd: root,
    detached: true,
    env: {
      ...env,
      ...Object.fromEntries(Object.entries(ports).map(([key, value]) => [key, String(value)])),
      SHOP_DATA_DIR: dataDir,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child, "SIGKILL");
      reject(new Error(`npm start was not ready within ${timeoutMs / 1000} s:\n${output}`));
    }, timeoutMs);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (/shop ready in [\d.]+ s/.test(output)) {
        clearTimeout(timer);
        resolve({ child, readyMs: performance.now() - started });
      }
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited with ${code} before ready:\n${output}`));
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** What "shop ready" claims, asked of each process itself. */
async function assertReady(ports: Ports): Promise<void> {
  for (const name of ["USERS_PORT", "ORDERS_PORT", "INVENTORY_PORT"] as const) {
    const response = await fetch(`http://127.0.0.1:${ports[name]}/readyz`);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${name}'s /readyz answered ${response.status}`);
  }
  const page = await fetch(`http://127.0.0.1:${ports.DASHBOARD_PORT}/`);
  await page.arrayBuffer();
  if (!page.ok) throw new Error(`the dashboard answered ${page.status}`);
}

/** POSTs `body` as Connect JSON to `method` of the service on `port`; its answer, or throws. */
async function callJson(
  port: number,
  method: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${port}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as Record<string, unknown>;
  if (!response.ok)
    throw new Error(`${method} answered ${response.status}: ${JSON.stringify(answer)}`);
  return answer;
}

/**
 * How soon the dashboard has a call, on a running `npm start`: a CreateUser in a tap opened on the
 * users service (as the tap page opens one), and a CreateOrder's trace in the dashboard's list of
 * traces with the spans of all three services (as the traces page reads it).
 */
async function measureVisibility(
  ports: Ports,
  authorization: string,
): Promise<{ tapMs: number; traceMs: number }> {
  const dashboard = `http://127.0.0.1:${ports.DASHBOARD_PORT}`;

  const stop = new AbortController();
  const tap = createClient(
    TapService,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${ports.USERS_PORT}` }),
  );
  const seen = new Map<string, number>();
  let opened = false;
  const reading = (async () => {
    for await (const response of tap.tap(
      { method: "shop.user.v1.UserService/CreateUser", payloads: true },
      { signal: stop.signal, headers: { authorization } },
    )) {
      opened = true;
      for (const event of response.events) seen.set(event.traceId, performance.now());
    }
  })().catch((error: unknown) => {
    if (!stop.signal.aborted) throw error;
  });
  try {
    await waitFor(() => opened, { timeoutMs: 10_000, intervalMs: 10, message: "the tap opened" });
    // The caller's trace id goes on through the call: it names the call in the tap and the trace.
    const userTrace = randomUUID().replaceAll("-", "");
    const { user } = (await callJson(
      ports.USERS_PORT,
      "shop.user.v1.UserService/CreateUser",
      { name: "Measured", email: `measured-${userTrace}@example.com` },
      { authorization, traceparent: `00-${userTrace}-00f067aa0ba902b7-01` },
    )) as { user: { id: string } };
    const userAnswered = performance.now();
    const tapped = await waitFor(() => seen.get(userTrace), {
      timeoutMs: 10_000,
      intervalMs: 10,
      message: "CreateUser in the tap",
    });
    const tapMs = tapped - userAnswered;

    const orderTrace = randomUUID().replaceAll("-", "");
    await callJson(
      ports.ORDERS_PORT,
      "shop.order.v1.OrderService/CreateOrder",
      { user_id: user.id, items: [{ sku: "MUG-CERAMIC", quantity: 1 }], request_id: randomUUID() },
      {
        authorization,
        traceparent: `00-${orderTrace}-00f067aa0ba902b7-01`,
        "connect-timeout-ms": "10000",
      },
    );
    const orderAnswered = performance.now();
    await waitFor(
      async () => {
        const response = await fetch(`${dashboard}/api/traces`, { headers: { authorization } });
        const { traces } = (await response.json()) as {
          traces: { traceId: string; services: string[] }[];
        };
        const trace = traces.find((listed) => listed.traceId === orderTrace);
        return ["orders", "users", "inventory"].every((name) => trace?.services.includes(name));
      },
      { timeoutMs: 30_000, intervalMs: 10, message: "CreateOrder's trace in the dashboard" },
    );
    return { tapMs, traceMs: performance.now() - orderAnswered };
  } finally {
    stop.abort();
    await reading;
  }
}

/** An admin's token from the dashboard's sign-in, as the sign-in screen's button gets it. */
async function adminAuthorization(ports: Ports): Promise<string> {
  const session = await fetch(`http://127.0.0.1:${ports.DASHBOARD_PORT}/api/session`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ role: "admin" }),
  });
  const { token } = (await session.json()) as { token: string };
  return `Bearer ${token}`;
}

/**
 * Milliseconds from `since` (taken as the call's answer arrived: the argument is read before the
 * wait begins) until `locator` is visible, at most 10 s.
 */
async function visibleAfter(locator: Locator, since: number): Promise<number> {
  await locator.first().waitFor({ state: "visible", timeout: 10_000 });
  return performance.now() - since;
}

/**
 * How soon the dashboard's open pages show a call made outside them, in Chromium as a person has
 * it open: the Users, Orders and Products pages with their live streams, and the Tap page.
 */
async function measureInThePage(ports: Ports, authorization: string): Promise<PageVisibility> {
  const dashboard = `http://127.0.0.1:${ports.DASHBOARD_PORT}`;
  const headers = { authorization };
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${dashboard}/users`);
    await signInAsAdmin(page);
    await streamIs(page, "users", "live", 10_000);
    const stamp = randomUUID();
    const { user } = (await callJson(
      ports.USERS_PORT,
      "shop.user.v1.UserService/CreateUser",
      { name: "Seen In The Page", email: `page-${stamp}@example.com` },
      headers,
    )) as { user: { id: string } };
    const userMs = await visibleAfter(page.locator(`tr[data-id="${user.id}"]`), performance.now());

    await page.getByRole("link", { name: "Orders" }).click();
    await streamIs(page, "orders", "live", 10_000);
    const { order } = (await callJson(
      ports.ORDERS_PORT,
      "shop.order.v1.OrderService/CreateOrder",
      { user_id: user.id, items: [{ sku: "MUG-CERAMIC", quantity: 1 }], request_id: randomUUID() },
      headers,
    )) as { order: { id: string } };
    const orderMs = await visibleAfter(
      page.locator(`tr[data-id="${order.id}"]`),
      performance.now(),
    );

    await page.getByRole("link", { name: "Products" }).click();
    await streamIs(page, "stock", "live", 10_000);
    const { product } = (await callJson(
      ports.INVENTORY_PORT,
      "shop.inventory.v1.InventoryService/AdjustStock",
      { sku: "KETTLE-STEEL", delta: 1 },
      headers,
    )) as { product: { stock: string } };
    const stockMs = await visibleAfter(
      page.locator('tr[data-id="KETTLE-STEEL"] td.stock', {
        hasText: new RegExp(`^${product.stock}$`),
      }),
      performance.now(),
    );

    await page.getByRole("link", { name: "Tap" }).click();
    for (const service of ["users", "orders", "inventory"]) {
      await page
        .locator(`[data-stream="tap ${service}"][data-status="live"]`)
        .waitFor({ timeout: 10_000 });
    }
    await callJson(
      ports.USERS_PORT,
      "shop.user.v1.UserService/CreateUser",
      { name: "Seen In The Tap", email: `tap-page-${stamp}@example.com` },
      headers,
    );
    const tapMs = await visibleAfter(
      page.locator('tr[data-tap-method="shop.user.v1.UserService/CreateUser"]'),
      performance.now(),
    );
    return { userMs, orderMs, stockMs, tapMs };
  } finally {
    await browser.close();
  }
}

/** Ctrl-C: SIGINT to the group; milliseconds until `npm start` exited (SIGKILL after 20 s). */
async function stopShop(child: ChildProcess): Promise<number> {
  const stopped = performance.now();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  killGroup(child, "SIGINT");
  const timer = setTimeout(() => killGroup(child, "SIGKILL"), 20_000);
  await exited;
  clearTimeout(timer);
  // npm exits once its script has: whatever the script left running would still hold a port.
  killGroup(child, "SIGKILL");
  return performance.now() - stopped;
}

/** `samples` pairs of a start on a new data folder and one on the data it left. */
export async function measureNpmStart(options: {
  samples: number;
  pinning: Pinning;
  log: (line: string) => void;
}): Promise<NpmStartSample[]> {
  // What `npm install` leaves (scripts/prebuild.ts): built bundles and dashboard.
  await buildServices();
  await ensureDashboardBuild((line) => options.log(`  ${line}`));
  const results: NpmStartSample[] = [];
  for (let i = 0; i < options.samples; i++) {
    const dataDir = path.join(root, ".data", `bench-npm-start-${process.pid}-${i}`);
    rmSync(dataDir, { recursive: true, force: true });
    try {
      const ports = await portsForRun();
      const fresh = await startShop(ports, dataDir, 120_000, options.pinning);
      await assertReady(ports);
      const firstStop = await stopShop(fresh.child);
      const again = await startShop(ports, dataDir, 60_000, options.pinning);
      await assertReady(ports);
      const authorization = await adminAuthorization(ports);
      const seen = await measureVisibility(ports, authorization);
      const page = chromiumMissing ? undefined : await measureInThePage(ports, authorization);
      const secondStop = await stopShop(again.child);
      const sample = {
        freshMs: fresh.readyMs,
        existingMs: again.readyMs,
        stopMs: Math.max(firstStop, secondStop),
        ...seen,
        page,
      };
      options.log(
        `  npm start ${i + 1}/${options.samples}: new data folder ${(sample.freshMs / 1000).toFixed(2)} s, existing data ${(sample.existingMs / 1000).toFixed(2)} s, stopped in ${(sample.stopMs / 1000).toFixed(2)} s; a call in a tap ${Math.round(sample.tapMs)} ms, a CreateOrder in the traces ${Math.round(sample.traceMs)} ms after its answer; ${sample.page ? `in Chromium's page, a user ${Math.round(sample.page.userMs)} ms, an order ${Math.round(sample.page.orderMs)} ms, a stock change ${Math.round(sample.page.stockMs)} ms, a call in the tap page ${Math.round(sample.page.tapMs)} ms` : "the pages not measured (no Chromium)"}`,
      );
      results.push(sample);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return results;
}
