import { describe, it, expect } from "vitest";
import { Code } from "./code.ts";
import { compressionGzip } from "../node/compression.ts";
import {
  envelopeAt,
  envelopeDecompress,
  envelopeEncode,
  envelopeFlagCompressed,
  envelopeFlagEndStream,
  envelopeFlagTrailers,
  envelopeRead,
  envelopeWatch,
  type Envelope,
} from "./envelope.ts";
import { ConnectError } from "./errors.ts";

const MiB = 1024 * 1024;

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

function payload(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

async function* fromChunks(
  ...chunks: Uint8Array[]
): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) {
    yield chunk;
  }
}

/** Every byte in a chunk of its own memory. */
function oneByteChunks(data: Uint8Array): Uint8Array[] {
  return Array.from(data, (b) => bytes(b));
}

async function readAll(
  source: AsyncIterable<Uint8Array>,
  readMaxBytes = 4 * MiB,
  truncatedCode: Code = Code.InvalidArgument,
): Promise<Envelope[]> {
  const out: Envelope[] = [];
  for await (const envelope of envelopeRead(
    source,
    readMaxBytes,
    truncatedCode,
  )) {
    out.push(envelope);
  }
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return error as ConnectError;
  }
  throw new Error("expected a rejection");
}

function expectEnvelopes(actual: Envelope[], expected: Envelope[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(actual[i]!.flags).toBe(expected[i]!.flags);
    expect(actual[i]!.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.compare(actual[i]!.data, expected[i]!.data)).toBe(0);
  }
}

/**
 * A source the test feeds by hand and that stays open until ended, counting
 * how often the reader pulled from it.
 */
function openSource(): {
  source: AsyncIterable<Uint8Array>;
  push(chunk: Uint8Array): void;
  end(): void;
  pulls(): number;
  returned(): boolean;
} {
  const queue: (Uint8Array | null)[] = [];
  let waiting: (() => void) | undefined;
  let pulls = 0;
  let returned = false;
  const wake = (): void => {
    waiting?.();
    waiting = undefined;
  };
  return {
    source: {
      [Symbol.asyncIterator]: () => ({
        async next(): Promise<IteratorResult<Uint8Array>> {
          pulls++;
          while (queue.length === 0) {
            await new Promise<void>((resolve) => (waiting = resolve));
          }
          const chunk = queue.shift()!;
          return chunk === null
            ? { done: true, value: undefined }
            : { done: false, value: chunk };
        },
        async return(): Promise<IteratorResult<Uint8Array>> {
          returned = true;
          return { done: true, value: undefined };
        },
      }),
    },
    push(chunk) {
      queue.push(chunk);
      wake();
    },
    end() {
      queue.push(null);
      wake();
    },
    pulls: () => pulls,
    returned: () => returned,
  };
}

/**
 * Resolves to "pending" if the promise has not settled once the microtasks
 * have run and the event loop has turned a few times: everything here is in
 * memory, so what settles at all settles by then, however slow the machine.
 * Counted in turns, never in milliseconds.
 */
async function settledWithin<T>(
  promise: Promise<T>,
  turns = 10,
): Promise<T | "pending"> {
  let settled = false;
  let value: T | undefined;
  let failure: { error: unknown } | undefined;
  promise.then(
    (v) => {
      settled = true;
      value = v;
    },
    (error: unknown) => {
      settled = true;
      failure = { error };
    },
  );
  for (let i = 0; i < turns && !settled; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!settled) return "pending";
  if (failure !== undefined) throw failure.error;
  return value as T;
}

describe("envelope flags", () => {
  it("match the protocols", () => {
    expect(envelopeFlagCompressed).toBe(0b0000_0001);
    expect(envelopeFlagEndStream).toBe(0b0000_0010);
    expect(envelopeFlagTrailers).toBe(0b1000_0000);
  });
});

