import { create, toBinary } from "@bufbuild/protobuf";
import {
  BinaryReader,
  BinaryWriter,
  WireType,
  base64Decode,
  base64Encode,
} from "@bufbuild/protobuf/wire";
import { Code } from "../core/code.ts";
import {
  ConnectError,
  type ErrorDetail,
  type ErrorDetailInit,
} from "../core/errors.ts";

export const grpcHeaderStatus = "grpc-status";
export const grpcHeaderMessage = "grpc-message";
export const grpcHeaderStatusDetailsBin = "grpc-status-details-bin";
export const grpcHeaderTimeout = "grpc-timeout";
export const grpcHeaderEncoding = "grpc-encoding";
export const grpcHeaderAcceptEncoding = "grpc-accept-encoding";
/** What gRPC clients send by default: protobuf without a codec suffix. */
export const grpcContentTypeDefault = "application/grpc";
export const grpcContentTypeProto = "application/grpc+proto";
export const grpcContentTypeJson = "application/grpc+json";

// "application/grpc-web..." must not match: after "grpc" only "+codec", a
// parameter or the end may follow.
const grpcContentTypePattern =
  /^application\/grpc(?:\+(proto|json))?(?:\s*;.*)?$/i;

// PROTOCOL-HTTP2.md: "positive integer as ASCII string of at most 8 digits"
// and a case-sensitive unit; \d without the u flag is ASCII only.
const grpcTimeoutPattern = /^(\d{1,8})([HMSmun])$/;

const grpcTimeoutMaxValue = 99_999_999;

// Milliseconds per unit, for the units a millisecond count can be written in.
const grpcTimeoutUnitsMs: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
};

// Units per millisecond for the sub-millisecond units, which are divided.
const grpcTimeoutSubMsDivisors: Readonly<Record<string, number>> = {
  u: 1_000,
  n: 1_000_000,
};

// Coarsest first, so the first exact fit is the shortest form.
const grpcTimeoutFormatUnits = [
  ["H", 3_600_000],
  ["M", 60_000],
  ["S", 1_000],
] as const;

// "0" and digits only: the spec says "decimal-encoded integer ... without any
// leading zeros", but a lenient reader costs nothing.
const grpcStatusPattern = /^\d{1,10}$/;

const grpcPercentHexPattern = /^[0-9a-fA-F]{2}$/;

// Nothing to decode: no "%" and no byte that would need one.
const grpcPlainAsciiPattern = /^[\x00-\x24\x26-\x7f]*$/;

// connect-es's anyPack and connect-go use this prefix, as does protobuf's Any.
const grpcTypeUrlPrefix = "type.googleapis.com/";

// The keys carrying the status itself: they are not metadata of the error.
const grpcProtocolKeys: ReadonlySet<string> = new Set([
  grpcHeaderStatus,
  grpcHeaderMessage,
  grpcHeaderStatusDetailsBin,
  grpcHeaderTimeout,
  grpcHeaderEncoding,
  grpcHeaderAcceptEncoding,
]);

const grpcTextEncoder = /* @__PURE__ */ new TextEncoder();
// fatal: a message that is not UTF-8 after percent-decoding is kept raw.
const grpcStrictTextDecoder = /* @__PURE__ */ new TextDecoder("utf-8", {
  fatal: true,
});

/** Parses a gRPC Content-Type: `{ binary }` for proto or JSON, undefined for anything else, gRPC-Web included. */
export function grpcParseContentType(
  value: string | null,
): { binary: boolean } | undefined {
  const match = value === null ? null : grpcContentTypePattern.exec(value);
  if (!match) {
    return undefined;
  }
  // Bare "application/grpc" is protobuf.
  return { binary: match[1]?.toLowerCase() !== "json" };
}

/**
 * Parses grpc-timeout into milliseconds: undefined when absent, an error
 * (returned) when malformed. Sub-millisecond values round up, so that a
 * positive timeout never becomes 0, which would expire at once. "0m" is
 * accepted as 0 (already expired), as connect-es and connect-go do.
 */
export function grpcParseTimeout(
  value: string | null,
): number | undefined | ConnectError {
  if (value === null) {
    return undefined;
  }
  const match = grpcTimeoutPattern.exec(value);
  if (!match) {
    return new ConnectError(
      `invalid ${grpcHeaderTimeout} "${value}": expected 1 to 8 digits and a unit of H, M, S, m, u or n`,
      Code.InvalidArgument,
    );
  }
  const amount = Number(match[1]);
  const unit = match[2]!;
  const divisor = grpcTimeoutSubMsDivisors[unit];
  if (divisor !== undefined) {
    return Math.ceil(amount / divisor);
  }
  // 99999999H is 3.6e14 ms: still an exact integer.
  return amount * grpcTimeoutUnitsMs[unit]!;
}

