// Streaming in the generated client, all three kinds, in every protocol the
// transport carries (Connect and gRPC-Web everywhere, gRPC over the http2
// transport only, since it needs HTTP/2 trailers): against our generated
// server (node:http2 h2c and TLS with the http2 transport, node:http with the
// fetch transport, and the fetch handler called in process), against
// @connectrpc/connect-node servers, full duplex over HTTP/2, cancellation and
// deadlines, receive limits and malformed responses from a hand-written
// server, backpressure on the request stream, and client interceptors.

import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, equals, toBinary, type Message } from "@bufbuild/protobuf";
import {
  Code as EsCode,
  ConnectError as EsConnectError,
  type ConnectRouter,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
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
  envelopeEncode,
  envelopeFlagCompressed,
  envelopeFlagEndStream,
  envelopeFlagTrailers,
} from "../runtime-inline/core/envelope.ts";
import {
  Code,
  ConnectError,
  createElizaServiceClient,
  createElizaServiceHandler,
  createFetchHttpClient,
  isConnectError,
  type ElizaServiceClient,
  type ElizaServiceImplementation,
  type HandlerContext,
  type Interceptor,
  type NodeClientOptions,
  type NodeServiceHandler,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  ConverseResponseSchema,
  ElizaService,
  IntroduceResponseSchema,
  PontificateResponseSchema,
  SayResponseSchema,
  type ConverseRequest,
  type ConverseResponse,
  type IntroduceRequest,
  type IntroduceResponse,
  type PontificateRequest,
} from "./gen/eliza/v1/eliza_pb.ts";
import {
  startServer,
  type NodeListener,
  type ServerKind,
} from "./support/servers.ts";
import {
  codecOption,
  elizaProtocols,
  type ProtocolName,
} from "./support/protocols.ts";
import { testCertificate } from "./support/tls.ts";

// ---------------------------------------------------------------------------
// Process-level failures: none may happen while this file runs.

const processFailures: unknown[] = [];
const onFailure = (reason: unknown) => {
  processFailures.push(reason);
};

// ---------------------------------------------------------------------------
// Helpers.

// The real timers, taken before any test fakes them: implementations'
// pacing and the helpers' polling keep running while a test drives the
// deadlines of the client and the server with vitest's fake timers.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = realSetTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        realClearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * How long a helper waits for something that must happen before it gives up
 * with a message naming it: a guard against a hang, never a measure of speed,
 * so long enough for a machine at a load of 10 (and below the test timeout).
 */
const hangMs = 20_000;

async function waitUntil(
  condition: () => boolean,
  what: string,
): Promise<void> {
  // performance.now: Date may be faked (and frozen) by the test.
  const deadline = performance.now() + hangMs;
  while (!condition()) {
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(5);
  }
}

/** Rejects with a clear message when `promise` has not settled after hangMs. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = realSetTimeout(
        () => reject(new Error(`timed out after ${hangMs} ms: ${what}`)),
        hangMs,
      );
    }),
  ]).finally(() => realClearTimeout(timer));
}

/** A promise the test settles: what a handler waits for instead of a length of time. */
function settable(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

/** The ConnectError a call fails with; fails the test when it succeeds or throws anything else. */
async function callError(run: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await run();
  } catch (e) {
    expect(isConnectError(e), `not a ConnectError: ${String(e)}`).toBe(true);
    return e as ConnectError;
  }
  throw new Error("expected the call to fail");
}

/** Reads a stream to the end, keeping what arrived before a failure. */
async function drain<T>(
  messages: AsyncIterable<T>,
): Promise<{ received: T[]; error: unknown }> {
  const received: T[] = [];
  try {
    for await (const m of messages) received.push(m);
  } catch (e) {
    return { received, error: e };
  }
  return { received, error: undefined };
}

/** Request messages as the async iterable a streaming call takes. */
async function* each<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

/** An async iterable fed by `push`, for requests sent one by one. */
function pushQueue<T>(): AsyncIterable<T> & {
  push(value: T): void;
  close(): void;
  readonly pulled: number;
} {
  const items: T[] = [];
  let closed = false;
  let pulled = 0;
  let waiting: ((result: IteratorResult<T>) => void) | undefined;
  return {
    get pulled() {
      return pulled;
    },
    push(value) {
      if (waiting !== undefined) {
        const w = waiting;
        waiting = undefined;
        pulled++;
        w({ value, done: false });
      } else {
        items.push(value);
      }
    },
    close() {
      closed = true;
      if (waiting !== undefined) {
        const w = waiting;
        waiting = undefined;
        w({ value: undefined, done: true });
      }
    },
    [Symbol.asyncIterator]() {
      return {
        next(): Promise<IteratorResult<T>> {
          if (items.length > 0) {
            pulled++;
            return Promise.resolve({ value: items.shift()!, done: false });
          }
          if (closed) {
            return Promise.resolve({ value: undefined, done: true });
          }
          return new Promise((resolve) => (waiting = resolve));
        },
        return(): Promise<IteratorResult<T>> {
          closed = true;
          return Promise.resolve({ value: undefined, done: true });
        },
      };
    },
  };
}

/** Wraps a listener to count the requests (HTTP/2 streams) the server has open. */
function counting(listener: NodeListener): {
  listener: NodeListener;
  active(): number;
} {
  let active = 0;
  return {
    listener: (req, res) => {
      active++;
      res.once("close", () => active--);
      listener(req, res);
    },
    active: () => active,
  };
}

// ---------------------------------------------------------------------------
// Service logic shared by our server and the connect-es server.

const name = "Ada ✓";
const longText = "long sentence, compressible. ".repeat(80);

function introduceSentences(who: string): string[] {
  return [`Hello ${who}, I am Eliza.`, longText, "", `Goodbye ${who}.`];
}

const sentences = ["I think", longText, "", "therefore I am ✓"];

const expectedIntroduce = introduceSentences(name).map((sentence) =>
  create(IntroduceResponseSchema, { sentence }),
);
const expectedPontificate = create(PontificateResponseSchema, {
  sentence: sentences.join("|"),
  count: sentences.length,
});
const expectedConverse = sentences.map((s) =>
  create(ConverseResponseSchema, { sentence: `You said: ${s}` }),
);

function sentencesOf(messages: readonly { sentence: string }[]): string[] {
  return messages.map((m) => m.sentence);
}

const errorDetail = { sentence: "the detail" };

// ---------------------------------------------------------------------------
// Our generated server. Tests change a method's behaviour by setting a hook,
// cleared after every test.

let hooks: Partial<ElizaServiceImplementation> = {};
/** The request headers of the latest call to reach the implementation. */
let seenHeaders: Headers | undefined;

const oursImpl: ElizaServiceImplementation = {
  say: (request) => ({ sentence: request.sentence }),
  introduce(request, context) {
    seenHeaders = context.requestHeaders;
    if (hooks.introduce) return hooks.introduce(request, context);
    return introduceLogic(request, context);
  },
  pontificate(requests, context) {
    seenHeaders = context.requestHeaders;
    if (hooks.pontificate) return hooks.pontificate(requests, context);
    return pontificateLogic(requests, context);
  },
  converse(requests, context) {
    seenHeaders = context.requestHeaders;
    if (hooks.converse) return hooks.converse(requests, context);
    return converseLogic(requests, context);
  },
};

async function* introduceLogic(
  request: IntroduceRequest,
  context: HandlerContext,
): AsyncGenerator<{ sentence: string }> {
  context.responseHeaders.set("x-kind", "server_streaming");
  for (const sentence of introduceSentences(request.name)) {
    yield { sentence };
  }
  context.responseTrailers.set("x-sent", "4");
}

async function pontificateLogic(
  requests: AsyncIterable<PontificateRequest>,
  context: HandlerContext,
): Promise<{ sentence: string; count: number }> {
  const got: string[] = [];
  for await (const r of requests) got.push(r.sentence);
  context.responseHeaders.set("x-kind", "client_streaming");
  context.responseTrailers.set("x-sent", "1");
  return { sentence: got.join("|"), count: got.length };
}

