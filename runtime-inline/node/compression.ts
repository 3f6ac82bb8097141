// A namespace import, not named imports: a named import of zstdCompress would
// fail to link on Node versions without zstd, and the generated file must
// still load there.
import * as zlib from "node:zlib";
import { kMaxLength } from "node:buffer";
import { Code } from "../core/code.ts";
import type { Compression } from "../core/compression.ts";
import { ConnectError } from "../core/errors.ts";

type CompressionCallback = (error: Error | null, result: Buffer) => void;

/**
 * Messages up to this size are compressed on the event loop, with zlib's
 * Sync form: for a small message the thread pool's round trip (queue the
 * work, wake a worker, wake the loop again) costs more than the compression,
 * and a stream waiting on it sends one message per turn of the loop, a
 * frame and a write each. What blocks the loop is mostly zlib setting up
 * its state for the call, some tens of microseconds for gzip.
 */
const compressionSyncMaxBytes = 16 * 1024;

/**
 * Builds a Compression from zlib's callback and Sync functions. The callback
 * forms run on the thread pool, for messages larger than
 * compressionSyncMaxBytes and every decompression (its output size is not
 * known up front); the Sync forms would block the event loop for the whole
 * of a large message.
 */
function compressionFromZlib(
  name: string,
  compress: (data: Uint8Array, callback: CompressionCallback) => void,
  compressSync: (data: Uint8Array) => Buffer,
  decompress: (
    data: Uint8Array,
    options: { maxOutputLength: number },
    callback: CompressionCallback,
  ) => void,
): Compression {
  return {
    name,
    compress(data) {
      const failed = (error: Error) =>
        new ConnectError(
          `${name} compression failed: ${error.message}`,
          Code.Internal,
          { cause: error },
        );
      if (data.byteLength <= compressionSyncMaxBytes) {
        try {
          return Promise.resolve(compressionView(compressSync(data)));
        } catch (e) {
          return Promise.reject(
            failed(e instanceof Error ? e : new Error(String(e))),
          );
        }
      }
      return new Promise((resolve, reject) => {
        compress(data, (error, result) => {
          if (error !== null) {
            reject(failed(error));
            return;
          }
          resolve(compressionView(result));
        });
      });
    },
    decompress(data, readMaxBytes) {
      return new Promise((resolve, reject) => {
        decompress(
          data,
          { maxOutputLength: compressionMaxOutputLength(readMaxBytes) },
          (error, result) => {
            if (error !== null) {
              reject(compressionDecompressError(name, error, readMaxBytes));
              return;
            }
            // maxOutputLength cannot be below 1, so a limit of 0 still lets one
            // byte through; the limit itself is checked here.
            if (result.byteLength > readMaxBytes) {
              reject(compressionTooLarge(readMaxBytes));
              return;
            }
            resolve(compressionView(result));
          },
        );
      });
    },
  };
}

/** zlib rejects a maxOutputLength below 1 or above the largest Buffer. */
function compressionMaxOutputLength(readMaxBytes: number): number {
  if (!(readMaxBytes >= 1)) {
    return 1;
  }
  return Math.min(Math.floor(readMaxBytes), kMaxLength);
}

/**
 * A plain Uint8Array over the Buffer's memory: callers compare and pass bytes
 * around as Uint8Array, and Buffer's differing methods (slice, toString)
 * should not leak out.
 */
function compressionView(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function compressionTooLarge(readMaxBytes: number): ConnectError {
  return new ConnectError(
    `message larger than configured max ${readMaxBytes} bytes`,
    Code.ResourceExhausted,
  );
}

function compressionDecompressError(
  name: string,
  error: Error,
  readMaxBytes: number,
): ConnectError {
  const code = (error as { code?: unknown }).code;
  if (code === "ERR_BUFFER_TOO_LARGE") {
    return compressionTooLarge(readMaxBytes);
  }
  if (code === "ZSTD_error_frameParameter_windowTooLarge") {
    return new ConnectError(
      `${name} window too large for the receive limit of ${readMaxBytes} bytes`,
      Code.ResourceExhausted,
    );
  }
  return new ConnectError(
    `invalid ${name} data: ${error.message}`,
    Code.InvalidArgument,
    { cause: error },
  );
}

function compressionBrotliOptions(data: Uint8Array): zlib.BrotliOptions {
  return {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 5,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength,
    },
  };
}

/** @public */
export const compressionGzip: Compression = compressionFromZlib(
  "gzip",
  (data, callback) => zlib.gzip(data, callback),
  (data) => zlib.gzipSync(data),
  (data, options, callback) => zlib.gunzip(data, options, callback),
);

/**
 * HTTP's "deflate", which is the zlib format (RFC 1950), not raw deflate.
 * @public
 */
export const compressionDeflate: Compression = compressionFromZlib(
  "deflate",
  (data, callback) => zlib.deflate(data, callback),
  (data) => zlib.deflateSync(data),
  (data, options, callback) => zlib.inflate(data, options, callback),
);

/** @public */
export const compressionBrotli: Compression = compressionFromZlib(
  "br",
  // zlib's default quality is 11, which is tuned for static assets and is
  // some 50 times slower than gzip; 5 is about as fast as gzip and still
  // compresses better.
  (data, callback) =>
    zlib.brotliCompress(data, compressionBrotliOptions(data), callback),
  (data) => zlib.brotliCompressSync(data, compressionBrotliOptions(data)),
  // Large windows (up to 1 GiB, BROTLI_DECODER_PARAM_LARGE_WINDOW) stay
  // off, as is node:zlib's default: the window is at most 16 MiB.
  (data, options, callback) => zlib.brotliDecompress(data, options, callback),
);

/**
 * Undefined where node:zlib has no zstd (before Node 22.15 / 23.8).
 * @public
 */
export const compressionZstd: Compression | undefined =
  typeof zlib.zstdCompress === "function"
    ? compressionFromZlib(
        "zstd",
        (data, callback) => zlib.zstdCompress(data, callback),
        (data) => zlib.zstdCompressSync(data),
        // The frame declares the window the decoder allocates, up to
        // 2 GiB: capped at what a message within the limit needs, and at
        // least the 8 MiB every decoder should accept (RFC 8878 3.1.1.1.2).
        (data, options, callback) =>
          zlib.zstdDecompress(
            data,
            {
              ...options,
              params: {
                [zlib.constants.ZSTD_d_windowLogMax]: Math.max(
                  23,
                  Math.min(31, Math.ceil(Math.log2(options.maxOutputLength))),
                ),
              },
            },
            callback,
          ),
      )
    : undefined;

/**
 * The default list for Node: gzip, br, zstd (when available). Order is
 * preference. A new array each call, so a caller may change it freely.
 * @public
 */
export function compressionDefaults(): Compression[] {
  const list = [compressionGzip, compressionBrotli];
  if (compressionZstd !== undefined) {
    list.push(compressionZstd);
  }
  // Last: accepted from gRPC clients such as grpc-js that may send it.
  list.push(compressionDeflate);
  return list;
}
