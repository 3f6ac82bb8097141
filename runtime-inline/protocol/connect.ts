import { create, toBinary } from "@bufbuild/protobuf";
import { base64Decode, base64Encode } from "@bufbuild/protobuf/wire";
import {
  Code,
  codeFromHttpStatus,
  codeFromString,
  codeToString,
} from "../core/code.ts";
import {
  ConnectError,
  type ErrorDetail,
  type ErrorDetailInit,
} from "../core/errors.ts";

export const connectHeaderProtocolVersion = "connect-protocol-version";
export const connectHeaderTimeout = "connect-timeout-ms";
export const connectContentTypeProto = "application/proto";
export const connectContentTypeJson = "application/json";

// "application/connect+proto" must not match: that is the streaming protocol.
const connectUnaryContentTypePattern =
  /^application\/(proto|json)(?:\s*;.*)?$/i;

// The spec allows at most 10 digits; \d without the u flag is ASCII only.
const connectTimeoutPattern = /^\d{1,10}$/;

// Whole groups, then an optional 2- or 3-character tail with optional padding.
// base64Decode skips white-space and inner padding, which a GET message must
// not contain (a raw "+" in a query string turns into a space).
const connectBase64Pattern =
  /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

const connectTrailerPrefix = "trailer-";

const connectTextEncoder = /* @__PURE__ */ new TextEncoder();
const connectTextDecoder = /* @__PURE__ */ new TextDecoder();

// Indexed by code number.
const connectHttpStatuses = [
  500, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503,
  500, 401,
];

const connectUnaryBinary = { binary: true } as const;
const connectUnaryJson = { binary: false } as const;

/** Parses a unary Content-Type: `{ binary }` for proto or JSON, undefined for anything else. */
export function connectParseUnaryContentType(
  value: string | null,
): { readonly binary: boolean } | undefined {
  // The values clients send, told apart without the pattern: a regular
  // expression and a lower-casing were a few percent of a small call.
  if (value === connectContentTypeProto) return connectUnaryBinary;
  if (value === connectContentTypeJson) return connectUnaryJson;
  const match =
    value === null ? null : connectUnaryContentTypePattern.exec(value);
  if (match === null) return undefined;
  return match[1]!.toLowerCase() === "proto"
    ? connectUnaryBinary
    : connectUnaryJson;
}

/** The HTTP status of a unary error response with this code. */
export function connectCodeToHttpStatus(code: Code): number {
  return connectHttpStatuses[code] ?? 500;
}

/** The JSON body of a unary error response. */
export function connectErrorToJson(error: ConnectError): string {
  return JSON.stringify(connectErrorToObject(error));
}

/** The error as the JSON value of a unary error body or an end-of-stream message. */
export function connectErrorToObject(error: ConnectError) {
  // undefined properties are left out by JSON.stringify.
  return {
    code: codeToString(error.code),
    message: error.rawMessage || undefined,
    details:
      error.details.length > 0
        ? error.details.map(connectDetailToJson)
        : undefined,
  };
}

// Errors of @connectrpc/connect keep outgoing details unserialized.
function connectDetailToJson(detail: ErrorDetail | ErrorDetailInit) {
  return "desc" in detail
    ? {
        type: detail.desc.typeName,
        value: base64Encode(
          toBinary(detail.desc, create(detail.desc, detail.value)),
          "std_raw",
        ),
      }
    : {
        type: detail.type,
        value: base64Encode(detail.value, "std_raw"),
        debug: detail.debug,
      };
}

/**
 * Reads a unary error response body; a body that is not a Connect error
 * yields an error with the code inferred from the HTTP status. Never throws.
 */
export function connectErrorFromJson(
  body: Uint8Array,
  httpStatus: number,
  metadata: Headers,
): ConnectError {
  let json: Record<string, unknown> = {};
  try {
    // Proxies answer with HTML or plain text; null and arrays are caught below.
    json = JSON.parse(connectTextDecoder.decode(body)) ?? {};
  } catch {
    // Falls back to the HTTP status.
  }
  return connectErrorFromObject(
    json,
    metadata,
    codeFromHttpStatus(httpStatus),
    `HTTP ${httpStatus}`,
  );
}

/**
 * The error of a parsed JSON error value. Without a known code it takes
 * `fallbackCode`, keeping the message and details (a proxy's or a newer
 * peer's error still says what happened), and without a message either,
 * `fallbackMessage`.
 */