async function* converseLogic(
  requests: AsyncIterable<ConverseRequest>,
  context: HandlerContext,
): AsyncGenerator<{ sentence: string }> {
  context.responseHeaders.set("x-kind", "bidi_streaming");
  let n = 0;
  for await (const r of requests) {
    n++;
    yield { sentence: `You said: ${r.sentence}` };
  }
  context.responseTrailers.set("x-sent", String(n));
}

let oursHandler: NodeServiceHandler;

afterEach(() => {
  hooks = {};
  seenHeaders = undefined;
});

// ---------------------------------------------------------------------------
// A connect-es server with the same behaviour; a request header makes it fail
// after two messages, and its headers and trailers are set on the context.

function esFail(): never {
  throw new EsConnectError(
    "es failure",
    EsCode.ResourceExhausted,
    { "x-error-meta": "es meta" },
    [{ desc: SayResponseSchema, value: errorDetail }],
  );
}

function esRoutes(router: ConnectRouter): void {
  router.service(ElizaService, {
    async *introduce(request, context) {
      context.responseHeader.set("x-es-header", "es header");
      const fail = context.requestHeader.has("x-fail");
      let n = 0;
      for (const sentence of introduceSentences(request.name)) {
        if (fail && n === 2) esFail();
        n++;
        yield { sentence };
      }
      context.responseTrailer.set("x-es-trailer", "es trailer");
    },
    async pontificate(requests, context) {
      context.responseHeader.set("x-es-header", "es header");
      const fail = context.requestHeader.has("x-fail");
      const got: string[] = [];
      for await (const r of requests) {
        got.push(r.sentence);
        if (fail && got.length === 2) esFail();
      }
      context.responseTrailer.set("x-es-trailer", "es trailer");
      return { sentence: got.join("|"), count: got.length };
    },
    async *converse(requests, context) {
      context.responseHeader.set("x-es-header", "es header");
      const fail = context.requestHeader.has("x-fail");
      if (context.requestHeader.has("x-greet-first")) {
        yield { sentence: "greetings first" };
      }
      let n = 0;
      for await (const r of requests) {
        if (fail && n === 2) esFail();
        n++;
        yield { sentence: `You said: ${r.sentence}` };
      }
      context.responseTrailer.set("x-es-trailer", "es trailer");
    },
  });
}

// ---------------------------------------------------------------------------
// Servers.

const closers: (() => Promise<void>)[] = [];

async function serveOn(
  kind: ServerKind,
  listener: NodeListener,
): Promise<string> {
  const server = await startServer(kind, listener);
  closers.push(() => server.close());
  return server.url;
}

type Protocol = ProtocolName;

/** The protocols a client can speak over a transport: gRPC needs HTTP/2. */
function protocolsOver(http2: boolean): readonly Protocol[] {
  return http2 ? ["connect", "grpc", "grpc-web"] : ["connect", "grpc-web"];
}

/** What each protocol calls its content types and compression header. */
const wires = {
  connect: {
    contentType: (binary: boolean) =>
      binary ? "application/connect+proto" : "application/connect+json",
    encoding: "connect-content-encoding",
  },
  grpc: {
    contentType: (binary: boolean) =>
      binary ? "application/grpc+proto" : "application/grpc+json",
    encoding: "grpc-encoding",
  },
  "grpc-web": {
    contentType: (binary: boolean) =>
      binary ? "application/grpc-web+proto" : "application/grpc-web+json",
    encoding: "grpc-encoding",
  },
} as const satisfies Record<Protocol, unknown>;

interface OursTransport {
  readonly name: string;
  /** HTTP/2: requests and responses flow at the same time. */
  readonly fullDuplex: boolean;
  /** HTTP/1.1 over a socket of its own. */
  readonly http1: boolean;
  /** A client of the server (once started), with these options on top. */
  client(options?: NodeClientOptions): ElizaServiceClient;
  /** Requests the server has open right now (undefined in process). */
  active(): number | undefined;
}

let oursH2c: { url: string; active(): number };
let oursH2: { url: string; active(): number };
let oursHttp: { url: string; active(): number };
let esH2c: string;
let esHttp: string;

beforeAll(async () => {
  process.on("unhandledRejection", onFailure);
  process.on("uncaughtException", onFailure);
  oursHandler = createElizaServiceHandler(oursImpl);
  const start = async (kind: ServerKind) => {
    const counted = counting(oursHandler.node);
    return {
      url: await serveOn(kind, counted.listener),
      active: counted.active,
    };
  };
  const es = connectNodeAdapter({ routes: esRoutes }) as NodeListener;
  [oursH2c, oursH2, oursHttp, esH2c, esHttp] = await Promise.all([
    start("h2c"),
    start("h2"),
    start("http"),
    serveOn("h2c", es),
    serveOn("http", es),
  ]);
});

afterAll(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  process.off("unhandledRejection", onFailure);
  process.off("uncaughtException", onFailure);
  expect(processFailures).toEqual([]);
});

const oursTransports: readonly OursTransport[] = [
  {
    name: "node:http2 h2c, http2 transport",
    fullDuplex: true,
    http1: false,
    client: (options = {}) =>
      createElizaServiceClient(oursH2c.url, { transport: "http2", ...options }),
    active: () => oursH2c.active(),
  },
  {
    name: "node:http2 TLS, http2 transport",
    fullDuplex: true,
    http1: false,
    client: (options = {}) =>
      createElizaServiceClient(oursH2.url, {
        transport: "http2",
        http2: { sessionOptions: { ca: testCertificate().cert } },
        ...options,
      }),
    active: () => oursH2.active(),
  },
  {
    name: "node:http, fetch transport",
    fullDuplex: false,
    http1: true,
    client: (options = {}) =>
      createElizaServiceClient(oursHttp.url, {
        transport: "fetch",
        ...options,
      }),
    active: () => oursHttp.active(),
  },
  {
    name: "fetch handler in process",
    fullDuplex: false,
    http1: false,
    client: (options = {}) =>
      createElizaServiceClient("http://in-process.invalid", {
        httpClient: createFetchHttpClient((url, init) =>
          oursHandler.fetch(new Request(url, init)),
        ),
        ...options,
      }),
    active: () => undefined,
  },
];

/** One of our transports with one protocol it carries; `client` speaks it. */
interface OursCombo extends OursTransport {
  readonly protocol: Protocol;
}
const oursCombos: readonly OursCombo[] = oursTransports.flatMap((transport) =>
  protocolsOver(transport.fullDuplex).map((protocol) => ({
    ...transport,
    protocol,
    client: (options: NodeClientOptions = {}) =>
      transport.client({ protocol: elizaProtocols[protocol], ...options }),
  })),
);

const compressionNames = ["identity", "gzip", "br", "zstd"] as const;

// ---------------------------------------------------------------------------
// 1. Generated client → generated server.