/**
 * Formats a timeout for grpc-timeout: the shortest exact form within 8 digits
 * ("250m", "1H", "90S"). connect-es always writes milliseconds, which breaks
 * the 8-digit limit past 27.7 hours; beyond that this rounds up to a coarser
 * unit (grpc-core rounds up too: the server must not give up before the
 * client does). A fraction of a millisecond rounds up; 0 or less is "0m".
 */
export function grpcFormatTimeout(ms: number): string {
  if (!(ms > 0)) {
    return "0m";
  }
  const whole = Math.ceil(ms);
  for (const [unit, size] of grpcTimeoutFormatUnits) {
    if (whole % size === 0 && whole / size <= grpcTimeoutMaxValue) {
      return `${whole / size}${unit}`;
    }
  }
  if (whole <= grpcTimeoutMaxValue) {
    return `${whole}m`;
  }
  // Finest coarser unit that fits, rounded up.
  for (let i = grpcTimeoutFormatUnits.length - 1; i >= 0; i--) {
    const [unit, size] = grpcTimeoutFormatUnits[i]!;
    const amount = Math.ceil(whole / size);
    if (amount <= grpcTimeoutMaxValue) {
      return `${amount}${unit}`;
    }
  }
  // Over 11,000 years: the largest value the header can carry.
  return `${grpcTimeoutMaxValue}H`;
}

/**
 * Percent-encodes grpc-message: the UTF-8 bytes outside 0x20-0x7E, and "%",
 * become %XX (PROTOCOL-HTTP2.md "Percent-Byte-Unencoded"; connect-go does the
 * same). Unlike encodeURIComponent, readable ASCII stays readable.
 */
export function grpcEncodeMessage(message: string): string {
  let i = 0;
  // Fast path: most messages are printable ASCII.
  while (i < message.length) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) break;
    i++;
  }
  if (i === message.length) {
    return message;
  }
  let out = message.slice(0, i);
  for (const byte of grpcTextEncoder.encode(message.slice(i))) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? "%" + byte.toString(16).toUpperCase().padStart(2, "0")
        : String.fromCharCode(byte);
  }
  return out;
}

/**
 * Decodes grpc-message. Never throws: the spec says a broken value must not
 * lose the message. A "%" without two hex digits stays as it is; when the
 * bytes are not UTF-8 (a cut-off "%E2%82"), the raw value is returned, which
 * the spec allows ("the user would receive the raw percent-encoded form").
 * connect-es's decodeURIComponent throws here instead.
 */
export function grpcDecodeMessage(value: string): string {
  if (grpcPlainAsciiPattern.test(value)) {
    return value;
  }
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const hex = value.slice(i + 1, i + 3);
    if (c === 0x25 && grpcPercentHexPattern.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c <= 0xff) {
      // Headers hold the bytes of a value as Latin-1 characters: raw UTF-8
      // from a peer that does not encode is recovered this way.
      bytes.push(c);
    } else {
      // Only a string that never was a header value gets here.
      const end = value.codePointAt(i)! > 0xffff ? i + 2 : i + 1;
      bytes.push(...grpcTextEncoder.encode(value.slice(i, end)));
      i = end - 1;
    }
  }
  try {
    return grpcStrictTextDecoder.decode(new Uint8Array(bytes));
  } catch {
    return value;
  }
}

/**
 * Writes the status of a call into trailers (or into the headers of a
 * trailers-only response): grpc-status, grpc-message when there is a message,
 * grpc-status-details-bin when there are details, and the error's metadata.
 * Returns `trailer`.
 */
export function grpcStatusToTrailers(
  error: ConnectError | undefined,
  trailer: Headers,
): Headers {
  if (error === undefined) {
    trailer.set(grpcHeaderStatus, "0");
    return trailer;
  }
  // The protocol keys of a rethrown error's metadata would contradict the
  // status written below (a stale details-bin when this error has no details).
  error.metadata.forEach((value, key) => {
    if (!grpcProtocolKeys.has(key)) {
      trailer.append(key, value);
    }
  });
  trailer.set(grpcHeaderStatus, String(error.code));
  // The grammar is 1*(...): an empty message is left out.
  if (error.rawMessage.length > 0) {
    trailer.set(grpcHeaderMessage, grpcEncodeMessage(error.rawMessage));
  }
  if (error.details.length > 0) {
    // The spec says to emit unpadded base64; connect-es and connect-go do.
    trailer.set(
      grpcHeaderStatusDetailsBin,
      base64Encode(grpcEncodeStatus(error), "std_raw"),
    );
  }
  return trailer;
}

