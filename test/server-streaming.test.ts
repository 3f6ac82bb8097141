// Streaming on our generated server, all three kinds, in every protocol the
// transport can carry (Connect and gRPC-Web everywhere, gRPC only on the node
// handler over node:http2, the one place with HTTP trailers), driven by
// @connectrpc/connect-node clients, by raw node:http / node:http2 requests
// framed by hand, and by buf curl: on node:http, node:http2 (h2c), and the
// fetch handler (served through a small node:http / node:http2 adapter, and
// called directly with `Request` objects).

import { execFile } from "node:child_process";
import * as http from "node:http";
import * as http2 from "node:http2";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { gzipSync, gunzipSync } from "node:zlib";
import {
  create,
  fromBinary,
  toBinary,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code as EsCode,
  ConnectError as EsConnectError,
  createClient,
  type Client,
} from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  envelopeEncode,
  envelopeFlagCompressed,
  envelopeFlagEndStream,
  envelopeFlagTrailers,
} from "../runtime-inline/core/envelope.ts";
import {
  Code,
  ConnectError,
  createElizaServiceHandler,
  type ElizaServiceImplementation,
  type FetchHandler,
  type Interceptor,
  type NodeServiceHandler,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  ConverseRequestSchema,
  ConverseResponseSchema,
  ElizaService,
  IntroduceRequestSchema,
  IntroduceResponseSchema,
  PontificateRequestSchema,
  SayResponseSchema,
} from "./gen/eliza/v1/eliza_pb.ts";
import {
  startServer,
  startStreamServer,
  type StreamListener,
  type NodeListener,
  type StartedServer,
} from "./support/servers.ts";
import { specCodeNames } from "./support/code-names.ts";
import {
  rawRequest,
  type RawRequestInit,
  type RawResponse,
} from "./support/raw-http.ts";

const fixturesDir = join(
  dirname(fileURLToPath(import.meta.url)),
  "../fixtures",
);
const bufBin = join(
  dirname(fileURLToPath(import.meta.url)),
  "../node_modules/.bin/buf",
);

const servicePath = "/connectrpc.eliza.v1.ElizaService";
const introducePath = `${servicePath}/Introduce`;
const pontificatePath = `${servicePath}/Pontificate`;
const conversePath = `${servicePath}/Converse`;
const readMaxBytes = 64 * 1024;

// ---------------------------------------------------------------------------
// Process-level failures: none may happen while this file runs.

const processFailures: unknown[] = [];
const onFailure = (reason: unknown) => {
  processFailures.push(reason);
};

// ---------------------------------------------------------------------------
// Helpers.

// The real timers, taken before any test fakes them: the implementation's
// pacing and the helpers' polling keep running while a test drives the
// deadlines of the client and the server with vitest's fake timers.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
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
    if (performance.now() > deadline)
      throw new Error(`timed out waiting for ${what}`);
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