describe.each(oursCombos)("our server, $name, $protocol", (transport) => {
  const cases = [true, false].flatMap((binary) =>
    compressionNames.map((c) => [binary, c] as const),
  );

  describe.each(cases)(
    "binary=%s, send compression %s",
    (binary, compression) => {
      const client = () =>
        transport.client({
          ...codecOption(binary),
          sendCompression: compression,
          compressMinBytes: 0,
        });

      const wire = wires[transport.protocol];

      function expectRequestHeaders(): void {
        expect(seenHeaders?.get("content-type")).toBe(wire.contentType(binary));
        expect(seenHeaders?.get(wire.encoding) ?? "identity").toBe(compression);
      }

      it("server streaming (introduce)", async () => {
        const received: IntroduceResponse[] = [];
        for await (const m of client().introduce({ name })) received.push(m);
        expect(received).toEqual(expectedIntroduce);
        expect(
          received.every((m, i) =>
            equals(IntroduceResponseSchema, m, expectedIntroduce[i]!),
          ),
        ).toBe(true);
        expectRequestHeaders();

        let onHeader: Headers | undefined;
        let onTrailer: Headers | undefined;
        const result = await client().introduce.raw(
          { name },
          {
            onHeader: (h) => (onHeader = h),
            onTrailer: (t) => (onTrailer = t),
          },
        );
        expect(result.header.get("x-kind")).toBe("server_streaming");
        expect(result.header.get("content-type")).toBe(
          wire.contentType(binary),
        );
        // The long sentence is large enough for the server to compress: in
        // the first the client accepts (gzip), or, over gRPC and gRPC-Web,
        // in the request's own compression, as grpc-go answers.
        expect(result.header.get(wire.encoding)).toBe(
          transport.protocol === "connect" || compression === "identity"
            ? "gzip"
            : compression,
        );
        expect(onHeader?.get("x-kind")).toBe("server_streaming");
        expect(result.trailer.get("x-sent")).toBe(null);
        const again = await drain(result.messages);
        expect(again).toEqual({
          received: expectedIntroduce,
          error: undefined,
        });
        expect(result.trailer.get("x-sent")).toBe("4");
        expect(onTrailer?.get("x-sent")).toBe("4");
      });

      it("client streaming (pontificate)", async () => {
        expect(
          await client().pontificate(
            sentences.map((sentence) => ({ sentence })),
          ),
        ).toEqual(expectedPontificate);
        expectRequestHeaders();
        let onTrailer: Headers | undefined;
        const result = await client().pontificate.raw(
          each(sentences.map((sentence) => ({ sentence }))),
          { onTrailer: (t) => (onTrailer = t) },
        );
        expect(result.message).toEqual(expectedPontificate);
        expect(result.header.get("x-kind")).toBe("client_streaming");
        expect(result.trailer.get("x-sent")).toBe("1");
        expect(onTrailer?.get("x-sent")).toBe("1");
        // An empty request stream is a valid call too.
        expect(await client().pontificate([])).toEqual(
          create(PontificateResponseSchema, { sentence: "", count: 0 }),
        );
      });

      it("bidi streaming (converse), all requests sent before reading", async () => {
        const received: ConverseResponse[] = [];
        for await (const m of client().converse(
          each(sentences.map((sentence) => ({ sentence }))),
        )) {
          received.push(m);
        }
        expect(received).toEqual(expectedConverse);
        expectRequestHeaders();
        const result = await client().converse.raw(
          each(sentences.map((sentence) => ({ sentence }))),
        );
        expect(result.header.get("x-kind")).toBe("bidi_streaming");
        expect(await drain(result.messages)).toEqual({
          received: expectedConverse,
          error: undefined,
        });
        expect(result.trailer.get("x-sent")).toBe("4");
      });
    },
  );

  it("a server error after two messages arrives after them, with its details and metadata", async () => {
    hooks.introduce = async function* (_request, context) {
      yield { sentence: "one" };
      yield { sentence: "two" };
      context.responseTrailers.set("x-trailer", "kept");
      throw new ConnectError("ours failed", Code.FailedPrecondition, {
        metadata: { "x-error-meta": "meta" },
        details: [{ desc: SayResponseSchema, value: errorDetail }],
      });
    };
    const { received, error } = await drain(
      transport.client().introduce({ name }),
    );
    expect(sentencesOf(received)).toEqual(["one", "two"]);
    expect(isConnectError(error)).toBe(true);
    const e = error as ConnectError;
    expect(e.code).toBe(Code.FailedPrecondition);
    expect(e.rawMessage).toBe("ours failed");
    expect(e.metadata.get("x-error-meta")).toBe("meta");
    expect(e.metadata.get("x-trailer")).toBe("kept");
    expect(e.findDetails(SayResponseSchema)).toEqual([
      create(SayResponseSchema, errorDetail),
    ]);
  });

  it("a server error before the first message: no messages, then its code, details and metadata", async () => {
    // Over gRPC this is a trailers-only response (the status in the headers).
    hooks.introduce = async function* (_request, context) {
      context.responseHeaders.set("x-header", "sent");
      context.responseTrailers.set("x-trailer", "kept");
      throw new ConnectError("refused at once", Code.PermissionDenied, {
        metadata: { "x-error-meta": "meta" },
        details: [{ desc: SayResponseSchema, value: errorDetail }],
      });
    };
    let onHeader: Headers | undefined;
    let onTrailer: Headers | undefined;
    const { received, error } = await drain(
      transport.client().introduce(
        { name },
        {
          onHeader: (h) => (onHeader = h),
          onTrailer: (t) => (onTrailer = t),
        },
      ),
    );
    expect(received).toEqual([]);
    expect(isConnectError(error), String(error)).toBe(true);
    const e = error as ConnectError;
    expect(e.code).toBe(Code.PermissionDenied);
    expect(e.rawMessage).toBe("refused at once");
    expect(e.findDetails(SayResponseSchema)).toEqual([
      create(SayResponseSchema, errorDetail),
    ]);
    // The error's metadata holds the headers and the trailers.
    expect(e.metadata.get("x-error-meta")).toBe("meta");
    expect(e.metadata.get("x-trailer")).toBe("kept");
    expect(e.metadata.get("x-header")).toBe("sent");
    expect(onHeader?.get("x-header")).toBe("sent");
    // A failed call has no trailers of its own to report.
    expect(onTrailer).toBeUndefined();
  });

  it("client streaming and bidi: a server error after two requests reaches the client", async () => {
    const fail = () =>
      new ConnectError("two is enough", Code.OutOfRange, {
        details: [{ desc: SayResponseSchema, value: errorDetail }],
      });
    hooks.pontificate = async (requests) => {
      let n = 0;
      for await (const _ of requests) if (++n === 2) throw fail();
      return { sentence: "unreachable" };
    };
    hooks.converse = async function* (requests) {
      let n = 0;
      for await (const r of requests) {
        if (++n === 2) throw fail();
        yield { sentence: `You said: ${r.sentence}` };
      }
    };
    const requests = () => each(sentences.map((sentence) => ({ sentence })));
    const e = await callError(() =>
      within(transport.client().pontificate(requests()), "pontificate"),
    );
    expect(e.code).toBe(Code.OutOfRange);
    expect(e.rawMessage).toBe("two is enough");
    expect(e.findDetails(SayResponseSchema)).toHaveLength(1);
    const { received, error } = await within(
      drain(transport.client().converse(requests())),
      "converse",
    );
    expect(sentencesOf(received)).toEqual([`You said: ${sentences[0]}`]);
    expect(isConnectError(error), String(error)).toBe(true);
    expect((error as ConnectError).code).toBe(Code.OutOfRange);
    expect((error as ConnectError).findDetails(SayResponseSchema)).toHaveLength(
      1,
    );
  });
});

// ---------------------------------------------------------------------------
// 2. Generated client → connect-es server.

const esTransports = [
  {
    name: "node:http2 h2c (connect-es), http2 transport",
    url: () => esH2c,
    http2: true,
    options: { transport: "http2" } as NodeClientOptions,
  },
  {
    name: "node:http (connect-es), fetch transport",
    url: () => esHttp,
    http2: false,
    options: { transport: "fetch" } as NodeClientOptions,
  },
];

// connect-es serves all three protocols on one handler.
const esCombos = esTransports.flatMap((transport) =>
  protocolsOver(transport.http2).map((protocol) => ({
    ...transport,
    protocol,
    options: { ...transport.options, protocol: elizaProtocols[protocol] },
  })),
);

