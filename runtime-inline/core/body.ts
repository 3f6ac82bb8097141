import { Code } from "./code.ts";
import { ConnectError } from "./errors.ts";

/**
 * Reads a body to the end, failing with ResourceExhausted as soon as it grows
 * past `maxBytes`, so that an oversized body is never held in memory whole.
 * `watch` sees each chunk as it arrives and may throw to stop reading: a
 * gRPC unary call judges each envelope's header there.
 */
export async function readBody(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
  watch?: (chunk: Uint8Array) => void,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    watch?.(chunk);
    length += chunk.byteLength;
    if (length > maxBytes) {
      throw bodyTooLarge(maxBytes);
    }
    chunks.push(chunk);
  }
  if (chunks.length === 1) {
    // A plain view, not the chunk: Node streams yield Buffers, which would
    // otherwise end up as the bytes fields of decoded messages.
    const only = chunks[0]!;
    return new Uint8Array(only.buffer, only.byteOffset, only.byteLength);
  }
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

export function bodyTooLarge(maxBytes: number): ConnectError {
  return new ConnectError(
    `message larger than the receive limit of ${maxBytes} bytes`,
    Code.ResourceExhausted,
  );
}

/** The receive limit when none is configured: 4 MiB, as in gRPC and connect-go. */
export const bodyDefaultReadMaxBytes = 4 * 1024 * 1024;

/**
 * A web stream as an async iterable (not every fetch runtime makes
 * ReadableStream iterable); leaving the loop early cancels the stream, which
 * stops a download or upload that is no longer wanted. A failed read throws
 * what `readError` makes of its error (the fetch client: the connection's
 * loss as Unavailable).
 */
export async function* bodyFromWebStream(
  body: ReadableStream<Uint8Array> | null,
  readError?: (error: unknown) => unknown,
): AsyncGenerator<Uint8Array> {
  if (body === null) return;
  const reader = body.getReader();
  let done = false;
  try {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (e) {
        done = true; // an errored stream has nothing to cancel
        throw readError === undefined ? e : readError(e);
      }
      if (result.done) {
        done = true;
        return;
      }
      yield result.value;
    }
  } finally {
    if (!done) reader.cancel().catch(() => {});
  }
}

/**
 * An async iterable as a web stream that pulls one chunk at a time, so the
 * consumer's pace holds back the producer; cancelling stops the producer.
 */
export function bodyToWebStream(
  body: AsyncIterable<Uint8Array>,
): ReadableStream<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const result = await iterator.next();
        if (result.done === true) {
          controller.close();
        } else {
          controller.enqueue(result.value);
        }
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}
