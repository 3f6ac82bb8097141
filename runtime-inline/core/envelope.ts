import { Code } from "./code.ts";
import type { Compression } from "./compression.ts";
import { ConnectError } from "./errors.ts";

/** The one flag that means the same in Connect, gRPC and gRPC-Web. */
export const envelopeFlagCompressed = 0x01;
/** Connect streaming: the final envelope, whose payload is the end-of-stream JSON. */
export const envelopeFlagEndStream = 0x02;
/** gRPC-Web: the final envelope, whose payload is the trailers as HTTP/1 header lines. */
export const envelopeFlagTrailers = 0x80;

const envelopeHeaderLength = 5;

// The length field is 32 bits; a larger payload cannot be framed at all.
const envelopeMaxLength = 0xffffffff;

/**
 * One frame of Connect streaming, gRPC and gRPC-Web: on the wire a flag byte,
 * a 4-byte big-endian payload length, then the payload.
 */
export interface Envelope {
  readonly flags: number;
  readonly data: Uint8Array;
}

/**
 * Frames one message in 5 + data.length bytes of their own. Small envelopes
 * share a slab with their neighbours (see envelopeAllocate): the chunk must
 * not be transferred or written to.
 */
export function envelopeEncode(flags: number, data: Uint8Array): Uint8Array {
  const bytes = envelopeAllocate(envelopeHeaderLength + data.byteLength);
  envelopeWriteHeader(bytes, flags, data.byteLength);
  bytes.set(data, envelopeHeaderLength);
  return bytes;
}

/**
 * The 5 bytes that frame a payload of `length` bytes, for a writer that
 * sends the payload as a chunk of its own (the Node writer does, so that no
 * message is copied). Cut from the shared slab: not to be written to.
 */
export function envelopeHeader(flags: number, length: number): Uint8Array {
  const header = envelopeAllocate(envelopeHeaderLength);
  envelopeWriteHeader(header, flags, length);
  return header;
}

function envelopeWriteHeader(
  bytes: Uint8Array,
  flags: number,
  length: number,
): void {
  if (length > envelopeMaxLength) {
    throw new ConnectError(
      `message size ${length} is larger than an envelope can carry`,
      Code.ResourceExhausted,
    );
  }
  bytes[0] = flags;
  bytes[1] = length >>> 24;
  bytes[2] = length >>> 16;
  bytes[3] = length >>> 8;
  bytes[4] = length;
}

// Envelopes up to half a slab are cut from a shared slab, as Node's
// Buffer.allocUnsafe cuts small Buffers from its pool: an ArrayBuffer of
// its own per message (an off-heap allocation, zero-filled, swept by the
// garbage collector later) cost a streamed 1 KiB message more than all
// the framing. A slab lives as long as any envelope cut from it, so it is
// kept small: at most 8 KiB held for a chunk a writable still queues.
const envelopeSlabSize = 8192;
let envelopeSlab = /* @__PURE__ */ new ArrayBuffer(0);
let envelopeSlabUsed = 0;

/** Room for one envelope, every byte of which the caller writes. */
function envelopeAllocate(size: number): Uint8Array {
  if (size > envelopeSlabSize >>> 1) {
    return new Uint8Array(size);
  }
  if (size > envelopeSlab.byteLength - envelopeSlabUsed) {
    envelopeSlab = new ArrayBuffer(envelopeSlabSize);
    envelopeSlabUsed = 0;
  }
  const bytes = new Uint8Array(envelopeSlab, envelopeSlabUsed, size);
  // 8-byte aligned, as Node aligns its pool.
  envelopeSlabUsed += (size + 7) & ~7;
  return bytes;
}

/**
 * Reads envelopes incrementally from a byte stream: a message may be split
 * across chunks, a chunk may hold many messages, and a message may be empty.
 *
 * A payload that lies whole inside one chunk is yielded as a view of that
 * chunk, not a copy, so the source must not reuse a chunk's memory after
 * yielding it. The views are plain Uint8Arrays even when the chunks are Node
 * Buffers, so that Buffers do not end up in the bytes fields of decoded
 * messages.
 *
 * A declared length over `readMaxBytes` rejects with ResourceExhausted as soon
 * as the header is read, without waiting for the payload. For a compressed
 * payload this bounds only the wire size; `envelopeDecompress` bounds the
 * decompressed size.
 *
 * A stream that ends inside an envelope (part of a header or of a payload)
 * rejects with `truncatedCode`: connect-go and connect-es use InvalidArgument
 * on both sides, grpc-go uses Internal (io.ErrUnexpectedEOF).
 *
 * The reader does not interpret flags; the protocol code decides what an
 * end-of-stream or trailers envelope means, and whether data may follow it.
 */
