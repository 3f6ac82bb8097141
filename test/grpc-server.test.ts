// The generated server speaking gRPC, driven by @grpc/grpc-js as the client
// (built without proto-loader, on the protobuf-es schemas of the _pb.ts
// files), over node:http2 h2c and TLS. Asserts what a gRPC user relies on:
// all four method kinds with whole messages, metadata (headers, trailers,
// binary values), errors with codes, percent-encoded messages and
// grpc-status-details-bin, deadlines and cancellation reaching the
// implementation, gzip in both directions, the receive limit, interceptors,
// unimplemented methods, and, with a raw node:http2 / node:http client, the
// malformed requests grpc-js never sends.

import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
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
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_any,
  type Any,
} from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
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
  createElizaServiceHandler,
  nodeHandler,
  type ElizaServiceImplementation,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  ConverseRequestSchema,
  ConverseResponseSchema,
  IntroduceRequestSchema,
  IntroduceResponseSchema,
  PontificateRequestSchema,
  PontificateResponseSchema,
  SayRequestSchema,
  SayResponseSchema,
} from "./gen/eliza/v1/eliza_pb.ts";
import {
  Code,
  ConnectError,
  createGreetServiceHandler,
  type GreetServiceImplementation,
  type HandlerContext,
  type HandlerOptions,
  type Interceptor,
} from "./gen/unary/v1/unary.GreetService.ts";
import {
  EchoRequestSchema,
  EchoResponseSchema,
  FailRequestSchema,
  FailResponseSchema,
  GreetRequestSchema,
  GreetResponseSchema,
  Mood,
  type EchoRequest,
  type GreetRequest,
} from "./gen/unary/v1/unary_pb.ts";
import {
  startServer,
  type NodeListener,
  type ServerKind,
} from "./support/servers.ts";
import { testCertificate } from "./support/tls.ts";

// ---------------------------------------------------------------------------
// google.rpc.Status, described here (as runtime-inline/protocol-grpc.test.ts
// does) so that grpc-status-details-bin is decoded independently of the code
// under test.

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
// grpc-js clients, built from method definitions on protobuf-es schemas.

function methodDefinition<I extends DescMessage, O extends DescMessage>(
  path: string,
  input: I,
  output: O,
  requestStream: boolean,
  responseStream: boolean,
): grpc.MethodDefinition<unknown, unknown> {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: (m) => Buffer.from(toBinary(input, m as never)),
    requestDeserialize: (b) => fromBinary(input, b),
    responseSerialize: (m) => Buffer.from(toBinary(output, m as never)),
    responseDeserialize: (b) => fromBinary(output, b),
  };
}

const elizaPath = "/connectrpc.eliza.v1.ElizaService/";
const greetPath = "/fixtures.unary.v1.GreetService/";

const ElizaClient = grpc.makeGenericClientConstructor(
  {
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
    // Not a method of the service.
    Nope: methodDefinition(
      elizaPath + "Nope",
      SayRequestSchema,
      SayResponseSchema,
      false,
      false,
    ),
  },
  "ElizaService",
);

const GreetClient = grpc.makeGenericClientConstructor(
  {
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
  },
  "GreetService",
);

type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

const clients: grpc.Client[] = [];

function makeClient(
  ctor: grpc.ServiceClientConstructor,
  url: string,
  options: Partial<grpc.ChannelOptions> = {},
): AnyClient {
  const target = url.replace(/^https?:\/\//, "");
  const credentials = url.startsWith("https:")
    ? grpc.credentials.createSsl(Buffer.from(testCertificate().cert))
    : grpc.credentials.createInsecure();
  const client = new ctor(target, credentials, {
    // The certificate names localhost too; this keeps an IP out of SNI.
    ...(url.startsWith("https:")
      ? { "grpc.ssl_target_name_override": "localhost" }
      : {}),
    ...options,
  }) as unknown as AnyClient;
  clients.push(client);
  return client;
}

interface CallOutcome<T> {
  readonly response: T | undefined;
  readonly error: grpc.ServiceError | undefined;
  readonly headers: grpc.Metadata | undefined;
  readonly status: grpc.StatusObject;
}

function metadataOf(entries: Record<string, string | Buffer> = {}) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
}

