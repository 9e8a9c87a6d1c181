// Applies every service's migrations to DATABASE_URL and exits: the migration Job of the Kubernetes
// manifests (deploy/base/migrate.yaml), and for anyone who migrates before a deploy rather than on start. The
// services still check on start and migrate what is missing (one at a time, under an advisory lock),
// so a database migrated here makes their start a check and nothing more.
//
//   DATABASE_URL=postgres://... node scripts/migrate.ts
import { applyMigrations, createLogger, openDatabase } from "@shop/mesh";
import { inventoryStorage } from "../services/inventory/src/app.ts";
import { ordersStorage } from "../services/orders/src/app.ts";
import { usersStorage } from "../services/users/src/app.ts";

const logger = createLogger("migrate", process.env.LOG_LEVEL ?? "info");
const url = process.env.DATABASE_URL;
if (!url) {
  logger.error("DATABASE_URL is not set: say which PostgreSQL to migrate");
  process.exit(2);
}

for (const service of [usersStorage, inventoryStorage, ordersStorage]) {
  const database = openDatabase({
    url,
    schema: service.schema,
    tables: service.tables,
    max: 2,
    applicationName: `shop-migrate-${service.name}`,
  });
  try {
    await applyMigrations(database, service.migrationsFolder);
    logger.info({ service: service.name }, "migrations applied");
  } catch (error) {
    logger.error({ err: error, service: service.name }, "migrations failed");
    process.exitCode = 1;
  } finally {
    await database.close();
  }
  if (process.exitCode) break;
}