export async function* envelopeRead(
  source: AsyncIterable<Uint8Array>,
  readMaxBytes: number,
  truncatedCode: Code,
): AsyncGenerator<Envelope> {
  // The header is parsed a byte at a time when it straddles chunks, so that
  // no scratch buffer is needed.
  let headerRead = 0;
  let flags = 0;
  let length = 0;
  // A payload that straddles chunks is kept as views of the chunks and joined
  // once complete: the memory held is what the peer has sent, not what it
  // declared, so a peer that declares readMaxBytes and sends one byte cannot
  // make every open stream hold readMaxBytes.
  const pieces: Uint8Array[] = [];
  let received = 0;
  for await (const chunk of source) {
    const end = chunk.byteLength;
    let pos = 0;
    for (;;) {
      if (headerRead < envelopeHeaderLength) {
        if (pos === end) {
          break;
        }
        if (headerRead === 0 && end - pos >= envelopeHeaderLength) {
          flags = chunk[pos]!;
          length = envelopeLengthAt(chunk, pos);
          pos += envelopeHeaderLength;
          headerRead = envelopeHeaderLength;
        } else {
          const byte = chunk[pos++]!;
          if (headerRead === 0) {
            flags = byte;
          } else {
            length = length * 256 + byte;
          }
          if (++headerRead < envelopeHeaderLength) {
            continue;
          }
        }
        // Checked before anything else is read, so that an oversized message
        // fails at once instead of after the peer has sent all of it.
        if (length > readMaxBytes) {
          throw envelopeTooLarge(length, readMaxBytes);
        }
      }
      const available = end - pos;
      if (received === 0 && available >= length) {
        const data = new Uint8Array(
          chunk.buffer,
          chunk.byteOffset + pos,
          length,
        );
        pos += length;
        headerRead = 0;
        length = 0;
        yield { flags, data };
        continue;
      }
      const take = Math.min(available, length - received);
      if (take > 0) {
        pieces.push(new Uint8Array(chunk.buffer, chunk.byteOffset + pos, take));
        pos += take;
        received += take;
      }
      if (received < length) {
        break;
      }
      const data = envelopeJoin(pieces, length);
      pieces.length = 0;
      received = 0;
      headerRead = 0;
      length = 0;
      yield { flags, data };
    }
  }
  if (headerRead > 0 && headerRead < envelopeHeaderLength) {
    throw envelopeTruncatedHeader(headerRead, truncatedCode);
  }
  if (headerRead === envelopeHeaderLength) {
    throw envelopeTruncated(received, length, truncatedCode);
  }
}

/**
 * The envelope at `offset` of a body held whole (a unary response), as a
 * view of `bytes`, not a copy; the next one starts at `offset + 5 +
 * data.byteLength`. Fails as envelopeRead does on the same bytes:
 * ResourceExhausted for a declared length over `readMaxBytes`,
 * `truncatedCode` when the body ends inside the envelope.
 */
export function envelopeAt(
  bytes: Uint8Array,
  offset: number,
  readMaxBytes: number,
  truncatedCode: Code,
): Envelope {
  const available = bytes.byteLength - offset;
  if (available < envelopeHeaderLength) {
    throw envelopeTruncatedHeader(available, truncatedCode);
  }
  const length = envelopeLengthAt(bytes, offset);
  if (length > readMaxBytes) {
    throw envelopeTooLarge(length, readMaxBytes);
  }
  if (available - envelopeHeaderLength < length) {
    throw envelopeTruncated(
      available - envelopeHeaderLength,
      length,
      truncatedCode,
    );
  }
  return {
    flags: bytes[offset]!,
    // A plain view even of a Buffer, as envelopeRead's.
    data: new Uint8Array(
      bytes.buffer,
      bytes.byteOffset + offset + envelopeHeaderLength,
      length,
    ),
  };
}

/**
 * A watcher of a body that arrives in chunks, for a caller that wants it
 * whole (a unary response) yet must judge its envelopes as they come: each
 * header goes to `onHeader` once its fifth byte is in, and `onHeader` may
 * throw to stop the reading (a second message, say) rather than wait for a
 * body a peer may never end. A declared length over `readMaxBytes` throws
 * ResourceExhausted there and then, as in envelopeRead. Payloads are
 * skipped, not kept: the caller keeps the chunks and parses them with
 * envelopeAt once the body is whole.
 */
