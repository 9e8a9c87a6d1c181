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

/** Encodes the position after the last item of a page as an opaque token. */
export function encodePageToken(after: string): string {
  return Buffer.from(JSON.stringify({ after })).toString("base64url");
}

/**
 * Decodes a token made by `encodePageToken`; undefined for the first page. `isValid` checks the
 * decoded position, so that a forged token is invalid_argument and never reaches a query.
 */
export function decodePageToken(
  token: string,
  isValid: (after: string) => boolean,
): string | undefined {
  if (token === "") return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (
      parsed &&
      typeof parsed === "object" &&
      "after" in parsed &&
      typeof parsed.after === "string" &&
      isValid(parsed.after)
    ) {
      return parsed.after;
    }
  } catch {
    // Falls through to the error below.
  }
  throw new ConnectError("page_token is not a token returned by this method", Code.InvalidArgument);
}
