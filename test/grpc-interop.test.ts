// Interoperability of the generated gRPC and gRPC-Web code with peers written
// by others, in both directions, for all four RPC kinds:
//
// 1. our generated client (protocol "grpc") → an @grpc/grpc-js server, h2c and TLS;
// 2. our generated client (protocols "grpc" and "grpc-web") → a
//    @connectrpc/connect-node server (connectNodeAdapter), over HTTP/1.1 and h2c;
// 3. connect-es clients (createGrpcTransport, createGrpcWebTransport) → our
//    generated server, over h2c, TLS and HTTP/1.1;
// 4. `buf curl --protocol grpc|grpcweb` → our generated server.
//
// All three servers implement the same behaviour (below), so every pairing
// must see the same messages, headers, trailers and errors.

import { execFile } from "node:child_process";
import * as http from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  create,
  createFileRegistry,
  equals,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import {
  anyPack,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_any,
} from "@bufbuild/protobuf/wkt";
import {
  Code as EsCode,
  ConnectError as EsConnectError,
  createClient,
  type ConnectRouter,
  type HandlerContext as EsHandlerContext,
  type Transport,
} from "@connectrpc/connect";
import {
  compressionGzip as esCompressionGzip,
  connectNodeAdapter,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  vi,
} from "vitest";
import {
  createElizaServiceClient,
  createElizaServiceHandler,
  createHttp2HttpClient,
  type HttpClient,
  type NodeClientOptions,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  ConverseRequestSchema,
  ConverseResponseSchema,
  ElizaService,
  IntroduceRequestSchema,
  IntroduceResponseSchema,
  PontificateRequestSchema,
  PontificateResponseSchema,
  SayRequestSchema,
  SayResponseSchema,
  type ConverseRequest,
  type IntroduceRequest,
  type PontificateRequest,
  type SayRequest,
} from "./gen/eliza/v1/eliza_pb.ts";
import {
  Code,
  ConnectError,
  compressionGzip,
  createGreetServiceClient,
  createGreetServiceHandler,
  nodeHandler,
} from "./gen/unary/v1/unary.GreetService.ts";
import {
  AddressSchema,
  EchoRequestSchema,
  EchoResponseSchema,
  FailRequestSchema,
  FailResponseSchema,
  GreetRequestSchema,
  GreetResponseSchema,
  GreetService,
  Mood,
  type EchoRequest,
  type GreetRequest,
} from "./gen/unary/v1/unary_pb.ts";
import {
  codecOption,
  elizaProtocols,
  greetProtocols,
} from "./support/protocols.ts";
import {
  startServer,
  type NodeListener,
  type ServerKind,
} from "./support/servers.ts";
import { testCertificate } from "./support/tls.ts";

const here = dirname(fileURLToPath(import.meta.url));
const fixturesDir = join(here, "../fixtures");
const bufBin = join(here, "../node_modules/.bin/buf");

// ---------------------------------------------------------------------------
// google.rpc.Status, described here (as test/grpc-server.test.ts does) so that
// grpc-js can send grpc-status-details-bin without the code under test.

const StatusSchema = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "google/rpc/status.proto",
    package: "google.rpc",
    dependency: ["google/protobuf/any.proto"],
    syntax: "proto3",
    messageType: [
      {
        name: "Status",
        field: [
          {
            name: "code",
            jsonName: "code",
            number: 1,
            type: FieldDescriptorProto_Type.INT32,
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
          {
            name: "message",
            jsonName: "message",
            number: 2,
            type: FieldDescriptorProto_Type.STRING,
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
          {
            name: "details",
            jsonName: "details",
            number: 3,
            type: FieldDescriptorProto_Type.MESSAGE,
            label: FieldDescriptorProto_Label.REPEATED,
            typeName: ".google.protobuf.Any",
          },
        ],
      },
    ],
  }),
  (name) =>
    name === "google/protobuf/any.proto" ? file_google_protobuf_any : undefined,
).getMessage("google.rpc.Status") as DescMessage;

// ---------------------------------------------------------------------------
// The behaviour every server below implements.
//
// Say: "You said: <sentence>"; "fail" fails with the test error; the request
//   header x-sleep-ms makes it wait (and report when it is cancelled).
// Introduce: three sentences; the name "fail" fails after the first one,
//   "fail-now" before any; x-sleep-ms makes it wait after the first one.
// Pontificate: the sentences joined with " | " and their count; a sentence
//   "fail" fails the call once all are read.
// Converse: "You said: <sentence>" per request; "fail" fails the call.
// Every method sends the response header x-header and the trailers
// x-trailer and x-trailer-bin (binary), each naming the method; Say also
// sends x-timeout-ms, the time left as the server sees it (or "none").
// Greet and Echo answer with rich messages; Fail fails with the code and
// message of its request.

const failText = "café ✓ 100%";
const errorMeta = "meta value";
const errorDetail = { street: "detail street ✓", city: "Zürich", zip: 99 };
const binTrailer = new Uint8Array([0, 1, 2, 250, 255]);
const binTrailerBase64 = Buffer.from(binTrailer).toString("base64");

function introduceSentences(name: string): string[] {
  return [
    `Hi ${name}, I'm Eliza.`,
    "How are you feeling today?",
    "Tell me more.",
  ];
}

const greetRequest = {
  name: "Ada ✓ & <friends>",
  age: 1234567890123n,
  avatar: new Uint8Array([0, 1, 2, 127, 128, 254, 255]),
  nicknames: ["a", "b", ""],
  labels: { team: "core", "with space": "yes ü" },
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
    moods: [Mood.HAPPY, Mood.GRUMPY],
  };
}

function echoLogic(
  request: EchoRequest,
): MessageInitShape<typeof EchoResponseSchema> {
  return {
    payload: request.payload,
    data: request.data,
    numbers: request.numbers,
    blobs: request.blobs,
  };
}

// Large and repetitive: compressed on the way in and, where the server
// compresses, on the way out.
const echoRequest = {
  payload: greetRequest,
  data: new TextEncoder().encode("compress me please! ".repeat(400)),
  numbers: [0n, -1n, 9223372036854775807n, -9223372036854775808n],
  blobs: { empty: new Uint8Array(0), some: new Uint8Array([9, 8, 7]) },
} satisfies MessageInitShape<typeof EchoRequestSchema>;

// 1 MiB that does not compress well.
const bigEchoRequest = {
  data: new Uint8Array(1024 * 1024).map((_, i) => (i * 7919 + (i >> 9)) & 0xff),
  numbers: [1n],
} satisfies MessageInitShape<typeof EchoRequestSchema>;
const expectedBigEcho = create(EchoResponseSchema, bigEchoRequest);

const expectedGreet = create(
  GreetResponseSchema,
  greetLogic(create(GreetRequestSchema, greetRequest)),
);
const expectedEcho = create(EchoResponseSchema, echoRequest);

// ---------------------------------------------------------------------------
// Helpers.

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// The real timers, taken before any test fakes them (see withFakeClock).
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

/**
 * How long to wait for something that must happen before taking `fallback`
 * (which fails the assertion that follows): a guard against a hang, never a
 * measure of speed, so long enough for a machine at a load of 10.
 */
