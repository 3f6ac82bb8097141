// The conformance programs in conformance/, tested without the official
// runner (connectconformance, a Go program that is not installed here):
//
// 1. conformance/bin/server is started through its stdin contract (plain
//    HTTP/1.1, h2c, TLS with a required client certificate, and a message
//    receive limit) and every ConformanceService method is called with our
//    generated clients and with @connectrpc/connect-node's Connect, gRPC and
//    gRPC-Web transports, checking what service.proto asks of the server.
// 2. conformance/bin/client is fed ClientCompatRequests (each protocol,
//    codec, compression and stream type, errors, cancellations, timeouts,
//    GET, receive limits) against a connect-es ConformanceService, and its
//    ClientCompatResponses are checked the way the runner checks them.
// 3. Where connectconformance is on PATH, the official suite runs against
//    both programs.

import { execFileSync, spawn } from "node:child_process";
import {
  accessSync,
  constants as fsConstants,
  mkdtempSync,
  readFileSync,
  rmSync,
} from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import {
  deflateSync,
  gzipSync,
  inflateSync,
  zstdCompressSync,
  zstdDecompressSync,
} from "node:zlib";
import {
  create,
  equals,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { AnySchema, anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import {
  Code as EsCode,
  ConnectError as EsConnectError,
  createClient,
  createContextKey,
  createContextValues,
  type Client,
  type ConnectRouter,
  type HandlerContext as EsHandlerContext,
  type Transport,
} from "@connectrpc/connect";
import type { Compression as EsCompression } from "@connectrpc/connect/protocol";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  compressionBrotli as esCompressionBrotli,
  compressionGzip as esCompressionGzip,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ClientCompatRequestSchema,
  ClientCompatResponseSchema,
  ClientResponseResultSchema,
  type ClientCompatRequest,
  type ClientCompatResponse,
  type ClientResponseResult,
} from "../conformance/gen/connectrpc/conformance/v1/client_compat_pb.ts";
import {
  Code as ProtoCode,
  Codec,
  Compression,
  HTTPVersion,
  Protocol,
  StreamType,
  TLSCredsSchema,
} from "../conformance/gen/connectrpc/conformance/v1/config_pb.ts";
import {
  ServerCompatRequestSchema,
  ServerCompatResponseSchema,
  type ServerCompatResponse,
} from "../conformance/gen/connectrpc/conformance/v1/server_compat_pb.ts";
import {
  createConformanceServiceClient,
  createConformanceServiceHandler,
  type ConformanceServiceClient,
  type NodeClientOptions,
} from "../conformance/gen/connectrpc/conformance/v1/service.ConformanceService.ts";
import {
  BidiStreamRequestSchema,
  ClientStreamRequestSchema,
  ConformancePayload_RequestInfoSchema,
  ConformancePayloadSchema,
  ConformanceService,
  ErrorSchema,
  HeaderSchema,
  IdempotentUnaryRequestSchema,
  ServerStreamRequestSchema,
  UnaryRequestSchema,
  UnaryResponseSchema,
  UnimplementedRequestSchema,
  type ConformancePayload,
  type ConformancePayload_RequestInfo,
  type Error as ProtoError,
  type Header,
  type StreamResponseDefinition,
  type UnaryResponseDefinition,
} from "../conformance/gen/connectrpc/conformance/v1/service_pb.ts";
import { createHttpsHttpClient } from "../conformance/https-client.ts";
import { createConformanceImplementation } from "../conformance/service.ts";
import {
  anyToDetail,
  appendProtoHeaders,
  conformanceRegistry,
  frameDelimited,
  headersToProto,
  packAny,
  readDelimited,
} from "../conformance/protocol.ts";
import { repoRoot } from "./support/generate.ts";
import { testCertificate, type TestCertificate } from "./support/tls.ts";
import { specCodeNames } from "./support/code-names.ts";

const conformanceDir = join(repoRoot, "conformance");
const serverProgram = join(conformanceDir, "bin/server");

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/** A self-signed client certificate (CN conformance-client), made with openssl like testCertificate. */
function clientCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "cs-conformance-client-"));
  try {
    const keyFile = join(dir, "key.pem");
    const certFile = join(dir, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        keyFile,
        "-out",
        certFile,
        "-days",
        "2",
        "-subj",
        "/CN=conformance-client",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    return {
      key: readFileSync(keyFile, "utf8"),
      cert: readFileSync(certFile, "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);

/**
 * The values of a header as the runner compares them: repeated values arrive
 * joined by ", " and are split again.
 */
function headerValues(headers: Headers, name: string): string[] | undefined {
  const value = headers.get(name);
  return value === null ? undefined : value.split(",").map((v) => v.trim());
}

function protoHeaderValues(
  headers: readonly Header[],
  name: string,
): string[] | undefined {
  const found = headers.filter((h) => h.name.toLowerCase() === name);
  if (found.length === 0) return undefined;
  return found.flatMap((h) =>
    h.value.flatMap((v) => v.split(",").map((p) => p.trim())),
  );
}

function unpack<Desc extends DescMessage>(
  any: Any | undefined,
  desc: Desc,
): MessageShape<Desc> {
  expect(any?.typeUrl).toBe(`type.googleapis.com/${desc.typeName}`);
  const message = anyUnpack(any!, desc);
  expect(message).toBeDefined();
  return message!;
}

function expectRequests<Desc extends DescMessage>(
  info: ConformancePayload_RequestInfo | undefined,
  desc: Desc,
  expected: readonly MessageInitShape<Desc>[],
): void {
  expect(info?.requests.length).toBe(expected.length);
  info!.requests.forEach((any, i) => {
    expect(equals(desc, unpack(any, desc), create(desc, expected[i]))).toBe(
      true,
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// 1. The server program
// ---------------------------------------------------------------------------

interface ServerProgram {
  readonly response: ServerCompatResponse;
  readonly url: string;
  stop(): void;
}

const serverPrograms: ServerProgram[] = [];

/** Starts conformance/bin/server with one ServerCompatRequest and reads its ServerCompatResponse. */
async function startServerProgram(
  init: MessageInitShape<typeof ServerCompatRequestSchema>,
): Promise<ServerProgram> {
  const child = spawn(serverProgram, [], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.stdin.write(
    frameDelimited(
      toBinary(
        ServerCompatRequestSchema,
        create(ServerCompatRequestSchema, init),
      ),
    ),
  );
  let response: ServerCompatResponse | undefined;
  for await (const message of readDelimited(child.stdout)) {
    response = fromBinary(ServerCompatResponseSchema, message);
    break;
  }
  if (response === undefined) {
    child.kill();
    throw new Error("the server program wrote no ServerCompatResponse");
  }
  const scheme = init.useTls === true ? "https" : "http";
  const program = {
    response,
    url: `${scheme}://${response.host}:${response.port}`,
    stop: () => void child.kill("SIGTERM"),
  };
  serverPrograms.push(program);
  return program;
}

/** What one call produced, the same way for our client and connect-es. */
interface Outcome {
  header: Headers;
  trailer: Headers;
  payloads: ConformancePayload[];
  error: CallError | undefined;
  elapsedMs: number;
}

/** What both libraries' ConnectErrors have. */
interface CallError {
  code: number;
  rawMessage: string;
  metadata: Headers;
  details: readonly { type?: string; desc?: DescMessage }[];
  findDetails<Desc extends DescMessage>(desc: Desc): MessageShape<Desc>[];
}

interface CallOptions {
  headers?: [string, string][];
  timeoutMs?: number;
}

type UnaryInit = MessageInitShape<typeof UnaryRequestSchema>;
type IdempotentInit = MessageInitShape<typeof IdempotentUnaryRequestSchema>;
type ServerStreamInit = MessageInitShape<typeof ServerStreamRequestSchema>;
type ClientStreamInit = MessageInitShape<typeof ClientStreamRequestSchema>;
type BidiInit = MessageInitShape<typeof BidiStreamRequestSchema>;
type Requests<T> = Iterable<T> | AsyncIterable<T>;

/** One way of calling ConformanceService: a library, a protocol, a transport. */
interface Caller {
  unary(request: UnaryInit, options?: CallOptions): Promise<Outcome>;
  idempotentUnary(
    request: IdempotentInit,
    options?: CallOptions,
  ): Promise<Outcome>;
  unimplemented(options?: CallOptions): Promise<Outcome>;
  serverStream(
    request: ServerStreamInit,
    options?: CallOptions,
  ): Promise<Outcome>;
  clientStream(
    requests: Requests<ClientStreamInit>,
    options?: CallOptions,
  ): Promise<Outcome>;
  bidiStream(
    requests: (outcome: Outcome) => Requests<BidiInit>,
    options?: CallOptions,
  ): Promise<Outcome>;
}

async function capture(
  run: (outcome: Outcome) => Promise<void>,
): Promise<Outcome> {
  const outcome: Outcome = {
    header: new Headers(),
    trailer: new Headers(),
    payloads: [],
    error: undefined,
    elapsedMs: 0,
  };
  const start = performance.now();
  try {
    await run(outcome);
  } catch (e) {
    outcome.error = e as CallError;
    expect(typeof outcome.error.code).toBe("number");
  }
  outcome.elapsedMs = performance.now() - start;
  return outcome;
}

function oursCaller(client: ConformanceServiceClient): Caller {
  const opts = (o: CallOptions = {}) => ({
    headers: o.headers ?? [],
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  });
  const stream = async (
    outcome: Outcome,
    start: () => Promise<{
      header: Headers;
      trailer: Headers;
      messages: AsyncIterable<{ payload?: ConformancePayload | undefined }>;
    }>,
  ) => {
    const response = await start();
    outcome.header = response.header;
    outcome.trailer = response.trailer;
    for await (const m of response.messages) outcome.payloads.push(m.payload!);
  };
  return {
    unary: (request, o) =>
      capture(async (outcome) => {
        const r = await client.unary.raw(request, opts(o));
        outcome.header = r.header;
        outcome.trailer = r.trailer;
        outcome.payloads.push(r.message.payload!);
      }),
    idempotentUnary: (request, o) =>
      capture(async (outcome) => {
        const r = await client.idempotentUnary.raw(request, opts(o));
        outcome.header = r.header;
        outcome.trailer = r.trailer;
        outcome.payloads.push(r.message.payload!);
      }),
    unimplemented: (o) =>
      capture(async (outcome) => {
        const r = await client.unimplemented.raw({}, opts(o));
        outcome.header = r.header;
      }),
    serverStream: (request, o) =>
      capture((outcome) =>
        stream(outcome, () => client.serverStream.raw(request, opts(o))),
      ),
    clientStream: (requests, o) =>
      capture(async (outcome) => {
        const r = await client.clientStream.raw(requests, opts(o));
        outcome.header = r.header;
        outcome.trailer = r.trailer;
        outcome.payloads.push(r.message.payload!);
      }),
    bidiStream: (requests, o) =>
      capture((outcome) =>
        stream(outcome, () =>
          client.bidiStream.raw(requests(outcome), opts(o)),
        ),
      ),
  };
}

function esCaller(transport: Transport): Caller {
  const client: Client<typeof ConformanceService> = createClient(
    ConformanceService,
    transport,
  );
  const opts = (outcome: Outcome, o: CallOptions = {}) => ({
    headers: o.headers ?? [],
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    onHeader: (h: Headers) => (outcome.header = h),
    onTrailer: (t: Headers) => (outcome.trailer = t),
  });
  return {
    unary: (request, o) =>
      capture(async (outcome) => {
        const r = await client.unary(request, opts(outcome, o));
        outcome.payloads.push(r.payload!);
      }),
    idempotentUnary: (request, o) =>
      capture(async (outcome) => {
        const r = await client.idempotentUnary(request, opts(outcome, o));
        outcome.payloads.push(r.payload!);
      }),
    unimplemented: (o) =>
      capture(async (outcome) => {
        await client.unimplemented({}, opts(outcome, o));
      }),
    serverStream: (request, o) =>
      capture(async (outcome) => {
        for await (const m of client.serverStream(request, opts(outcome, o))) {
          outcome.payloads.push(m.payload!);
        }
      }),
    clientStream: (requests, o) =>
      capture(async (outcome) => {
        const r = await client.clientStream(
          toAsync(requests),
          opts(outcome, o),
        );
        outcome.payloads.push(r.payload!);
      }),
    bidiStream: (requests, o) =>
      capture(async (outcome) => {
        for await (const m of client.bidiStream(
          toAsync(requests(outcome)),
          opts(outcome, o),
        )) {
          outcome.payloads.push(m.payload!);
        }
      }),
  };
}

async function* toAsync<T>(items: Requests<T>): AsyncGenerator<T> {
  yield* items;
}

/** Full duplex: each request goes out once the response to the one before has arrived. */
function pingPong(requests: readonly BidiInit[]) {
  return async function* (outcome: Outcome): AsyncGenerator<BidiInit> {
    for (const [i, request] of requests.entries()) {
      const deadline = Date.now() + 5_000;
      while (outcome.payloads.length < i && Date.now() < deadline) {
        await sleep(2);
      }
      expect(outcome.payloads.length).toBe(i);
      yield request;
    }
  };
}

/** Everything a failed call carried: headers, trailers and the error's metadata. */
function allMetadata(outcome: Outcome): Headers {
  const all = new Headers(outcome.header);
  outcome.trailer.forEach((v, k) => all.append(k, v));
  outcome.error?.metadata.forEach((v, k) => all.append(k, v));
  return all;
}

const requestHeaders: [string, string][] = [
  ["x-conformance-test", "Value1"],
  ["x-conformance-test", "Value2"],
];
const responseHeaders = [{ name: "x-custom-header", value: ["foo", "bar"] }];
const responseTrailers = [
  { name: "x-custom-trailer", value: ["bing", "quux"] },
];
const unicodeMessage =
  "\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\n";
const customDetail = packAny(
  HeaderSchema,
  create(HeaderSchema, { name: "detail", value: ["custom"] }),
);

function expectEchoedHeaders(info: ConformancePayload_RequestInfo | undefined) {
  expect(info).toBeDefined();
  expect(protoHeaderValues(info!.requestHeaders, "x-conformance-test")).toEqual(
    ["Value1", "Value2"],
  );
}

function expectResponseMetadata(headers: Headers, trailers: Headers) {
  expect(headerValues(headers, "x-custom-header")).toEqual(["foo", "bar"]);
  expect(headerValues(trailers, "x-custom-trailer")).toEqual(["bing", "quux"]);
}

function expectErrorMetadata(outcome: Outcome) {
  const all = allMetadata(outcome);
  expect(all.get("x-custom-header")).toContain("foo");
  expect(all.get("x-custom-trailer")).toContain("quux");
}

interface Variant {
  readonly name: string;
  readonly server: "http1" | "h2c" | "tls";
  /** Full-duplex bidi needs HTTP/2 end to end. */
  readonly fullDuplex: boolean;
  /** Calls IdempotentUnary with Connect GET. */
  readonly get: boolean;
  caller(url: string): Caller;
}

let tlsServerCert: TestCertificate;
let tlsClientCert: TestCertificate;
const sessionManagers: Http2SessionManager[] = [];

function ours(
  name: string,
  server: Variant["server"],
  options: NodeClientOptions,
  extra: { fullDuplex?: boolean; https1?: boolean } = {},
): Variant {
  return {
    name: `ours: ${name}`,
    server,
    fullDuplex: extra.fullDuplex ?? false,
    get: options.useHttpGet === true,
    caller: (url) => {
      const tls =
        server === "tls"
          ? {
              ca: tlsServerCert.cert,
              cert: tlsClientCert.cert,
              key: tlsClientCert.key,
            }
          : undefined;
      return oursCaller(
        createConformanceServiceClient(url, {
          jsonOptions: { registry: conformanceRegistry },
          ...options,
          ...(tls !== undefined && extra.https1 === true
            ? { httpClient: createHttpsHttpClient(tls) }
            : {}),
          ...(tls !== undefined && options.transport === "http2"
            ? { http2: { sessionOptions: tls } }
            : {}),
        }),
      );
    },
  };
}

function es(
  name: string,
  server: Variant["server"],
  protocol: "connect" | "grpc" | "grpc-web",
  options: {
    httpVersion: "1.1" | "2";
    binary: boolean;
    compression?: "gzip" | "br";
    useHttpGet?: boolean;
  },
): Variant {
  return {
    name: `connect-es: ${name}`,
    server,
    fullDuplex: options.httpVersion === "2",
    get: options.useHttpGet === true,
    caller: (url) => {
      const tls =
        server === "tls"
          ? {
              ca: tlsServerCert.cert,
              cert: tlsClientCert.cert,
              key: tlsClientCert.key,
            }
          : undefined;
      const compression =
        options.compression === "gzip"
          ? esCompressionGzip
          : options.compression === "br"
            ? esCompressionBrotli
            : undefined;
      const common = {
        baseUrl: url,
        useBinaryFormat: options.binary,
        jsonOptions: { registry: conformanceRegistry },
        ...(compression !== undefined
          ? { sendCompression: compression, compressMinBytes: 0 }
          : {}),
      };
      let transport: Transport;
      if (options.httpVersion === "1.1") {
        const http1 = {
          ...common,
          httpVersion: "1.1" as const,
          ...(tls !== undefined ? { nodeOptions: tls } : {}),
        };
        transport =
          protocol === "connect"
            ? createConnectTransport({
                ...http1,
                useHttpGet: options.useHttpGet ?? false,
              })
            : createGrpcWebTransport(http1);
      } else {
        const sessionManager = new Http2SessionManager(url, undefined, tls);
        sessionManagers.push(sessionManager);
        const http2Options = {
          ...common,
          httpVersion: "2" as const,
          sessionManager,
        };
        transport =
          protocol === "connect"
            ? createConnectTransport({
                ...http2Options,
                useHttpGet: options.useHttpGet ?? false,
              })
            : protocol === "grpc"
              ? createGrpcTransport(http2Options)
              : createGrpcWebTransport(http2Options);
      }
      return esCaller(transport);
    },
  };
}

const variants: Variant[] = [
  ours("Connect, HTTP/1.1 fetch, binary", "http1", { transport: "fetch" }),
  ours("Connect, HTTP/1.1 fetch, JSON, gzip, GET", "http1", {
    transport: "fetch",
    binary: false,
    sendCompression: "gzip",
    compressMinBytes: 0,
    useHttpGet: true,
  }),
  ours("gRPC-Web, HTTP/1.1 fetch, binary, br", "http1", {
    protocol: "grpc-web",
    transport: "fetch",
    sendCompression: "br",
    compressMinBytes: 0,
  }),
  ours(
    "Connect, h2c, binary, zstd, GET",
    "h2c",
    {
      transport: "http2",
      sendCompression: "zstd",
      compressMinBytes: 0,
      useHttpGet: true,
    },
    { fullDuplex: true },
  ),
  ours(
    "gRPC, h2c, JSON",
    "h2c",
    { protocol: "grpc", binary: false },
    { fullDuplex: true },
  ),
  ours(
    "gRPC, h2c, binary, deflate",
    "h2c",
    {
      protocol: "grpc",
      sendCompression: "deflate",
      compressMinBytes: 0,
    },
    { fullDuplex: true },
  ),
  ours(
    "gRPC-Web, h2c, JSON, gzip",
    "h2c",
    {
      protocol: "grpc-web",
      transport: "http2",
      binary: false,
      sendCompression: "gzip",
      compressMinBytes: 0,
    },
    { fullDuplex: true },
  ),
  ours(
    "Connect, TLS h2, client cert, binary",
    "tls",
    { transport: "http2" },
    { fullDuplex: true },
  ),
  ours(
    "gRPC, TLS h2, client cert, binary, gzip",
    "tls",
    {
      protocol: "grpc",
      transport: "http2",
      sendCompression: "gzip",
      compressMinBytes: 0,
    },
    { fullDuplex: true },
  ),
  ours(
    "gRPC-Web, TLS HTTP/1.1 (node:https), client cert, JSON",
    "tls",
    {
      protocol: "grpc-web",
      binary: false,
    },
    { https1: true },
  ),
  ours(
    "Connect, TLS HTTP/1.1 (node:https), client cert, binary, GET",
    "tls",
    {
      useHttpGet: true,
    },
    { https1: true },
  ),
  es("Connect, HTTP/1.1, JSON, GET", "http1", "connect", {
    httpVersion: "1.1",
    binary: false,
    useHttpGet: true,
  }),
  es("gRPC-Web, HTTP/1.1, binary, gzip", "http1", "grpc-web", {
    httpVersion: "1.1",
    binary: true,
    compression: "gzip",
  }),
  es("Connect, h2c, binary, br, GET", "h2c", "connect", {
    httpVersion: "2",
    binary: true,
    compression: "br",
    useHttpGet: true,
  }),
  es("gRPC, h2c, binary, gzip", "h2c", "grpc", {
    httpVersion: "2",
    binary: true,
    compression: "gzip",
  }),
  es("gRPC, h2c, JSON", "h2c", "grpc", { httpVersion: "2", binary: false }),
  es("gRPC-Web, h2c, JSON", "h2c", "grpc-web", {
    httpVersion: "2",
    binary: false,
  }),
  es("gRPC, TLS h2, client cert, binary", "tls", "grpc", {
    httpVersion: "2",
    binary: true,
  }),
  es("Connect, TLS HTTP/1.1, client cert, JSON", "tls", "connect", {
    httpVersion: "1.1",
    binary: false,
  }),
];

describe("conformance server program", () => {
  const urls = { http1: "", h2c: "", tls: "" };
  let limited: ServerProgram;
  let tlsProgram: ServerProgram;

  beforeAll(async () => {
    tlsServerCert = testCertificate();
    tlsClientCert = clientCertificate();
    const [http1, h2c, tls, limit] = await Promise.all([
      startServerProgram({
        protocol: Protocol.CONNECT,
        httpVersion: HTTPVersion.HTTP_VERSION_1,
      }),
      startServerProgram({
        protocol: Protocol.GRPC,
        httpVersion: HTTPVersion.HTTP_VERSION_2,
      }),
      startServerProgram({
        protocol: Protocol.GRPC,
        httpVersion: HTTPVersion.HTTP_VERSION_2,
        useTls: true,
        serverCreds: {
          cert: bytes(tlsServerCert.cert),
          key: bytes(tlsServerCert.key),
        },
        clientTlsCert: bytes(tlsClientCert.cert),
      }),
      startServerProgram({
        protocol: Protocol.CONNECT,
        httpVersion: HTTPVersion.HTTP_VERSION_2,
        messageReceiveLimit: 200,
      }),
    ]);
    urls.http1 = http1!.url;
    urls.h2c = h2c!.url;
    urls.tls = tls!.url;
    tlsProgram = tls!;
    limited = limit!;
  });

  afterAll(() => {
    for (const manager of sessionManagers.splice(0)) manager.abort();
    for (const program of serverPrograms.splice(0)) program.stop();
  });

  it("answers with its address, and the certificate when TLS is on", () => {
    for (const program of serverPrograms) {
      expect(program.response.host).toBe("127.0.0.1");
      expect(program.response.port).toBeGreaterThan(0);
    }
    expect(new TextDecoder().decode(tlsProgram.response.pemCert)).toBe(
      tlsServerCert.cert,
    );
  });

  it("serves HTTP/1.1 over TLS (node:https)", async () => {
    const program = await startServerProgram({
      protocol: Protocol.CONNECT,
      httpVersion: HTTPVersion.HTTP_VERSION_1,
      useTls: true,
      serverCreds: {
        cert: bytes(tlsServerCert.cert),
        key: bytes(tlsServerCert.key),
      },
    });
    const call = oursCaller(
      createConformanceServiceClient(program.url, {
        httpClient: createHttpsHttpClient({ ca: tlsServerCert.cert }),
      }),
    );
    const outcome = await call.serverStream({
      responseDefinition: { responseData: [bytes("over https")] },
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.payloads[0]!.data).toEqual(bytes("over https"));
  });

  // streaming_delivery.yaml: responses go out as they are produced.
  it.each([
    ["Connect, HTTP/1.1", "http1", { transport: "fetch" }],
    [
      "gRPC-Web, HTTP/1.1",
      "http1",
      { protocol: "grpc-web", transport: "fetch" },
    ],
    ["gRPC, h2c", "h2c", { protocol: "grpc" }],
  ] as const)(
    "%s: delivers each stream response as it is produced",
    async (_, server, options) => {
      const client = createConformanceServiceClient(urls[server], options);
      const start = performance.now();
      const arrivals: number[] = [];
      for await (const _m of client.serverStream({
        responseDefinition: { responseData: delayed(3), responseDelayMs: 100 },
      })) {
        arrivals.push(performance.now() - start);
      }
      expect(arrivals).toHaveLength(3);
      expect(arrivals[0]).toBeLessThan(250);
      expect(arrivals[2]! - arrivals[0]!).toBeGreaterThanOrEqual(180);
    },
  );

  it("refuses TLS clients without the required client certificate", async () => {
    const client = createConformanceServiceClient(tlsProgram.url, {
      transport: "http2",
      http2: { sessionOptions: { ca: tlsServerCert.cert } },
    });
    await expect(client.unary({})).rejects.toMatchObject({ code: 14 });
  });

  describe.each(variants.map((v) => [v.name, v] as const))(
    "%s",
    (_, variant) => {
      let call: Caller;
      beforeAll(() => {
        call = variant.caller(urls[variant.server]);
      });

      it("Unary echoes headers, timeout and request; sends headers, trailers and data", async () => {
        const request: UnaryInit = {
          responseDefinition: {
            responseHeaders,
            responseTrailers,
            response: { case: "responseData", value: bytes("unary data") },
          },
          requestData: bytes("padding"),
        };
        const outcome = await call.unary(request, {
          headers: requestHeaders,
          timeoutMs: 5_000,
        });
        expect(outcome.error).toBeUndefined();
        expect(outcome.payloads).toHaveLength(1);
        const [payload] = outcome.payloads;
        expect(payload!.data).toEqual(bytes("unary data"));
        expectEchoedHeaders(payload!.requestInfo);
        const timeout = Number(payload!.requestInfo!.timeoutMs);
        expect(timeout).toBeGreaterThan(4_000);
        expect(timeout).toBeLessThanOrEqual(5_000);
        expectRequests(payload!.requestInfo, UnaryRequestSchema, [request]);
        expect(payload!.requestInfo!.connectGetInfo).toBeUndefined();
        expectResponseMetadata(outcome.header, outcome.trailer);
      });

      it("Unary without a response definition answers the request info alone", async () => {
        const outcome = await call.unary({});
        expect(outcome.error).toBeUndefined();
        const [payload] = outcome.payloads;
        expect(payload!.data).toHaveLength(0);
        expect(payload!.requestInfo!.timeoutMs).toBeUndefined();
        expectRequests(payload!.requestInfo, UnaryRequestSchema, [{}]);
      });

      it("Unary raises the defined error, with the request info as its last detail", async () => {
        const request: UnaryInit = {
          responseDefinition: {
            responseHeaders,
            responseTrailers,
            response: {
              case: "error",
              value: {
                code: 7,
                message: unicodeMessage,
                details: [customDetail],
              },
            },
          },
        };
        const outcome = await call.unary(request, { headers: requestHeaders });
        expect(outcome.payloads).toHaveLength(0);
        expect(outcome.error?.code).toBe(7);
        expect(outcome.error?.rawMessage).toBe(unicodeMessage);
        expect(outcome.error?.details).toHaveLength(2);
        expect(outcome.error?.findDetails(HeaderSchema)).toEqual([
          create(HeaderSchema, { name: "detail", value: ["custom"] }),
        ]);
        const [info] = outcome.error!.findDetails(
          ConformancePayload_RequestInfoSchema,
        );
        expectEchoedHeaders(info);
        expectRequests(info, UnaryRequestSchema, [request]);
        expectErrorMetadata(outcome);
      });

      it("IdempotentUnary echoes the request (and a Connect GET's query)", async () => {
        const request: IdempotentInit = {
          responseDefinition: {
            responseHeaders,
            responseTrailers,
            response: { case: "responseData", value: bytes("idempotent") },
          },
        };
        const outcome = await call.idempotentUnary(request, {
          headers: requestHeaders,
        });
        expect(outcome.error).toBeUndefined();
        const [payload] = outcome.payloads;
        expect(payload!.data).toEqual(bytes("idempotent"));
        expectEchoedHeaders(payload!.requestInfo);
        expectRequests(payload!.requestInfo, IdempotentUnaryRequestSchema, [
          request,
        ]);
        expectResponseMetadata(outcome.header, outcome.trailer);
        const getInfo = payload!.requestInfo!.connectGetInfo;
        if (!variant.get) {
          expect(getInfo).toBeUndefined();
          return;
        }
        expect(getInfo).toBeDefined();
        const params = new Map(
          getInfo!.queryParams.map((p) => [p.name, p.value]),
        );
        expect(params.get("connect")).toEqual(["v1"]);
        expect(params.get("encoding")).toHaveLength(1);
        expect(params.get("message")).toHaveLength(1);
      });

      it("Unimplemented is not implemented", async () => {
        const outcome = await call.unimplemented();
        expect(outcome.error?.code).toBe(12);
      });

      it("ServerStream sends every response, the request info in the first only", async () => {
        const request: ServerStreamInit = {
          responseDefinition: {
            responseHeaders,
            responseTrailers,
            responseData: [bytes("one"), bytes("two"), bytes("three")],
            responseDelayMs: 20,
          },
        };
        const outcome = await call.serverStream(request, {
          headers: requestHeaders,
          timeoutMs: 5_000,
        });
        expect(outcome.error).toBeUndefined();
        expect(
          outcome.payloads.map((p) => new TextDecoder().decode(p.data)),
        ).toEqual(["one", "two", "three"]);
        expectEchoedHeaders(outcome.payloads[0]!.requestInfo);
        expect(outcome.payloads[0]!.requestInfo!.timeoutMs).toBeDefined();
        expectRequests(
          outcome.payloads[0]!.requestInfo,
          ServerStreamRequestSchema,
          [request],
        );
        expect(outcome.payloads[1]!.requestInfo).toBeUndefined();
        expect(outcome.payloads[2]!.requestInfo).toBeUndefined();
        // Three delays of 20 ms.
        expect(outcome.elapsedMs).toBeGreaterThanOrEqual(55);
        expectResponseMetadata(outcome.header, outcome.trailer);
      });

      it("ServerStream ends with the error after its responses", async () => {
        const outcome = await call.serverStream({
          responseDefinition: {
            responseHeaders,
            responseTrailers,
            responseData: [bytes("one"), bytes("two")],
            error: err(13, "server stream failed"),
          },
        });
        expect(outcome.payloads).toHaveLength(2);
        expect(outcome.error?.code).toBe(13);
        expect(outcome.error?.rawMessage).toBe("server stream failed");
        // Responses were sent: no request info in the details.
        expect(outcome.error?.details).toHaveLength(0);
        expect(headerValues(outcome.header, "x-custom-header")).toEqual([
          "foo",
          "bar",
        ]);
        expectErrorMetadata(outcome);
      });

      it("ServerStream fails at once with the request info as a detail", async () => {
        const request: ServerStreamInit = {
          responseDefinition: {
            responseHeaders,
            responseTrailers,
            error: err(5, "not found", [customDetail]),
          },
        };
        const outcome = await call.serverStream(request, {
          headers: requestHeaders,
        });
        expect(outcome.payloads).toHaveLength(0);
        expect(outcome.error?.code).toBe(5);
        expect(outcome.error?.rawMessage).toBe("not found");
        expect(outcome.error?.details).toHaveLength(2);
        const [info] = outcome.error!.findDetails(
          ConformancePayload_RequestInfoSchema,
        );
        expectEchoedHeaders(info);
        expectRequests(info, ServerStreamRequestSchema, [request]);
        expectErrorMetadata(outcome);
      });

      it("ServerStream without responses sends headers and trailers only", async () => {
        const outcome = await call.serverStream({
          responseDefinition: { responseHeaders, responseTrailers },
        });
        expect(outcome.error).toBeUndefined();
        expect(outcome.payloads).toHaveLength(0);
        const all = allMetadata(outcome);
        expect(all.get("x-custom-header")).toContain("foo");
        expect(all.get("x-custom-trailer")).toContain("bing");
      });

      it("ClientStream echoes every request in order", async () => {
        const requests: ClientStreamInit[] = [
          {
            responseDefinition: {
              responseHeaders,
              responseTrailers,
              response: { case: "responseData", value: bytes("client stream") },
            },
          },
          { requestData: bytes("second") },
          // Definitions after the first are ignored.
          {
            requestData: bytes("third"),
            responseDefinition: {
              response: { case: "error", value: { code: 13 } },
            },
          },
        ];
        const outcome = await call.clientStream(requests, {
          headers: requestHeaders,
          timeoutMs: 5_000,
        });
        expect(outcome.error).toBeUndefined();
        const [payload] = outcome.payloads;
        expect(payload!.data).toEqual(bytes("client stream"));
        expectEchoedHeaders(payload!.requestInfo);
        expect(payload!.requestInfo!.timeoutMs).toBeDefined();
        expectRequests(
          payload!.requestInfo,
          ClientStreamRequestSchema,
          requests,
        );
        expectResponseMetadata(outcome.header, outcome.trailer);
      });

      it("ClientStream raises the defined error with every request in its detail", async () => {
        const requests: ClientStreamInit[] = [
          {
            responseDefinition: {
              responseHeaders,
              responseTrailers,
              response: {
                case: "error",
                value: { code: 16, message: "unauthenticated" },
              },
            },
          },
          { requestData: bytes("second") },
        ];
        const outcome = await call.clientStream(requests);
        expect(outcome.error?.code).toBe(16);
        expect(outcome.error?.rawMessage).toBe("unauthenticated");
        const [info] = outcome.error!.findDetails(
          ConformancePayload_RequestInfoSchema,
        );
        expectRequests(info, ClientStreamRequestSchema, requests);
        expectErrorMetadata(outcome);
      });

      it("ClientStream without requests answers the request info alone", async () => {
        const outcome = await call.clientStream([], {
          headers: requestHeaders,
        });
        expect(outcome.error).toBeUndefined();
        const [payload] = outcome.payloads;
        expect(payload!.data).toHaveLength(0);
        expectEchoedHeaders(payload!.requestInfo);
        expect(payload!.requestInfo!.requests).toHaveLength(0);
      });

      it("BidiStream in half duplex answers once all requests are in", async () => {
        const requests: BidiInit[] = [
          {
            responseDefinition: {
              responseHeaders,
              responseTrailers,
              responseData: [bytes("one"), bytes("two")],
            },
          },
          { requestData: bytes("second") },
          { requestData: bytes("third") },
        ];
        const outcome = await call.bidiStream(() => requests, {
          headers: requestHeaders,
        });
        expect(outcome.error).toBeUndefined();
        expect(outcome.payloads).toHaveLength(2);
        expectEchoedHeaders(outcome.payloads[0]!.requestInfo);
        expectRequests(
          outcome.payloads[0]!.requestInfo,
          BidiStreamRequestSchema,
          requests,
        );
        expect(outcome.payloads[1]!.data).toEqual(bytes("two"));
        expect(outcome.payloads[1]!.requestInfo).toBeUndefined();
        expectResponseMetadata(outcome.header, outcome.trailer);
      });

      it("BidiStream in half duplex fails with every request in the detail", async () => {
        const requests: BidiInit[] = [
          {
            responseDefinition: {
              responseHeaders,
              responseTrailers,
              error: err(9, "half duplex failed"),
            },
          },
          { requestData: bytes("second") },
        ];
        const outcome = await call.bidiStream(() => requests);
        expect(outcome.payloads).toHaveLength(0);
        expect(outcome.error?.code).toBe(9);
        const [info] = outcome.error!.findDetails(
          ConformancePayload_RequestInfoSchema,
        );
        expectRequests(info, BidiStreamRequestSchema, requests);
        expectErrorMetadata(outcome);
      });

      // Full duplex needs HTTP/2 end to end; HTTP/1.1 variants run the
      // half-duplex test instead.
      it.runIf(variant.fullDuplex)(
        "BidiStream in full duplex answers each request as it arrives",
        async () => {
          const requests: BidiInit[] = [
            {
              fullDuplex: true,
              responseDefinition: {
                responseHeaders,
                responseTrailers,
                responseData: [bytes("one"), bytes("two"), bytes("three")],
              },
            },
            { requestData: bytes("second") },
            { requestData: bytes("third") },
          ];
          const outcome = await call.bidiStream(pingPong(requests), {
            headers: requestHeaders,
            timeoutMs: 5_000,
          });
          expect(outcome.error).toBeUndefined();
          expect(outcome.payloads).toHaveLength(3);
          outcome.payloads.forEach((payload, i) => {
            expectRequests(payload.requestInfo, BidiStreamRequestSchema, [
              requests[i]!,
            ]);
          });
          expectEchoedHeaders(outcome.payloads[0]!.requestInfo);
          expect(outcome.payloads[0]!.requestInfo!.timeoutMs).toBeDefined();
          expect(outcome.payloads[1]!.requestInfo!.requestHeaders).toHaveLength(
            0,
          );
          expectResponseMetadata(outcome.header, outcome.trailer);
        },
      );

      // Full duplex needs HTTP/2 end to end; HTTP/1.1 variants run the
      // half-duplex test instead.
      it.runIf(variant.fullDuplex)(
        "BidiStream in full duplex raises the error once it runs out of responses",
        async () => {
          const requests: BidiInit[] = [
            {
              fullDuplex: true,
              responseDefinition: {
                responseHeaders,
                responseTrailers,
                responseData: [bytes("one")],
                error: err(10, "full duplex failed"),
              },
            },
            { requestData: bytes("second") },
          ];
          const outcome = await call.bidiStream(pingPong(requests));
          expect(outcome.payloads).toHaveLength(1);
          expect(outcome.error?.code).toBe(10);
          expect(outcome.error?.rawMessage).toBe("full duplex failed");
          expect(outcome.error?.details).toHaveLength(0);
          expectErrorMetadata(outcome);
        },
      );

      it("a deadline shorter than the response delay fails with deadline_exceeded", async () => {
        const [unary, stream] = await Promise.all([
          call.unary(
            {
              responseDefinition: {
                responseDelayMs: 1_500,
                response: { case: "responseData", value: bytes("late") },
              },
            },
            { timeoutMs: 200 },
          ),
          call.serverStream(
            {
              responseDefinition: {
                responseDelayMs: 1_500,
                responseData: [bytes("late"), bytes("later")],
              },
            },
            { timeoutMs: 200 },
          ),
        ]);
        for (const outcome of [unary, stream]) {
          expect(outcome.error?.code).toBe(4);
          expect(outcome.payloads).toHaveLength(0);
          expect(outcome.elapsedMs).toBeLessThan(1_200);
        }
      });

      it("Unary waits response_delay_ms before answering", async () => {
        const outcome = await call.unary({
          responseDefinition: {
            responseDelayMs: 150,
            response: { case: "responseData", value: bytes("late") },
          },
        });
        expect(outcome.error).toBeUndefined();
        expect(outcome.elapsedMs).toBeGreaterThanOrEqual(145);
      });
    },
  );

  describe("with message_receive_limit", () => {
    const limit = 200;
    // A request of exactly `size` bytes, padded with request_data.
    function padded(size: number): UnaryInit {
      const base = toBinary(
        UnaryRequestSchema,
        create(UnaryRequestSchema, {
          requestData: new Uint8Array(size),
        }),
      );
      const overhead = base.byteLength - size;
      return { requestData: new Uint8Array(size - overhead) };
    }

    it.each([
      ["Connect", { transport: "http2" } as NodeClientOptions],
      ["gRPC", { protocol: "grpc" } as NodeClientOptions],
      [
        "gRPC-Web",
        { protocol: "grpc-web", transport: "http2" } as NodeClientOptions,
      ],
      [
        "Connect, gzip",
        {
          transport: "http2",
          sendCompression: "gzip",
          compressMinBytes: 0,
        } as NodeClientOptions,
      ],
    ])(
      "%s: accepts requests up to the limit and refuses larger ones",
      async (_, options) => {
        const call = oursCaller(
          createConformanceServiceClient(limited.url, options),
        );
        const exact = padded(limit);
        expect(
          toBinary(UnaryRequestSchema, create(UnaryRequestSchema, exact))
            .byteLength,
        ).toBe(limit);
        expect((await call.unary(exact)).error).toBeUndefined();
        expect((await call.unary(padded(limit + 10))).error?.code).toBe(8);
        const stream = await call.clientStream([
          { requestData: new Uint8Array(20) },
          { requestData: new Uint8Array(limit + 10) },
        ]);
        expect(stream.error?.code).toBe(8);
      },
    );
  });
});

// ---------------------------------------------------------------------------
// 1b. The server program and requests no client library would send: the
//     "unexpected request" cases of the conformance suite's server mode.
// ---------------------------------------------------------------------------

interface RawExchange {
  status: number;
  header: Headers;
  body: Uint8Array;
  trailer: Headers;
}

/** One request over h2c with exactly these headers and body bytes. */
function rawHttp2(
  url: string,
  path: string,
  init: { method?: string; headers: Record<string, string>; body?: Uint8Array },
): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.once("error", reject);
    const stream = session.request(
      { ":method": init.method ?? "POST", ":path": path, ...init.headers },
      // Node ends DELETE requests at once unless told there is a body.
      { endStream: false },
    );
    const header = new Headers();
    const trailer = new Headers();
    let status = 0;
    const chunks: Buffer[] = [];
    const copy = (from: http2.IncomingHttpHeaders, to: Headers) => {
      for (const [k, v] of Object.entries(from)) {
        if (k.startsWith(":") || v === undefined) continue;
        for (const value of Array.isArray(v) ? v : [v]) to.append(k, value);
      }
    };
    stream.once("response", (h) => {
      status = Number(h[":status"]);
      copy(h, header);
    });
    stream.once("trailers", (h) => copy(h, trailer));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("end", () => {
      session.close();
      resolve({ status, header, body: Buffer.concat(chunks), trailer });
    });
    stream.once("error", reject);
    stream.end(init.body);
  });
}

function envelope(
  flags: number,
  payload: Uint8Array,
  length = payload.byteLength,
): Uint8Array {
  const out = new Uint8Array(5 + payload.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, length, false);
  out.set(payload, 5);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

function parseEnvelopes(
  body: Uint8Array,
): { flags: number; data: Uint8Array }[] {
  const result = [];
  let pos = 0;
  while (pos + 5 <= body.byteLength) {
    const length = new DataView(
      body.buffer,
      body.byteOffset + pos + 1,
      4,
    ).getUint32(0);
    result.push({
      flags: body[pos]!,
      data: body.subarray(pos + 5, pos + 5 + length),
    });
    pos += 5 + length;
  }
  return result;
}

/** The RPC code of a raw gRPC, gRPC-Web or Connect exchange, as a client would read it. */
function rawCode(
  protocol: "grpc" | "grpc-web" | "connect",
  exchange: RawExchange,
): number {
  const httpCodes: Record<number, number> = {
    400: 13,
    401: 16,
    403: 7,
    404: 12,
    429: 14,
    502: 14,
    503: 14,
    504: 14,
  };
  if (exchange.status !== 200 && protocol !== "connect") {
    return httpCodes[exchange.status] ?? 2;
  }
  switch (protocol) {
    case "grpc":
      return Number(
        exchange.trailer.get("grpc-status") ??
          exchange.header.get("grpc-status") ??
          -1,
      );
    case "grpc-web": {
      const end = parseEnvelopes(exchange.body).find(
        (e) => (e.flags & 0x80) !== 0,
      );
      if (end === undefined)
        return Number(exchange.header.get("grpc-status") ?? -1);
      const match = /grpc-status:\s*(\d+)/i.exec(
        new TextDecoder().decode(end.data),
      );
      return Number(match?.[1] ?? -1);
    }
    case "connect": {
      const streaming = exchange.header
        .get("content-type")
        ?.startsWith("application/connect+");
      let json: { code?: string; error?: { code?: string } } = {};
      try {
        json = JSON.parse(
          new TextDecoder().decode(
            streaming === true
              ? parseEnvelopes(exchange.body).find((e) => (e.flags & 2) !== 0)!
                  .data
              : exchange.body,
          ),
        );
      } catch {
        return exchange.status === 200 ? 0 : (httpCodes[exchange.status] ?? 2);
      }
      const name = streaming === true ? json.error?.code : json.code;
      return name === undefined ? 0 : specCodeNames.indexOf(name) + 1;
    }
  }
}

describe("conformance server program, unexpected requests", () => {
  let url = "";
  beforeAll(async () => {
    url = (
      await startServerProgram({
        protocol: Protocol.GRPC,
        httpVersion: HTTPVersion.HTTP_VERSION_2,
      })
    ).url;
  });
  afterAll(() => {
    for (const program of serverPrograms.splice(0)) program.stop();
  });

  const service = "/connectrpc.conformance.v1.ConformanceService";
  const unary = toBinary(UnaryRequestSchema, create(UnaryRequestSchema));
  const serverStream = toBinary(
    ServerStreamRequestSchema,
    create(ServerStreamRequestSchema),
  );
  const unaryWithData = toBinary(
    UnaryRequestSchema,
    create(UnaryRequestSchema, { requestData: bytes("data") }),
  );
  const serverStreamWithData = toBinary(
    ServerStreamRequestSchema,
    create(ServerStreamRequestSchema, { requestData: bytes("data") }),
  );
  const grpcHeaders = (
    protocol: "grpc" | "grpc-web",
  ): Record<string, string> =>
    protocol === "grpc"
      ? { "content-type": "application/grpc+proto", te: "trailers" }
      : { "content-type": "application/grpc-web+proto" };

  // Expected codes as the suite's server-mode test cases have them
  // (grpc_server_unexpected.yaml, grpc_web_server_unexpected.yaml).
  describe.each(["grpc", "grpc-web"] as const)("%s", (protocol) => {
    const cases: [
      string,
      string,
      Uint8Array,
      Record<string, string>,
      number[],
    ][] = [
      ["unary/no-request", "Unary", new Uint8Array(0), {}, [12]],
      [
        "unary/multiple-requests",
        "Unary",
        concat(envelope(0, unary), envelope(0, unary)),
        {},
        [12],
      ],
      ["server-stream/no-request", "ServerStream", new Uint8Array(0), {}, [12]],
      [
        "server-stream/multiple-requests",
        "ServerStream",
        concat(envelope(0, serverStream), envelope(0, serverStream)),
        {},
        [12],
      ],
      [
        "unexpected-compression",
        "Unary",
        envelope(1, zlibZstd(unary)),
        { "grpc-encoding": "foo" },
        [12],
      ],
      [
        "unexpected-compressed-message",
        "Unary",
        envelope(1, unary),
        { "grpc-encoding": "identity" },
        [13],
      ],
      [
        // Not in the suite: the same with a non-empty payload.
        "unexpected-compressed-message, non-empty",
        "Unary",
        envelope(1, unaryWithData),
        { "grpc-encoding": "identity" },
        [13],
      ],
      [
        "client-stream/incomplete-message",
        "ClientStream",
        envelope(0, new Uint8Array([0, 0, 0]), 10),
        {},
        [13, 3],
      ],
      [
        "client-stream/incomplete-message-prefix",
        "ClientStream",
        new Uint8Array([0, 0, 0]),
        {},
        [13, 3],
      ],
    ];
    it.each(cases)("%s", async (_, method, body, headers, codes) => {
      const exchange = await rawHttp2(url, `${service}/${method}`, {
        headers: { ...grpcHeaders(protocol), ...headers },
        body,
      });
      expect(codes).toContain(rawCode(protocol, exchange));
    });

    it("unexpected-uri", async () => {
      const exchange = await rawHttp2(
        url,
        "/connectrpc.conformance.v1.UnknownService/UnknownMethod",
        {
          headers: grpcHeaders(protocol),
          body: envelope(0, unary),
        },
      );
      expect(rawCode(protocol, exchange)).toBe(12);
    });

    it("unexpected-verb", async () => {
      const exchange = await rawHttp2(url, `${service}/Unary`, {
        method: "DELETE",
        headers: grpcHeaders(protocol),
        body: envelope(0, unary),
      });
      if (protocol === "grpc-web") expect(exchange.status).toBe(405);
      expect([2, 13, 12]).toContain(rawCode(protocol, exchange));
    });
  });

  // connect_server_unexpected.yaml and server_unexpected.yaml.
  describe("connect", () => {
    const connectStream = { "content-type": "application/connect+proto" };
    it.each([
      ["server-stream/no-request", new Uint8Array(0)],
      [
        "server-stream/multiple-requests",
        concat(envelope(0, serverStream), envelope(0, serverStream)),
      ],
    ])("%s", async (_, body) => {
      const exchange = await rawHttp2(url, `${service}/ServerStream`, {
        headers: connectStream,
        body,
      });
      expect(rawCode("connect", exchange)).toBe(12);
    });

    it("unexpected-compressed-message", async () => {
      const exchange = await rawHttp2(url, `${service}/ServerStream`, {
        headers: { ...connectStream, "connect-content-encoding": "identity" },
        body: envelope(1, serverStream),
      });
      expect(rawCode("connect", exchange)).toBe(13);
    });

    it("unexpected-compressed-message, non-empty (not in the suite)", async () => {
      const exchange = await rawHttp2(url, `${service}/ServerStream`, {
        headers: { ...connectStream, "connect-content-encoding": "identity" },
        body: envelope(1, serverStreamWithData),
      });
      expect(rawCode("connect", exchange)).toBe(13);
    });

    it("unexpected-content-type", async () => {
      const exchange = await rawHttp2(url, `${service}/Unary`, {
        headers: { "content-type": "image/jpeg" },
        body: new Uint8Array([1, 2, 3]),
      });
      expect(exchange.status).toBe(415);
    });

    it("unexpected-verb", async () => {
      const exchange = await rawHttp2(url, `${service}/Unary`, {
        method: "DELETE",
        headers: { "content-type": "application/proto" },
        body: unary,
      });
      expect(exchange.status).toBe(405);
    });

    it("unexpected-uri", async () => {
      const exchange = await rawHttp2(
        url,
        "/connectrpc.conformance.v1.UnknownService/UnknownMethod",
        {
          headers: { "content-type": "application/proto" },
          body: unary,
        },
      );
      expect(exchange.status).toBe(404);
      expect(rawCode("connect", exchange)).toBe(12);
    });

    it("unexpected-compression", async () => {
      const exchange = await rawHttp2(url, `${service}/Unary`, {
        headers: {
          "content-type": "application/proto",
          "content-encoding": "foo",
        },
        body: zlibZstd(unary),
      });
      expect(rawCode("connect", exchange)).toBe(12);
    });
  });
});

function zlibZstd(data: Uint8Array): Uint8Array {
  return zstdCompressSync(data);
}

// ---------------------------------------------------------------------------
// 2. The client program, against a connect-es ConformanceService
// ---------------------------------------------------------------------------

/** The remaining deadline of a call, as the reference server saw it arrive (see referenceListener). */
const deadlineKey = createContextKey<number | undefined>(undefined, {
  description: "deadline",
});
const arrivedDeadlines = new WeakMap<object, number>();

function esRequestInfo(
  context: EsHandlerContext,
  requests: Any[],
): ConformancePayload_RequestInfo {
  const deadline = context.values.get(deadlineKey);
  return create(ConformancePayload_RequestInfoSchema, {
    requestHeaders: headersToProto(context.requestHeader),
    timeoutMs:
      deadline === undefined
        ? undefined
        : BigInt(Math.max(0, deadline - Date.now())),
    requests,
  });
}

function esError(error: ProtoError, extra: Any[]): EsConnectError {
  const e = new EsConnectError(
    error.message ?? "",
    error.code as number as EsCode,
  );
  for (const any of [...error.details, ...extra]) {
    const { type, value } = anyToDetail(any);
    e.details.push({ type, value });
  }
  return e;
}

async function esUnaryResponse(
  definition: UnaryResponseDefinition | undefined,
  requests: Any[],
  context: EsHandlerContext,
) {
  appendProtoHeaders(context.responseHeader, definition?.responseHeaders);
  appendProtoHeaders(context.responseTrailer, definition?.responseTrailers);
  const info = esRequestInfo(context, requests);
  if (definition?.response.case === "error") {
    throw esError(definition.response.value, [
      packAny(ConformancePayload_RequestInfoSchema, info),
    ]);
  }
  await sleep(definition?.responseDelayMs ?? 0);
  return {
    payload: {
      requestInfo: info,
      data:
        definition?.response.case === "responseData"
          ? definition.response.value
          : new Uint8Array(0),
    },
  };
}

/** ConformanceService on connect-es, as the reference server (connect-go) implements it. */
function esRoutes(router: ConnectRouter) {
  router.service(ConformanceService, {
    unary: (request, context) =>
      esUnaryResponse(
        request.responseDefinition,
        [packAny(UnaryRequestSchema, request)],
        context,
      ),
    idempotentUnary: (request, context) =>
      esUnaryResponse(
        request.responseDefinition,
        [packAny(IdempotentUnaryRequestSchema, request)],
        context,
      ),
    async clientStream(requests, context) {
      let definition: UnaryResponseDefinition | undefined;
      const received: Any[] = [];
      for await (const request of requests) {
        if (received.length === 0) definition = request.responseDefinition;
        received.push(packAny(ClientStreamRequestSchema, request));
      }
      return esUnaryResponse(definition, received, context);
    },
    async *serverStream(request, context) {
      const definition = request.responseDefinition;
      appendProtoHeaders(context.responseHeader, definition?.responseHeaders);
      appendProtoHeaders(context.responseTrailer, definition?.responseTrailers);
      const requests = [packAny(ServerStreamRequestSchema, request)];
      // Taken before the delays, as the reference server does.
      const info = esRequestInfo(context, requests);
      let sent = 0;
      for (const data of definition?.responseData ?? []) {
        await sleep(definition!.responseDelayMs);
        yield { payload: { data, requestInfo: sent === 0 ? info : undefined } };
        sent++;
      }
      if (definition?.error !== undefined) {
        throw esError(
          definition.error,
          sent === 0
            ? [
                packAny(
                  ConformancePayload_RequestInfoSchema,
                  esRequestInfo(context, requests),
                ),
              ]
            : [],
        );
      }
    },
    async *bidiStream(requests, context) {
      let definition: StreamResponseDefinition | undefined;
      let fullDuplex = false;
      let first = true;
      let sent = 0;
      let received: Any[] = [];
      for await (const request of requests) {
        received.push(packAny(BidiStreamRequestSchema, request));
        if (first) {
          first = false;
          definition = request.responseDefinition;
          fullDuplex = request.fullDuplex;
          appendProtoHeaders(
            context.responseHeader,
            definition?.responseHeaders,
          );
          appendProtoHeaders(
            context.responseTrailer,
            definition?.responseTrailers,
          );
        }
        if (!fullDuplex) continue;
        if (definition === undefined || sent >= definition.responseData.length)
          break;
        await sleep(definition.responseDelayMs);
        yield {
          payload: {
            data: definition.responseData[sent]!,
            requestInfo:
              sent === 0
                ? esRequestInfo(context, received)
                : { requests: received },
          },
        };
        sent++;
        received = [];
      }
      if (definition === undefined) return;
      const info = esRequestInfo(context, received);
      for (; sent < definition.responseData.length; sent++) {
        await sleep(definition.responseDelayMs);
        yield {
          payload: {
            data: definition.responseData[sent]!,
            requestInfo: sent === 0 ? info : undefined,
          },
        };
      }
      if (definition.error !== undefined) {
        throw esError(
          definition.error,
          definition.responseData.length === 0
            ? [packAny(ConformancePayload_RequestInfoSchema, info)]
            : [],
        );
      }
    },
  });
}

/** zstd and deflate for connect-es, which ships gzip and br only. */
function esZlibCompression(
  name: string,
  compress: (data: Uint8Array) => Uint8Array,
  decompress: (data: Uint8Array) => Uint8Array,
): EsCompression {
  return {
    name,
    compress: async (data) => new Uint8Array(compress(data)),
    decompress: async (data, readMaxBytes) => {
      const out = data.byteLength === 0 ? new Uint8Array(0) : decompress(data);
      if (out.byteLength > readMaxBytes) {
        throw new EsConnectError("message too large", EsCode.ResourceExhausted);
      }
      return new Uint8Array(out);
    },
  };
}

/** A response written byte for byte (the reference server's raw_response). */
interface RawResponse {
  status?: number;
  headers?: [string, string][];
  body?: Uint8Array;
  trailers?: [string, string][];
}

/** What the reference server saw of each request, by test name (the runner's reference-server checks). */
interface Observation {
  httpMajor: number;
  method: string;
  contentType: string | undefined;
  encoding: string | undefined;
  getCompression: string | null;
  tls: boolean;
  clientCertCN: string | undefined;
  trailerCount: number;
}

const observations = new Map<string, Observation[]>();
const rawResponses = new Map<string, RawResponse>();

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

function parseTimeout(headers: http.IncomingHttpHeaders): number | undefined {
  const connect = one(headers["connect-timeout-ms"]);
  if (connect !== undefined) return Number(connect);
  const grpc = one(headers["grpc-timeout"]);
  if (grpc === undefined) return undefined;
  const units: Record<string, number> = {
    H: 3_600_000,
    M: 60_000,
    S: 1_000,
    m: 1,
    u: 0.001,
    n: 0.000001,
  };
  return Number(grpc.slice(0, -1)) * units[grpc.slice(-1)]!;
}

/**
 * Records what each request looked like, takes the deadline off it so that
 * only the client enforces it (as the reference server does), and answers
 * with a raw response when the test registered one.
 */
function referenceListener(
  adapter: NodeListener,
  http1Bidi: NodeListener,
): NodeListener {
  return (req, res) => {
    const name = one(req.headers["x-test-case-name"]) ?? "";
    const socket = req.socket as import("node:tls").TLSSocket;
    const contentType = one(req.headers["content-type"]);
    const encodingHeader = contentType?.startsWith("application/grpc")
      ? "grpc-encoding"
      : contentType?.startsWith("application/connect+")
        ? "connect-content-encoding"
        : "content-encoding";
    const observation: Observation = {
      httpMajor: req.httpVersionMajor,
      method: req.method ?? "",
      contentType,
      encoding: one(req.headers[encodingHeader]),
      getCompression: new URL(req.url ?? "/", "http://x").searchParams.get(
        "compression",
      ),
      tls: socket.encrypted === true,
      clientCertCN:
        socket.encrypted === true
          ? (socket.getPeerCertificate().subject?.CN as string | undefined)
          : undefined,
      trailerCount: 0,
    };
    req.once(
      "end",
      () => (observation.trailerCount = Object.keys(req.trailers).length),
    );
    observations.set(name, [...(observations.get(name) ?? []), observation]);
    const timeout = parseTimeout(req.headers);
    if (timeout !== undefined) {
      arrivedDeadlines.set(req, Date.now() + timeout);
      delete req.headers["connect-timeout-ms"];
      delete req.headers["grpc-timeout"];
    }
    const raw = rawResponses.get(name);
    if (raw === undefined) {
      // connect-node refuses bidi over HTTP/1.1 (505); the reference server
      // (connect-go) serves it half duplex, as our generated server does.
      const bidiOverHttp1 =
        req.httpVersionMajor === 1 && (req.url ?? "").endsWith("/BidiStream");
      (bidiOverHttp1 ? http1Bidi : adapter)(req, res);
      return;
    }
    req.resume();
    req.once("end", () => {
      const headers: Record<string, string[]> = {};
      for (const [k, v] of raw.headers ?? [])
        (headers[k.toLowerCase()] ??= []).push(v);
      const response = res as http.ServerResponse;
      response.writeHead(raw.status ?? 200, headers);
      if (raw.body !== undefined) response.write(raw.body);
      if (raw.trailers !== undefined) {
        const trailers: Record<string, string> = {};
        for (const [k, v] of raw.trailers) {
          trailers[k] = trailers[k] === undefined ? v : `${trailers[k]}, ${v}`;
        }
        response.addTrailers(trailers);
      }
      response.end();
    });
  };
}

type NodeListener = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

async function listen(
  server: http.Server | http2.Http2Server | http2.Http2SecureServer,
) {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** Starts the client program, feeds it the requests, closes stdin and collects every response. */
async function runClientProgram(requests: ClientCompatRequest[]) {
  const child = spawn(join(conformanceDir, "bin/client"), [], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", resolve),
  );
  for (const request of requests) {
    child.stdin.write(
      frameDelimited(toBinary(ClientCompatRequestSchema, request)),
    );
  }
  child.stdin.end();
  const responses: ClientCompatResponse[] = [];
  for await (const message of readDelimited(child.stdout)) {
    responses.push(fromBinary(ClientCompatResponseSchema, message));
  }
  return { responses, exitCode: await exited, stderr };
}

// --- The runner's expectations and checks, ported from connectconformance ---

/** What the runner expects when the test case does not say (populateExpected*Response). */
function expectedResult(request: ClientCompatRequest): ClientResponseResult {
  const info = () =>
    create(ConformancePayload_RequestInfoSchema, {
      requestHeaders: request.requestHeaders,
      requests: request.requestMessages,
      ...(request.timeoutMs !== undefined
        ? { timeoutMs: BigInt(request.timeoutMs) }
        : {}),
    });
  const first = request.requestMessages[0];
  if (
    request.streamType === StreamType.UNARY ||
    request.streamType === StreamType.CLIENT_STREAM
  ) {
    const definition =
      first === undefined
        ? undefined
        : (
            anyUnpack(first, conformanceRegistry) as {
              responseDefinition?: UnaryResponseDefinition;
            }
          ).responseDefinition;
    if (definition === undefined) {
      return create(ClientResponseResultSchema, {
        payloads: [{ requestInfo: info() }],
      });
    }
    const result = create(ClientResponseResultSchema, {
      responseHeaders: definition.responseHeaders,
      responseTrailers: definition.responseTrailers,
    });
    if (definition.response.case === "error") {
      result.error = create(ErrorSchema, definition.response.value);
      result.error.details.push(
        packAny(ConformancePayload_RequestInfoSchema, info()),
      );
    } else {
      result.payloads.push(
        create(ConformancePayloadSchema, {
          requestInfo: info(),
          data:
            definition.response.case === "responseData"
              ? definition.response.value
              : new Uint8Array(0),
        }),
      );
    }
    return result;
  }
  const definition =
    first === undefined
      ? undefined
      : (
          anyUnpack(first, conformanceRegistry) as {
            responseDefinition?: StreamResponseDefinition;
          }
        ).responseDefinition;
  if (definition === undefined) return create(ClientResponseResultSchema);
  const result = create(ClientResponseResultSchema, {
    responseHeaders: definition.responseHeaders,
    responseTrailers: definition.responseTrailers,
    ...(definition.error !== undefined
      ? { error: create(ErrorSchema, definition.error) }
      : {}),
  });
  if (definition.responseData.length === 0 && result.error !== undefined) {
    result.error.details.push(
      packAny(ConformancePayload_RequestInfoSchema, info()),
    );
  }
  definition.responseData.forEach((data, i) => {
    const payload = create(ConformancePayloadSchema, { data });
    if (request.streamType === StreamType.FULL_DUPLEX_BIDI_STREAM) {
      payload.requestInfo = create(ConformancePayload_RequestInfoSchema, {
        requests: [request.requestMessages[i]!],
        ...(i === 0 ? { requestHeaders: request.requestHeaders } : {}),
        ...(i === 0 && request.timeoutMs !== undefined
          ? { timeoutMs: BigInt(request.timeoutMs) }
          : {}),
      });
    } else if (i === 0) {
      payload.requestInfo = info();
    }
    result.payloads.push(payload);
  });
  return result;
}

function canonicalValues(values: readonly string[]): string[] {
  return values.flatMap((value) => {
    const parts = value.split(",");
    return parts.map((part, i) => {
      let p = part;
      if (i > 0 && p.startsWith(" ")) p = p.slice(1);
      if (i < parts.length - 1 && p.endsWith(" ")) p = p.slice(0, -1);
      return p;
    });
  });
}

function checkHeaders(
  what: string,
  expected: readonly Header[],
  actual: readonly Header[],
): string[] {
  const actualMap = new Map(actual.map((h) => [h.name.toLowerCase(), h.value]));
  const errors: string[] = [];
  for (const header of expected) {
    const name = header.name.toLowerCase();
    const values = actualMap.get(name);
    if (values === undefined) {
      errors.push(`actual ${what} missing "${name}"`);
    } else if (
      JSON.stringify(canonicalValues(header.value)) !==
      JSON.stringify(canonicalValues(values))
    ) {
      errors.push(
        `${what} has incorrect values for "${name}": expected ${JSON.stringify(header.value)}, got ${JSON.stringify(values)}`,
      );
    }
  }
  return errors;
}

function mergeHeaders(a: readonly Header[], b: readonly Header[]): Header[] {
  const merged = new Map<string, string[]>();
  for (const h of a) merged.set(h.name.toLowerCase(), [...h.value]);
  for (const h of b)
    merged.set(h.name.toLowerCase(), [
      ...(merged.get(h.name.toLowerCase()) ?? []),
      ...h.value,
    ]);
  return [...merged].map(([name, value]) =>
    create(HeaderSchema, { name, value }),
  );
}

function checkRequestInfo(
  expected: ConformancePayload_RequestInfo | undefined,
  actual: ConformancePayload_RequestInfo | undefined,
  verifyHeaders: boolean,
): string[] {
  const errors: string[] = [];
  if (verifyHeaders) {
    errors.push(
      ...checkHeaders(
        "request headers",
        expected?.requestHeaders ?? [],
        actual?.requestHeaders ?? [],
      ),
    );
    if (expected?.timeoutMs !== undefined) {
      if (actual?.timeoutMs === undefined) {
        errors.push("server did not echo back a timeout but one was expected");
      } else if (
        actual.timeoutMs > expected.timeoutMs ||
        // The runner allows 100 ms; here the reference server shares its
        // process with the test runner, which can be slower to get to a call.
        actual.timeoutMs < expected.timeoutMs - 1_000n
      ) {
        errors.push(
          `echoed timeout ${actual.timeoutMs} does not match ${expected.timeoutMs}`,
        );
      }
    } else if (actual?.timeoutMs !== undefined) {
      errors.push("server echoed back a timeout but none was expected");
    }
  }
  const expectedRequests = expected?.requests ?? [];
  const actualRequests = actual?.requests ?? [];
  if (expectedRequests.length !== actualRequests.length) {
    errors.push(
      `expecting ${expectedRequests.length} request messages to be described but got ${actualRequests.length}`,
    );
  }
  for (
    let i = 0;
    i < Math.min(expectedRequests.length, actualRequests.length);
    i++
  ) {
    const e = anyUnpack(expectedRequests[i]!, conformanceRegistry);
    const a = anyUnpack(actualRequests[i]!, conformanceRegistry);
    if (
      e === undefined ||
      a === undefined ||
      e.$typeName !== a.$typeName ||
      !equals(conformanceRegistry.getMessage(e.$typeName)!, e, a)
    ) {
      errors.push(`request #${i + 1} did not survive the round trip`);
    }
  }
  return errors;
}

/** The runner's assert(): what it would report for this result. */
function checkResult(
  expected: ClientResponseResult,
  actual: ClientResponseResult,
  otherCodes: number[] = [],
): string[] {
  const errors: string[] = [];
  if (expected.payloads.length === 0) {
    const metadata = [
      ...checkHeaders(
        "response headers",
        expected.responseHeaders,
        actual.responseHeaders,
      ),
      ...checkHeaders(
        "response trailers",
        expected.responseTrailers,
        actual.responseTrailers,
      ),
    ];
    if (metadata.length > 0) {
      const merged = mergeHeaders(
        expected.responseHeaders,
        expected.responseTrailers,
      );
      if (
        checkHeaders("response metadata", merged, actual.responseHeaders)
          .length > 0 &&
        checkHeaders("response metadata", merged, actual.responseTrailers)
          .length > 0
      ) {
        errors.push(...metadata);
      }
    }
  } else {
    errors.push(
      ...checkHeaders(
        "response headers",
        expected.responseHeaders,
        actual.responseHeaders,
      ),
    );
    errors.push(
      ...checkHeaders(
        "response trailers",
        expected.responseTrailers,
        actual.responseTrailers,
      ),
    );
  }
  if (expected.payloads.length !== actual.payloads.length) {
    errors.push(
      `expecting ${expected.payloads.length} response messages but got ${actual.payloads.length}`,
    );
  }
  for (
    let i = 0;
    i < Math.min(expected.payloads.length, actual.payloads.length);
    i++
  ) {
    const e = expected.payloads[i]!;
    const a = actual.payloads[i]!;
    if (Buffer.compare(Buffer.from(e.data), Buffer.from(a.data)) !== 0) {
      errors.push(
        `response #${i + 1}: expecting data ${Buffer.from(e.data).toString("hex")}, got ${Buffer.from(a.data).toString("hex")}`,
      );
    }
    errors.push(...checkRequestInfo(e.requestInfo, a.requestInfo, i === 0));
  }
  const ee = expected.error;
  const ae = actual.error;
  if (ee === undefined && ae !== undefined) {
    errors.push(`received an unexpected error: code ${ae.code}: ${ae.message}`);
  } else if (ee !== undefined && ae === undefined) {
    errors.push("expecting an error but received none");
  } else if (ee !== undefined && ae !== undefined) {
    if (ee.code !== ae.code && !otherCodes.includes(ae.code)) {
      errors.push(
        `actual error code ${ae.code} (${ae.message}) does not match expected code ${ee.code}`,
      );
    }
    if (ee.message !== undefined && ee.message !== ae.message) {
      errors.push(
        `actual error message ${JSON.stringify(ae.message)} does not match expected ${JSON.stringify(ee.message)}`,
      );
    }
    if (ee.details.length !== ae.details.length) {
      errors.push(
        `actual error contains ${ae.details.length} details; expecting ${ee.details.length}`,
      );
    }
    for (let i = 0; i < Math.min(ee.details.length, ae.details.length); i++) {
      const e = ee.details[i]!;
      const a = ae.details[i]!;
      if (
        e.typeUrl === a.typeUrl &&
        e.typeUrl.endsWith("ConformancePayload.RequestInfo")
      ) {
        errors.push(
          ...checkRequestInfo(
            fromBinary(ConformancePayload_RequestInfoSchema, e.value),
            fromBinary(ConformancePayload_RequestInfoSchema, a.value),
            true,
          ),
        );
      } else if (
        e.typeUrl !== a.typeUrl ||
        Buffer.compare(Buffer.from(e.value), Buffer.from(a.value)) !== 0
      ) {
        errors.push(
          `actual error detail #${i + 1} does not match expected error detail`,
        );
      }
    }
  }
  return errors;
}

// --- The client test cases ---

interface ClientConfig {
  readonly name: string;
  readonly httpVersion: 1 | 2;
  readonly protocol: "connect" | "grpc" | "grpc-web";
  readonly json: boolean;
  readonly compression: "identity" | "gzip" | "br" | "zstd" | "deflate";
  readonly tls: "none" | "server" | "client-cert";
  /** Also run the cancellation, timeout, receive limit and raw response cases. */
  readonly extended: boolean;
}

const clientConfigs: ClientConfig[] = [
  {
    name: "HTTP1/connect/proto/identity",
    httpVersion: 1,
    protocol: "connect",
    json: false,
    compression: "identity",
    tls: "none",
    extended: true,
  },
  {
    name: "HTTP1/connect/json/gzip",
    httpVersion: 1,
    protocol: "connect",
    json: true,
    compression: "gzip",
    tls: "none",
    extended: false,
  },
  {
    name: "HTTP1/grpc-web/proto/br",
    httpVersion: 1,
    protocol: "grpc-web",
    json: false,
    compression: "br",
    tls: "none",
    extended: true,
  },
  {
    name: "HTTP1/grpc-web/json/zstd",
    httpVersion: 1,
    protocol: "grpc-web",
    json: true,
    compression: "zstd",
    tls: "none",
    extended: false,
  },
  {
    name: "HTTP2/connect/proto/gzip",
    httpVersion: 2,
    protocol: "connect",
    json: false,
    compression: "gzip",
    tls: "none",
    extended: true,
  },
  {
    name: "HTTP2/connect/json/zstd",
    httpVersion: 2,
    protocol: "connect",
    json: true,
    compression: "zstd",
    tls: "none",
    extended: false,
  },
  {
    name: "HTTP2/grpc/proto/identity",
    httpVersion: 2,
    protocol: "grpc",
    json: false,
    compression: "identity",
    tls: "none",
    extended: true,
  },
  {
    name: "HTTP2/grpc/json/deflate",
    httpVersion: 2,
    protocol: "grpc",
    json: true,
    compression: "deflate",
    tls: "none",
    extended: false,
  },
  {
    name: "HTTP2/grpc-web/proto/identity",
    httpVersion: 2,
    protocol: "grpc-web",
    json: false,
    compression: "identity",
    tls: "none",
    extended: true,
  },
  {
    name: "HTTP2/grpc-web/json/br",
    httpVersion: 2,
    protocol: "grpc-web",
    json: true,
    compression: "br",
    tls: "none",
    extended: false,
  },
  {
    name: "HTTP2/grpc/proto/gzip/TLS-client-cert",
    httpVersion: 2,
    protocol: "grpc",
    json: false,
    compression: "gzip",
    tls: "client-cert",
    extended: false,
  },
  {
    name: "HTTP2/connect/json/identity/TLS",
    httpVersion: 2,
    protocol: "connect",
    json: true,
    compression: "identity",
    tls: "server",
    extended: false,
  },
  {
    name: "HTTP1/connect/proto/gzip/TLS-client-cert",
    httpVersion: 1,
    protocol: "connect",
    json: false,
    compression: "gzip",
    tls: "client-cert",
    extended: false,
  },
  {
    name: "HTTP1/grpc-web/proto/identity/TLS",
    httpVersion: 1,
    protocol: "grpc-web",
    json: false,
    compression: "identity",
    tls: "server",
    extended: false,
  },
];

type CompatInit = MessageInitShape<typeof ClientCompatRequestSchema>;
type ResultInit = MessageInitShape<typeof ClientResponseResultSchema>;

/** An expected error: the code, and the message and details when they are checked. */
function err(
  code: number,
  message?: string,
  details?: Any[],
): ResultInit["error"] {
  return {
    code: code as ProtoCode,
    ...(message !== undefined ? { message } : {}),
    ...(details !== undefined ? { details } : {}),
  };
}

interface ClientCase {
  readonly name: string;
  readonly request: CompatInit;
  /** Overrides the expectation computed from the request, as the suite's test cases do. */
  readonly expected?: ResultInit;
  readonly otherCodes?: number[];
  readonly raw?: RawResponse;
}

function anyOf<Desc extends DescMessage>(
  desc: Desc,
  init: MessageInitShape<Desc> = {} as MessageInitShape<Desc>,
): Any {
  return packAny(desc, create(desc, init));
}

const data = bytes("test response");
const customHeaders = [{ name: "x-custom-header", value: ["foo", "bar"] }];
const customTrailers = [{ name: "x-custom-trailer", value: ["bing", "quux"] }];
const conformanceHeaders = [
  { name: "X-Conformance-Test", value: ["Value1", "Value2"] },
];

function unaryCase(
  name: string,
  definition: MessageInitShape<typeof UnaryRequestSchema>["responseDefinition"],
  extra: { timeoutMs?: number } = {},
): ClientCase {
  return {
    name,
    request: {
      method: "Unary",
      streamType: StreamType.UNARY,
      requestHeaders: conformanceHeaders,
      requestMessages: [
        anyOf(
          UnaryRequestSchema,
          definition === undefined ? {} : { responseDefinition: definition },
        ),
      ],
      ...extra,
    },
  };
}

function basicCases(config: ClientConfig): ClientCase[] {
  const cases: ClientCase[] = [
    unaryCase(
      "unary/success",
      {
        responseHeaders: customHeaders,
        responseTrailers: customTrailers,
        response: { case: "responseData", value: data },
      },
      { timeoutMs: 10_000 },
    ),
    unaryCase("unary/empty-definition", undefined),
    unaryCase("unary/error", {
      responseHeaders: customHeaders,
      responseTrailers: customTrailers,
      response: {
        case: "error",
        value: { code: 16, message: unicodeMessage, details: [customDetail] },
      },
    }),
    {
      name: "unimplemented",
      request: {
        method: "Unimplemented",
        streamType: StreamType.UNARY,
        requestMessages: [anyOf(UnimplementedRequestSchema)],
      },
      expected: { error: err(12) },
    },
    {
      name: "idempotent-unary/post",
      request: {
        method: "IdempotentUnary",
        streamType: StreamType.UNARY,
        requestHeaders: conformanceHeaders,
        requestMessages: [
          anyOf(IdempotentUnaryRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              response: { case: "responseData", value: data },
            },
          }),
        ],
      },
    },
    {
      name: "server-stream/success",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        requestHeaders: conformanceHeaders,
        timeoutMs: 10_000,
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              responseData: [data, bytes("two"), bytes("three")],
              responseDelayMs: 5,
            },
          }),
        ],
      },
    },
    {
      name: "server-stream/error-with-responses",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              responseData: [data, data],
              error: err(13, "server stream failed"),
            },
          }),
        ],
      },
    },
    {
      name: "server-stream/error-with-no-responses",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        requestHeaders: conformanceHeaders,
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              error: err(5, "not found", [customDetail]),
            },
          }),
        ],
      },
    },
    {
      name: "server-stream/no-responses",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
            },
          }),
        ],
      },
    },
    {
      name: "client-stream/success",
      request: {
        method: "ClientStream",
        streamType: StreamType.CLIENT_STREAM,
        requestHeaders: conformanceHeaders,
        requestDelayMs: 5,
        requestMessages: [
          anyOf(ClientStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              response: { case: "responseData", value: data },
            },
          }),
          anyOf(ClientStreamRequestSchema, { requestData: data }),
          anyOf(ClientStreamRequestSchema, { requestData: bytes("third") }),
        ],
      },
    },
    {
      name: "client-stream/error",
      request: {
        method: "ClientStream",
        streamType: StreamType.CLIENT_STREAM,
        requestMessages: [
          anyOf(ClientStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              response: {
                case: "error",
                value: { code: 9, message: "client stream failed" },
              },
            },
          }),
          anyOf(ClientStreamRequestSchema, { requestData: data }),
        ],
      },
    },
    {
      name: "client-stream/no-requests",
      request: {
        method: "ClientStream",
        streamType: StreamType.CLIENT_STREAM,
        requestHeaders: conformanceHeaders,
      },
    },
    {
      name: "bidi-stream/half-duplex/success",
      request: {
        method: "BidiStream",
        streamType: StreamType.HALF_DUPLEX_BIDI_STREAM,
        requestHeaders: conformanceHeaders,
        requestMessages: [
          anyOf(BidiStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              responseData: [data, data],
            },
          }),
          anyOf(BidiStreamRequestSchema, { requestData: data }),
        ],
      },
    },
    {
      name: "bidi-stream/half-duplex/error-with-no-responses",
      request: {
        method: "BidiStream",
        streamType: StreamType.HALF_DUPLEX_BIDI_STREAM,
        requestMessages: [
          anyOf(BidiStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              error: err(16, "unauthenticated"),
            },
          }),
          anyOf(BidiStreamRequestSchema, { requestData: data }),
        ],
      },
    },
  ];
  if (config.protocol === "connect") {
    cases.push({
      name: "idempotent-unary/get",
      request: {
        method: "IdempotentUnary",
        streamType: StreamType.UNARY,
        useGetHttpMethod: true,
        requestHeaders: conformanceHeaders,
        requestMessages: [
          anyOf(IdempotentUnaryRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              response: { case: "responseData", value: data },
            },
          }),
        ],
      },
    });
  }
  if (config.httpVersion === 2) {
    cases.push(
      {
        name: "bidi-stream/full-duplex/success",
        request: {
          method: "BidiStream",
          streamType: StreamType.FULL_DUPLEX_BIDI_STREAM,
          requestHeaders: conformanceHeaders,
          timeoutMs: 10_000,
          requestMessages: [
            anyOf(BidiStreamRequestSchema, {
              fullDuplex: true,
              responseDefinition: {
                responseHeaders: customHeaders,
                responseTrailers: customTrailers,
                responseData: [data, bytes("two"), bytes("three")],
              },
            }),
            anyOf(BidiStreamRequestSchema, { requestData: data }),
            anyOf(BidiStreamRequestSchema, { requestData: bytes("third") }),
          ],
        },
      },
      {
        name: "bidi-stream/full-duplex/error-with-responses",
        request: {
          method: "BidiStream",
          streamType: StreamType.FULL_DUPLEX_BIDI_STREAM,
          requestMessages: [
            anyOf(BidiStreamRequestSchema, {
              fullDuplex: true,
              responseDefinition: {
                responseHeaders: customHeaders,
                responseTrailers: customTrailers,
                responseData: [data, data],
                error: err(13, "bidi full duplex stream failed"),
              },
            }),
            anyOf(BidiStreamRequestSchema, { requestData: data }),
          ],
        },
      },
    );
  }
  return cases;
}

