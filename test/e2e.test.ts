// End-to-end tests: generated clients against generated servers, over every
// transport and server kind a Node user can pick (node:http with the fetch
// client, node:http2 h2c and TLS with the http2 client, HTTP/1.1 over TLS to
// node:https and to an allowHTTP1 http2 server, and the fetch handler called
// in process), and with every protocol the transport can carry: Connect and
// gRPC-Web on all of them, gRPC where the client speaks HTTP/2 with trailers.
// They assert what users depend on: messages arrive whole with both codecs
// and every compression, Connect GET, errors with details and metadata,
// headers and trailers, interceptors, deadlines, cancellation, receive limits
// and routing, the same way whatever the protocol.

import { randomBytes } from "node:crypto";
import { create, equals, type MessageInitShape } from "@bufbuild/protobuf";
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  it,
  vi,
} from "vitest";
import {
  ConnectError as ElizaConnectError,
  createElizaServiceClient,
  createElizaServiceHandler,
  ElizaServiceDefinition,
  nodeHandler as elizaNodeHandler,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  createFirstServiceClient,
  createFirstServiceHandler,
  fetchHandler,
  http2StreamHandler,
  nodeHandler,
} from "./gen/multi/v1/multi.FirstService.ts";
import {
  createSecondServiceClient,
  createSecondServiceHandler,
} from "./gen/multi/v1/multi.SecondService.ts";
import {
  Code,
  compressionBrotli,
  compressionGzip,
  compressionZstd,
  ConnectError,
  createFetchHttpClient,
  createGreetServiceClient,
  createGreetServiceHandler,
  createHttp2HttpClient,
  GreetServiceDefinition,
  grpcProtocol,
  isConnectError,
  type Compression,
  type GreetServiceImplementation,
  type HandlerContext,
  type HandlerOptions,
  type HttpClient,
  type HttpRequest,
  type Interceptor,
  type NodeClientOptions,
} from "./gen/unary/v1/unary.GreetService.ts";
import {
  AddressSchema,
  GreetRequestSchema,
  GreetResponseSchema,
  GreetService,
  Mood,
  type EchoRequest,
  type GreetRequest,
  type GreetResponse,
} from "./gen/unary/v1/unary_pb.ts";
import {
  createHttpsHttpClient,
  inProcessFetch,
} from "./support/http-clients.ts";
import {
  codecOption,
  elizaProtocols,
  greetProtocols,
  type ProtocolName,
} from "./support/protocols.ts";
import {
  startServer,
  startStreamServer,
  type StreamListener,
  type NodeListener,
  type ServerKind,
} from "./support/servers.ts";
import { testCertificate } from "./support/tls.ts";

// ---------------------------------------------------------------------------
// The services under test. Tests change the behaviour of a method by setting
// a hook, which is cleared after every test.

const greetRequest = {
  name: "Ada ✓ & <friends>",
  age: 1234567890123n,
  avatar: new Uint8Array([0, 1, 2, 127, 128, 254, 255]),
  nicknames: ["a", "b", ""],
  labels: { team: "core", "with space": "yes ü", "": "empty key" },
  address: { street: "1 Main St", city: "Zürich", zip: 8000 },
  mood: Mood.GRUMPY,
  contact: { case: "phone" as const, value: 18446744073709551615n },
  vip: false,
  score: -0.5,
  previousAddresses: [{ city: "Bern" }, { street: "x", zip: 1 }],
  addressesById: { 7: { city: "Basel" }, [-3]: { zip: 42 } },
  balance: -9007199254740993n,
  id: 18446744073709551614n,
} satisfies MessageInitShape<typeof GreetRequestSchema>;

function greetLogic(
  request: GreetRequest,
): MessageInitShape<typeof GreetResponseSchema> {
  return {
    greeting: `Hello, ${request.name}!`,
    request,
    greetedAtUnixMillis: 1_700_000_000_000n,
    moods: [Mood.HAPPY, Mood.UNSPECIFIED, Mood.GRUMPY],
  };
}

const expectedGreet = create(
  GreetResponseSchema,
  greetLogic(create(GreetRequestSchema, greetRequest)),
);

function echoLogic(request: EchoRequest) {
  return {
    payload: request.payload,
    data: request.data,
    numbers: request.numbers,
    blobs: request.blobs,
  };
}

let hooks: Partial<GreetServiceImplementation> = {};

const greetImpl: GreetServiceImplementation = {
  greet: (request, context) =>
    hooks.greet ? hooks.greet(request, context) : greetLogic(request),
  echo: (request, context) =>
    hooks.echo ? hooks.echo(request, context) : echoLogic(request),
  fail: (request, context) => {
    if (hooks.fail) return hooks.fail(request, context);
    throw new ConnectError(request.message, request.code as Code);
  },
};

const elizaImpl = {
  say: (request: { sentence: string }) => ({
    sentence: `You said: ${request.sentence}`,
  }),
};

afterEach(() => {
  hooks = {};
});

/** A promise the test settles: what a handler waits for instead of a length of time. */
function settable(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

/** Compares large byte arrays far faster than toEqual, which walks them element by element. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** The error a call fails with; fails the test when the call succeeds or throws a non-ConnectError. */
async function callError(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    expect(isConnectError(e), `not a ConnectError: ${String(e)}`).toBe(true);
    return e as ConnectError;
  }
  throw new Error("expected the call to fail");
}

// ---------------------------------------------------------------------------
// Transports: how a server is started for a handler, and which client options
// reach it.

interface Served {
  readonly node: NodeListener;
  readonly http2Stream: StreamListener;
  readonly fetch: (request: Request) => Promise<Response>;
}

interface Endpoint {
  readonly baseUrl: string;
  readonly options: NodeClientOptions;
}

interface Transport {
  readonly name: string;
  /** The platform fetch adds its own Accept-Encoding when the client sends none. */
  readonly platformAcceptEncoding: boolean;
  /** HTTP/2 from client to server, trailers included: what gRPC needs. */
  readonly carriesGrpc: boolean;
  start(served: Served): Promise<Endpoint>;
}

const closers: (() => Promise<void>)[] = [];

