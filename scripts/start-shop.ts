// `npm start`: the whole shop on one machine. Checks that its ports are free, generates the API
// when the contracts changed, starts the dashboard's production build with `next start` (built
// first when missing or out of date) and, meanwhile, the embedded PostgreSQL (unless DATABASE_URL
// names another server) and then the three services, each in its own process; waits until every
// service reports SERVING over grpc.health.v1 and the dashboard answers, and prints the URLs and
// how long it took. Ctrl-C stops everything in order. A process that crashes is restarted with
// backoff.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@shop/api/grpc/health/v1/health_pb";
import {
  defaultAudience,
  ensureLocalKeys,
  jwksFile,
  localIssuer,
  privateKeyFile,
  serviceSigner,
  signInSigner,
} from "@shop/auth";
import { resolveDatabaseUrl } from "@shop/local-postgres";
import { z } from "zod";
import { buildServices, bundleOf, type serviceNames } from "./build-services.ts";
import {
  dashboardDir,
  dashboardNextArgs,
  ensureDashboardBuild,
  waitForDashboard,
} from "./dashboard.ts";
import { generateIfChanged } from "./generate.ts";

const startedAt = performance.now();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const env = z
  .object({
    DATABASE_URL: z.string().optional(),
    SHOP_DATA_DIR: z.string().default(path.join(root, ".data")),
    LOCAL_POSTGRES_PORT: z.coerce.number().int().default(54329),
    USERS_PORT: z.coerce.number().int().default(8081),
    ORDERS_PORT: z.coerce.number().int().default(8082),
    INVENTORY_PORT: z.coerce.number().int().default(8083),
    DASHBOARD_PORT: z.coerce.number().int().default(3000),
    // The dashboard signs anyone who reaches it in (a local development sign-in): this machine only.
    DASHBOARD_HOST: z.string().default("127.0.0.1"),
    CORS_ORIGINS: z.string().default("http://localhost:3000,http://127.0.0.1:3000"),
    LOG_FORMAT: z.enum(["pretty", "json"]).default("pretty"),
  })
  .parse(process.env);

// Authentication is on: local signing keys (made on the first start, kept in the data folder) for
// signing people in (the dashboard, `npm run token`) and the orders service's own identity; every
// service trusts their JWKS.
const authDir = path.join(env.SHOP_DATA_DIR, "auth");
await ensureLocalKeys(authDir, [signInSigner, serviceSigner("orders")]);
const authEnv = {
  AUTH: "on",
  AUTH_ISSUER: localIssuer,
  AUTH_AUDIENCE: defaultAudience,
  AUTH_JWKS_FILE: jwksFile(authDir),
};

// The browser calls the services straight from the dashboard's pages: allow its origins.
const corsOrigins = [
  ...new Set([
    ...env.CORS_ORIGINS.split(",")
      .map((origin) => origin.trim())
      .filter(Boolean),
    `http://localhost:${env.DASHBOARD_PORT}`,
    `http://127.0.0.1:${env.DASHBOARD_PORT}`,
  ]),
].join(",");

