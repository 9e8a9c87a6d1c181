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
});

/**
 * The services' URLs as the browser reaches them, read from the environment of the running server
 * on every request (never inlined at build time), so that one build serves `npm start`, docker
 * compose and the tests alike. Only the server reads the environment; pages receive the result.
 */
export function readServiceUrls(env: NodeJS.ProcessEnv = process.env): ServiceUrls {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join(".")}: ${issue.message}`,
    );
    throw new Error(`invalid dashboard configuration: ${problems.join("; ")}`);
  }
  return {
    users: result.data.USERS_URL,
    orders: result.data.ORDERS_URL,
    inventory: result.data.INVENTORY_URL,
  };
}
