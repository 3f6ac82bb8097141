// Shared by the unit tests of runtime-inline/server/: requests as the server
// adapters build them, a method of StringValue in and out, and the bytes of
// a response.
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescService,
} from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  StringValueSchema,
  file_google_protobuf_wrappers,
} from "@bufbuild/protobuf/wkt";
import { bodyFromWebStream } from "../../runtime-inline/core/body.ts";
import { jsonCodec } from "../../runtime-inline/core/codec.ts";
import type { MethodInfo } from "../../runtime-inline/core/method.ts";
import { compressionGzip } from "../../runtime-inline/node/compression.ts";
import {
  serverConfig,
  type ServerConfig,
} from "../../runtime-inline/server/config.ts";
import type {
  HandlerOptions,
  ServerRequest,
  ServerResponse,
} from "../../runtime-inline/server/handler.ts";

export const testService = "test.v1.TestService";

/** The descriptor of test.v1.TestService, for createServiceHandler. */
export const testServiceDesc: DescService = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "test/v1/test.proto",
    package: "test.v1",
    dependency: ["google/protobuf/wrappers.proto"],
    syntax: "proto3",
    service: [{ name: "TestService" }],
  }),
  () => file_google_protobuf_wrappers,
).getService(testService)!;

export function testMethod(
  name: string,
  kind: MethodInfo["kind"] = "unary",
  noSideEffects = false,
): MethodInfo {
  return {
    service: testService,
    name,
    path: `/${testService}/${name}`,
    kind,
    input: StringValueSchema,
    output: StringValueSchema,
    noSideEffects,
  };
}

/** A service's config with gzip and JSON, as a default Node file has. */
export function testConfig(options: HandlerOptions = {}): ServerConfig {
  return serverConfig(options, [compressionGzip], jsonCodec);
}

export interface RequestInit {
  readonly method?: string;
  readonly path: string;
  readonly search?: string;
  readonly headers?: Record<string, string>;
  /** The body's chunks, in order. */
  readonly body?: readonly Uint8Array[];
  readonly httpVersion?: string;
  readonly signal?: AbortSignal;
}

/**
 * A ServerRequest over a web-standard body, counting how often the whole
 * header set is built (the server should build it only when asked).
 */
export function serverRequest(
  init: RequestInit,
): ServerRequest & { headersBuilt(): number } {
  const header = new Headers(init.headers);
  const search = init.search ?? "";
  const chunks = init.body ?? [];
  let built = 0;
  return {
    method: init.method ?? "POST",
    path: init.path,
    search,
    url: `http://127.0.0.1${init.path}${search}`,
    header: (name) => header.get(name),
    headers() {
      built++;
      return header;
    },
    // As the fetch handler reads a Request's body.
    body: bodyFromWebStream(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk);
          controller.close();
        },
      }),
    ),
    signal: init.signal ?? new AbortController().signal,
    httpVersion: init.httpVersion ?? "1.1",
    headersBuilt: () => built,
  };
}

export function stringValue(value: string): Uint8Array {
  return toBinary(StringValueSchema, create(StringValueSchema, { value }));
}

export function readStringValue(data: Uint8Array): string {
  return fromBinary(StringValueSchema, data).value;
}

/** The whole body of a response, streamed or not. */
export async function bodyBytes(response: ServerResponse): Promise<Uint8Array> {
  const body = response.body;
  if (body === undefined) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

export function bodyText(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Splits a body into its envelopes: flags and data. */
export function envelopes(
  bytes: Uint8Array,
): { flags: number; data: Uint8Array }[] {
  const out: { flags: number; data: Uint8Array }[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset);
    const length = view.getUint32(1);
    out.push({
      flags: bytes[offset]!,
      data: bytes.subarray(offset + 5, offset + 5 + length),
    });
    offset += 5 + length;
  }
  return out;
}