describe.each(esCombos)("connect-es server, $name, $protocol", (transport) => {
  const wire = wires[transport.protocol];
  const cases = [true, false].flatMap((binary) =>
    [false, true].map((gzip) => [binary, gzip] as const),
  );

  describe.each(cases)("binary=%s, gzip=%s", (binary, gzip) => {
    const client = () =>
      createElizaServiceClient(transport.url(), {
        ...transport.options,
        ...codecOption(binary),
        ...(gzip ? { sendCompression: "gzip", compressMinBytes: 0 } : {}),
      });
    const failing = { headers: { "x-fail": "yes" } };

    it("server streaming: messages, headers and trailers", async () => {
      const received: IntroduceResponse[] = [];
      for await (const m of client().introduce({ name })) received.push(m);
      expect(received).toEqual(expectedIntroduce);

      let onHeader: Headers | undefined;
      let onTrailer: Headers | undefined;
      const result = await client().introduce.raw(
        { name },
        {
          onHeader: (h) => (onHeader = h),
          onTrailer: (t) => (onTrailer = t),
        },
      );
      expect(result.header.get("x-es-header")).toBe("es header");
      expect(result.header.get("content-type")).toBe(wire.contentType(binary));
      expect(onHeader?.get("x-es-header")).toBe("es header");
      expect(await drain(result.messages)).toEqual({
        received: expectedIntroduce,
        error: undefined,
      });
      expect(result.trailer.get("x-es-trailer")).toBe("es trailer");
      expect(onTrailer?.get("x-es-trailer")).toBe("es trailer");
    });

    it("client streaming: message, headers and trailers", async () => {
      expect(
        await client().pontificate(sentences.map((sentence) => ({ sentence }))),
      ).toEqual(expectedPontificate);
      let onHeader: Headers | undefined;
      let onTrailer: Headers | undefined;
      const result = await client().pontificate.raw(
        each(sentences.map((sentence) => ({ sentence }))),
        {
          onHeader: (h) => (onHeader = h),
          onTrailer: (t) => (onTrailer = t),
        },
      );
      expect(result.message).toEqual(expectedPontificate);
      expect(result.header.get("x-es-header")).toBe("es header");
      expect(onHeader?.get("x-es-header")).toBe("es header");
      expect(result.trailer.get("x-es-trailer")).toBe("es trailer");
      expect(onTrailer?.get("x-es-trailer")).toBe("es trailer");
    });

    // connect-es serves bidi streaming over HTTP/2 only, and answers an
    // HTTP/1.1 request with 505 (no Connect error body): the client reports
    // the HTTP status as the error rather than hanging or sending more.
    if (!transport.http2) {
      it("bidi streaming over HTTP/1.1 is refused with HTTP 505", async () => {
        const { received, error } = await drain(
          client().converse(each(sentences.map((sentence) => ({ sentence })))),
        );
        expect(received).toEqual([]);
        expect(isConnectError(error)).toBe(true);
        expect((error as ConnectError).code).toBe(Code.Unknown);
        expect((error as ConnectError).rawMessage).toBe(
          transport.protocol === "connect" ? "HTTP 505" : "HTTP status 505",
        );
      });
    }

    const bidi = (title: string, test: () => Promise<void>) => {
      if (transport.http2) it(title, test);
    };

    bidi("bidi streaming: messages, headers and trailers", async () => {
      let onHeader: Headers | undefined;
      let onTrailer: Headers | undefined;
      const result = await client().converse.raw(
        each(sentences.map((sentence) => ({ sentence }))),
        {
          onHeader: (h) => (onHeader = h),
          onTrailer: (t) => (onTrailer = t),
        },
      );
      expect(result.header.get("x-es-header")).toBe("es header");
      expect(onHeader?.get("x-es-header")).toBe("es header");
      expect(await drain(result.messages)).toEqual({
        received: expectedConverse,
        error: undefined,
      });
      expect(result.trailer.get("x-es-trailer")).toBe("es trailer");
      expect(onTrailer?.get("x-es-trailer")).toBe("es trailer");
    });

    function expectEsError(error: unknown): void {
      expect(
        isConnectError(error),
        `not a ConnectError: ${String(error)}`,
      ).toBe(true);
      const e = error as ConnectError;
      expect(e.code).toBe(Code.ResourceExhausted);
      expect(e.rawMessage).toBe("es failure");
      expect(e.findDetails(SayResponseSchema)).toEqual([
        create(SayResponseSchema, errorDetail),
      ]);
      expect(e.metadata.get("x-error-meta")).toBe("es meta");
    }

    it("server streaming: an error after two messages arrives after them", async () => {
      const { received, error } = await drain(
        client().introduce({ name }, failing),
      );
      expect(received).toEqual(expectedIntroduce.slice(0, 2));
      expectEsError(error);
    });

    it("client streaming: an error after two requests", async () => {
      let error: unknown;
      try {
        await client().pontificate(
          each(sentences.map((sentence) => ({ sentence }))),
          failing,
        );
      } catch (e) {
        error = e;
      }
      expectEsError(error);
    });

    bidi(
      "bidi streaming: an error after two messages arrives after them",
      async () => {
        const { received, error } = await drain(
          client().converse(
            each(sentences.map((sentence) => ({ sentence }))),
            failing,
          ),
        );
        expect(received).toEqual(expectedConverse.slice(0, 2));
        expectEsError(error);
      },
    );
  });
});

// ---------------------------------------------------------------------------
// 3. Full duplex over HTTP/2.

describe("full duplex over HTTP/2", () => {
  // Every protocol runs full duplex over HTTP/2.
  const servers = protocolsOver(true).flatMap((protocol) => [
    {
      name: "our server (h2c)",
      protocol,
      client: () =>
        createElizaServiceClient(oursH2c.url, {
          transport: "http2",
          protocol: elizaProtocols[protocol],
        }),
    },
    {
      name: "our server (TLS)",
      protocol,
      client: () =>
        createElizaServiceClient(oursH2.url, {
          transport: "http2",
          protocol: elizaProtocols[protocol],
          http2: { sessionOptions: { ca: testCertificate().cert } },
        }),
    },
    {
      name: "connect-es server (h2c)",
      protocol,
      client: () =>
        createElizaServiceClient(esH2c, {
          transport: "http2",
          protocol: elizaProtocols[protocol],
        }),
    },
  ]);

  it.each(servers)(
    "$name, $protocol: request N+1 goes out only after response N arrived",
    async ({ client }) => {
      const count = 20;
      const queue = pushQueue<{ sentence: string }>();
      queue.push({ sentence: "0" });
      const received: string[] = [];
      const run = async () => {
        for await (const m of client().converse(queue)) {
          received.push(m.sentence);
          // Every request so far was pulled: the client sent it before this answer came.
          expect(queue.pulled).toBe(received.length);
          if (received.length < count) {
            queue.push({ sentence: String(received.length) });
          } else {
            queue.close();
          }
        }
      };
      await within(run(), "ping-pong over HTTP/2");
      expect(received).toEqual(
        Array.from({ length: count }, (_, i) => `You said: ${i}`),
      );
    },
  );

  it.each(servers)(
    "$name, $protocol: a greeting sent before any request arrives before the first request goes out",
    async ({ client }) => {
      hooks.converse = async function* (requests, context) {
        yield { sentence: "greetings first" };
        yield* converseLogic(requests, context);
      };
      const queue = pushQueue<{ sentence: string }>();
      const received: string[] = [];
      const run = async () => {
        for await (const m of client().converse(queue, {
          headers: { "x-greet-first": "yes" },
        })) {
          received.push(m.sentence);
          if (received.length === 1) {
            // Nothing has been sent yet.
            expect(queue.pulled).toBe(0);
            queue.push({ sentence: "hello" });
          } else {
            queue.close();
          }
        }
      };
      await within(run(), "greeting first");
      expect(received).toEqual(["greetings first", "You said: hello"]);
    },
  );
});

// ---------------------------------------------------------------------------
// 4. Cancellation and deadlines.

/** What the server saw of one call. */
interface ServerProbe {
  produced: number;
  signal: AbortSignal | undefined;
  finished: boolean;
}

function newProbe(): ServerProbe {
  return { produced: 0, signal: undefined, finished: false };
}