describe("envelopeEncode", () => {
  it("writes the flag byte, a big-endian length and the payload", () => {
    const data = payload(0x01_02_03);
    const frame = envelopeEncode(0x81, data);
    expect(frame.byteLength).toBe(5 + data.byteLength);
    expect(Array.from(frame.subarray(0, 5))).toEqual([0x81, 0, 1, 2, 3]);
    expect(Buffer.compare(frame.subarray(5), data)).toBe(0);
  });

  it("frames an empty payload as a bare header", () => {
    expect(Array.from(envelopeEncode(envelopeFlagEndStream, bytes()))).toEqual([
      2, 0, 0, 0, 0,
    ]);
  });

  it("does not share memory with the payload", () => {
    const data = payload(10);
    const frame = envelopeEncode(0, data);
    expect(frame.buffer).not.toBe(data.buffer);
    data[0] = data[0]! ^ 0xff;
    expect(frame[5]).not.toBe(data[0]);
  });

  it("rejects a payload the length field cannot describe", () => {
    const huge = { byteLength: 2 ** 32 } as Uint8Array;
    expect(() => envelopeEncode(0, huge)).toThrow(ConnectError);
    try {
      envelopeEncode(0, huge);
    } catch (error) {
      expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
    }
  });
});

describe("envelopeRead", () => {
  const messages: Envelope[] = [
    { flags: 0, data: payload(1) },
    { flags: envelopeFlagCompressed, data: payload(300, 2) },
    { flags: 0, data: bytes() },
    { flags: 0, data: payload(70_000, 3) },
    { flags: envelopeFlagEndStream, data: new TextEncoder().encode("{}") },
  ];
  const wire = concat(...messages.map((m) => envelopeEncode(m.flags, m.data)));

  it("round-trips envelopes from one chunk", async () => {
    expectEnvelopes(await readAll(fromChunks(wire)), messages);
  });

  it("reads nothing from an empty stream", async () => {
    expect(await readAll(fromChunks())).toEqual([]);
    expect(await readAll(fromChunks(bytes(), bytes()))).toEqual([]);
  });

  it("reads messages split across 1-byte chunks", async () => {
    expectEnvelopes(
      await readAll(fromChunks(...oneByteChunks(wire))),
      messages,
    );
  });

  it("reads messages at any split of the stream", async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const chunks: Uint8Array[] = [];
      let rest = wire;
      let x = seed;
      while (rest.byteLength > 0) {
        x = (x * 1103515245 + 12345) >>> 0;
        // Mostly small cuts, sometimes large ones, sometimes empty chunks.
        const size = Math.min(
          rest.byteLength,
          x % 4 === 0 ? x % 100_000 : x % 9,
        );
        chunks.push(rest.slice(0, size));
        rest = rest.subarray(size);
      }
      expectEnvelopes(await readAll(fromChunks(...chunks)), messages);
    }
  });

  it("reads 100 messages from one chunk without copying them", async () => {
    const expected = Array.from({ length: 100 }, (_, i) => ({
      flags: i % 2,
      data: payload(i * 7, i),
    }));
    const chunk = concat(
      ...expected.map((m) => envelopeEncode(m.flags, m.data)),
    );
    const read = await readAll(fromChunks(chunk));
    expectEnvelopes(read, expected);
    for (const envelope of read) {
      expect(envelope.data.buffer).toBe(chunk.buffer);
    }
  });

  it("reads zero-length messages", async () => {
    const empty = { flags: 0, data: bytes() };
    const end = { flags: envelopeFlagEndStream, data: bytes() };
    const frame = envelopeEncode(0, bytes());
    expectEnvelopes(await readAll(fromChunks(frame)), [empty]);
    expectEnvelopes(await readAll(fromChunks(frame, frame, frame)), [
      empty,
      empty,
      empty,
    ]);
    expectEnvelopes(
      await readAll(
        fromChunks(
          concat(frame, envelopeEncode(0, bytes(9)), frame),
          envelopeEncode(envelopeFlagEndStream, bytes()),
        ),
      ),
      [empty, { flags: 0, data: bytes(9) }, empty, end],
    );
  });

  it("yields a message as soon as it is complete", async () => {
    // A bidi peer waits for the answer to a message before it sends the next,
    // so the reader must not wait for more data to hand one over.
    const open = openSource();
    const reader = envelopeRead(open.source, 4 * MiB, Code.InvalidArgument);
    open.push(envelopeEncode(0, bytes()));
    const first = await settledWithin(reader.next());
    expect(first).not.toBe("pending");
    expect((first as IteratorResult<Envelope>).value?.data.byteLength).toBe(0);

    const frame = envelopeEncode(0, payload(10));
    open.push(frame.subarray(0, 5));
    const second = reader.next();
    expect(await settledWithin(second)).toBe("pending");
    open.push(frame.subarray(5));
    expect(((await second) as IteratorResult<Envelope>).value?.data).toEqual(
      payload(10),
    );
    open.end();
    expect((await reader.next()).done).toBe(true);
  });

  it("yields views of the chunk for payloads that lie inside it", async () => {
    const data = payload(1000);
    const outer = new Uint8Array(2000);
    outer.set(envelopeEncode(0, data), 100);
    const chunk = outer.subarray(100, 1105);
    const [envelope] = await readAll(fromChunks(chunk));
    expect(envelope!.data.buffer).toBe(chunk.buffer);
    expect(envelope!.data.byteOffset).toBe(105);
    expect(Buffer.compare(envelope!.data, data)).toBe(0);
  });

  it("yields plain Uint8Arrays for Buffer chunks", async () => {
    const chunk = Buffer.from(envelopeEncode(0, payload(20)));
    const [envelope] = await readAll(fromChunks(chunk));
    expect(envelope!.data.buffer).toBe(chunk.buffer);
    expect(Object.getPrototypeOf(envelope!.data)).toBe(Uint8Array.prototype);
  });

  it("joins a payload split across chunks into new memory", async () => {
    const data = payload(100);
    const frame = envelopeEncode(0, data);
    const first = frame.slice(0, 50);
    const [envelope] = await readAll(fromChunks(first, frame.slice(50)));
    expect(envelope!.data.buffer).not.toBe(first.buffer);
    expect(Buffer.compare(envelope!.data, data)).toBe(0);
  });

  it("accepts a payload of exactly readMaxBytes", async () => {
    const data = payload(1024);
    const frame = envelopeEncode(0, data);
    expectEnvelopes(await readAll(fromChunks(frame), 1024), [
      { flags: 0, data },
    ]);
    expectEnvelopes(
      await readAll(
        fromChunks(frame.slice(0, 3), frame.slice(3, 600), frame.slice(600)),
        1024,
      ),
      [{ flags: 0, data }],
    );
    expectEnvelopes(await readAll(fromChunks(envelopeEncode(0, bytes())), 0), [
      { flags: 0, data: bytes() },
    ]);
  });

  it("rejects a payload of readMaxBytes + 1 with ResourceExhausted", async () => {
    const frame = envelopeEncode(0, payload(1025));
    const error = await rejection(readAll(fromChunks(frame), 1024));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toContain("1025");
    expect(error.rawMessage).toContain("1024");
    const split = await rejection(
      readAll(fromChunks(...oneByteChunks(frame)), 1024),
    );
    expect(split.code).toBe(Code.ResourceExhausted);
  });

  it("rejects an oversized declared length at once, while the stream is open", async () => {
    const open = openSource();
    const reader = envelopeRead(open.source, 4 * MiB, Code.InvalidArgument);
    open.push(bytes(0, 0xff, 0xff, 0xff, 0xff));
    const result = await settledWithin(reader.next().catch((e: unknown) => e));
    expect(result).toBeInstanceOf(ConnectError);
    expect((result as ConnectError).code).toBe(Code.ResourceExhausted);
    // The header was the only chunk pulled: no payload was waited for.
    expect(open.pulls()).toBe(1);
    // Leaving the loop releases the source.
    expect(open.returned()).toBe(true);
  });

  it("holds what the peer sent, not what it declared", async () => {
    // 256 MiB declared and allowed, one byte sent: a buffer of the declared
    // size would show in arrayBuffers.
    const declared = 256 * MiB;
    const open = openSource();
    const reader = envelopeRead(open.source, declared, Code.InvalidArgument);
    const before = process.memoryUsage().arrayBuffers;
    open.push(bytes(0, 0x10, 0, 0, 0, 42));
    const next = reader.next();
    expect(await settledWithin(next)).toBe("pending");
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(declared / 4);
    open.end();
    const error = await rejection(next);
    expect(error.code).toBe(Code.InvalidArgument);
  });

  describe("at the end of a stream inside an envelope", () => {
    const frame = envelopeEncode(0, payload(10));

    for (const code of [Code.InvalidArgument, Code.Internal]) {
      it(`rejects a partial header with code ${code}`, async () => {
        const error = await rejection(
          readAll(fromChunks(frame, frame.subarray(0, 3)), 4 * MiB, code),
        );
        expect(error.code).toBe(code);
        const single = await rejection(
          readAll(fromChunks(bytes(0)), 4 * MiB, code),
        );
        expect(single.code).toBe(code);
      });

      it(`rejects a partial payload with code ${code}`, async () => {
        const error = await rejection(
          readAll(fromChunks(frame, frame.subarray(0, 9)), 4 * MiB, code),
        );
        expect(error.code).toBe(code);
        expect(error.rawMessage).toContain("4 of 10");
        const headerOnly = await rejection(
          readAll(fromChunks(frame.subarray(0, 5)), 4 * MiB, code),
        );
        expect(headerOnly.code).toBe(code);
      });
    }

    it("yields the complete envelopes before rejecting", async () => {
      const seen: Envelope[] = [];
      const error = await rejection(
        (async () => {
          for await (const envelope of envelopeRead(
            fromChunks(frame, frame.subarray(0, 7)),
            4 * MiB,
            Code.InvalidArgument,
          )) {
            seen.push(envelope);
          }
        })(),
      );
      expect(error.code).toBe(Code.InvalidArgument);
      expect(seen.length).toBe(1);
    });
  });

  it("releases the source when the consumer stops early", async () => {
    let finished = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      try {
        yield envelopeEncode(0, bytes(1));
        yield envelopeEncode(0, bytes(2));
      } finally {
        finished = true;
      }
    }
    for await (const envelope of envelopeRead(
      source(),
      4 * MiB,
      Code.InvalidArgument,
    )) {
      expect(envelope.data).toEqual(bytes(1));
      break;
    }
    expect(finished).toBe(true);
  });
});