afterAll(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function serveOn(
  kind: ServerKind,
  listener: NodeListener,
): Promise<string> {
  const server = await startServer(kind, listener);
  closers.push(() => server.close());
  return server.url;
}

const transports: readonly Transport[] = [
  {
    name: "node:http server, fetch client (HTTP/1.1)",
    carriesGrpc: false,
    platformAcceptEncoding: true,
    start: async (served) => ({
      baseUrl: await serveOn("http", served.node),
      options: { transport: "fetch" },
    }),
  },
  {
    name: "node:http2 h2c server, http2 client",
    carriesGrpc: true,
    platformAcceptEncoding: false,
    start: async (served) => ({
      baseUrl: await serveOn("h2c", served.node),
      options: { transport: "http2" },
    }),
  },
  {
    name: "node:http2 h2c server with http2Stream, http2 client",
    carriesGrpc: true,
    platformAcceptEncoding: false,
    start: async (served) => {
      const server = await startStreamServer(served.http2Stream);
      closers.push(() => server.close());
      return { baseUrl: server.url, options: { transport: "http2" } };
    },
  },
  {
    name: "node:http2 TLS server (allowHTTP1), http2 client",
    carriesGrpc: true,
    platformAcceptEncoding: false,
    start: async (served) => ({
      baseUrl: await serveOn("h2", served.node),
      options: {
        transport: "http2",
        http2: { sessionOptions: { ca: testCertificate().cert } },
      },
    }),
  },
  {
    name: "node:http2 TLS server (allowHTTP1), HTTP/1.1 node:https client",
    carriesGrpc: false,
    platformAcceptEncoding: false,
    start: async (served) => ({
      baseUrl: await serveOn("h2", served.node),
      options: { httpClient: createHttpsHttpClient(testCertificate().cert) },
    }),
  },
  {
    name: "node:https server, HTTP/1.1 node:https client",
    carriesGrpc: false,
    platformAcceptEncoding: false,
    start: async (served) => ({
      baseUrl: await serveOn("https", served.node),
      options: { httpClient: createHttpsHttpClient(testCertificate().cert) },
    }),
  },
  {
    name: "fetch handler in process, fetch client",
    carriesGrpc: false,
    platformAcceptEncoding: false,
    start: async (served) => ({
      baseUrl: "http://in-process.invalid",
      options: {
        httpClient: createFetchHttpClient(inProcessFetch(served.fetch)),
      },
    }),
  },
];

interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly search: string;
}

/** Serves GreetService and ElizaService together, recording the HTTP method and URL of every request. */
function greetAndEliza(options: HandlerOptions = {}): {
  served: Served;
  seen: SeenRequest[];
} {
  const greet = createGreetServiceHandler(greetImpl, options);
  const eliza = createElizaServiceHandler(elizaImpl, options);
  const node = nodeHandler(greet, eliza);
  const http2Stream = http2StreamHandler(greet, eliza);
  const fetch = fetchHandler(greet, eliza);
  const seen: SeenRequest[] = [];
  const record = (method: string | undefined, target: string) => {
    const url = new URL(target, "http://x");
    seen.push({ method: method ?? "", path: url.pathname, search: url.search });
  };
  return {
    seen,
    served: {
      node: (req, res) => {
        record(req.method, req.url ?? "/");
        node(req, res);
      },
      http2Stream: (stream, headers, flags, rawHeaders) => {
        record(headers[":method"], headers[":path"] ?? "/");
        http2Stream(stream, headers, flags, rawHeaders);
      },
      fetch: (request) => {
        record(request.method, request.url);
        return fetch(request);
      },
    },
  };
}

const compressionNames = ["identity", "gzip", "br", "zstd"] as const;

// ---------------------------------------------------------------------------
// Protocols: what each puts on the wire where the tests look.

type Protocol = ProtocolName;

interface Wire {
  /** The request's Content-Type for the binary or the JSON codec. */
  contentType(binary: boolean): string;
  /** Names the compression of the request and of the response. */
  readonly encodingHeader: string;
  readonly acceptEncodingHeader: string;
  readonly timeoutHeader: string;
  /** The timeout header's value for a timeout in milliseconds. */
  timeout(ms: number): string;
  /**
   * gRPC and gRPC-Web send messages in envelopes and compress each on its
   * own (flag 1 in its envelope); a Connect unary call compresses the whole
   * body, with Content-Encoding.
   */
  readonly enveloped: boolean;
}

const grpcWire = (prefix: string): Wire => ({
  contentType: (binary) => `${prefix}+${binary ? "proto" : "json"}`,
  encodingHeader: "grpc-encoding",
  acceptEncodingHeader: "grpc-accept-encoding",
  timeoutHeader: "grpc-timeout",
  // The shortest exact form: "50m" (milliseconds), "5S" (seconds).
  timeout: (ms) => (ms % 1000 === 0 ? `${ms / 1000}S` : `${ms}m`),
  enveloped: true,
});

const wires: Readonly<Record<Protocol, Wire>> = {
  connect: {
    contentType: (binary) =>
      binary ? "application/proto" : "application/json",
    encodingHeader: "content-encoding",
    acceptEncodingHeader: "accept-encoding",
    timeoutHeader: "connect-timeout-ms",
    timeout: (ms) => String(ms),
    enveloped: false,
  },
  grpc: grpcWire("application/grpc"),
  "grpc-web": grpcWire("application/grpc-web"),
};

/** Every protocol on every transport that can carry it. */
const combinations = (["connect", "grpc-web", "grpc"] as const).flatMap(
  (protocol) =>
    transports
      .filter((transport) => protocol !== "grpc" || transport.carriesGrpc)
      .map((transport) => ({
        name: `${protocol} · ${transport.name}`,
        protocol,
        transport,
      })),
);

// ---------------------------------------------------------------------------
// A tap on the client's HttpClient, to see the bytes a call sends and gets.

interface Exchange {
  readonly request: HttpRequest;
  readonly status: number;
  readonly header: Headers;
  /** The response body as far as the client read it. */
  readonly body: Uint8Array[];
  /** HTTP trailers, once the body has been read. */
  readonly trailer: Headers;
}

/** The HttpClient a generated Node client builds from these options (as nodeClientHttpClient does). */
function httpClientOf(options: NodeClientOptions): HttpClient {
  if (options.httpClient !== undefined) return options.httpClient;
  return options.transport === "http2"
    ? createHttp2HttpClient(options.http2)
    : createFetchHttpClient();
}

/** The HttpClient these options give, recording every exchange it makes. */
function tapped(options: NodeClientOptions): {
  httpClient: HttpClient;
  exchanges: Exchange[];
} {
  const inner = httpClientOf(options);
  const exchanges: Exchange[] = [];
  const httpClient: HttpClient = async (request) => {
    const response = await inner(request);
    const exchange: Exchange = {
      request,
      status: response.status,
      header: response.header,
      body: [],
      trailer: response.trailer,
    };
    exchanges.push(exchange);
    async function* body() {
      for await (const chunk of response.body) {
        exchange.body.push(chunk.slice());
        yield chunk;
      }
    }
    return { ...response, body: body() };
  };
  return { httpClient, exchanges };
}

/** The flags of each envelope in a body: 5 bytes each (flags, then the length, big-endian) before the data. */
function envelopeFlags(chunks: readonly Uint8Array[]): number[] {
  const bytes = Buffer.concat(chunks);
  const flags: number[] = [];
  for (let at = 0; at + 5 <= bytes.byteLength;) {
    flags.push(bytes[at]!);
    at += 5 + bytes.readUInt32BE(at + 1);
  }
  return flags;
}

