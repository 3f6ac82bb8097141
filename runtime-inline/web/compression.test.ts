import { randomBytes } from "node:crypto";
import { describe, it, expect, vi } from "vitest";
import { Code } from "../core/code.ts";
import { compressionGzip } from "../node/compression.ts";
import { webCompressionDefaults, webCompressionGzip } from "./compression.ts";
import { ConnectError } from "../core/errors.ts";

function compressible(size: number): Uint8Array {
  const text = new TextEncoder().encode(
    '{"id":12345,"name":"some user","tags":["a","b","c"]},',
  );
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = text[i % text.length]!;
  }
  return out;
}

/** toEqual walks a 1 MiB array element by element, which takes seconds. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.compare(actual, expected)).toBe(0);
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

const MiB = 1024 * 1024;

describe("webCompressionGzip", () => {
  it("is named gzip", () => {
    expect(webCompressionGzip.name).toBe("gzip");
  });

  it.each([0, 1, 100, MiB])("round-trips %i bytes", async (size) => {
    const data = compressible(size);
    const compressed = await webCompressionGzip.compress(data);
    expect([compressed[0], compressed[1]]).toEqual([0x1f, 0x8b]);
    if (size === MiB) {
      expect(compressed.byteLength).toBeLessThan(size / 10);
    }
    expectBytes(await webCompressionGzip.decompress(compressed, size), data);
  });

  it("round-trips random (incompressible) data", async () => {
    const data = new Uint8Array(randomBytes(256 * 1024));
    const restored = await webCompressionGzip.decompress(
      await webCompressionGzip.compress(data),
      data.byteLength,
    );
    expectBytes(restored, data);
  });

  it.each([0, 100, MiB])(
    "decompresses %i bytes compressed by compressionGzip",
    async (size) => {
      const data = compressible(size);
      const compressed = await compressionGzip.compress(data);
      expectBytes(await webCompressionGzip.decompress(compressed, size), data);
    },
  );

  it.each([0, 100, MiB])(
    "compresses %i bytes that compressionGzip decompresses",
    async (size) => {
      const data = compressible(size);
      const compressed = await webCompressionGzip.compress(data);
      expectBytes(await compressionGzip.decompress(compressed, size), data);
    },
  );

  it("rejects output past the limit with ResourceExhausted", async () => {
    const compressed = await compressionGzip.compress(new Uint8Array(10 * MiB));
    const err = await rejection(webCompressionGzip.decompress(compressed, MiB));
    expect(err.code === Code.ResourceExhausted).toBe(true);
    expect(err.rawMessage).toContain(String(MiB));
  });

  it("accepts output exactly at the limit and rejects one byte over", async () => {
    const data = compressible(1000);
    const compressed = await webCompressionGzip.compress(data);
    expectBytes(await webCompressionGzip.decompress(compressed, 1000), data);
    const err = await rejection(webCompressionGzip.decompress(compressed, 999));
    expect(err.code).toBe(Code.ResourceExhausted);
  });

  it("with a limit of 0 accepts empty output and rejects one byte", async () => {
    const empty = await webCompressionGzip.compress(new Uint8Array(0));
    expectBytes(
      await webCompressionGzip.decompress(empty, 0),
      new Uint8Array(0),
    );
    const one = await webCompressionGzip.compress(new Uint8Array([42]));
    const err = await rejection(webCompressionGzip.decompress(one, 0));
    expect(err.code).toBe(Code.ResourceExhausted);
  });

  it("stops early on a gzip bomb rather than decompressing it all", async () => {
    // 1 GiB of zeros compresses to about 1 MiB; decompressing it whole would
    // take seconds and a gigabyte of memory.
    const chunk = await compressionGzip.compress(new Uint8Array(64 * MiB));
    // Concatenated gzip members are one valid gzip stream.
    const bomb = new Uint8Array(chunk.byteLength * 16);
    for (let i = 0; i < 16; i++) bomb.set(chunk, i * chunk.byteLength);
    // What the decompressor is fed and what it produces, counted on its way
    // in and out: "early" is in bytes, not in time.
    const Original = globalThis.DecompressionStream;
    let fed = 0;
    let produced = 0;
    class Counting {
      readonly writable: WritableStream<BufferSource>;
      readonly readable: ReadableStream<Uint8Array>;
      constructor(format: CompressionFormat) {
        const inner = new Original(format);
        const count = (add: (n: number) => void) =>
          new TransformStream<Uint8Array, Uint8Array>({
            transform(data, controller) {
              add(data.byteLength);
              controller.enqueue(data);
            },
          });
        const input = count((n) => (fed += n));
        input.readable
          .pipeTo(inner.writable as WritableStream<Uint8Array>)
          .catch(() => {});
        this.writable = input.writable as WritableStream<BufferSource>;
        this.readable = inner.readable.pipeThrough(
          count((n) => (produced += n)),
        );
      }
    }
    vi.stubGlobal("DecompressionStream", Counting);
    try {
      const err = await rejection(webCompressionGzip.decompress(bomb, MiB));
      expect(err.code).toBe(Code.ResourceExhausted);
    } finally {
      vi.unstubAllGlobals();
    }
    // Past the limit and no further than the few MiB a handful of input
    // slices expand to (gzip expands at most about 1000:1), of the GiB the
    // whole bomb would make; and most of the bomb never fed in.
    expect(produced).toBeGreaterThan(MiB);
    expect(produced).toBeLessThan(8 * MiB);
    expect(fed).toBeLessThan(bomb.byteLength / 4);
  });

  it("rejects garbage with InvalidArgument naming the encoding", async () => {
    const garbage = new TextEncoder().encode(
      "this is definitely not compressed data, just some text",
    );
    const err = await rejection(webCompressionGzip.decompress(garbage, MiB));
    expect(err.code === Code.InvalidArgument).toBe(true);
    expect(err.rawMessage).toContain("gzip");
  });

  it("rejects truncated data with InvalidArgument", async () => {
    const compressed = await webCompressionGzip.compress(compressible(10_000));
    const err = await rejection(
      webCompressionGzip.decompress(
        compressed.subarray(0, compressed.length - 4),
        MiB,
      ),
    );
    expect(err.code).toBe(Code.InvalidArgument);
  });

  it("rejects empty input with InvalidArgument", async () => {
    const err = await rejection(
      webCompressionGzip.decompress(new Uint8Array(0), MiB),
    );
    expect(err.code).toBe(Code.InvalidArgument);
  });

  it("reads a view into a larger buffer correctly", async () => {
    const data = compressible(3000);
    const compressed = await webCompressionGzip.compress(data);
    const padded = new Uint8Array(compressed.byteLength + 20);
    padded.set(compressed, 10);
    const view = padded.subarray(10, 10 + compressed.byteLength);
    expectBytes(await webCompressionGzip.decompress(view, 3000), data);
  });

  it("accepts data backed by a SharedArrayBuffer", async () => {
    const data = compressible(2000);
    const shared = new Uint8Array(new SharedArrayBuffer(data.byteLength));
    shared.set(data);
    const compressed = await webCompressionGzip.compress(shared);
    expectBytes(await compressionGzip.decompress(compressed, 2000), data);
  });
});

describe("webCompressionDefaults", () => {
  it("is gzip where CompressionStream exists", () => {
    expect(typeof CompressionStream).toBe("function");
    expect(webCompressionDefaults()).toEqual([webCompressionGzip]);
  });

  it("returns a new array each call", () => {
    webCompressionDefaults().pop();
    expect(webCompressionDefaults()).toHaveLength(1);
  });
});
