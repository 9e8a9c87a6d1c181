import { fileURLToPath } from "node:url";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { type ServiceDefinition, traceRepository } from "@shop/mesh";
import { tables } from "./store/schema.ts";
import { createUserStore } from "./store/user-store.ts";
import { userRoutes } from "./transport/routes.ts";

/**
 * What the users service keeps in PostgreSQL: its schema, tables and migrations (applied on start,
 * and by scripts/migrate.ts).
 */
export const usersStorage = {
  name: "users",
  schema: "users",
  tables,
  migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
};

/** The users service as the mesh runtime runs it. */
export const usersService: ServiceDefinition<typeof tables> = {
  ...usersStorage,
  services: [UserService],
  routes: ({ database, feed }) =>
    userRoutes(traceRepository(createUserStore(database, feed), "users")),
};