/** The envelope flags of a unary request, which goes out whole. */
function requestEnvelopeFlags(exchange: Exchange | undefined): number[] {
  const body = exchange?.request.body;
  expect(body).toBeInstanceOf(Uint8Array);
  return envelopeFlags([body as Uint8Array]);
}

const envelopeCompressed = 0b1;
const envelopeTrailers = 0b1000_0000;

// ---------------------------------------------------------------------------

describe.each(combinations)("$name", ({ protocol, transport }) => {
  const wire = wires[protocol];
  let endpoint: Endpoint & { readonly elizaOptions: NodeClientOptions };
  let seen: SeenRequest[];
  let limited1k: Endpoint;
  let limited10k: Endpoint;
  let intercepted: Endpoint;
  const serverLog: string[] = [];
  const serverSeenMessages: unknown[] = [];

  const serverInterceptors: Interceptor[] = [
    (next) => async (request) => {
      serverLog.push(`outer> ${request.header.get("content-type")}`);
      serverSeenMessages.push(request.message);
      const response = await next(request);
      serverLog.push("<outer");
      return response;
    },
    (next) => async (request) => {
      serverLog.push("inner>");
      const response = await next(request);
      serverLog.push("<inner");
      if (!response.stream && request.header.get("x-replace") === "yes") {
        return {
          ...response,
          message: create(GreetResponseSchema, {
            greeting: "replaced by the server",
          }),
        };
      }
      return response;
    },
  ];

  /**
   * Serves on this transport; clients of the endpoint speak this protocol:
   * `options` are those of GreetService's clients, `elizaOptions` those of
   * ElizaService's (each file's protocol value has the callers its client
   * needs).
   */
  async function start(
    served: Served,
  ): Promise<Endpoint & { readonly elizaOptions: NodeClientOptions }> {
    const started = await transport.start(served);
    return {
      baseUrl: started.baseUrl,
      options: { ...started.options, protocol: greetProtocols[protocol] },
      elizaOptions: { ...started.options, protocol: elizaProtocols[protocol] },
    };
  }

  beforeAll(async () => {
    const main = greetAndEliza();
    seen = main.seen;
    endpoint = await start(main.served);
    limited1k = await start(greetAndEliza({ readMaxBytes: 1024 }).served);
    limited10k = await start(greetAndEliza({ readMaxBytes: 10 * 1024 }).served);
    intercepted = await start(
      greetAndEliza({ interceptors: serverInterceptors }).served,
    );
  });

  function greetClient(options: NodeClientOptions = {}) {
    return createGreetServiceClient(endpoint.baseUrl, {
      ...endpoint.options,
      ...options,
    });
  }

  describe("messages", () => {
    const cases = [true, false].flatMap((binary) =>
      compressionNames.map((c) => [binary, c] as const),
    );

    it.each(cases)(
      "binary=%s, send compression %s: the full response arrives",
      async (binary, compression) => {
        let context: HandlerContext | undefined;
        hooks.greet = (request, ctx) => {
          context = ctx;
          return greetLogic(request);
        };
        const tap = tapped(endpoint.options);
        const client = greetClient({
          httpClient: tap.httpClient,
          ...codecOption(binary),
          sendCompression: compression,
          compressMinBytes: 0,
        });
        const response = await client.greet(greetRequest);
        expect(response).toEqual(expectedGreet);
        expect(equals(GreetResponseSchema, response, expectedGreet)).toBe(true);
        expect(context?.protocol).toBe(protocol);
        const requestHeaders = context?.requestHeaders;
        expect(requestHeaders?.get("content-type")).toBe(
          wire.contentType(binary),
        );
        expect(requestHeaders?.get(wire.encodingHeader) ?? "identity").toBe(
          compression,
        );
        if (wire.enveloped) {
          // The message is compressed on its own, not the body.
          expect(requestHeaders?.get("content-encoding")).toBe(null);
          expect(requestEnvelopeFlags(tap.exchanges[0])).toEqual([
            compression === "identity" ? 0 : envelopeCompressed,
          ]);
        }
      },
    );

    it("the per-call sendCompression overrides the client's", async () => {
      let encoding: string | null = null;
      hooks.greet = (request, context) => {
        encoding = context.requestHeaders.get(wire.encodingHeader);
        return greetLogic(request);
      };
      const client = greetClient({
        sendCompression: "gzip",
        compressMinBytes: 0,
      });
      expect(
        await client.greet(greetRequest, { sendCompression: "br" }),
      ).toEqual(expectedGreet);
      expect(encoding).toBe("br");
    });

    it("requests below compressMinBytes are sent uncompressed", async () => {
      let encoding: string | null = "unset";
      hooks.greet = (request, context) => {
        encoding = context.requestHeaders.get(wire.encodingHeader);
        return greetLogic(request);
      };
      const tap = tapped(endpoint.options);
      const client = greetClient({
        httpClient: tap.httpClient,
        sendCompression: "gzip",
      });
      expect(await client.greet({ name: "small" })).toEqual(
        create(
          GreetResponseSchema,
          greetLogic(create(GreetRequestSchema, { name: "small" })),
        ),
      );
      if (wire.enveloped) {
        // grpc-encoding names the call's compression; each envelope's flag
        // says whether its message is compressed.
        expect(encoding).toBe("gzip");
        expect(requestEnvelopeFlags(tap.exchanges[0])).toEqual([0]);
      } else {
        expect(encoding).toBe(null);
      }
    });

    it("a plain object returned by the implementation and an empty request work", async () => {
      const response = await greetClient().echo({});
      expect(response.data).toEqual(new Uint8Array(0));
      expect(response.payload).toBeUndefined();
    });

    it("large responses are compressed with an encoding the client accepts", async () => {
      const data = new TextEncoder().encode("abcdefgh".repeat(8 * 1024));
      const cases: [readonly Compression[] | undefined, string | null][] = [
        [undefined, "gzip"],
        [[compressionBrotli], "br"],
        [[compressionZstd!], "zstd"],
        [[compressionBrotli, compressionGzip], "br"],
      ];
      // The platform fetch asks for Content-Encoding by itself, which a
      // Connect unary response (compressed whole) answers; gRPC and gRPC-Web
      // only look at grpc-accept-encoding, which is the client's alone.
      if (!transport.platformAcceptEncoding || wire.enveloped) {
        cases.push([[], null]);
      }
      const offered: (string | null)[] = [];
      hooks.echo = (request, context) => {
        offered.push(context.requestHeaders.get(wire.acceptEncodingHeader));
        return echoLogic(request);
      };
      for (const [compressions, expected] of cases) {
        const what = `compressions ${String(compressions?.map((c) => c.name))}`;
        const tap = tapped(endpoint.options);
        const client = greetClient({
          httpClient: tap.httpClient,
          ...(compressions === undefined ? {} : { compressions }),
        });
        const result = await client.echo.raw({ data });
        expect(sameBytes(result.message.data, data), what).toBe(true);
        expect(result.header.get(wire.encodingHeader), what).toBe(expected);
        if (compressions !== undefined && compressions.length > 0) {
          // The client offers its compressions, in its order of preference.
          expect(
            offered
              .at(-1)
              ?.split(",")
              .map((name) => name.trim()),
            what,
          ).toEqual(compressions.map((c) => c.name));
        }
        if (wire.enveloped) {
          expect(result.header.get("content-encoding"), what).toBe(null);
          expect(envelopeFlags(tap.exchanges[0]!.body)[0], what).toBe(
            expected === null ? 0 : envelopeCompressed,
          );
        }
      }
    });

    it("small responses are not compressed", async () => {
      const tap = tapped(endpoint.options);
      const result = await greetClient({ httpClient: tap.httpClient }).echo.raw(
        { data: new Uint8Array(100) },
      );
      expect(result.message.data).toEqual(new Uint8Array(100));
      if (wire.enveloped) {
        // The call's compression is negotiated, but this message goes out
        // uncompressed.
        expect(result.header.get("grpc-encoding")).toBe("gzip");
        expect(envelopeFlags(tap.exchanges[0]!.body)[0]).toBe(0);
      } else {
        expect(result.header.get("content-encoding")).toBe(null);
      }
    });

    if (wire.enveloped) {
      // gRPC has no Accept-Encoding negotiation per se: as grpc-go, the
      // server answers in the request's compression when it has one.
      it("a compressed request gets its response in the same compression", async () => {
        const data = new Uint8Array(8 * 1024);
        for (const sendCompression of ["br", "zstd", "gzip"]) {
          const tap = tapped(endpoint.options);
          const result = await greetClient({
            httpClient: tap.httpClient,
            sendCompression,
          }).echo.raw({ data });
          expect(sameBytes(result.message.data, data)).toBe(true);
          expect(result.header.get("grpc-encoding")).toBe(sendCompression);
          expect(envelopeFlags(tap.exchanges[0]!.body)[0]).toBe(
            envelopeCompressed,
          );
        }
      });
    }
  });

  describe("Connect GET", () => {
    const cases = [true, false].flatMap((binary) =>
      ["identity", "gzip"].map((c) => [binary, c] as const),
    );

    // GET is Connect's alone: gRPC and gRPC-Web ignore useHttpGet.
    const getTitle =
      protocol === "connect"
        ? "useHttpGet calls a NO_SIDE_EFFECTS method with GET"
        : "useHttpGet is ignored: a NO_SIDE_EFFECTS method is still called with POST";
    it.each(cases)(
      `${getTitle} (binary=%s, %s)`,
      async (binary, compression) => {
        seen.length = 0;
        const eliza = createElizaServiceClient(endpoint.baseUrl, {
          ...endpoint.elizaOptions,
          useHttpGet: true,
          ...codecOption(binary),
          sendCompression: compression,
          compressMinBytes: 0,
        });
        const sentence = "Héllo & goodbye? 100% =/+ ✓";
        expect(await eliza.say({ sentence })).toEqual(
          expect.objectContaining({ sentence: `You said: ${sentence}` }),
        );
        expect(seen).toHaveLength(1);
        expect(seen[0]!.path).toBe(ElizaServiceDefinition.methods.say.path);
        if (protocol !== "connect") {
          expect(seen[0]!.method).toBe("POST");
          expect(seen[0]!.search).toBe("");
          return;
        }
        expect(seen[0]!.method).toBe("GET");
        const query = new URLSearchParams(seen[0]!.search);
        expect(query.get("encoding")).toBe(binary ? "proto" : "json");
        expect(query.get("compression")).toBe(
          compression === "identity" ? null : compression,
        );
      },
    );

    it("without useHttpGet, and for methods with side effects, calls use POST", async () => {
      seen.length = 0;
      await createElizaServiceClient(
        endpoint.baseUrl,
        endpoint.elizaOptions,
      ).say({
        sentence: "hi",
      });
      await greetClient({ useHttpGet: true }).greet({ name: "x" });
      expect(seen.map((s) => s.method)).toEqual(["POST", "POST"]);
    });
  });

  describe("errors", () => {
    it("code and message reach the client", async () => {
      const error = await callError(
        greetClient().fail({
          code: Code.NotFound,
          message: "no such greeting",
        }),
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect(error.code).toBe(Code.NotFound);
      expect(error.rawMessage).toBe("no such greeting");
      expect(error.message).toBe("[not_found] no such greeting");
    });

    it("a message with non-ASCII text, percent signs and line breaks arrives intact", async () => {
      const message = 'Grüße, 100% "kaputt" ✓\nzweite Zeile 🙂 %E2%9C%93';
      for (const binary of [true, false]) {
        const error = await callError(
          greetClient(codecOption(binary)).fail({
            code: Code.Aborted,
            message,
          }),
        );
        expect(error.code).toBe(Code.Aborted);
        expect(error.rawMessage).toBe(message);
      }
    });

    it("every code survives the trip, with the JSON and the binary codec", async () => {
      for (const binary of [true, false]) {
        const client = greetClient(codecOption(binary));
        for (const code of Object.values(Code)) {
          const error = await callError(
            client.fail({ code, message: `code ${code}` }),
          );
          expect(error.code).toBe(code);
          expect(error.rawMessage).toBe(`code ${code}`);
        }
      }
    });

    it("details, error metadata, response headers and trailers reach the client", async () => {
      hooks.fail = (_request, context) => {
        context.responseHeaders.set("x-header", "from headers");
        context.responseTrailers.set("x-trailer", "from trailers");
        throw new ConnectError("not yet", Code.FailedPrecondition, {
          details: [
            {
              desc: GreetResponseSchema,
              value: { greeting: "a detail", moods: [Mood.HAPPY] },
            },
            { desc: AddressSchema, value: { city: "Detailville" } },
          ],
          metadata: { "x-error-meta": "from the error" },
        });
      };
      const onHeader = vi.fn();
      const error = await callError(greetClient().fail({}, { onHeader }));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.rawMessage).toBe("not yet");
      expect(error.findDetails(GreetResponseSchema)).toEqual([
        create(GreetResponseSchema, {
          greeting: "a detail",
          moods: [Mood.HAPPY],
        }),
      ]);
      expect(error.findDetails(AddressSchema)).toEqual([
        create(AddressSchema, { city: "Detailville" }),
      ]);
      expect(error.findDetails(GreetRequestSchema)).toEqual([]);
      expect(error.metadata.get("x-header")).toBe("from headers");
      expect(error.metadata.get("x-trailer")).toBe("from trailers");
      expect(error.metadata.get("x-error-meta")).toBe("from the error");
    });

    it("a plain Error thrown by the implementation becomes Unknown", async () => {
      hooks.fail = () => {
        throw new Error("something broke");
      };
      const error = await callError(greetClient().fail({}));
      expect(error.code).toBe(Code.Unknown);
    });

    it("a rejected promise of the implementation becomes an error response", async () => {
      hooks.fail = () =>
        Promise.reject(new ConnectError("go away", Code.PermissionDenied));
      const error = await callError(greetClient().fail({}));
      expect(error.code).toBe(Code.PermissionDenied);
    });

    it("instanceof ConnectError holds across generated files, both ways", async () => {
      hooks.fail = () => {
        throw new ElizaConnectError(
          "from the eliza file",
          Code.Unauthenticated,
        );
      };
      const error = await callError(greetClient().fail({}));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe("from the eliza file");
      expect(error instanceof ConnectError).toBe(true);
      expect(error instanceof ElizaConnectError).toBe(true);
      expect(new ElizaConnectError("x") instanceof ConnectError).toBe(true);
      expect(new Error("x") instanceof ElizaConnectError).toBe(false);
    });

    it("a service that is not served fails with Unimplemented", async () => {
      // No handler claims the path, so the answer is a plain 404 (which
      // gRPC clients map to Unimplemented too).
      const onlyGreet = createGreetServiceHandler(greetImpl);
      const other = await start({
        node: onlyGreet.node,
        http2Stream: onlyGreet.http2Stream,
        fetch: onlyGreet.fetch,
      });
      const eliza = createElizaServiceClient(other.baseUrl, other.elizaOptions);
      const error = await callError(eliza.say({ sentence: "anyone?" }));
      expect(error.code).toBe(Code.Unimplemented);
    });

    it("an unknown method under the service path fails with Unimplemented", async () => {
      const path = `${GreetServiceDefinition.path}NoSuchMethod`;
      const tap = tapped(endpoint.options);
      const client = greetClient({
        httpClient: tap.httpClient,
        interceptors: [
          (next) => (request) =>
            next({ ...request, url: endpoint.baseUrl + path }),
        ],
      });
      const error = await callError(client.greet(greetRequest));
      expect(error.code).toBe(Code.Unimplemented);
      expect(error.rawMessage).toBe(`no such method: ${path}`);
      // Connect answers 404; gRPC and gRPC-Web answer with their own
      // status, in an HTTP 200.
      expect(tap.exchanges[0]?.status).toBe(wire.enveloped ? 200 : 404);
    });
  });

  describe("headers and trailers", () => {
    it("client and per-call headers reach the implementation; the call's win", async () => {
      let requestHeaders: Headers | undefined;
      hooks.greet = (request, context) => {
        requestHeaders = context.requestHeaders;
        return greetLogic(request);
      };
      const client = greetClient({
        headers: { "x-client": "client value", "x-both": "from client" },
      });
      await client.greet(greetRequest, {
        headers: [
          ["x-call", "call value"],
          ["x-both", "from call"],
        ],
      });
      expect(requestHeaders?.get("x-client")).toBe("client value");
      expect(requestHeaders?.get("x-call")).toBe("call value");
      expect(requestHeaders?.get("x-both")).toBe("from call");
    });

    it("response headers and trailers arrive in raw() and through onHeader / onTrailer", async () => {
      hooks.greet = (request, context) => {
        context.responseHeaders.set("x-header", "header value");
        context.responseHeaders.append("x-multi", "one");
        context.responseHeaders.append("x-multi", "two");
        context.responseTrailers.set("x-trailer", "trailer value");
        context.responseTrailers.append("x-multi-trailer", "one");
        context.responseTrailers.append("x-multi-trailer", "two");
        return greetLogic(request);
      };
      const tap = tapped(endpoint.options);
      const client = greetClient({ httpClient: tap.httpClient });
      const raw = await client.greet.raw(greetRequest);
      expect(raw.message).toEqual(expectedGreet);
      expect(raw.header.get("x-header")).toBe("header value");
      expect(raw.header.get("x-multi")).toBe("one, two");
      expect(raw.header.get("x-trailer")).toBe(null);
      expect(raw.header.get("trailer-x-trailer")).toBe(null);
      expect(raw.trailer.get("x-trailer")).toBe("trailer value");
      expect(raw.trailer.get("x-multi-trailer")).toBe("one, two");
      expect(raw.trailer.get("x-header")).toBe(null);

      // On the wire, a Connect unary response carries its trailers as
      // Trailer- headers, gRPC as HTTP trailers, and gRPC-Web as the last
      // envelope of the body (which any HTTP version and fetch can read).
      const exchange = tap.exchanges[0]!;
      if (protocol === "connect") {
        expect(exchange.header.get("trailer-x-trailer")).toBe("trailer value");
      } else {
        const grpc = protocol === "grpc";
        expect(exchange.trailer.get("x-trailer")).toBe(
          grpc ? "trailer value" : null,
        );
        expect(envelopeFlags(exchange.body)).toEqual(
          grpc ? [0] : [0, envelopeTrailers],
        );
      }

      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const message = await client.greet(greetRequest, {
        onHeader: (h) => (header = h),
        onTrailer: (t) => (trailer = t),
      });
      expect(message).toEqual(expectedGreet);
      expect(header?.get("x-header")).toBe("header value");
      expect(trailer?.get("x-trailer")).toBe("trailer value");
    });
  });

  describe("interceptors", () => {
    it("client interceptors run first-outermost, add headers and see the response", async () => {
      let requestHeader: string | null = null;
      hooks.greet = (request, context) => {
        requestHeader = context.requestHeaders.get("x-from-interceptor");
        context.responseHeaders.set("x-server", "server header");
        return greetLogic(request);
      };
      const log: string[] = [];
      const client = greetClient({
        interceptors: [
          (next) => async (request) => {
            log.push("outer>");
            request.header.set("x-from-interceptor", "added");
            const response = await next(request);
            log.push(
              `<outer ${(response.message as GreetResponse).greeting} ${response.header.get("x-server")}`,
            );
            return response;
          },
          (next) => async (request) => {
            log.push(
              `inner> ${request.header.get("x-from-interceptor")} ${request.method.name}`,
            );
            const response = await next(request);
            log.push("<inner");
            return response;
          },
        ],
      });
      expect(await client.greet(greetRequest)).toEqual(expectedGreet);
      expect(requestHeader).toBe("added");
      expect(log).toEqual([
        "outer>",
        "inner> added Greet",
        "<inner",
        `<outer ${expectedGreet.greeting} server header`,
      ]);
    });

    it("a client interceptor can replace the response message", async () => {
      const client = greetClient({
        interceptors: [
          (next) => async (request) => {
            const response = await next(request);
            if (response.stream) return response;
            return {
              ...response,
              message: create(GreetResponseSchema, {
                greeting: "replaced by the client",
              }),
            };
          },
        ],
      });
      expect((await client.greet(greetRequest)).greeting).toBe(
        "replaced by the client",
      );
    });

    it("server interceptors run first-outermost, see the request message and can replace the response", async () => {
      hooks.greet = (request, context) => {
        serverLog.push(`implementation ${context.protocol}`);
        return greetLogic(request);
      };
      serverLog.length = 0;
      serverSeenMessages.length = 0;
      const client = createGreetServiceClient(
        intercepted.baseUrl,
        intercepted.options,
      );
      expect(await client.greet(greetRequest)).toEqual(expectedGreet);
      expect(serverLog).toEqual([
        `outer> ${wire.contentType(true)}`,
        "inner>",
        `implementation ${protocol}`,
        "<inner",
        "<outer",
      ]);
      expect(serverSeenMessages).toEqual([
        create(GreetRequestSchema, greetRequest),
      ]);

      const replaced = await client.greet(greetRequest, {
        headers: { "x-replace": "yes" },
      });
      expect(replaced).toEqual(
        create(GreetResponseSchema, { greeting: "replaced by the server" }),
      );
    });
  });

  describe("deadlines", () => {
    // The client and the server time a deadline with setTimeout and
    // Date.now: with both faked, the deadline passes when the test advances
    // the clock, after the handler has started, however slow the machine.
    it("a call past its timeoutMs fails with DeadlineExceeded and aborts the handler's signal", async () => {
      const handlerStarted = settable();
      const release = settable();
      let handlerSignal: AbortSignal | undefined;
      let handlerTimeout: number | undefined;
      hooks.greet = async (request, context) => {
        handlerSignal = context.signal;
        handlerTimeout = context.timeoutMs();
        handlerStarted.fire();
        // Ignores its signal: only the deadline can end the call.
        await release.promise;
        return greetLogic(request);
      };
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
      try {
        const call = callError(
          greetClient({ timeoutMs: 50 }).greet(greetRequest),
        );
        await handlerStarted.promise;
        // Not a millisecond has passed on the faked clock.
        expect(handlerTimeout).toBe(50);
        expect(handlerSignal?.aborted).toBe(false);
        vi.advanceTimersByTime(49);
        expect(handlerSignal?.aborted).toBe(false);
        vi.advanceTimersByTime(1);
        expect(handlerSignal?.aborted).toBe(true);
        expect(ConnectError.from(handlerSignal?.reason).code).toBe(
          Code.DeadlineExceeded,
        );
        const error = await call;
        expect(error.code).toBe(Code.DeadlineExceeded);
      } finally {
        vi.useRealTimers();
        release.fire();
      }
    });

    it("ctx.timeoutMs() is the time left when a timeout is set, undefined when not", async () => {
      const timeouts: (number | undefined)[] = [];
      const headers: (string | null)[] = [];
      hooks.greet = (request, context) => {
        timeouts.push(context.timeoutMs());
        headers.push(context.requestHeaders.get(wire.timeoutHeader));
        return greetLogic(request);
      };
      // A frozen clock: the time left is the whole timeout, however long
      // the call took to arrive.
      vi.useFakeTimers({ toFake: ["Date"] });
      try {
        await greetClient().greet({});
        await greetClient({ timeoutMs: 5000 }).greet({});
        await greetClient({ timeoutMs: 60_000 }).greet({}, { timeoutMs: 3000 });
      } finally {
        vi.useRealTimers();
      }
      expect(headers).toEqual([null, wire.timeout(5000), wire.timeout(3000)]);
      expect(timeouts).toEqual([undefined, 5000, 3000]);
    });

    // Node fires a setTimeout delay above 2^31-1 ms (24.8 days) after 1 ms;
    // the deadline must not, on the client nor, from the header, the server.
    it("a timeout longer than 24.8 days does not expire at once", async () => {
      const thirtyDays = 30 * 24 * 60 * 60 * 1000;
      let left: number | undefined;
      hooks.greet = async (request, context) => {
        // A timer armed after the deadlines' timers and due later than a
        // 1 ms one: Node runs timers in the order they are due, so an
        // over-long timer that fired after 1 ms would have fired by now.
        await new Promise((resolve) => setTimeout(resolve, 20));
        left = context.timeoutMs();
        return greetLogic(request);
      };
      // Only Date is faked (frozen): the time left is exact.
      vi.useFakeTimers({ toFake: ["Date"] });
      try {
        expect(
          await greetClient({ timeoutMs: thirtyDays }).greet(greetRequest),
        ).toEqual(expectedGreet);
      } finally {
        vi.useRealTimers();
      }
      expect(left).toBe(thirtyDays);
    });

    // Connect-Timeout-Ms takes at most 10 digits and grpc-timeout 8 and a
    // unit: a longer timeout is sent as the longest, which the server
    // accepts; one that is no timeout never leaves the client.
    it("timeoutMs Infinity or 1e10 is clamped to what the header carries; NaN or -1 is refused before the call", async () => {
      expect(
        await greetClient({ timeoutMs: Infinity }).greet(greetRequest),
      ).toEqual(expectedGreet);
      expect(
        await greetClient().greet(greetRequest, { timeoutMs: 1e10 }),
      ).toEqual(expectedGreet);
      seen.length = 0;
      for (const timeoutMs of [NaN, -1]) {
        const error = await callError(
          greetClient().greet(greetRequest, { timeoutMs }),
        );
        expect(error.code).toBe(Code.InvalidArgument);
        expect(error.rawMessage).toContain(`timeoutMs ${timeoutMs}`);
      }
      expect(seen).toEqual([]);
    });

    it("the server answers DeadlineExceeded at the deadline, even when the handler ignores its signal", async () => {
      const release = settable();
      let returned = false;
      hooks.greet = async (request) => {
        // Returns only once the test has its answer: an answer before that
        // can only come from the server's deadline.
        await release.promise;
        returned = true;
        return greetLogic(request);
      };
      try {
        // The timeout header alone: the client sets no deadline of its own,
        // so the answer can only come from the server.
        const error = await callError(
          greetClient().greet(greetRequest, {
            headers: { [wire.timeoutHeader]: wire.timeout(30) },
          }),
        );
        expect(error.code).toBe(Code.DeadlineExceeded);
        expect(returned).toBe(false);
      } finally {
        release.fire();
      }
    });
  });

  describe("cancellation", () => {
    it("aborting mid-call fails with Canceled and aborts the handler's signal", async () => {
      let handlerContext: HandlerContext | undefined;
      const handlerStarted = settable();
      const release = settable();
      hooks.greet = async (request, context) => {
        handlerContext = context;
        handlerStarted.fire();
        // Answers only once the test lets it: the client must fail at the
        // abort, without waiting for the server.
        await release.promise;
        return greetLogic(request);
      };
      const controller = new AbortController();
      const call = greetClient().greet(greetRequest, {
        signal: controller.signal,
      });
      try {
        await handlerStarted.promise;
        controller.abort();
        const error = await callError(call);
        expect(error.code).toBe(Code.Canceled);
        await vi.waitFor(
          () => expect(handlerContext?.signal.aborted).toBe(true),
          { timeout: 20_000, interval: 5 },
        );
        expect(ConnectError.from(handlerContext?.signal.reason).code).toBe(
          Code.Canceled,
        );
      } finally {
        release.fire();
      }
    });

    it("a call with an already aborted signal fails with Canceled without reaching the server", async () => {
      seen.length = 0;
      const error = await callError(
        greetClient().greet(greetRequest, { signal: AbortSignal.abort() }),
      );
      expect(error.code).toBe(Code.Canceled);
      expect(seen).toEqual([]);
    });
  });

  describe("receive limits", () => {
    it("the server rejects a request larger than its readMaxBytes with ResourceExhausted", async () => {
      const client = createGreetServiceClient(
        limited1k.baseUrl,
        limited1k.options,
      );
      const ok = await client.echo({ data: new Uint8Array(500) });
      expect(ok.data).toEqual(new Uint8Array(500));
      // 1 MiB is past HTTP/2's flow-control windows: the server answers
      // before it has read the request, and the client must still get it.
      for (const size of [10 * 1024, 1024 * 1024]) {
        const error = await callError(client.echo({ data: randomBytes(size) }));
        expect(error.code, `${size} bytes`).toBe(Code.ResourceExhausted);
      }
    });

    it("the server's limit applies after decompression", async () => {
      const data = new Uint8Array(100 * 1024);
      // Compressed, the request is far below the server's 10 KiB limit.
      expect((await compressionGzip.compress(data)).byteLength).toBeLessThan(
        1024,
      );
      for (const sendCompression of ["gzip", "br", "zstd"]) {
        const client = createGreetServiceClient(limited10k.baseUrl, {
          ...limited10k.options,
          sendCompression,
        });
        const error = await callError(client.echo({ data }));
        expect(error.code, sendCompression).toBe(Code.ResourceExhausted);
      }
    });

    it("the client rejects a response larger than its readMaxBytes with ResourceExhausted", async () => {
      const client = greetClient({ readMaxBytes: 100 });
      expect((await client.echo({ data: new Uint8Array(50) })).data).toEqual(
        new Uint8Array(50),
      );
      hooks.echo = () => ({ data: randomBytes(2048) });
      const error = await callError(client.echo({}));
      expect(error.code).toBe(Code.ResourceExhausted);
    });

    it("the client's limit applies after decompression", async () => {
      hooks.echo = () => ({ data: new Uint8Array(100 * 1024) });
      const client = greetClient({ readMaxBytes: 10 * 1024 });
      const error = await callError(client.echo.raw({}));
      expect(error.code).toBe(Code.ResourceExhausted);
    });
  });
});

