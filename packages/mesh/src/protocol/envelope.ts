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

const empty = Buffer.alloc(0);

/**
 * A body's bytes as they arrive, read as envelopes: the first one's flags and announced length as
 * soon as its header is in, and each whole one taken out as it completes. Chunks are joined only
 * when an envelope spans them. The serving path (a unary request, a stream of them) and the
 * outbound client (an answer) read bodies through it; it also holds a body that is not enveloped
 * (a Connect unary request), whole, for `all()`.
 */
export class EnvelopeBuffer {
  /** The bytes held. */
  size = 0;
  private first: Buffer | undefined;
  private rest: Buffer[] | undefined;

  push(chunk: Buffer): void {
    if (this.first === undefined) this.first = chunk;
    else if (this.rest === undefined) this.rest = [chunk];
    else this.rest.push(chunk);
    this.size += chunk.length;
  }

  /** The flags of the first envelope held; -1 until its header is in. */
  flags(): number {
    return this.head()?.[0] ?? -1;
  }

  /** The length the first envelope held announces; -1 until its header is in. */
  announced(): number {
    return this.head()?.readUInt32BE(1) ?? -1;
  }

  /** Everything held, as one buffer. */
  all(): Buffer {
    const { first, rest } = this;
    if (first === undefined) return empty;
    if (rest === undefined) return first;
    const joined = Buffer.concat([first, ...rest], this.size);
    this.first = joined;
    this.rest = undefined;
    return joined;
  }

  /** The first envelope held, taken out once all of it is in; undefined until then. */
  take(): Buffer | undefined {
    const announced = this.announced();
    if (announced < 0 || this.size < envelopeHeaderBytes + announced) return undefined;
    const all = this.all();
    const end = envelopeHeaderBytes + announced;
    const left = all.subarray(end);
    this.first = left.length > 0 ? left : undefined;
    this.size = left.length;
    return all.subarray(0, end);
  }

  /** Lets go of everything held. */
  clear(): void {
    this.first = undefined;
    this.rest = undefined;
    this.size = 0;
  }

  private head(): Buffer | undefined {
    if (this.size < envelopeHeaderBytes) return undefined;
    const first = this.first as Buffer;
    return first.length >= envelopeHeaderBytes ? first : this.all();
  }
}