// google.rpc.Status {int32 code = 1; string message = 2; repeated Any details = 3}
// with Any {string type_url = 1; bytes value = 2}, written by hand so that the
// runtime needs no descriptor of them.
function grpcEncodeStatus(error: ConnectError): Uint8Array {
  const writer = new BinaryWriter();
  writer.tag(1, WireType.Varint).int32(error.code);
  if (error.rawMessage.length > 0) {
    writer.tag(2, WireType.LengthDelimited).string(error.rawMessage);
  }
  // Errors of @connectrpc/connect keep outgoing details unserialized.
  for (const detail of error.details as (ErrorDetail | ErrorDetailInit)[]) {
    const [type, value] =
      "desc" in detail
        ? [
            detail.desc.typeName,
            toBinary(detail.desc, create(detail.desc, detail.value)),
          ]
        : [detail.type, detail.value];
    writer.tag(3, WireType.LengthDelimited).fork();
    writer.tag(1, WireType.LengthDelimited).string(grpcTypeUrlPrefix + type);
    if (value.length > 0) {
      writer.tag(2, WireType.LengthDelimited).bytes(value);
    }
    writer.join();
  }
  return writer.finish();
}

interface GrpcStatus {
  code: number;
  message: string;
  details: ErrorDetail[];
}

// Throws on a truncated or malformed message.
function grpcDecodeStatus(bytes: Uint8Array): GrpcStatus {
  const status: GrpcStatus = { code: 0, message: "", details: [] };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === 1 && wireType === WireType.Varint) {
      status.code = reader.int32();
    } else if (fieldNo === 2 && wireType === WireType.LengthDelimited) {
      status.message = reader.string();
    } else if (fieldNo === 3 && wireType === WireType.LengthDelimited) {
      status.details.push(grpcDecodeAny(reader.bytes()));
    } else {
      reader.skip(wireType, fieldNo);
    }
  }
  return status;
}

function grpcDecodeAny(bytes: Uint8Array): ErrorDetail {
  let typeUrl = "";
  let value: Uint8Array = new Uint8Array(0);
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === 1 && wireType === WireType.LengthDelimited) {
      typeUrl = reader.string();
    } else if (fieldNo === 2 && wireType === WireType.LengthDelimited) {
      value = reader.bytes();
    } else {
      reader.skip(wireType, fieldNo);
    }
  }
  // The type name is what follows the last "/", as protobuf's Any defines.
  return { type: typeUrl.slice(typeUrl.lastIndexOf("/") + 1), value };
}

/**
 * Reads the status of a call: undefined for grpc-status 0, else the error.
 * The status is read from `trailer`, or from `header` when `trailer` has no
 * grpc-status (a trailers-only response). Never throws.
 *
 * - No grpc-status anywhere: Internal, as connect-es (validateTrailer) and
 *   connect-go do.
 * - A grpc-status that is not a number: Internal (connect-es, connect-go).
 *   A number that is no code: Unknown, as grpc-java does.
 * - A valid grpc-status-details-bin gives the details, and its code and
 *   message win over grpc-status and grpc-message (connect-go and grpc-go do
 *   this) unless its code is 0 or no code: grpc-status alone decides whether
 *   the call failed. An invalid one is ignored rather than losing the status.
 *
 * The error's metadata is `header` and `trailer` without the grpc-* keys.
 */
export function grpcStatusFromTrailers(
  trailer: Headers,
  header?: Headers,
): ConnectError | undefined {
  const source =
    !trailer.has(grpcHeaderStatus) && header?.has(grpcHeaderStatus) === true
      ? header
      : trailer;
  const statusValue = source.get(grpcHeaderStatus);
  if (statusValue === "0") {
    return undefined;
  }
  const metadata = new Headers();
  const copy = (value: string, key: string) => {
    if (!grpcProtocolKeys.has(key)) {
      metadata.append(key, value);
    }
  };
  header?.forEach(copy);
  if (trailer !== header) {
    trailer.forEach(copy);
  }
  if (statusValue === null) {
    return new ConnectError(
      `protocol error: missing ${grpcHeaderStatus}`,
      Code.Internal,
      { metadata },
    );
  }
  if (!grpcStatusPattern.test(statusValue.trim())) {
    return new ConnectError(
      `protocol error: invalid ${grpcHeaderStatus} "${statusValue}"`,
      Code.Internal,
      { metadata },
    );
  }
  const number = Number(statusValue.trim());
  if (number === 0) {
    return undefined;
  }
  let code = grpcIsCode(number) ? number : Code.Unknown;
  let message = grpcDecodeMessage(source.get(grpcHeaderMessage) ?? "");
  let details: ErrorDetail[] = [];
  const detailsBin = source.get(grpcHeaderStatusDetailsBin);
  if (detailsBin !== null) {
    try {
      // Repeated values arrive joined by ","; the spec says to split before
      // decoding. A status has one value, so the first is taken.
      const status = grpcDecodeStatus(base64Decode(detailsBin.split(",")[0]!));
      details = status.details;
      if (grpcIsCode(status.code)) {
        code = status.code;
        message = status.message;
      }
    } catch {
      // Falls back to grpc-status and grpc-message.
    }
  }
  return new ConnectError(message, code, { metadata, details });
}

function grpcIsCode(value: number): value is Code {
  return Number.isInteger(value) && value >= 1 && value <= 16;
}