const hangMs = 20_000;

/** Resolves with `value` or, after hangMs, with `fallback`. */
function within<T>(promise: Promise<T>, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<T>((resolve) => {
      timer = realSetTimeout(() => resolve(fallback), hangMs);
    }),
  ]).finally(() => realClearTimeout(timer));
}

/**
 * The x-sleep-ms of a call that must end by a deadline or a cancellation: an
 * hour, so the handler cannot answer first however slow the machine.
 */
const stall = String(60 * 60_000);

/** Runs `body` with Date frozen: the time a server sees left is the whole timeout. */
async function withFrozenDate<T>(body: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ["Date"] });
  try {
    return await body();
  } finally {
    vi.useRealTimers();
  }
}

/**
 * Runs `body` with setTimeout, clearTimeout and Date faked, in the client
 * and the servers alike: a deadline passes when `body` advances the clock,
 * at the point of the call it chose, however slow the machine.
 */
async function withFakeClock<T>(body: () => Promise<T>): Promise<T> {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  try {
    return await body();
  } finally {
    vi.useRealTimers();
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail");
}

/** Resolved with the name of the server whose handler saw its call cancelled. */
let cancelled = deferred<string>();
/** Resolved with the name of the server whose handler started to wait (x-sleep-ms). */
let stalled = deferred<string>();
beforeEach(() => {
  cancelled = deferred<string>();
  stalled = deferred<string>();
});

/** Sleeps; when `signal` aborts first, reports it through `cancelled` and rejects. */
function sleep(ms: number, signal: AbortSignal, who: string): Promise<void> {
  stalled.resolve(who);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    const onAbort = () => {
      clearTimeout(timer);
      cancelled.resolve(who);
      reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs a bidi call in full duplex: request i+1 is produced only once
 * response i has arrived, so a half-duplex transport stalls.
 */
async function fullDuplex(
  open: (
    requests: AsyncIterable<{ sentence: string }>,
  ) => AsyncIterable<{ sentence: string }>,
  sentences: readonly string[],
): Promise<string[] | "stalled"> {
  const gates = sentences.map(() => deferred<void>());
  gates[0]!.resolve();
  async function* requests() {
    for (let i = 0; i < sentences.length; i++) {
      await gates[i]!.promise;
      yield { sentence: sentences[i]! };
    }
  }
  const answers: string[] = [];
  const run = (async () => {
    for await (const response of open(requests())) {
      answers.push(response.sentence);
      gates[answers.length]?.resolve();
    }
    return answers;
  })();
  return within<string[] | "stalled">(run, "stalled");
}

/** The flags byte of each envelope in a gRPC body. */
function envelopeFlags(body: Uint8Array): number[] {
  const flags: number[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let offset = 0; offset + 5 <= body.length;) {
    flags.push(body[offset]!);
    offset += 5 + view.getUint32(offset + 1);
  }
  return flags;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks));
}

/** What a recording HttpClient saw of one call of our client. */
interface SentRequest {
  readonly url: string;
  readonly header: Headers;
  /** The request body as sent, complete once the call has ended. */
  readonly body: Uint8Array[];
}

/** Wraps an HttpClient of our runtime, keeping each request's headers and body bytes. */
function recordingHttpClient(
  inner: HttpClient,
  log: SentRequest[],
): HttpClient {
  return (request) => {
    const sent: SentRequest = {
      url: request.url,
      header: new Headers(request.header),
      body: [],
    };
    log.push(sent);
    const body = request.body;
    if (body instanceof Uint8Array) {
      sent.body.push(body);
      return inner(request);
    }
    if (body === undefined) return inner(request);
    return inner({
      ...request,
      body: (async function* () {
        for await (const chunk of body) {
          sent.body.push(chunk);
          yield chunk;
        }
      })(),
    });
  };
}

/** What a recording server listener saw of one request. */
interface Seen {
  readonly path: string;
  readonly httpVersion: string;
  readonly headers: http.IncomingHttpHeaders;
}

function recording(log: Seen[], listener: NodeListener): NodeListener {
  return (request, response) => {
    log.push({
      path: request.url ?? "",
      httpVersion: request.httpVersion,
      headers: { ...request.headers },
    });
    listener(request, response);
  };
}

const closers: (() => Promise<void> | void)[] = [];

async function serve(kind: ServerKind, listener: NodeListener) {
  const server = await startServer(kind, listener);
  closers.push(() => server.close());
  return server.url;
}

afterAll(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

// ---------------------------------------------------------------------------
// Our generated server.

function ourError(): ConnectError {
  return new ConnectError(failText, Code.NotFound, {
    metadata: { "x-error-meta": errorMeta },
    details: [{ desc: AddressSchema, value: errorDetail }],
  });
}

function ourMeta(
  context: { responseHeaders: Headers; responseTrailers: Headers },
  method: string,
) {
  context.responseHeaders.set("x-header", method);
  context.responseTrailers.set("x-trailer", method);
  context.responseTrailers.set("x-trailer-bin", binTrailerBase64);
}

/** The protocol of each call our implementation saw. */
const ourProtocols: string[] = [];

const ourListener = nodeHandler(
  createElizaServiceHandler({
    async say(request, context) {
      ourProtocols.push(context.protocol);
      ourMeta(context, "say");
      context.responseHeaders.set(
        "x-timeout-ms",
        String(context.timeoutMs() ?? "none"),
      );
      const sleepMs = context.requestHeaders.get("x-sleep-ms");
      if (sleepMs !== null) {
        await sleep(Number(sleepMs), context.signal, "ours");
      }
      if (request.sentence === "fail") throw ourError();
      return { sentence: `You said: ${request.sentence}` };
    },
    async *introduce(request, context) {
      ourProtocols.push(context.protocol);
      ourMeta(context, "introduce");
      const sleepMs = context.requestHeaders.get("x-sleep-ms");
      if (request.name === "fail-now") throw ourError();
      for (const [i, sentence] of introduceSentences(request.name).entries()) {
        if (i === 1 && request.name === "fail") throw ourError();
        if (i === 1 && sleepMs !== null) {
          await sleep(Number(sleepMs), context.signal, "ours");
        }
        yield { sentence };
      }
    },
    async pontificate(requests, context) {
      ourProtocols.push(context.protocol);
      ourMeta(context, "pontificate");
      const sentences: string[] = [];
      for await (const r of requests) sentences.push(r.sentence);
      if (sentences.includes("fail")) throw ourError();
      return { sentence: sentences.join(" | "), count: sentences.length };
    },
    async *converse(requests, context) {
      ourProtocols.push(context.protocol);
      ourMeta(context, "converse");
      for await (const r of requests) {
        if (r.sentence === "fail") throw ourError();
        yield { sentence: `You said: ${r.sentence}` };
      }
    },
  }),
  createGreetServiceHandler({
    greet: (request) => greetLogic(request),
    echo: (request) => echoLogic(request),
    fail(request) {
      throw new ConnectError(request.message, request.code as Code);
    },
  }),
) as NodeListener;

// ---------------------------------------------------------------------------
// The same behaviour with connect-es (@connectrpc/connect-node).

function esError(): EsConnectError {
  return new EsConnectError(
    failText,
    EsCode.NotFound,
    { "x-error-meta": errorMeta },
    [{ desc: AddressSchema, value: errorDetail }],
  );
}

function esMeta(context: EsHandlerContext, method: string) {
  context.responseHeader.set("x-header", method);
  context.responseTrailer.set("x-trailer", method);
  context.responseTrailer.set("x-trailer-bin", binTrailerBase64);
}

function esRoutes(router: ConnectRouter): void {
  router.service(ElizaService, {
    async say(request, context) {
      esMeta(context, "say");
      context.responseHeader.set(
        "x-timeout-ms",
        String(context.timeoutMs() ?? "none"),
      );
      const sleepMs = context.requestHeader.get("x-sleep-ms");
      if (sleepMs !== null) {
        await sleep(Number(sleepMs), context.signal, "connect-es");
      }
      if (request.sentence === "fail") throw esError();
      return { sentence: `You said: ${request.sentence}` };
    },
    async *introduce(request, context) {
      esMeta(context, "introduce");
      const sleepMs = context.requestHeader.get("x-sleep-ms");
      if (request.name === "fail-now") throw esError();
      for (const [i, sentence] of introduceSentences(request.name).entries()) {
        if (i === 1 && request.name === "fail") throw esError();
        if (i === 1 && sleepMs !== null) {
          await sleep(Number(sleepMs), context.signal, "connect-es");
        }
        yield { sentence };
      }
    },
    async pontificate(requests, context) {
      esMeta(context, "pontificate");
      const sentences: string[] = [];
      for await (const r of requests) sentences.push(r.sentence);
      if (sentences.includes("fail")) throw esError();
      return { sentence: sentences.join(" | "), count: sentences.length };
    },
    async *converse(requests, context) {
      esMeta(context, "converse");
      for await (const r of requests) {
        if (r.sentence === "fail") throw esError();
        yield { sentence: `You said: ${r.sentence}` };
      }
    },
  });
  router.service(GreetService, {
    greet: (request) => greetLogic(request),
    echo: (request) => echoLogic(request),
    fail(request) {
      throw new EsConnectError(request.message, request.code as EsCode);
    },
  });
}

// ---------------------------------------------------------------------------
// The same behaviour with grpc-js (no proto-loader: method definitions on the
// protobuf-es schemas, as in test/grpc-server.test.ts).

function methodDefinition(
  path: string,
  input: DescMessage,
  output: DescMessage,
  requestStream: boolean,
  responseStream: boolean,
): grpc.MethodDefinition<unknown, unknown> {
  return {
    path,
    requestStream,
    responseStream,
    // Plain objects are fine: they are made into messages first.
    requestSerialize: (m) =>
      Buffer.from(toBinary(input, create(input, m as never))),
    requestDeserialize: (b) => fromBinary(input, b),
    responseSerialize: (m) =>
      Buffer.from(toBinary(output, create(output, m as never))),
    responseDeserialize: (b) => fromBinary(output, b),
  };
}

const elizaPath = "/connectrpc.eliza.v1.ElizaService/";
const greetPath = "/fixtures.unary.v1.GreetService/";

const grpcJsEliza: grpc.ServiceDefinition = {
  Say: methodDefinition(
    elizaPath + "Say",
    SayRequestSchema,
    SayResponseSchema,
    false,
    false,
  ),
  Introduce: methodDefinition(
    elizaPath + "Introduce",
    IntroduceRequestSchema,
    IntroduceResponseSchema,
    false,
    true,
  ),
  Pontificate: methodDefinition(
    elizaPath + "Pontificate",
    PontificateRequestSchema,
    PontificateResponseSchema,
    true,
    false,
  ),
  Converse: methodDefinition(
    elizaPath + "Converse",
    ConverseRequestSchema,
    ConverseResponseSchema,
    true,
    true,
  ),
};

const grpcJsGreet: grpc.ServiceDefinition = {
  Greet: methodDefinition(
    greetPath + "Greet",
    GreetRequestSchema,
    GreetResponseSchema,
    false,
    false,
  ),
  Echo: methodDefinition(
    greetPath + "Echo",
    EchoRequestSchema,
    EchoResponseSchema,
    false,
    false,
  ),
  Fail: methodDefinition(
    greetPath + "Fail",
    FailRequestSchema,
    FailResponseSchema,
    false,
    false,
  ),
};

/** The test error as grpc-js sends it, details in grpc-status-details-bin. */
function grpcJsError(): grpc.ServerErrorResponse {
  const metadata = new grpc.Metadata();
  metadata.set("x-error-meta", errorMeta);
  const status = create(StatusSchema, {
    code: grpc.status.NOT_FOUND,
    message: failText,
    details: [anyPack(AddressSchema, create(AddressSchema, errorDetail))],
  } as never);
  metadata.set(
    "grpc-status-details-bin",
    Buffer.from(toBinary(StatusSchema, status)),
  );
  return Object.assign(new Error(failText), {
    code: grpc.status.NOT_FOUND,
    details: failText,
    metadata,
  });
}

function grpcJsHeaders(method: string, extra: Record<string, string> = {}) {
  const md = new grpc.Metadata();
  md.set("x-header", method);
  for (const [k, v] of Object.entries(extra)) md.set(k, v);
  return md;
}

function grpcJsTrailers(method: string) {
  const md = new grpc.Metadata();
  md.set("x-trailer", method);
  md.set("x-trailer-bin", Buffer.from(binTrailer));
  return md;
}

/** The deadline grpc-js saw for the last call of Say, in ms from its start, or "none". */
function grpcJsTimeLeft(call: grpc.ServerUnaryCall<unknown, unknown>): string {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? String(ms - Date.now()) : "none";
}

const grpcJsElizaImpl: grpc.UntypedServiceImplementation = {
  Say(
    call: grpc.ServerUnaryCall<SayRequest, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) {
    const trace = call.metadata.get("x-trace-bin")[0];
    call.sendMetadata(
      grpcJsHeaders("say", {
        "x-timeout-ms": grpcJsTimeLeft(call),
        // What grpc-js made of binary request metadata, and of text.
        "x-trace-hex": Buffer.isBuffer(trace) ? trace.toString("hex") : "",
        "x-custom-seen": String(call.metadata.get("x-custom")[0] ?? ""),
      }),
    );
    const answer = () => {
      if (call.request.sentence === "fail") callback(grpcJsError());
      else
        callback(
          null,
          { sentence: `You said: ${call.request.sentence}` },
          grpcJsTrailers("say"),
        );
    };
    const sleepMs = call.metadata.get("x-sleep-ms")[0];
    if (sleepMs === undefined) {
      answer();
      return;
    }
    const timer = setTimeout(answer, Number(sleepMs));
    stalled.resolve("grpc-js");
    call.on("cancelled", () => {
      clearTimeout(timer);
      cancelled.resolve("grpc-js");
    });
  },
  Introduce(call: grpc.ServerWritableStream<IntroduceRequest, unknown>) {
    call.sendMetadata(grpcJsHeaders("introduce"));
    const sentences = introduceSentences(call.request.name);
    const rest = () => {
      for (const sentence of sentences.slice(1)) call.write({ sentence });
      call.end(grpcJsTrailers("introduce"));
    };
    if (call.request.name === "fail-now") {
      call.emit("error", grpcJsError());
      return;
    }
    call.write({ sentence: sentences[0] });
    if (call.request.name === "fail") {
      call.emit("error", grpcJsError());
      return;
    }
    const sleepMs = call.metadata.get("x-sleep-ms")[0];
    if (sleepMs === undefined) {
      rest();
      return;
    }
    const timer = setTimeout(rest, Number(sleepMs));
    stalled.resolve("grpc-js");
    call.on("cancelled", () => {
      clearTimeout(timer);
      cancelled.resolve("grpc-js");
    });
  },
  Pontificate(
    call: grpc.ServerReadableStream<PontificateRequest, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) {
    call.sendMetadata(grpcJsHeaders("pontificate"));
    const sentences: string[] = [];
    call.on("data", (r: PontificateRequest) => sentences.push(r.sentence));
    call.on("end", () => {
      if (sentences.includes("fail")) callback(grpcJsError());
      else
        callback(
          null,
          { sentence: sentences.join(" | "), count: sentences.length },
          grpcJsTrailers("pontificate"),
        );
    });
  },
  Converse(call: grpc.ServerDuplexStream<ConverseRequest, unknown>) {
    call.sendMetadata(grpcJsHeaders("converse"));
    let failed = false;
    call.on("data", (r: ConverseRequest) => {
      if (failed) return;
      if (r.sentence === "fail") {
        failed = true;
        call.emit("error", grpcJsError());
        return;
      }
      call.write({ sentence: `You said: ${r.sentence}` });
    });
    call.on("end", () => {
      if (!failed) call.end(grpcJsTrailers("converse"));
    });
  },
};

const grpcJsGreetImpl: grpc.UntypedServiceImplementation = {
  Greet(
    call: grpc.ServerUnaryCall<GreetRequest, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) {
    callback(null, greetLogic(call.request));
  },
  Echo(
    call: grpc.ServerUnaryCall<EchoRequest, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) {
    callback(null, echoLogic(call.request));
  },
  Fail(
    call: grpc.ServerUnaryCall<{ code: number; message: string }, unknown>,
    callback: grpc.sendUnaryData<unknown>,
  ) {
    callback({ code: call.request.code, details: call.request.message });
  },
};

async function startGrpcJs(tls: boolean): Promise<string> {
  const server = new grpc.Server();
  server.addService(grpcJsEliza, grpcJsElizaImpl);
  server.addService(grpcJsGreet, grpcJsGreetImpl);
  const { key, cert } = testCertificate();
  const credentials = tls
    ? grpc.ServerCredentials.createSsl(
        null,
        [{ private_key: Buffer.from(key), cert_chain: Buffer.from(cert) }],
        false,
      )
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );
  closers.push(() => server.forceShutdown());
  return `${tls ? "https" : "http"}://127.0.0.1:${port}`;
}

// ---------------------------------------------------------------------------
// Checks shared by the directions where our client is the caller.

type OurElizaClient = ReturnType<typeof createElizaServiceClient>;

function expectBinTrailer(value: string | null) {
  expect(value).not.toBeNull();
  expect([...Buffer.from(value!, "base64")]).toEqual([...binTrailer]);
}

/** The test error; `method` names the response header sent before it, also in its metadata. */
function expectOurTestError(err: unknown, method: string) {
  expect(err).toBeInstanceOf(ConnectError);
  const e = err as ConnectError;
  expect(e.metadata.get("x-header")).toBe(method);
  expect(e.code).toBe(Code.NotFound);
  expect(e.rawMessage).toBe(failText);
  expect(e.metadata.get("x-error-meta")).toBe(errorMeta);
  const details = e.findDetails(AddressSchema);
  expect(details).toHaveLength(1);
  expect(
    equals(AddressSchema, details[0]!, create(AddressSchema, errorDetail)),
  ).toBe(true);
}

/** Tests of our client against a server of the common behaviour. */
function ourClientKinds(
  client: () => OurElizaClient,
  greet: () => ReturnType<typeof createGreetServiceClient>,
  /** Whether the server serves bidi on this connection (then in full duplex). */
  bidi: boolean,
  /** The server's name, as its handlers report cancellation. */
  server: string,
) {
  it("unary: equal responses, headers and trailers in raw()", async () => {
    const result = await client().say.raw({ sentence: "héllo ✓" });
    expect(
      equals(
        SayResponseSchema,
        result.message,
        create(SayResponseSchema, { sentence: "You said: héllo ✓" }),
      ),
    ).toBe(true);
    expect(result.header.get("x-header")).toBe("say");
    expect(result.header.get("x-trailer")).toBeNull();
    expect(result.trailer.get("x-trailer")).toBe("say");
    expectBinTrailer(result.trailer.get("x-trailer-bin"));

    const greeted = await greet().greet(greetRequest);
    expect(equals(GreetResponseSchema, greeted, expectedGreet)).toBe(true);
    const echoed = await greet().echo(echoRequest);
    expect(equals(EchoResponseSchema, echoed, expectedEcho)).toBe(true);
  });

  it("server streaming: all messages, headers first, trailers at the end", async () => {
    const result = await client().introduce.raw({ name: "Ada ✓" });
    expect(result.header.get("x-header")).toBe("introduce");
    const sentences: string[] = [];
    for await (const m of result.messages) sentences.push(m.sentence);
    expect(sentences).toEqual(introduceSentences("Ada ✓"));
    expect(result.trailer.get("x-trailer")).toBe("introduce");
    expectBinTrailer(result.trailer.get("x-trailer-bin"));
  });

  it("client streaming: one response for all requests", async () => {
    async function* requests() {
      yield { sentence: "one" };
      yield { sentence: "two ✓" };
      yield { sentence: "" };
    }
    const result = await client().pontificate.raw(requests());
    expect(
      equals(
        PontificateResponseSchema,
        result.message,
        create(PontificateResponseSchema, {
          sentence: "one | two ✓ | ",
          count: 3,
        }),
      ),
    ).toBe(true);
    expect(result.header.get("x-header")).toBe("pontificate");
    expect(result.trailer.get("x-trailer")).toBe("pontificate");
  });

  if (bidi) {
    it("bidi in full duplex: each request sent only after the previous response", async () => {
      const sentences = ["first", "second ✓", "third"];
      const answers = await fullDuplex(
        (requests) => client().converse(requests),
        sentences,
      );
      expect(answers).toEqual(sentences.map((s) => `You said: ${s}`));
    });

    it("bidi: headers and trailers in raw()", async () => {
      const result = await client().converse.raw([{ sentence: "x" }]);
      const answers: string[] = [];
      for await (const m of result.messages) answers.push(m.sentence);
      expect(answers).toEqual(["You said: x"]);
      expect(result.header.get("x-header")).toBe("converse");
      expect(result.trailer.get("x-trailer")).toBe("converse");
    });
  } else {
    // connect-es serves no bidi over HTTP/1.1: it answers HTTP 505.
    it("bidi the server does not serve over HTTP/1.1: an error, not a hang", async () => {
      const err = await within(
        rejection(
          (async () => {
            for await (const _ of client().converse([{ sentence: "x" }])) {
              // no message expected
            }
          })(),
        ),
        "hung",
      );
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).rawMessage).toBe("HTTP status 505");
      expect((err as ConnectError).code).toBe(Code.Unknown);
    });
  }

  it("unary error: code, non-ASCII message, metadata and details", async () => {
    expectOurTestError(
      await rejection(client().say({ sentence: "fail" })),
      "say",
    );
    const err = await rejection(
      greet().fail({ code: Code.PermissionDenied, message: "nope ✓" }),
    );
    expect(ConnectError.from(err).code).toBe(Code.PermissionDenied);
    expect(ConnectError.from(err).rawMessage).toBe("nope ✓");
  });

  it("streaming errors: before any message, after the first, and from client and bidi streams", async () => {
    const none = await client().introduce.raw({ name: "fail-now" });
    const early: string[] = [];
    const earlyErr = await rejection(
      (async () => {
        for await (const m of none.messages) early.push(m.sentence);
      })(),
    );
    expect(early).toEqual([]);
    expectOurTestError(earlyErr, "introduce");

    const received: string[] = [];
    const err = await rejection(
      (async () => {
        for await (const m of client().introduce({ name: "fail" })) {
          received.push(m.sentence);
        }
      })(),
    );
    expect(received).toEqual(introduceSentences("fail").slice(0, 1));
    expectOurTestError(err, "introduce");

    expectOurTestError(
      await rejection(
        client().pontificate([{ sentence: "a" }, { sentence: "fail" }]),
      ),
      "pontificate",
    );

    if (!bidi) return;
    const answers: string[] = [];
    const bidiErr = await rejection(
      (async () => {
        for await (const m of client().converse([
          { sentence: "a" },
          { sentence: "fail" },
        ])) {
          answers.push(m.sentence);
        }
      })(),
    );
    expect(answers).toEqual(["You said: a"]);
    expectOurTestError(bidiErr, "converse");
  });

  it("breaking out of a server stream cancels the call: the handler sees it", async () => {
    const received: string[] = [];
    for await (const m of client().introduce(
      { name: "x" },
      { headers: { "x-sleep-ms": stall } },
    )) {
      received.push(m.sentence);
      break;
    }
    expect(received).toEqual(introduceSentences("x").slice(0, 1));
    expect(await within(cancelled.promise, "not cancelled")).toBe(server);
  });

  it("a deadline covers the whole stream: a stalled server stream fails with deadline_exceeded", async () => {
    const received: string[] = [];
    const err = await withFakeClock(async () => {
      const messages = client()
        .introduce(
          { name: "x" },
          { timeoutMs: 200, headers: { "x-sleep-ms": stall } },
        )
        [Symbol.asyncIterator]();
      // The first message arrives, the server stalls; only then does the
      // deadline pass.
      received.push((await messages.next()).value!.sentence);
      expect(await stalled.promise).toBe(server);
      vi.advanceTimersByTime(200);
      return rejection(
        (async () => {
          for (
            let r = await messages.next();
            !r.done;
            r = await messages.next()
          ) {
            received.push(r.value.sentence);
          }
        })(),
      );
    });
    expect(received).toEqual(introduceSentences("x").slice(0, 1));
    expect(ConnectError.from(err).code).toBe(Code.DeadlineExceeded);
    expect(await within(cancelled.promise, "not cancelled")).toBe(server);
  });

  it("a 1 MiB message each way (beyond the HTTP/2 flow-control windows)", async () => {
    const echoed = await greet().echo(bigEchoRequest);
    expect(equals(EchoResponseSchema, echoed, expectedBigEcho)).toBe(true);
  });

  it("deadlines: the server sees the timeout; a slow call fails with deadline_exceeded and the handler is cancelled", async () => {
    const result = await withFrozenDate(() =>
      client().say.raw({ sentence: "t" }, { timeoutMs: 60_000 }),
    );
    expect(Number(result.header.get("x-timeout-ms"))).toBe(60_000);
    const none = await client().say.raw({ sentence: "t" });
    expect(none.header.get("x-timeout-ms")).toBe("none");

    // The handler stalls for an hour: only the deadline can end the call.
    const err = await rejection(
      client().say(
        { sentence: "slow" },
        { timeoutMs: 150, headers: { "x-sleep-ms": stall } },
      ),
    );
    expect(ConnectError.from(err).code).toBe(Code.DeadlineExceeded);
    expect(await within(cancelled.promise, "not cancelled")).toBe(server);
    // The client still works afterwards.
    expect((await client().say({ sentence: "again" })).sentence).toBe(
      "You said: again",
    );
  });
}