const delayed = (n: number) => Array.from({ length: n }, () => data);

/** client_cancellation.yaml and timeouts.yaml. */
function cancelAndTimeoutCases(config: ClientConfig): ClientCase[] {
  const canceled = { error: err(1) };
  const cases: ClientCase[] = [
    {
      name: "cancel/unary/after-close-send",
      request: {
        method: "Unary",
        streamType: StreamType.UNARY,
        cancel: { cancelTiming: { case: "afterCloseSendMs", value: 50 } },
        requestMessages: [
          anyOf(UnaryRequestSchema, {
            responseDefinition: {
              responseDelayMs: 1_000,
              response: { case: "responseData", value: data },
            },
          }),
        ],
      },
      expected: canceled,
    },
    {
      name: "cancel/client-stream/before-close-send",
      request: {
        method: "ClientStream",
        streamType: StreamType.CLIENT_STREAM,
        cancel: { cancelTiming: { case: "beforeCloseSend", value: {} } },
        requestMessages: [
          anyOf(ClientStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              response: { case: "responseData", value: data },
            },
          }),
          anyOf(ClientStreamRequestSchema, { requestData: data }),
        ],
      },
      expected: canceled,
    },
    {
      name: "cancel/client-stream/after-close-send",
      request: {
        method: "ClientStream",
        streamType: StreamType.CLIENT_STREAM,
        cancel: { cancelTiming: { case: "afterCloseSendMs", value: 5 } },
        requestMessages: [
          anyOf(ClientStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 200,
              response: { case: "responseData", value: data },
            },
          }),
          anyOf(ClientStreamRequestSchema, { requestData: data }),
        ],
      },
      expected: canceled,
    },
    {
      name: "cancel/server-stream/after-zero-responses",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        cancel: { cancelTiming: { case: "afterNumResponses", value: 0 } },
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 200,
              responseData: delayed(2),
            },
          }),
        ],
      },
      expected: canceled,
    },
    {
      name: "cancel/server-stream/after-responses",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        cancel: { cancelTiming: { case: "afterNumResponses", value: 1 } },
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 200,
              responseData: delayed(2),
            },
          }),
        ],
      },
      expected: {
        payloads: [
          {
            data,
            requestInfo: {
              requests: [
                anyOf(ServerStreamRequestSchema, {
                  responseDefinition: {
                    responseDelayMs: 200,
                    responseData: delayed(2),
                  },
                }),
              ],
            },
          },
        ],
        error: err(1),
      },
    },
    {
      name: "cancel/server-stream/no-timing",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        cancel: {},
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 200,
              responseData: delayed(2),
            },
          }),
        ],
      },
      expected: canceled,
    },
    {
      name: "cancel/bidi-stream/half-duplex/before-close-send",
      request: {
        method: "BidiStream",
        streamType: StreamType.HALF_DUPLEX_BIDI_STREAM,
        cancel: { cancelTiming: { case: "beforeCloseSend", value: {} } },
        requestMessages: [
          anyOf(BidiStreamRequestSchema, {
            responseDefinition: { responseData: delayed(2) },
          }),
          anyOf(BidiStreamRequestSchema, { requestData: data }),
        ],
      },
      expected: canceled,
    },
    {
      name: "cancel/bidi-stream/half-duplex/after-close-send",
      request: {
        method: "BidiStream",
        streamType: StreamType.HALF_DUPLEX_BIDI_STREAM,
        cancel: { cancelTiming: { case: "afterCloseSendMs", value: 5 } },
        requestMessages: [
          anyOf(BidiStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 200,
              responseData: delayed(2),
            },
          }),
          anyOf(BidiStreamRequestSchema, { requestData: data }),
        ],
      },
      expected: canceled,
    },
    {
      name: "cancel/bidi-stream/half-duplex/after-zero-responses",
      request: {
        method: "BidiStream",
        streamType: StreamType.HALF_DUPLEX_BIDI_STREAM,
        cancel: { cancelTiming: { case: "afterNumResponses", value: 0 } },
        requestMessages: [
          anyOf(BidiStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 200,
              responseData: delayed(2),
            },
          }),
          anyOf(BidiStreamRequestSchema, { requestData: data }),
        ],
      },
      expected: canceled,
    },
    {
      name: "timeout/unary",
      request: {
        method: "Unary",
        streamType: StreamType.UNARY,
        timeoutMs: 200,
        requestMessages: [
          anyOf(UnaryRequestSchema, {
            responseDefinition: {
              responseDelayMs: 1_500,
              response: { case: "responseData", value: data },
            },
          }),
        ],
      },
      expected: { error: err(4) },
    },
    {
      name: "timeout/client-stream",
      request: {
        method: "ClientStream",
        streamType: StreamType.CLIENT_STREAM,
        timeoutMs: 200,
        requestMessages: [
          anyOf(ClientStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 1_500,
              response: { case: "responseData", value: data },
            },
          }),
          anyOf(ClientStreamRequestSchema, { requestData: data }),
        ],
      },
      expected: { error: err(4) },
    },
    {
      name: "timeout/server-stream",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        timeoutMs: 200,
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 1_500,
              responseData: delayed(2),
            },
          }),
        ],
      },
      expected: { error: err(4) },
    },
    {
      name: "timeout/bidi-stream/half-duplex",
      request: {
        method: "BidiStream",
        streamType: StreamType.HALF_DUPLEX_BIDI_STREAM,
        timeoutMs: 200,
        requestMessages: [
          anyOf(BidiStreamRequestSchema, {
            responseDefinition: {
              responseDelayMs: 1_500,
              responseData: delayed(2),
            },
          }),
          anyOf(BidiStreamRequestSchema, { requestData: data }),
        ],
      },
      expected: { error: err(4) },
    },
  ];
  if (config.httpVersion === 2) {
    const fullDuplex = (responseDelayMs: number, n: number) =>
      anyOf(BidiStreamRequestSchema, {
        fullDuplex: true,
        responseDefinition: { responseDelayMs, responseData: delayed(n) },
      });
    cases.push(
      {
        name: "cancel/bidi-stream/full-duplex/after-zero-responses",
        request: {
          method: "BidiStream",
          streamType: StreamType.FULL_DUPLEX_BIDI_STREAM,
          cancel: { cancelTiming: { case: "afterNumResponses", value: 0 } },
          requestMessages: [
            fullDuplex(200, 2),
            anyOf(BidiStreamRequestSchema, { requestData: data }),
          ],
        },
        expected: canceled,
      },
      {
        name: "cancel/bidi-stream/full-duplex/after-responses",
        request: {
          method: "BidiStream",
          streamType: StreamType.FULL_DUPLEX_BIDI_STREAM,
          cancel: { cancelTiming: { case: "afterNumResponses", value: 1 } },
          requestMessages: [
            fullDuplex(200, 2),
            anyOf(BidiStreamRequestSchema, { requestData: data }),
          ],
        },
        expected: {
          payloads: [{ data, requestInfo: { requests: [fullDuplex(200, 2)] } }],
          error: err(1),
        },
      },
      {
        name: "cancel/bidi-stream/full-duplex/before-close-send",
        request: {
          method: "BidiStream",
          streamType: StreamType.FULL_DUPLEX_BIDI_STREAM,
          cancel: { cancelTiming: { case: "beforeCloseSend", value: {} } },
          requestMessages: [
            fullDuplex(0, 2),
            anyOf(BidiStreamRequestSchema, { requestData: data }),
          ],
        },
        expected: {
          payloads: [
            { data, requestInfo: { requests: [fullDuplex(0, 2)] } },
            {
              data,
              requestInfo: {
                requests: [
                  anyOf(BidiStreamRequestSchema, { requestData: data }),
                ],
              },
            },
          ],
          error: err(1),
        },
      },
      {
        name: "cancel/bidi-stream/full-duplex/after-close-send",
        request: {
          method: "BidiStream",
          streamType: StreamType.FULL_DUPLEX_BIDI_STREAM,
          cancel: { cancelTiming: { case: "afterCloseSendMs", value: 0 } },
          requestMessages: [
            fullDuplex(200, 3),
            anyOf(BidiStreamRequestSchema, { requestData: data }),
          ],
        },
        expected: {
          payloads: [
            { data, requestInfo: { requests: [fullDuplex(200, 3)] } },
            {
              data,
              requestInfo: {
                requests: [
                  anyOf(BidiStreamRequestSchema, { requestData: data }),
                ],
              },
            },
          ],
          error: err(1),
        },
      },
      {
        name: "timeout/bidi-stream/full-duplex",
        request: {
          method: "BidiStream",
          streamType: StreamType.FULL_DUPLEX_BIDI_STREAM,
          timeoutMs: 200,
          requestMessages: [
            fullDuplex(1_500, 2),
            anyOf(BidiStreamRequestSchema, { requestData: data }),
          ],
        },
        expected: { error: err(4) },
      },
    );
  }
  return cases;
}

