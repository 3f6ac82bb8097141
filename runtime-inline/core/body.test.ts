import { describe, expect, it } from "vitest";
import {
  bodyDefaultReadMaxBytes,
  bodyFromWebStream,
  bodyToWebStream,
  bodyTooLarge,
  readBody,
} from "./body.ts";
import { Code } from "./code.ts";
import { ConnectError } from "./errors.ts";

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** A source that counts how many chunks were pulled and whether it was stopped. */
function counted(chunks: Uint8Array[]): {
  source: AsyncGenerator<Uint8Array>;
  pulled: () => number;
  finished: () => boolean;
} {
  let pulled = 0;
  let finished = false;
  const source = (async function* () {
    try {
      for (const chunk of chunks) {
        pulled++;
        yield chunk;
      }
    } finally {
      finished = true;
    }
  })();
  return { source, pulled: () => pulled, finished: () => finished };
}

async function* fromChunks(
  ...chunks: Uint8Array[]
): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

async function collect(
  source: AsyncIterable<Uint8Array>,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

describe("readBody", () => {
  it("reads an empty body as zero bytes", async () => {
    const body = await readBody(fromChunks(), 10);
    expect(body).toBeInstanceOf(Uint8Array);
    expect(body.byteLength).toBe(0);
  });

  it("reads a body of empty chunks as zero bytes, even with a limit of 0", async () => {
    const body = await readBody(fromChunks(bytes(), bytes(), bytes()), 0);
    expect(body.byteLength).toBe(0);
  });

  it("shows each chunk to its watch before keeping it, and stops where the watch throws", async () => {
    const pulled: number[] = [];
    async function* body() {
      for (const n of [1, 2, 3]) {
        pulled.push(n);
        yield new Uint8Array(n);
      }
    }
    const seen: number[] = [];
    await expect(
      readBody(body(), 100, (chunk) => {
        seen.push(chunk.byteLength);
        if (chunk.byteLength === 2) throw new Error("second chunk refused");
      }),
    ).rejects.toThrow("second chunk refused");
    expect(seen).toEqual([1, 2]);
    expect(pulled).toEqual([1, 2]);
  });

  it("joins chunks in order", async () => {
    const body = await readBody(
      fromChunks(bytes(1, 2), bytes(), bytes(3), bytes(4, 5, 6)),
      100,
    );
    expect(body).toEqual(bytes(1, 2, 3, 4, 5, 6));
  });

  it("accepts a body of exactly the limit", async () => {
    const body = await readBody(fromChunks(bytes(1, 2), bytes(3, 4)), 4);
    expect(body).toEqual(bytes(1, 2, 3, 4));
  });

  it("fails with ResourceExhausted one byte past the limit", async () => {
    const error = await rejection(
      readBody(fromChunks(bytes(1, 2), bytes(3, 4, 5)), 4),
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toMatchObject({
      code: Code.ResourceExhausted,
      rawMessage: "message larger than the receive limit of 4 bytes",
    });
  });

  it("fails with a limit of 0 on the first non-empty chunk", async () => {
    await expect(
      readBody(fromChunks(bytes(), bytes(0)), 0),
    ).rejects.toMatchObject({
      code: Code.ResourceExhausted,
      rawMessage: "message larger than the receive limit of 0 bytes",
    });
  });

  it("stops pulling the body as soon as it is past the limit", async () => {
    const { source, pulled, finished } = counted([
      bytes(1, 2, 3),
      bytes(4, 5, 6),
      bytes(7, 8, 9),
      bytes(10),
    ]);
    await expect(readBody(source, 5)).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
    expect(pulled()).toBe(2);
    // The loop's early exit returned the source: a producer stops.
    expect(finished()).toBe(true);
  });

  it("returns a single chunk as a plain Uint8Array over the same memory", async () => {
    const backing = new ArrayBuffer(16);
    const chunk = Buffer.from(backing, 4, 3);
    chunk.set([7, 8, 9]);
    const body = await readBody(fromChunks(chunk), 10);
    expect(Buffer.isBuffer(body)).toBe(false);
    expect(Object.getPrototypeOf(body)).toBe(Uint8Array.prototype);
    expect(body.buffer).toBe(backing);
    expect(body.byteOffset).toBe(4);
    expect(body.byteLength).toBe(3);
    expect(Array.from(body)).toEqual([7, 8, 9]);
  });

  it("joins Buffers into a plain Uint8Array", async () => {
    const body = await readBody(
      fromChunks(Buffer.from([1]), Buffer.from([2, 3])),
      10,
    );
    expect(Object.getPrototypeOf(body)).toBe(Uint8Array.prototype);
    expect(Array.from(body)).toEqual([1, 2, 3]);
  });

  it("passes on the body's own error", async () => {
    const failure = new Error("socket hang up");
    const body = (async function* () {
      yield bytes(1);
      throw failure;
    })();
    await expect(readBody(body, 10)).rejects.toBe(failure);
  });

  it("takes Infinity as no limit", async () => {
    const body = await readBody(fromChunks(new Uint8Array(1000)), Infinity);
    expect(body.byteLength).toBe(1000);
  });
});

describe("bodyTooLarge", () => {
  it("is ResourceExhausted naming the limit", () => {
    const error = bodyTooLarge(1234);
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.message).toBe(
      "[resource_exhausted] message larger than the receive limit of 1234 bytes",
    );
  });
});

describe("bodyDefaultReadMaxBytes", () => {
  it("is 4 MiB", () => {
    expect(bodyDefaultReadMaxBytes).toBe(4194304);
  });
});

describe("bodyFromWebStream", () => {
  function trackedStream(chunks: Uint8Array[]): {
    stream: ReadableStream<Uint8Array>;
    cancelled: () => unknown[];
  } {
    const cancelled: unknown[] = [];
    let index = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (index < chunks.length) {
            controller.enqueue(chunks[index++]!);
          } else {
            controller.close();
          }
        },
        cancel(reason) {
          cancelled.push(reason);
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, cancelled: () => cancelled };
  }

  it("yields nothing for a null body", async () => {
    expect(await collect(bodyFromWebStream(null))).toEqual([]);
  });

  it("yields the stream's chunks in order and does not cancel at the end", async () => {
    const { stream, cancelled } = trackedStream([bytes(1), bytes(2, 3)]);
    expect(await collect(bodyFromWebStream(stream))).toEqual([
      bytes(1),
      bytes(2, 3),
    ]);
    expect(cancelled()).toEqual([]);
  });

  it("yields nothing for an empty stream", async () => {
    const { stream, cancelled } = trackedStream([]);
    expect(await collect(bodyFromWebStream(stream))).toEqual([]);
    expect(cancelled()).toEqual([]);
  });

  it("cancels the stream when the loop is left early", async () => {
    const { stream, cancelled } = trackedStream([bytes(1), bytes(2), bytes(3)]);
    const seen: Uint8Array[] = [];
    for await (const chunk of bodyFromWebStream(stream)) {
      seen.push(chunk);
      break;
    }
    expect(seen).toEqual([bytes(1)]);
    expect(cancelled()).toHaveLength(1);
  });

  it("cancels the stream when the consumer throws", async () => {
    const { stream, cancelled } = trackedStream([bytes(1), bytes(2)]);
    const failure = new Error("consumer failed");
    await expect(
      (async () => {
        for await (const _ of bodyFromWebStream(stream)) {
          throw failure;
        }
      })(),
    ).rejects.toBe(failure);
    expect(cancelled()).toHaveLength(1);
  });

  it("throws a failed read's error as it is without readError", async () => {
    const failure = new Error("terminated");
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (pulls++ === 0) {
            controller.enqueue(bytes(1));
          } else {
            controller.error(failure);
          }
        },
      },
      { highWaterMark: 0 },
    );
    const seen: Uint8Array[] = [];
    const error = await rejection(
      (async () => {
        for await (const chunk of bodyFromWebStream(stream)) seen.push(chunk);
      })(),
    );
    expect(error).toBe(failure);
    expect(seen).toEqual([bytes(1)]);
  });

  it("throws what readError makes of a failed read, and calls it once", async () => {
    const failure = new Error("terminated");
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(failure);
      },
    });
    const seenByReadError: unknown[] = [];
    const mapped = new ConnectError("connection lost", Code.Unavailable);
    const error = await rejection(
      collect(
        bodyFromWebStream(stream, (e) => {
          seenByReadError.push(e);
          return mapped;
        }),
      ),
    );
    expect(error).toBe(mapped);
    expect(seenByReadError).toEqual([failure]);
  });

  it("does not pass the consumer's own errors to readError", async () => {
    const { stream } = trackedStream([bytes(1)]);
    const seenByReadError: unknown[] = [];
    const failure = new Error("consumer failed");
    await expect(
      (async () => {
        for await (const _ of bodyFromWebStream(stream, (e) => {
          seenByReadError.push(e);
          return e;
        })) {
          throw failure;
        }
      })(),
    ).rejects.toBe(failure);
    expect(seenByReadError).toEqual([]);
  });
});