// ---------------------------------------------------------------------------
// 1. Our generated client (gRPC) → grpc-js server.
//
// Binary only: a grpc-js server has one serializer per method, whatever the
// content type. Compression one way only: grpc-js servers decode gzip
// requests but never compress responses ("response compression is currently
// not supported" in its server-interceptors.js), whatever
// grpc.default_compression_algorithm says; response compression is covered
// against connect-es below.

describe.each([
  { name: "h2c", tls: false },
  { name: "TLS", tls: true },
])("our gRPC client → grpc-js server over $name", ({ tls }) => {
  let url = "";
  const sent: SentRequest[] = [];
  // Without the protocol: each client takes gRPC's value of its own file.
  const options = (): NodeClientOptions => {
    const http2Options = tls
      ? { sessionOptions: { ca: testCertificate().cert } }
      : {};
    return {
      httpClient: recordingHttpClient(
        createHttp2HttpClient(http2Options),
        sent,
      ),
    };
  };
  let eliza: OurElizaClient;
  let greet: ReturnType<typeof createGreetServiceClient>;

  beforeAll(async () => {
    url = await startGrpcJs(tls);
    eliza = createElizaServiceClient(url, {
      ...options(),
      protocol: elizaProtocols.grpc,
    });
    greet = createGreetServiceClient(url, {
      ...options(),
      protocol: greetProtocols.grpc,
    });
  });
  beforeEach(() => {
    sent.length = 0;
  });

  ourClientKinds(
    () => eliza,
    () => greet,
    true,
    "grpc-js",
  );

  it("request metadata reaches grpc-js, text and binary (-bin, base64 on the wire)", async () => {
    const result = await eliza.say.raw(
      { sentence: "x" },
      {
        headers: {
          "x-custom": "value 1",
          "x-trace-bin": Buffer.from([0, 1, 2, 250, 255]).toString("base64"),
        },
      },
    );
    expect(result.header.get("x-custom-seen")).toBe("value 1");
    expect(result.header.get("x-trace-hex")).toBe("000102faff");
  });

  it("uses the default http2 transport for gRPC when none is given", async () => {
    const client = createElizaServiceClient(url, {
      protocol: elizaProtocols.grpc,
      ...(tls
        ? { http2: { sessionOptions: { ca: testCertificate().cert } } }
        : {}),
    });
    expect((await client.say({ sentence: "x" })).sentence).toBe("You said: x");
  });

  it("gzip requests: compressed on the wire, grpc-js decodes them (unary and client streaming)", async () => {
    const gzipOptions = {
      ...options(),
      sendCompression: "gzip",
      compressMinBytes: 1,
    };
    const echoed = await createGreetServiceClient(url, {
      ...gzipOptions,
      protocol: greetProtocols.grpc,
    }).echo(echoRequest);
    expect(equals(EchoResponseSchema, echoed, expectedEcho)).toBe(true);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.header.get("grpc-encoding")).toBe("gzip");
    expect(sent[0]!.header.get("content-type")).toBe("application/grpc+proto");
    expect(envelopeFlags(concat(sent[0]!.body))).toEqual([1]);
    const wireSize = concat(sent[0]!.body).length;
    expect(wireSize).toBeLessThan(
      toBinary(EchoRequestSchema, create(EchoRequestSchema, echoRequest))
        .length / 2,
    );

    const summary = await createElizaServiceClient(url, {
      ...gzipOptions,
      protocol: elizaProtocols.grpc,
    }).pontificate([
      { sentence: "a".repeat(100) },
      { sentence: "b".repeat(100) },
    ]);
    expect(summary.count).toBe(2);
    expect(summary.sentence).toBe(`${"a".repeat(100)} | ${"b".repeat(100)}`);
    expect(sent[1]!.header.get("grpc-encoding")).toBe("gzip");
    expect(envelopeFlags(concat(sent[1]!.body))).toEqual([1, 1]);
  });

  it("aborting a call cancels it: the grpc-js handler sees it", async () => {
    const controller = new AbortController();
    const call = eliza.say(
      { sentence: "slow" },
      { signal: controller.signal, headers: { "x-sleep-ms": stall } },
    );
    // Aborted once the handler is at work, not after some time.
    expect(await stalled.promise).toBe("grpc-js");
    controller.abort();
    const err = await rejection(call);
    expect(ConnectError.from(err).code).toBe(Code.Canceled);
    expect(await within(cancelled.promise, "not cancelled")).toBe("grpc-js");
  });
});