/** client_message_size.yaml, with responses made larger than the client's limit. */
function receiveLimitCases(): ClientCase[] {
  const limit = 1_024;
  return [
    {
      name: "receive-limit/unary/response-within-limit",
      request: {
        method: "Unary",
        streamType: StreamType.UNARY,
        messageReceiveLimit: limit,
        requestMessages: [
          anyOf(UnaryRequestSchema, {
            responseDefinition: {
              response: { case: "responseData", value: data },
            },
          }),
        ],
      },
    },
    {
      name: "receive-limit/unary/response-exceeds-limit",
      request: {
        method: "Unary",
        streamType: StreamType.UNARY,
        messageReceiveLimit: limit,
        requestMessages: [
          anyOf(UnaryRequestSchema, {
            responseDefinition: {
              response: { case: "responseData", value: new Uint8Array(limit) },
            },
          }),
        ],
      },
      expected: { error: err(8) },
    },
    {
      name: "receive-limit/server-stream/response-exceeds-limit",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        messageReceiveLimit: limit,
        requestMessages: [
          anyOf(ServerStreamRequestSchema, {
            responseDefinition: { responseData: [new Uint8Array(limit)] },
          }),
        ],
      },
      expected: { error: err(8) },
    },
    {
      name: "receive-limit/client-stream/response-exceeds-limit",
      request: {
        method: "ClientStream",
        streamType: StreamType.CLIENT_STREAM,
        messageReceiveLimit: limit,
        requestMessages: [
          anyOf(ClientStreamRequestSchema, {
            responseDefinition: {
              response: { case: "responseData", value: new Uint8Array(limit) },
            },
          }),
        ],
      },
      expected: { error: err(8) },
    },
  ];
}

