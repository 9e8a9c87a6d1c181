// The envelope every message of a gRPC, gRPC-web or Connect streaming body is framed in: a flags
// byte, the message's length (4 bytes, big-endian), then the message. It depends on nothing else
// of the runtime, so that whatever makes or reads frames (the serving path, the outbound client,
// the change feed's kept encodings) uses this one definition.

/** The bytes before each message of an enveloped body: a flags byte and the message's length. */
export const envelopeHeaderBytes = 5;

/** The flag of a message compressed with the compression its request or answer names. */
export const compressedFlag = 0b1;

/**
 * `bytes` as one enveloped message: the envelope's header (`flags`, 0 for an uncompressed message,
 * then the length), then the message.
 */
export function envelope(bytes: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.allocUnsafe(envelopeHeaderBytes + bytes.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(bytes.byteLength, 1);
  frame.set(bytes, envelopeHeaderBytes);
  return frame;
}

/** The message of `frame`, one whole enveloped message. */
export function messageOf(frame: Buffer): Buffer;
export function messageOf(frame: Uint8Array): Uint8Array;
export function messageOf(frame: Uint8Array): Uint8Array {
  return frame.subarray(envelopeHeaderBytes);
}
