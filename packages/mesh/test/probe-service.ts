import { fileURLToPath } from "node:url";
import { pgSchema } from "drizzle-orm/pg-core";
import { changeLogTable, type ServiceDefinition } from "../src/index.ts";

/** The schema of the probe service: only the change log every service has. */
export const probeSchema = pgSchema("probe");

/** The probe service's tables. */
export const probeTables = { changes: changeLogTable(probeSchema) };

/** Folder of the probe's migrations, written by hand in drizzle-kit's layout. */
export const probeMigrations = fileURLToPath(new URL("fixtures/drizzle", import.meta.url));

/**
 * The smallest service the mesh runtime can run: no application RPCs, so that the tests of the
 * runtime see only what it adds itself (health, reflection, limits, CORS, HTTP endpoints).
 */
export const probeService: ServiceDefinition<typeof probeTables> = {
  name: "probe",
  schema: "probe",
  tables: probeTables,
  migrationsFolder: probeMigrations,
  services: [],
  routes: () => () => {},
};
