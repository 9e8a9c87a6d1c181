import { parseEnv, type ServerConfig, serverEnvSchema, toServerConfig } from "@shop/mesh";

/** The users service's settings. */
export type Config = ServerConfig;

/** Reads the service's settings from `env` once; nothing else reads the environment. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  return toServerConfig(parseEnv(serverEnvSchema, env), 8081);
}
