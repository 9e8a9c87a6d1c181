import { defineConfig } from "drizzle-kit";

// Migrations are generated from the schema with `npm run db:generate` and committed; the service
// applies them on start.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema.ts",
  out: "./drizzle",
  schemaFilter: ["orders"],
});