/** A promise the test settles: what an implementation waits for instead of a length of time. */
function settable(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

/** Gates by call id, opened by the test (see slow-start). */
const gates = new Map<string, ReturnType<typeof settable>>();
function gateOf(id: string): ReturnType<typeof settable> {
  let gate = gates.get(id);
  if (gate === undefined) gates.set(id, (gate = settable()));
  return gate;
}

async function rejection(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail");
}

let nextId = 0;
const uniqueId = () => `call-${++nextId}`;

/** Request messages as the async iterable a streaming call takes. */
async function* each<T>(...items: T[]): AsyncGenerator<T> {
  yield* items;
}

/** An async iterable fed by `push`, for requests sent one by one. */
function pushQueue<T>(): AsyncIterable<T> & {
  push(value: T): void;
  close(): void;
} {
  const items: T[] = [];
  let closed = false;
  let waiting: ((result: IteratorResult<T>) => void) | undefined;
  return {
    push(value) {
      if (waiting !== undefined) {
        const w = waiting;
        waiting = undefined;
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
        throw(e: unknown): Promise<IteratorResult<T>> {
          closed = true;
          return Promise.reject(e);
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------
// The implementation under test. The introduce name selects a behaviour.

/** What one implementation call went through, by the id in its request. */
interface Probe {
  produced: number;
  aborted: unknown;
  finallyRan: boolean;
}
const probes = new Map<string, Probe>();
function newProbe(id: string, signal: AbortSignal): Probe {
  const probe: Probe = { produced: 0, aborted: undefined, finallyRan: false };
  probes.set(id, probe);
  signal.addEventListener(
    "abort",
    () => {
      probe.aborted = signal.reason ?? "aborted";
    },
    { once: true },
  );
  return probe;
}
function probeOf(id: string): Probe {
  const probe = probes.get(id);
  if (probe === undefined) throw new Error(`no call ${id} reached the server`);
  return probe;
}

// Over the 1024-byte compressMinBytes, and repetitive: compressed both ways.
const longSentence = "I am Eliza, and I compress rather well. ".repeat(100);
// 1 MiB of response per message for the backpressure tests.
const bigSentence = "x".repeat(1024 * 1024);
const errorDetail = { sentence: "the detail" };

/** Events of converse calls, by the sentence prefix "<id>/". */
const converseEvents = new Map<string, string[]>();

const implementation: ElizaServiceImplementation = {
  say: (request) => ({ sentence: `You said: ${request.sentence}` }),

  async *introduce(request, context) {
    const [kind, id = ""] = request.name.split(":");
    switch (kind) {
      case "endless": {
        const probe = newProbe(id, context.signal);
        try {
          for (let i = 0; ; i++) {
            probe.produced++;
            yield { sentence: `tick ${i}` };
            await sleep(10, context.signal);
          }
        } finally {
          probe.finallyRan = true;
        }
      }
      case "flood": {
        const probe = newProbe(id, context.signal);
        try {
          for (let i = 0; i < 2000; i++) {
            probe.produced++;
            yield { sentence: bigSentence };
          }
        } finally {
          probe.finallyRan = true;
        }
        return;
      }
      case "slow-start": {
        // Slow work that does not watch the signal (a query, say), then
        // messages without a look at the signal either. The work ends when
        // the test opens the call's gate.
        const probe = newProbe(id, context.signal);
        try {
          await gateOf(id).promise;
          for (let i = 0; i < 100; i++) {
            probe.produced++;
            yield { sentence: `late ${i}` };
          }
        } finally {
          probe.finallyRan = true;
        }
        return;
      }
      case "hang-after-1": {
        // Waits for the signal between messages, as an implementation
        // waiting on a signal-aware source does.
        const probe = newProbe(id, context.signal);
        try {
          probe.produced++;
          yield { sentence: "first" };
          await new Promise<void>((resolve) => {
            if (context.signal.aborted) resolve();
            context.signal.addEventListener("abort", () => resolve(), {
              once: true,
            });
          });
        } finally {
          probe.finallyRan = true;
        }
        return;
      }
      case "fail-after-2":
        context.responseHeaders.set("x-introduce-header", "h");
        context.responseTrailers.set("x-trailer-early", "early");
        yield { sentence: "one" };
        yield { sentence: "two" };
        context.responseTrailers.set("x-trailer-late", "late");
        throw new ConnectError("it broke mid-stream", Code.FailedPrecondition, {
          metadata: { "x-error-meta": "m" },
          details: [{ desc: SayResponseSchema, value: errorDetail }],
        });
      case "fail-first":
        context.responseHeaders.set("x-introduce-header", "h");
        context.responseTrailers.set("x-trailer-early", "early");
        throw new ConnectError("it broke at once", Code.PermissionDenied, {
          details: [{ desc: SayResponseSchema, value: errorDetail }],
        });
      default:
        context.responseHeaders.set("x-introduce-header", "h");
        context.responseTrailers.set("x-trailer-early", "early");
        yield { sentence: `Hello ${request.name}` };
        yield { sentence: longSentence };
        yield { sentence: `Goodbye ${request.name}` };
        context.responseTrailers.set("x-trailer-late", "late");
    }
  },

  async pontificate(requests, context) {
    context.responseHeaders.set("x-pontificate-header", "h");
    const sentences: string[] = [];
    for await (const request of requests) {
      if (request.sentence === "fail") {
        context.responseTrailers.set("x-trailer-late", "late");
        throw new ConnectError("no more", Code.OutOfRange, {
          details: [{ desc: SayResponseSchema, value: errorDetail }],
        });
      }
      sentences.push(request.sentence);
    }
    context.responseTrailers.set("x-pontificate-trailer", "t");
    return {
      sentence: sentences.join("|"),
      count: sentences.length,
    };
  },

  async *converse(requests, context) {
    context.responseHeaders.set("x-converse-header", "h");
    for await (const request of requests) {
      // Sentences "<id>/<word>" log what the server did, in order.
      const slash = request.sentence.indexOf("/");
      const key = slash < 0 ? "" : request.sentence.slice(0, slash);
      const events = converseEvents.get(key) ?? [];
      if (slash >= 0) converseEvents.set(key, events);
      events.push(`received ${request.sentence}`);
      if (request.sentence.endsWith("fail")) {
        throw new ConnectError("conversation over", Code.Aborted);
      }
      yield { sentence: `Eliza heard: ${request.sentence}` };
      events.push(`answered ${request.sentence}`);
    }
    context.responseTrailers.set("x-converse-trailer", "t");
  },
};

// An interceptor that counts request messages and upper-cases responses.
interface InterceptorRecord {
  method: string;
  kind: string;
  stream: boolean;
  requests: number;
  responses: number;
}
const interceptorLog = new Map<string, InterceptorRecord>();
const countingInterceptor: Interceptor = (next) => async (request) => {
  const id = request.header.get("x-call-id") ?? "";
  const record: InterceptorRecord = {
    method: request.method.name,
    kind: request.method.kind,
    stream: request.stream,
    requests: 0,
    responses: 0,
  };
  interceptorLog.set(id, record);
  if (request.header.has("x-reject")) {
    throw new ConnectError("rejected by an interceptor", Code.Unauthenticated);
  }
  if (!request.stream) return next(request);
  const requests = request.message;
  const response = await next({
    ...request,
    message: (async function* () {
      for await (const message of requests) {
        record.requests++;
        yield message;
      }
    })(),
  });
  if (!response.stream) throw new Error("a stream answered with unary");
  const responses = response.message;
  response.header.set("x-intercepted", "yes");
  return {
    ...response,
    message: (async function* () {
      for await (const message of responses) {
        record.responses++;
        const m = message as Message & { sentence: string };
        m.sentence = m.sentence.toUpperCase();
        yield m;
      }
      response.trailer.set("x-requests-counted", String(record.requests));
    })(),
  };
};

const eliza = createElizaServiceHandler(implementation, { readMaxBytes });
const intercepted = createElizaServiceHandler(implementation, {
  readMaxBytes,
  interceptors: [countingInterceptor],
});

// ---------------------------------------------------------------------------
// Servers: the node handler, and the fetch handler through a small adapter.

/** Serves a fetch handler on node:http / node:http2, streaming both ways with backpressure. */
function fetchListener(fetch: FetchHandler): NodeListener {
  return (req, res) => {
    const controller = new AbortController();
    res.once("close", () => {
      if (!res.writableEnded) controller.abort();
    });
    const serve = async () => {
      const headers = new Headers();
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i]!;
        if (name.startsWith(":")) continue;
        headers.append(name, req.rawHeaders[i + 1]!);
      }
      const method = req.method ?? "GET";
      const hasBody = method !== "GET" && method !== "HEAD";
      const init: RequestInit & { duplex: "half" } = {
        method,
        headers,
        signal: controller.signal,
        body: hasBody
          ? (Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>)
          : null,
        duplex: "half",
      };
      const response = await fetch(
        new Request(`http://localhost${req.url ?? "/"}`, init),
      );
      const outgoing: Record<string, string> = {};
      response.headers.forEach((value, key) => (outgoing[key] = value));
      const out = res as http.ServerResponse;
      out.writeHead(response.status, outgoing);
      if (response.body === null) {
        out.end();
        return;
      }
      const reader = response.body.getReader();
      const cancel = () => void reader.cancel().catch(() => {});
      if (controller.signal.aborted) return cancel();
      controller.signal.addEventListener("abort", cancel, { once: true });
      for (;;) {
        const result = await reader.read();
        if (result.done) break;
        if (controller.signal.aborted) return;
        if (!out.write(result.value)) {
          await new Promise<void>((resolve) => {
            const go = () => {
              out.off("drain", go);
              out.off("close", go);
              resolve();
            };
            out.on("drain", go);
            out.on("close", go);
          });
        }
      }
      out.end();
    };
    serve().catch(() => res.destroy());
  };
}

interface RecordedRequest {
  httpVersion: string;
  headers: http.IncomingHttpHeaders;
}
/** Request headers by the x-call-id header. */
const requestLog = new Map<string, RecordedRequest>();
function recording(listener: NodeListener): NodeListener {
  return (req, res) => {
    const id = req.headers["x-call-id"];
    if (typeof id === "string") {
      requestLog.set(id, {
        httpVersion: req.httpVersion,
        headers: req.headers,
      });
    }
    listener(req, res);
  };
}
function recordingStream(listener: StreamListener): StreamListener {
  return (stream, headers, flags, rawHeaders) => {
    const id = headers["x-call-id"];
    if (typeof id === "string") {
      requestLog.set(id, { httpVersion: "2.0", headers });
    }
    listener(stream, headers, flags, rawHeaders);
  };
}

interface Mode {
  readonly name: string;
  readonly kind: "http" | "h2c";
  readonly httpVersion: "1.1" | "2";
  readonly fetch: boolean;
  /** Served by `handler.http2Stream` on the server's "stream" event. */
  readonly stream?: boolean;
}
const modes: readonly Mode[] = [
  {
    name: "node handler on node:http",
    kind: "http",
    httpVersion: "1.1",
    fetch: false,
  },
  {
    name: "node handler on node:http2",
    kind: "h2c",
    httpVersion: "2",
    fetch: false,
  },
  {
    name: "fetch handler on node:http",
    kind: "http",
    httpVersion: "1.1",
    fetch: true,
  },
  {
    name: "fetch handler on node:http2",
    kind: "h2c",
    httpVersion: "2",
    fetch: true,
  },
  {
    name: "http2Stream handler on node:http2",
    kind: "h2c",
    httpVersion: "2",
    fetch: false,
    stream: true,
  },
];

type Protocol = "connect" | "grpc" | "grpc-web";

/**
 * The protocols a mode carries. gRPC needs HTTP/2 trailers, which only the
 * node handler on node:http2 sends: HTTP/1.1 has none here, and neither has
 * a fetch `Response` (section 6 checks that gRPC is refused there).
 */
function protocolsOf(mode: Mode): readonly Protocol[] {
  return mode.httpVersion === "2" && !mode.fetch
    ? ["connect", "grpc", "grpc-web"]
    : ["connect", "grpc-web"];
}

/** A server mode and a protocol it carries. */
interface Combo {
  readonly name: string;
  readonly mode: Mode;
  readonly protocol: Protocol;
}
const combos: readonly Combo[] = modes.flatMap((mode) =>
  protocolsOf(mode).map((protocol) => ({
    name: `${mode.name}, ${protocol}`,
    mode,
    protocol,
  })),
);
/** The combinations as `describe.each` rows, named by their first column. */
const eachCombo = () => combos.map((c) => [c.name, c] as const);

interface Servers {
  eliza: StartedServer;
  intercepted: StartedServer;
}
const servers = new Map<Mode, Servers>();
const sessionManagers: Http2SessionManager[] = [];

function listenerOf(handler: NodeServiceHandler, mode: Mode): NodeListener {
  return recording(mode.fetch ? fetchListener(handler.fetch) : handler.node);
}

function serve(
  handler: NodeServiceHandler,
  mode: Mode,
): Promise<StartedServer> {
  if (mode.stream === true) {
    return startStreamServer(recordingStream(handler.http2Stream));
  }
  return startServer(mode.kind, listenerOf(handler, mode));
}

beforeAll(async () => {
  process.on("unhandledRejection", onFailure);
  process.on("uncaughtException", onFailure);
  for (const mode of modes) {
    servers.set(mode, {
      eliza: await serve(eliza, mode),
      intercepted: await serve(intercepted, mode),
    });
  }
});

afterAll(async () => {
  for (const manager of sessionManagers) manager.abort();
  await Promise.all(
    [...servers.values()].flatMap((s) => [
      s.eliza.close(),
      s.intercepted.close(),
    ]),
  );
  process.off("unhandledRejection", onFailure);
  process.off("uncaughtException", onFailure);
  expect(processFailures).toEqual([]);
});

interface ClientOptions {
  protocol?: Protocol;
  binary?: boolean;
  gzip?: boolean;
  intercepted?: boolean;
}
function clientFor(
  mode: Mode,
  options: ClientOptions = {},
): Client<typeof ElizaService> {
  const s = servers.get(mode)!;
  const baseUrl =
    options.intercepted === true ? s.intercepted.url : s.eliza.url;
  const common = {
    baseUrl,
    useBinaryFormat: options.binary ?? true,
    acceptCompression: options.gzip === true ? [compressionGzip] : [],
    ...(options.gzip === true ? { sendCompression: compressionGzip } : {}),
  };
  const protocol = options.protocol ?? "connect";
  if (mode.httpVersion === "1.1") {
    if (protocol === "grpc") throw new Error("gRPC needs HTTP/2");
    const create =
      protocol === "connect" ? createConnectTransport : createGrpcWebTransport;
    return createClient(
      ElizaService,
      create({ ...common, httpVersion: "1.1" }),
    );
  }
  const sessionManager = new Http2SessionManager(baseUrl);
  sessionManagers.push(sessionManager);
  const http2Options = { ...common, httpVersion: "2", sessionManager } as const;
  return createClient(
    ElizaService,
    protocol === "connect"
      ? createConnectTransport(http2Options)
      : protocol === "grpc"
        ? createGrpcTransport(http2Options)
        : createGrpcWebTransport(http2Options),
  );
}

// ---------------------------------------------------------------------------
// Raw HTTP with hand-framed envelopes.

interface RawRequest extends RawRequestInit {
  readonly path: string;
}

function sendRaw(mode: Mode, request: RawRequest): Promise<RawResponse> {
  const url = servers.get(mode)!.eliza.url;
  return rawRequest(mode.httpVersion, url + request.path, {
    ...request,
    // The server may answer and close before it has read the whole body.
    resetAfterResponseOk: true,
  });
}

interface Envelope {
  flags: number;
  data: Uint8Array;
}

/** Splits a whole response body into envelopes; a truncated one throws. */
function parseEnvelopes(body: Uint8Array): Envelope[] {
  const envelopes: Envelope[] = [];
  let pos = 0;
  while (pos < body.byteLength) {
    if (body.byteLength - pos < 5) throw new Error("truncated envelope header");
    const flags = body[pos]!;
    const length = new DataView(
      body.buffer,
      body.byteOffset + pos + 1,
      4,
    ).getUint32(0);
    if (body.byteLength - pos - 5 < length)
      throw new Error("truncated envelope");
    envelopes.push({ flags, data: body.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return envelopes;
}

/**
 * How each protocol looks on the wire, for requests framed by hand: its
 * content types, the names of its compression and timeout headers, the
 * headers its clients add, and the flag of the envelope that ends a response
 * (Connect's end-stream JSON, gRPC-Web's trailers; gRPC ends with HTTP
 * trailers, so 0x80 is just a flag no request may carry).
 */
interface Wire {
  readonly contentType: (binary: boolean) => string;
  readonly encoding: string;
  readonly acceptEncoding: string;
  readonly timeout: (value: string | number) => Record<string, string>;
  readonly extraHeaders: Record<string, string>;
  readonly endFlag: number;
  /** A well-formed payload of an end envelope, for requests that must not send one. */
  readonly endPayload: Uint8Array;
}
const wires: Record<Protocol, Wire> = {
  connect: {
    contentType: (binary) =>
      binary ? "application/connect+proto" : "application/connect+json",
    encoding: "connect-content-encoding",
    acceptEncoding: "connect-accept-encoding",
    timeout: (value) => ({
      "connect-timeout-ms": typeof value === "number" ? String(value) : value,
    }),
    extraHeaders: { "connect-protocol-version": "1" },
    endFlag: envelopeFlagEndStream,
    endPayload: new TextEncoder().encode("{}"),
  },
  grpc: {
    contentType: (binary) =>
      binary ? "application/grpc+proto" : "application/grpc+json",
    encoding: "grpc-encoding",
    acceptEncoding: "grpc-accept-encoding",
    timeout: (value) => ({
      "grpc-timeout": typeof value === "number" ? `${value}m` : value,
    }),
    extraHeaders: { te: "trailers" },
    endFlag: envelopeFlagTrailers,
    endPayload: new TextEncoder().encode("grpc-status: 0\r\n"),
  },
  "grpc-web": {
    contentType: (binary) =>
      binary ? "application/grpc-web+proto" : "application/grpc-web+json",
    encoding: "grpc-encoding",
    acceptEncoding: "grpc-accept-encoding",
    timeout: (value) => ({
      "grpc-timeout": typeof value === "number" ? `${value}m` : value,
    }),
    extraHeaders: { "x-grpc-web": "1" },
    endFlag: envelopeFlagTrailers,
    endPayload: new TextEncoder().encode("grpc-status: 0\r\n"),
  },
};

const streamHeaders = (
  protocol: Protocol = "connect",
  binary = true,
): Record<string, string> => ({
  "content-type": wires[protocol].contentType(binary),
  ...wires[protocol].extraHeaders,
});

/** The status a response ends with, whatever the protocol put it in. */
interface EndStatus {
  /** The code as Connect names it ("invalid_argument"); undefined for success. */
  code: string | undefined;
  message: string | undefined;
  details: { type: string; value: Uint8Array }[];
  /** Trailing metadata, without the protocol's own keys. */
  metadata: Record<string, string[]>;
  /** gRPC: the call failed before any message, the status in the headers. */
  trailersOnly: boolean;
}

function headersOf(
  record: Record<string, string | string[] | undefined>,
): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(record)) {
    if (key.startsWith(":") || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      headers.append(key, v);
    }
  }
  return headers;
}

/**
 * Reads a gRPC status (grpc-status, grpc-message, grpc-status-details-bin)
 * with connect-es's decoder, not ours; `ignore` are keys that are no
 * metadata (the response headers of a trailers-only response).
 */
function grpcEndStatus(
  block: Headers,
  trailersOnly: boolean,
  ignore: readonly string[] = [],
): EndStatus {
  expect(block.get("grpc-status"), "grpc-status").toMatch(/^\d+$/);
  const error = findTrailerError(block);
  const metadata: Record<string, string[]> = {};
  block.forEach((value, key) => {
    if (key.startsWith("grpc-") || ignore.includes(key)) return;
    (metadata[key] ??= []).push(value);
  });
  return {
    code: error === undefined ? undefined : specCodeNames[error.code - 1],
    message: error?.rawMessage,
    // Details read from the wire are all { type, value }.
    details: (error?.details ?? []).map((d) => {
      const { type, value } = d as { type: string; value: Uint8Array };
      return { type, value };
    }),
    metadata,
    trailersOnly,
  };
}

/**
 * The messages (payloads) of a raw response and its status, which must come
 * once and last: Connect's end-stream message, gRPC's HTTP trailers (or the
 * headers of a trailers-only response), gRPC-Web's trailers envelope.
 */
function parseStream(
  protocol: Protocol,
  raw: RawResponse,
): {
  messages: Envelope[];
  end: EndStatus;
} {
  const envelopes = parseEnvelopes(raw.body);
  let messages = envelopes;
  let end: EndStatus;
  switch (protocol) {
    case "connect": {
      const last = envelopes.at(-1);
      if (last === undefined || last.flags !== envelopeFlagEndStream) {
        throw new Error("the stream does not end with an end-stream message");
      }
      messages = envelopes.slice(0, -1);
      const json = JSON.parse(new TextDecoder().decode(last.data)) as {
        error?: {
          code: string;
          message?: string;
          details?: { type: string; value: string }[];
        };
        metadata?: Record<string, string[]>;
      };
      end = {
        code: json.error?.code,
        message: json.error?.message,
        details: (json.error?.details ?? []).map((d) => ({
          type: d.type,
          value: Buffer.from(d.value, "base64"),
        })),
        metadata: json.metadata ?? {},
        trailersOnly: false,
      };
      break;
    }
    case "grpc": {
      const trailers = headersOf(raw.trailers);
      if (trailers.has("grpc-status")) {
        end = grpcEndStatus(trailers, false);
      } else {
        // Trailers-only: no body, and the status with the headers.
        expect(raw.body.byteLength, "a trailers-only response's body").toBe(0);
        end = grpcEndStatus(headersOf(raw.headers), true, [
          "content-type",
          "date",
        ]);
      }
      break;
    }
    case "grpc-web": {
      const last = envelopes.at(-1);
      if (last === undefined || last.flags !== envelopeFlagTrailers) {
        throw new Error("the stream does not end with a trailers envelope");
      }
      messages = envelopes.slice(0, -1);
      expect(raw.trailers).toEqual({});
      end = grpcEndStatus(trailerParse(last.data), false);
      break;
    }
  }
  for (const m of messages) {
    expect(m.flags & ~envelopeFlagCompressed, "a message's flags").toBe(0);
  }
  return { messages, end };
}

const introduceFrame = (name: string) =>
  envelopeEncode(
    0,
    toBinary(IntroduceRequestSchema, create(IntroduceRequestSchema, { name })),
  );
const converseBytes = (sentence: string) =>
  toBinary(ConverseRequestSchema, create(ConverseRequestSchema, { sentence }));
const pontificateFrame = (sentence: string) =>
  envelopeEncode(
    0,
    toBinary(
      PontificateRequestSchema,
      create(PontificateRequestSchema, { sentence }),
    ),
  );

/** A normal call of every kind still works on this mode's server. */
async function expectServing(
  mode: Mode,
  protocol: Protocol = "connect",
): Promise<void> {
  const client = clientFor(mode, { protocol });
  const sentences: string[] = [];
  for await (const m of client.introduce({ name: "still here" })) {
    sentences.push(m.sentence);
  }
  expect(sentences).toEqual([
    "Hello still here",
    longSentence,
    "Goodbye still here",
  ]);
  const raw = await sendRaw(mode, {
    path: introducePath,
    headers: streamHeaders(protocol),
    body: [introduceFrame("raw")],
  });
  expect(raw.status).toBe(200);
  const { messages, end } = parseStream(protocol, raw);
  expect(end.code).toBeUndefined();
  expect(
    messages.map((m) => fromBinary(IntroduceResponseSchema, m.data).sentence),
  ).toEqual(["Hello raw", longSentence, "Goodbye raw"]);
}

function expectEsError(e: unknown, code: EsCode): EsConnectError {
  expect(e).toBeInstanceOf(EsConnectError);
  const error = e as EsConnectError;
  expect(error.code, error.message).toBe(code);
  return error;
}

// ---------------------------------------------------------------------------

describe.each(eachCombo())("%s", (_, { mode, protocol }) => {
  const wire = wires[protocol];
  const clientOf = (options: ClientOptions = {}) =>
    clientFor(mode, { ...options, protocol });
  describe("1. every kind, both codecs, identity and gzip", () => {
    const matrix = [true, false].flatMap((binary) =>
      [false, true].map(
        (gzip) =>
          [
            `${binary ? "binary" : "JSON"} ${gzip ? "gzip" : "identity"}`,
            binary,
            gzip,
          ] as const,
      ),
    );

    /** Checks what the client sent and what the server answered about compression. */
    function expectCompression(
      id: string,
      gzip: boolean,
      header: Headers,
    ): void {
      const recorded = requestLog.get(id)!;
      expect(recorded.httpVersion).toBe(
        mode.httpVersion === "2" ? "2.0" : "1.1",
      );
      expect(recorded.headers["content-type"]).toMatch(
        protocol === "connect"
          ? /^application\/connect\+/
          : /^application\/grpc/,
      );
      // Connect's header, or grpc-encoding for gRPC and gRPC-Web.
      expect(recorded.headers[wire.encoding]).toBe(gzip ? "gzip" : undefined);
      expect(header.get(wire.encoding)).toBe(gzip ? "gzip" : null);
    }

    it.each(matrix)("%s: server streaming", async (_, binary, gzip) => {
      const client = clientOf({ binary, gzip });
      const id = uniqueId();
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const sentences: string[] = [];
      for await (const m of client.introduce(
        { name: "Ada" },
        {
          headers: { "x-call-id": id },
          onHeader: (h) => (header = h),
          onTrailer: (t) => (trailer = t),
        },
      )) {
        sentences.push(m.sentence);
      }
      expect(sentences).toEqual(["Hello Ada", longSentence, "Goodbye Ada"]);
      expect(header?.get("content-type")).toBe(wire.contentType(binary));
      expectCompression(id, gzip, header!);
      expect(trailer?.get("x-trailer-late")).toBe("late");
    });

    it.each(matrix)("%s: client streaming", async (_, binary, gzip) => {
      const client = clientOf({ binary, gzip });
      const id = uniqueId();
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const response = await client.pontificate(
        (async function* () {
          yield { sentence: "one" };
          yield { sentence: longSentence };
          yield { sentence: "" };
          yield { sentence: "four ✓" };
        })(),
        {
          headers: { "x-call-id": id },
          onHeader: (h) => (header = h),
          onTrailer: (t) => (trailer = t),
        },
      );
      expect(response.count).toBe(4);
      expect(response.sentence).toBe(`one|${longSentence}||four ✓`);
      expectCompression(id, gzip, header!);
      expect(header?.get("x-pontificate-header")).toBe("h");
      expect(trailer?.get("x-pontificate-trailer")).toBe("t");
    });

    it.each(matrix)(
      "%s: bidi streaming (all requests, then the responses)",
      async (_, binary, gzip) => {
        const client = clientOf({ binary, gzip });
        const id = uniqueId();
        let header: Headers | undefined;
        let trailer: Headers | undefined;
        const sentences: string[] = [];
        for await (const m of client.converse(
          each(
            { sentence: "hi" },
            { sentence: longSentence },
            { sentence: "bye" },
          ),
          {
            headers: { "x-call-id": id },
            onHeader: (h) => (header = h),
            onTrailer: (t) => (trailer = t),
          },
        )) {
          sentences.push(m.sentence);
        }
        expect(sentences).toEqual([
          "Eliza heard: hi",
          `Eliza heard: ${longSentence}`,
          "Eliza heard: bye",
        ]);
        expectCompression(id, gzip, header!);
        expect(header?.get("x-converse-header")).toBe("h");
        expect(trailer?.get("x-converse-trailer")).toBe("t");
      },
    );

    if (mode.httpVersion === "2") {
      it.each(matrix)(
        "%s: bidi in full duplex: each response arrives before the next request is sent",
        async (_, binary, gzip) => {
          const client = clientOf({ binary, gzip });
          const id = uniqueId();
          const requests =
            pushQueue<MessageInitShape<typeof ConverseRequestSchema>>();
          const abort = new AbortController();
          const responses = client
            .converse(requests, { signal: abort.signal })
            [Symbol.asyncIterator]();
          try {
            for (const word of ["one", "two", "three"]) {
              // Sent only once the previous answer is in: a server that
              // waited for the end of the requests would never answer.
              requests.push({ sentence: `${id}/${word}` });
              const result = await within(
                responses.next(),
                `the answer to "${word}" before the request stream ends`,
              );
              expect(result.done).toBe(false);
              expect(result.value?.sentence).toBe(`Eliza heard: ${id}/${word}`);
            }
            requests.close();
            expect((await responses.next()).done).toBe(true);
          } finally {
            abort.abort();
          }
          expect(converseEvents.get(id)).toEqual([
            `received ${id}/one`,
            `answered ${id}/one`,
            `received ${id}/two`,
            `answered ${id}/two`,
            `received ${id}/three`,
            `answered ${id}/three`,
          ]);
        },
      );
    }
  });

  describe("2. headers, trailers and errors", () => {
    it("server streaming: headers set before the first message are headers, trailers are trailers", async () => {
      const client = clientOf();
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const sentences: string[] = [];
      for await (const m of client.introduce(
        { name: "Bo" },
        { onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
      )) {
        // The headers are in before the first message.
        expect(header).toBeDefined();
        sentences.push(m.sentence);
      }
      expect(sentences).toHaveLength(3);
      expect(header!.get("x-introduce-header")).toBe("h");
      expect(header!.get("x-trailer-early")).toBeNull();
      expect(header!.get("x-trailer-late")).toBeNull();
      expect(trailer!.get("x-trailer-early")).toBe("early");
      expect(trailer!.get("x-trailer-late")).toBe("late");
      expect(trailer!.get("x-introduce-header")).toBeNull();
    });

    it("an error after 2 messages: the client sees both, then code, message, details and trailers", async () => {
      const client = clientOf();
      let header: Headers | undefined;
      const sentences: string[] = [];
      const e = await rejection(async () => {
        for await (const m of client.introduce(
          { name: "fail-after-2" },
          { onHeader: (h) => (header = h) },
        )) {
          sentences.push(m.sentence);
        }
      });
      expect(sentences).toEqual(["one", "two"]);
      const error = expectEsError(e, EsCode.FailedPrecondition);
      expect(error.rawMessage).toBe("it broke mid-stream");
      expect(error.findDetails(SayResponseSchema)).toEqual([
        expect.objectContaining(errorDetail),
      ]);
      expect(header!.get("x-introduce-header")).toBe("h");
      expect(header!.get("x-trailer-early")).toBeNull();
      // connect-es puts the trailers (and the headers) into the error's metadata.
      expect(error.metadata.get("x-trailer-early")).toBe("early");
      expect(error.metadata.get("x-trailer-late")).toBe("late");
      expect(error.metadata.get("x-error-meta")).toBe("m");

      // On the wire: the headers as HTTP headers, the trailers after the
      // messages (Connect's end-stream message, gRPC's HTTP trailers,
      // gRPC-Web's trailers envelope).
      const raw = await sendRaw(mode, {
        path: introducePath,
        headers: streamHeaders(protocol),
        body: [introduceFrame("fail-after-2")],
      });
      expect(raw.status).toBe(200);
      expect(raw.headers["x-introduce-header"]).toBe("h");
      expect(raw.headers["x-trailer-early"]).toBeUndefined();
      const { messages, end } = parseStream(protocol, raw);
      expect(
        messages.map(
          (m) => fromBinary(IntroduceResponseSchema, m.data).sentence,
        ),
      ).toEqual(["one", "two"]);
      expect(end.trailersOnly).toBe(false);
      expect(end.code).toBe("failed_precondition");
      expect(end.message).toBe("it broke mid-stream");
      expect(end.details).toHaveLength(1);
      expect(end.details[0]?.type).toBe(SayResponseSchema.typeName);
      expect(
        fromBinary(SayResponseSchema, end.details[0]!.value).sentence,
      ).toBe(errorDetail.sentence);
      expect(end.metadata).toEqual({
        "x-trailer-early": ["early"],
        "x-trailer-late": ["late"],
        "x-error-meta": ["m"],
      });
      await expectServing(mode, protocol);
    });

    it("an error before the first message: no messages, headers still headers", async () => {
      const client = clientOf({ binary: false });
      let header: Headers | undefined;
      const sentences: string[] = [];
      const e = await rejection(async () => {
        for await (const m of client.introduce(
          { name: "fail-first" },
          { onHeader: (h) => (header = h) },
        )) {
          sentences.push(m.sentence);
        }
      });
      expect(sentences).toEqual([]);
      const error = expectEsError(e, EsCode.PermissionDenied);
      expect(error.rawMessage).toBe("it broke at once");
      expect(error.findDetails(SayResponseSchema)).toHaveLength(1);
      expect(error.metadata.get("x-trailer-early")).toBe("early");
      // Response headers the implementation set stay headers on every
      // protocol; a gRPC call sends them as headers and its status as
      // trailers, not as one trailers-only block (grpc-go reports no
      // headers for one).
      expect(header?.get("x-introduce-header")).toBe("h");
      expect(header?.get("x-trailer-early")).toBeNull();

      const raw = await sendRaw(mode, {
        path: introducePath,
        headers: streamHeaders(protocol),
        body: [introduceFrame("fail-first")],
      });
      expect(raw.status).toBe(200);
      expect(raw.headers["x-introduce-header"]).toBe("h");
      expect(raw.headers["x-trailer-early"]).toBeUndefined();
      const { messages, end } = parseStream(protocol, raw);
      expect(messages).toEqual([]);
      expect(end.trailersOnly).toBe(false);
      expect(end.code).toBe("permission_denied");
      expect(end.message).toBe("it broke at once");
      expect(end.details.map((d) => d.type)).toEqual([
        SayResponseSchema.typeName,
      ]);
      expect(end.metadata).toEqual({ "x-trailer-early": ["early"] });
    });

    it("client streaming: an error while reading the requests", async () => {
      const client = clientOf();
      let header: Headers | undefined;
      const e = await rejection(() =>
        client.pontificate(
          each({ sentence: "a" }, { sentence: "fail" }, { sentence: "c" }),
          { onHeader: (h) => (header = h) },
        ),
      );
      const error = expectEsError(e, EsCode.OutOfRange);
      expect(error.rawMessage).toBe("no more");
      expect(error.findDetails(SayResponseSchema)).toHaveLength(1);
      expect(error.metadata.get("x-trailer-late")).toBe("late");
      // Headers stay headers on every protocol (see above).
      expect(header?.get("x-pontificate-header")).toBe("h");
    });

    it("bidi: an error after one answer", async () => {
      const client = clientOf();
      const sentences: string[] = [];
      const e = await rejection(async () => {
        for await (const m of client.converse(
          each({ sentence: "ok" }, { sentence: "fail" }, { sentence: "never" }),
        )) {
          sentences.push(m.sentence);
        }
      });
      expect(sentences).toEqual(["Eliza heard: ok"]);
      expect(expectEsError(e, EsCode.Aborted).rawMessage).toBe(
        "conversation over",
      );
      await expectServing(mode, protocol);
    });
  });

  describe("3. deadlines and cancellation mid-stream", () => {
    // The client (connect-es) and the server time deadlines with setTimeout
    // and Date.now. With both faked, a deadline passes when the test
    // advances the clock, at a point of the stream the test chose; the
    // implementation and the helpers pace and poll with the real timers.
    const fakeDeadlineClock = () =>
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });

    it("a client timeout during a long stream: deadline_exceeded, the implementation stops", async () => {
      const client = clientOf();
      const id = uniqueId();
      const sentences: string[] = [];
      fakeDeadlineClock();
      let e: unknown;
      try {
        const messages = client
          .introduce({ name: `endless:${id}` }, { timeoutMs: 300 })
          [Symbol.asyncIterator]();
        // Messages flow before the deadline...
        while (sentences.length < 4) {
          sentences.push((await messages.next()).value!.sentence);
        }
        // ...and the deadline is not due a millisecond early...
        vi.advanceTimersByTime(299);
        expect(probeOf(id).aborted).toBeUndefined();
        sentences.push((await messages.next()).value!.sentence);
        // ...but ends the call when it is.
        vi.advanceTimersByTime(1);
        e = await rejection(async () => {
          for (
            let r = await messages.next();
            !r.done;
            r = await messages.next()
          ) {
            sentences.push(r.value.sentence);
          }
        });
      } finally {
        vi.useRealTimers();
      }
      expectEsError(e, EsCode.DeadlineExceeded);
      expect(sentences.length).toBeGreaterThan(3);
      expect(sentences.slice(0, 5)).toEqual(
        [0, 1, 2, 3, 4].map((i) => `tick ${i}`),
      );
      await waitUntil(
        () => probeOf(id).finallyRan && probeOf(id).aborted !== undefined,
        "the implementation's signal and finally",
      );
      await expectServing(mode, protocol);
    });

    it("a client abort during a long stream: canceled, the implementation stops", async () => {
      const client = clientOf();
      const id = uniqueId();
      const abort = new AbortController();
      const sentences: string[] = [];
      // The stream never ends by itself: the loop ends only if the abort
      // ends the call, and no message may follow the abort.
      const e = await rejection(async () => {
        for await (const m of client.introduce(
          { name: `endless:${id}` },
          { signal: abort.signal },
        )) {
          sentences.push(m.sentence);
          if (sentences.length === 5) abort.abort();
        }
      });
      expectEsError(e, EsCode.Canceled);
      expect(sentences).toHaveLength(5);
      await waitUntil(
        () => probeOf(id).finallyRan && probeOf(id).aborted !== undefined,
        "the implementation's signal and finally",
      );
      const reason = probeOf(id).aborted;
      expect(reason).toBeInstanceOf(ConnectError);
      expect((reason as ConnectError).code).toBe(Code.Canceled);
      await expectServing(mode, protocol);
    });

    it("a deadline before the first message: the implementation is still stopped once it yields", async () => {
      const client = clientOf();
      const id = uniqueId();
      try {
        // The implementation's slow work ends only when the test opens its
        // gate, after the call has failed: the failure cannot have waited
        // for a message.
        const e = await rejection(async () => {
          for await (const _ of client.introduce(
            { name: `slow-start:${id}` },
            { timeoutMs: 100 },
          )) {
            throw new Error("no message expected");
          }
        });
        expectEsError(e, EsCode.DeadlineExceeded);
        // The server has given up on the call too (its own deadline, or
        // the client gone) before the slow work ends.
        await waitUntil(
          () => probeOf(id).aborted !== undefined,
          "the implementation's signal",
        );
      } finally {
        gateOf(id).fire();
      }
      await waitUntil(
        () => probeOf(id).finallyRan,
        "the implementation's finally",
      );
      expect(probeOf(id).produced).toBe(1);
      expect(probeOf(id).aborted).toBeDefined();
      await expectServing(mode, protocol);
    });

    it("a client abort before the first message: the implementation is still stopped once it yields", async () => {
      const client = clientOf();
      const id = uniqueId();
      const abort = new AbortController();
      // The abort comes once the implementation is at its slow work (its
      // gate stays shut until the call has failed), not after some time.
      const aborted = waitUntil(
        () => probes.has(id),
        "the call to reach the server",
      ).then(() => abort.abort());
      try {
        const e = await rejection(async () => {
          for await (const _ of client.introduce(
            { name: `slow-start:${id}` },
            { signal: abort.signal },
          )) {
            throw new Error("no message expected");
          }
        });
        expectEsError(e, EsCode.Canceled);
        await aborted;
        // The server has seen the client go before the slow work ends.
        await waitUntil(
          () => probeOf(id).aborted !== undefined,
          "the implementation's signal",
        );
      } finally {
        gateOf(id).fire();
      }
      await waitUntil(
        () => probeOf(id).finallyRan,
        "the implementation's finally",
      );
      expect(probeOf(id).produced).toBe(1);
      expect((probeOf(id).aborted as ConnectError).code).toBe(Code.Canceled);
      await expectServing(mode, protocol);
    });

    it("the server's own deadline (connect-timeout-ms, grpc-timeout) ends the stream with deadline_exceeded", async () => {
      const id = uniqueId();
      fakeDeadlineClock();
      let raw: RawResponse;
      try {
        const response = sendRaw(mode, {
          path: introducePath,
          headers: { ...streamHeaders(protocol), ...wire.timeout(200) },
          body: [introduceFrame(`endless:${id}`)],
        });
        await waitUntil(
          () => probes.get(id) !== undefined && probeOf(id).produced > 3,
          "4 messages",
        );
        vi.advanceTimersByTime(199);
        expect(probeOf(id).aborted).toBeUndefined();
        vi.advanceTimersByTime(1);
        raw = await response;
      } finally {
        vi.useRealTimers();
      }
      expect(raw.status).toBe(200);
      const { messages, end } = parseStream(protocol, raw);
      expect(messages.length).toBeGreaterThan(3);
      expect(end.code).toBe("deadline_exceeded");
      await waitUntil(
        () => probeOf(id).finallyRan,
        "the implementation's finally",
      );
      const reason = probeOf(id).aborted;
      expect((reason as ConnectError).code).toBe(Code.DeadlineExceeded);
    });
  });

  describe("4. interceptors see streaming calls", () => {
    it("server streaming", async () => {
      const client = clientOf({ intercepted: true });
      const id = uniqueId();
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const sentences: string[] = [];
      for await (const m of client.introduce(
        { name: "Ada" },
        {
          headers: { "x-call-id": id },
          onHeader: (h) => (header = h),
          onTrailer: (t) => (trailer = t),
        },
      )) {
        sentences.push(m.sentence);
      }
      expect(sentences).toEqual([
        "HELLO ADA",
        longSentence.toUpperCase(),
        "GOODBYE ADA",
      ]);
      expect(interceptorLog.get(id)).toEqual({
        method: "Introduce",
        kind: "server_streaming",
        stream: true,
        requests: 1,
        responses: 3,
      });
      expect(header?.get("x-intercepted")).toBe("yes");
      expect(header?.get("x-introduce-header")).toBe("h");
      expect(trailer?.get("x-requests-counted")).toBe("1");
      expect(trailer?.get("x-trailer-late")).toBe("late");
    });

    it("client streaming", async () => {
      const client = clientOf({ intercepted: true, gzip: true });
      const id = uniqueId();
      let trailer: Headers | undefined;
      const response = await client.pontificate(
        each(
          { sentence: "a" },
          { sentence: "b" },
          { sentence: longSentence },
          { sentence: "d" },
        ),
        { headers: { "x-call-id": id }, onTrailer: (t) => (trailer = t) },
      );
      expect(response.count).toBe(4);
      expect(response.sentence).toBe(`A|B|${longSentence.toUpperCase()}|D`);
      expect(interceptorLog.get(id)).toEqual({
        method: "Pontificate",
        kind: "client_streaming",
        stream: true,
        requests: 4,
        responses: 1,
      });
      expect(trailer?.get("x-requests-counted")).toBe("4");
    });

    it("bidi streaming", async () => {
      const client = clientOf({ intercepted: true, binary: false });
      const id = uniqueId();
      let trailer: Headers | undefined;
      const sentences: string[] = [];
      for await (const m of client.converse(
        each({ sentence: "x" }, { sentence: "y" }),
        { headers: { "x-call-id": id }, onTrailer: (t) => (trailer = t) },
      )) {
        sentences.push(m.sentence);
      }
      expect(sentences).toEqual(["ELIZA HEARD: X", "ELIZA HEARD: Y"]);
      expect(interceptorLog.get(id)).toEqual({
        method: "Converse",
        kind: "bidi_streaming",
        stream: true,
        requests: 2,
        responses: 2,
      });
      expect(trailer?.get("x-requests-counted")).toBe("2");
    });

    it("an interceptor that rejects a stream: the error, no messages", async () => {
      const client = clientOf({ intercepted: true });
      const e = await rejection(async () => {
        for await (const _ of client.converse(each({ sentence: "x" }), {
          headers: { "x-reject": "1" },
        })) {
          throw new Error("no message expected");
        }
      });
      expect(expectEsError(e, EsCode.Unauthenticated).rawMessage).toBe(
        "rejected by an interceptor",
      );
    });

    it("unary calls are not streams", async () => {
      const client = clientOf({ intercepted: true });
      const id = uniqueId();
      const response = await client.say(
        { sentence: "hi" },
        { headers: { "x-call-id": id } },
      );
      expect(response.sentence).toBe("You said: hi");
      expect(interceptorLog.get(id)?.stream).toBe(false);
    });
  });
});

// ---------------------------------------------------------------------------

describe("5. backpressure: a slow reader holds back the implementation", () => {
  const messageBytes =
    5 +
    toBinary(
      IntroduceResponseSchema,
      create(IntroduceResponseSchema, { sentence: bigSentence }),
    ).byteLength;
  const total = 2000 * messageBytes;
  const maxProduced = 64;
  const maxGrowth = 256 * 1024 * 1024;

  interface Usage {
    rss: number;
    arrayBuffers: number;
  }
  const usage = (): Usage => {
    const u = process.memoryUsage();
    return { rss: u.rss, arrayBuffers: u.arrayBuffers };
  };
  function expectBoundedGrowth(before: Usage, peak: Usage): void {
    expect(total).toBeGreaterThan(2000 * 1024 * 1024);
    expect(peak.rss - before.rss).toBeLessThan(maxGrowth);
    expect(peak.arrayBuffers - before.arrayBuffers).toBeLessThan(maxGrowth);
  }
  /** Samples memory while waiting. */
  async function watch(ms: number, peak: Usage): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const u = usage();
      peak.rss = Math.max(peak.rss, u.rss);
      peak.arrayBuffers = Math.max(peak.arrayBuffers, u.arrayBuffers);
      await sleep(50);
    }
  }

  // The compatibility API and the raw "stream" listener write differently.
  const http2NodeModes = [modes[1]!, modes[4]!];
  it.each(
    http2NodeModes.flatMap((mode) =>
      protocolsOf(mode).map((protocol) => [mode.name, protocol, mode] as const),
    ),
  )("%s: a paused stream (%s)", async (_name, protocol, mode) => {
    const id = uniqueId();
    const before = usage();
    const peak = { ...before };
    const session = http2.connect(servers.get(mode)!.eliza.url);
    session.on("error", () => {});
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": introducePath,
        ...streamHeaders(protocol),
      });
      stream.on("error", () => {});
      let received = 0;
      let pauseAt = 3 * messageBytes;
      stream.on("data", (chunk: Buffer) => {
        received += chunk.byteLength;
        if (received >= pauseAt) stream.pause();
      });
      stream.end(introduceFrame(`flood:${id}`));
      await waitUntil(() => received >= 3 * messageBytes, "3 messages");
      await watch(500, peak);
      const produced = probeOf(id).produced;
      expect(produced).toBeGreaterThanOrEqual(3);
      expect(produced).toBeLessThan(maxProduced);
      expect(received).toBeLessThan(maxProduced * messageBytes);
      expect(probeOf(id).finallyRan).toBe(false);
      expectBoundedGrowth(before, peak);
      // Reading again lets it go on.
      pauseAt = Infinity;
      stream.resume();
      await waitUntil(() => received >= 6 * messageBytes, "3 more messages");
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await waitUntil(
        () => probeOf(id).finallyRan,
        "the implementation's finally",
      );
      expect(probeOf(id).aborted).toBeDefined();
      expect(probeOf(id).produced).toBeLessThan(maxProduced + 6);
    } finally {
      session.close();
    }
    await expectServing(mode, protocol);
  });

  it.each(protocolsOf(modes[0]!))(
    "node handler on node:http: a paused response (%s)",
    async (protocol) => {
      const mode = modes[0]!;
      const id = uniqueId();
      const before = usage();
      const peak = { ...before };
      const url = new URL(servers.get(mode)!.eliza.url);
      let received = 0;
      let pauseAt = 3 * messageBytes;
      let res: http.IncomingMessage | undefined;
      const req = http.request({
        host: url.hostname,
        port: url.port,
        method: "POST",
        path: introducePath,
        headers: streamHeaders(protocol),
        agent: false,
      });
      req.on("error", () => {});
      req.on("response", (response) => {
        res = response;
        response.on("error", () => {});
        response.on("data", (chunk: Buffer) => {
          received += chunk.byteLength;
          if (received >= pauseAt) response.pause();
        });
      });
      req.end(introduceFrame(`flood:${id}`));
      try {
        await waitUntil(() => received >= 3 * messageBytes, "3 messages");
        await watch(500, peak);
        const produced = probeOf(id).produced;
        expect(produced).toBeGreaterThanOrEqual(3);
        expect(produced).toBeLessThan(maxProduced);
        expect(probeOf(id).finallyRan).toBe(false);
        expectBoundedGrowth(before, peak);
        pauseAt = Infinity;
        res!.resume();
        await waitUntil(() => received >= 6 * messageBytes, "3 more messages");
      } finally {
        req.destroy();
      }
      await waitUntil(
        () => probeOf(id).finallyRan,
        "the implementation's finally",
      );
      expect(probeOf(id).aborted).toBeDefined();
      await expectServing(mode, protocol);
    },
  );

  it.each(protocolsOf(modes[2]!))(
    "fetch handler: a Response body read slowly, then cancelled (%s)",
    async (protocol) => {
      const id = uniqueId();
      const before = usage();
      const peak = { ...before };
      const response = await eliza.fetch(
        new Request(`http://localhost${introducePath}`, {
          method: "POST",
          headers: streamHeaders(protocol),
          body: introduceFrame(`flood:${id}`) as Uint8Array<ArrayBuffer>,
        }),
      );
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      let received = 0;
      while (received < 3 * messageBytes) {
        const result = await reader.read();
        if (result.done) throw new Error("the stream ended");
        received += result.value.byteLength;
      }
      await watch(500, peak);
      const produced = probeOf(id).produced;
      expect(produced).toBeGreaterThanOrEqual(3);
      // One message at a time is pulled: barely more than what was read.
      expect(produced).toBeLessThan(8);
      expect(probeOf(id).finallyRan).toBe(false);
      expectBoundedGrowth(before, peak);
      await reader.cancel();
      await waitUntil(
        () => probeOf(id).finallyRan,
        "the implementation's finally",
      );
      expect(probeOf(id).produced).toBe(produced);
      // Cancelling the body is the client going away: the signal says so.
      expect((probeOf(id).aborted as ConnectError).code).toBe(Code.Canceled);
    },
  );

  it.each(protocolsOf(modes[2]!))(
    "fetch handler: cancelling the body while the implementation waits aborts its signal (%s)",
    async (protocol) => {
      const id = uniqueId();
      const response = await eliza.fetch(
        new Request(`http://localhost${introducePath}`, {
          method: "POST",
          headers: streamHeaders(protocol),
          body: introduceFrame(`hang-after-1:${id}`) as Uint8Array<ArrayBuffer>,
        }),
      );
      const reader = response.body!.getReader();
      const first = await reader.read();
      expect(first.done).toBe(false);
      expect(
        fromBinary(
          IntroduceResponseSchema,
          parseEnvelopes(first.value!)[0]!.data,
        ).sentence,
      ).toBe("first");
      // The next read waits on the implementation, which waits on its signal.
      const pending = reader.read();
      await sleep(50);
      expect(probeOf(id).aborted).toBeUndefined();
      await within(reader.cancel(), "the body to cancel");
      expect((await pending).done).toBe(true);
      await waitUntil(
        () => probeOf(id).finallyRan && probeOf(id).aborted !== undefined,
        "the implementation's signal and finally",
      );
      expect((probeOf(id).aborted as ConnectError).code).toBe(Code.Canceled);
    },
  );

  it.each(protocolsOf(modes[3]!))(
    "fetch handler on node:http2: a paused stream (%s)",
    async (protocol) => {
      const mode = modes[3]!;
      const id = uniqueId();
      const before = usage();
      const peak = { ...before };
      const session = http2.connect(servers.get(mode)!.eliza.url);
      session.on("error", () => {});
      try {
        const stream = session.request({
          ":method": "POST",
          ":path": introducePath,
          ...streamHeaders(protocol),
        });
        stream.on("error", () => {});
        let received = 0;
        let pauseAt = 3 * messageBytes;
        stream.on("data", (chunk: Buffer) => {
          received += chunk.byteLength;
          if (received >= pauseAt) stream.pause();
        });
        stream.end(introduceFrame(`flood:${id}`));
        await waitUntil(() => received >= 3 * messageBytes, "3 messages");
        await watch(500, peak);
        const produced = probeOf(id).produced;
        expect(produced).toBeLessThan(maxProduced);
        expectBoundedGrowth(before, peak);
        stream.close(http2.constants.NGHTTP2_CANCEL);
        await waitUntil(
          () => probeOf(id).finallyRan,
          "the implementation's finally",
        );
      } finally {
        session.close();
      }
      await expectServing(mode, protocol);
    },
  );
});

