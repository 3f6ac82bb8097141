// Malformed gRPC and gRPC-Web traffic in both directions.
//
// A. Raw requests (node:http, node:http2 h2c, and the fetch handler in
//    process) that no well-behaved client sends, to the generated server:
//    each gets HTTP 200 with a gRPC-Web content type and its status in the
//    final 0x80 envelope of the body (or 405 / 415 where the request is not
//    gRPC-Web at all), and the server keeps serving afterwards.
// B. Raw servers (node:http2 with a `stream` handler, node:http) that answer
//    the generated gRPC and gRPC-Web clients with broken responses: each call
//    fails with a ConnectError of the right code and a message that says what
//    was wrong, within a few seconds, without an unhandled error, and the same
//    client then still makes a good call.

import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  codeToString,
  createElizaServiceClient,
  createFetchHttpClient,
  createElizaServiceHandler,
  type ElizaServiceClient,
  type NodeServiceHandler,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  IntroduceRequestSchema,
  SayRequestSchema,
  SayResponseSchema,
} from "./gen/eliza/v1/eliza_pb.ts";
import {
  createGreetServiceClient,
  grpcWebProtocol as greetGrpcWebProtocol,
  type NodeClientOptions as GreetClientOptions,
} from "./gen/unary/v1/unary.GreetService.ts";
import {
  rawRequest,
  type RawResponse as RawHttpResponse,
} from "./support/raw-http.ts";
import { elizaProtocols } from "./support/protocols.ts";
import { startServer, type NodeListener } from "./support/servers.ts";

const elizaPath = "/connectrpc.eliza.v1.ElizaService/";
const sayPath = elizaPath + "Say";
const introducePath = elizaPath + "Introduce";
const webProto = "application/grpc-web+proto";
const webJson = "application/grpc-web+json";
/** The generated server's receive limit in part A. */
const serverReadMaxBytes = 1024;
/**
 * How long a call may take before the harness calls it hung: a guard against
 * a hang, never a measure of speed, so long enough for a machine at a load
 * of 10.
 */
const hangMs = 20_000;

// ---------------------------------------------------------------------------
// Process-level failures: none may happen while this file runs.

const processFailures: unknown[] = [];
const onFailure = (reason: unknown) => {
  processFailures.push(reason);
};

// ---------------------------------------------------------------------------
// Wire helpers, written independently of the runtime under test.

const encoder = new TextEncoder();
const text = (s: string) => encoder.encode(s);

function frame(data: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const sayRequest = (sentence: string) =>
  toBinary(SayRequestSchema, create(SayRequestSchema, { sentence }));
const introduceRequest = (name: string) =>
  toBinary(IntroduceRequestSchema, create(IntroduceRequestSchema, { name }));
/** SayResponse and IntroduceResponse are both `string sentence = 1`: one encoding serves both. */
const sentenceResponse = (sentence: string) =>
  toBinary(SayResponseSchema, create(SayResponseSchema, { sentence }));

/** The payload of a gRPC-Web trailer envelope: `name: value\r\n` lines. */
function trailerLines(trailer: Record<string, string>): Uint8Array {
  return text(
    Object.entries(trailer)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join(""),
  );
}

interface WebBody {
  readonly messages: { flags: number; data: Uint8Array }[];
  readonly trailer: Record<string, string>;
}

/**
 * Parses a gRPC-Web response body strictly: whole envelopes, exactly one
 * trailer envelope (flag 0x80), last, with lower-case `name: value` CRLF
 * lines as PROTOCOL-WEB.md requires.
 */
function parseWebBody(body: Uint8Array): WebBody {
  const messages: WebBody["messages"] = [];
  let trailer: Record<string, string> | undefined;
  let offset = 0;
  while (offset < body.length) {
    if (trailer !== undefined) {
      throw new Error(
        `${body.length - offset} bytes after the trailer envelope`,
      );
    }
    if (body.length - offset < 5) {
      throw new Error("body ends inside an envelope header");
    }
    const flags = body[offset]!;
    const length = new DataView(
      body.buffer,
      body.byteOffset + offset + 1,
      4,
    ).getUint32(0);
    const data = body.subarray(offset + 5, offset + 5 + length);
    if (data.length !== length) {
      throw new Error("body ends inside an envelope");
    }
    offset += 5 + length;
    if (flags === 0x80) {
      const lines = Buffer.from(data).toString("latin1");
      if (!lines.endsWith("\r\n")) {
        throw new Error(`trailer block without a final CRLF: ${lines}`);
      }
      trailer = {};
      for (const line of lines.slice(0, -2).split("\r\n")) {
        const match = /^([a-z0-9-]+): ?(.*)$/.exec(line);
        if (match === null) {
          throw new Error(`bad trailer line ${JSON.stringify(line)}`);
        }
        trailer[match[1]!] = match[2]!;
      }
    } else {
      messages.push({ flags, data });
    }
  }
  if (trailer === undefined) {
    throw new Error("no trailer envelope");
  }
  return { messages, trailer };
}

/** Resolves or rejects as `promise` does, but rejects after hangMs. */
async function settle<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: no outcome after ${hangMs} ms`)),
          hangMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// Part A: the generated server, on HTTP/1.1, h2c and the fetch handler.

const elizaHandler: NodeServiceHandler = createElizaServiceHandler(
  {
    say: (request) => ({ sentence: `You said: ${request.sentence}` }),
    async *introduce(request) {
      yield { sentence: `Hi ${request.name}, I'm Eliza.` };
      yield { sentence: "How are you feeling today?" };
    },
  },
  { readMaxBytes: serverReadMaxBytes },
);

