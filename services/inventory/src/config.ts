import { parseEnv, type ServerConfig, serverEnvSchema, toServerConfig } from "@shop/mesh";
import * as z from "zod/mini";

/** The inventory service's settings. */
export interface Config extends ServerConfig {
  /** Seed the demo catalog when the catalog is empty (SEED_DEMO_CATALOG, default true). */
  seedDemoCatalog: boolean;
}

const envSchema = z.extend(serverEnvSchema, {
  SEED_DEMO_CATALOG: z._default(z.enum(["true", "false"]), "true"),
});

/** Reads the service's settings from `env` once; nothing else reads the environment. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const parsed = parseEnv(envSchema, env);
  return { ...toServerConfig(parsed, 8083), seedDemoCatalog: parsed.SEED_DEMO_CATALOG === "true" };
}