// ---------------------------------------------------------------------------

describe("6. bad input mid-stream", () => {
  describe.each(eachCombo())("%s", (_, { mode, protocol }) => {
    const wire = wires[protocol];
    /** Sends the request, checks the error status it ends with, and that the server still serves. */
    async function expectEndStreamError(
      request: RawRequest,
      code: string,
      messagesBefore: string[] = [],
    ): Promise<EndStatus> {
      const response = await sendRaw(mode, request);
      expect(response.status).toBe(200);
      expect(response.headers["content-type"]).toBe(
        request.headers?.["content-type"],
      );
      const { messages, end } = parseStream(protocol, response);
      expect(end.code, end.message).toBe(code);
      expect(
        messages.map((m) =>
          request.path === conversePath
            ? fromBinary(ConverseResponseSchema, m.data).sentence
            : fromBinary(IntroduceResponseSchema, m.data).sentence,
        ),
      ).toEqual(messagesBefore);
      await expectServing(mode, protocol);
      return end;
    }
    const converse = (...body: Uint8Array[]): RawRequest => ({
      path: conversePath,
      headers: streamHeaders(protocol),
      body,
    });
    const valid = envelopeEncode(0, converseBytes("first"));
    const heard = ["Eliza heard: first"];

    it("a payload that is not a message, after a good one → invalid_argument", async () => {
      const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
      expect(() => fromBinary(ConverseRequestSchema, garbage)).toThrow();
      await expectEndStreamError(
        converse(valid, envelopeEncode(0, garbage)),
        "invalid_argument",
        heard,
      );
    });

    it("JSON: invalid JSON after a good message → invalid_argument", async () => {
      const response = await sendRaw(mode, {
        path: conversePath,
        headers: streamHeaders(protocol, false),
        body: [
          envelopeEncode(0, new TextEncoder().encode('{"sentence":"first"}')),
          envelopeEncode(0, new TextEncoder().encode('{"sentence":')),
        ],
      });
      expect(response.status).toBe(200);
      expect(response.headers["content-type"]).toBe(wire.contentType(false));
      const { messages, end } = parseStream(protocol, response);
      expect(messages.map((m) => new TextDecoder().decode(m.data))).toEqual([
        '{"sentence":"Eliza heard: first"}',
      ]);
      expect(end.code).toBe("invalid_argument");
      await expectServing(mode, protocol);
    });

    it("a compressed payload that is not gzip → invalid_argument", async () => {
      await expectEndStreamError(
        {
          ...converse(
            valid,
            envelopeEncode(envelopeFlagCompressed, converseBytes("not gzip")),
          ),
          headers: { ...streamHeaders(protocol), [wire.encoding]: "gzip" },
        },
        "invalid_argument",
        heard,
      );
    });

    it("gzip works, request and response (the server really compresses)", async () => {
      const response = await sendRaw(mode, {
        path: conversePath,
        headers: {
          ...streamHeaders(protocol),
          [wire.encoding]: "gzip",
          [wire.acceptEncoding]: "gzip",
        },
        body: [
          envelopeEncode(
            envelopeFlagCompressed,
            gzipSync(converseBytes(longSentence)),
          ),
          envelopeEncode(0, converseBytes("small")),
        ],
      });
      expect(response.status).toBe(200);
      expect(response.headers[wire.encoding]).toBe("gzip");
      const { messages, end } = parseStream(protocol, response);
      expect(end.code).toBeUndefined();
      expect(messages).toHaveLength(2);
      // Large: compressed; small: under compressMinBytes, sent as is.
      expect(messages[0]!.flags).toBe(envelopeFlagCompressed);
      expect(messages[0]!.data.byteLength).toBeLessThan(
        longSentence.length / 4,
      );
      expect(
        fromBinary(ConverseResponseSchema, gunzipSync(messages[0]!.data))
          .sentence,
      ).toBe(`Eliza heard: ${longSentence}`);
      expect(messages[1]!.flags).toBe(0);
      expect(
        fromBinary(ConverseResponseSchema, messages[1]!.data).sentence,
      ).toBe("Eliza heard: small");
    });

    // Internal, as the conformance suite expects of every protocol.
    it(`a compressed flag without ${wire.encoding} → internal`, async () => {
      await expectEndStreamError(
        converse(
          valid,
          envelopeEncode(envelopeFlagCompressed, gzipSync(converseBytes("x"))),
        ),
        "internal",
        heard,
      );
    });

    it("a truncated final frame (declares 100 bytes, has 10) → invalid_argument", async () => {
      const header = new Uint8Array([0, 0, 0, 0, 100]);
      await expectEndStreamError(
        converse(valid, header, new Uint8Array(10)),
        "invalid_argument",
        heard,
      );
      // Truncated inside the envelope header.
      await expectEndStreamError(
        converse(valid, new Uint8Array([0, 0, 0])),
        "invalid_argument",
        heard,
      );
    });

    // Connect's end-stream flag (0x02) and gRPC-Web's trailers flag (0x80)
    // end responses only; gRPC has no use for 0x80 at all.
    it(`the flag of a response's end (0x${wire.endFlag.toString(16)}) in a request → invalid_argument`, async () => {
      await expectEndStreamError(
        converse(valid, envelopeEncode(wire.endFlag, wire.endPayload)),
        "invalid_argument",
        heard,
      );
    });

    it("an envelope larger than readMaxBytes → resource_exhausted", async () => {
      const big = envelopeEncode(
        0,
        converseBytes("y".repeat(readMaxBytes + 1)),
      );
      await expectEndStreamError(
        converse(valid, big),
        "resource_exhausted",
        heard,
      );
      // Only the header, declaring more than the limit: refused without the payload.
      const header = new Uint8Array([0, 0x7f, 0xff, 0xff, 0xff]);
      await expectEndStreamError(
        converse(valid, header),
        "resource_exhausted",
        heard,
      );
      // Small on the wire, too large once decompressed.
      const bomb = gzipSync(converseBytes("z".repeat(readMaxBytes * 4)));
      expect(bomb.byteLength).toBeLessThan(readMaxBytes);
      await expectEndStreamError(
        {
          ...converse(valid, envelopeEncode(envelopeFlagCompressed, bomb)),
          headers: { ...streamHeaders(protocol), [wire.encoding]: "gzip" },
        },
        "resource_exhausted",
        heard,
      );
    });

    it(`an unknown ${wire.encoding} → unimplemented in the status`, async () => {
      const end = await expectEndStreamError(
        {
          ...converse(valid),
          headers: { ...streamHeaders(protocol), [wire.encoding]: "snappy" },
        },
        "unimplemented",
      );
      expect(end.message).toContain("snappy");
      // gRPC's spec: the answer lists what the server accepts.
      if (protocol !== "connect") {
        const raw = await sendRaw(mode, {
          ...converse(valid),
          headers: { ...streamHeaders(protocol), [wire.encoding]: "snappy" },
        });
        expect(String(raw.headers["grpc-accept-encoding"]).split(",")).toEqual(
          expect.arrayContaining(["gzip", "br", "zstd"]),
        );
      }
    });

    it("an invalid timeout header → invalid_argument", async () => {
      await expectEndStreamError(
        {
          ...converse(valid),
          headers: { ...streamHeaders(protocol), ...wire.timeout("soon") },
        },
        "invalid_argument",
      );
    });

    // Unimplemented, as connect-go and the conformance suite: such a call is
    // not the method's kind.
    it("server streaming with zero or two request messages → unimplemented", async () => {
      await expectEndStreamError(
        { path: introducePath, headers: streamHeaders(protocol), body: [] },
        "unimplemented",
      );
      await expectEndStreamError(
        {
          path: introducePath,
          headers: streamHeaders(protocol),
          body: [introduceFrame("a"), introduceFrame("b")],
        },
        "unimplemented",
      );
    });

    it("client streaming with a bad second message → invalid_argument", async () => {
      await expectEndStreamError(
        {
          path: pontificatePath,
          headers: streamHeaders(protocol),
          body: [
            pontificateFrame("a"),
            envelopeEncode(0, new Uint8Array([0xff])),
          ],
        },
        "invalid_argument",
      );
    });

    if (protocol === "connect") {
      // Connect alone has unary content types: gRPC's and gRPC-Web's are the
      // same for every kind (the codec test below is their counterpart).
      it("a unary content type on a streaming method → 415", async () => {
        for (const contentType of ["application/proto", "application/json"]) {
          const response = await sendRaw(mode, {
            path: introducePath,
            headers: {
              "content-type": contentType,
              "connect-protocol-version": "1",
            },
            body: [
              toBinary(IntroduceRequestSchema, create(IntroduceRequestSchema)),
            ],
          });
          expect(response.status).toBe(415);
          expect(response.headers["accept-post"]).toBe(
            "application/connect+json, application/connect+proto",
          );
        }
        await expectServing(mode, protocol);
      });
    } else {
      it("a codec the server does not have → 415", async () => {
        const response = await sendRaw(mode, {
          path: introducePath,
          headers: {
            ...streamHeaders(protocol),
            "content-type": wire.contentType(true).replace("+proto", "+xml"),
          },
          body: [introduceFrame("xml")],
        });
        expect(response.status).toBe(415);
        expect(response.headers["accept-post"]).toBe(
          `${wire.contentType(true)}, ${wire.contentType(false)}`,
        );
        await expectServing(mode, protocol);
      });
    }

    it("GET on a streaming method → 405", async () => {
      const response = await sendRaw(mode, {
        method: "GET",
        path: `${introducePath}?encoding=proto&message=`,
        // A Connect GET has no content type; gRPC's is what selects it.
        ...(protocol === "connect" ? {} : { headers: streamHeaders(protocol) }),
      });
      expect(response.status).toBe(405);
      expect(response.headers["allow"]).toBe("POST");
      await expectServing(mode, protocol);
    });
  });

  // gRPC needs HTTP/2 trailers: where there are none it is refused, at once
  // and in a form a gRPC client reads (a trailers-only response), pointing
  // to gRPC-Web. The implementation never runs.
  describe.each(
    modes
      .filter((mode) => !protocolsOf(mode).includes("grpc"))
      .map((m) => [m.name, m] as const),
  )("%s", (_, mode) => {
    it("a gRPC call is refused with unimplemented, naming gRPC-Web", async () => {
      const id = uniqueId();
      const raw = await sendRaw(mode, {
        path: introducePath,
        headers: streamHeaders("grpc"),
        body: [introduceFrame(`endless:${id}`)],
      });
      expect(raw.status).toBe(200);
      expect(raw.body.byteLength).toBe(0);
      const end = grpcEndStatus(headersOf(raw.headers), true);
      expect(end.code).toBe("unimplemented");
      expect(end.message).toContain("gRPC-Web");
      expect(probes.has(id)).toBe(false);
      await expectServing(mode, "grpc-web");
    });
  });
});