/** A unary call; resolves once grpc-js has reported the status, whatever it is. */
function unary<T>(
  client: AnyClient,
  method: string,
  request: unknown,
  metadata: grpc.Metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<CallOutcome<T>> {
  return new Promise((resolve) => {
    let response: T | undefined;
    let error: grpc.ServiceError | undefined;
    let headers: grpc.Metadata | undefined;
    const call = client[method]!(
      request,
      metadata,
      options,
      (err: grpc.ServiceError | null, res: T) => {
        if (err) error = err;
        else response = res;
      },
    ) as grpc.ClientUnaryCall;
    call.on("metadata", (md: grpc.Metadata) => (headers = md));
    call.on("status", (status: grpc.StatusObject) =>
      // The callback runs before the status event, but give it a tick anyway.
      setImmediate(() => resolve({ response, error, headers, status })),
    );
  });
}

/** Reads a response stream to its status. */
function readStream<T>(
  call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>,
  onMessage?: (message: T, index: number) => void,
): Promise<CallOutcome<T[]>> {
  return new Promise((resolve) => {
    const messages: T[] = [];
    let error: grpc.ServiceError | undefined;
    let headers: grpc.Metadata | undefined;
    call.on("data", (m: T) => {
      messages.push(m);
      onMessage?.(m, messages.length - 1);
    });
    call.on("metadata", (md: grpc.Metadata) => (headers = md));
    call.on("error", (e: grpc.ServiceError) => (error = e));
    call.on("status", (status: grpc.StatusObject) =>
      setImmediate(() =>
        resolve({ response: messages, error, headers, status }),
      ),
    );
  });
}

// ---------------------------------------------------------------------------
// The services under test; tests change a method's behaviour with a hook.

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

function greetLogic(request: GreetRequest) {
  return {
    greeting: `Hello, ${request.name}!`,
    request,
    greetedAtUnixMillis: 1_700_000_000_000n,
    moods: [Mood.HAPPY, Mood.UNSPECIFIED, Mood.GRUMPY],
  };
}

function echoLogic(request: EchoRequest) {
  return {
    payload: request.payload,
    data: request.data,
    numbers: request.numbers,
    blobs: request.blobs,
  };
}

let elizaHooks: Partial<ElizaServiceImplementation> = {};
let greetHooks: Partial<GreetServiceImplementation> = {};
/** The protocol every implementation call saw. */
let protocols: string[] = [];

afterEach(() => {
  elizaHooks = {};
  greetHooks = {};
  protocols = [];
});

function seen(context: HandlerContext): void {
  protocols.push(context.protocol);
}

const elizaImpl: ElizaServiceImplementation = {
  say(request, context) {
    seen(context);
    if (elizaHooks.say) return elizaHooks.say(request, context);
    return { sentence: `You said: ${request.sentence}` };
  },
  introduce(request, context) {
    seen(context);
    if (elizaHooks.introduce) return elizaHooks.introduce(request, context);
    return (async function* () {
      yield { sentence: `Hi ${request.name}, I'm Eliza.` };
      yield { sentence: "How are you feeling today?" };
      yield { sentence: "Tell me more." };
    })();
  },
  async pontificate(requests, context) {
    seen(context);
    if (elizaHooks.pontificate)
      return elizaHooks.pontificate(requests, context);
    const sentences: string[] = [];
    for await (const r of requests) sentences.push(r.sentence);
    return { sentence: sentences.join(" | "), count: sentences.length };
  },
  converse(requests, context) {
    seen(context);
    if (elizaHooks.converse) return elizaHooks.converse(requests, context);
    return (async function* () {
      for await (const r of requests) {
        yield { sentence: `You said: ${r.sentence}` };
      }
    })();
  },
};

const greetImpl: GreetServiceImplementation = {
  greet(request, context) {
    seen(context);
    if (greetHooks.greet) return greetHooks.greet(request, context);
    return greetLogic(request);
  },
  echo(request, context) {
    seen(context);
    if (greetHooks.echo) return greetHooks.echo(request, context);
    return echoLogic(request);
  },
  fail(request, context) {
    seen(context);
    if (greetHooks.fail) return greetHooks.fail(request, context);
    throw new ConnectError(request.message, request.code as Code);
  },
};

/** Calls seen by the server interceptor, by URL path. */
const intercepted: string[] = [];
const countingInterceptor: Interceptor = (next) => async (request) => {
  intercepted.push(new URL(request.url).pathname);
  return next(request);
};

function combined(options: HandlerOptions = {}): NodeListener {
  return nodeHandler(
    createElizaServiceHandler(elizaImpl, options),
    createGreetServiceHandler(greetImpl, options),
  ) as NodeListener;
}

/** What a recording wrapper saw of one HTTP/2 request. */
interface Exchange {
  readonly path: string;
  readonly requestHeaders: http2.IncomingHttpHeaders;
  /** The headers the server sent (read after the call). */
  responseHeaders(): http2.OutgoingHttpHeaders;
}

/** Wraps a listener, recording every request's headers and the response headers. */
function recording(listener: NodeListener, log: Exchange[]): NodeListener {
  return (request, response) => {
    const stream = "stream" in request ? request.stream : undefined;
    log.push({
      path: request.url ?? "",
      requestHeaders: { ...request.headers },
      responseHeaders: () => stream?.sentHeaders ?? {},
    });
    listener(request, response);
  };
}

// ---------------------------------------------------------------------------
// Servers, all on 127.0.0.1 port 0.

const closers: (() => Promise<void>)[] = [];

async function serve(kind: ServerKind, listener: NodeListener) {
  const server = await startServer(kind, listener);
  closers.push(() => server.close());
  return server.url;
}

const exchanges: Exchange[] = [];
let h2cUrl = "";
let h2Url = "";
let limitedUrl = "";
let unimplementedUrl = "";
let http1Url = "";

beforeAll(async () => {
  const main = combined({ interceptors: [countingInterceptor] });
  h2cUrl = await serve("h2c", recording(main, exchanges));
  h2Url = await serve("h2", main);
  limitedUrl = await serve("h2c", combined({ readMaxBytes: 1024 }));
  unimplementedUrl = await serve(
    "h2c",
    createElizaServiceHandler({ say: elizaImpl.say }).node as NodeListener,
  );
  http1Url = await serve("http", main);
});

afterAll(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** Resolves true when `signal` aborts (and never otherwise: see within). */
function waitForAbort(signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(true);
      return;
    }
    signal.addEventListener("abort", () => resolve(true), { once: true });
  });
}