/** Every envelope of a whole body, with envelopeAt. */
function parseWhole(
  body: Uint8Array,
  readMaxBytes = 4 * MiB,
  truncatedCode: Code = Code.InvalidArgument,
): Envelope[] {
  const out: Envelope[] = [];
  for (let offset = 0; offset < body.byteLength;) {
    const envelope = envelopeAt(body, offset, readMaxBytes, truncatedCode);
    out.push(envelope);
    offset += 5 + envelope.data.byteLength;
  }
  return out;
}

function thrown(f: () => unknown): ConnectError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return error as ConnectError;
  }
  throw new Error("expected a throw");
}

describe("envelopeAt", () => {
  it("parses the envelopes of a whole body as envelopeRead does, empty ones included", async () => {
    const body = concat(
      envelopeEncode(0, payload(98)),
      envelopeEncode(envelopeFlagCompressed, bytes()),
      envelopeEncode(envelopeFlagTrailers, payload(300, 2)),
    );
    expectEnvelopes(parseWhole(body), await readAll(fromChunks(body)));
    expect(parseWhole(body).map((e) => e.flags)).toEqual([
      0,
      envelopeFlagCompressed,
      envelopeFlagTrailers,
    ]);
  });

  it("returns a plain view of the body at its offset, not a copy", () => {
    const buffer = Buffer.concat([
      Buffer.from([9, 9, 9]),
      envelopeEncode(0, bytes(1, 2, 3)),
    ]);
    const body = buffer.subarray(3);
    const envelope = envelopeAt(body, 0, 4 * MiB, Code.InvalidArgument);
    expect(envelope.data).toEqual(bytes(1, 2, 3));
    expect(Buffer.isBuffer(envelope.data)).toBe(false);
    expect(envelope.data.buffer).toBe(buffer.buffer);
    expect(envelope.data.byteOffset).toBe(body.byteOffset + 5);
  });

  it("reads a length with the top bit set as unsigned", () => {
    const error = thrown(() =>
      envelopeAt(bytes(0, 0x80, 0, 0, 0), 0, 4 * MiB, Code.InvalidArgument),
    );
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toContain(String(0x80000000));
  });

  it("rejects a declared length over readMaxBytes before looking for its payload", () => {
    const error = thrown(() =>
      envelopeAt(bytes(0, 0, 0, 0, 11), 0, 10, Code.InvalidArgument),
    );
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toMatch(/receive limit of 10 bytes/);
    expect(parseWhole(envelopeEncode(0, payload(10)), 10)).toHaveLength(1);
  });

  for (const code of [Code.InvalidArgument, Code.Internal]) {
    it(`rejects a body that ends inside a header or a payload with code ${code}, as envelopeRead`, async () => {
      const frame = envelopeEncode(0, payload(10));
      for (const body of [
        concat(frame, frame.subarray(0, 3)),
        concat(frame, frame.subarray(0, 9)),
        frame.subarray(0, 5),
      ]) {
        const error = thrown(() => parseWhole(body, 4 * MiB, code));
        const streamed = await rejection(
          readAll(fromChunks(body), 4 * MiB, code),
        );
        expect(error.code).toBe(code);
        expect(error.rawMessage).toBe(streamed.rawMessage);
      }
    });
  }
});

