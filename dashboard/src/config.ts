import { defaultAudience, localIssuer } from "@shop/auth";
import { z } from "zod";
import type { ServiceUrls } from "./lib/service-urls.ts";

const serviceUrl = (fallback: string) =>
  z
    .url({ protocol: /^https?$/ })
    .default(fallback)
    .transform((url) => url.replace(/\/+$/, ""));

const envSchema = z.object({
  USERS_URL: serviceUrl("http://localhost:8081"),
  ORDERS_URL: serviceUrl("http://localhost:8082"),
  INVENTORY_URL: serviceUrl("http://localhost:8083"),
  // More services for the explorer to describe, comma-separated (the shop's three are always in).
  EXPLORER_URLS: z
    .string()
    .default("")
    .transform((list) =>
      list
        .split(",")
        .map((url) => url.trim())
        .filter((url) => url !== ""),
    )
    .pipe(z.array(z.url({ protocol: /^https?$/ }).transform((url) => url.replace(/\/+$/, "")))),
  // The private JWK the dashboard signs people in with; without it the dashboard sends no tokens,
  // for services that run with AUTH=off.
  AUTH_SIGNING_KEY_FILE: z.string().min(1).optional(),
  AUTH_ISSUER: z.string().min(1).default(localIssuer),
  AUTH_AUDIENCE: z.string().min(1).default(defaultAudience),
  DASHBOARD_TOKEN_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 60 * 60)
    .default(15 * 60),
});

/** How the dashboard's server signs people in: the key, what its tokens say, how long they last. */
export interface SignInConfig {
  keyFile: string;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

/** The dashboard server's runtime configuration. */
export interface DashboardConfig {
  urls: ServiceUrls;
  /** The explorer's other services (EXPLORER_URLS). */
  explorerUrls: string[];
  /** Undefined when sign-in is off (no AUTH_SIGNING_KEY_FILE): no tokens are sent. */
  signIn: SignInConfig | undefined;
}

/**
 * The configuration read from the environment of the running server on every request (never
 * inlined at build time), so that one build serves `npm start`, docker compose and the tests
 * alike. Only the server reads the environment; pages receive the service URLs and whether to sign
 * in, never the key.
 */
export function readConfig(env: NodeJS.ProcessEnv = process.env): DashboardConfig {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join(".")}: ${issue.message}`,
    );
    throw new Error(`invalid dashboard configuration: ${problems.join("; ")}`);
  }
  const data = result.data;
  return {
    urls: { users: data.USERS_URL, orders: data.ORDERS_URL, inventory: data.INVENTORY_URL },
    explorerUrls: data.EXPLORER_URLS,
    signIn: data.AUTH_SIGNING_KEY_FILE
      ? {
          keyFile: data.AUTH_SIGNING_KEY_FILE,
          issuer: data.AUTH_ISSUER,
          audience: data.AUTH_AUDIENCE,
          ttlSeconds: data.DASHBOARD_TOKEN_TTL_SECONDS,
        }
      : undefined,
  };
}
