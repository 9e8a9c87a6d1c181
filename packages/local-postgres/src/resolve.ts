import type { LocalPostgres } from "./index.ts";

// The package's main module, named by a variable so that a bundler leaves it out of a service's
// bundle: it is loaded from node_modules, and only when it is used.
const embeddedModule = "@shop/local-postgres";

/**
 * The database a service uses: the server `databaseUrl` names, or else the embedded PostgreSQL,
 * whose package (and its binaries' lookup) is loaded only then: `npm start` and every deployment
 * name a server, and a service should not pay for what it does not start.
 */
export async function resolveDatabaseUrl(options: {
  databaseUrl: string | undefined;
  dataDir: string | undefined;
  port: number;
}): Promise<{ url: string; local: LocalPostgres | undefined }> {
  if (options.databaseUrl) return { url: options.databaseUrl, local: undefined };
  const embedded = (await import(embeddedModule)) as typeof import("./index.ts");
  return embedded.resolveDatabaseUrl(options);
}
