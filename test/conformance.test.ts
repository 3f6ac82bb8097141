// The conformance programs in conformance/, as programs: what the official
// runner (connectconformance) relies on to drive them, and their own edge
// cases. What a conformance test case means (every protocol, codec and
// compression, each error code and its details, headers and trailers,
// cancellation and timeouts, message size limits, unexpected requests and
// responses) is the official runner's to check: `npm test` runs it in server
// and client mode (conformance/run.ts, not this file), and it checks far more
// than a port of its cases here could. This file keeps what the runner does
// not check, or would only report as "the program did not start":
//
// 1. conformance/bin/server: reads one size-delimited ServerCompatRequest
//    from stdin (even when it arrives in pieces), writes one
//    ServerCompatResponse with its host, port and, with TLS, the PEM
//    certificate, and serves on the listener the request asked for (node:http,
//    h2c, TLS HTTP/2 that also takes HTTP/1.1, node:https), every protocol on
//    each, requiring a client certificate when the request names one and
//    applying its message_receive_limit.
// 2. conformance/bin/client: reads size-delimited ClientCompatRequests until
//    stdin ends and writes one ClientCompatResponse per request, as each call
//    ends (a slow call holds back no other); sets up each call from the
//    request (host, port, HTTP version, TLS with the server's certificate and
//    a client certificate, protocol, codec, compression, stream type);
//    reports requests it cannot make as a ClientErrorResult; waits for the
//    calls in flight when stdin ends, and exits at once on SIGTERM.
//
// Nothing here measures time: where an order matters (a call still in flight,
// one call answered before another), a reference handler waits for a promise
// the test settles.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  create,
  equals,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ClientCompatRequestSchema,
  ClientCompatResponseSchema,
  type ClientCompatRequest,
  type ClientCompatResponse,
  type ClientResponseResult,
} from "../conformance/gen/connectrpc/conformance/v1/client_compat_pb.ts";
import {
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
  grpcProtocol,
  grpcWebProtocol,
  type NodeClientOptions,
} from "../conformance/gen/connectrpc/conformance/v1/service.ConformanceService.ts";
import {
  BidiStreamRequestSchema,
  ClientStreamRequestSchema,
  ServerStreamRequestSchema,
  UnaryRequestSchema,
  type ConformancePayload_RequestInfo,
  type Header,
} from "../conformance/gen/connectrpc/conformance/v1/service_pb.ts";
import { createHttpsHttpClient } from "../conformance/https-client.ts";
import { createConformanceImplementation } from "../conformance/service.ts";
import {
  conformanceRegistry,
  frameDelimited,
  packAny,
  readDelimited,
} from "../conformance/protocol.ts";
import { repoRoot } from "./support/generate.ts";
import { testCertificate, type TestCertificate } from "./support/tls.ts";

const conformanceDir = join(repoRoot, "conformance");
const serverProgram = join(conformanceDir, "bin/server");
const clientProgram = join(conformanceDir, "bin/client");

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

/** The values of a header, repeated values split again as the runner does. */
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

/** The request messages a payload's request info echoes, unpacked. */
function echoedRequests<Desc extends DescMessage>(
  info: ConformancePayload_RequestInfo | undefined,
  desc: Desc,
) {
  return (info?.requests ?? []).map((any: Any) => {
    expect(any.typeUrl).toBe(`type.googleapis.com/${desc.typeName}`);
    return anyUnpack(any, desc)!;
  });
}

/** A promise and the function that settles it: what a test hands out to decide when something happens. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

function exitOf(child: ChildProcess): Promise<{
  code: number | null;
  signal: NodeJS.Signals | null;
}> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

// ---------------------------------------------------------------------------
// 1. The server program
// ---------------------------------------------------------------------------

interface ServerProgram {
  readonly response: ServerCompatResponse;
  readonly url: string;
  stop(): void;
}

const serverPrograms: ServerProgram[] = [];

/**
 * Starts conformance/bin/server, writes one size-delimited
 * ServerCompatRequest to its stdin (in two pieces when `split`, the way a
 * pipe may deliver it) and reads its ServerCompatResponse.
 */