/** A server stream of up to 10000 messages, one every `intervalMs`. */
function longIntroduce(probe: ServerProbe, intervalMs: number) {
  return async function* (
    _request: IntroduceRequest,
    context: HandlerContext,
  ): AsyncGenerator<{ sentence: string }> {
    probe.signal = context.signal;
    try {
      for (let i = 0; i < 10_000 && !context.signal.aborted; i++) {
        probe.produced++;
        yield { sentence: `message ${i}` };
        await sleep(intervalMs, context.signal);
      }
    } finally {
      probe.finished = true;
    }
  };
}

describe.each(oursCombos)("cancellation, $name, $protocol", (transport) => {
  it("breaking out of a server stream cancels the call on the server", async () => {
    const probe = newProbe();
    const many = longIntroduce(probe, 2);
    hooks.introduce = (request, context) =>
      request.name === "many"
        ? many(request, context)
        : introduceLogic(request, context);
    const client = transport.client();
    const received: string[] = [];
    await within(
      (async () => {
        for await (const m of client.introduce({ name: "many" })) {
          received.push(m.sentence);
          if (received.length === 2) break;
        }
      })(),
      "the first two messages",
    );
    expect(received).toEqual(["message 0", "message 1"]);
    await waitUntil(
      () => probe.signal?.aborted === true,
      "the server's signal to abort",
    );
    await waitUntil(() => probe.finished, "the server generator's finally");
    expect(probe.produced).toBeLessThan(10_000);
    // No stream is left open on the server (in process there is none to count).
    if (transport.active() !== undefined) {
      await waitUntil(() => transport.active() === 0, "no open streams");
    }
    // The same client (and HTTP/2 session) still works.
    const again: IntroduceResponse[] = [];
    for await (const m of client.introduce({ name })) again.push(m);
    expect(again).toEqual(expectedIntroduce);
    if (transport.active() !== undefined) {
      await waitUntil(() => transport.active() === 0, "no open streams");
    }
  });

  it("timeoutMs ends a long server stream with DeadlineExceeded after some messages", async () => {
    const probe = newProbe();
    hooks.introduce = longIntroduce(probe, 10);
    const received: IntroduceResponse[] = [];
    let error: unknown;
    // The client's and the server's deadlines run on the faked clock: the
    // deadline passes when the test advances it, after the first messages.
    // The implementation paces itself with the real timers.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      const messages = transport
        .client()
        .introduce({ name }, { timeoutMs: 100 })
        [Symbol.asyncIterator]();
      while (received.length < 3) received.push((await messages.next()).value!);
      vi.advanceTimersByTime(99);
      expect(probe.signal?.aborted).toBe(false);
      received.push((await messages.next()).value!);
      vi.advanceTimersByTime(1);
      try {
        for (
          let r = await messages.next();
          !r.done;
          r = await messages.next()
        ) {
          received.push(r.value);
        }
      } catch (e) {
        error = e;
      }
    } finally {
      vi.useRealTimers();
    }
    expect(received.length).toBeGreaterThan(3);
    expect(received.length).toBeLessThan(100);
    expect(sentencesOf(received)).toEqual(
      received.map((_, i) => `message ${i}`),
    );
    expect(isConnectError(error), String(error)).toBe(true);
    expect((error as ConnectError).code).toBe(Code.DeadlineExceeded);
    await waitUntil(
      () => probe.signal?.aborted === true && probe.finished,
      "the server to stop",
    );
  });

  it("aborting the signal mid-bidi fails the call with Canceled", async () => {
    let serverSignal: AbortSignal | undefined;
    let serverFinished = false;
    hooks.converse = async function* (requests, context) {
      serverSignal = context.signal;
      try {
        for await (const r of requests) {
          await sleep(20, context.signal);
          yield { sentence: `You said: ${r.sentence}` };
        }
      } finally {
        serverFinished = true;
      }
    };
    const controller = new AbortController();
    // Over HTTP/2 each request follows the previous answer, so the abort
    // comes mid-conversation with the request stream still open; otherwise
    // all requests go out first.
    const queue = pushQueue<{ sentence: string }>();
    queue.push({ sentence: "0" });
    const requests = transport.fullDuplex
      ? queue
      : each(Array.from({ length: 50 }, (_, i) => ({ sentence: String(i) })));
    const received: string[] = [];
    const error = await within(
      callError(async () => {
        for await (const m of transport
          .client()
          .converse(requests, { signal: controller.signal })) {
          received.push(m.sentence);
          if (received.length === 2) {
            controller.abort();
          } else {
            queue.push({ sentence: String(received.length) });
          }
        }
      }),
      "the canceled call",
    );
    expect(error.code).toBe(Code.Canceled);
    expect(received).toEqual(["You said: 0", "You said: 1"]);
    if (transport.fullDuplex) {
      // node:http2 ends the request body of a stream reset with CANCEL as if
      // the client had finished sending, before it reports the reset; an
      // implementation that then returns at once is done before its signal
      // could abort (connect-es on Node behaves the same). It must stop.
      await waitUntil(() => serverFinished, "the server to stop");
    } else {
      await waitUntil(
        () => serverSignal?.aborted === true && serverFinished,
        "the server to stop",
      );
    }
    if (transport.active() !== undefined) {
      await waitUntil(() => transport.active() === 0, "no open streams");
    }
  });

  it("a request iterable that throws fails a client-streaming call and aborts the server", async () => {
    let serverSignal: AbortSignal | undefined;
    let serverGot = 0;
    let serverError: unknown;
    hooks.pontificate = async (requests, context) => {
      serverSignal = context.signal;
      try {
        for await (const _ of requests) serverGot++;
      } catch (e) {
        serverError = e;
        throw e;
      }
      return { sentence: "complete", count: serverGot };
    };
    const failure = new Error("the producer failed");
    async function* producer() {
      yield { sentence: "one" };
      yield { sentence: "two" };
      await waitUntil(() => serverGot === 2, "the server to read two");
      throw failure;
    }
    let error: unknown;
    await within(
      transport
        .client()
        .pontificate(producer())
        .then(
          () => {
            error = "resolved";
          },
          (e: unknown) => {
            error = e;
          },
        ),
      "the failed call",
    );
    expect(error === failure || isConnectError(error), String(error)).toBe(
      true,
    );
    if (transport.active() === undefined) {
      // In process there is no connection to lose: the failure reaches the
      // server as the failure of the request body, which it reads: canceled,
      // as a client gone mid-upload, with the failure as the cause only.
      await waitUntil(
        () => serverError !== undefined,
        "the server's read to fail",
      );
      expect(isConnectError(serverError), String(serverError)).toBe(true);
      expect((serverError as { code: unknown }).code).toBe(Code.Canceled);
      expect(String((serverError as { cause: unknown }).cause)).toContain(
        "the producer failed",
      );
    } else {
      await waitUntil(
        () => serverSignal?.aborted === true,
        "the server's signal to abort",
      );
      await waitUntil(() => transport.active() === 0, "no open streams");
    }
  });
});

// ---------------------------------------------------------------------------
// 5. Receive limits and malformed responses.