// ---------------------------------------------------------------------------

// Raw Connect requests: the per-protocol suite above checks the same for
// every protocol through the timeout header.
describe("server-side deadline", () => {
  const path = GreetServiceDefinition.methods.greet.path;
  let release = settable();
  const slow = () => {
    release = settable();
    hooks.greet = async (request) => {
      // Ignores its signal and returns only once the test has its answer:
      // an answer before that can only come from the server's deadline.
      await release.promise;
      return greetLogic(request);
    };
  };
  afterEach(() => release.fire());
  const init = {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "connect-protocol-version": "1",
      "connect-timeout-ms": "30",
    },
    body: "{}",
  };

  async function expectDeadline(response: Response) {
    expect(response.status).toBe(504);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toMatchObject({ code: "deadline_exceeded" });
  }

  it("a raw request with connect-timeout-ms to a slow handler gets deadline_exceeded (node:http)", async () => {
    slow();
    const url = await serveOn(
      "http",
      createGreetServiceHandler(greetImpl).node,
    );
    await expectDeadline(await fetch(url + path, init));
  });

  it("a raw request with connect-timeout-ms to a slow handler gets deadline_exceeded (fetch handler)", async () => {
    slow();
    const handler = createGreetServiceHandler(greetImpl);
    await expectDeadline(
      await handler.fetch(
        new Request("http://in-process.invalid" + path, init),
      ),
    );
  });
});

