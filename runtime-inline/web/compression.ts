// Used in browser builds: web globals only, no node: modules. The type import
// is erased, so it pulls in nothing from compression.ts at run time.
import type { Compression } from "../core/compression.ts";
import { bodyFromWebStream, readBody } from "../core/body.ts";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";

/**
 * How much compressed input is handed to the decompressor at a time. gzip
 * expands at most about 1000:1, so at most some 4 MiB is decompressed past
 * what has been read and checked against the limit; handing over the whole
 * body at once could expand a small body to gigabytes in one step.
 */
const webCompressionSliceBytes = 4096;

/**
 * gzip with the web platform's CompressionStream / DecompressionStream, for
 * browsers, Deno, Bun and workers. Produces and accepts the same bytes as the
 * Node gzip compression.
 * @public
 */
export const webCompressionGzip: Compression = {
  name: "gzip",
  async compress(data) {
    const stream = webCompressionSource(data).pipeThrough(
      new CompressionStream("gzip"),
    );
    try {
      return await readBody(bodyFromWebStream(stream), Infinity);
    } catch (error) {
      throw new ConnectError(
        `gzip compression failed: ${webCompressionErrorMessage(error)}`,
        Code.Internal,
        { cause: error },
      );
    }
  },
  async decompress(data, readMaxBytes) {
    const stream = webCompressionSource(data).pipeThrough(
      new DecompressionStream("gzip"),
    );
    try {
      // readBody stops reading, which cancels the stream, past the limit.
      return await readBody(bodyFromWebStream(stream), readMaxBytes);
    } catch (error) {
      if (error instanceof ConnectError) {
        throw error;
      }
      throw new ConnectError(
        `invalid gzip data: ${webCompressionErrorMessage(error)}`,
        Code.InvalidArgument,
        { cause: error },
      );
    }
  },
};

/**
 * The default list for web runtimes: gzip where CompressionStream exists
 * (it does in all current browsers, Deno, Bun and Node), else none.
 * @public
 */
export function webCompressionDefaults(): Compression[] {
  return typeof CompressionStream === "function" ? [webCompressionGzip] : [];
}

/**
 * The bytes as a stream of small slices, handed out only when pulled, so
 * that the decompressor is fed no faster than its output is read.
 */
function webCompressionSource(
  data: Uint8Array,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  // The stream APIs accept only ArrayBuffer-backed views (no
  // SharedArrayBuffer); copy in the rare other case.
  const bytes: Uint8Array<ArrayBuffer> =
    data.buffer instanceof ArrayBuffer
      ? (data as Uint8Array<ArrayBuffer>)
      : new Uint8Array(data);
  let offset = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>(
    {
      pull(controller) {
        if (offset >= bytes.byteLength) {
          controller.close();
          return;
        }
        const end = Math.min(
          offset + webCompressionSliceBytes,
          bytes.byteLength,
        );
        controller.enqueue(bytes.subarray(offset, end));
        offset = end;
      },
    },
    { highWaterMark: 0 },
  );
}

function webCompressionErrorMessage(error: unknown): string {
  if (error instanceof Error) {
    // Node's DecompressionStream throws a TypeError with an empty message and
    // the zlib code (Z_DATA_ERROR ...) as the only detail.
    const code = (error as { code?: unknown }).code;
    if (error.message !== "") {
      return error.message;
    }
    return typeof code === "string" ? code : error.name;
  }
  return String(error);
}