describe("readMaxBytes", () => {
  const big = "x".repeat(2000);

  // Over h2c (http2 transport) in every protocol, and over node:http (fetch
  // transport) in those that run there.
  const servers = [
    { name: "h2c", http2: true, server: () => oursH2c },
    { name: "node:http", http2: false, server: () => oursHttp },
  ];
  const cases = servers.flatMap((server) =>
    protocolsOver(server.http2).flatMap((protocol) =>
      (
        [
          ["uncompressed", { compressions: [] }],
          ["compressed", {}],
        ] as const
      ).map(
        ([compressed, options]) =>
          [
            `${server.name}, ${protocol}, ${compressed}`,
            server,
            protocol,
            options,
          ] as const,
      ),
    ),
  );

  it.each(cases)(
    "a 2000-byte server message with readMaxBytes 1000 fails with ResourceExhausted (%s)",
    async (_, server, protocol, options) => {
      hooks.introduce = async function* () {
        yield { sentence: "small" };
        yield { sentence: big };
      };
      hooks.pontificate = async (requests) => {
        for await (const _ of requests);
        return { sentence: big };
      };
      const client = createElizaServiceClient(server.server().url, {
        transport: server.http2 ? "http2" : "fetch",
        protocol: elizaProtocols[protocol],
        readMaxBytes: 1000,
        ...options,
      });
      const { received, error } = await within(
        drain(client.introduce({ name })),
        "introduce",
      );
      expect(sentencesOf(received)).toEqual(["small"]);
      expect(isConnectError(error), String(error)).toBe(true);
      expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
      const e = await callError(() =>
        within(client.pontificate([{ sentence: "a" }]), "pontificate"),
      );
      expect(e.code).toBe(Code.ResourceExhausted);
      await waitUntil(() => server.server().active() === 0, "no open streams");
    },
  );
});