// --- Raw responses: the "unexpected response" cases of the suite's client mode ---

const textBytes = (text: string) => bytes(text);
const endStream = (json: string, flags = 2) => envelope(flags, textBytes(json));
const unaryResponseWithData = toBinary(
  UnaryResponseSchema,
  create(UnaryResponseSchema, { payload: { data } }),
);
const fileDescriptorDetail = create(AnySchema, {
  typeUrl: "type.googleapis.com/google.protobuf.FileDescriptorProto",
  value: Buffer.from("Cgp0ZXN0LnByb3Rv", "base64"),
});
const errorJsonWithDetails = JSON.stringify({
  code: "out_of_range",
  message: "oops",
  foobar: "baz",
  details: [
    {
      type: "google.protobuf.FileDescriptorProto",
      value: "Cgp0ZXN0LnByb3Rv",
      frob: "nitz",
      debug: { name: "test.proto" },
    },
  ],
});

function rawCase(
  name: string,
  streamType: StreamType,
  raw: RawResponse,
  expected: ResultInit,
  otherCodes: number[] = [],
): ClientCase {
  const method = {
    [StreamType.UNARY]: ["Unary", UnaryRequestSchema],
    [StreamType.SERVER_STREAM]: ["ServerStream", ServerStreamRequestSchema],
    [StreamType.CLIENT_STREAM]: ["ClientStream", ClientStreamRequestSchema],
    [StreamType.HALF_DUPLEX_BIDI_STREAM]: [
      "BidiStream",
      BidiStreamRequestSchema,
    ],
  }[streamType as 1 | 2 | 3 | 4] as [string, DescMessage];
  return {
    name: `raw/${name}`,
    raw,
    expected,
    otherCodes,
    request: {
      method: method[0],
      streamType,
      requestMessages: [packAny(method[1], create(method[1]))],
    },
  };
}

