import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";

// application/grpc-web-text (base64 of the whole body, for browsers without
// binary XHR) is out of scope: it does not match and is not produced.
/** What gRPC-Web clients send by default: protobuf without a codec suffix. */
export const grpcWebContentTypeDefault = "application/grpc-web";
export const grpcWebContentTypeProto = "application/grpc-web+proto";
export const grpcWebContentTypeJson = "application/grpc-web+json";

// "application/grpc-web-text" must not match: after "grpc-web" only
// "+codec", a parameter or the end may follow.
const grpcWebContentTypePattern =
  /^application\/grpc-web(?:\+(proto|json))?(?:\s*;.*)?$/i;

// Lines end in CRLF (PROTOCOL-WEB.md); a bare LF is tolerated.
const grpcWebTrailerLinePattern = /\r?\n/;

/** Parses a gRPC-Web Content-Type: `{ binary }` for proto or JSON, undefined for anything else. */
export function grpcWebParseContentType(
  value: string | null,
): { binary: boolean } | undefined {
  const match = value === null ? null : grpcWebContentTypePattern.exec(value);
  if (!match) {
    return undefined;
  }
  // Bare "application/grpc-web" is protobuf.
  return { binary: match[1]?.toLowerCase() !== "json" };
}

/**
 * The payload of the final envelope (flag 0x80) of a gRPC-Web response: the
 * trailers as HTTP/1 header lines, `name: value\r\n`, with lower-case names
 * as PROTOCOL-WEB.md requires (Headers yields them lower-case). Repeated
 * names come as one line with the values joined by ", ", which HTTP treats
 * as the same. A Headers value cannot hold CR or LF, so no line can be forged.
 */
export function grpcWebEncodeTrailers(trailer: Headers): Uint8Array {
  let text = "";
  trailer.forEach((value, key) => {
    text += `${key}: ${value}\r\n`;
  });
  // Header values are bytes, which Headers holds as Latin-1 characters
  // (code points up to 0xFF), so each character is one byte, as on HTTP/1.
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    bytes[i] = text.charCodeAt(i);
  }
  return bytes;
}

/**
 * Reads the payload of the final envelope of a gRPC-Web response. Tolerates
 * LF for CRLF, white-space around names and values, empty lines and upper-
 * case names; repeated names are appended. A line without a colon, or a name
 * or value that HTTP does not allow, throws Internal: the response is broken.
 */
export function grpcWebDecodeTrailers(data: Uint8Array): Headers {
  // The inverse of grpcWebEncodeTrailers: one byte, one character.
  let text = "";
  for (const byte of data) {
    text += String.fromCharCode(byte);
  }
  const trailer = new Headers();
  for (const line of text.split(grpcWebTrailerLinePattern)) {
    if (line.trim() === "") {
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon < 0 ? "" : line.slice(0, colon).trim();
    if (name === "") {
      throw new ConnectError(
        `protocol error: invalid gRPC-Web trailer line "${line}"`,
        Code.Internal,
      );
    }
    try {
      trailer.append(name, line.slice(colon + 1).trim());
    } catch (cause) {
      // Headers rejects names and values with characters HTTP forbids.
      throw new ConnectError(
        `protocol error: invalid gRPC-Web trailer line "${line}"`,
        Code.Internal,
        { cause },
      );
    }
  }
  return trailer;
}
