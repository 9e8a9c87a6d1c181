import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";

/** Default and largest page sizes of every List method. */
const defaultPageSize = 50;
const maxPageSize = 1000;

/**
 * The page size to use for a request's `page_size`: the default for 0, the largest for more than
 * that (AIP-158). A negative one breaks the contract's rule and never reaches a handler.
 */
export function pageSizeOf(requested: number): number {
  return requested <= 0 ? defaultPageSize : Math.min(requested, maxPageSize);
}

/**
 * The fields of a List request that decide which items it lists and in what order, by their proto
 * names (`user_id`), so that a refusal can name them. Its page tokens are valid only with the same
 * values (AIP-158).
 */
export type PageFilters = Readonly<Record<string, string | number | boolean | undefined>>;

/**
 * Encodes the position after the last item of a page as an opaque token, bound to the `filters`
 * of the request that listed the page.
 */
export function encodePageToken(after: string, filters: PageFilters = {}): string {
  const fingerprint = fingerprintOf(filters);
  const token = fingerprint === undefined ? { after } : { after, filters: fingerprint };
  return Buffer.from(JSON.stringify(token)).toString("base64url");
}

/**
 * Decodes a token made by `encodePageToken`; undefined for the first page. `isValid` checks the
 * decoded position, so that a forged token is invalid_argument and never reaches a query; a token
 * made for other `filters` is invalid_argument too, since its position means nothing in this list.
 */
export function decodePageToken(
  token: string,
  isValid: (after: string) => boolean,
  filters: PageFilters = {},
): string | undefined {
  if (token === "") return undefined;
  const decoded = parse(token);
  if (decoded === undefined || !isValid(decoded.after)) {
    throw new ConnectError(
      "page_token is not a token returned by this method",
      Code.InvalidArgument,
    );
  }
  if (decoded.filters !== fingerprintOf(filters)) {
    const names = Object.keys(filters).sort().join(", ");
    throw new ConnectError(
      `page_token belongs to a request with other filters (${names}); send the filters of the request that returned it, or start from the first page without a page_token`,
      Code.InvalidArgument,
    );
  }
  return decoded.after;
}

function parse(token: string): { after: string; filters: string | undefined } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== "object" || !("after" in parsed)) return undefined;
  if (typeof parsed.after !== "string") return undefined;
  if (!("filters" in parsed)) return { after: parsed.after, filters: undefined };
  if (typeof parsed.filters !== "string") return undefined;
  return { after: parsed.after, filters: parsed.filters };
}

/**
 * A short digest of the filters that are set, undefined when none is: a request without filters
 * then accepts the tokens made before filters existed, and a token never carries a query's text.
 */
function fingerprintOf(filters: PageFilters): string | undefined {
  const set = Object.entries(filters)
    .filter(([, value]) => value !== undefined && value !== "" && value !== false && value !== 0)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  if (set.length === 0) return undefined;
  return createHash("sha256").update(JSON.stringify(set)).digest("base64url").slice(0, 12);
}