describe("routing", () => {
  const first = createFirstServiceHandler({
    ping: (request) => ({ text: `first: ${request.text}`, count: 1n }),
    sum: (request) => ({
      sum: BigInt(request.values.reduce((a, b) => a + b, 0)),
    }),
  });
  const second = createSecondServiceHandler({
    ping: (request) => ({ text: `second: ${request.text}`, count: 2n }),
  });
  const greet = createGreetServiceHandler(greetImpl);
  const eliza = createElizaServiceHandler(elizaImpl);

  it("handler.path is the service's path prefix", () => {
    expect(greet.path).toBe("/fixtures.unary.v1.GreetService/");
    expect(eliza.path).toBe("/connectrpc.eliza.v1.ElizaService/");
    expect(first.path).toBe("/fixtures.multi.v1.FirstService/");
    expect(second.path).toBe("/fixtures.multi.v1.SecondService/");
  });

  it("handler.service is the protoc-gen-es descriptor of the service", () => {
    expect(greet.service).toBe(GreetService);
    expect(eliza.service.typeName).toBe("connectrpc.eliza.v1.ElizaService");
    expect(first.service.file).toBe(second.service.file);
  });

  it("nodeHandler(a, b) serves services of different generated files on one server", async () => {
    const url = await serveOn("h2c", nodeHandler(first, second));
    const firstClient = createFirstServiceClient(url, { transport: "http2" });
    const secondClient = createSecondServiceClient(url, { transport: "http2" });
    expect(await firstClient.ping({ text: "a" })).toMatchObject({
      text: "first: a",
      count: 1n,
    });
    expect(await firstClient.sum({ values: [1, 2, 3] })).toMatchObject({
      sum: 6n,
    });
    expect(await secondClient.ping({ text: "b" })).toMatchObject({
      text: "second: b",
      count: 2n,
    });

    // nodeHandler of a third file, combining handlers of two more files.
    const url2 = await serveOn("http", elizaNodeHandler(greet, eliza));
    expect(await createGreetServiceClient(url2).greet(greetRequest)).toEqual(
      expectedGreet,
    );
    expect(
      await createElizaServiceClient(url2).say({ sentence: "x" }),
    ).toMatchObject({
      sentence: "You said: x",
    });
  });

  it("fetchHandler(a, b) serves services of different generated files", async () => {
    const httpClient = createFetchHttpClient(
      inProcessFetch(fetchHandler(first, second, greet)),
    );
    const base = "http://in-process.invalid";
    expect(
      await createFirstServiceClient(base, { httpClient }).ping({ text: "a" }),
    ).toMatchObject({
      text: "first: a",
    });
    expect(
      await createSecondServiceClient(base, { httpClient }).ping({ text: "b" }),
    ).toMatchObject({
      text: "second: b",
    });
    expect(
      await createGreetServiceClient(base, { httpClient }).greet(greetRequest),
    ).toEqual(expectedGreet);
    const error = await callError(
      createElizaServiceClient(base, { httpClient }).say({ sentence: "x" }),
    );
    expect(error.code).toBe(Code.Unimplemented);
  });

  it("handler.node(req, res, next) calls next for paths that are not the service's (Express style)", async () => {
    const nextCalls: string[] = [];
    const url = await serveOn("http", (req, res) =>
      greet.node(req, res, () => {
        nextCalls.push(req.url ?? "");
        res.statusCode = 418;
        res.setHeader("content-type", "text/plain");
        res.end("next handler");
      }),
    );
    const response = await fetch(url + "/healthz");
    expect(response.status).toBe(418);
    expect(await response.text()).toBe("next handler");
    expect(await createGreetServiceClient(url).greet(greetRequest)).toEqual(
      expectedGreet,
    );
    expect(nextCalls).toEqual(["/healthz"]);
  });

  // Connect's 404 on the wire; what gRPC and gRPC-Web answer is in the
  // per-protocol suite ("an unknown method under the service path").
  it("an unknown method under the service path is 404 with code unimplemented", async () => {
    const url = await serveOn("http", (req, res) =>
      greet.node(req, res, () => res.end("next must not be called")),
    );
    const response = await fetch(
      url + "/fixtures.unary.v1.GreetService/NoSuchMethod",
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "connect-protocol-version": "1",
        },
        body: "{}",
      },
    );
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "unimplemented" });

    const viaFetch = await greet.fetch(
      new Request(
        "http://in-process.invalid/fixtures.unary.v1.GreetService/NoSuchMethod",
        {
          method: "POST",
          headers: { "content-type": "application/proto" },
          body: new Uint8Array(0),
        },
      ),
    );
    expect(viaFetch.status).toBe(404);
    expect(await viaFetch.json()).toMatchObject({ code: "unimplemented" });
  });

  it("without next, a path no service serves is 404 with code unimplemented", async () => {
    const url = await serveOn("http", nodeHandler(first, second));
    const response = await fetch(url + "/somewhere/else", {
      method: "POST",
      body: "{}",
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ code: "unimplemented" });
    const error = await callError(createGreetServiceClient(url).greet({}));
    expect(error.code).toBe(Code.Unimplemented);
  });
});