describe("malformed responses from a hand-written HTTP/2 server", () => {
  const encoder = new TextEncoder();
  const messageBytes = (sentence: string) =>
    toBinary(
      IntroduceResponseSchema,
      create(IntroduceResponseSchema, { sentence }),
    );
  const message = (sentence: string) =>
    envelopeEncode(0, messageBytes(sentence));
  const gzipped = (sentence: string) =>
    envelopeEncode(envelopeFlagCompressed, gzipSync(messageBytes(sentence)));
  const corrupt = envelopeEncode(
    envelopeFlagCompressed,
    new Uint8Array([1, 2, 3, 4]),
  );

  interface Scenario {
    readonly status?: number;
    /** On top of the protocol's proto content type. */
    readonly header?: Record<string, string>;
    readonly body: readonly Uint8Array[];
    /** HTTP trailers after the body (where gRPC sends the status). */
    readonly trailers?: Record<string, string>;
    /** Reset the stream with this code after the body instead of ending it. */
    readonly reset?: number;
    /** What the client must make of it: the code, whether "one" arrives first, the message. */
    readonly expected: readonly [Code, boolean, string?];
  }

  /** Failures outside the protocol, the same in all three. */
  const common: Record<string, Scenario> = {
    "HTTP 404 without an error body": {
      status: 404,
      header: { "content-type": "text/plain" },
      body: [encoder.encode("404 page not found")],
      expected: [Code.Unimplemented, false],
    },
    "HTTP 503 without a body": {
      status: 503,
      body: [],
      expected: [Code.Unavailable, false],
    },
    "HTTP 400 without an error body": {
      status: 400,
      header: { "content-type": "text/html" },
      body: [encoder.encode("<h1>bad</h1>")],
      expected: [Code.Internal, false],
    },
    // HTTP/2 error codes map to codes as in the gRPC spec.
    "a stream reset with INTERNAL_ERROR after one message": {
      body: [message("one")],
      reset: http2.constants.NGHTTP2_INTERNAL_ERROR,
      expected: [Code.Internal, true],
    },
    "a stream reset with CANCEL after one message": {
      body: [message("one")],
      reset: http2.constants.NGHTTP2_CANCEL,
      expected: [Code.Canceled, true],
    },
  };

  const end = (json: string) =>
    envelopeEncode(envelopeFlagEndStream, encoder.encode(json));
  const grpcOk = { trailers: { "grpc-status": "0" } };
  const webTrailers = (text: string) =>
    envelopeEncode(envelopeFlagTrailers, encoder.encode(text));
  const webOk = webTrailers("grpc-status: 0\r\n");

  // Each protocol ends a response its own way, and so breaks in its own
  // ways. A truncated message is internal in all three (the conformance
  // suite's expectation); corrupt compressed data is
  // invalid_argument in all three, as connect-go has it.
  const scenarios: Record<Protocol, Record<string, Scenario>> = {
    connect: {
      "truncated final frame": {
        body: [message("one"), end("{}").subarray(0, 6)],
        expected: [Code.Internal, true],
      },
      "truncated frame header": {
        body: [message("one"), message("two").subarray(0, 3)],
        expected: [Code.Internal, true],
      },
      "truncated message": {
        body: [message("one"), message("two").subarray(0, 7)],
        expected: [Code.Internal, true],
      },
      "no end-of-stream message": {
        body: [message("one")],
        expected: [Code.Internal, true],
      },
      "corrupt end-of-stream JSON": {
        body: [message("one"), end("{not json")],
        expected: [Code.Internal, true],
      },
      "end-of-stream JSON that is not an object": {
        body: [message("one"), end("[1]")],
        expected: [Code.Internal, true],
      },
      "end-of-stream metadata of the wrong shape": {
        body: [message("one"), end('{"metadata":{"x-a":"not a list"}}')],
        expected: [Code.Internal, true],
      },
      "data after the end-of-stream message": {
        body: [message("one"), end("{}"), message("two")],
        expected: [Code.Internal, true],
      },
      "a compressed frame without connect-content-encoding": {
        body: [message("one"), gzipped("two"), end("{}")],
        expected: [Code.Internal, true],
      },
      "corrupt compressed data": {
        header: { "connect-content-encoding": "gzip" },
        body: [message("one"), corrupt, end("{}")],
        expected: [Code.InvalidArgument, true],
      },
      "an unsupported connect-content-encoding": {
        header: { "connect-content-encoding": "snappy" },
        body: [message("one"), end("{}")],
        expected: [Code.Internal, false],
      },
      // Not a Connect stream at all: unknown, as connect-go has it.
      "a unary content type": {
        header: { "content-type": "application/proto" },
        body: [message("one"), end("{}")],
        expected: [Code.Unknown, false],
      },
      "an end-of-stream error without a code": {
        body: [message("one"), end('{"error":{"message":"no code"}}')],
        expected: [Code.Unknown, true, "no code"],
      },
      "HTTP 404 with a Connect error": {
        status: 404,
        header: { "content-type": "application/json" },
        body: [encoder.encode('{"code":"not_found","message":"nope"}')],
        expected: [Code.NotFound, false, "nope"],
      },
      "HTTP 503 with a Connect error": {
        status: 503,
        header: { "content-type": "application/json" },
        body: [
          encoder.encode('{"code":"resource_exhausted","message":"busy"}'),
        ],
        expected: [Code.ResourceExhausted, false, "busy"],
      },
      ...common,
    },
    grpc: {
      "truncated frame header": {
        body: [message("one"), message("two").subarray(0, 3)],
        ...grpcOk,
        expected: [Code.Internal, true],
      },
      "truncated message": {
        body: [message("one"), message("two").subarray(0, 7)],
        ...grpcOk,
        expected: [Code.Internal, true],
      },
      "no trailers": {
        body: [message("one")],
        expected: [Code.Internal, true],
      },
      "trailers without grpc-status": {
        body: [message("one")],
        trailers: { "x-other": "1" },
        expected: [Code.Internal, true],
      },
      "a grpc-status that is not a number": {
        body: [message("one")],
        trailers: { "grpc-status": "ok" },
        expected: [Code.Internal, true],
      },
      "a grpc-status that is no code": {
        body: [message("one")],
        trailers: { "grpc-status": "99" },
        expected: [Code.Unknown, true],
      },
      "an error status after one message": {
        body: [message("one")],
        trailers: { "grpc-status": "9", "grpc-message": "not%20now" },
        expected: [Code.FailedPrecondition, true, "not now"],
      },
      "a trailers-only error": {
        header: { "grpc-status": "5", "grpc-message": "gone" },
        body: [],
        expected: [Code.NotFound, false, "gone"],
      },
      "a trailers-only response with a message": {
        header: { "grpc-status": "0" },
        body: [message("one")],
        // The body is read before it is known that no trailers follow.
        expected: [Code.Internal, true],
      },
      "a compressed frame without grpc-encoding": {
        body: [message("one"), gzipped("two")],
        ...grpcOk,
        expected: [Code.Internal, true],
      },
      "corrupt compressed data": {
        header: { "grpc-encoding": "gzip" },
        body: [message("one"), corrupt],
        ...grpcOk,
        expected: [Code.InvalidArgument, true],
      },
      "an unsupported grpc-encoding": {
        header: { "grpc-encoding": "snappy" },
        body: [message("one")],
        ...grpcOk,
        expected: [Code.Internal, false],
      },
      "a Connect content type": {
        header: { "content-type": "application/connect+proto" },
        body: [message("one")],
        ...grpcOk,
        expected: [Code.Unknown, false],
      },
      "JSON where proto was asked for": {
        header: { "content-type": "application/grpc+json" },
        body: [message("one")],
        ...grpcOk,
        expected: [Code.Internal, false],
      },
      "an envelope with an unknown flag": {
        body: [message("one"), envelopeEncode(0x02, messageBytes("two"))],
        ...grpcOk,
        expected: [Code.Internal, true],
      },
      ...common,
    },
    "grpc-web": {
      "truncated final frame": {
        body: [message("one"), webOk.subarray(0, 6)],
        expected: [Code.Internal, true],
      },
      "truncated frame header": {
        body: [message("one"), message("two").subarray(0, 3)],
        expected: [Code.Internal, true],
      },
      "truncated message": {
        body: [message("one"), message("two").subarray(0, 7)],
        expected: [Code.Internal, true],
      },
      "no trailers envelope": {
        body: [message("one")],
        expected: [Code.Internal, true],
      },
      "HTTP trailers instead of a trailers envelope": {
        body: [message("one")],
        ...grpcOk,
        expected: [Code.Internal, true],
      },
      "trailers without grpc-status": {
        body: [message("one"), webTrailers("x-other: 1\r\n")],
        expected: [Code.Internal, true],
      },
      "a trailer line without a colon": {
        body: [message("one"), webTrailers("grpc-status 0\r\n")],
        expected: [Code.Internal, true],
      },
      "an error status after one message": {
        body: [
          message("one"),
          webTrailers("grpc-status: 9\r\ngrpc-message: not%20now\r\n"),
        ],
        expected: [Code.FailedPrecondition, true, "not now"],
      },
      "data after the trailers": {
        body: [message("one"), webOk, message("two")],
        expected: [Code.Internal, true],
      },
      "the status in the headers, without a body": {
        header: { "grpc-status": "5", "grpc-message": "gone" },
        body: [],
        expected: [Code.NotFound, false, "gone"],
      },
      "a compressed frame without grpc-encoding": {
        body: [message("one"), gzipped("two"), webOk],
        expected: [Code.Internal, true],
      },
      "corrupt compressed data": {
        header: { "grpc-encoding": "gzip" },
        body: [message("one"), corrupt, webOk],
        expected: [Code.InvalidArgument, true],
      },
      "an unsupported grpc-encoding": {
        header: { "grpc-encoding": "snappy" },
        body: [message("one"), webOk],
        expected: [Code.Internal, false],
      },
      "a gRPC content type": {
        header: { "content-type": "application/grpc+proto" },
        body: [message("one"), webOk],
        expected: [Code.Unknown, false],
      },
      "an envelope with an unknown flag": {
        body: [
          message("one"),
          envelopeEncode(0x02, messageBytes("two")),
          webOk,
        ],
        expected: [Code.Internal, true],
      },
      ...common,
    },
  };

  /** The protocol of a request, by its content type. */
  const protocolOf = (contentType: string | undefined): Protocol =>
    contentType?.startsWith("application/grpc-web") === true
      ? "grpc-web"
      : contentType?.startsWith("application/grpc") === true
        ? "grpc"
        : "connect";

  let url: string;

  beforeAll(async () => {
    url = await serveOn("h2c", (req, res) => {
      const response = res as http2.Http2ServerResponse;
      // Whatever the client sends is read and dropped.
      req.resume();
      if (req.url?.endsWith("/Say")) {
        // A unary response reset (CANCEL) before its body ended: what
        // arrived would decode as a valid, empty message.
        response.writeHead(200, {
          "content-type": req.headers["content-type"] ?? "",
        });
        response.write(new Uint8Array(0));
        setTimeout(
          () => response.stream.close(http2.constants.NGHTTP2_CANCEL),
          10,
        );
        return;
      }
      const protocol = protocolOf(req.headers["content-type"]);
      const scenario = scenarios[protocol][String(req.headers["x-scenario"])];
      if (scenario === undefined) {
        response.writeHead(500);
        response.end();
        return;
      }
      response.writeHead(scenario.status ?? 200, {
        "content-type": wires[protocol].contentType(true),
        ...scenario.header,
      });
      for (const chunk of scenario.body) response.write(chunk);
      if (scenario.reset !== undefined) {
        response.stream.close(scenario.reset);
        return;
      }
      if (scenario.trailers !== undefined) {
        response.addTrailers(scenario.trailers);
      }
      response.end();
    });
  });

  it.each(protocolsOver(true))(
    "a unary response reset before its body ended fails with Canceled, not an empty message (%s)",
    async (protocol) => {
      const client = createElizaServiceClient(url, {
        transport: "http2",
        protocol: elizaProtocols[protocol],
      });
      const error = await callError(() =>
        within(client.say({ sentence: "hi" }), "say"),
      );
      expect(error.code).toBe(Code.Canceled);
    },
  );

  const kinds = ["introduce", "pontificate", "converse"] as const;
  const cases = protocolsOver(true).flatMap((protocol) =>
    Object.keys(scenarios[protocol]).flatMap((s) =>
      kinds.map((k) => [protocol, s, k] as const),
    ),
  );

  it.each(cases)("%s: %s (%s)", async (protocol, scenario, kind) => {
    const [code, firstArrives, rawMessage] =
      scenarios[protocol][scenario]!.expected;
    const client = createElizaServiceClient(url, {
      transport: "http2",
      protocol: elizaProtocols[protocol],
    });
    const options = { headers: { "x-scenario": scenario } };
    let received: string[] = [];
    let error: unknown;
    const run = async () => {
      switch (kind) {
        case "introduce": {
          const r = await drain(client.introduce({ name }, options));
          received = sentencesOf(r.received);
          error = r.error;
          break;
        }
        case "converse": {
          const r = await drain(
            client.converse(each([{ sentence: "hi" }]), options),
          );
          received = sentencesOf(r.received);
          error = r.error;
          break;
        }
        case "pontificate":
          try {
            await client.pontificate([{ sentence: "hi" }], options);
            error = "resolved";
          } catch (e) {
            error = e;
          }
          break;
      }
    };
    await within(run(), `${scenario} (${kind})`);
    expect(isConnectError(error), String(error)).toBe(true);
    const e = error as ConnectError;
    expect(e.code, e.message).toBe(code);
    // A client-streaming call has no messages to show, only its failure.
    if (kind !== "pontificate") {
      expect(received).toEqual(firstArrives ? ["one"] : []);
    }
    if (rawMessage !== undefined) expect(e.rawMessage).toBe(rawMessage);
  });
});

// ---------------------------------------------------------------------------
// 6. Backpressure on the request stream, and a server that answers before
// reading every request.

