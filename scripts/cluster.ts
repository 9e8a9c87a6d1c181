// The scaled-out shop as plain processes on one machine, for people without Docker and for the
// cluster test: a PostgreSQL server of its own (Debian's `postgresql` package), two replicas of each
// service on it (their bundles, as `npm start` runs them), and the edge (Debian's `caddy`, with
// deploy/base/Caddyfile, the file compose and Kubernetes run) in front of each service. Orders
// calls users and inventory through the edge.
//
//   node scripts/cluster.ts
// also starts the dashboard (on DASHBOARD_PORT, 3000 by default) calling the edges, prints the
// addresses and runs until Ctrl-C. Authentication is off (AUTH=off), as in the tests; the data
// lives in a temporary folder removed on exit.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, type ServiceProcess, startServiceProcess } from "@shop/testing";
import postgres from "postgres";
import { buildServices, bundleOf } from "./build-services.ts";
import { ensureDashboardBuild, startDashboard } from "./dashboard.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const serviceNames = ["users", "inventory", "orders"] as const;
export type ServiceName = (typeof serviceNames)[number];

/** A running cluster. */
export interface Cluster {
  databaseUrl: string;
  /** Each service's edge, `http://127.0.0.1:port`: what clients and browsers call. */
  edges: Record<ServiceName, string>;
  /** Each service's replicas, to kill and restart. */
  replicas: Record<ServiceName, ServiceProcess[]>;
  stop(): Promise<void>;
}

/** The folder of Debian's PostgreSQL server programs (the newest installed), or undefined. */
export function debianPostgres(): string | undefined {
  const versions = existsSync("/usr/lib/postgresql")
    ? readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a))
    : [];
  return versions
    .map((version) => `/usr/lib/postgresql/${version}/bin`)
    .find((bin) => existsSync(path.join(bin, "postgres")));
}

/** Runs `program args` as the user PostgreSQL runs as: `postgres` when this process is root. */
function asPostgres(program: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0
    ? ["runuser", ["-u", "postgres", "--", program, ...args]]
    : [program, args];
}

/** Starts a PostgreSQL server in a new data folder under `folder`, with a `shop` database. */
async function startPostgres(folder: string): Promise<{ url: string; stop(): Promise<void> }> {
  const bin = debianPostgres();
  if (!bin) {
    throw new Error("PostgreSQL's server is not installed: apt-get install postgresql");
  }
  const data = path.join(folder, "postgres");
  // PostgreSQL refuses to run as root: as root, the folder goes to the postgres user.
  if (userInfo().uid === 0) {
    chmodSync(folder, 0o755);
    execFileSync("install", ["-d", "-o", "postgres", "-g", "postgres", data]);
  }
  execFileSync(
    ...asPostgres(path.join(bin, "initdb"), [
      "-D",
      data,
      "-U",
      "shop",
      "--auth=trust",
      "-E",
      "UTF8",
    ]),
    { stdio: "ignore" },
  );
  const port = await freePort();
  const [program, args] = asPostgres(path.join(bin, "postgres"), [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    data,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "max_connections=300",
  ]);
  const server: ChildProcess = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  server.stderr?.on("data", (chunk) => {
    log = (log + String(chunk)).slice(-4000);
  });
  const admin = `postgres://shop@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const sql = postgres(admin, { max: 1, onnotice: () => {}, connect_timeout: 2 });
    try {
      await sql`create database shop`;
      break;
    } catch (error) {
      if (server.exitCode !== null || Date.now() > deadline) {
        throw new Error(`PostgreSQL did not start: ${String(error)}\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await sql.end();
    }
  }
  return {
    url: `postgres://shop@127.0.0.1:${port}/shop`,
    async stop() {
      if (server.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
      // Fast shutdown (ends the sessions, then stops), asked of the server itself: as root it runs
      // under runuser, which passes no signal on.
      execFileSync(
        ...asPostgres(path.join(bin, "pg_ctl"), ["stop", "-D", data, "-m", "fast", "-w"]),
        {
          stdio: "ignore",
        },
      );
      await exited;
    },
  };
}

