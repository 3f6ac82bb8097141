import {
  fromBinary,
  fromJsonString,
  toBinary,
  toJsonString,
  type DescMessage,
  type JsonReadOptions,
  type JsonWriteOptions,
  type Message,
} from "@bufbuild/protobuf";
import { Code } from "./code.ts";
import { ConnectError } from "./errors.ts";

/**
 * Options for the JSON codec, passed through to `@bufbuild/protobuf`; set a
 * `registry` to serialize `google.protobuf.Any` fields.
 * @public
 */
export type JsonOptions = Partial<JsonReadOptions & JsonWriteOptions>;

/**
 * Serializes messages for one wire format: binary protobuf (the default),
 * or JSON from `jsonCodec()`.
 * @public
 */
export interface Codec {
  readonly binary: boolean;
  encode(desc: DescMessage, message: Message): Uint8Array;
  /** Throws ConnectError InvalidArgument when the bytes are not a valid `desc`. */
  decode(desc: DescMessage, bytes: Uint8Array): Message;
}

const codecTextEncoder = /* @__PURE__ */ new TextEncoder();
const codecTextDecoder = /* @__PURE__ */ new TextDecoder("utf-8", {
  fatal: true,
});

export const codecBinary: Codec = {
  binary: true,
  encode: (desc, message) => toBinary(desc, message),
  decode(desc, bytes) {
    try {
      return fromBinary(desc, bytes);
    } catch (e) {
      throw codecError(desc, e);
    }
  },
};

/** The signature of jsonCodec, named so that referring to it does not pull in its code (nor protobuf's JSON code). */
export type JsonCodecFactory = (options?: JsonOptions) => Codec;

/**
 * The JSON codec: a client's `codec: jsonCodec()` sends and reads JSON
 * (Connect's `application/json`, gRPC's `application/grpc+json`).
 * @public
 */
export function jsonCodec(options?: JsonOptions): Codec {
  return {
    binary: false,
    encode: (desc, message) =>
      codecTextEncoder.encode(toJsonString(desc, message, options)),
    decode(desc, bytes) {
      try {
        return fromJsonString(desc, codecTextDecoder.decode(bytes), options);
      } catch (e) {
        throw codecError(desc, e);
      }
    },
  };
}

function codecError(desc: DescMessage, cause: unknown): ConnectError {
  const detail = cause instanceof Error ? `: ${cause.message}` : "";
  return new ConnectError(
    `cannot decode ${desc.typeName}${detail}`,
    Code.InvalidArgument,
    { cause },
  );
}
