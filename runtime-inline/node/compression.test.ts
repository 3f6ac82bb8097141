import { randomBytes } from "node:crypto";
import { describe, it, expect } from "vitest";
import { Code } from "../core/code.ts";
import type { Compression } from "../core/compression.ts";
import { ConnectError } from "../core/errors.ts";
import {
  compressionBrotli,
  compressionDefaults,
  compressionDeflate,
  compressionGzip,
  compressionZstd,
} from "./compression.ts";

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

const all: [string, Compression | undefined][] = [
  ["gzip", compressionGzip],
  ["br", compressionBrotli],
  ["zstd", compressionZstd],
  ["deflate", compressionDeflate],
];

describe("compressionZstd", () => {
  it("is available on Node 24", () => {
    expect(compressionZstd).toBeDefined();
    expect(compressionZstd?.name).toBe("zstd");
  });
});

describe.each(all)("%s", (name, maybeCompression) => {
  const compression = maybeCompression!;

  it("has its wire name", () => {
    expect(compression.name).toBe(name);
  });

  // 16 KiB and under are compressed on the event loop, larger on the
  // thread pool: both sides of the line.
  it.each([0, 1, 100, 16 * 1024, 16 * 1024 + 1, MiB])(
    "round-trips %i bytes",
    async (size) => {
      const data = compressible(size);
      const compressed = await compression.compress(data);
      expect(compressed).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(compressed)).toBe(false);
      if (size === MiB) {
        expect(compressed.byteLength).toBeLessThan(size / 10);
      }
      const restored = await compression.decompress(compressed, size);
      expect(Buffer.isBuffer(restored)).toBe(false);
      expectBytes(restored, data);
    },
  );

  it("round-trips random (incompressible) data", async () => {
    const data = new Uint8Array(randomBytes(64 * 1024));
    const restored = await compression.decompress(
      await compression.compress(data),
      data.byteLength,
    );
    expectBytes(restored, data);
  });

  it("rejects output past the limit with ResourceExhausted", async () => {
    const compressed = await compression.compress(new Uint8Array(10 * MiB));
    expect(compressed.byteLength).toBeLessThan(MiB);
    const err = await rejection(compression.decompress(compressed, MiB));
    expect(err.code === Code.ResourceExhausted).toBe(true);
    expect(err.rawMessage).toContain(String(MiB));
  });

  it("accepts output exactly at the limit and rejects one byte over", async () => {
    const data = compressible(1000);
    const compressed = await compression.compress(data);
    expectBytes(await compression.decompress(compressed, 1000), data);
    const err = await rejection(compression.decompress(compressed, 999));
    expect(err.code).toBe(Code.ResourceExhausted);
  });

  it("with a limit of 0 accepts empty output and rejects one byte", async () => {
    const empty = await compression.compress(new Uint8Array(0));
    expectBytes(await compression.decompress(empty, 0), new Uint8Array(0));
    const one = await compression.compress(new Uint8Array([42]));
    const err = await rejection(compression.decompress(one, 0));
    expect(err.code).toBe(Code.ResourceExhausted);
  });

  it("clamps a limit above the largest Buffer", async () => {
    const data = compressible(5000);
    const compressed = await compression.compress(data);
    expectBytes(await compression.decompress(compressed, Infinity), data);
    expectBytes(
      await compression.decompress(compressed, Number.MAX_VALUE),
      data,
    );
  });

  it("rejects garbage with InvalidArgument naming the encoding", async () => {
    const garbage = new TextEncoder().encode(
      "this is definitely not compressed data, just some text",
    );
    const err = await rejection(compression.decompress(garbage, MiB));
    expect(err.code === Code.InvalidArgument).toBe(true);
    expect(err.rawMessage).toContain(name);
  });

  it("rejects truncated data with InvalidArgument", async () => {
    const compressed = await compression.compress(compressible(10_000));
    const err = await rejection(
      compression.decompress(
        compressed.subarray(0, compressed.length - 4),
        MiB,
      ),
    );
    expect(err.code).toBe(Code.InvalidArgument);
  });

  it("rejects empty input with InvalidArgument", async () => {
    const err = await rejection(compression.decompress(new Uint8Array(0), MiB));
    expect(err.code).toBe(Code.InvalidArgument);
  });

  it("reads a view into a larger buffer correctly", async () => {
    const data = compressible(3000);
    const compressed = await compression.compress(data);
    const padded = new Uint8Array(compressed.byteLength + 20);
    padded.set(compressed, 10);
    const view = padded.subarray(10, 10 + compressed.byteLength);
    expectBytes(await compression.decompress(view, 3000), data);
    expect(await compression.compress(padded.subarray(5, 15))).toBeInstanceOf(
      Uint8Array,
    );
  });
});

describe("compressionDeflate", () => {
  it("uses the zlib format, as HTTP deflate means", async () => {
    const compressed = await compressionDeflate.compress(compressible(100));
    // zlib header: CM=8 (deflate), and the header checksum is a multiple of 31.
    expect(compressed[0]! & 0x0f).toBe(8);
    expect((compressed[0]! * 256 + compressed[1]!) % 31).toBe(0);
  });
});

describe("compressionGzip", () => {
  it("produces gzip (magic 1f 8b)", async () => {
    const compressed = await compressionGzip.compress(compressible(100));
    expect([compressed[0], compressed[1]]).toEqual([0x1f, 0x8b]);
  });
});

describe("compressionDefaults", () => {
  it("lists gzip, br, zstd, then deflate (for gRPC clients)", () => {
    expect(compressionDefaults().map((c) => c.name)).toEqual([
      "gzip",
      "br",
      "zstd",
      "deflate",
    ]);
  });

  it("returns a new array each call", () => {
    const first = compressionDefaults();
    first.pop();
    expect(compressionDefaults()).toHaveLength(4);
  });
});

describe.skipIf(compressionZstd === undefined)("zstd window limit", () => {
  // A frame whose header asks for a 128 MiB window (zstd's own decoder
  // default limit), streamed so that the encoder does not shrink the window
  // to the content's size: the decoder would allocate it for 2 KiB of data.
  async function largeWindowFrame(): Promise<Uint8Array> {
    const zlib = await import("node:zlib");
    const encoder = zlib.createZstdCompress({
      params: { [zlib.constants.ZSTD_c_windowLog]: 27 },
    });
    const chunks: Buffer[] = [];
    encoder.on("data", (c: Buffer) => chunks.push(c));
    const done = new Promise((resolve) => encoder.on("end", resolve));
    encoder.write(Buffer.alloc(1024, 1));
    encoder.end(Buffer.alloc(1024, 2));
    await done;
    return Buffer.concat(chunks);
  }

  it("refuses a window larger than 8 MiB (RFC 9659) or the limit, with ResourceExhausted", async () => {
    const frame = await largeWindowFrame();
    const error = await compressionZstd!.decompress(frame, 4096).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
  });

  it("still accepts a window of the limit's size when the limit is larger", async () => {
    const frame = await largeWindowFrame();
    const data = await compressionZstd!.decompress(frame, 128 * 1024 * 1024);
    expect(data.byteLength).toBe(2048);
  });
});
