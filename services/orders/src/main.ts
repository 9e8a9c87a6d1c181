import { resolveDatabaseUrl } from "@shop/local-postgres";
import { createLogger, startService, stopOnSignals } from "@shop/mesh";
import { ordersService } from "./app.ts";
import { loadConfig } from "./config.ts";

const config = loadConfig(process.env);
const logger = createLogger("orders", config.logLevel);
const database = await resolveDatabaseUrl({
  databaseUrl: config.databaseUrl,
  ...config.localPostgres,
});
const service = await startService(
  ordersService(config),
  { ...config, databaseUrl: database.url },
  logger,
);
logger.info(
  { url: service.server.url, users: config.usersUrl, inventory: config.inventoryUrl },
  "orders service listening",
);
stopOnSignals(service, logger, { after: () => database.local?.stop() ?? Promise.resolve() });