interface Managed {
  name: string;
  port: number;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

// Unless the OTEL_* variables choose otherwise (Jaeger, say), the services send their traces to
// the dashboard's OTLP receiver, which shows them without anything else to install; a short batch
// delay shows a call's trace within a second or so.
const otelChosen = [
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_TRACES_EXPORTER",
  "OTEL_SDK_DISABLED",
].some((name) => process.env[name]);
const traceEnv: Record<string, string> = otelChosen
  ? {}
  : {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${env.DASHBOARD_PORT}/v1/traces`,
      OTEL_BSP_SCHEDULE_DELAY: process.env.OTEL_BSP_SCHEDULE_DELAY ?? "500",
    };

// `npm start` runs each service's bundle (rebuilt first when its sources changed); `npm run dev`
// runs the TypeScript sources and restarts a service when a file it loads changes.
const dev = process.argv.includes("--dev");
const serviceMain = (name: (typeof serviceNames)[number]) =>
  dev ? ["--watch", path.join(root, "services", name, "src", "main.ts")] : [bundleOf(name)];
const services: Managed[] = [
  {
    name: "users",
    port: env.USERS_PORT,
    args: serviceMain("users"),
    cwd: root,
    env: { ...authEnv, ...traceEnv, CORS_ORIGINS: corsOrigins },
  },
  {
    name: "inventory",
    port: env.INVENTORY_PORT,
    args: serviceMain("inventory"),
    cwd: root,
    env: { ...authEnv, ...traceEnv, CORS_ORIGINS: corsOrigins },
  },
  {
    name: "orders",
    port: env.ORDERS_PORT,
    args: serviceMain("orders"),
    cwd: root,
    env: {
      ...authEnv,
      ...traceEnv,
      AUTH_SERVICE_KEY_FILE: privateKeyFile(authDir, serviceSigner("orders")),
      CORS_ORIGINS: corsOrigins,
      USERS_URL: `http://127.0.0.1:${env.USERS_PORT}`,
      INVENTORY_URL: `http://127.0.0.1:${env.INVENTORY_PORT}`,
    },
  },
];
// The pages run in the browser: it reaches the services at these URLs.
const dashboard: Managed = {
  name: "dashboard",
  port: env.DASHBOARD_PORT,
  args: dashboardNextArgs(env.DASHBOARD_PORT, env.DASHBOARD_HOST),
  cwd: dashboardDir,
  env: {
    NODE_ENV: "production",
    NEXT_TELEMETRY_DISABLED: "1",
    USERS_URL: `http://localhost:${env.USERS_PORT}`,
    ORDERS_URL: `http://localhost:${env.ORDERS_PORT}`,
    INVENTORY_URL: `http://localhost:${env.INVENTORY_PORT}`,
    AUTH_ISSUER: localIssuer,
    AUTH_AUDIENCE: defaultAudience,
    AUTH_SIGNING_KEY_FILE: privateKeyFile(authDir, signInSigner),
  },
};

const say = (line: string) => process.stdout.write(`${line}\n`);

// Every port this start will listen on must be free before anything starts: otherwise the services
// would crash-loop on EADDRINUSE while whatever holds the port answered the health checks.
const wanted: [variable: string, port: number][] = [
  ...(env.DATABASE_URL
    ? []
    : [["LOCAL_POSTGRES_PORT", env.LOCAL_POSTGRES_PORT] as [string, number]]),
  ["USERS_PORT", env.USERS_PORT],
  ["ORDERS_PORT", env.ORDERS_PORT],
  ["INVENTORY_PORT", env.INVENTORY_PORT],
  ["DASHBOARD_PORT", env.DASHBOARD_PORT],
];
const taken = (
  await Promise.all(
    wanted.map(async ([variable, port]) => ({ variable, port, free: await isFree(port) })),
  )
).filter((entry) => !entry.free);
if (taken.length > 0) {
  for (const { variable, port } of taken) {
    process.stderr.write(
      `port ${port} is already in use (another npm start, or another program): stop what holds it, or choose another port with ${variable}=<port> npm start\n`,
    );
  }
  process.exit(1);
}

// The generated API follows the contracts (buf generate only when they changed since).
// PostgreSQL starts first, in its own process: what follows runs while it comes up.
const dataDir = path.join(env.SHOP_DATA_DIR, "postgres");
say(
  env.DATABASE_URL ? "using the PostgreSQL at DATABASE_URL" : `starting PostgreSQL in ${dataDir}`,
);
const databaseReady = resolveDatabaseUrl({
  databaseUrl: env.DATABASE_URL,
  dataDir,
  port: env.LOCAL_POSTGRES_PORT,
  onLog: (line) => {
    // Stopping, PostgreSQL reports each connection it ends: expected, not worth a line.
    if (!stopping && /FATAL|PANIC|ERROR/.test(line)) say(`[postgres] ${line}`);
  },
});
databaseReady.catch(() => {});

if (generateIfChanged()) say("contracts changed: the API was generated again (buf generate)");

/** Whether nothing listens on `port`, on any address (a listener on every address would clash). */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, () => probe.close(() => resolve(true)));
  });
}
const children = new Map<string, ChildProcess>();
let stopping = false;
// Set once PostgreSQL answers; the services are launched after that, the dashboard needs none.
let databaseUrl: string | undefined;
let stopDatabase: (() => Promise<void>) | undefined;