/** client_http_to_rpc_code.yaml: every protocol maps a bare HTTP status the same way. */
function httpStatusCases(): ClientCase[] {
  return (
    [
      [400, 13],
      [401, 16],
      [404, 12],
      [409, 2],
      [429, 14],
      [503, 14],
    ] as const
  ).map(([status, code]) =>
    rawCase(
      `http-status/${status}`,
      StreamType.UNARY,
      { status },
      { error: err(code) },
    ),
  );
}

function rawCases(config: ClientConfig): ClientCase[] {
  const unaryEmpty = new Uint8Array(0);
  switch (config.protocol) {
    case "connect": {
      const streamHeaders: [string, string][] = [
        ["content-type", "application/connect+proto"],
      ];
      return [
        ...httpStatusCases(),
        // connect_client_unexpected.yaml
        rawCase(
          "unexpected-error-body",
          StreamType.UNARY,
          {
            status: 403,
            headers: [["content-type", "application/proto"]],
            body: unaryEmpty,
          },
          { error: err(7) },
        ),
        rawCase(
          "client-stream/ok-but-no-response",
          StreamType.CLIENT_STREAM,
          {
            headers: streamHeaders,
            body: endStream('{"code": "out_of_range", "message": "oops"}'),
          },
          { error: err(12) },
        ),
        rawCase(
          "client-stream/multiple-responses",
          StreamType.CLIENT_STREAM,
          {
            headers: streamHeaders,
            body: concat(
              envelope(0, unaryEmpty),
              envelope(0, unaryEmpty),
              endStream("{}"),
            ),
          },
          { error: err(12) },
        ),
        rawCase(
          "client-stream/no-end-stream",
          StreamType.CLIENT_STREAM,
          { headers: streamHeaders, body: envelope(0, unaryEmpty) },
          { error: err(13) },
          [2],
        ),
        rawCase(
          "server-stream/no-end-stream",
          StreamType.SERVER_STREAM,
          { headers: streamHeaders, body: envelope(0, unaryEmpty) },
          { payloads: [{}], error: err(13) },
          [2],
        ),
        rawCase(
          "unexpected-content-type",
          StreamType.UNARY,
          { headers: [["Content-Type", "image/jpeg"]] },
          { error: err(2) },
        ),
        rawCase(
          "unexpected-codec",
          StreamType.UNARY,
          {
            headers: [["content-type", "application/json"]],
            body: textBytes('{"payload": {"data": "dGVzdCByZXNwb25zZQ"}}'),
          },
          { error: err(13) },
        ),
        rawCase(
          "unexpected-compression",
          StreamType.UNARY,
          {
            headers: [
              ["content-type", "application/proto"],
              ["content-encoding", "foo"],
            ],
            body: zlibZstd(unaryResponseWithData),
          },
          { error: err(13) },
        ),
        rawCase(
          "unexpected-compressed-message",
          StreamType.SERVER_STREAM,
          {
            headers: [
              ...streamHeaders,
              ["connect-content-encoding", "identity"],
            ],
            body: concat(envelope(1, unaryResponseWithData), endStream("{}")),
          },
          { error: err(13) },
        ),
        rawCase(
          "server-stream/incomplete-message",
          StreamType.SERVER_STREAM,
          {
            headers: streamHeaders,
            body: concat(
              envelope(0, unaryEmpty),
              envelope(0, new Uint8Array([0, 0, 0]), 10),
            ),
          },
          { payloads: [{}], error: err(13) },
          [2],
        ),
        rawCase(
          "server-stream/incomplete-message-prefix",
          StreamType.SERVER_STREAM,
          { headers: streamHeaders, body: new Uint8Array(8) },
          { payloads: [{}], error: err(13) },
          [2],
        ),
        // connect_client_empty.yaml
        rawCase(
          "unary/empty-response",
          StreamType.UNARY,
          {
            headers: [
              ["content-type", "application/proto"],
              ["x-custom-header", "foo"],
              ["trailer-x-custom-trailer", "bing"],
            ],
            body: unaryEmpty,
          },
          {
            responseHeaders: [{ name: "x-custom-header", value: ["foo"] }],
            payloads: [{}],
            responseTrailers: [{ name: "x-custom-trailer", value: ["bing"] }],
          },
        ),
        rawCase(
          "client-stream/empty-response",
          StreamType.CLIENT_STREAM,
          {
            headers: [...streamHeaders, ["x-custom-header", "foo"]],
            body: concat(
              envelope(0, unaryEmpty),
              endStream('{"metadata": {"x-custom-trailer": ["bing"]}}'),
            ),
          },
          {
            responseHeaders: [{ name: "x-custom-header", value: ["foo"] }],
            payloads: [{}],
            responseTrailers: [{ name: "x-custom-trailer", value: ["bing"] }],
          },
        ),
        // connect_client_error_endstream.yaml
        rawCase(
          "error/null-code",
          StreamType.UNARY,
          {
            status: 401,
            headers: [["content-type", "application/json"]],
            body: textBytes('{ "code": null, "message": "oops" }'),
          },
          { error: err(16, "oops") },
        ),
        rawCase(
          "error/missing-code",
          StreamType.UNARY,
          {
            status: 401,
            headers: [["content-type", "application/json"]],
            body: textBytes('{ "message": "oops" }'),
          },
          { error: err(16, "oops") },
        ),
        rawCase(
          "error/unrecognized-code",
          StreamType.UNARY,
          {
            status: 429,
            headers: [["content-type", "application/json"]],
            body: textBytes('{ "code": "foobar", "message": "oops" }'),
          },
          { error: err(14, "oops") },
        ),
        rawCase(
          "error/allow-unrecognized-fields-in-details",
          StreamType.UNARY,
          {
            status: 422,
            headers: [["content-type", "application/json"]],
            body: textBytes(errorJsonWithDetails),
          },
          { error: err(11, "oops", [fileDescriptorDetail]) },
        ),
        rawCase(
          "end-stream/null-error",
          StreamType.SERVER_STREAM,
          { headers: streamHeaders, body: endStream('{ "error": null }') },
          {},
        ),
        rawCase(
          "end-stream/missing-code",
          StreamType.SERVER_STREAM,
          {
            headers: streamHeaders,
            body: endStream('{ "error": { "message": "oops" } }'),
          },
          { error: err(2, "oops") },
        ),
        rawCase(
          "end-stream/unrecognized-code",
          StreamType.SERVER_STREAM,
          {
            headers: streamHeaders,
            body: endStream(
              '{ "error": { "code": "foobar", "message": "oops" } }',
            ),
          },
          { error: err(2, "oops") },
        ),
        // connect_client_compressed_error_endstream.yaml
        rawCase(
          "error/compressed",
          StreamType.UNARY,
          {
            status: 422,
            headers: [
              ["content-type", "application/json"],
              ["content-encoding", "gzip"],
            ],
            body: gzipSync(textBytes(errorJsonWithDetails)),
          },
          { error: err(11, "oops", [fileDescriptorDetail]) },
        ),
        rawCase(
          "end-stream/compressed",
          StreamType.SERVER_STREAM,
          {
            headers: [...streamHeaders, ["connect-content-encoding", "gzip"]],
            body: envelope(
              3,
              gzipSync(textBytes(`{"error": ${errorJsonWithDetails}}`)),
            ),
          },
          { error: err(11, "oops", [fileDescriptorDetail]) },
        ),
      ];
    }
    case "grpc": {
      const grpcHeaders: [string, string][] = [
        ["content-type", "application/grpc"],
      ];
      return [
        ...httpStatusCases(),
        // grpc_client_empty.yaml
        rawCase(
          "unary/empty-response",
          StreamType.UNARY,
          {
            headers: [...grpcHeaders, ["x-custom-header", "foo"]],
            body: envelope(0, unaryEmpty),
            trailers: [
              ["grpc-status", "0"],
              ["x-custom-trailer", "bing"],
            ],
          },
          {
            responseHeaders: [{ name: "x-custom-header", value: ["foo"] }],
            payloads: [{}],
            responseTrailers: [{ name: "x-custom-trailer", value: ["bing"] }],
          },
        ),
        // grpc_client_unexpected.yaml
        rawCase(
          "missing-status",
          StreamType.UNARY,
          { headers: grpcHeaders, trailers: [["grpc-message", "error"]] },
          { error: err(2) },
          [13],
        ),
        rawCase(
          "unary/ok-but-no-response",
          StreamType.UNARY,
          { headers: grpcHeaders, trailers: [["grpc-status", "0"]] },
          { error: err(12) },
        ),
        rawCase(
          "unary/multiple-responses",
          StreamType.UNARY,
          {
            headers: grpcHeaders,
            body: concat(envelope(0, unaryEmpty), envelope(0, unaryEmpty)),
            trailers: [["grpc-status", "0"]],
          },
          { error: err(12) },
        ),
        rawCase(
          "unary/no-terminal-status",
          StreamType.UNARY,
          { headers: grpcHeaders, body: envelope(0, unaryEmpty) },
          { error: err(13) },
          [2],
        ),
        rawCase(
          "client-stream/ok-but-no-response",
          StreamType.CLIENT_STREAM,
          { headers: grpcHeaders, trailers: [["grpc-status", "0"]] },
          { error: err(12) },
        ),
        rawCase(
          "server-stream/no-terminal-status",
          StreamType.SERVER_STREAM,
          { headers: grpcHeaders, body: envelope(0, unaryEmpty) },
          { payloads: [{}], error: err(13) },
          [2],
        ),
        rawCase(
          "trailers-only/ignore-header-if-body-present",
          StreamType.UNARY,
          {
            headers: [...grpcHeaders, ["grpc-status", "9"]],
            body: envelope(0, unaryEmpty),
          },
          { error: err(13) },
          [2],
        ),
        rawCase(
          "trailers-only/ignore-header-if-trailer-present",
          StreamType.UNARY,
          {
            headers: [...grpcHeaders, ["grpc-status", "8"]],
            trailers: [
              ["foo", "bar"],
              ["grpc-status", "9"],
            ],
          },
          { error: err(9) },
        ),
        rawCase(
          "unexpected-content-type",
          StreamType.UNARY,
          { headers: [["Content-Type", "image/jpeg"]] },
          { error: err(2) },
        ),
        rawCase(
          "unexpected-codec",
          StreamType.UNARY,
          {
            headers: [["content-type", "application/grpc+json"]],
            body: envelope(
              0,
              textBytes('{"payload": {"data": "dGVzdCByZXNwb25zZQ"}}'),
            ),
            trailers: [["grpc-status", "0"]],
          },
          { error: err(13) },
          [2, 12],
        ),
        rawCase(
          "unexpected-compression",
          StreamType.UNARY,
          {
            headers: [
              ["content-type", "application/grpc+proto"],
              ["grpc-encoding", "foo"],
            ],
            body: envelope(1, zlibZstd(unaryEmpty)),
            trailers: [["grpc-status", "0"]],
          },
          { error: err(13) },
        ),
        rawCase(
          "unexpected-compressed-message",
          StreamType.UNARY,
          {
            headers: [
              ["content-type", "application/grpc+proto"],
              ["grpc-encoding", "identity"],
            ],
            body: envelope(1, unaryEmpty),
            trailers: [["grpc-status", "0"]],
          },
          { error: err(13) },
        ),
        rawCase(
          "server-stream/incomplete-message",
          StreamType.SERVER_STREAM,
          {
            headers: grpcHeaders,
            body: concat(
              envelope(0, unaryEmpty),
              envelope(0, new Uint8Array([0, 0, 0]), 10),
            ),
            trailers: [["grpc-status", "0"]],
          },
          { payloads: [{}], error: err(13) },
          [2],
        ),
      ];
    }
    case "grpc-web": {
      const webHeaders: [string, string][] = [
        ["content-type", "application/grpc-web"],
      ];
      const trailerBlock = (text: string) => envelope(0x80, textBytes(text));
      return [
        ...httpStatusCases(),
        // grpc_web_client_unexpected.yaml
        rawCase(
          "trailers-in-body/missing-status",
          StreamType.UNARY,
          {
            headers: webHeaders,
            body: trailerBlock("grpc-message: error\r\n"),
          },
          { error: err(2) },
          [13],
        ),
        rawCase(
          "trailers-in-body/unary/ok-but-no-response",
          StreamType.UNARY,
          { headers: webHeaders, body: trailerBlock("grpc-status: 0\r\n") },
          { error: err(12) },
        ),
        rawCase(
          "trailers-in-body/client-stream/multiple-responses",
          StreamType.CLIENT_STREAM,
          {
            headers: webHeaders,
            body: concat(
              envelope(0, unaryEmpty),
              envelope(0, unaryEmpty),
              trailerBlock("grpc-status: 0\r\n"),
            ),
          },
          { error: err(12) },
        ),
        rawCase(
          "trailers-only/missing-status",
          StreamType.UNARY,
          { headers: [...webHeaders, ["grpc-message", "error"]] },
          { error: err(2) },
          [13],
        ),
        rawCase(
          "trailers-only/unary/ok-but-no-response",
          StreamType.UNARY,
          { headers: [...webHeaders, ["grpc-status", "0"]] },
          { error: err(12) },
        ),
        rawCase(
          "trailers-only/ignore-header-if-body-present",
          StreamType.UNARY,
          {
            headers: [...webHeaders, ["grpc-status", "8"]],
            body: trailerBlock("grpc-status: 9\r\n"),
          },
          { error: err(9) },
        ),
        rawCase(
          "unexpected-content-type",
          StreamType.UNARY,
          { headers: [["Content-Type", "image/jpeg"]] },
          { error: err(2) },
          [13, 12],
        ),
        rawCase(
          "unexpected-codec",
          StreamType.UNARY,
          {
            headers: [["content-type", "application/grpc-web+json"]],
            body: concat(
              envelope(
                0,
                textBytes('{"payload": {"data": "dGVzdCByZXNwb25zZQ"}}'),
              ),
              trailerBlock("grpc-status: 0\r\n"),
            ),
          },
          { error: err(13) },
          [2, 12],
        ),
        rawCase(
          "unexpected-compressed-message",
          StreamType.UNARY,
          {
            headers: [
              ["content-type", "application/grpc-web+proto"],
              ["grpc-encoding", "identity"],
            ],
            body: concat(
              envelope(1, unaryEmpty),
              trailerBlock("grpc-status: 0\r\n"),
            ),
          },
          { error: err(13) },
        ),
        // grpc_web_client_compressed_trailers.yaml
        rawCase(
          "trailers-in-body/compressed",
          StreamType.UNARY,
          {
            headers: [
              ...webHeaders,
              ["grpc-encoding", "gzip"],
              ["x-custom-header", "foo"],
            ],
            body: envelope(
              0x81,
              gzipSync(
                textBytes(
                  "grpc-status: 9\r\ngrpc-message: error\r\nx-custom-trailer: bing\r\n",
                ),
              ),
            ),
          },
          {
            responseHeaders: [{ name: "x-custom-header", value: ["foo"] }],
            responseTrailers: [{ name: "x-custom-trailer", value: ["bing"] }],
            error: err(9, "error"),
          },
        ),
        // grpc_web_client_trailers.yaml
        rawCase(
          "trailers-in-body/mixed-case",
          StreamType.UNARY,
          {
            headers: [...webHeaders, ["x-custom-header", "foo"]],
            body: trailerBlock(
              "Grpc-Status: 9\r\ngRPC-Message: error\r\nx-Custom-Trailer: bing\r\n",
            ),
          },
          {
            responseHeaders: [{ name: "x-custom-header", value: ["foo"] }],
            responseTrailers: [{ name: "x-custom-trailer", value: ["bing"] }],
            error: err(9, "error"),
          },
        ),
        rawCase(
          "trailers-only/duplicate-metadata",
          StreamType.UNARY,
          {
            headers: [
              ...webHeaders,
              ["x-custom-header", "foo"],
              ["x-custom-header", "bar"],
              ["x-custom-trailer", "bing"],
              ["x-custom-trailer", "quuz"],
              ["grpc-status", "9"],
              ["grpc-message", "error"],
            ],
          },
          {
            responseHeaders: [
              { name: "x-custom-header", value: ["foo", "bar"] },
            ],
            responseTrailers: [
              { name: "x-custom-trailer", value: ["bing", "quuz"] },
            ],
            error: err(9, "error"),
          },
        ),
      ];
    }
  }
}