describe("envelopeWatch", () => {
  const body = concat(
    envelopeEncode(0, payload(98)),
    envelopeEncode(envelopeFlagCompressed, bytes()),
    envelopeEncode(envelopeFlagTrailers, payload(20, 3)),
  );
  const expected = [
    [0, 98],
    [envelopeFlagCompressed, 0],
    [envelopeFlagTrailers, 20],
  ];

  function watchAll(
    chunks: readonly Uint8Array[],
    readMaxBytes = 4 * MiB,
  ): number[][] {
    const seen: number[][] = [];
    const watch = envelopeWatch(readMaxBytes, (flags, length) =>
      seen.push([flags, length]),
    );
    for (const chunk of chunks) watch(chunk);
    return seen;
  }

  it("sees every header of a body in one chunk", () => {
    expect(watchAll([body])).toEqual(expected);
  });

  it("sees every header of a body in 1-byte chunks, headers split included", () => {
    expect(watchAll(oneByteChunks(body))).toEqual(expected);
  });

  it("sees a header as soon as its fifth byte is in, before its payload", () => {
    expect(watchAll([body.subarray(0, 5)])).toEqual([[0, 98]]);
    expect(watchAll([body.subarray(0, 4)])).toEqual([]);
  });

  it("stops where onHeader throws", () => {
    const watch = envelopeWatch(4 * MiB, (flags) => {
      if (flags === envelopeFlagTrailers) {
        throw new ConnectError("no trailers", Code.Internal);
      }
    });
    expect(thrown(() => watch(body)).rawMessage).toBe("no trailers");
  });

  it("throws ResourceExhausted at a header declaring more than readMaxBytes, as envelopeRead", async () => {
    const header = bytes(0, 0, 0, 0, 99);
    const error = thrown(() => watchAll([header], 98));
    expect(error.code).toBe(Code.ResourceExhausted);
    const streamed = await rejection(
      readAll(fromChunks(header), 98, Code.Internal),
    );
    expect(error.rawMessage).toBe(streamed.rawMessage);
    expect(watchAll([body], 98)).toEqual(expected);
  });
});