// The real timers, taken before any test fakes them (see section 4).
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

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// ---------------------------------------------------------------------------
// 1. The four method kinds, and rich messages.

describe.each([
  { name: "h2c", url: () => h2cUrl },
  { name: "TLS", url: () => h2Url },
])("gRPC over $name: method kinds", ({ url }) => {
  let eliza: AnyClient;
  let greet: AnyClient;
  beforeAll(() => {
    eliza = makeClient(ElizaClient, url());
    greet = makeClient(GreetClient, url());
  });

  it("unary Say", async () => {
    const out = await unary(
      eliza,
      "Say",
      create(SayRequestSchema, { sentence: "héllo ✓" }),
    );
    expect(out.error).toBeUndefined();
    expect(out.status.code).toBe(grpc.status.OK);
    expect(
      equals(
        SayResponseSchema,
        out.response as never,
        create(SayResponseSchema, { sentence: "You said: héllo ✓" }),
      ),
    ).toBe(true);
    expect(protocols).toEqual(["grpc"]);
  });

  it("server streaming Introduce", async () => {
    const call = eliza["Introduce"]!(
      create(IntroduceRequestSchema, { name: "Ada" }),
    ) as grpc.ClientReadableStream<unknown>;
    const out = await readStream(call);
    expect(out.error).toBeUndefined();
    expect(out.status.code).toBe(grpc.status.OK);
    expect(
      out.response!.map((m) => (m as { sentence: string }).sentence),
    ).toEqual([
      "Hi Ada, I'm Eliza.",
      "How are you feeling today?",
      "Tell me more.",
    ]);
    expect(protocols).toEqual(["grpc"]);
  });

  it("client streaming Pontificate", async () => {
    const out = await new Promise<{
      err: grpc.ServiceError | null;
      res: unknown;
    }>((resolve) => {
      const call = eliza["Pontificate"]!(
        (err: grpc.ServiceError | null, res: unknown) => resolve({ err, res }),
      ) as grpc.ClientWritableStream<unknown>;
      for (const s of ["one", "two ✓", ""]) {
        call.write(create(PontificateRequestSchema, { sentence: s }));
      }
      call.end();
    });
    expect(out.err).toBeNull();
    expect(
      equals(
        PontificateResponseSchema,
        out.res as never,
        create(PontificateResponseSchema, {
          sentence: "one | two ✓ | ",
          count: 3,
        }),
      ),
    ).toBe(true);
  });

  it("bidi Converse, full duplex: each request sent only after the previous response", async () => {
    const call = eliza["Converse"]!() as grpc.ClientDuplexStream<
      unknown,
      unknown
    >;
    const sentences = ["first", "second ✓", "third"];
    const send = (i: number) =>
      call.write(create(ConverseRequestSchema, { sentence: sentences[i]! }));
    const done = readStream(call, (_m, index) => {
      if (index + 1 < sentences.length) send(index + 1);
      else call.end();
    });
    send(0);
    const out = await within(done, undefined);
    expect(out, "full duplex stalled").toBeDefined();
    expect(out!.error).toBeUndefined();
    expect(
      out!.response!.map((m) => (m as { sentence: string }).sentence),
    ).toEqual(sentences.map((s) => `You said: ${s}`));
  });

  it("bidi Converse with no requests", async () => {
    const call = eliza["Converse"]!() as grpc.ClientDuplexStream<
      unknown,
      unknown
    >;
    call.end();
    const out = await readStream(call);
    expect(out.error).toBeUndefined();
    expect(out.response).toEqual([]);
  });

  it("Greet with every field type", async () => {
    const request = create(GreetRequestSchema, greetRequest);
    const out = await unary(greet, "Greet", request);
    expect(out.error).toBeUndefined();
    const expected = create(GreetResponseSchema, greetLogic(request));
    expect(equals(GreetResponseSchema, out.response as never, expected)).toBe(
      true,
    );
  });

  it("Echo with bytes, int64 and bytes maps", async () => {
    const request = create(EchoRequestSchema, {
      payload: greetRequest,
      data: new Uint8Array(3000).map((_, i) => (i * 7) & 0xff),
      numbers: [0n, -1n, 9223372036854775807n, -9223372036854775808n],
      blobs: { a: new Uint8Array([0, 255]), "": new Uint8Array() },
    });
    const out = await unary(greet, "Echo", request);
    expect(out.error).toBeUndefined();
    expect(
      equals(
        EchoResponseSchema,
        out.response as never,
        create(EchoResponseSchema, echoLogic(request)),
      ),
    ).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// 2. Metadata.

describe("gRPC metadata", () => {
  let eliza: AnyClient;
  beforeAll(() => {
    eliza = makeClient(ElizaClient, h2cUrl);
  });

  it("request metadata reaches context.requestHeaders, text and binary", async () => {
    let headers: Headers | undefined;
    elizaHooks.say = (request, context) => {
      headers = new Headers(context.requestHeaders);
      return { sentence: request.sentence };
    };
    const out = await unary(
      eliza,
      "Say",
      create(SayRequestSchema, { sentence: "x" }),
      metadataOf({
        "x-custom": "value 1",
        "x-trace-bin": Buffer.from([0, 1, 2, 250, 255]),
      }),
    );
    expect(out.error).toBeUndefined();
    expect(headers?.get("x-custom")).toBe("value 1");
    expect(headers?.get("content-type")).toMatch(/^application\/grpc/);
    const bin = headers?.get("x-trace-bin");
    expect(bin).toBeTruthy();
    expect([...Buffer.from(bin!, "base64")]).toEqual([0, 1, 2, 250, 255]);
  });

  it("unary: responseHeaders arrive as the metadata event, responseTrailers in the status", async () => {
    elizaHooks.say = (request, context) => {
      context.responseHeaders.set("x-header", "h1");
      context.responseHeaders.append("x-multi", "a");
      context.responseHeaders.append("x-multi", "b");
      context.responseTrailers.set("x-trailer", "t1");
      context.responseTrailers.set(
        "x-trailer-bin",
        Buffer.from([9, 8, 7, 0]).toString("base64"),
      );
      return { sentence: request.sentence };
    };
    const out = await unary(
      eliza,
      "Say",
      create(SayRequestSchema, { sentence: "x" }),
    );
    expect(out.error).toBeUndefined();
    expect(out.headers?.get("x-header")).toEqual(["h1"]);
    expect(out.headers?.get("x-multi").join(",").replace(/\s/g, "")).toBe(
      "a,b",
    );
    expect(out.headers?.get("x-trailer")).toEqual([]);
    expect(out.status.metadata.get("x-trailer")).toEqual(["t1"]);
    const bin = out.status.metadata.get("x-trailer-bin");
    expect(bin).toHaveLength(1);
    expect([...(bin[0] as Buffer)]).toEqual([9, 8, 7, 0]);
  });

  it("server streaming: headers before the messages, trailers in the status", async () => {
    elizaHooks.introduce = async function* (_request, context) {
      context.responseHeaders.set("x-header", "stream-h");
      yield { sentence: "one" };
      context.responseTrailers.set("x-trailer", "stream-t");
      yield { sentence: "two" };
    };
    const call = eliza["Introduce"]!(
      create(IntroduceRequestSchema, { name: "x" }),
    ) as grpc.ClientReadableStream<unknown>;
    let messagesBeforeHeaders = -1;
    let count = 0;
    call.on("data", () => count++);
    call.on("metadata", () => (messagesBeforeHeaders = count));
    const out = await readStream(call);
    expect(out.error).toBeUndefined();
    expect(messagesBeforeHeaders).toBe(0);
    expect(out.headers?.get("x-header")).toEqual(["stream-h"]);
    expect(out.status.metadata.get("x-trailer")).toEqual(["stream-t"]);
    expect(out.response).toHaveLength(2);
  });
});

// ---------------------------------------------------------------------------
// 3. Errors.

function decodeStatusDetails(error: grpc.ServiceError) {
  const values = error.metadata.get("grpc-status-details-bin");
  expect(values).toHaveLength(1);
  const status = fromBinary(StatusSchema, values[0] as Buffer) as unknown as {
    code: number;
    message: string;
    details: Any[];
  };
  return status;
}

describe("gRPC errors", () => {
  let eliza: AnyClient;
  let greet: AnyClient;
  beforeAll(() => {
    eliza = makeClient(ElizaClient, h2cUrl);
    greet = makeClient(GreetClient, h2cUrl);
  });

  it("a ConnectError with code, non-ASCII message, details and metadata", async () => {
    greetHooks.greet = () => {
      throw new ConnectError("café ✓", Code.NotFound, {
        metadata: { "x-error-meta": "m1" },
        details: [
          {
            desc: GreetResponseSchema,
            value: { greeting: "detail ✓", moods: [Mood.HAPPY] },
          },
        ],
      });
    };
    const out = await unary(
      greet,
      "Greet",
      create(GreetRequestSchema, { name: "x" }),
    );
    const error = out.error!;
    expect(error).toBeDefined();
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(error.details).toBe("café ✓");
    expect(error.metadata.get("x-error-meta")).toEqual(["m1"]);
    const status = decodeStatusDetails(error);
    expect(status.code).toBe(grpc.status.NOT_FOUND);
    expect(status.message).toBe("café ✓");
    expect(status.details).toHaveLength(1);
    const any = status.details[0]!;
    expect(any.typeUrl).toBe(
      "type.googleapis.com/fixtures.unary.v1.GreetResponse",
    );
    expect(
      equals(
        GreetResponseSchema,
        fromBinary(GreetResponseSchema, any.value),
        create(GreetResponseSchema, {
          greeting: "detail ✓",
          moods: [Mood.HAPPY],
        }),
      ),
    ).toBe(true);
  });

  it("the Fail method: code and message chosen by the request", async () => {
    const out = await unary(
      greet,
      "Fail",
      create(FailRequestSchema, {
        code: Code.PermissionDenied,
        message: "nope 100% \r\n ✓",
      }),
    );
    expect(out.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(out.error?.details).toBe("nope 100% \r\n ✓");
  });

  it("a plain Error → UNKNOWN", async () => {
    greetHooks.greet = () => {
      throw new Error("boom");
    };
    const out = await unary(
      greet,
      "Greet",
      create(GreetRequestSchema, { name: "x" }),
    );
    expect(out.error?.code).toBe(grpc.status.UNKNOWN);
  });

  it("server stream failing before any message, after setting headers", async () => {
    elizaHooks.introduce = async function* (_request, context) {
      context.responseHeaders.set("x-early", "e");
      throw new ConnectError("not here ✓", Code.NotFound, {
        details: [{ desc: GreetResponseSchema, value: { greeting: "d" } }],
      });
    };
    const call = eliza["Introduce"]!(
      create(IntroduceRequestSchema, { name: "x" }),
    ) as grpc.ClientReadableStream<unknown>;
    const out = await readStream(call);
    expect(out.response).toEqual([]);
    expect(out.error?.code).toBe(grpc.status.NOT_FOUND);
    expect(out.error?.details).toBe("not here ✓");
    const status = decodeStatusDetails(out.error!);
    expect(status.details[0]?.typeUrl).toBe(
      "type.googleapis.com/fixtures.unary.v1.GreetResponse",
    );
    // Headers set before the error go out as headers, the status as
    // trailers: grpc-js reports them as the call's metadata.
    expect(out.headers?.get("x-early")).toEqual(["e"]);
    expect(out.error?.metadata.get("x-early")).toEqual([]);
  });

  it("server stream failing after 2 messages", async () => {
    elizaHooks.introduce = async function* () {
      yield { sentence: "one" };
      yield { sentence: "two" };
      throw new ConnectError("stopped", Code.ResourceExhausted);
    };
    const call = eliza["Introduce"]!(
      create(IntroduceRequestSchema, { name: "x" }),
    ) as grpc.ClientReadableStream<unknown>;
    const out = await readStream(call);
    expect(
      out.response!.map((m) => (m as { sentence: string }).sentence),
    ).toEqual(["one", "two"]);
    expect(out.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(out.error?.details).toBe("stopped");
  });

  it("client stream failing", async () => {
    elizaHooks.pontificate = async (requests) => {
      for await (const r of requests) {
        if (r.sentence === "bad") {
          throw new ConnectError("bad sentence", Code.InvalidArgument);
        }
      }
      return {};
    };
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = eliza["Pontificate"]!((e: grpc.ServiceError | null) =>
        resolve(e),
      ) as grpc.ClientWritableStream<unknown>;
      call.write(create(PontificateRequestSchema, { sentence: "ok" }));
      call.write(create(PontificateRequestSchema, { sentence: "bad" }));
      call.end();
    });
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toBe("bad sentence");
  });
});

// ---------------------------------------------------------------------------
// 4. Deadlines and cancellation.

describe("gRPC deadlines and cancellation", () => {
  let eliza: AnyClient;
  beforeAll(() => {
    eliza = makeClient(ElizaClient, h2cUrl);
  });

  // grpc-js and our server time deadlines with setTimeout and Date.now: with
  // both faked, the deadline passes when the test advances the clock, once
  // the implementation is at work, however slow the machine. A call first
  // connects the channel, so that no connection is set up on the faked clock.
  async function withFakeClock(body: () => Promise<void>): Promise<void> {
    elizaHooks.say = (request) => ({ sentence: request.sentence });
    const warm = await unary(
      eliza,
      "Say",
      create(SayRequestSchema, { sentence: "warm" }),
    );
    expect(warm.error).toBeUndefined();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      await body();
    } finally {
      vi.useRealTimers();
    }
  }

  it("a deadline reaches the implementation: timeoutMs 100 on a frozen clock, signal aborts, DEADLINE_EXCEEDED", async () => {
    let timeoutMs: number | undefined;
    const started = deferred<void>();
    const aborted = deferred<boolean>();
    await withFakeClock(async () => {
      elizaHooks.say = async (request, context) => {
        timeoutMs = context.timeoutMs();
        started.resolve();
        aborted.resolve(await waitForAbort(context.signal));
        return { sentence: request.sentence };
      };
      const call = unary(
        eliza,
        "Say",
        create(SayRequestSchema, { sentence: "slow" }),
        undefined,
        { deadline: Date.now() + 100 },
      );
      await started.promise;
      vi.advanceTimersByTime(100);
      const out = await call;
      expect(out.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    });
    expect(await within(aborted.promise, false)).toBe(true);
    // The clock is frozen: the whole 100 ms reach the implementation.
    expect(timeoutMs).toBe(100);
  });

  it("a server stream outliving its deadline", async () => {
    const aborted = deferred<boolean>();
    let received: unknown[] = [];
    await withFakeClock(async () => {
      const first = deferred<void>();
      elizaHooks.introduce = async function* (_request, context) {
        yield { sentence: "one" };
        aborted.resolve(await waitForAbort(context.signal));
        yield { sentence: "late" };
      };
      const call = eliza["Introduce"]!(
        create(IntroduceRequestSchema, { name: "x" }),
        new grpc.Metadata(),
        { deadline: Date.now() + 150 },
      ) as grpc.ClientReadableStream<unknown>;
      const done = readStream(call, () => first.resolve());
      // The first message is in: the deadline passes mid-stream.
      await first.promise;
      vi.advanceTimersByTime(150);
      const out = await done;
      received = out.response ?? [];
      expect(out.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    });
    expect(received).toHaveLength(1);
    expect(await within(aborted.promise, false)).toBe(true);
  });

  it("no deadline: timeoutMs() is undefined", async () => {
    let timeoutMs: number | undefined | null = null;
    elizaHooks.say = (request, context) => {
      timeoutMs = context.timeoutMs();
      return { sentence: request.sentence };
    };
    const out = await unary(
      eliza,
      "Say",
      create(SayRequestSchema, { sentence: "x" }),
    );
    expect(out.error).toBeUndefined();
    expect(timeoutMs).toBeUndefined();
  });

  it("call.cancel() mid server stream aborts the signal and runs the generator's finally", async () => {
    const aborted = deferred<boolean>();
    const finallyRan = deferred<true>();
    elizaHooks.introduce = async function* (_request, context) {
      try {
        yield { sentence: "one" };
        aborted.resolve(await waitForAbort(context.signal));
        yield { sentence: "after cancel" };
        yield { sentence: "after cancel 2" };
      } finally {
        finallyRan.resolve(true);
      }
    };
    const call = eliza["Introduce"]!(
      create(IntroduceRequestSchema, { name: "x" }),
    ) as grpc.ClientReadableStream<unknown>;
    const out = await readStream(call, () => call.cancel());
    expect(out.error?.code).toBe(grpc.status.CANCELLED);
    expect(await within(aborted.promise, false)).toBe(true);
    expect(await within(finallyRan.promise, false)).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// 5. Compression.

describe("gRPC compression", () => {
  it("accepts gzip-compressed requests and compresses responses for a client that accepts gzip", async () => {
    const client = makeClient(ElizaClient, h2cUrl, {
      "grpc.default_compression_algorithm": 2, // gzip
      "grpc.default_compression_level": 2,
    });
    const sentence = "compress me ✓ ".repeat(300);
    const from = exchanges.length;
    const out = await unary(
      client,
      "Say",
      create(SayRequestSchema, { sentence }),
    );
    expect(out.error).toBeUndefined();
    expect((out.response as { sentence: string }).sentence).toBe(
      `You said: ${sentence}`,
    );
    const exchange = exchanges.slice(from).find((e) => e.path.endsWith("/Say"));
    expect(exchange).toBeDefined();
    expect(exchange!.requestHeaders["grpc-encoding"]).toBe("gzip");
    expect(exchange!.responseHeaders()["grpc-encoding"]).toBe("gzip");
  });

  it("gzip on every message of a bidi stream", async () => {
    const client = makeClient(ElizaClient, h2cUrl, {
      "grpc.default_compression_algorithm": 2,
    });
    const call = client["Converse"]!() as grpc.ClientDuplexStream<
      unknown,
      unknown
    >;
    const sentences = ["a".repeat(5000), "b".repeat(5000), "c"];
    for (const s of sentences) {
      call.write(create(ConverseRequestSchema, { sentence: s }));
    }
    call.end();
    const out = await readStream(call);
    expect(out.error).toBeUndefined();
    expect(
      out.response!.map((m) => (m as { sentence: string }).sentence),
    ).toEqual(sentences.map((s) => `You said: ${s}`));
  });

  // grpc-js learns the server's encodings only from the headers of a response
  // that is not trailers-only, so a deflate-configured channel cannot fall
  // back by itself: the server offers deflate for such clients.
  it("deflate-compressed requests are accepted", async () => {
    const client = makeClient(ElizaClient, h2cUrl, {
      "grpc.default_compression_algorithm": 1, // deflate
    });
    const from = exchanges.length;
    const sentence = "deflate ".repeat(500);
    const out = await unary(
      client,
      "Say",
      create(SayRequestSchema, { sentence }),
    );
    expect(out.error).toBeUndefined();
    expect((out.response as { sentence: string }).sentence).toBe(
      `You said: ${sentence}`,
    );
    expect(
      exchanges
        .slice(from)
        .some((e) => e.requestHeaders["grpc-encoding"] === "deflate"),
    ).toBe(true);
  });

  it("uncompressed requests get responses the client can read", async () => {
    const client = makeClient(ElizaClient, h2cUrl);
    const from = exchanges.length;
    const sentence = "plain ".repeat(500);
    const out = await unary(
      client,
      "Say",
      create(SayRequestSchema, { sentence }),
    );
    expect(out.error).toBeUndefined();
    expect((out.response as { sentence: string }).sentence).toBe(
      `You said: ${sentence}`,
    );
    const exchange = exchanges.slice(from).find((e) => e.path.endsWith("/Say"));
    expect(exchange!.requestHeaders["grpc-encoding"]).toBeUndefined();
  });

  it("a client accepting only identity gets an uncompressed response", async () => {
    const sentence = "x".repeat(4000);
    const res = await rawGrpc(
      h2cUrl,
      elizaPath + "Say",
      {
        "grpc-accept-encoding": "identity",
      },
      frame(toBinary(SayRequestSchema, create(SayRequestSchema, { sentence }))),
    );
    expect(grpcStatusOf(res)).toBe("0");
    expect(res.headers["grpc-encoding"] ?? "identity").toBe("identity");
    const messages = unframe(res.body);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.flags).toBe(0);
    expect(fromBinary(SayResponseSchema, messages[0]!.data).sentence).toBe(
      `You said: ${sentence}`,
    );
  });
});

// ---------------------------------------------------------------------------
// 6. Receive limit.

describe("gRPC receive limit", () => {
  it("readMaxBytes: 1024 rejects a 10 KiB request with RESOURCE_EXHAUSTED, and keeps serving", async () => {
    const client = makeClient(ElizaClient, limitedUrl);
    const big = await unary(
      client,
      "Say",
      create(SayRequestSchema, { sentence: "x".repeat(10 * 1024) }),
    );
    expect(big.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const small = await unary(
      client,
      "Say",
      create(SayRequestSchema, { sentence: "small" }),
    );
    expect(small.error).toBeUndefined();
    expect((small.response as { sentence: string }).sentence).toBe(
      "You said: small",
    );
  });

  it("the limit applies after decompression", async () => {
    const client = makeClient(ElizaClient, limitedUrl, {
      "grpc.default_compression_algorithm": 2,
    });
    const big = await unary(
      client,
      "Say",
      create(SayRequestSchema, { sentence: "x".repeat(10 * 1024) }),
    );
    expect(big.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});

// ---------------------------------------------------------------------------
// 7. Interceptors. 8. Unimplemented.

describe("gRPC interceptors and routing", () => {
  it("server interceptors see gRPC calls of every kind; implementations see protocol grpc", async () => {
    const client = makeClient(ElizaClient, h2cUrl);
    const from = intercepted.length;
    await unary(client, "Say", create(SayRequestSchema, { sentence: "x" }));
    await readStream(
      client["Introduce"]!(
        create(IntroduceRequestSchema, { name: "x" }),
      ) as grpc.ClientReadableStream<unknown>,
    );
    const bidi = client["Converse"]!() as grpc.ClientDuplexStream<
      unknown,
      unknown
    >;
    bidi.write(create(ConverseRequestSchema, { sentence: "x" }));
    bidi.end();
    await readStream(bidi);
    expect(intercepted.slice(from)).toEqual([
      elizaPath + "Say",
      elizaPath + "Introduce",
      elizaPath + "Converse",
    ]);
    expect(protocols).toEqual(["grpc", "grpc", "grpc"]);
  });

  it("a method the implementation leaves out → UNIMPLEMENTED", async () => {
    const client = makeClient(ElizaClient, unimplementedUrl);
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client["Pontificate"]!((e: grpc.ServiceError | null) =>
        resolve(e),
      ) as grpc.ClientWritableStream<unknown>;
      call.write(create(PontificateRequestSchema, { sentence: "x" }));
      call.end();
    });
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
    const out = await unary(
      client,
      "Say",
      create(SayRequestSchema, { sentence: "still" }),
    );
    expect(out.error).toBeUndefined();
  });

  it("a method the service does not have → UNIMPLEMENTED", async () => {
    const client = makeClient(ElizaClient, h2cUrl);
    const out = await unary(
      client,
      "Nope",
      create(SayRequestSchema, { sentence: "x" }),
    );
    expect(out.error?.code).toBe(grpc.status.UNIMPLEMENTED);
  });
});

// ---------------------------------------------------------------------------
// Raw requests grpc-js would never send.

function frame(data: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

function unframe(body: Buffer): { flags: number; data: Uint8Array }[] {
  const out: { flags: number; data: Uint8Array }[] = [];
  let offset = 0;
  while (offset + 5 <= body.length) {
    const length = body.readUInt32BE(offset + 1);
    out.push({
      flags: body[offset]!,
      data: body.subarray(offset + 5, offset + 5 + length),
    });
    offset += 5 + length;
  }
  return out;
}

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly trailers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** grpc-status from the trailers, or from the headers of a trailers-only response. */
function grpcStatusOf(res: RawResponse): string | undefined {
  const value = res.trailers["grpc-status"] ?? res.headers["grpc-status"];
  return Array.isArray(value) ? value[0] : value;
}

async function rawGrpc(
  url: string,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  body: Uint8Array,
): Promise<RawResponse> {
  const session = http2.connect(url);
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      session.once("error", reject);
      const req = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      let status = 0;
      let responseHeaders: RawResponse["headers"] = {};
      let trailers: RawResponse["trailers"] = {};
      const chunks: Buffer[] = [];
      req.on("response", (h) => {
        status = Number(h[":status"]);
        responseHeaders = h;
      });
      req.on("trailers", (t) => (trailers = t));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("error", reject);
      req.on("close", () =>
        resolve({
          status,
          headers: responseHeaders,
          trailers,
          body: Buffer.concat(chunks),
        }),
      );
      req.end(body);
    });
  } finally {
    session.close();
  }
}

const sayFrame = () =>
  frame(
    toBinary(SayRequestSchema, create(SayRequestSchema, { sentence: "hi" })),
  );

async function stillServes(url: string): Promise<void> {
  const res = await rawGrpc(url, elizaPath + "Say", {}, sayFrame());
  expect(res.status).toBe(200);
  expect(grpcStatusOf(res)).toBe("0");
  const messages = unframe(res.body);
  expect(fromBinary(SayResponseSchema, messages[0]!.data).sentence).toBe(
    "You said: hi",
  );
}

describe("raw gRPC requests", () => {
  it("a well-formed raw request succeeds (baseline)", async () => {
    await stillServes(h2cUrl);
  });

  it("garbled grpc-timeout → a non-zero grpc-status; the server keeps serving", async () => {
    const res = await rawGrpc(
      h2cUrl,
      elizaPath + "Say",
      { "grpc-timeout": "1x" },
      sayFrame(),
    );
    const status = grpcStatusOf(res);
    expect(status).toBeDefined();
    expect(status).not.toBe("0");
    await stillServes(h2cUrl);
  });

  it("unknown grpc-encoding snappy → UNIMPLEMENTED (12) with grpc-accept-encoding", async () => {
    const res = await rawGrpc(
      h2cUrl,
      elizaPath + "Say",
      { "grpc-encoding": "snappy" },
      frame(new Uint8Array([1, 2, 3]), 1),
    );
    expect(grpcStatusOf(res)).toBe("12");
    const accept =
      res.headers["grpc-accept-encoding"] ??
      res.trailers["grpc-accept-encoding"];
    expect(accept).toBeDefined();
    expect(String(accept)).toMatch(/gzip/);
    await stillServes(h2cUrl);
  });

  it("an envelope cut short → INVALID_ARGUMENT (3) or INTERNAL (13, as grpc-go answers)", async () => {
    const full = sayFrame();
    // The prefix promises more bytes than the body carries.
    const truncated = full.subarray(0, full.length - 2);
    const res = await rawGrpc(h2cUrl, elizaPath + "Say", {}, truncated);
    expect(["3", "13"]).toContain(grpcStatusOf(res));
    await stillServes(h2cUrl);
  });

  it("a bare 3-byte body (not even an envelope prefix) → INVALID_ARGUMENT or INTERNAL", async () => {
    const res = await rawGrpc(
      h2cUrl,
      elizaPath + "Say",
      {},
      new Uint8Array([0, 0, 0]),
    );
    expect(["3", "13"]).toContain(grpcStatusOf(res));
  });

  it("gRPC over HTTP/1.1 (node:http) → non-200 or a grpc-status error; the server keeps serving", async () => {
    const body = sayFrame();
    const res = await new Promise<{
      status: number;
      headers: http.IncomingHttpHeaders;
      trailers: NodeJS.Dict<string>;
    }>((resolve, reject) => {
      const req = http.request(
        http1Url + elizaPath + "Say",
        {
          method: "POST",
          headers: {
            "content-type": "application/grpc",
            te: "trailers",
            "content-length": body.length,
          },
        },
        (response) => {
          response.resume();
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              trailers: response.trailers,
            }),
          );
          response.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    const grpcStatus =
      res.trailers["grpc-status"] ?? res.headers["grpc-status"];
    expect(
      res.status !== 200 || (grpcStatus !== undefined && grpcStatus !== "0"),
      `HTTP ${res.status}, grpc-status ${String(grpcStatus)}`,
    ).toBe(true);
    // Connect over HTTP/1.1 on the same server still works.
    const connect = await fetch(http1Url + elizaPath + "Say", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sentence: "hi" }),
    });
    expect(connect.status).toBe(200);
    expect(await connect.json()).toEqual({ sentence: "You said: hi" });
  });

  it("gRPC over HTTP/1.1 to the TLS allowHTTP1 server → non-200 or a grpc-status error; gRPC over h2 still works", async () => {
    const body = sayFrame();
    const res = await new Promise<{
      status: number;
      headers: http.IncomingHttpHeaders;
      trailers: NodeJS.Dict<string>;
    }>((resolve, reject) => {
      const req = https.request(
        h2Url + elizaPath + "Say",
        {
          method: "POST",
          ca: testCertificate().cert,
          headers: {
            "content-type": "application/grpc+proto",
            te: "trailers",
            "content-length": body.length,
          },
        },
        (response) => {
          response.resume();
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              trailers: response.trailers,
            }),
          );
          response.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    const grpcStatus =
      res.trailers["grpc-status"] ?? res.headers["grpc-status"];
    expect(
      res.status !== 200 || (grpcStatus !== undefined && grpcStatus !== "0"),
      `HTTP ${res.status}, grpc-status ${String(grpcStatus)}`,
    ).toBe(true);
    const client = makeClient(ElizaClient, h2Url);
    const out = await unary(
      client,
      "Say",
      create(SayRequestSchema, { sentence: "after" }),
    );
    expect(out.error).toBeUndefined();
  });
});