const closers: (() => Promise<void>)[] = [];
let serverHttp1Url = "";
let serverH2cUrl = "";
let rawH2Url = "";
let rawHttp1Url = "";
let h2Session: http2.ClientHttp2Session | undefined;

interface RawRequest {
  readonly method?: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
}

interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  /** HTTP trailers (HTTP/2 only). */
  readonly trailers: Headers;
  readonly body: Uint8Array;
}

function toHeaders(from: RawHttpResponse["headers"]): Headers {
  const out = new Headers();
  for (const [key, value] of Object.entries(from)) {
    if (key.startsWith(":") || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.append(key, v);
  }
  return out;
}

/** What test/support/raw-http.ts received, its headers as Headers. */
function fromRaw(raw: RawHttpResponse): RawResponse {
  return {
    status: raw.status,
    headers: toHeaders(raw.headers),
    trailers: toHeaders(raw.trailers),
    body: new Uint8Array(raw.body),
  };
}

async function sendHttp1(request: RawRequest): Promise<RawResponse> {
  return fromRaw(
    await rawRequest("1.1", serverHttp1Url + request.path, {
      ...(request.method === undefined ? {} : { method: request.method }),
      headers: {
        ...request.headers,
        ...(request.body === undefined
          ? {}
          : { "content-length": String(request.body.length) }),
      },
      ...(request.body === undefined ? {} : { body: request.body }),
    }),
  );
}

async function sendH2c(request: RawRequest): Promise<RawResponse> {
  if (h2Session === undefined || h2Session.closed || h2Session.destroyed) {
    h2Session = http2.connect(serverH2cUrl);
    h2Session.on("error", () => {});
  }
  return fromRaw(
    await rawRequest("2", serverH2cUrl + request.path, {
      ...(request.method === undefined ? {} : { method: request.method }),
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      session: h2Session,
      // The server may reset a stream whose body it did not read after answering.
      resetAfterResponseOk: true,
    }),
  );
}

async function sendFetch(request: RawRequest): Promise<RawResponse> {
  const response = await elizaHandler.fetch(
    new Request("http://127.0.0.1" + request.path, {
      method: request.method ?? "POST",
      headers: request.headers,
      // The DOM typings take only ArrayBuffer-backed views; these all are.
      ...(request.body === undefined
        ? {}
        : { body: request.body as Uint8Array<ArrayBuffer> }),
    }),
  );
  return {
    status: response.status,
    headers: response.headers,
    trailers: new Headers(),
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

type Sender = (request: RawRequest) => Promise<RawResponse>;

/** Options for a generated gRPC-Web client of the server under test on the same transport. */
type ClientOn = () => { url: string } & GreetClientOptions;

const serverTransports: readonly (readonly [string, Sender, ClientOn])[] = [
  [
    "HTTP/1.1 (node:http)",
    sendHttp1,
    () => ({ url: serverHttp1Url, transport: "fetch" }),
  ],
  ["HTTP/2 (h2c)", sendH2c, () => ({ url: serverH2cUrl, transport: "http2" })],
  [
    "the fetch handler",
    sendFetch,
    () => ({
      url: "http://127.0.0.1",
      httpClient: createFetchHttpClient(((input, init) =>
        elizaHandler.fetch(new Request(input, init))) as typeof fetch),
    }),
  ],
];

/** A valid gRPC-Web call on the same transport: the server still serves. */
async function expectWebServing(send: Sender): Promise<void> {
  const res = await settle(
    send({
      path: sayPath,
      headers: { "content-type": webProto, "x-grpc-web": "1" },
      body: frame(sayRequest("still here")),
    }),
    "the follow-up call",
  );
  expect(res.status).toBe(200);
  const body = parseWebBody(res.body);
  expect(body.trailer["grpc-status"]).toBe("0");
  expect(body.messages).toHaveLength(1);
  expect(fromBinary(SayResponseSchema, body.messages[0]!.data).sentence).toBe(
    "You said: still here",
  );
}

interface BadWebRequest {
  readonly name: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly json?: boolean;
  readonly body: Uint8Array;
  readonly code: Code;
  /** Matched against the decoded grpc-message. */
  readonly message: RegExp;
  readonly check?: (res: RawResponse, trailer: Record<string, string>) => void;
}

const sayFrame = frame(sayRequest("hi"));
const introduceFrame = frame(introduceRequest("Ada"));

// Where the specifications leave a choice (InvalidArgument or Internal for a
// request cut short, any error for bad flags), the code pinned here is the
// one the runtime gives: InvalidArgument for every malformed request body.
const badWebRequests: readonly BadWebRequest[] = [
  ...["1x", "123456789S", "-1S", "1.5S"].map((timeout): BadWebRequest => ({
    name: `grpc-timeout "${timeout}" → INVALID_ARGUMENT`,
    headers: { "grpc-timeout": timeout },
    body: sayFrame,
    code: Code.InvalidArgument,
    message: /invalid grpc-timeout/,
  })),
  {
    name: "unknown grpc-encoding snappy → UNIMPLEMENTED, with grpc-accept-encoding",
    headers: { "grpc-encoding": "snappy" },
    body: frame(new Uint8Array([1, 2, 3]), 1),
    code: Code.Unimplemented,
    message: /snappy/,
    check(res) {
      const accept = res.headers.get("grpc-accept-encoding");
      expect(accept).not.toBeNull();
      const names = accept!.split(",").map((s) => s.trim());
      expect(names).toContain("gzip");
      expect(names).not.toContain("snappy");
    },
  },
  {
    name: "an envelope header alone, its payload missing → INVALID_ARGUMENT",
    body: new Uint8Array([0, 0, 0, 0, 10]),
    code: Code.InvalidArgument,
    message: /ended inside an envelope/,
  },
  {
    name: "3 bytes of an envelope header → INVALID_ARGUMENT",
    body: new Uint8Array([0, 0, 0]),
    code: Code.InvalidArgument,
    message: /ended inside an envelope header/,
  },
  {
    name: "a payload shorter than declared → INVALID_ARGUMENT",
    body: sayFrame.subarray(0, sayFrame.length - 2),
    code: Code.InvalidArgument,
    message: /ended inside an envelope/,
  },
  {
    name: "the compressed flag without grpc-encoding → INTERNAL",
    body: frame(gzipSync(sayRequest("hi")), 1),
    code: Code.Internal,
    message: /compressed/,
  },
  {
    name: "a request envelope with flag 0x80 (trailers) → INVALID_ARGUMENT",
    body: frame(sayRequest("hi"), 0x80),
    code: Code.InvalidArgument,
    message: /flags 128/,
  },
  {
    name: "a request envelope with flag 0x02 → INVALID_ARGUMENT",
    body: frame(sayRequest("hi"), 0x02),
    code: Code.InvalidArgument,
    message: /flags 2/,
  },
  {
    name: "bytes that are no protobuf message → INVALID_ARGUMENT",
    // Field 1, length-delimited, with a length running past the end.
    body: frame(new Uint8Array([0x0a, 0xff, 0x01, 0x41])),
    code: Code.InvalidArgument,
    message: /cannot decode connectrpc.eliza.v1.SayRequest/,
  },
  {
    name: "a message over readMaxBytes → RESOURCE_EXHAUSTED",
    body: frame(sayRequest("x".repeat(serverReadMaxBytes * 2))),
    code: Code.ResourceExhausted,
    message: /receive limit/,
  },
  {
    name: "two messages for a unary method → UNIMPLEMENTED",
    body: concat(sayFrame, sayFrame),
    code: Code.Unimplemented,
    message: /more than one request message/,
  },
  {
    name: "no message for a unary method → UNIMPLEMENTED",
    body: new Uint8Array(0),
    code: Code.Unimplemented,
    message: /no request message/,
  },
  {
    name: "a method the service does not have → UNIMPLEMENTED",
    path: elizaPath + "Nope",
    body: sayFrame,
    code: Code.Unimplemented,
    message: /no such method/,
  },
  {
    name: "the JSON codec with invalid JSON → INVALID_ARGUMENT",
    json: true,
    body: frame(text("{not json")),
    code: Code.InvalidArgument,
    message: /cannot decode/,
  },
  // The same for the request of a server-streaming method, which fails before
  // its first response message.
  {
    name: "server streaming: no request message → UNIMPLEMENTED",
    path: introducePath,
    body: new Uint8Array(0),
    code: Code.Unimplemented,
    message: /no request message/,
  },
  {
    name: "server streaming: two request messages → UNIMPLEMENTED",
    path: introducePath,
    body: concat(introduceFrame, introduceFrame),
    code: Code.Unimplemented,
    message: /more than one request message/,
  },
  {
    name: "server streaming: a payload shorter than declared → INVALID_ARGUMENT",
    path: introducePath,
    body: introduceFrame.subarray(0, introduceFrame.length - 1),
    code: Code.InvalidArgument,
    message: /ended inside an envelope/,
  },
  {
    name: "server streaming: a message over readMaxBytes → RESOURCE_EXHAUSTED",
    path: introducePath,
    body: frame(introduceRequest("x".repeat(serverReadMaxBytes * 2))),
    code: Code.ResourceExhausted,
    message: /receive limit/,
  },
];

describe.each(serverTransports)("gRPC-Web requests over %s", (_, send, on) => {
  it("a valid request succeeds (baseline)", async () => {
    await expectWebServing(send);
  });

  it.each(badWebRequests)("$name", async (c) => {
    const contentType = c.json ? webJson : webProto;
    const res = await settle(
      send({
        path: c.path ?? sayPath,
        headers: {
          "content-type": contentType,
          "x-grpc-web": "1",
          ...c.headers,
        },
        body: c.body,
      }),
      c.name,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(contentType);
    // gRPC-Web puts the status in the body, never in HTTP trailers.
    expect([...res.trailers.keys()]).toEqual([]);
    const body = parseWebBody(res.body);
    // An error before any message: the trailer envelope is the whole body.
    expect(body.messages).toEqual([]);
    expect(body.trailer["grpc-status"]).toBe(String(c.code));
    expect(decodeURIComponent(body.trailer["grpc-message"] ?? "")).toMatch(
      c.message,
    );
    c.check?.(res, body.trailer);
    await expectWebServing(send);
  });

  it("a service the server does not have → the generated gRPC-Web client gets UNIMPLEMENTED", async () => {
    const { url, ...options } = on();
    const client = createGreetServiceClient(url, {
      ...options,
      protocol: greetGrpcWebProtocol,
    });
    const error = await settle(
      client.greet({ name: "x" }).then(
        () => undefined,
        (e: unknown) => e,
      ),
      "a call to an unknown service",
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect(codeToString((error as ConnectError).code)).toBe("unimplemented");
    await expectWebServing(send);
  });

  it("GET instead of POST → 405 with Allow: POST", async () => {
    const res = await settle(
      send({
        method: "GET",
        path: sayPath,
        headers: { "content-type": webProto, "x-grpc-web": "1" },
      }),
      "GET",
    );
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    await expectWebServing(send);
  });

  it("application/grpc-web-text (not supported) → 415", async () => {
    const res = await settle(
      send({
        path: sayPath,
        headers: {
          "content-type": "application/grpc-web-text",
          "x-grpc-web": "1",
        },
        body: text(Buffer.from(sayFrame).toString("base64")),
      }),
      "grpc-web-text",
    );
    expect(res.status).toBe(415);
    await expectWebServing(send);
  });
});

// gRPC proper: test/grpc-server.test.ts covers "1x" loosely (any non-zero
// status), snappy, an envelope cut short and HTTP/1.1; these pin the code of
// an out-of-grammar grpc-timeout, and gRPC on the fetch handler.
describe("gRPC requests", () => {
  async function expectGrpcServing(): Promise<void> {
    const res = await sendH2c({
      path: sayPath,
      headers: { "content-type": "application/grpc", te: "trailers" },
      body: sayFrame,
    });
    expect(res.status).toBe(200);
    expect(res.trailers.get("grpc-status")).toBe("0");
    expect(fromBinary(SayResponseSchema, res.body.subarray(5)).sentence).toBe(
      "You said: hi",
    );
  }

  it.each(["1x", "123456789S", "-1S", "1.5S"])(
    'grpc-timeout "%s" over h2c → a trailers-only INVALID_ARGUMENT',
    async (timeout) => {
      const res = await settle(
        sendH2c({
          path: sayPath,
          headers: {
            "content-type": "application/grpc",
            te: "trailers",
            "grpc-timeout": timeout,
          },
          body: sayFrame,
        }),
        "gRPC request",
      );
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/grpc+proto");
      expect(res.headers.get("grpc-status")).toBe("3");
      expect(res.headers.get("grpc-message")).toMatch(/invalid grpc-timeout/);
      expect(res.body.length).toBe(0);
      await expectGrpcServing();
    },
  );

  it("gRPC over the fetch handler → a trailers-only UNIMPLEMENTED (it cannot send trailers); gRPC-Web still works there", async () => {
    const res = await sendFetch({
      path: sayPath,
      headers: { "content-type": "application/grpc", te: "trailers" },
      body: sayFrame,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("grpc-status")).toBe("12");
    expect(res.headers.get("grpc-message")).toMatch(/HTTP\/2/);
    expect(res.body.length).toBe(0);
    await expectWebServing(sendFetch);
  });
});

// ---------------------------------------------------------------------------
// Part B: raw servers answering the generated clients.

type Wire = "grpc" | "grpc-web";
type Kind = "unary" | "stream";

/** What a raw server answers. */
interface Reply {
  readonly status?: number;
  /** Over the default content type of the wire (binary). */
  readonly headers?: Record<string, string>;
  readonly body?: readonly Uint8Array[];
  /** HTTP trailers (gRPC over HTTP/2); undefined for none at all. */
  readonly trailers?: Record<string, string>;
  /** The response is its headers alone: END_STREAM on HEADERS, or an empty HTTP/1.1 body. */
  readonly headersOnly?: boolean;
  /** HTTP/2: after the body, reset the stream with this code instead of ending it. */
  readonly resetAfterBody?: number;
  /** HTTP/2: reset the stream with this code before any response headers. */
  readonly resetBeforeHeaders?: number;
}

const okTrailer = { "grpc-status": "0" };

/**
 * A gRPC or gRPC-Web response: `messages` (whole envelopes), then `trailer`
 * as HTTP trailers (gRPC) or as the final 0x80 envelope (gRPC-Web), or
 * nothing at all when it is undefined. A string trailer is the raw payload
 * of the gRPC-Web envelope.
 */
function respond(
  wire: Wire,
  options: {
    messages?: readonly Uint8Array[];
    trailer: Record<string, string> | string | undefined;
    headers?: Record<string, string>;
    after?: readonly Uint8Array[];
  },
): Reply {
  const messages = options.messages ?? [frame(sentenceResponse("one"))];
  const trailer = options.trailer;
  const headers = options.headers ?? {};
  if (wire === "grpc") {
    if (typeof trailer === "string") throw new Error("gRPC-Web only");
    return trailer === undefined
      ? { headers, body: messages }
      : { headers, body: messages, trailers: trailer };
  }
  const end =
    trailer === undefined
      ? []
      : [
          frame(
            typeof trailer === "string" ? text(trailer) : trailerLines(trailer),
            0x80,
          ),
        ];
  return { headers, body: [...messages, ...end, ...(options.after ?? [])] };
}

function statusDetailsBin(): string {
  const detail = new BinaryWriter()
    .tag(1, WireType.LengthDelimited)
    .string("type.googleapis.com/connectrpc.eliza.v1.SayResponse")
    .tag(2, WireType.LengthDelimited)
    .bytes(sentenceResponse("a detail"))
    .finish();
  const status = new BinaryWriter()
    .tag(1, WireType.Varint)
    .int32(Code.InvalidArgument)
    .tag(2, WireType.LengthDelimited)
    .string("bad sentence")
    .tag(3, WireType.LengthDelimited)
    .bytes(detail)
    .finish();
  // Unpadded, as PROTOCOL-HTTP2.md says to send it.
  return Buffer.from(status).toString("base64").replace(/=+$/, "");
}

interface ResponseCase {
  readonly name: string;
  readonly reply: (wire: Wire, kind: Kind) => Reply;
  readonly code: Code;
  /** Matched against the error's rawMessage; a string must equal it. */
  readonly message: RegExp | string;
  /** Only for these call kinds (default both). */
  readonly kinds?: readonly Kind[];
  /** Only for gRPC-Web (default both wires). */
  readonly webOnly?: boolean;
  /** Needs HTTP/2 (a stream reset). */
  readonly h2Only?: boolean;
  /** Messages a server-streaming call must deliver before the error. */
  readonly delivered?: number;
  readonly readMaxBytes?: number;
  readonly check?: (error: ConnectError) => void;
}

const responseCases: readonly ResponseCase[] = [
  {
    name: "trailers missing entirely → INTERNAL",
    reply: (w) => respond(w, { trailer: undefined }),
    code: Code.Internal,
    message: /missing grpc-status/,
    delivered: 1,
  },
  {
    name: "trailers without grpc-status → INTERNAL",
    reply: (w) => respond(w, { trailer: { "x-note": "hi" } }),
    code: Code.Internal,
    message: /missing grpc-status/,
    delivered: 1,
    check: (e) => expect(e.metadata.get("x-note")).toBe("hi"),
  },
  {
    name: 'grpc-status "ok" (not a number) → INTERNAL',
    reply: (w) => respond(w, { trailer: { "grpc-status": "ok" } }),
    code: Code.Internal,
    message: /invalid grpc-status "ok"/,
    delivered: 1,
  },
  {
    name: "grpc-status 99 (no such code) → UNKNOWN, with its message",
    reply: (w) =>
      respond(w, {
        trailer: { "grpc-status": "99", "grpc-message": "strange" },
      }),
    code: Code.Unknown,
    message: "strange",
    delivered: 1,
  },
  ...(
    [
      [503, Code.Unavailable],
      [404, Code.Unimplemented],
      [401, Code.Unauthenticated],
      [400, Code.Internal],
    ] as const
  ).map(([status, code]): ResponseCase => ({
    name: `HTTP ${status} → ${codeToString(code).toUpperCase()}`,
    reply: () => ({
      status,
      headers: { "content-type": "text/plain" },
      body: [text("nope")],
    }),
    code,
    message: `HTTP status ${status}`,
    delivered: 0,
  })),
  {
    name: "content-type text/html → UNKNOWN",
    reply: () => ({
      headers: { "content-type": "text/html" },
      body: [text("<html>oops</html>")],
    }),
    code: Code.Unknown,
    message: /content type "text\/html"/,
    delivered: 0,
  },
  {
    name: "the JSON codec's content type to a binary client → INTERNAL",
    reply: (w) =>
      respond(w, {
        headers: { "content-type": `application/${w}+json` },
        messages: [frame(text('{"sentence":"one"}'))],
        trailer: okTrailer,
      }),
    code: Code.Internal,
    message: /content type "application\/grpc(-web)?\+json"/,
    delivered: 0,
  },
  {
    name: "a compressed message without grpc-encoding → INTERNAL",
    reply: (w) =>
      respond(w, {
        messages: [frame(gzipSync(sentenceResponse("one")), 1)],
        trailer: okTrailer,
      }),
    code: Code.Internal,
    message: /compressed message/,
    delivered: 0,
  },
  {
    name: "grpc-encoding snappy (unsupported) → INTERNAL",
    reply: (w) =>
      respond(w, {
        headers: { "grpc-encoding": "snappy" },
        messages: [frame(sentenceResponse("one"), 1)],
        trailer: okTrailer,
      }),
    code: Code.Internal,
    message: /unsupported compression "snappy"/,
    delivered: 0,
  },
  {
    // For gRPC-Web no trailer envelope can follow: it would be read as the rest of the payload.
    name: "an envelope payload cut short → INTERNAL",
    reply: (w) =>
      respond(w, {
        messages: [frame(sentenceResponse("one")).subarray(0, 6)],
        trailer: w === "grpc" ? okTrailer : undefined,
      }),
    code: Code.Internal,
    message: /ended inside an envelope \(1 of 5 bytes\)/,
    delivered: 0,
  },
  {
    name: "an envelope header cut short → INTERNAL",
    reply: (w) =>
      respond(w, {
        messages: [new Uint8Array([0, 0, 0])],
        trailer: w === "grpc" ? okTrailer : undefined,
      }),
    code: Code.Internal,
    message: /ended inside an envelope header/,
    delivered: 0,
  },
  {
    name: "data after the trailer envelope → INTERNAL",
    webOnly: true,
    reply: (w) =>
      respond(w, {
        trailer: okTrailer,
        after: [frame(sentenceResponse("late"))],
      }),
    code: Code.Internal,
    message: /data after the trailers/,
    delivered: 1,
  },
  {
    name: "a trailer line without a colon → INTERNAL",
    webOnly: true,
    reply: (w) => respond(w, { trailer: "grpc-status 0\r\n" }),
    code: Code.Internal,
    message: /invalid gRPC-Web trailer line "grpc-status 0"/,
    delivered: 1,
  },
  {
    name: "no message for a unary call, grpc-status 0 → UNIMPLEMENTED",
    kinds: ["unary"],
    reply: (w) => respond(w, { messages: [], trailer: okTrailer }),
    code: Code.Unimplemented,
    message: /no response message for a unary method/,
  },
  {
    name: "two messages for a unary call, grpc-status 0 → UNIMPLEMENTED",
    kinds: ["unary"],
    reply: (w) =>
      respond(w, {
        messages: [
          frame(sentenceResponse("one")),
          frame(sentenceResponse("two")),
        ],
        trailer: okTrailer,
      }),
    code: Code.Unimplemented,
    message: /more than one response message for a unary method/,
  },
  {
    name: "a trailers-only response is the call's status",
    reply: () => ({
      headers: {
        "grpc-status": String(Code.NotFound),
        "grpc-message": "no such sentence",
        "x-extra": "kept",
      },
      headersOnly: true,
    }),
    code: Code.NotFound,
    message: "no such sentence",
    delivered: 0,
    check: (e) => expect(e.metadata.get("x-extra")).toBe("kept"),
  },
  {
    name: "a percent-encoded grpc-message is decoded",
    reply: (w) =>
      respond(w, {
        trailer: { "grpc-status": "3", "grpc-message": "caf%C3%A9 %25" },
      }),
    code: Code.InvalidArgument,
    message: "café %",
    delivered: 1,
  },
  ...["bad %E2%82 and 100%", "100%zz"].map((raw): ResponseCase => ({
    name: `a broken percent-encoding "${raw}" is kept raw`,
    reply: (w) =>
      respond(w, { trailer: { "grpc-status": "3", "grpc-message": raw } }),
    code: Code.InvalidArgument,
    message: raw,
    delivered: 1,
  })),
  ...[
    ["not base64", "***"],
    ["no google.rpc.Status", Buffer.from([0x0a, 0xff]).toString("base64")],
  ].map(([what, value]): ResponseCase => ({
    name: `a grpc-status-details-bin that is ${what} is ignored`,
    reply: (w) =>
      respond(w, {
        trailer: {
          "grpc-status": String(Code.PermissionDenied),
          "grpc-message": "denied",
          "grpc-status-details-bin": value!,
        },
      }),
    code: Code.PermissionDenied,
    message: "denied",
    delivered: 1,
    check: (e) => expect(e.details).toEqual([]),
  })),
  {
    name: "a valid grpc-status-details-bin yields the details",
    reply: (w) =>
      respond(w, {
        trailer: {
          "grpc-status": String(Code.InvalidArgument),
          "grpc-message": "bad sentence",
          "grpc-status-details-bin": statusDetailsBin(),
        },
      }),
    code: Code.InvalidArgument,
    message: "bad sentence",
    delivered: 1,
    check(e) {
      expect(e.details.map((d) => d.type)).toEqual([
        "connectrpc.eliza.v1.SayResponse",
      ]);
      expect(e.findDetails(SayResponseSchema).map((d) => d.sentence)).toEqual([
        "a detail",
      ]);
    },
  },
  {
    name: "a message over the client's readMaxBytes → RESOURCE_EXHAUSTED",
    readMaxBytes: 64,
    reply: (w) =>
      respond(w, {
        messages: [frame(sentenceResponse("x".repeat(200)))],
        trailer: okTrailer,
      }),
    code: Code.ResourceExhausted,
    message: /receive limit of 64 bytes/,
    delivered: 0,
  },
  ...(
    [
      ["INTERNAL_ERROR", http2.constants.NGHTTP2_INTERNAL_ERROR, Code.Internal],
      ["CANCEL", http2.constants.NGHTTP2_CANCEL, Code.Canceled],
      [
        "REFUSED_STREAM",
        http2.constants.NGHTTP2_REFUSED_STREAM,
        Code.Unavailable,
      ],
    ] as const
  ).map(([what, rst, code]): ResponseCase => ({
    name: `a reset with ${what} mid-response → ${codeToString(code).toUpperCase()}`,
    h2Only: true,
    reply: (w) => ({
      ...respond(w, { trailer: undefined }),
      resetAfterBody: rst,
    }),
    code,
    message: new RegExp(`stream reset with code ${rst}`),
  })),
  {
    name: "a reset with REFUSED_STREAM before the response → UNAVAILABLE",
    h2Only: true,
    reply: () => ({
      resetBeforeHeaders: http2.constants.NGHTTP2_REFUSED_STREAM,
    }),
    code: Code.Unavailable,
    message: new RegExp(
      `stream reset with code ${http2.constants.NGHTTP2_REFUSED_STREAM}`,
    ),
    delivered: 0,
  },
];

/** The reply to the control calls: a valid response. */
function okReply(wire: Wire, kind: Kind): Reply {
  return respond(wire, {
    messages:
      kind === "unary"
        ? [frame(sentenceResponse("fine"))]
        : [frame(sentenceResponse("one")), frame(sentenceResponse("two"))],
    trailer: okTrailer,
  });
}

/** The raw servers find the case by this request header. */
const caseHeader = "x-case";

function replyFor(
  headers: http.IncomingHttpHeaders,
  path: string,
): { reply: Reply; wire: Wire } {
  const wire: Wire = String(headers["content-type"]).startsWith(
    "application/grpc-web",
  )
    ? "grpc-web"
    : "grpc";
  const kind: Kind = path === sayPath ? "unary" : "stream";
  const id = headers[caseHeader];
  const c = typeof id === "string" ? responseCases[Number(id)] : undefined;
  return { reply: (c?.reply ?? okReply)(wire, kind), wire };
}

const defaultContentType = (wire: Wire) => `application/${wire}+proto`;

function replyH2(stream: http2.ServerHttp2Stream, reply: Reply, wire: Wire) {
  if (reply.resetBeforeHeaders !== undefined) {
    stream.close(reply.resetBeforeHeaders);
    return;
  }
  const headers = {
    ":status": reply.status ?? 200,
    "content-type": defaultContentType(wire),
    ...reply.headers,
  };
  if (reply.headersOnly === true) {
    stream.respond(headers, { endStream: true });
    return;
  }
  const trailers = reply.trailers;
  const reset = reply.resetAfterBody;
  // stream.close(code) ends the writable side first, which sends END_STREAM
  // before RST_STREAM unless trailers are awaited: the client would see a
  // complete response. Awaiting trailers that never come keeps the reset a
  // reset.
  stream.respond(headers, {
    waitForTrailers: trailers !== undefined || reset !== undefined,
  });
  if (trailers !== undefined) {
    stream.once("wantTrailers", () => stream.sendTrailers(trailers));
  }
  const body = reply.body ?? [];
  if (reset === undefined) {
    for (const chunk of body) stream.write(chunk);
    stream.end();
    return;
  }
  // The body is on its way before the reset: the reset comes mid-response.
  stream.write(concat(...body), () => {
    setTimeout(() => stream.close(reset), 20);
  });
}

/** A node:http2 h2c server with a raw `stream` handler, on 127.0.0.1. */
async function startRawH2(): Promise<string> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    const path = String(headers[":path"]);
    // Answers once the request is in, so every request is read whole.
    stream.resume();
    stream.once("end", () => {
      const { reply, wire } = replyFor(headers, path);
      replyH2(stream, reply, wire);
    });
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve()),
  );
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A node:http server for gRPC-Web over HTTP/1.1; resets do not apply. */
const rawHttp1Listener: NodeListener = (req, res) => {
  const request = req as http.IncomingMessage;
  const response = res as http.ServerResponse;
  request.resume();
  request.once("end", () => {
    const { reply, wire } = replyFor(request.headers, request.url ?? "");
    response.writeHead(reply.status ?? 200, {
      "content-type": defaultContentType(wire),
      ...reply.headers,
    });
    if (reply.headersOnly !== true) {
      for (const chunk of reply.body ?? []) response.write(chunk);
    }
    response.end();
  });
};

interface ClientSetup {
  readonly name: string;
  readonly wire: Wire;
  readonly transport: "http2" | "fetch";
  readonly url: () => string;
}

const clientSetups: readonly ClientSetup[] = [
  {
    name: "gRPC over HTTP/2",
    wire: "grpc",
    transport: "http2",
    url: () => rawH2Url,
  },
  {
    name: "gRPC-Web over HTTP/2",
    wire: "grpc-web",
    transport: "http2",
    url: () => rawH2Url,
  },
  {
    name: "gRPC-Web over HTTP/1.1 (fetch)",
    wire: "grpc-web",
    transport: "fetch",
    url: () => rawHttp1Url,
  },
];

const clients = new Map<string, ElizaServiceClient>();

function clientFor(setup: ClientSetup, readMaxBytes?: number) {
  const key = `${setup.name}/${readMaxBytes}`;
  let client = clients.get(key);
  if (client === undefined) {
    client = createElizaServiceClient(setup.url(), {
      protocol: elizaProtocols[setup.wire],
      transport: setup.transport,
      ...(readMaxBytes === undefined ? {} : { readMaxBytes }),
    });
    clients.set(key, client);
  }
  return client;
}

interface Outcome {
  readonly messages: string[];
  readonly error: unknown;
}

async function call(
  client: ElizaServiceClient,
  kind: Kind,
  id: string,
): Promise<Outcome> {
  const headers = { [caseHeader]: id };
  const messages: string[] = [];
  try {
    if (kind === "unary") {
      messages.push(
        (await client.say({ sentence: "hi" }, { headers })).sentence,
      );
    } else {
      for await (const m of client.introduce({ name: "Ada" }, { headers })) {
        messages.push(m.sentence);
      }
    }
    return { messages, error: undefined };
  } catch (error) {
    return { messages, error };
  }
}

async function expectClientWorks(client: ElizaServiceClient, kind: Kind) {
  const outcome = await settle(call(client, kind, "ok"), "the follow-up call");
  expect(outcome.error).toBeUndefined();
  expect(outcome.messages).toEqual(
    kind === "unary" ? ["fine"] : ["one", "two"],
  );
}

describe.each(clientSetups)("$name: broken responses", (setup) => {
  const rows = responseCases.flatMap((c, index) =>
    (c.kinds ?? (["unary", "stream"] as const))
      .filter(
        () =>
          (c.webOnly !== true || setup.wire === "grpc-web") &&
          (c.h2Only !== true || setup.transport === "http2"),
      )
      .map((kind) => ({ ...c, kind, id: String(index) })),
  );

  it.each(["unary", "stream"] as const)(
    "a valid %s response works (baseline)",
    async (kind) => {
      await expectClientWorks(clientFor(setup), kind);
    },
  );

  it.each(rows)("$kind: $name", async (row) => {
    const client = clientFor(setup, row.readMaxBytes);
    const outcome = await settle(call(client, row.kind, row.id), row.name);
    const error = outcome.error;
    expect(error).toBeInstanceOf(ConnectError);
    const e = error as ConnectError;
    expect(
      codeToString(e.code),
      `${e.message}${e.cause === undefined ? "" : ` (cause: ${String(e.cause)})`}`,
    ).toBe(codeToString(row.code));
    if (typeof row.message === "string") {
      expect(e.rawMessage).toBe(row.message);
    } else {
      expect(e.rawMessage).toMatch(row.message);
    }
    if (row.kind === "stream" && row.delivered !== undefined) {
      expect(outcome.messages).toHaveLength(row.delivered);
    }
    row.check?.(e);
    await expectClientWorks(client, row.kind);
  });
});

// ---------------------------------------------------------------------------

beforeAll(async () => {
  process.on("unhandledRejection", onFailure);
  process.on("uncaughtException", onFailure);
  const http1 = await startServer("http", elizaHandler.node as NodeListener);
  const h2c = await startServer("h2c", elizaHandler.node as NodeListener);
  const raw1 = await startServer("http", rawHttp1Listener);
  closers.push(
    () => http1.close(),
    () => h2c.close(),
    () => raw1.close(),
  );
  serverHttp1Url = http1.url;
  serverH2cUrl = h2c.url;
  rawHttp1Url = raw1.url;
  rawH2Url = await startRawH2();
});

afterAll(async () => {
  h2Session?.close();
  await Promise.all(closers.splice(0).map((close) => close()));
  process.off("unhandledRejection", onFailure);
  process.off("uncaughtException", onFailure);
  expect(processFailures).toEqual([]);
});
