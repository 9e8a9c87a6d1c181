// The dashboard's production build and server, shared by `npm start` and the browser tests: builds
// dashboard/ with `next build` when the build is missing or its sources changed since (compared by
// content, so a checkout that only touches timestamps does not rebuild), one build at a time across
// processes, and runs `next start` against it.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const dashboardDir = path.join(root, "dashboard");
const buildDir = path.join(dashboardDir, ".next");
const stampFile = path.join(buildDir, "shop-sources.sha256");
const lockDir = path.join(root, ".data", "dashboard-build.lock");
const nextBin = createRequire(path.join(dashboardDir, "package.json")).resolve(
  "next/dist/bin/next",
);

/**
 * What the build is made from: the app, its configuration, the generated API it imports and the
 * token signing its sign-in route bundles.
 */
const inputs = [
  path.join(dashboardDir, "src"),
  path.join(dashboardDir, "package.json"),
  path.join(dashboardDir, "next.config.ts"),
  path.join(dashboardDir, "tsconfig.json"),
  path.join(root, "packages", "api", "src", "gen"),
  path.join(root, "packages", "auth", "src"),
];

function filesOf(entry: string): string[] {
  if (!existsSync(entry)) return [];
  try {
    return readdirSync(entry, { recursive: true, withFileTypes: true })
      .filter((file) => file.isFile())
      .map((file) => path.join(file.parentPath, file.name));
  } catch {
    return [entry];
  }
}

/** A hash of every input file's path and content. */
export function dashboardSourceHash(): string {
  const hash = createHash("sha256");
  for (const file of inputs.flatMap(filesOf).sort()) {
    hash.update(path.relative(root, file));
    hash.update("\0");
    hash.update(readFileSync(file));
    hash.update("\0");
  }
  return hash.digest("hex");
}

/** True when a production build exists and was made from the current sources. */
export function dashboardBuildIsFresh(): boolean {
  if (!existsSync(path.join(buildDir, "BUILD_ID")) || !existsSync(stampFile)) return false;
  return readFileSync(stampFile, "utf8").trim() === dashboardSourceHash();
}

const nextEnv = { NEXT_TELEMETRY_DISABLED: "1" };

/**
 * Builds the dashboard unless a fresh build exists. Holds a lock (a directory, created atomically)
 * so that concurrent callers — two test files, or a test and `npm start` — build once and share it.
 */
export async function ensureDashboardBuild(say: (line: string) => void = () => {}): Promise<void> {
  if (dashboardBuildIsFresh()) return;
  mkdirSync(path.dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(path.join(lockDir, "pid"), String(process.pid));
      break;
    } catch {
      if (lockHolderIsGone()) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    if (dashboardBuildIsFresh()) return;
    const hash = dashboardSourceHash();
    say("building the dashboard (next build); this happens once per change of its sources");
    const started = Date.now();
    const output: string[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [nextBin, "build"], {
        cwd: dashboardDir,
        env: { ...process.env, ...nextEnv, NODE_ENV: "production" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.on("data", (chunk: Buffer) => output.push(chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => output.push(chunk.toString()));
      child.on("error", reject);
      child.on("exit", resolve);
    });
    if (code !== 0) throw new Error(`next build failed (exit ${code}):\n${output.join("")}`);
    writeFileSync(stampFile, `${hash}\n`);
    say(`dashboard built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function lockHolderIsGone(): boolean {
  try {
    const pid = Number(readFileSync(path.join(lockDir, "pid"), "utf8"));
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // ESRCH: the holder died holding the lock. No pid file: the holder is between creating the lock
    // and writing its pid, or died right there; only a lock that has stayed like that is stale.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ESRCH") return true;
    try {
      return Date.now() - statSync(lockDir).mtimeMs > 60_000;
    } catch {
      return false;
    }
  }
}

/** Where the browser finds the services, and where the dashboard listens. */
export interface DashboardOptions {
  port: number;
  /** The address to bind; all interfaces when absent. */
  hostname?: string;
  usersUrl: string;
  ordersUrl: string;
  inventoryUrl: string;
  /**
   * More of the dashboard's environment: its sign-in (AUTH_SIGNING_KEY_FILE, AUTH_ISSUER,
   * AUTH_AUDIENCE, DASHBOARD_TOKEN_TTL_SECONDS).
   */
  env?: Record<string, string>;
}

/** The arguments after `node` that serve the production build on `port` (`next start`). */
export function dashboardNextArgs(port: number, hostname?: string): string[] {
  const args = [nextBin, "start", "--port", String(port)];
  if (hostname) args.push("--hostname", hostname);
  return args;
}

/** Starts `next start` on the production build; the services' URLs are its runtime configuration. */
export function spawnDashboard(options: DashboardOptions): ChildProcess {
  return spawn(process.execPath, dashboardNextArgs(options.port, options.hostname), {
    cwd: dashboardDir,
    env: {
      ...process.env,
      ...nextEnv,
      NODE_ENV: "production",
      USERS_URL: options.usersUrl,
      ORDERS_URL: options.ordersUrl,
      INVENTORY_URL: options.inventoryUrl,
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Waits until the dashboard at `url` answers its overview page with 200. */
export async function waitForDashboard(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`the dashboard did not answer at ${url}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts `next start` (spawnDashboard) and waits until it answers on 127.0.0.1 (or the hostname
 * given); if it does not, kills it and fails with what it printed.
 */
export async function startDashboard(options: DashboardOptions): Promise<ChildProcess> {
  const dashboard = spawnDashboard(options);
  const output: string[] = [];
  dashboard.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  dashboard.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  try {
    await waitForDashboard(`http://${options.hostname ?? "127.0.0.1"}:${options.port}`);
  } catch (error) {
    dashboard.kill("SIGKILL");
    throw new Error(`${(error as Error).message}\n${output.join("")}`);
  }
  return dashboard;
}