// --- Running the client program ---

interface PlannedCase {
  readonly testName: string;
  readonly config: ClientConfig | undefined;
  readonly kase: ClientCase;
}

function planClientCases(): PlannedCase[] {
  const planned: PlannedCase[] = [];
  for (const config of clientConfigs) {
    const cases = [...basicCases(config)];
    if (config.extended) {
      cases.push(...cancelAndTimeoutCases(config));
      if (!config.json) cases.push(...rawCases(config), ...receiveLimitCases());
    }
    for (const kase of cases) {
      planned.push({ testName: `${config.name}/${kase.name}`, config, kase });
    }
  }
  return planned;
}

const plannedCases = planClientCases();

/** Requests the client program must refuse with an error result (ClientErrorResult), not a call. */
const refusedCases: {
  testName: string;
  request: CompatInit;
  reason: RegExp;
}[] = [
  {
    testName: "refused/raw-request",
    reason: /raw_request/,
    request: {
      rawRequest: { verb: "POST", uri: "/x" },
      method: "Unary",
      streamType: StreamType.UNARY,
      requestMessages: [anyOf(UnaryRequestSchema)],
    },
  },
  {
    testName: "refused/unknown-method",
    reason: /unknown method/,
    request: {
      method: "Nope",
      streamType: StreamType.UNARY,
      requestMessages: [anyOf(UnaryRequestSchema)],
    },
  },
  {
    testName: "refused/snappy",
    reason: /compression/,
    request: {
      compression: Compression.SNAPPY,
      method: "Unary",
      streamType: StreamType.UNARY,
      requestMessages: [anyOf(UnaryRequestSchema)],
    },
  },
  {
    testName: "refused/two-unary-requests",
    reason: /exactly one/,
    request: {
      method: "Unary",
      streamType: StreamType.UNARY,
      requestMessages: [anyOf(UnaryRequestSchema), anyOf(UnaryRequestSchema)],
    },
  },
];