// ---------------------------------------------------------------------------
// 2. Our generated client (gRPC, gRPC-Web) → connect-es server.

const esSeen: Seen[] = [];
let esHttp1 = "";
let esH2c = "";

beforeAll(async () => {
  const listener = recording(
    esSeen,
    connectNodeAdapter({ routes: esRoutes }) as NodeListener,
  );
  [esHttp1, esH2c] = await Promise.all([
    serve("http", listener),
    serve("h2c", listener),
  ]);
});

describe("our gRPC / gRPC-Web client → connect-es server", () => {
  beforeEach(() => {
    esSeen.length = 0;
  });

  const cases: {
    protocol: "grpc" | "grpc-web";
    transport: "fetch" | "http2";
    binary: boolean;
    gzip: boolean;
  }[] = [];
  for (const [protocol, transport] of [
    ["grpc", "http2"],
    ["grpc-web", "fetch"],
    ["grpc-web", "http2"],
  ] as const) {
    for (const binary of [true, false]) {
      for (const gzip of [false, true]) {
        cases.push({ protocol, transport, binary, gzip });
      }
    }
  }

  describe.each(
    cases.map(
      (c) =>
        [
          `${c.protocol} over ${c.transport === "fetch" ? "HTTP/1.1 (fetch)" : "h2c (http2)"}, ${c.binary ? "binary" : "JSON"}${c.gzip ? ", gzip" : ""}`,
          c,
        ] as const,
    ),
  )("%s", (_, c) => {
    const url = () => (c.transport === "fetch" ? esHttp1 : esH2c);
    // Without the protocol: each client takes the value of its own file.
    const options = (): NodeClientOptions => ({
      transport: c.transport,
      ...codecOption(c.binary),
      // Without gzip, offer no compression at all, so nothing is compressed.
      ...(c.gzip
        ? {
            sendCompression: "gzip",
            compressMinBytes: 1,
            compressions: [compressionGzip],
          }
        : { compressions: [] }),
    });
    let eliza: OurElizaClient;
    let greet: ReturnType<typeof createGreetServiceClient>;
    beforeAll(() => {
      eliza = createElizaServiceClient(url(), {
        ...options(),
        protocol: elizaProtocols[c.protocol],
      });
      greet = createGreetServiceClient(url(), {
        ...options(),
        protocol: greetProtocols[c.protocol],
      });
    });

    ourClientKinds(
      () => eliza,
      () => greet,
      c.transport === "http2",
      "connect-es",
    );

    it("speaks the protocol on the wire: content type, HTTP version, compression", async () => {
      const result = await greet.echo.raw(echoRequest);
      expect(equals(EchoResponseSchema, result.message, expectedEcho)).toBe(
        true,
      );
      expect(esSeen).toHaveLength(1);
      const seen = esSeen[0]!;
      expect(seen.path).toBe(greetPath + "Echo");
      expect(seen.httpVersion).toBe(c.transport === "fetch" ? "1.1" : "2.0");
      expect(seen.headers["content-type"]).toBe(
        `application/${c.protocol}+${c.binary ? "proto" : "json"}`,
      );
      if (c.protocol === "grpc") expect(seen.headers["te"]).toBe("trailers");
      else expect(seen.headers["x-grpc-web"]).toBe("1");
      expect(seen.headers["grpc-encoding"]).toBe(c.gzip ? "gzip" : undefined);
      expect(result.header.get("grpc-encoding") ?? "identity").toBe(
        c.gzip ? "gzip" : "identity",
      );
    });
  });
});

