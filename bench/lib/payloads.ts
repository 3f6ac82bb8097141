// The messages every implementation sends and receives, built once with
// protobuf-es so that all of them see byte-identical requests.
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { type Payload, PayloadSchema } from "../gen/bench/v1/bench_pb.ts";

// Text-like filler (words, spaces, punctuation) rather than random bytes:
// gzip then does the work it does on real payloads, and JSON strings need
// no escaping, like most real text.
const words =
  "the quick brown fox jumps over a lazy dog while seven wizards quietly box jackals near the old river bank, counting sheep and stars".split(
    " ",
  );

/** Deterministic text of exactly `length` ASCII characters. */
export function fillerText(length: number): string {
  let text = "";
  let i = 0;
  while (text.length < length) {
    text += `${words[(i * 7 + (i >> 3)) % words.length]} `;
    i++;
  }
  return text.slice(0, length);
}

export function fillerBytes(length: number): Uint8Array {
  return new TextEncoder().encode(fillerText(length));
}

function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    length++;
  }
  return length;
}

/**
 * A Payload whose binary encoding is exactly `size` bytes: only `data` set,
 * one tag byte, the length varint, the bytes.
 */
export function binaryPayload(size: number): Payload {
  let dataLength = size - 2;
  while (1 + varintLength(dataLength) + dataLength > size) dataLength--;
  const message = create(PayloadSchema, { data: fillerBytes(dataLength) });
  const encoded = toBinary(PayloadSchema, message).length;
  if (encoded !== size) {
    throw new Error(`binary payload is ${encoded} bytes, wanted ${size}`);
  }
  return message;
}

/** A Payload whose JSON encoding, `{"text":"..."}`, is exactly `size` bytes. */
export function jsonPayload(size: number): Payload {
  const overhead = '{"text":""}'.length;
  const message = create(PayloadSchema, { text: fillerText(size - overhead) });
  const encoded = Buffer.byteLength(toJsonString(PayloadSchema, message));
  if (encoded !== size) {
    throw new Error(`JSON payload is ${encoded} bytes, wanted ${size}`);
  }
  return message;
}

/** The request body of a unary workload, and its content type. */
export function unaryBody(
  codec: "binary" | "json",
  size: number,
): { body: Uint8Array; contentType: string } {
  return codec === "binary"
    ? {
        body: toBinary(PayloadSchema, binaryPayload(size)),
        contentType: "application/proto",
      }
    : {
        body: new TextEncoder().encode(
          toJsonString(PayloadSchema, jsonPayload(size)),
        ),
        contentType: "application/json",
      };
}

const streamPayloads = new Map<number, Payload>();

/**
 * The message a ServerStream call sends `count` times: `data` of `size`
 * bytes. Every server sends the same cached object, so that none of them
 * pays for building messages the others do not build.
 */
export function streamPayload(size: number): Payload {
  let message = streamPayloads.get(size);
  if (message === undefined) {
    message = create(PayloadSchema, { data: fillerBytes(size) });
    streamPayloads.set(size, message);
  }
  return message;
}

export const unaryPath = "/bench.v1.BenchService/Unary";
export const serverStreamPath = "/bench.v1.BenchService/ServerStream";