describe("conformance client program", () => {
  const ports = { http1: 0, h2c: 0, tls: 0, tlsClientCert: 0 };
  const servers: (http.Server | http2.Http2Server | http2.Http2SecureServer)[] =
    [];
  const sockets = new Set<import("node:net").Socket>();
  const responses = new Map<string, ClientCompatResponse[]>();
  const requests = new Map<string, ClientCompatRequest>();
  let run: {
    exitCode: number | null;
    stderr: string;
    count: number;
    elapsedMs: number;
  };
  let serverCert: TestCertificate;
  let clientCert: TestCertificate;

  function compatRequest(
    testName: string,
    config: ClientConfig | undefined,
    init: CompatInit,
  ): ClientCompatRequest {
    const tls = config?.tls ?? "none";
    const port =
      config === undefined
        ? ports.h2c
        : tls === "client-cert"
          ? ports.tlsClientCert
          : tls === "server"
            ? ports.tls
            : config.httpVersion === 1
              ? ports.http1
              : ports.h2c;
    const request = create(ClientCompatRequestSchema, init);
    request.testName = testName;
    request.httpVersion =
      config?.httpVersion === 1
        ? HTTPVersion.HTTP_VERSION_1
        : HTTPVersion.HTTP_VERSION_2;
    request.protocol =
      config === undefined
        ? Protocol.CONNECT
        : {
            connect: Protocol.CONNECT,
            grpc: Protocol.GRPC,
            "grpc-web": Protocol.GRPC_WEB,
          }[config.protocol];
    request.codec = config?.json === true ? Codec.JSON : Codec.PROTO;
    if (config !== undefined) {
      request.compression = {
        identity: Compression.IDENTITY,
        gzip: Compression.GZIP,
        br: Compression.BR,
        zstd: Compression.ZSTD,
        deflate: Compression.DEFLATE,
      }[config.compression];
    }
    request.host = "127.0.0.1";
    request.port = port;
    if (tls !== "none") request.serverTlsCert = bytes(serverCert.cert);
    if (tls === "client-cert") {
      request.clientTlsCreds = create(TLSCredsSchema, {
        cert: bytes(clientCert.cert),
        key: bytes(clientCert.key),
      });
    }
    request.service ??= "connectrpc.conformance.v1.ConformanceService";
    // The runner adds the test name as a header, for the reference server.
    request.requestHeaders.push(
      create(HeaderSchema, { name: "x-test-case-name", value: [testName] }),
    );
    return request;
  }

  beforeAll(async () => {
    serverCert = testCertificate();
    clientCert = clientCertificate();
    const adapter = connectNodeAdapter({
      routes: esRoutes,
      acceptCompression: [
        esCompressionGzip,
        esCompressionBrotli,
        esZlibCompression("zstd", zstdCompressSync, zstdDecompressSync),
        esZlibCompression("deflate", deflateSync, inflateSync),
      ],
      jsonOptions: { registry: conformanceRegistry },
      contextValues: (req) => {
        const values = createContextValues();
        const deadline = arrivedDeadlines.get(req);
        if (deadline !== undefined) values.set(deadlineKey, deadline);
        return values;
      },
    }) as NodeListener;
    const listener = referenceListener(
      adapter,
      createConformanceServiceHandler(createConformanceImplementation(), {
        jsonOptions: { registry: conformanceRegistry },
      }).node as NodeListener,
    );
    const tlsOptions = {
      cert: serverCert.cert,
      key: serverCert.key,
      allowHTTP1: true,
    };
    const [http1, h2c, tls, tlsClientCert] = [
      http.createServer(listener),
      http2.createServer(listener),
      http2.createSecureServer(tlsOptions, listener),
      http2.createSecureServer(
        {
          ...tlsOptions,
          ca: clientCert.cert,
          requestCert: true,
          rejectUnauthorized: true,
        },
        listener,
      ),
    ];
    for (const server of [http1, h2c, tls, tlsClientCert]) {
      servers.push(server!);
      server!.on("connection", (socket: import("node:net").Socket) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
      });
      server!.on("secureConnection", (socket: import("node:net").Socket) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
      });
    }
    ports.http1 = await listen(http1!);
    ports.h2c = await listen(h2c!);
    ports.tls = await listen(tls!);
    ports.tlsClientCert = await listen(tlsClientCert!);

    const all: ClientCompatRequest[] = [];
    for (const { testName, config, kase } of plannedCases) {
      const request = compatRequest(testName, config, kase.request);
      if (kase.raw !== undefined) rawResponses.set(testName, kase.raw);
      requests.set(testName, request);
      all.push(request);
    }
    for (const { testName, request } of refusedCases) {
      all.push(compatRequest(testName, undefined, request));
    }
    const start = performance.now();
    const result = await runClientProgram(all);
    for (const response of result.responses) {
      responses.set(response.testName, [
        ...(responses.get(response.testName) ?? []),
        response,
      ]);
    }
    run = {
      exitCode: result.exitCode,
      stderr: result.stderr,
      count: result.responses.length,
      elapsedMs: performance.now() - start,
    };
  }, 60_000);

  afterAll(() => {
    for (const server of servers) server.close();
    for (const socket of sockets) socket.destroy();
  });

  it("answers every request exactly once, then exits when stdin ends", () => {
    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    expect(run.count).toBe(plannedCases.length + refusedCases.length);
    for (const [name, list] of responses) expect(list, name).toHaveLength(1);
  });

  it.each(refusedCases.map((c) => [c.testName, c] as const))(
    "%s: reported as a ClientErrorResult",
    (testName, { reason }) => {
      const [response] = responses.get(testName) ?? [];
      expect(response?.result.case).toBe("error");
      expect((response?.result.value as { message: string }).message).toMatch(
        reason,
      );
    },
  );

  it.each(plannedCases.map((c) => [c.testName, c] as const))(
    "%s",
    (testName, { config, kase }) => {
      const [response] = responses.get(testName) ?? [];
      expect(response, "no response").toBeDefined();
      if (response!.result.case !== "response") {
        expect.fail(
          `error result: ${(response!.result.value as { message: string } | undefined)?.message}`,
        );
      }
      const actual = response!.result.value;
      const request = requests.get(testName)!;
      const expected =
        kase.expected !== undefined
          ? create(ClientResponseResultSchema, kase.expected)
          : expectedResult(request);
      expect(checkResult(expected, actual, kase.otherCodes).join("\n")).toBe(
        "",
      );
      if (kase.raw !== undefined || config === undefined) return;

      // What the reference server checks of every request it gets.
      const seen = observations.get(testName) ?? [];
      const canceled =
        kase.request.cancel !== undefined || kase.request.timeoutMs === 200;
      expect(seen.length, "requests sent").toBe(
        canceled ? Math.min(seen.length, 1) : 1,
      );
      for (const o of seen) {
        expect(o.httpMajor).toBe(config.httpVersion);
        expect(o.tls).toBe(config.tls !== "none");
        expect(o.clientCertCN).toBe(
          config.tls === "client-cert" ? "conformance-client" : undefined,
        );
        expect(o.trailerCount).toBe(0);
        const compression =
          config.compression === "identity" ? undefined : config.compression;
        if (kase.request.useGetHttpMethod === true) {
          expect(o.method).toBe("GET");
          expect(o.contentType).toBeUndefined();
          expect(o.getCompression ?? undefined).toBe(compression);
          continue;
        }
        expect(o.method).toBe("POST");
        const codec = config.json ? "json" : "proto";
        const streaming = kase.request.streamType !== StreamType.UNARY;
        expect(o.contentType).toBe(
          config.protocol === "connect"
            ? streaming
              ? `application/connect+${codec}`
              : `application/${codec}`
            : `application/${config.protocol}+${codec}`,
        );
        expect(o.encoding === "identity" ? undefined : o.encoding).toBe(
          compression,
        );
      }
    },
  );

  it("exits at once on SIGTERM, calls in flight or not", async () => {
    const child = spawn(join(conformanceDir, "bin/client"), [], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    child.stdin.write(
      frameDelimited(
        toBinary(
          ClientCompatRequestSchema,
          compatRequest("sigterm/slow", undefined, {
            method: "Unary",
            streamType: StreamType.UNARY,
            requestDelayMs: 30_000,
            requestMessages: [anyOf(UnaryRequestSchema)],
          }),
        ),
      ),
    );
    await sleep(500);
    const start = performance.now();
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    expect(performance.now() - start).toBeLessThan(1_000);
  });
});

