import { Code } from "./code.ts";
import { ConnectError } from "./errors.ts";

/**
 * A compression algorithm for message bodies, as named in `Content-Encoding`,
 * `Connect-Content-Encoding` and `grpc-encoding`.
 * @public
 */
export interface Compression {
  /** The name in Content-Encoding / grpc-encoding: "gzip", "br", "zstd". */
  readonly name: string;
  compress(data: Uint8Array): Promise<Uint8Array>;
  /**
   * Rejects with ConnectError ResourceExhausted when the output would exceed
   * readMaxBytes (checked by zlib's maxOutputLength so no larger buffer is
   * ever allocated), and ConnectError InvalidArgument when the data is not
   * valid for this encoding.
   */
  decompress(data: Uint8Array, readMaxBytes: number): Promise<Uint8Array>;
}

/**
 * Picks the first entry of an Accept-Encoding / grpc-accept-encoding style
 * header value that is in `available`; undefined if none. The peer's order
 * wins over q-values, which are ignored except that `q=0` (an explicit
 * refusal) excludes the entry. "identity" is skipped: no compression is what
 * undefined already means.
 * @public
 */
export function compressionNegotiate(
  available: readonly Compression[],
  acceptHeader: string | null,
): Compression | undefined {
  if (acceptHeader === null) {
    return undefined;
  }
  for (const entry of acceptHeader.split(",")) {
    const [token = "", ...params] = entry.split(";");
    const name = token.trim().toLowerCase();
    if (name === "" || name === "identity") {
      continue;
    }
    const refused = params.some((param) => {
      const [key = "", value = ""] = param.split("=");
      return (
        key.trim().toLowerCase() === "q" &&
        value.trim() !== "" &&
        Number(value.trim()) === 0
      );
    });
    if (refused) {
      continue;
    }
    const found = available.find((c) => c.name.toLowerCase() === name);
    if (found !== undefined) {
      return found;
    }
  }
  return undefined;
}

/**
 * Finds by name, case-insensitive. "identity", empty or null returns null,
 * meaning "no compression"; an unknown name returns undefined.
 * @public
 */
export function compressionFind(
  available: readonly Compression[],
  name: string | null,
): Compression | null | undefined {
  // Most requests have no encoding header at all.
  if (name === null) return null;
  const wanted = name.trim().toLowerCase();
  if (wanted === "" || wanted === "identity") {
    return null;
  }
  return available.find((c) => c.name.toLowerCase() === wanted);
}

/**
 * The Accept-Encoding value to advertise: names joined by ", ".
 * @public
 */
export function compressionAcceptHeader(
  available: readonly Compression[],
): string {
  return available.map((c) => c.name).join(", ");
}

/**
 * The error for a message compressed with an encoding not in `available`:
 * Unimplemented, as the Connect and gRPC specifications both ask.
 */
export function compressionUnknown(
  encoding: string | null,
  available: readonly Compression[],
): ConnectError {
  return new ConnectError(
    `unknown compression "${encoding}": accepted are ${available.map((c) => c.name).join(", ") || "none"}`,
    Code.Unimplemented,
  );
}
