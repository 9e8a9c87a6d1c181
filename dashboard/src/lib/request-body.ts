// Reading a request body in the dashboard's routes, with a bound: Request.json() and
// Request.arrayBuffer() read a body of any size into memory.

/** The default bound: a request to the dashboard's routes is a small JSON document. */
export const maxJsonBytes = 1024 * 1024;

/**
 * The body of `request`; undefined when there is none, and "too large" when it is larger than
 * `maxBytes` (read no further than that).
 */
export async function readBytes(
  request: Request,
  maxBytes: number,
): Promise<Buffer | undefined | "too large"> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > maxBytes) return "too large";
  if (!request.body) return undefined;
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      return "too large";
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * The body of `request` as JSON; undefined when it is not JSON, and "too large" when it is larger
 * than `maxBytes` (read no further than that).
 */
export async function readJson(
  request: Request,
  maxBytes = maxJsonBytes,
): Promise<unknown | "too large"> {
  const body = await readBytes(request, maxBytes);
  if (body === undefined || body === "too large") return body;
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}