describe.each(oursCombos)("backpressure, $name, $protocol", (transport) => {
  it("a slow server holds back the request generator; the answer ends the call and closes it", async () => {
    const mib = "m".repeat(1024 * 1024);
    let serverRead = 0;
    // The server reads one message, then answers only when the test says.
    const answer = settable();
    hooks.pontificate = async (requests) => {
      const iterator = requests[Symbol.asyncIterator]();
      await iterator.next();
      serverRead++;
      await answer.promise;
      return { sentence: "enough", count: serverRead };
    };
    let produced = 0;
    let finallyRan = false;
    async function* producer() {
      try {
        for (let i = 0; i < 2000; i++) {
          produced++;
          yield { sentence: mib };
        }
      } finally {
        finallyRan = true;
      }
    }
    const call = transport
      .client()
      .pontificate(producer())
      .then(
        (response) => ({ response, error: undefined }),
        (error: unknown) => ({ response: undefined, error }),
      );
    await waitUntil(() => serverRead === 1, "the server to read one message");
    // A while for the producer to run ahead, if nothing held it back.
    await sleep(400);
    // The server is not reading: flow control and drain stop the producer.
    expect(produced).toBeLessThan(64);
    answer.fire();
    expect(await within(call, "the call to end")).toEqual({
      response: create(PontificateResponseSchema, {
        sentence: "enough",
        count: 1,
      }),
      error: undefined,
    });
    // The call is over: what the generator would still produce is not wanted.
    await waitUntil(() => finallyRan, "the generator to be closed");
    expect(produced).toBeLessThan(64);
    if (transport.active() !== undefined) {
      await waitUntil(() => transport.active() === 0, "no open streams");
    }
  });

  it("a slow server holds back the request generator until the call is aborted", async () => {
    const mib = "m".repeat(1024 * 1024);
    let serverRead = 0;
    let serverSignal: AbortSignal | undefined;
    hooks.pontificate = async (requests, context) => {
      serverSignal = context.signal;
      for await (const _ of requests) {
        serverRead++;
        await sleep(250, context.signal);
      }
      return { sentence: "all read", count: serverRead };
    };
    let produced = 0;
    let finallyRan = false;
    async function* producer() {
      try {
        for (let i = 0; i < 2000; i++) {
          produced++;
          yield { sentence: mib };
        }
      } finally {
        finallyRan = true;
      }
    }
    const controller = new AbortController();
    const call = callError(() =>
      transport.client().pontificate(producer(), { signal: controller.signal }),
    );
    await waitUntil(() => serverRead === 1, "the server to read one message");
    await sleep(500);
    expect(produced).toBeLessThan(64);
    controller.abort();
    const error = await within(call, "the aborted call");
    expect(error.code).toBe(Code.Canceled);
    await waitUntil(() => finallyRan, "the generator to be closed");
    expect(produced).toBeLessThan(64);
    if (transport.active() !== undefined) {
      // HTTP/2 resets the stream at once. Over HTTP/1.1 the client can only
      // close the connection, and the server sees that only after reading
      // what the socket buffers still hold, at four messages a second here.
      await waitUntil(
        () => serverSignal?.aborted === true,
        "the server's signal to abort",
      );
      await waitUntil(() => transport.active() === 0, "no open streams");
    }
  });

  it("a bidi call the server ends early completes and closes the request generator", async () => {
    hooks.converse = async function* (requests) {
      for await (const r of requests) {
        yield { sentence: `only ${r.sentence}` };
        return;
      }
    };
    let produced = 0;
    let finallyRan = false;
    async function* producer() {
      try {
        for (let i = 0; i < 1000; i++) {
          produced++;
          yield { sentence: String(i) };
          await sleep(10);
        }
      } finally {
        finallyRan = true;
      }
    }
    const { received, error } = await within(
      drain(transport.client().converse(producer())),
      "the call",
    );
    expect(error).toBeUndefined();
    expect(sentencesOf(received)).toEqual(["only 0"]);
    await waitUntil(() => finallyRan, "the generator to be closed");
    expect(produced).toBeLessThan(1000);
    if (transport.active() !== undefined) {
      await waitUntil(() => transport.active() === 0, "no open streams");
    }
  });
});

// ---------------------------------------------------------------------------
// 7. Client interceptors see streaming calls.

/** Appends `suffix` to the message's sentence (or name, for IntroduceRequest). */
function rewrite(message: Message, suffix: string): Message {
  const m = message as Message & { sentence?: unknown; name?: unknown };
  if (typeof m.sentence === "string") {
    return { ...m, sentence: m.sentence + suffix } as Message;
  }
  if (typeof m.name === "string") {
    return { ...m, name: m.name + suffix } as Message;
  }
  return message;
}

async function* mapMessages(
  source: AsyncIterable<Message>,
  map: (message: Message) => Message,
): AsyncGenerator<Message> {
  for await (const message of source) yield map(message);
}

describe.each(oursCombos)(
  "client interceptors, $name, $protocol",
  (transport) => {
    it("see streaming calls, rewrite requests and responses, and add headers", async () => {
      const log: string[] = [];
      let requestCount = 0;
      let responseCount = 0;
      const outer: Interceptor = (next) => async (request) => {
        log.push(`outer> ${request.method.name} stream=${request.stream}`);
        const response = await next(request);
        log.push(`<outer ${request.method.name}`);
        return response;
      };
      const inner: Interceptor = (next) => async (request) => {
        log.push(`inner> ${request.method.name}`);
        request.header.set("x-intercepted", request.method.name);
        if (!request.stream) return next(request);
        const response = await next({
          ...request,
          message: mapMessages(request.message, (m) => {
            requestCount++;
            return rewrite(m, " +req");
          }),
        });
        if (!response.stream) return response;
        return {
          ...response,
          message: mapMessages(response.message, (m) => {
            responseCount++;
            return rewrite(m, " +res");
          }),
        };
      };
      const client = transport.client({ interceptors: [outer, inner] });

      const introduced: string[] = [];
      for await (const m of client.introduce({ name: "Bo" })) {
        introduced.push(m.sentence);
      }
      expect(introduced).toEqual(
        introduceSentences("Bo +req").map((s) => `${s} +res`),
      );
      expect(seenHeaders?.get("x-intercepted")).toBe("Introduce");
      expect([requestCount, responseCount]).toEqual([1, 4]);

      const pontificated = await client.pontificate.raw([
        { sentence: "a" },
        { sentence: "b" },
      ]);
      expect(pontificated.message).toEqual(
        create(PontificateResponseSchema, {
          sentence: "a +req|b +req +res",
          count: 2,
        }),
      );
      // Headers and trailers come through the interceptors' response.
      expect(pontificated.header.get("x-kind")).toBe("client_streaming");
      expect(pontificated.trailer.get("x-sent")).toBe("1");
      expect(seenHeaders?.get("x-intercepted")).toBe("Pontificate");
      expect([requestCount, responseCount]).toEqual([3, 5]);

      const result = await client.converse.raw(
        each([{ sentence: "x" }, { sentence: "y" }]),
      );
      expect(sentencesOf((await drain(result.messages)).received)).toEqual([
        "You said: x +req +res",
        "You said: y +req +res",
      ]);
      expect(result.trailer.get("x-sent")).toBe("2");
      expect(seenHeaders?.get("x-intercepted")).toBe("Converse");
      expect([requestCount, responseCount]).toEqual([5, 7]);

      // A unary call goes through the same interceptors, as stream=false.
      expect(await client.say({ sentence: "plain" })).toEqual(
        create(SayResponseSchema, { sentence: "plain" }),
      );
      expect(log).toEqual([
        "outer> Introduce stream=true",
        "inner> Introduce",
        "<outer Introduce",
        "outer> Pontificate stream=true",
        "inner> Pontificate",
        "<outer Pontificate",
        "outer> Converse stream=true",
        "inner> Converse",
        "<outer Converse",
        "outer> Say stream=false",
        "inner> Say",
        "<outer Say",
      ]);
    });

    it("an interceptor that throws fails the streaming call before anything is sent", async () => {
      let reached = false;
      hooks.introduce = async function* () {
        reached = true;
        yield { sentence: "unreachable" };
      };
      const client = transport.client({
        interceptors: [
          () => async () => {
            throw new ConnectError("refused here", Code.PermissionDenied);
          },
        ],
      });
      const { received, error } = await drain(client.introduce({ name }));
      expect(received).toEqual([]);
      expect(isConnectError(error)).toBe(true);
      expect((error as ConnectError).code).toBe(Code.PermissionDenied);
      expect(reached).toBe(false);
    });
  },
);