describe("choosing the protocol", () => {
  it('grpcProtocol with transport "fetch" throws when the client is created', () => {
    expect(() =>
      createGreetServiceClient("http://127.0.0.1:1", {
        protocol: grpcProtocol,
        transport: "fetch",
      }),
    ).toThrow(
      'gRPC needs HTTP/2 trailers, which fetch cannot read: use transport "http2", or grpcWebProtocol',
    );
  });

  it("grpcProtocol without a transport uses HTTP/2", async () => {
    // An h2c server speaks nothing else: fetch (HTTP/1.1) could not call it.
    const url = await serveOn("h2c", createGreetServiceHandler(greetImpl).node);
    const client = createGreetServiceClient(url, { protocol: grpcProtocol });
    expect(await client.greet(greetRequest)).toEqual(expectedGreet);
  });

  it("one server answers Connect, gRPC and gRPC-Web clients on the same port and paths alike", async () => {
    const { served, seen } = greetAndEliza();
    const url = await serveOn("h2c", served.node);
    const protocols: Protocol[] = ["connect", "grpc", "grpc-web"];
    const handlerProtocols: string[] = [];
    hooks.greet = (request, context) => {
      handlerProtocols.push(context.protocol);
      context.responseHeaders.set("x-header", "header value");
      context.responseTrailers.set("x-trailer", "trailer value");
      return greetLogic(request);
    };
    hooks.fail = () => {
      throw new ConnectError("später ✓", Code.FailedPrecondition, {
        details: [{ desc: AddressSchema, value: { city: "Detailville" } }],
        metadata: { "x-error-meta": "from the error" },
      });
    };
    const answers = [];
    for (const protocol of protocols) {
      const client = createGreetServiceClient(url, {
        protocol: greetProtocols[protocol],
        transport: "http2",
      });
      const raw = await client.greet.raw(greetRequest);
      const error = await callError(client.fail({}));
      answers.push({
        message: raw.message,
        header: raw.header.get("x-header"),
        trailer: raw.trailer.get("x-trailer"),
        code: error.code,
        errorMessage: error.rawMessage,
        details: error.findDetails(AddressSchema),
        metadata: error.metadata.get("x-error-meta"),
      });
    }
    expect(answers).toEqual(
      protocols.map(() => ({
        message: expectedGreet,
        header: "header value",
        trailer: "trailer value",
        code: Code.FailedPrecondition,
        errorMessage: "später ✓",
        details: [create(AddressSchema, { city: "Detailville" })],
        metadata: "from the error",
      })),
    );
    expect(handlerProtocols).toEqual(protocols);
    const greetPath = GreetServiceDefinition.methods.greet.path;
    const failPath = GreetServiceDefinition.methods.fail.path;
    expect(seen).toEqual(
      protocols.flatMap(() => [
        { method: "POST", path: greetPath, search: "" },
        { method: "POST", path: failPath, search: "" },
      ]),
    );
  });

  it("gRPC over HTTP/1.1 or to a fetch handler fails with Unimplemented, naming what it needs", async () => {
    // gRPC's status travels in HTTP trailers, which neither can carry; the
    // server says so rather than answering without them.
    const handler = createGreetServiceHandler(greetImpl);
    const http1 = createGreetServiceClient(await serveOn("h2", handler.node), {
      protocol: grpcProtocol,
      httpClient: createHttpsHttpClient(testCertificate().cert),
    });
    const inProcess = createGreetServiceClient("http://in-process.invalid", {
      protocol: grpcProtocol,
      httpClient: createFetchHttpClient(inProcessFetch(handler.fetch)),
    });
    for (const [client, got] of [
      [http1, "HTTP/1.1"],
      [inProcess, "a fetch handler"],
    ] as const) {
      const error = await callError(client.greet(greetRequest));
      expect(error.code).toBe(Code.Unimplemented);
      expect(error.rawMessage).toBe(
        `gRPC requires HTTP/2 with trailers (got ${got}); gRPC-Web works over any HTTP version`,
      );
    }
  });
});