describe("envelopeDecompress", () => {
  const data = new TextEncoder().encode("hello hello hello hello hello");

  it("returns an uncompressed payload as it is", async () => {
    const envelope = { flags: 0, data };
    expect(
      await envelopeDecompress(
        envelope,
        compressionGzip,
        4 * MiB,
        Code.Internal,
      ),
    ).toBe(data);
    expect(
      await envelopeDecompress(envelope, null, 4 * MiB, Code.Internal),
    ).toBe(data);
  });

  it("decompresses a gzip payload read from the wire", async () => {
    const compressed = await compressionGzip.compress(data);
    const wire = concat(
      envelopeEncode(envelopeFlagCompressed, compressed),
      envelopeEncode(
        envelopeFlagCompressed | envelopeFlagEndStream,
        compressed,
      ),
    );
    const read = await readAll(fromChunks(...oneByteChunks(wire)));
    expect(read.length).toBe(2);
    for (const envelope of read) {
      const out = await envelopeDecompress(
        envelope,
        compressionGzip,
        4 * MiB,
        Code.Internal,
      );
      expect(Buffer.compare(out, data)).toBe(0);
    }
  });

  for (const code of [Code.InvalidArgument, Code.Internal]) {
    it(`rejects a compressed flag without compression with code ${code}`, async () => {
      const compressed = await compressionGzip.compress(data);
      const envelope = { flags: envelopeFlagCompressed, data: compressed };
      for (const none of [null, undefined]) {
        const error = await rejection(
          envelopeDecompress(envelope, none, 4 * MiB, code),
        );
        expect(error.code).toBe(code);
      }
    });
  }

  it("returns an empty flagged payload as it is, when a compression is declared", async () => {
    const empty = bytes();
    const envelope = { flags: envelopeFlagCompressed, data: empty };
    expect(
      await envelopeDecompress(
        envelope,
        compressionGzip,
        4 * MiB,
        Code.Internal,
      ),
    ).toBe(empty);
  });

  it("rejects even an empty flagged payload when no compression is declared", async () => {
    const envelope = { flags: envelopeFlagCompressed, data: bytes() };
    await expect(
      envelopeDecompress(envelope, null, 4 * MiB, Code.Internal),
    ).rejects.toMatchObject({ code: Code.Internal });
  });

  it("applies readMaxBytes to the decompressed size", async () => {
    const big = new Uint8Array(64 * 1024);
    const compressed = await compressionGzip.compress(big);
    const envelope = { flags: envelopeFlagCompressed, data: compressed };
    expect(compressed.byteLength).toBeLessThan(1024);
    const error = await rejection(
      envelopeDecompress(envelope, compressionGzip, 1024, Code.Internal),
    );
    expect(error.code).toBe(Code.ResourceExhausted);
    const out = await envelopeDecompress(
      envelope,
      compressionGzip,
      big.byteLength,
      Code.Internal,
    );
    expect(out.byteLength).toBe(big.byteLength);
  });

  it("rejects corrupt data with InvalidArgument", async () => {
    const envelope = { flags: envelopeFlagCompressed, data: bytes(1, 2, 3) };
    const error = await rejection(
      envelopeDecompress(envelope, compressionGzip, 4 * MiB, Code.Internal),
    );
    expect(error.code).toBe(Code.InvalidArgument);
  });
});