function launch(service: Managed, attempt = 0): void {
  const child = spawn(process.execPath, service.args, {
    cwd: service.cwd,
    env: {
      ...process.env,
      // V8's compiled code of the bundles is kept between starts (Node's module compile cache).
      NODE_COMPILE_CACHE: path.join(env.SHOP_DATA_DIR, "compile-cache"),
      ...service.env,
      PORT: String(service.port),
      ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.set(service.name, child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => say(formatLog(service.name, line)));
  }
  const launchedAt = Date.now();
  child.on("exit", (code, signal) => {
    children.delete(service.name);
    if (stopping) return;
    const healthyRun = Date.now() - launchedAt > 30_000;
    const next = healthyRun ? 0 : attempt + 1;
    const delay = Math.min(30_000, 500 * 2 ** next);
    say(`[${service.name}] exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`);
    setTimeout(() => {
      if (!stopping) launch(service, next);
    }, delay).unref();
  });
}

function formatLog(name: string, line: string): string {
  if (env.LOG_FORMAT === "json") return line;
  try {
    const entry = JSON.parse(line) as {
      level?: number;
      msg?: string;
      err?: { message?: string };
    } & Record<string, unknown>;
    const level =
      entry.level !== undefined && entry.level >= 50 ? "error " : entry.level === 40 ? "warn " : "";
    const {
      level: _l,
      time: _t,
      service: _s,
      name: _n,
      msg,
      pid: _p,
      hostname: _h,
      err,
      ...rest
    } = entry;
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
    return `[${name}] ${level}${msg ?? ""}${err?.message ? `: ${err.message}` : ""}${extra}`;
  } catch {
    return `[${name}] ${line}`;
  }
}

async function waitUntilServing(service: Managed): Promise<void> {
  const health = createClient(
    Health,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${service.port}` }),
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const { status } = await health.check({ service: "" }, { timeoutMs: 1_000 });
      // Ready only when the process this start launched is the one running.
      const child = children.get(service.name);
      const running = child !== undefined && child.exitCode === null && child.signalCode === null;
      if (status === HealthCheckResponse_ServingStatus.SERVING && running) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline)
      throw new Error(`${service.name} did not become SERVING within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping the services`);
  await Promise.all(
    [...children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
          // A service drains its calls for a moment; a stop never hangs on one that does not.
          setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
        }),
    ),
  );
  if (stopDatabase) {
    say("stopping PostgreSQL");
    await stopDatabase();
  }
  process.exit(0);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));

// The dashboard builds (only when its build is missing or out of date) and starts while PostgreSQL
// and the services start: it needs neither to come up.
const dashboardUp = ensureDashboardBuild(say).then(() => {
  launch(dashboard);
  return waitForDashboard(`http://127.0.0.1:${dashboard.port}/`);
});
dashboardUp.catch(() => {});
const database = await databaseReady;
if (database.local) {
  say(
    `PostgreSQL ${database.local.created ? "initialised" : "reused"} on port ${env.LOCAL_POSTGRES_PORT} ` +
      `(${Math.round(performance.now() - startedAt)} ms)`,
  );
}

databaseUrl = database.url;
if (database.local) stopDatabase = database.local.stop.bind(database.local);

if (!dev && (await buildServices())) say("service bundles rebuilt from changed sources");
// Users and inventory first: orders calls both.
for (const service of services) launch(service);
try {
  await Promise.all(services.map(waitUntilServing));
  say(`services SERVING in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
  await dashboardUp;
} catch (error) {
  say(`startup failed: ${(error as Error).message}`);
  await stop("startup failure");
}

const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
say("");
say(`shop ready in ${seconds} s: all services SERVING, dashboard up`);
for (const service of [...services, dashboard]) {
  say(`  ${service.name.padEnd(10)} http://localhost:${service.port}`);
}
say("");
say(
  `try: curl -s -X POST http://localhost:${env.USERS_PORT}/shop.user.v1.UserService/ListUsers -H 'content-type: application/json' -H "authorization: Bearer $(npm run -s token)" -d '{}'`,
);
say("press Ctrl-C to stop");
