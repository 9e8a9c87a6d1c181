import {
  parseEnv,
  positiveInteger,
  type ServerConfig,
  serverEnvSchema,
  toServerConfig,
} from "@shop/mesh";
import * as z from "zod/mini";

/** The orders service's settings. */
export interface Config extends ServerConfig {
  /** Base URL of the users service (USERS_URL). */
  usersUrl: string;
  /** Base URL of the inventory service (INVENTORY_URL). */
  inventoryUrl: string;
  /** Deadline of each call to an upstream, in milliseconds (UPSTREAM_TIMEOUT_MS). */
  upstreamTimeoutMs: number;
  /** A pending order untouched this long is rolled back (PENDING_TIMEOUT_MS). */
  pendingTimeoutMs: number;
  /** How often the sweeper looks for such orders (SWEEP_INTERVAL_MS). */
  sweepIntervalMs: number;
  /** How long a request id is remembered (REQUEST_ID_TTL_MS, default 24 h). */
  requestIdTtlMs: number;
}

/** Milliseconds from the environment, a whole number of at least 1; `fallback` when unset. */
const milliseconds = (fallback: number) => z._default(positiveInteger, fallback);

const envSchema = z.extend(serverEnvSchema, {
  USERS_URL: z._default(z.url(), "http://localhost:8081"),
  INVENTORY_URL: z._default(z.url(), "http://localhost:8083"),
  UPSTREAM_TIMEOUT_MS: milliseconds(2_000),
  PENDING_TIMEOUT_MS: milliseconds(10_000),
  SWEEP_INTERVAL_MS: milliseconds(2_000),
  REQUEST_ID_TTL_MS: milliseconds(24 * 60 * 60 * 1000),
});

/** Reads the service's settings from `env` once; nothing else reads the environment. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const parsed = parseEnv(envSchema, env);
  return {
    ...toServerConfig(parsed, 8082),
    usersUrl: parsed.USERS_URL,
    inventoryUrl: parsed.INVENTORY_URL,
    upstreamTimeoutMs: parsed.UPSTREAM_TIMEOUT_MS,
    pendingTimeoutMs: parsed.PENDING_TIMEOUT_MS,
    sweepIntervalMs: parsed.SWEEP_INTERVAL_MS,
    requestIdTtlMs: parsed.REQUEST_ID_TTL_MS,
  };
}
