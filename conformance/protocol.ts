// What the conformance server and client share: the size-delimited stdin /
// stdout framing the runner speaks, and conversions between the suite's
// messages (Header, Error, Any) and the generated runtime's types.
import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import {
  AnySchema,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
} from "@bufbuild/protobuf/wkt";
import { file_connectrpc_conformance_v1_client_compat } from "./gen/connectrpc/conformance/v1/client_compat_pb.ts";
import { file_connectrpc_conformance_v1_config } from "./gen/connectrpc/conformance/v1/config_pb.ts";
import { file_connectrpc_conformance_v1_server_compat } from "./gen/connectrpc/conformance/v1/server_compat_pb.ts";
import {
  ErrorSchema,
  file_connectrpc_conformance_v1_service,
  HeaderSchema,
} from "./gen/connectrpc/conformance/v1/service_pb.ts";
import { file_connectrpc_conformance_v1_suite } from "./gen/connectrpc/conformance/v1/suite_pb.ts";
import type {
  Error as ProtoError,
  Header,
} from "./gen/connectrpc/conformance/v1/service_pb.ts";
import {
  ConnectError,
  type Code,
  type ErrorDetail,
} from "./gen/connectrpc/conformance/v1/service.ConformanceService.ts";

/**
 * Every message type a `google.protobuf.Any` may hold in the suite: the JSON
 * codec needs them to write and read `ConformancePayload.RequestInfo.requests`
 * and the error details a test case puts into its response definition.
 */
export const conformanceRegistry = createRegistry(
  file_connectrpc_conformance_v1_service,
  file_connectrpc_conformance_v1_config,
  file_connectrpc_conformance_v1_client_compat,
  file_connectrpc_conformance_v1_server_compat,
  file_connectrpc_conformance_v1_suite,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
);

const typeUrlPrefix = "type.googleapis.com/";

/** A message packed into an Any, as the runner expects it (type.googleapis.com/ prefix). */
export function packAny<Desc extends DescMessage>(
  desc: Desc,
  message: MessageShape<Desc>,
): Any {
  return create(AnySchema, {
    typeUrl: typeUrlPrefix + desc.typeName,
    value: toBinary(desc, message),
  });
}

/**
 * Reads size-delimited messages (a 4-byte big-endian length, then that many
 * bytes) from a byte stream until it ends. A stream that ends inside a
 * message throws.
 */
export async function* readDelimited(
  source: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(0);
  for await (const chunk of source) {
    const joined = new Uint8Array(buffer.byteLength + chunk.byteLength);
    joined.set(buffer, 0);
    joined.set(chunk, buffer.byteLength);
    buffer = joined;
    for (;;) {
      if (buffer.byteLength < 4) break;
      const view = new DataView(buffer.buffer, buffer.byteOffset, 4);
      const length = view.getUint32(0, false);
      if (buffer.byteLength < 4 + length) break;
      yield buffer.slice(4, 4 + length);
      buffer = buffer.subarray(4 + length);
    }
  }
  if (buffer.byteLength > 0) {
    throw new Error(
      `input ended inside a size-delimited message (${buffer.byteLength} bytes left over)`,
    );
  }
}

/** One size-delimited message as a single buffer, so that one write sends it whole. */
export function frameDelimited(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(4 + message.byteLength);
  new DataView(framed.buffer).setUint32(0, message.byteLength, false);
  framed.set(message, 4);
  return framed;
}

/** Headers as the suite's Header list; repeated values arrive joined by ", ", which the runner splits. */
export function headersToProto(headers: Headers): Header[] {
  const result: Header[] = [];
  headers.forEach((value, name) => {
    result.push(create(HeaderSchema, { name, value: [value] }));
  });
  return result;
}

/** Adds the suite's Header list to Headers, one append per value, keeping repeated values. */
export function appendProtoHeaders(
  into: Headers,
  headers: readonly Header[] | undefined,
): void {
  for (const header of headers ?? []) {
    for (const value of header.value) into.append(header.name, value);
  }
}

/** An Any as the runtime's error detail: the type name and the binary message. */
export function anyToDetail(any: Any): ErrorDetail {
  return {
    type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1),
    value: any.value,
  };
}

/** The suite's Error (with `extraDetails` after its own) as a ConnectError to throw. */
export function errorFromProto(
  error: ProtoError,
  extraDetails: readonly Any[] = [],
): ConnectError {
  // The suite's Code numbers are the Connect / gRPC codes.
  return new ConnectError(error.message ?? "", error.code as Code, {
    details: [...error.details, ...extraDetails].map(anyToDetail),
  });
}

/** Any error a call ended with, as the suite's Error. */
export function errorToProto(reason: unknown): ProtoError {
  const error = ConnectError.from(reason);
  return create(ErrorSchema, {
    code: error.code,
    message: error.rawMessage,
    details: error.details.map((detail) =>
      create(AnySchema, {
        typeUrl: typeUrlPrefix + detail.type,
        value: detail.value,
      }),
    ),
  });
}

/** Resolves after `ms` milliseconds, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    if (ms <= 0) {
      resolve();
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
