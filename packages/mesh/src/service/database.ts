import { readFileSync } from "node:fs";
import path from "node:path";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import type { Logger } from "pino";
import postgres, { type Sql } from "postgres";
import { type HealthState, ServingStatus } from "../server/health.ts";

/** A service's connection pool and its drizzle handle, scoped to the service's own schema. */
export interface Database<TSchema extends Record<string, unknown>> {
  sql: Sql;
  /**
   * One connection of its own for periodic background queries (health checks, change-feed
   * polls), so that they never keep the request pool's idle connections from closing.
   */
  monitor: Sql;
  db: PostgresJsDatabase<TSchema>;
  /** The PostgreSQL schema that holds this service's tables and migration journal. */
  schema: string;
  close(): Promise<void>;
}

/** Opens a pool to `url` for the service that owns `schema`. */
export function openDatabase<TSchema extends Record<string, unknown>>(options: {
  url: string;
  schema: string;
  tables: TSchema;
  max?: number;
  applicationName: string;
}): Database<TSchema> {
  const sql = postgres(options.url, {
    max: options.max ?? 10,
    // Connections opened for a burst are closed once idle, so the pool shrinks back afterwards.
    idle_timeout: 10,
    onnotice: () => {},
    connection: { application_name: options.applicationName },
    // Bigints (revisions, versions, cents) arrive as JS bigint, never rounded.
    types: { bigint: postgres.BigInt },
  });
  const monitor = postgres(options.url, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: options.applicationName },
    types: { bigint: postgres.BigInt },
  });
  const db = drizzle({ client: sql, schema: options.tables });
  return {
    sql,
    monitor,
    db,
    schema: options.schema,
    close: async () => {
      await Promise.all([sql.end({ timeout: 5 }), monitor.end({ timeout: 5 })]);
    },
  };
}

/** Applies the committed drizzle-kit migrations in `folder`, journaled per service. */
export async function applyMigrations(
  database: Database<Record<string, unknown>>,
  folder: string,
): Promise<void> {
  // Services and replicas starting together would race on the same migrations and on the shared
  // journal schema: one migrates at a time, the others wait.
  const key = "migrate:shop";
  // The session is held for the lock, so the migrations' own queries need a second connection:
  // both are opened at once rather than one after the other (PostgreSQL starts a process for
  // each, some 20 ms here, on every start of a service).
  const [session] = await Promise.all([database.sql.reserve(), database.sql`select 1`]);
  try {
    await session`select pg_advisory_lock(hashtext(${key}))`;
    await migrate(database.db, {
      migrationsFolder: folder,
      // The journal sits beside the service's schema, not in it: the first migration creates it.
      migrationsSchema: "drizzle",
      migrationsTable: journalOf(database.schema),
    });
  } finally {
    await session`select pg_advisory_unlock(hashtext(${key}))`.catch(() => {});
    session.release();
  }
}

/** Reports whether the database answers and all `expectedMigrations` are recorded as applied. */
export async function checkDatabase(
  database: Database<Record<string, unknown>>,
  expectedMigrations: number,
): Promise<{ database: boolean; migrations: boolean }> {
  try {
    const [row] = await database.sql.unsafe<{ applied: bigint }[]>(
      `select count(*) as applied from drizzle."${journalOf(database.schema)}"`,
    );
    return { database: true, migrations: Number(row?.applied ?? 0) >= expectedMigrations };
  } catch (error) {
    const code = (error as { code?: string }).code;
    // 42P01: the journal table does not exist yet, so the database answers but is not migrated.
    return { database: code === "42P01", migrations: false };
  }
}

/**
 * Keeps the health state in step with the database: SERVING while it answers, NOT_SERVING when it
 * does not. Checks every `intervalMs`; returns a function that stops the checks.
 */
export function watchDatabaseHealth(options: {
  database: Database<Record<string, unknown>>;
  health: HealthState;
  logger: Logger;
  intervalMs?: number;
}): () => void {
  const { database, health, logger } = options;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const check = async () => {
    let healthy = false;
    try {
      await database.monitor`select 1`.execute();
      healthy = true;
    } catch (error) {
      if (health.get("") === ServingStatus.SERVING) {
        logger.error({ err: error }, "database unreachable; health is NOT_SERVING");
      }
    }
    if (stopped) return;
    if (healthy && health.get("") !== ServingStatus.SERVING)
      logger.info("database reachable; SERVING");
    health.setAll(healthy ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    timer = setTimeout(check, options.intervalMs ?? 2_000);
    timer.unref();
  };
  void check();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function journalOf(schema: string): string {
  return `${schema}_migrations`;
}

/** The number of migrations drizzle-kit has generated into `folder` (its journal's entries). */
export function migrationCount(folder: string): number {
  const journal = JSON.parse(readFileSync(path.join(folder, "meta", "_journal.json"), "utf8")) as {
    entries: unknown[];
  };
  return journal.entries.length;
}