async function startServerProgram(
  init: MessageInitShape<typeof ServerCompatRequestSchema>,
  { split = false } = {},
): Promise<ServerProgram> {
  const child = spawn(serverProgram, [], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const framed = frameDelimited(
    toBinary(
      ServerCompatRequestSchema,
      create(ServerCompatRequestSchema, init),
    ),
  );
  if (split) {
    // The length prefix and part of the message, then the rest once the
    // first piece has been handed to the pipe.
    const cut = Math.min(6, framed.byteLength - 1);
    await new Promise<void>((resolve, reject) =>
      child.stdin.write(framed.subarray(0, cut), (e) =>
        e ? reject(e) : resolve(),
      ),
    );
    child.stdin.write(framed.subarray(cut));
  } else {
    child.stdin.write(framed);
  }
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

type Listener = "http1" | "h2c" | "tls" | "https1";

interface ServerVariant {
  readonly name: string;
  readonly listener: Listener;
  readonly options: NodeClientOptions;
  /** HTTP/1.1 over TLS: node:https, which takes a CA where fetch does not. */
  readonly https1?: boolean;
}

// One call per protocol the listener carries: the program serves every
// protocol on every listener it opens. The runner calls each of them in
// every combination; this checks the program set up what its request asked.
const serverVariants: ServerVariant[] = [
  {
    name: "node:http, Connect",
    listener: "http1",
    options: { transport: "fetch" },
  },
  {
    name: "node:http, gRPC-Web",
    listener: "http1",
    options: { protocol: grpcWebProtocol, transport: "fetch" },
  },
  { name: "h2c, Connect", listener: "h2c", options: { transport: "http2" } },
  { name: "h2c, gRPC", listener: "h2c", options: { protocol: grpcProtocol } },
  {
    name: "h2c, gRPC-Web",
    listener: "h2c",
    options: { protocol: grpcWebProtocol, transport: "http2" },
  },
  {
    name: "TLS h2 with a client certificate, Connect",
    listener: "tls",
    options: { transport: "http2" },
  },
  {
    name: "TLS h2 with a client certificate, gRPC",
    listener: "tls",
    options: { protocol: grpcProtocol, transport: "http2" },
  },
  {
    name: "TLS HTTP/1.1 to the HTTP/2 server (allowHTTP1), client certificate, gRPC-Web",
    listener: "tls",
    options: { protocol: grpcWebProtocol },
    https1: true,
  },
  {
    name: "node:https, Connect",
    listener: "https1",
    options: {},
    https1: true,
  },
];

describe("conformance server program", () => {
  let serverCert: TestCertificate;
  let clientCert: TestCertificate;
  const programs = {} as Record<Listener, ServerProgram>;
  let limited: ServerProgram;
  const limit = 200;

  beforeAll(async () => {
    serverCert = testCertificate();
    clientCert = clientCertificate();
    const serverCreds = {
      cert: bytes(serverCert.cert),
      key: bytes(serverCert.key),
    };
    [programs.http1, programs.h2c, programs.tls, programs.https1, limited] =
      await Promise.all([
        startServerProgram({
          protocol: Protocol.CONNECT,
          httpVersion: HTTPVersion.HTTP_VERSION_1,
        }),
        startServerProgram(
          { protocol: Protocol.GRPC, httpVersion: HTTPVersion.HTTP_VERSION_2 },
          { split: true },
        ),
        startServerProgram({
          protocol: Protocol.GRPC,
          httpVersion: HTTPVersion.HTTP_VERSION_2,
          useTls: true,
          serverCreds,
          clientTlsCert: bytes(clientCert.cert),
        }),
        startServerProgram({
          protocol: Protocol.CONNECT,
          httpVersion: HTTPVersion.HTTP_VERSION_1,
          useTls: true,
          serverCreds,
        }),
        startServerProgram({
          protocol: Protocol.CONNECT,
          httpVersion: HTTPVersion.HTTP_VERSION_2,
          messageReceiveLimit: limit,
        }),
      ]);
  });

  afterAll(() => {
    for (const program of serverPrograms.splice(0)) program.stop();
  });

  function clientFor(variant: ServerVariant) {
    const program = programs[variant.listener];
    const tls =
      variant.listener === "tls"
        ? { ca: serverCert.cert, cert: clientCert.cert, key: clientCert.key }
        : variant.listener === "https1"
          ? { ca: serverCert.cert }
          : undefined;
    return createConformanceServiceClient(program.url, {
      ...variant.options,
      ...(tls !== undefined && variant.https1 === true
        ? { httpClient: createHttpsHttpClient(tls) }
        : {}),
      ...(tls !== undefined && variant.options.transport === "http2"
        ? { http2: { sessionOptions: tls } }
        : {}),
    });
  }

  it("answers its ServerCompatRequest (the h2c one split across two writes) with a ServerCompatResponse: its address, and the certificate when TLS is on", () => {
    for (const program of serverPrograms) {
      expect(program.response.host).toBe("127.0.0.1");
      expect(program.response.port).toBeGreaterThan(0);
    }
    const ports = new Set(serverPrograms.map((p) => p.response.port));
    expect(ports.size).toBe(serverPrograms.length);
    const decode = (pem: Uint8Array) => new TextDecoder().decode(pem);
    expect(decode(programs.tls.response.pemCert)).toBe(serverCert.cert);
    expect(decode(programs.https1.response.pemCert)).toBe(serverCert.cert);
    expect(programs.http1.response.pemCert).toHaveLength(0);
    expect(programs.h2c.response.pemCert).toHaveLength(0);
  });

  it.each(serverVariants.map((v) => [v.name, v] as const))(
    "%s: serves ConformanceService on the listener its request asked for",
    async (_, variant) => {
      const client = clientFor(variant);
      const request = {
        responseDefinition: {
          responseHeaders: [{ name: "x-custom-header", value: ["foo"] }],
          responseTrailers: [{ name: "x-custom-trailer", value: ["bing"] }],
          response: { case: "responseData" as const, value: bytes("data") },
        },
        requestData: bytes("padding"),
      };
      const response = await client.unary.raw(request, {
        headers: { "x-conformance-test": "Value1" },
      });
      const payload = response.message.payload!;
      expect(payload.data).toEqual(bytes("data"));
      expect(
        protoHeaderValues(
          payload.requestInfo!.requestHeaders,
          "x-conformance-test",
        ),
      ).toEqual(["Value1"]);
      const [echoed] = echoedRequests(payload.requestInfo, UnaryRequestSchema);
      expect(
        equals(
          UnaryRequestSchema,
          echoed!,
          create(UnaryRequestSchema, request),
        ),
      ).toBe(true);
      expect(headerValues(response.header, "x-custom-header")).toEqual(["foo"]);
      expect(headerValues(response.trailer, "x-custom-trailer")).toEqual([
        "bing",
      ]);
    },
  );

  it("refuses TLS clients without the required client certificate", async () => {
    const client = createConformanceServiceClient(programs.tls.url, {
      transport: "http2",
      http2: { sessionOptions: { ca: serverCert.cert } },
    });
    await expect(client.unary({})).rejects.toMatchObject({ code: 14 });
  });

  it("applies the message_receive_limit of its request", async () => {
    // A request of exactly `size` bytes, padded with request_data.
    const padded = (size: number) => {
      const overhead =
        toBinary(
          UnaryRequestSchema,
          create(UnaryRequestSchema, { requestData: new Uint8Array(size) }),
        ).byteLength - size;
      return { requestData: new Uint8Array(size - overhead) };
    };
    const client = createConformanceServiceClient(limited.url, {
      transport: "http2",
    });
    const exact = padded(limit);
    expect(
      toBinary(UnaryRequestSchema, create(UnaryRequestSchema, exact))
        .byteLength,
    ).toBe(limit);
    await expect(client.unary(exact)).resolves.toBeDefined();
    await expect(client.unary(padded(limit + 10))).rejects.toMatchObject({
      code: 8,
    });
    // The unlimited programs take the same request.
    const unlimited = createConformanceServiceClient(programs.h2c.url, {
      transport: "http2",
    });
    await expect(unlimited.unary(padded(limit + 10))).resolves.toBeDefined();
  });
});

// ---------------------------------------------------------------------------
// 2. The client program
// ---------------------------------------------------------------------------

/** What a reference server saw of one request: what the client program set up from its ClientCompatRequest. */
interface Observation {
  httpMajor: number;
  method: string;
  contentType: string | undefined;
  encoding: string | undefined;
  tls: boolean;
  clientCertCN: string | undefined;
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

/** conformance/bin/client, fed requests one at a time; responses are read as they come. */
class ClientProgram {
  readonly child = spawn(clientProgram, [], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  readonly exited = exitOf(this.child);
  stderr = "";
  private readonly responses: AsyncIterator<Uint8Array>;

  constructor() {
    this.child.stderr!.on("data", (c: Buffer) => (this.stderr += c.toString()));
    this.responses = readDelimited(this.child.stdout!)[Symbol.asyncIterator]();
  }

  send(request: ClientCompatRequest): void {
    this.child.stdin!.write(
      frameDelimited(toBinary(ClientCompatRequestSchema, request)),
    );
  }

  end(): void {
    this.child.stdin!.end();
  }

  /** The next response, or undefined once stdout ends. */
  async next(): Promise<ClientCompatResponse | undefined> {
    const result = await this.responses.next();
    return result.done === true
      ? undefined
      : fromBinary(ClientCompatResponseSchema, result.value);
  }

  /** Every response until stdout ends. */
  async rest(): Promise<ClientCompatResponse[]> {
    const all: ClientCompatResponse[] = [];
    for (let r = await this.next(); r !== undefined; r = await this.next()) {
      all.push(r);
    }
    return all;
  }
}

interface ClientConfig {
  readonly name: string;
  readonly httpVersion: 1 | 2;
  readonly protocol: "connect" | "grpc" | "grpc-web";
  readonly json: boolean;
  readonly compression: "identity" | "gzip" | "br" | "zstd" | "deflate";
  readonly tls: "none" | "server" | "client-cert";
}

// Each field of a ClientCompatRequest that sets up a call, each value at least
// once; the runner covers every combination.
const clientConfigs: ClientConfig[] = [
  {
    name: "HTTP1/connect/proto/identity",
    httpVersion: 1,
    protocol: "connect",
    json: false,
    compression: "identity",
    tls: "none",
  },
  {
    name: "HTTP1/grpc-web/json/br",
    httpVersion: 1,
    protocol: "grpc-web",
    json: true,
    compression: "br",
    tls: "none",
  },
  {
    name: "HTTP2/connect/json/zstd",
    httpVersion: 2,
    protocol: "connect",
    json: true,
    compression: "zstd",
    tls: "none",
  },
  {
    name: "HTTP2/grpc/proto/deflate",
    httpVersion: 2,
    protocol: "grpc",
    json: false,
    compression: "deflate",
    tls: "none",
  },
  {
    name: "HTTP2/grpc-web/proto/gzip",
    httpVersion: 2,
    protocol: "grpc-web",
    json: false,
    compression: "gzip",
    tls: "none",
  },
  {
    name: "HTTP2/connect/proto/identity/TLS",
    httpVersion: 2,
    protocol: "connect",
    json: false,
    compression: "identity",
    tls: "server",
  },
  {
    name: "HTTP2/grpc/proto/gzip/TLS-client-cert",
    httpVersion: 2,
    protocol: "grpc",
    json: false,
    compression: "gzip",
    tls: "client-cert",
  },
  {
    name: "HTTP1/connect/json/gzip/TLS-client-cert",
    httpVersion: 1,
    protocol: "connect",
    json: true,
    compression: "gzip",
    tls: "client-cert",
  },
  {
    name: "HTTP1/grpc-web/proto/identity/TLS",
    httpVersion: 1,
    protocol: "grpc-web",
    json: false,
    compression: "identity",
    tls: "server",
  },
];

type CompatInit = MessageInitShape<typeof ClientCompatRequestSchema>;

interface ClientCase {
  readonly name: string;
  readonly request: CompatInit;
  check(result: ClientResponseResult): void;
}

const anyOf = <Desc extends DescMessage>(
  desc: Desc,
  init: MessageInitShape<Desc>,
): Any => packAny(desc, create(desc, init));

const customHeaders = [{ name: "x-custom-header", value: ["foo", "bar"] }];
const customTrailers = [{ name: "x-custom-trailer", value: ["bing", "quux"] }];

function expectMetadata(result: ClientResponseResult) {
  expect(protoHeaderValues(result.responseHeaders, "x-custom-header")).toEqual([
    "foo",
    "bar",
  ]);
  expect(
    protoHeaderValues(result.responseTrailers, "x-custom-trailer"),
  ).toEqual(["bing", "quux"]);
}

/** A unary call: the request's headers go out, the response's data, headers and trailers come back. */
function unaryCase(): ClientCase {
  return {
    name: "unary",
    request: {
      method: "Unary",
      streamType: StreamType.UNARY,
      requestHeaders: [
        { name: "X-Conformance-Test", value: ["Value1", "Value2"] },
      ],
      requestMessages: [
        anyOf(UnaryRequestSchema, {
          responseDefinition: {
            responseHeaders: customHeaders,
            responseTrailers: customTrailers,
            response: { case: "responseData", value: bytes("unary") },
          },
        }),
      ],
    },
    check(result) {
      expect(result.error).toBeUndefined();
      expect(result.payloads.map((p) => p.data)).toEqual([bytes("unary")]);
      expect(
        protoHeaderValues(
          result.payloads[0]!.requestInfo!.requestHeaders,
          "x-conformance-test",
        ),
      ).toEqual(["Value1", "Value2"]);
      expectMetadata(result);
    },
  };
}

/** Each stream type, and an error: how the program reports what a call produced. */
function kindCases(config: ClientConfig): ClientCase[] {
  const data = [bytes("one"), bytes("two")];
  const definition = {
    responseHeaders: customHeaders,
    responseTrailers: customTrailers,
    responseData: data,
  };
  const bidi = config.httpVersion === 2;
  return [
    {
      name: "unary-error",
      request: {
        method: "Unary",
        streamType: StreamType.UNARY,
        requestMessages: [
          anyOf(UnaryRequestSchema, {
            responseDefinition: {
              response: {
                case: "error",
                value: { code: 5, message: "not found ☺" },
              },
            },
          }),
        ],
      },
      check(result) {
        expect(result.payloads).toEqual([]);
        expect(result.error?.code).toBe(5);
        expect(result.error?.message).toBe("not found ☺");
      },
    },
    {
      name: "server-stream",
      request: {
        method: "ServerStream",
        streamType: StreamType.SERVER_STREAM,
        requestMessages: [
          anyOf(ServerStreamRequestSchema, { responseDefinition: definition }),
        ],
      },
      check(result) {
        expect(result.error).toBeUndefined();
        expect(result.payloads.map((p) => p.data)).toEqual(data);
        expectMetadata(result);
      },
    },
    {
      name: "client-stream",
      request: {
        method: "ClientStream",
        streamType: StreamType.CLIENT_STREAM,
        requestMessages: [
          anyOf(ClientStreamRequestSchema, {
            responseDefinition: {
              responseHeaders: customHeaders,
              responseTrailers: customTrailers,
              response: { case: "responseData", value: bytes("all in") },
            },
            requestData: bytes("first"),
          }),
          anyOf(ClientStreamRequestSchema, { requestData: bytes("second") }),
        ],
      },
      check(result) {
        expect(result.error).toBeUndefined();
        expect(result.payloads.map((p) => p.data)).toEqual([bytes("all in")]);
        expect(
          echoedRequests(
            result.payloads[0]!.requestInfo,
            ClientStreamRequestSchema,
          ).map((r) => r.requestData),
        ).toEqual([bytes("first"), bytes("second")]);
        expectMetadata(result);
      },
    },
    {
      name: bidi ? "full-duplex-bidi-stream" : "half-duplex-bidi-stream",
      request: {
        method: "BidiStream",
        streamType: bidi
          ? StreamType.FULL_DUPLEX_BIDI_STREAM
          : StreamType.HALF_DUPLEX_BIDI_STREAM,
        requestMessages: [
          anyOf(BidiStreamRequestSchema, {
            responseDefinition: definition,
            fullDuplex: bidi,
            requestData: bytes("first"),
          }),
          anyOf(BidiStreamRequestSchema, { requestData: bytes("second") }),
        ],
      },
      check(result) {
        expect(result.error).toBeUndefined();
        expect(result.payloads.map((p) => p.data)).toEqual(data);
        // Full duplex: each response answers one request; half duplex: the
        // first echoes them all.
        const echoed = result.payloads.flatMap((p) =>
          echoedRequests(p.requestInfo, BidiStreamRequestSchema).map(
            (r) => r.requestData,
          ),
        );
        expect(echoed).toEqual([bytes("first"), bytes("second")]);
        expect(result.numUnsentRequests).toBe(0);
        expectMetadata(result);
      },
    },
  ];
}

/** Requests the client program must refuse with an error result (ClientErrorResult), not a call. */
const refusedCases: { name: string; reason: RegExp; request: CompatInit }[] = [
  {
    name: "raw-request",
    reason: /raw_request/,
    request: {
      rawRequest: { verb: "POST", uri: "/x" },
      method: "Unary",
      streamType: StreamType.UNARY,
      requestMessages: [anyOf(UnaryRequestSchema, {})],
    },
  },
  {
    name: "unknown-method",
    reason: /unknown method/,
    request: {
      method: "Nope",
      streamType: StreamType.UNARY,
      requestMessages: [anyOf(UnaryRequestSchema, {})],
    },
  },
  {
    name: "snappy",
    reason: /compression/,
    request: {
      compression: Compression.SNAPPY,
      method: "Unary",
      streamType: StreamType.UNARY,
      requestMessages: [anyOf(UnaryRequestSchema, {})],
    },
  },
  {
    name: "two-unary-requests",
    reason: /exactly one/,
    request: {
      method: "Unary",
      streamType: StreamType.UNARY,
      requestMessages: [
        anyOf(UnaryRequestSchema, {}),
        anyOf(UnaryRequestSchema, {}),
      ],
    },
  },
  {
    name: "grpc-over-http1",
    reason: /HTTP\/2/,
    request: {
      protocol: Protocol.GRPC,
      httpVersion: HTTPVersion.HTTP_VERSION_1,
      method: "Unary",
      streamType: StreamType.UNARY,
      requestMessages: [anyOf(UnaryRequestSchema, {})],
    },
  },
];

describe("conformance client program", () => {
  const ports = { http1: 0, h2c: 0, tls: 0, tlsClientCert: 0 };
  const servers: (http.Server | http2.Http2Server | http2.Http2SecureServer)[] =
    [];
  const sockets = new Set<Socket>();
  const observations = new Map<string, Observation[]>();
  /** Unary calls of these test names wait for the promise before they answer. */
  const gates = new Map<string, Promise<void>>();
  /** Fires when a call of this test name reaches the reference server. */
  const arrivals = new Map<string, () => void>();
  let serverCert: TestCertificate;
  let clientCert: TestCertificate;

  /** A ClientCompatRequest as the runner makes them, for one of the reference servers. */
  function compatRequest(
    testName: string,
    config: ClientConfig | undefined,
    init: CompatInit,
  ): ClientCompatRequest {
    const tls = config?.tls ?? "none";
    const request = create(ClientCompatRequestSchema, {
      httpVersion:
        config?.httpVersion === 1
          ? HTTPVersion.HTTP_VERSION_1
          : HTTPVersion.HTTP_VERSION_2,
      protocol:
        config === undefined
          ? Protocol.CONNECT
          : {
              connect: Protocol.CONNECT,
              grpc: Protocol.GRPC,
              "grpc-web": Protocol.GRPC_WEB,
            }[config.protocol],
      codec: config?.json === true ? Codec.JSON : Codec.PROTO,
      compression:
        config === undefined
          ? Compression.IDENTITY
          : {
              identity: Compression.IDENTITY,
              gzip: Compression.GZIP,
              br: Compression.BR,
              zstd: Compression.ZSTD,
              deflate: Compression.DEFLATE,
            }[config.compression],
      ...init,
      testName,
      host: "127.0.0.1",
      port:
        tls === "client-cert"
          ? ports.tlsClientCert
          : tls === "server"
            ? ports.tls
            : config?.httpVersion === 1
              ? ports.http1
              : ports.h2c,
      service: "connectrpc.conformance.v1.ConformanceService",
    });
    if (tls !== "none") request.serverTlsCert = bytes(serverCert.cert);
    if (tls === "client-cert") {
      request.clientTlsCreds = create(TLSCredsSchema, {
        cert: bytes(clientCert.cert),
        key: bytes(clientCert.key),
      });
    }
    // The runner names the test case in a header, for the reference server.
    request.requestHeaders.push({
      $typeName: "connectrpc.conformance.v1.Header",
      name: "x-test-case-name",
      value: [testName],
    });
    return request;
  }

  beforeAll(async () => {
    serverCert = testCertificate();
    clientCert = clientCertificate();
    const implementation = createConformanceImplementation();
    const handler = createConformanceServiceHandler(
      {
        ...implementation,
        async unary(request, context) {
          const name = context.requestHeaders.get("x-test-case-name") ?? "";
          arrivals.get(name)?.();
          await gates.get(name);
          return implementation.unary!(request, context);
        },
      },
      { jsonOptions: { registry: conformanceRegistry } },
    );
    const listener = (
      req: http.IncomingMessage | http2.Http2ServerRequest,
      res: http.ServerResponse | http2.Http2ServerResponse,
    ) => {
      const name = one(req.headers["x-test-case-name"]) ?? "";
      const socket = req.socket as TLSSocket;
      const contentType = one(req.headers["content-type"]);
      const encodingHeader = contentType?.startsWith("application/grpc")
        ? "grpc-encoding"
        : contentType?.startsWith("application/connect+")
          ? "connect-content-encoding"
          : "content-encoding";
      observations.set(name, [
        ...(observations.get(name) ?? []),
        {
          httpMajor: req.httpVersionMajor,
          method: req.method ?? "",
          contentType,
          encoding: one(req.headers[encodingHeader]),
          tls: socket.encrypted === true,
          clientCertCN:
            socket.encrypted === true
              ? (socket.getPeerCertificate().subject?.CN as string | undefined)
              : undefined,
        },
      ]);
      handler.node(req, res);
    };
    const tlsOptions = {
      cert: serverCert.cert,
      key: serverCert.key,
      allowHTTP1: true,
    };
    const all = {
      http1: http.createServer(listener),
      h2c: http2.createServer(listener),
      tls: http2.createSecureServer(tlsOptions, listener),
      tlsClientCert: http2.createSecureServer(
        {
          ...tlsOptions,
          ca: clientCert.cert,
          requestCert: true,
          rejectUnauthorized: true,
        },
        listener,
      ),
    };
    for (const [key, server] of Object.entries(all)) {
      servers.push(server);
      for (const event of ["connection", "secureConnection"]) {
        server.on(event, (socket: Socket) => {
          sockets.add(socket);
          socket.once("close", () => sockets.delete(socket));
        });
      }
      await new Promise<void>((resolve) =>
        server.listen(0, "127.0.0.1", resolve),
      );
      ports[key as keyof typeof ports] = (server.address() as AddressInfo).port;
    }
  });

  afterAll(() => {
    for (const server of servers) server.close();
    for (const socket of sockets) socket.destroy();
  });

  describe("a batch of requests, stdin closed after the last", () => {
    const planned = clientConfigs.flatMap((config) =>
      [
        unaryCase(),
        // Each stream type once per HTTP version and side of TLS.
        ...(config.name === "HTTP1/connect/proto/identity" ||
        config.name === "HTTP2/grpc/proto/deflate" ||
        config.name === "HTTP2/connect/proto/identity/TLS"
          ? kindCases(config)
          : []),
      ].map((kase) => ({
        testName: `${config.name}/${kase.name}`,
        config,
        kase,
      })),
    );
    const responses = new Map<string, ClientCompatResponse[]>();
    let run: { code: number | null; stderr: string; count: number };

    beforeAll(async () => {
      const program = new ClientProgram();
      for (const { testName, config, kase } of planned) {
        program.send(compatRequest(testName, config, kase.request));
      }
      for (const { name, request } of refusedCases) {
        program.send(compatRequest(`refused/${name}`, undefined, request));
      }
      program.end();
      const all = await program.rest();
      for (const response of all) {
        responses.set(response.testName, [
          ...(responses.get(response.testName) ?? []),
          response,
        ]);
      }
      run = {
        code: (await program.exited).code,
        stderr: program.stderr,
        count: all.length,
      };
    });

    it("answers every request exactly once, then exits 0 when stdin ends", () => {
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      expect(run.count).toBe(planned.length + refusedCases.length);
      expect(responses.size).toBe(run.count);
    });

    it.each(refusedCases.map((c) => [c.name, c] as const))(
      "refuses %s with a ClientErrorResult",
      (name, { reason }) => {
        const [response] = responses.get(`refused/${name}`) ?? [];
        expect(response?.result.case).toBe("error");
        expect((response?.result.value as { message: string }).message).toMatch(
          reason,
        );
        expect(observations.get(`refused/${name}`)).toBeUndefined();
      },
    );

    it.each(planned.map((c) => [c.testName, c] as const))(
      "%s",
      (testName, { config, kase }) => {
        const [response] = responses.get(testName) ?? [];
        expect(response, "no response").toBeDefined();
        if (response!.result.case !== "response") {
          expect.fail(
            `error result: ${(response!.result.value as { message: string } | undefined)?.message}`,
          );
        }
        kase.check(response!.result.value);

        // The call went where and how the request said.
        const seen = observations.get(testName) ?? [];
        expect(seen, "requests sent").toHaveLength(1);
        const [o] = seen;
        expect(o!.httpMajor).toBe(config.httpVersion);
        expect(o!.tls).toBe(config.tls !== "none");
        expect(o!.clientCertCN).toBe(
          config.tls === "client-cert" ? "conformance-client" : undefined,
        );
        expect(o!.method).toBe("POST");
        const codec = config.json ? "json" : "proto";
        const streaming = kase.request.streamType !== StreamType.UNARY;
        expect(o!.contentType).toBe(
          config.protocol === "connect"
            ? streaming
              ? `application/connect+${codec}`
              : `application/${codec}`
            : `application/${config.protocol}+${codec}`,
        );
        expect(o!.encoding === "identity" ? undefined : o!.encoding).toBe(
          config.compression === "identity" ? undefined : config.compression,
        );
      },
    );
  });

  const unary = (): CompatInit => ({
    method: "Unary",
    streamType: StreamType.UNARY,
    requestMessages: [
      anyOf(UnaryRequestSchema, {
        responseDefinition: {
          response: { case: "responseData", value: bytes("done") },
        },
      }),
    ],
  });

  it("answers each request as its call ends, and waits for calls in flight when stdin ends", async () => {
    // "order/slow" is answered only when the test says so; "order/fast"
    // right away. The fast call can only be answered first if the program
    // does not wait for the slow one; and the slow one can only be
    // answered at all if the program waits for it after stdin ends.
    const slowArrived = signal();
    const release = signal();
    arrivals.set("order/slow", slowArrived.fire);
    gates.set("order/slow", release.promise);
    const program = new ClientProgram();
    try {
      program.send(compatRequest("order/slow", undefined, unary()));
      await slowArrived.promise;
      program.send(compatRequest("order/fast", undefined, unary()));
      const first = await program.next();
      expect(first?.testName).toBe("order/fast");
      expect(first?.result.case).toBe("response");
      // stdin closes with the slow call still unanswered.
      program.end();
      release.fire();
      const rest = await program.rest();
      expect(rest.map((r) => r.testName)).toEqual(["order/slow"]);
      const result = rest[0]!.result.value as ClientResponseResult;
      expect(result.payloads.map((p) => p.data)).toEqual([bytes("done")]);
      expect(await program.exited).toEqual({ code: 0, signal: null });
      expect(program.stderr).toBe("");
    } finally {
      release.fire();
      program.child.kill();
    }
  });

  it("exits at once on SIGTERM, with a call in flight", async () => {
    // The call is answered only after the program is gone: a program that
    // waited for its calls on SIGTERM would never exit, and the test would
    // time out.
    const arrived = signal();
    const release = signal();
    arrivals.set("sigterm/in-flight", arrived.fire);
    gates.set("sigterm/in-flight", release.promise);
    const program = new ClientProgram();
    try {
      program.send(compatRequest("sigterm/in-flight", undefined, unary()));
      await arrived.promise;
      program.child.kill("SIGTERM");
      const exit = await program.exited;
      expect(
        exit.code === 143 || exit.signal === "SIGTERM",
        JSON.stringify(exit),
      ).toBe(true);
      // It exited without answering: the call was still in flight.
      expect(await program.rest()).toEqual([]);
    } finally {
      release.fire();
      program.child.kill();
    }
  });
});