describe("bodyToWebStream", () => {
  it("does not pull from the iterable before the stream is read", async () => {
    const { source, pulled } = counted([bytes(1), bytes(2)]);
    const stream = bodyToWebStream(source);
    // Let any eager pull happen.
    await new Promise((resolve) => setImmediate(resolve));
    expect(pulled()).toBe(0);
    const reader = stream.getReader();
    expect(await reader.read()).toEqual({ done: false, value: bytes(1) });
    await new Promise((resolve) => setImmediate(resolve));
    // One read, one chunk pulled: no read-ahead.
    expect(pulled()).toBe(1);
    expect(await reader.read()).toEqual({ done: false, value: bytes(2) });
    expect(await reader.read()).toEqual({ done: true, value: undefined });
  });

  it("closes at once for an empty iterable", async () => {
    const reader = bodyToWebStream(fromChunks()).getReader();
    expect(await reader.read()).toEqual({ done: true, value: undefined });
  });

  it("passes empty chunks through", async () => {
    const reader = bodyToWebStream(fromChunks(bytes(), bytes(9))).getReader();
    expect(await reader.read()).toEqual({ done: false, value: bytes() });
    expect(await reader.read()).toEqual({ done: false, value: bytes(9) });
    expect(await reader.read()).toEqual({ done: true, value: undefined });
  });

  it("stops the producer when the stream is cancelled", async () => {
    const { source, pulled, finished } = counted([
      bytes(1),
      bytes(2),
      bytes(3),
    ]);
    const reader = bodyToWebStream(source).getReader();
    await reader.read();
    expect(finished()).toBe(false);
    await reader.cancel(new Error("not wanted"));
    expect(finished()).toBe(true);
    expect(pulled()).toBe(1);
  });

  it("cancels a plain iterator without return()", async () => {
    let nextCalls = 0;
    const iterable: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          nextCalls++;
          return { done: false, value: bytes(nextCalls) };
        },
      }),
    };
    const reader = bodyToWebStream(iterable).getReader();
    expect(await reader.read()).toEqual({ done: false, value: bytes(1) });
    await expect(reader.cancel()).resolves.toBeUndefined();
    expect(nextCalls).toBe(1);
  });

  it("errors the stream with the iterable's error", async () => {
    const failure = new Error("producer failed");
    const reader = bodyToWebStream(
      (async function* () {
        yield bytes(1);
        throw failure;
      })(),
    ).getReader();
    expect(await reader.read()).toEqual({ done: false, value: bytes(1) });
    await expect(reader.read()).rejects.toBe(failure);
  });

  it("round-trips through bodyFromWebStream, and breaking out stops the producer", async () => {
    const { source, pulled, finished } = counted([
      bytes(1),
      bytes(2),
      bytes(3),
    ]);
    const seen: Uint8Array[] = [];
    for await (const chunk of bodyFromWebStream(bodyToWebStream(source))) {
      seen.push(chunk);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([bytes(1), bytes(2)]);
    expect(pulled()).toBe(2);
    expect(finished()).toBe(true);
  });
});
