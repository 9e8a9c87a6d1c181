// `npm start` as a person runs it: from the command to "shop ready" (every service SERVING and the
// dashboard answering), on a new data folder (as on a fresh clone after `npm install`: PostgreSQL
// initialised, migrations applied, no compile cache) and again on the data the first start left.
// Each start is checked from outside (every service's /readyz and the dashboard's page) before it
// counts, then stopped as Ctrl-C stops it: SIGINT to its process group.
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { freePort } from "@shop/testing";
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
      const secondStop = await stopShop(again.child);
      const sample = {
        freshMs: fresh.readyMs,
        existingMs: again.readyMs,
        stopMs: Math.max(firstStop, secondStop),
      };
      options.log(
        `  npm start ${i + 1}/${options.samples}: new data folder ${(sample.freshMs / 1000).toFixed(2)} s, existing data ${(sample.existingMs / 1000).toFixed(2)} s, stopped in ${(sample.stopMs / 1000).toFixed(2)} s`,
      );
      results.push(sample);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return results;
}
