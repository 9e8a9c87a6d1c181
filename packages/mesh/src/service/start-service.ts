import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  createServiceCredentials,
  createSigner,
  createVerifier,
  readJwks,
  readPrivateKey,
} from "@shop/auth";
import type { Logger } from "pino";
import { type ChangeFeed, createChangeFeed } from "../change-feed/feed.ts";
import { type AuthOptions, assertEveryMethodHasRule } from "../interceptors/auth.ts";
import { type Server, serve } from "../server/serve.ts";
import type { AuthConfig, ServerConfig } from "./config.ts";
import {
  applyMigrations,
  checkDatabase,
  type Database,
  migrationCount,
  openDatabase,
  watchDatabaseHealth,
} from "./database.ts";

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
  /** Stops serving (see `Server.close`), then closes the feed and the pool. */
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
  // Configuration problems surface before anything is opened.
  const auth = config.auth && authOptions(config.auth);
  if (auth) {
    assertEveryMethodHasRule(definition.services, auth.open);
  } else {
    logger.warn("authentication is off (AUTH=off): every caller is let in");
  }
  const database = openDatabase({
    url: config.databaseUrl,
    schema: definition.schema,
    tables: definition.tables,
    applicationName: `shop-${definition.name}`,
  });
  const expectedMigrations = migrationCount(definition.migrationsFolder);
  // A service that cannot start leaves nothing open behind it (a port taken, a database down).
  const feed = await (async () => {
    await applyMigrations(database, definition.migrationsFolder);
    return createChangeFeed({
      sql: database.sql,
      monitor: database.monitor,
      schema: definition.schema,
      logger,
    });
  })().catch(async (error: unknown) => {
    await database.close();
    throw error;
  });
  let server: Server;
  try {
    await definition.prepare?.({ database, feed });
    server = await serve({
      name: definition.name,
      services: definition.services,
      routes: definition.routes({ database, feed }),
      port: config.port,
      host: config.host,
      tls: config.tls,
      limits: config.limits,
      drainMs: config.drainDelayMs,
      corsOrigins: config.corsOrigins,
      auth,
      logger,
      readiness: () => checkDatabase(database, expectedMigrations),
    });
  } catch (error) {
    await feed.close();
    await database.close();
    throw error;
  }
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

/** The server's token checks from the configuration: keys from the JWKS endpoint or file. */
function authOptions(config: AuthConfig): AuthOptions {
  return {
    verifier: createVerifier({
      jwksUrl: config.jwksUrl,
      jwks: config.jwksFile ? readJwks(config.jwksFile) : undefined,
      issuer: config.issuer,
      audience: config.audience,
      algorithms: config.algorithms,
      maxTokenBytes: config.maxTokenBytes,
    }),
    open: new Set(config.open),
  };
}

/**
 * The credentials a service presents to the services it calls, when it has its own key
 * (AUTH_SERVICE_KEY_FILE): short-lived tokens naming it, with the role "service".
 */
export async function serviceCredentials(
  config: ServerConfig,
  service: string,
): Promise<(() => Promise<string>) | undefined> {
  const auth = config.auth;
  if (!auth?.serviceKeyFile) return undefined;
  const signer = await createSigner({
    privateKey: readPrivateKey(auth.serviceKeyFile),
    issuer: auth.issuer,
    audience: auth.audience,
  });
  return createServiceCredentials(signer, service);
}
