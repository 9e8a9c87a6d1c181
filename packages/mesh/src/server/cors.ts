import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { cors as connectCors } from "@connectrpc/connect";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

/**
 * Applies CORS for browser clients (the dashboard) from an allow-list of origins. Returns true when
 * the request was a preflight and has been answered. Origins not on the list get no CORS headers,
 * so the browser refuses them; there is no wildcard.
 */
export function applyCors(
  allowedOrigins: ReadonlySet<string>,
  req: Request,
  res: Response,
): boolean {
  const grant = corsGrant(allowedOrigins, req.headers.origin);
  if (grant === undefined) return false;
  for (const name in grant) res.setHeader(name, grant[name] as string);
  if (req.method !== "OPTIONS") return false;
  res.setHeader("Access-Control-Allow-Methods", connectCors.allowedMethods.join(", "));
  res.setHeader(
    "Access-Control-Allow-Headers",
    [...connectCors.allowedHeaders, "Authorization"].join(", "),
  );
  res.setHeader("Access-Control-Max-Age", "7200");
  res.statusCode = 204;
  res.end();
  return true;
}

/**
 * The headers that let a page from `origin` read an answer (the runtime's serving path adds them to
 * the calls it serves): undefined for an origin not on the list, which gets none.
 */
export function corsGrant(
  allowedOrigins: ReadonlySet<string>,
  origin: string | string[] | undefined,
): Record<string, string> | undefined {
  if (typeof origin !== "string" || !allowedOrigins.has(origin)) return undefined;
  return {
    "access-control-allow-origin": origin,
    vary: "Origin",
    "access-control-expose-headers": exposedHeaders,
  };
}

const exposedHeaders = connectCors.exposedHeaders.join(", ");
