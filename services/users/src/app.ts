import { fileURLToPath } from "node:url";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { type ServiceDefinition, traceRepository } from "@shop/mesh";
import { tables } from "./store/schema.ts";
import { createUserStore } from "./store/user-store.ts";
import { userRoutes } from "./transport/routes.ts";

/** The users service as the mesh runtime runs it. */
export const usersService: ServiceDefinition<typeof tables> = {
  name: "users",
  schema: "users",
  tables,
  migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
  services: [UserService],
  routes: ({ database, feed }) =>
    userRoutes(traceRepository(createUserStore(database, feed), "users")),
};
