// Our users service as the benchmark runs it: the mesh runtime's serve() with the service's own
// Connect handlers, configured from the environment exactly as services/users/src/main.ts is.
//   --store=memory     the handlers over an in-memory repository holding the fixture user
//   --store=postgres   startService(usersService): migrations, change feed, PostgreSQL store
//   --validate=off     (in memory) without checking requests against the contract's rules, to
//                      measure what that check costs
// Telemetry stays off (no OTEL_* variables), as for a service started by hand (`npm start` sends
// the services' traces to the dashboard).
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createLogger, type Server, serve, startService } from "@shop/mesh";
import { usersService } from "../../services/users/src/app.ts";
import { loadConfig } from "../../services/users/src/config.ts";
import { userRoutes } from "../../services/users/src/transport/routes.ts";
import { createMemoryUserRepository } from "../lib/fixture.ts";
import { argument, reportFailure, reportReady } from "./ipc.ts";

try {
  const config = loadConfig(process.env);
  const logger = createLogger("users", config.logLevel);
  const store = argument("store", "memory");
  if (store === "postgres") {
    const databaseUrl = config.databaseUrl;
    if (!databaseUrl) throw new Error("--store=postgres needs DATABASE_URL");
    const service = await startService(usersService, { ...config, databaseUrl }, logger);
    reportReady(service.server.port, () => service.stop(1_000));
  } else {
    const server: Server = await serve({
      name: "users",
      services: [UserService],
      routes: userRoutes(createMemoryUserRepository()),
      port: config.port,
      host: config.host,
      limits: config.limits,
      corsOrigins: config.corsOrigins,
      logger,
      readiness: async () => ({ database: true, migrations: true }),
      validateRequests: argument("validate", "on") !== "off",
    });
    reportReady(server.port, () => server.close(1_000));
  }
} catch (error) {
  reportFailure(error);
}