// ---------------------------------------------------------------------------
// 3. connect-es gRPC and gRPC-Web clients → our generated server.

const oursSeen: Seen[] = [];
let oursHttp1 = "";
let oursH2c = "";
let oursH2 = "";
const sessionManagers: Http2SessionManager[] = [];
afterAll(() => {
  for (const manager of sessionManagers.splice(0)) manager.abort();
});

beforeAll(async () => {
  const listener = recording(oursSeen, ourListener);
  [oursHttp1, oursH2c, oursH2] = await Promise.all([
    serve("http", listener),
    serve("h2c", listener),
    serve("h2", listener),
  ]);
});

describe("connect-es gRPC / gRPC-Web clients → our generated server", () => {
  beforeEach(() => {
    oursSeen.length = 0;
    ourProtocols.length = 0;
  });

  type Kind = "grpc h2c" | "grpc TLS" | "grpc-web HTTP/1.1" | "grpc-web h2c";
  const cases: { kind: Kind; binary: boolean; gzip: boolean }[] = [];
  for (const kind of [
    "grpc h2c",
    "grpc TLS",
    "grpc-web HTTP/1.1",
    "grpc-web h2c",
  ] as const) {
    for (const binary of [true, false]) {
      for (const gzip of [false, true]) {
        cases.push({ kind, binary, gzip });
      }
    }
  }

  describe.each(
    cases.map(
      (c) =>
        [
          `${c.kind}, ${c.binary ? "binary" : "JSON"}${c.gzip ? ", gzip" : ""}`,
          c,
        ] as const,
    ),
  )("%s", (_, c) => {
    const protocol = c.kind.startsWith("grpc-web") ? "grpc-web" : "grpc";
    const http1 = c.kind === "grpc-web HTTP/1.1";
    let transport: Transport;
    beforeAll(() => {
      const common = {
        useBinaryFormat: c.binary,
        ...(c.gzip
          ? {
              sendCompression: esCompressionGzip,
              compressMinBytes: 1,
              acceptCompression: [esCompressionGzip],
            }
          : { acceptCompression: [] }),
      };
      if (http1) {
        transport = createGrpcWebTransport({
          ...common,
          baseUrl: oursHttp1,
          httpVersion: "1.1",
        });
        return;
      }
      const baseUrl = c.kind === "grpc TLS" ? oursH2 : oursH2c;
      const sessionManager = new Http2SessionManager(
        baseUrl,
        undefined,
        c.kind === "grpc TLS" ? { ca: testCertificate().cert } : undefined,
      );
      sessionManagers.push(sessionManager);
      transport =
        protocol === "grpc"
          ? createGrpcTransport({ ...common, baseUrl, sessionManager })
          : createGrpcWebTransport({
              ...common,
              baseUrl,
              httpVersion: "2",
              sessionManager,
            });
    });
    const eliza = () => createClient(ElizaService, transport);
    const greet = () => createClient(GreetService, transport);

    function expectEsTestError(err: unknown, method: string) {
      expect(err).toBeInstanceOf(EsConnectError);
      const e = err as EsConnectError;
      expect(e.metadata.get("x-header")).toBe(method);
      expect(e.code).toBe(EsCode.NotFound);
      expect(e.rawMessage).toBe(failText);
      expect(e.metadata.get("x-error-meta")).toBe(errorMeta);
      const details = e.findDetails(AddressSchema);
      expect(details).toHaveLength(1);
      expect(
        equals(AddressSchema, details[0]!, create(AddressSchema, errorDetail)),
      ).toBe(true);
    }

    it("unary: equal responses, headers and trailers, the protocol on the wire", async () => {
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const said = await eliza().say(
        { sentence: "héllo ✓" },
        { onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
      );
      expect(said.sentence).toBe("You said: héllo ✓");
      expect(header?.get("x-header")).toBe("say");
      expect(trailer?.get("x-trailer")).toBe("say");
      expectBinTrailer(trailer?.get("x-trailer-bin") ?? null);
      expect(ourProtocols).toEqual([protocol]);
      const seen = oursSeen[0]!;
      expect(seen.httpVersion).toBe(http1 ? "1.1" : "2.0");
      expect(seen.headers["content-type"]).toBe(
        `application/${protocol}+${c.binary ? "proto" : "json"}`,
      );

      expect(
        equals(
          GreetResponseSchema,
          await greet().greet(greetRequest),
          expectedGreet,
        ),
      ).toBe(true);
    });

    it("unary with compression as asked: requests and responses", async () => {
      let header: Headers | undefined;
      const echoed = await greet().echo(echoRequest, {
        onHeader: (h) => (header = h),
      });
      expect(equals(EchoResponseSchema, echoed, expectedEcho)).toBe(true);
      const seen = oursSeen.at(-1)!;
      expect(seen.headers["grpc-encoding"]).toBe(c.gzip ? "gzip" : undefined);
      expect(header?.get("grpc-encoding") ?? "identity").toBe(
        c.gzip ? "gzip" : "identity",
      );
    });

    it("server streaming: all messages, headers and trailers", async () => {
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const sentences: string[] = [];
      for await (const m of eliza().introduce(
        { name: "Ada ✓" },
        { onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
      )) {
        sentences.push(m.sentence);
      }
      expect(sentences).toEqual(introduceSentences("Ada ✓"));
      expect(header?.get("x-header")).toBe("introduce");
      expect(trailer?.get("x-trailer")).toBe("introduce");
      expectBinTrailer(trailer?.get("x-trailer-bin") ?? null);
    });

    it("client streaming: one response for all requests", async () => {
      async function* requests() {
        yield { sentence: "one" };
        yield { sentence: "two ✓" };
        yield { sentence: "" };
      }
      let trailer: Headers | undefined;
      const result = await eliza().pontificate(requests(), {
        onTrailer: (t) => (trailer = t),
      });
      expect(result.sentence).toBe("one | two ✓ | ");
      expect(result.count).toBe(3);
      expect(trailer?.get("x-trailer")).toBe("pontificate");
    });

    it(`bidi ${http1 ? "(half duplex over HTTP/1.1)" : "in full duplex"}: all responses`, async () => {
      const sentences = ["first", "second ✓", "third"];
      const expected = sentences.map((s) => `You said: ${s}`);
      if (http1) {
        async function* requests() {
          for (const sentence of sentences) yield { sentence };
        }
        const answers: string[] = [];
        for await (const m of eliza().converse(requests())) {
          answers.push(m.sentence);
        }
        expect(answers).toEqual(expected);
      } else {
        expect(
          await fullDuplex((requests) => eliza().converse(requests), sentences),
        ).toEqual(expected);
      }
    });

    it("errors: code, non-ASCII message, metadata and details, for every kind", async () => {
      expectEsTestError(
        await rejection(eliza().say({ sentence: "fail" })),
        "say",
      );

      const early: string[] = [];
      const earlyErr = await rejection(
        (async () => {
          for await (const m of eliza().introduce({ name: "fail-now" })) {
            early.push(m.sentence);
          }
        })(),
      );
      expect(early).toEqual([]);
      expectEsTestError(earlyErr, "introduce");

      const received: string[] = [];
      const streamErr = await rejection(
        (async () => {
          for await (const m of eliza().introduce({ name: "fail" })) {
            received.push(m.sentence);
          }
        })(),
      );
      expect(received).toEqual(introduceSentences("fail").slice(0, 1));
      expectEsTestError(streamErr, "introduce");

      async function* failing() {
        yield { sentence: "a" };
        yield { sentence: "fail" };
      }
      expectEsTestError(
        await rejection(eliza().pontificate(failing())),
        "pontificate",
      );
      const answers: string[] = [];
      const bidiErr = await rejection(
        (async () => {
          for await (const m of eliza().converse(failing())) {
            answers.push(m.sentence);
          }
        })(),
      );
      expect(answers).toEqual(["You said: a"]);
      expectEsTestError(bidiErr, "converse");

      const failErr = await rejection(
        greet().fail({ code: EsCode.Unavailable, message: "later 100% ✓" }),
      );
      expect(EsConnectError.from(failErr).code).toBe(EsCode.Unavailable);
      expect(EsConnectError.from(failErr).rawMessage).toBe("later 100% ✓");
    });

    // connect-es does not cancel a stream when the loop is left (its
    // iterables have no return()); its users abort the call's signal.
    it("aborting a server stream after the first message cancels our handler", async () => {
      const controller = new AbortController();
      const received: string[] = [];
      const err = await rejection(
        (async () => {
          for await (const m of eliza().introduce(
            { name: "x" },
            {
              headers: { "x-sleep-ms": stall },
              signal: controller.signal,
            },
          )) {
            received.push(m.sentence);
            controller.abort();
          }
        })(),
      );
      expect(EsConnectError.from(err).code).toBe(EsCode.Canceled);
      expect(received).toEqual(introduceSentences("x").slice(0, 1));
      expect(await within(cancelled.promise, "not cancelled")).toBe("ours");
    });

    it("a deadline covers the whole stream: a stalled server stream fails with deadline_exceeded", async () => {
      const received: string[] = [];
      const err = await withFakeClock(async () => {
        const messages = eliza()
          .introduce(
            { name: "x" },
            { timeoutMs: 200, headers: { "x-sleep-ms": stall } },
          )
          [Symbol.asyncIterator]();
        // The first message arrives, the server stalls; only then does the
        // deadline pass.
        received.push((await messages.next()).value!.sentence);
        expect(await stalled.promise).toBe("ours");
        vi.advanceTimersByTime(200);
        return rejection(
          (async () => {
            for (
              let r = await messages.next();
              !r.done;
              r = await messages.next()
            ) {
              received.push(r.value.sentence);
            }
          })(),
        );
      });
      expect(received).toEqual(introduceSentences("x").slice(0, 1));
      expect(EsConnectError.from(err).code).toBe(EsCode.DeadlineExceeded);
      expect(await within(cancelled.promise, "not cancelled")).toBe("ours");
    });

    it("a 1 MiB message each way (beyond the HTTP/2 flow-control windows)", async () => {
      const echoed = await greet().echo(bigEchoRequest);
      expect(equals(EchoResponseSchema, echoed, expectedBigEcho)).toBe(true);
    });

    it("timeouts reach our implementation; a slow call fails with deadline_exceeded and cancels it", async () => {
      let header: Headers | undefined;
      await withFrozenDate(() =>
        eliza().say(
          { sentence: "t" },
          { timeoutMs: 60_000, onHeader: (h) => (header = h) },
        ),
      );
      expect(Number(header?.get("x-timeout-ms"))).toBe(60_000);

      const err = await rejection(
        eliza().say(
          { sentence: "slow" },
          { timeoutMs: 150, headers: { "x-sleep-ms": stall } },
        ),
      );
      expect(EsConnectError.from(err).code).toBe(EsCode.DeadlineExceeded);
      expect(await within(cancelled.promise, "not cancelled")).toBe("ours");
    });
  });
});

// ---------------------------------------------------------------------------
// 4. buf curl → our generated server.

function bufCurl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous: the servers run in this process and must keep answering.
    execFile(
      bufBin,
      ["curl", "--schema", fixturesDir, ...args],
      (error, stdout, stderr) => {
        const code =
          error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** buf curl prints one JSON document per response message. */
function jsonDocuments(text: string): unknown[] {
  const trimmed = text.trim();
  return trimmed === ""
    ? []
    : (JSON.parse(`[${trimmed.replace(/}\s*{/g, "},{")}]`) as unknown[]);
}

describe.each([
  {
    name: "--protocol grpc, h2c",
    flags: ["--protocol", "grpc", "--http2-prior-knowledge"],
    url: () => oursH2c,
    protocol: "grpc",
    httpVersion: "2.0",
  },
  {
    name: "--protocol grpcweb, HTTP/1.1",
    flags: ["--protocol", "grpcweb"],
    url: () => oursHttp1,
    protocol: "grpc-web",
    httpVersion: "1.1",
  },
  {
    name: "--protocol grpcweb, h2c",
    flags: ["--protocol", "grpcweb", "--http2-prior-knowledge"],
    url: () => oursH2c,
    protocol: "grpc-web",
    httpVersion: "2.0",
  },
])("buf curl $name → our generated server", (o) => {
  beforeEach(() => {
    oursSeen.length = 0;
    ourProtocols.length = 0;
  });

  it("unary: prints the JSON response", async () => {
    const result = await bufCurl([
      ...o.flags,
      "--data",
      JSON.stringify({
        name: "Bob ✓",
        age: "42",
        nicknames: ["b"],
        mood: "MOOD_HAPPY",
      }),
      `${o.url()}${greetPath}Greet`,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(json["greeting"]).toBe("Hello, Bob ✓!");
    expect(json["request"]).toEqual({
      name: "Bob ✓",
      age: "42",
      nicknames: ["b"],
      mood: "MOOD_HAPPY",
    });
    expect(json["greetedAtUnixMillis"]).toBe("1700000000000");
    expect(json["moods"]).toEqual(["MOOD_HAPPY", "MOOD_GRUMPY"]);
    expect(oursSeen.at(-1)!.httpVersion).toBe(o.httpVersion);
    expect(oursSeen.at(-1)!.headers["content-type"]).toMatch(
      new RegExp(`^application/${o.protocol}(\\+proto)?$`),
    );
  });

  it("server streaming: prints every message", async () => {
    const result = await bufCurl([
      ...o.flags,
      "--data",
      JSON.stringify({ name: "Bob" }),
      `${o.url()}${elizaPath}Introduce`,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(jsonDocuments(result.stdout)).toEqual(
      introduceSentences("Bob").map((sentence) => ({ sentence })),
    );
    expect(ourProtocols).toEqual([o.protocol]);
  });

  it("client streaming: several requests, one response", async () => {
    const result = await bufCurl([
      ...o.flags,
      "--data",
      '{"sentence": "one"} {"sentence": "two ✓"}',
      `${o.url()}${elizaPath}Pontificate`,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      sentence: "one | two ✓",
      count: 2,
    });
  });

  it("an error exits with the code shifted left by three and prints code and message", async () => {
    const result = await bufCurl([
      ...o.flags,
      "--data",
      JSON.stringify({ code: Code.NotFound, message: "nothing here ✓" }),
      `${o.url()}${greetPath}Fail`,
    ]);
    expect(result.code).toBe(Code.NotFound << 3);
    expect(result.stdout + result.stderr).toContain("not_found");
    expect(result.stdout + result.stderr).toContain("nothing here ✓");
  });

  it("a streaming error after the first message: the message, then the error", async () => {
    const result = await bufCurl([
      ...o.flags,
      "--data",
      JSON.stringify({ name: "fail" }),
      `${o.url()}${elizaPath}Introduce`,
    ]);
    expect(result.code).toBe(Code.NotFound << 3);
    expect(jsonDocuments(result.stdout)).toEqual([
      { sentence: introduceSentences("fail")[0] },
    ]);
    expect(result.stderr).toContain("not_found");
    expect(result.stderr).toContain(failText);
  });
});

describe("buf curl --protocol grpc → our generated server: bidi", () => {
  it("sends every request and prints every response", async () => {
    const result = await bufCurl([
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--data",
      '{"sentence": "one"} {"sentence": "two"}',
      `${oursH2c}${elizaPath}Converse`,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(jsonDocuments(result.stdout)).toEqual([
      { sentence: "You said: one" },
      { sentence: "You said: two" },
    ]);
  });
});
