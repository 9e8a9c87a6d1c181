import { fileURLToPath } from "node:url";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { type ServiceDefinition, traceRepository } from "@shop/mesh";
import { demoCatalog } from "./domain/demo-catalog.ts";
import { createInventoryStore } from "./store/inventory-store.ts";
import { tables } from "./store/schema.ts";
import { inventoryRoutes } from "./transport/routes.ts";

/** Options of the inventory service. */
export interface InventoryOptions {
  /** Seed the demo catalog when the catalog is empty. */
  seedDemoCatalog: boolean;
}

/**
 * What the inventory service keeps in PostgreSQL: its schema, tables and migrations (applied on start,
 * and by scripts/migrate.ts).
 */
export const inventoryStorage = {
  name: "inventory",
  schema: "inventory",
  tables,
  migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
};

/** The inventory service as the mesh runtime runs it. */
export function inventoryService(options: InventoryOptions): ServiceDefinition<typeof tables> {
  return {
    ...inventoryStorage,
    services: [InventoryService],
    routes: ({ database, feed }) =>
      inventoryRoutes(traceRepository(createInventoryStore(database, feed), "inventory")),
    async prepare({ database, feed }) {
      if (options.seedDemoCatalog) await createInventoryStore(database, feed).seed(demoCatalog);
    },
  };
}