// ---------------------------------------------------------------------------

function bufCurl(
  protocol: Protocol,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous: the servers run in this process and must keep answering.
    execFile(
      bufBin,
      [
        "curl",
        "--schema",
        fixturesDir,
        "--protocol",
        protocol === "grpc-web" ? "grpcweb" : protocol,
        ...args,
      ],
      (error, stdout, stderr) => {
        const code =
          error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** buf curl prints each message as a JSON object; they follow one another. */
function parseJsonSequence(text: string): unknown[] {
  return text
    .trim()
    .split(/\n(?=\{)/)
    .filter((s) => s.length > 0)
    .map((s) => JSON.parse(s) as unknown);
}

describe("7. buf curl", () => {
  for (const { name, mode, protocol } of combos) {
    const flags = mode.httpVersion === "2" ? ["--http2-prior-knowledge"] : [];
    it(`${name}: prints every message of a server stream`, async () => {
      const result = await bufCurl(protocol, [
        ...flags,
        "--data",
        JSON.stringify({ name: "Curl" }),
        `${servers.get(mode)!.eliza.url}${introducePath}`,
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(parseJsonSequence(result.stdout)).toEqual([
        { sentence: "Hello Curl" },
        { sentence: longSentence },
        { sentence: "Goodbye Curl" },
      ]);
    });

    it(`${name}: an error mid-stream exits non-zero after the messages`, async () => {
      const result = await bufCurl(protocol, [
        ...flags,
        "--data",
        JSON.stringify({ name: "fail-after-2" }),
        `${servers.get(mode)!.eliza.url}${introducePath}`,
      ]);
      expect(result.code).not.toBe(0);
      expect(parseJsonSequence(result.stdout)).toEqual([
        { sentence: "one" },
        { sentence: "two" },
      ]);
      expect(result.stderr).toContain("failed_precondition");
      expect(result.stderr).toContain("it broke mid-stream");
    });
  }

  it.each(protocolsOf(modes[1]!))(
    "bidi over HTTP/2 with several messages (%s)",
    async (protocol) => {
      const mode = modes[1]!;
      const result = await bufCurl(protocol, [
        "--http2-prior-knowledge",
        "--data",
        '{"sentence":"a"} {"sentence":"b"}',
        `${servers.get(mode)!.eliza.url}${conversePath}`,
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(parseJsonSequence(result.stdout)).toEqual([
        { sentence: "Eliza heard: a" },
        { sentence: "Eliza heard: b" },
      ]);
    },
  );
});
