import { resolveDatabaseUrl } from "@shop/local-postgres/resolve";
import { createLogger, startService, startTelemetry, stopOnSignals } from "@shop/mesh";
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
// After the service serves: loading the OpenTelemetry SDK takes time that start-up need not wait
// for (calls before it are not traced).
const telemetry = await startTelemetry({
  serviceName: config.telemetry.serviceName ?? "users",
  enabled: config.telemetry.enabled,
});
stopOnSignals(service, logger, {
  after: async () => {
    await telemetry.shutdown();
    await database.local?.stop();
  },
});
