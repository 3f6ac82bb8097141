import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import { connectErrorFromObject, connectErrorToObject } from "./connect.ts";

export const connectStreamContentTypeProto = "application/connect+proto";
export const connectStreamContentTypeJson = "application/connect+json";
export const connectHeaderContentEncoding = "connect-content-encoding";
export const connectHeaderAcceptEncoding = "connect-accept-encoding";

const connectStreamContentTypePattern =
  /^application\/connect\+(proto|json)(?:\s*;.*)?$/i;
const connectStreamTextEncoder = /* @__PURE__ */ new TextEncoder();
const connectStreamTextDecoder = /* @__PURE__ */ new TextDecoder();

/** `application/connect+proto` is binary, `application/connect+json` is JSON, anything else undefined. */
export function connectParseStreamContentType(
  value: string | null,
): { binary: boolean } | undefined {
  const match =
    value === null ? null : connectStreamContentTypePattern.exec(value);
  return match === null
    ? undefined
    : { binary: match[1]!.toLowerCase() === "proto" };
}

/** The end-of-stream message: `{"error": {...}, "metadata": {"name": ["value"]}}`. */
export function connectEndStreamToJson(
  error: ConnectError | undefined,
  trailer: Headers,
): Uint8Array {
  const metadata: Record<string, string[]> = {};
  const add = (value: string, key: string) => {
    (metadata[key] ??= []).push(value);
  };
  trailer.forEach(add);
  error?.metadata.forEach(add);
  return connectStreamTextEncoder.encode(
    JSON.stringify({
      error: error === undefined ? undefined : connectErrorToObject(error),
      metadata: Object.keys(metadata).length > 0 ? metadata : undefined,
    }),
  );
}

/**
 * Reads the end-of-stream message. A message that is not one is a protocol
 * error of the peer: Internal, as connect-go and connect-es have it.
 */
export function connectEndStreamFromJson(data: Uint8Array): {
  error: ConnectError | undefined;
  trailer: Headers;
} {
  let json: unknown;
  try {
    json = JSON.parse(connectStreamTextDecoder.decode(data));
  } catch (e) {
    throw new ConnectError("invalid end-of-stream message", Code.Internal, {
      cause: e,
    });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ConnectError("invalid end-of-stream message", Code.Internal);
  }
  const { error, metadata } = json as Record<string, unknown>;
  const trailer = new Headers();
  if (metadata !== undefined && metadata !== null) {
    if (typeof metadata !== "object" || Array.isArray(metadata)) {
      throw new ConnectError("invalid end-of-stream metadata", Code.Internal);
    }
    for (const [key, values] of Object.entries(metadata)) {
      if (!Array.isArray(values) || values.some((v) => typeof v !== "string")) {
        throw new ConnectError(
          `invalid end-of-stream metadata "${key}"`,
          Code.Internal,
        );
      }
      try {
        for (const value of values as string[]) trailer.append(key, value);
      } catch (e) {
        // Valid JSON, but not a header name or value Headers accepts.
        throw new ConnectError(
          `invalid end-of-stream metadata "${key}"`,
          Code.Internal,
          { cause: e },
        );
      }
    }
  }
  if (error === undefined || error === null) {
    return { error: undefined, trailer };
  }
  if (typeof error !== "object" || Array.isArray(error)) {
    throw new ConnectError("invalid end-of-stream error", Code.Internal);
  }
  return {
    error: connectErrorFromObject(
      error as Record<string, unknown>,
      trailer,
      Code.Unknown,
      "end-of-stream error without a message",
    ),
    trailer,
  };
}
