// gRPC's status message (grpc-message) as it travels in a header or trailer: percent-encoded, as
// the gRPC specification (PROTOCOL-HTTP2.md, "Responses") says, for the serving path that sends it
// and the outbound client that reads it.

/**
 * `message` as the gRPC specification encodes grpc-message: only '%' and what is not printable
 * ASCII is percent-encoded (its UTF-8 bytes). connect-es encodes as encodeURIComponent does, ':'
 * '@' ',' and '/' included, and grpc-js decodes with decodeURI, which leaves those as %3A, %40,
 * %2C: its users would read "email must be an email address like ada%40example.com".
 */
export function encodeGrpcMessage(message: string): string {
  let encoded = "";
  for (const byte of new TextEncoder().encode(message)) {
    encoded +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

/** A grpc-message as sent (percent-encoded), or as it came when its encoding is broken. */
export function decodeGrpcMessage(message: string): string {
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}