// ---------------------------------------------------------------------------
// 3. The official suite, where connectconformance is on PATH
// ---------------------------------------------------------------------------

function findOnPath(command: string): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

// connectconformance is a Go program (github.com/connectrpc/conformance), not
// an npm package, so it cannot be a dev dependency: the official suite runs
// only where someone has installed it, and is otherwise skipped with one line.
const officialRunner = findOnPath("connectconformance");
if (officialRunner === undefined) {
  console.log(
    "official conformance suite skipped: connectconformance is not on PATH",
  );
}

describe("official conformance suite (connectconformance)", () => {
  for (const mode of ["server", "client"] as const) {
    it.runIf(officialRunner !== undefined)(
      `--mode ${mode}`,
      async () => {
        const { code, output } = await new Promise<{
          code: number | null;
          output: string;
        }>((resolve) => {
          const child = spawn(
            officialRunner!,
            [
              "--mode",
              mode,
              "--conf",
              "conformance/config.yaml",
              "--",
              `conformance/bin/${mode}`,
            ],
            { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
          );
          let output = "";
          child.stdout.on("data", (c: Buffer) => (output += c.toString()));
          child.stderr.on("data", (c: Buffer) => (output += c.toString()));
          child.once("exit", (code) => resolve({ code, output }));
        });
        expect(code, output.slice(-20_000)).toBe(0);
      },
      30 * 60_000,
    );
  }
});