/** Starts Caddy with the edges' Caddyfile in front of `replicas`; resolves once all answer. */
async function startEdge(
  folder: string,
  replicas: Record<ServiceName, ServiceProcess[]>,
  ports: Record<ServiceName, number>,
): Promise<{ stop(): Promise<void> }> {
  const env: Record<string, string> = {
    ...process.env,
    EDGE_UPSTREAMS: "addresses",
    EDGE_ADMIN: "off",
    // Caddy keeps its state under these; not in this user's home.
    XDG_CONFIG_HOME: path.join(folder, "caddy-config"),
    XDG_DATA_HOME: path.join(folder, "caddy-data"),
  };
  for (const name of serviceNames) {
    const upper = name.toUpperCase();
    env[`${upper}_EDGE_PORT`] = String(ports[name]);
    env[`${upper}_ADDRESSES`] = replicas[name].map((r) => `127.0.0.1:${r.port}`).join(" ");
  }
  const caddy = spawn(
    "caddy",
    ["run", "--config", path.join(root, "deploy", "base", "Caddyfile"), "--adapter", "caddyfile"],
    { env, stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  caddy.stderr?.on("data", (chunk) => {
    log = (log + String(chunk)).slice(-4000);
  });
  const deadline = Date.now() + 20_000;
  for (const name of serviceNames) {
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${ports[name]}/readyz`).then(
        (res) => res.ok,
        () => false,
      );
      if (ready) break;
      if (caddy.exitCode !== null || Date.now() > deadline) {
        caddy.kill("SIGKILL");
        throw new Error(`the edge did not come up for ${name}\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    async stop() {
      if (caddy.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        caddy.once("exit", () => resolve());
        caddy.kill("SIGTERM");
      });
    },
  };
}

/**
 * Starts the cluster: PostgreSQL, `replicasEach` replicas of each service (with `env` added to
 * theirs), the edge. What started is stopped again if a later part fails.
 */
export async function startCluster(
  options: { replicasEach?: number; env?: Record<string, string> } = {},
): Promise<Cluster> {
  const folder = mkdtempSync(path.join(tmpdir(), "shop-cluster-"));
  const stops: (() => Promise<void>)[] = [
    async () => rmSync(folder, { recursive: true, force: true }),
  ];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step().catch(() => {});
  };
  try {
    // The replicas run the services' bundles, as `npm start` does (built unless fresh).
    await buildServices();
    const database = await startPostgres(folder);
    stops.push(database.stop);
    const ports = {
      users: await freePort(),
      inventory: await freePort(),
      orders: await freePort(),
    };
    const edges = Object.fromEntries(
      serviceNames.map((name) => [name, `http://127.0.0.1:${ports[name]}`]),
    ) as Record<ServiceName, string>;
    // A replica told to stop answers, not ready, until the edge's health checks (every 2 s) have
    // taken it out.
    const common = { DRAIN_DELAY_MS: "3000", ...options.env, DATABASE_URL: database.url };
    const envOf: Record<ServiceName, Record<string, string>> = {
      users: common,
      inventory: common,
      orders: { ...common, USERS_URL: edges.users, INVENTORY_URL: edges.inventory },
    };
    const replicas = {} as Record<ServiceName, ServiceProcess[]>;
    const started: ServiceProcess[] = [];
    // All at once: each drains for a while first.
    stops.push(async () => {
      await Promise.all(started.map((replica) => replica.kill("SIGTERM")));
    });
    for (const name of serviceNames) {
      replicas[name] = [];
      // One after the other: the first migrates, the next find it done.
      for (let i = 0; i < (options.replicasEach ?? 2); i++) {
        const replica = await startServiceProcess(name, envOf[name], { entry: bundleOf(name) });
        replicas[name].push(replica);
        started.push(replica);
      }
    }
    const edge = await startEdge(folder, replicas, ports);
    stops.push(edge.stop);
    return { databaseUrl: database.url, edges, replicas, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Starts the dashboard on `port` of 127.0.0.1 with the browser calling the edges, as in compose
 * (the services' CORS_ORIGINS must name it).
 */
export function startClusterDashboard(cluster: Cluster, port: number): Promise<ChildProcess> {
  return startDashboard({
    port,
    hostname: "127.0.0.1",
    usersUrl: cluster.edges.users,
    ordersUrl: cluster.edges.orders,
    inventoryUrl: cluster.edges.inventory,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dashboardPort = Number(process.env.DASHBOARD_PORT ?? 3000);
  const building = ensureDashboardBuild((line) => console.log(line));
  building.catch(() => {}); // awaited below, once the cluster is up
  const cluster = await startCluster({
    env: {
      LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
      CORS_ORIGINS: `http://localhost:${dashboardPort},http://127.0.0.1:${dashboardPort}`,
    },
  });
  let dashboard: ChildProcess | undefined;
  try {
    await building;
    dashboard = await startClusterDashboard(cluster, dashboardPort);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  for (const name of serviceNames) {
    const ports = cluster.replicas[name].map((replica) => replica.port).join(", ");
    console.log(`${name.padEnd(9)} ${cluster.edges[name]}  (replicas on ${ports})`);
  }
  console.log(`dashboard http://127.0.0.1:${dashboardPort}`);
  console.log(`database  ${cluster.databaseUrl}\nCtrl-C stops everything.`);
  const quit = () => {
    dashboard?.kill("SIGTERM");
    cluster.stop().finally(() => process.exit(0));
  };
  process.once("SIGINT", quit);
  process.once("SIGTERM", quit);
}