export function connectErrorFromObject(
  json: Record<string, unknown>,
  metadata: Headers,
  fallbackCode: Code,
  fallbackMessage: string,
): ConnectError {
  const known =
    typeof json["code"] === "string" ? codeFromString(json["code"]) : undefined;
  const code = known ?? fallbackCode;
  const message = json["message"];
  const details: ErrorDetail[] = [];
  const rawDetails = json["details"];
  if (Array.isArray(rawDetails)) {
    for (const raw of rawDetails as unknown[]) {
      if (raw === null || typeof raw !== "object") continue;
      const { type, value } = raw as Record<string, unknown>;
      if (typeof type !== "string" || typeof value !== "string") continue;
      try {
        // A corrupt detail is dropped rather than losing the code and message.
        const bytes = base64Decode(value);
        details.push(
          "debug" in raw
            ? { type, value: bytes, debug: raw.debug }
            : { type, value: bytes },
        );
      } catch {
        continue;
      }
    }
  }
  return new ConnectError(
    typeof message === "string"
      ? message
      : known === undefined
        ? fallbackMessage
        : "",
    code,
    { metadata, details },
  );
}

/** Parses Connect-Timeout-Ms: undefined when absent, an error (returned) when malformed. */
export function connectParseTimeout(
  value: string | null,
): number | undefined | ConnectError {
  if (value === null) {
    return undefined;
  }
  if (!connectTimeoutPattern.test(value)) {
    return new ConnectError(
      `invalid ${connectHeaderTimeout} "${value}": expected 1 to 10 digits`,
      Code.InvalidArgument,
    );
  }
  return Number(value);
}

/** Writes trailers into unary response headers as `trailer-` headers. */
export function connectTrailersToHeaders(
  trailer: Headers,
  into: Headers,
): void {
  trailer.forEach((value, key) =>
    into.append(connectTrailerPrefix + key, value),
  );
}

/** Splits unary response headers into [headers, trailers], removing the `trailer-` prefix. */
export function connectSplitTrailers(header: Headers): [Headers, Headers] {
  const headers = new Headers();
  const trailers = new Headers();
  // Headers yields lower-case names.
  header.forEach((value, key) => {
    if (key.startsWith(connectTrailerPrefix)) {
      trailers.append(key.slice(connectTrailerPrefix.length), value);
    } else {
      headers.append(key, value);
    }
  });
  return [headers, trailers];
}

/**
 * The query string of a unary GET, with the parameters in the order the spec
 * recommends so that equal requests hit the same cache entries.
 */
export function connectGetQuery(
  message: Uint8Array,
  binary: boolean,
  compression: string | undefined,
): string {
  // Compressed bytes are binary even for JSON.
  const base64 = binary || compression !== undefined;
  let query = "?connect=v1";
  if (base64) {
    query += "&base64=1";
  }
  if (compression !== undefined) {
    query += "&compression=" + encodeURIComponent(compression);
  }
  query += binary ? "&encoding=proto" : "&encoding=json";
  return (
    query +
    "&message=" +
    (base64
      ? base64Encode(message, "url")
      : encodeURIComponent(connectTextDecoder.decode(message)))
  );
}

/** Reads the request of a unary GET from its query; a malformed query yields an error (returned). */
export function connectParseGetQuery(
  query: URLSearchParams,
):
  | { message: Uint8Array; binary: boolean; compression: string | undefined }
  | ConnectError {
  const version = query.get("connect");
  if (version !== null && version !== "v1") {
    return new ConnectError(
      `query parameter "connect" must be "v1": got "${version}"`,
      Code.InvalidArgument,
    );
  }
  const encoding = query.get("encoding");
  if (encoding !== "proto" && encoding !== "json") {
    return new ConnectError(
      encoding === null
        ? `missing query parameter "encoding": set it to "proto" or "json"`
        : `query parameter "encoding" must be "proto" or "json": got "${encoding}"`,
      Code.InvalidArgument,
    );
  }
  // connect-go reads a missing message as an empty one.
  const text = query.get("message") ?? "";
  let message: Uint8Array;
  // The spec says other values of "base64" are ignored.
  if (query.get("base64") === "1") {
    if (!connectBase64Pattern.test(text)) {
      return new ConnectError(
        `query parameter "message" is not valid base64`,
        Code.InvalidArgument,
      );
    }
    message = base64Decode(text);
  } else {
    message = connectTextEncoder.encode(text);
  }
  return {
    message,
    binary: encoding === "proto",
    compression: query.get("compression") ?? undefined,
  };
}