export function envelopeWatch(
  readMaxBytes: number,
  onHeader: (flags: number, length: number) => void,
): (chunk: Uint8Array) => void {
  let headerRead = 0;
  let flags = 0;
  let length = 0;
  // Payload bytes still to skip.
  let skip = 0;
  return (chunk) => {
    const end = chunk.byteLength;
    let pos = 0;
    while (pos < end) {
      if (skip > 0) {
        const take = Math.min(skip, end - pos);
        skip -= take;
        pos += take;
        continue;
      }
      if (headerRead === 0 && end - pos >= envelopeHeaderLength) {
        flags = chunk[pos]!;
        length = envelopeLengthAt(chunk, pos);
        pos += envelopeHeaderLength;
      } else {
        // A header split across chunks, a byte at a time.
        const byte = chunk[pos++]!;
        if (headerRead === 0) {
          flags = byte;
          length = 0;
        } else {
          length = length * 256 + byte;
        }
        if (++headerRead < envelopeHeaderLength) {
          continue;
        }
        headerRead = 0;
      }
      if (length > readMaxBytes) {
        throw envelopeTooLarge(length, readMaxBytes);
      }
      skip = length;
      onHeader(flags, length);
    }
  };
}

/** The big-endian 32-bit length of the header at `pos` (unsigned: no `<< 24`). */
function envelopeLengthAt(bytes: Uint8Array, pos: number): number {
  return (
    bytes[pos + 1]! * 0x1000000 +
    ((bytes[pos + 2]! << 16) | (bytes[pos + 3]! << 8) | bytes[pos + 4]!)
  );
}

function envelopeTooLarge(length: number, readMaxBytes: number): ConnectError {
  return new ConnectError(
    `message size ${length} is larger than the receive limit of ${readMaxBytes} bytes`,
    Code.ResourceExhausted,
  );
}

function envelopeTruncatedHeader(
  headerRead: number,
  truncatedCode: Code,
): ConnectError {
  return new ConnectError(
    `protocol error: stream ended inside an envelope header (${headerRead} of ${envelopeHeaderLength} bytes)`,
    truncatedCode,
  );
}

function envelopeTruncated(
  received: number,
  length: number,
  truncatedCode: Code,
): ConnectError {
  return new ConnectError(
    `protocol error: stream ended inside an envelope (${received} of ${length} bytes)`,
    truncatedCode,
  );
}

/**
 * Chunks as one Uint8Array of `length` bytes. Always a copy; a caller that
 * may have one chunk takes a view of it instead.
 */
export function envelopeJoin(
  pieces: readonly Uint8Array[],
  length: number,
): Uint8Array {
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    joined.set(piece, offset);
    offset += piece.byteLength;
  }
  return joined;
}

/**
 * The payload of an envelope, decompressed if its compressed flag is set.
 *
 * `compression` is what the peer declared for the stream (null or undefined
 * for none). A compressed flag without it rejects with
 * `missingCompressionCode`: connect-go uses InvalidArgument, connect-es and
 * grpc-go Internal. An empty payload is returned as is even when flagged, as
 * connect-go does: there is nothing to decompress, and some peers set the flag
 * on every message. Decompression rejects with ResourceExhausted past
 * `readMaxBytes` and InvalidArgument for corrupt data (see Compression).
 */
export async function envelopeDecompress(
  envelope: Envelope,
  compression: Compression | null | undefined,
  readMaxBytes: number,
  missingCompressionCode: Code,
): Promise<Uint8Array> {
  const data = envelope.data;
  if ((envelope.flags & envelopeFlagCompressed) === 0) {
    return data;
  }
  // Even an empty payload: the flag says the peer compresses, which it must
  // not without declaring how.
  if (compression === null || compression === undefined) {
    throw new ConnectError(
      "protocol error: received a compressed message, but no compression was declared for the stream",
      missingCompressionCode,
    );
  }
  return data.byteLength === 0
    ? data
    : compression.decompress(data, readMaxBytes);
}

/**
 * One message as an envelope, compressed when a compression was negotiated
 * and it is large enough. Throws (rather than rejects) a message too large
 * to frame.
 */
export function envelopeEncodeMessage(
  data: Uint8Array,
  compression: Compression | undefined,
  compressMinBytes: number,
): Uint8Array | Promise<Uint8Array> {
  const envelope = envelopeCompress(data, compression, compressMinBytes);
  return envelope instanceof Promise
    ? envelope.then((e) => envelopeEncode(e.flags, e.data))
    : envelopeEncode(envelope.flags, envelope.data);
}

/**
 * One message's payload and flags, compressed when a compression was
 * negotiated and it is large enough; not yet framed. A promise only when it
 * compresses: a stream of uncompressed messages takes no trip through the
 * microtask queue per message.
 */
export function envelopeCompress(
  data: Uint8Array,
  compression: Compression | undefined,
  compressMinBytes: number,
): Envelope | Promise<Envelope> {
  if (compression === undefined || data.byteLength < compressMinBytes) {
    return { flags: 0, data };
  }
  // Promise.resolve: a native promise even from a Compression that returns
  // some other thenable, as callers tell the two results apart with
  // instanceof.
  return Promise.resolve(compression.compress(data)).then((compressed) => ({
    flags: envelopeFlagCompressed,
    data: compressed,
  }));
}
