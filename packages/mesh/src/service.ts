import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import type { Logger } from "pino";
import { type ChangeFeed, createChangeFeed } from "./change-log.ts";
import type { ServerConfig } from "./config.ts";
import {
  applyMigrations,
  checkDatabase,
  type Database,
  migrationCount,
  openDatabase,
  watchDatabaseHealth,
} from "./database.ts";
import { type Server, serve } from "./serve.ts";

/** What a service brings to the runtime. */
export interface ServiceDefinition<TTables extends Record<string, unknown>> {
  /** Short name for logs and metrics ("users"). */
  name: string;
  /** The PostgreSQL schema the service owns. */
  schema: string;
  tables: TTables;
  /** Folder of the service's committed drizzle-kit migrations. */
  migrationsFolder: string;
  /** The proto services it implements. */
  services: readonly DescService[];
  /** Builds the handlers once the database and the change feed are ready. */
  routes(deps: { database: Database<TTables>; feed: ChangeFeed }): (router: ConnectRouter) => void;
  /**
   * Starts the service's background work once it serves (sweeping, expiring); returns the
   * function that stops it.
   */
  background?(deps: {
    database: Database<TTables>;
    feed: ChangeFeed;
    logger: Logger;
  }): () => Promise<void>;
  /** Runs once after migrations, before serving (seeding the demo catalog, say). */
  prepare?(deps: { database: Database<TTables>; feed: ChangeFeed }): Promise<void>;
}

/** A service that is up: its server, and how to stop it. */
export interface RunningService {
  server: Server;
  /** Stops serving, then closes the feed and the pool. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a service: opens its pool, applies its migrations, starts its change feed and health
 * checks, and serves its routes. Shared by `main.ts` of each service and by the tests.
 */
export async function startService<TTables extends Record<string, unknown>>(
  definition: ServiceDefinition<TTables>,
  config: ServerConfig & { databaseUrl: string },
  logger: Logger,
): Promise<RunningService> {
  const database = openDatabase({
    url: config.databaseUrl,
    schema: definition.schema,
    tables: definition.tables,
    applicationName: `shop-${definition.name}`,
  });
  const expectedMigrations = migrationCount(definition.migrationsFolder);
  await applyMigrations(database, definition.migrationsFolder);
  const feed = await createChangeFeed({
    sql: database.sql,
    monitor: database.monitor,
    schema: definition.schema,
    logger,
  });
  await definition.prepare?.({ database, feed });
  const server = await serve({
    name: definition.name,
    services: definition.services,
    routes: definition.routes({ database, feed }),
    port: config.port,
    host: config.host,
    tls: config.tls,
    limits: config.limits,
    corsOrigins: config.corsOrigins,
    logger,
    readiness: () => checkDatabase(database, expectedMigrations),
  });
  const stopHealth = watchDatabaseHealth({ database, health: server.health, logger });
  const stopBackground = definition.background?.({ database, feed, logger });
  const prune = setInterval(() => {
    feed.prune().then(
      (deleted) => {
        if (deleted > 0) logger.info({ deleted }, "pruned change history beyond retention");
      },
      (error: unknown) => logger.warn({ err: error }, "pruning change history failed"),
    );
  }, 5 * 60_000);
  prune.unref();
  return {
    server,
    async stop(graceMs) {
      await stopBackground?.();
      clearInterval(prune);
      stopHealth();
      await server.close(graceMs);
      await feed.close();
      await database.close();
    },
  };
}
