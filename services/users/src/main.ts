import { resolveDatabaseUrl } from "@shop/local-postgres";
import { createLogger, startService, stopOnSignals } from "@shop/mesh";
import { usersService } from "./app.ts";
import { loadConfig } from "./config.ts";

const config = loadConfig(process.env);
const logger = createLogger("users", config.logLevel);
const database = await resolveDatabaseUrl({
  databaseUrl: config.databaseUrl,
  ...config.localPostgres,
});
const service = await startService(usersService, { ...config, databaseUrl: database.url }, logger);
logger.info({ url: service.server.url }, "users service listening");
stopOnSignals(service, logger, { after: () => database.local?.stop() ?? Promise.resolve() });
