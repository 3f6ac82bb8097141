// The messages every implementation sends and receives, built once with
// protobuf-es so that all of them see byte-identical requests.
import {
  create,
  type DescMessage,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import {
  type Order,
  OrderSchema,
  OrderStatus,
  type Payload,
  PayloadSchema,
} from "../gen/bench/v1/bench_pb.ts";
import { orderSize } from "../workloads.ts";

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

/**
 * The realistic message of the `order` workloads: nine fields of most
 * kinds (int64, strings, an enum, int32, a nested message, a repeated
 * message, a bool), 98 bytes encoded like the `bytes`-only 98 B request.
 */
export function orderMessage(): Order {
  const message = create(OrderSchema, {
    id: 1234567890123n,
    customer: "Ada Lovelace",
    email: "ada@example.org",
    status: OrderStatus.SHIPPED,
    totalCents: 45990,
    createdAtMs: 1765065600000n,
    shipTo: { city: "London", country: "GB" },
    items: [
      { sku: "BK-0042-PB", quantity: 2 },
      { sku: "PN-07-FTN", quantity: 1 },
    ],
    gift: true,
  });
  const encoded = toBinary(OrderSchema, message).length;
  if (encoded !== orderSize) {
    throw new Error(`order is ${encoded} bytes, wanted ${orderSize}`);
  }
  return message;
}

/** What a unary workload sends: Payload (one `bytes` or `string` field) or Order. */
export type UnaryMessage = "payload" | "order";

export const unaryPath = "/bench.v1.BenchService/Unary";
export const unaryOrderPath = "/bench.v1.BenchService/UnaryOrder";
export const serverStreamPath = "/bench.v1.BenchService/ServerStream";

/** The request of a unary workload: body, content type, path, and the schema that decodes it. */
export interface UnaryRequest {
  readonly body: Uint8Array;
  readonly contentType: string;
  readonly path: string;
  readonly schema: DescMessage;
}

export function unaryRequest(
  message: UnaryMessage,
  codec: "binary" | "json",
  size: number,
): UnaryRequest {
  if (message === "order") {
    if (codec !== "binary" || size !== orderSize) {
      throw new Error(`the order workload is binary, ${orderSize} B`);
    }
    return {
      body: toBinary(OrderSchema, orderMessage()),
      contentType: "application/proto",
      path: unaryOrderPath,
      schema: OrderSchema,
    };
  }
  return codec === "binary"
    ? {
        body: toBinary(PayloadSchema, binaryPayload(size)),
        contentType: "application/proto",
        path: unaryPath,
        schema: PayloadSchema,
      }
    : {
        body: new TextEncoder().encode(
          toJsonString(PayloadSchema, jsonPayload(size)),
        ),
        contentType: "application/json",
        path: unaryPath,
        schema: PayloadSchema,
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
