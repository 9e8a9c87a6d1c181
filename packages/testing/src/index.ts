import { randomBytes } from "node:crypto";
import {
  createLogger,
  type RunningService,
  type ServiceDefinition,
  serverEnvSchema,
  startService,
  toServerConfig,
} from "@shop/mesh";
import postgres from "postgres";

/** A fresh, empty database on the test server, dropped by `drop()`. */
export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates a new database on the server that DATABASE_URL names (set by scripts/with-database.ts,
 * which `npm test` runs first), so that every test file starts from nothing.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    throw new Error(
      "DATABASE_URL is not set: run tests through `npm test` (scripts/with-database.ts)",
    );
  }
  const name = `test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
      await sql.unsafe(`drop database if exists "${name}" with (force)`);
      await sql.end();
    },
  };
}

/**
 * Starts `definition` on a free port against `databaseUrl`, with logs silenced unless LOG_LEVEL is
 * set, and authentication off unless `env` turns it on.
 */
export function startTestService<T extends Record<string, unknown>>(
  definition: ServiceDefinition<T>,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<RunningService> {
  const config = toServerConfig(
    serverEnvSchema.parse({ PORT: "0", HOST: "127.0.0.1", AUTH: "off", ...env }),
    0,
  );
  const logger = createLogger(definition.name, process.env.LOG_LEVEL ?? "silent");
  return startService(definition, { ...config, databaseUrl }, logger);
}

/**
 * Calls `probe` until it returns something other than undefined or false, and returns that; fails
 * with `message` (and the last error `probe` threw) once `timeoutMs` has passed.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out: ${options.message ?? "condition not met"}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 20));
  }
}

/**
 * Scrapes `${baseUrl}/metrics` and returns the sum of the samples of `name` whose labels include
 * every pair of `labels` (0 when there is none).
 */
export async function readMetric(
  baseUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const response = await fetch(`${baseUrl}/metrics`);
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  const text = await response.text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const sample = new Map<string, string>();
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      sample.set(pair[1] ?? "", pair[2] ?? "");
    }
    if (Object.entries(labels).every(([key, value]) => sample.get(key) === value)) {
      sum += Number(match[3]);
    }
  }
  return sum;
}
export {
  freePort,
  reservePort,
  type ServiceProcess,
  startServiceProcess,
  waitUntilServing,
} from "./processes.ts";
export * from "./rpc.ts";
