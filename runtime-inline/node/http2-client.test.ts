import { subscribe, unsubscribe } from "node:diagnostics_channel";
import * as http2 from "node:http2";
import { Readable } from "node:stream";
import { create, toBinary } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createClientConfig } from "../client/config.ts";
import { createConnectUnaryCaller } from "../client/connect.ts";
import { createConnectStreamCaller } from "../client/connect-stream.ts";
import {
  createHttp2HttpClient,
  http2Exchange,
  http2MarkLost,
  http2Push,
  http2ReadChunks,
  http2ReadWhole,
} from "./http2-client.ts";
import { Code } from "../core/code.ts";
import { envelopeEncode, envelopeFlagEndStream } from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import {
  httpFieldsOf,
  httpHeaderGet,
  httpReadBody,
  httpReadWhole,
  httpSendFields,
  httpTrailerGet,
  type HttpFieldsClient,
} from "../client/http-client.ts";
import type { HttpResponse } from "../client/http-client.ts";
import type { MethodInfo } from "../core/method.ts";
import { blackholeProxy } from "../../test/support/blackhole-proxy.ts";
import { listenH2c } from "../../test/support/h2c-server.ts";

const unary: MethodInfo = {
  service: "test.v1.TestService",
  name: "Unary",
  path: "/test.v1.TestService/Unary",
  kind: "unary",
  input: StringValueSchema,
  output: StringValueSchema,
  noSideEffects: false,
};

const responseBytes = toBinary(
  StringValueSchema,
  create(StringValueSchema, { value: "a response" }),
);

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/**
 * An h2c server on 127.0.0.1 that hands each stream to `onStream`;
 * `streamClosed` settles when the server's side of the last stream has closed.
 */
async function rawServer(
  onStream: (stream: http2.ServerHttp2Stream) => void,
): Promise<{ url: string; streamClosed: () => Promise<void> }> {
  const server = http2.createServer();
  let closed = Promise.resolve();
  server.on("stream", (stream) => {
    closed = new Promise((resolve) => stream.once("close", () => resolve()));
    onStream(stream);
  });
  const { url, close } = await listenH2c(server);
  closers.push(close);
  return { url, streamClosed: () => closed };
}

const respondHeaders = {
  ":status": 200,
  "content-type": "application/proto",
};

/** Sends the response body, then RST_STREAM(NO_ERROR) without END_STREAM. */
function truncated(stream: http2.ServerHttp2Stream) {
  // Awaiting trailers keeps END_STREAM off the last DATA frame.
  stream.respond(respondHeaders, { waitForTrailers: true });
  stream.write(responseBytes, () =>
    stream.close(http2.constants.NGHTTP2_NO_ERROR),
  );
}

async function read(response: HttpResponse): Promise<number> {
  let bytes = 0;
  for await (const chunk of response.body) bytes += chunk.byteLength;
  return bytes;
}

/** An empty unary POST through the transport's record entry point (httpSendFields). */
function sendFields(
  client: HttpFieldsClient,
  url: string,
): Promise<HttpResponse> {
  return client[httpSendFields]({
    url: url + unary.path,
    method: "POST",
    fields: { "content-type": "application/proto" },
    body: new Uint8Array(0),
    signal: new AbortController().signal,
  });
}

async function request(
  url: string,
  body: Uint8Array | AsyncIterable<Uint8Array>,
) {
  return createHttp2HttpClient()({
    url: url + unary.path,
    method: "POST",
    header: new Headers({ "content-type": "application/proto" }),
    body,
    signal: new AbortController().signal,
  });
}

describe("a response reset with NO_ERROR before END_STREAM", () => {
  it("fails a Connect unary call with internal instead of returning an empty message", async () => {
    const { url } = await rawServer(truncated);
    const call = createConnectUnaryCaller(
      createClientConfig(url, {}, createHttp2HttpClient(), {}),
    );
    const error = await call(unary, { value: "hi" }, undefined).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Internal);
    expect((error as ConnectError).rawMessage).toMatch(
      /reset with code 0 before the response ended/,
    );
  });

  it("fails the body read even when the caller reads after the stream has closed", async () => {
    const { url, streamClosed } = await rawServer(truncated);
    const response = await request(url, new Uint8Array(0));
    await streamClosed();
    await new Promise((resolve) => setImmediate(resolve));
    await expect(read(response)).rejects.toMatchObject({
      code: Code.Internal,
    });
  });

  it("a response that ended with END_STREAM still succeeds when read after the stream closed", async () => {
    const { url, streamClosed } = await rawServer((stream) => {
      stream.respond(respondHeaders);
      stream.end(responseBytes);
    });
    const response = await request(url, new Uint8Array(0));
    await streamClosed();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await read(response)).toBe(responseBytes.byteLength);
  });

  it("END_STREAM then RST_STREAM(NO_ERROR) while the upload is open (a server answering early) succeeds", async () => {
    const { url } = await rawServer((stream) => {
      stream.once("data", () => {
        stream.respond(respondHeaders);
        stream.end(responseBytes, () =>
          stream.close(http2.constants.NGHTTP2_NO_ERROR),
        );
      });
    });
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const response = await request(
      url,
      (async function* () {
        yield new Uint8Array(8);
        await stopped; // the upload stays open
      })(),
    );
    try {
      expect(await read(response)).toBe(responseBytes.byteLength);
    } finally {
      stop();
    }
  });
});

describe("the request's headers", () => {
  /** An h2c server that records each request's headers and answers 200 with no body. */
  async function recordingServer() {
    const seen: http2.IncomingHttpHeaders[] = [];
    const server = http2.createServer();
    server.on("stream", (stream, headers) => {
      seen.push(headers);
      stream.resume();
      stream.respond(respondHeaders, { endStream: true });
    });
    const { url, close } = await listenH2c(server);
    closers.push(close);
    return { url, seen };
  }

  it("sends a record given to httpSendFields as it is, with the method and path", async () => {
    const { url, seen } = await recordingServer();
    const client = createHttp2HttpClient() as HttpFieldsClient;
    const fields = httpFieldsOf(
      new Headers([
        ["content-type", "application/proto"],
        ["x-two", "one"],
        ["x-two", "two"],
        ["__proto__", "a header"],
      ]),
    );
    await read(
      await client[httpSendFields]({
        url: url + unary.path,
        method: "POST",
        fields,
        body: new Uint8Array(0),
        signal: new AbortController().signal,
      }),
    );
    expect(seen[0]).toMatchObject({
      ":method": "POST",
      ":path": unary.path,
      "content-type": "application/proto",
      "x-two": "one, two",
    });
    expect(Object.getOwnPropertyDescriptor(seen[0], "__proto__")?.value).toBe(
      "a header",
    );
  });

  it("sends a request given with a Headers (a wrapper of this client) the same way", async () => {
    const { url, seen } = await recordingServer();
    await read(await request(url, new Uint8Array(0)));
    expect(seen[0]).toMatchObject({
      ":method": "POST",
      ":path": unary.path,
      "content-type": "application/proto",
    });
  });
});

describe("the response's headers", () => {
  async function answering() {
    const { url } = await rawServer((stream) => {
      stream.resume();
      stream.respond(
        {
          ":status": 200,
          "content-type": "application/proto",
          "x-two": ["one", "two"],
          "set-cookie": ["a=1", "b=2"],
        },
        { endStream: true },
      );
    });
    return url;
  }

  it("to httpSendFields: Node's fields, and a Headers made of them when read", async () => {
    const url = await answering();
    const response = await sendFields(
      createHttp2HttpClient() as HttpFieldsClient,
      url,
    );
    expect(httpHeaderGet(response, "content-type")).toBe("application/proto");
    expect(httpHeaderGet(response, "x-two")).toBe("one, two");
    expect(response.header.get("x-two")).toBe("one, two");
    expect(response.header.getSetCookie()).toEqual(["a=1", "b=2"]);
    expect([...response.header.keys()].some((k) => k.startsWith(":"))).toBe(
      false,
    );
    expect(response.header).toBe(response.header);
    expect(response.status).toBe(200);
  });

  it("to httpSendFields: trailers read from Node's fields until a trailer is made of them, which is filled in when it was made before they came", async () => {
    const { url } = await rawServer((stream) => {
      stream.resume();
      stream.respond(respondHeaders, { waitForTrailers: true });
      stream.once("wantTrailers", () =>
        stream.sendTrailers({ "grpc-status": "0", "x-t": ["1", "2"] }),
      );
      stream.end(responseBytes);
    });
    const client = createHttp2HttpClient() as HttpFieldsClient;
    const send = () => sendFields(client, url);
    const after = await send();
    await httpReadBody(after.body, 1024);
    expect(httpTrailerGet(after, "grpc-status")).toBe("0");
    expect(httpTrailerGet(after, "x-t")).toBe("1, 2");
    expect(after.trailer.get("x-t")).toBe("1, 2");
    expect(httpTrailerGet(after, "x-t")).toBe("1, 2");

    const before = await send();
    const trailer = before.trailer;
    expect([...trailer]).toEqual([]);
    await httpReadBody(before.body, 1024);
    expect(trailer.get("grpc-status")).toBe("0");
    expect(httpTrailerGet(before, "x-t")).toBe("1, 2");
    expect(before.trailer).toBe(trailer);
  });

  it("to the HttpClient itself: a plain object, which a wrapper may spread", async () => {
    const url = await answering();
    const response = { ...(await request(url, new Uint8Array(0))) };
    expect(response.status).toBe(200);
    expect(response.header.get("content-type")).toBe("application/proto");
    expect(response.trailer).toBeInstanceOf(Headers);
    expect(await read(response)).toBe(0);
  });
});

describe("a request's stream once it has closed", () => {
  it("holds no more of the call: its exchange is let go", async () => {
    const { url } = await rawServer((stream) => {
      stream.resume();
      stream.respond(respondHeaders, { endStream: true });
    });
    // Node announces each client stream on this channel.
    const streams: http2.ClientHttp2Stream[] = [];
    const onStream = (message: unknown) =>
      streams.push((message as { stream: http2.ClientHttp2Stream }).stream);
    subscribe("http2.client.stream.created", onStream);
    try {
      const response = await sendFields(
        createHttp2HttpClient() as HttpFieldsClient,
        url,
      );
      const stream = streams[0] as http2.ClientHttp2Stream & {
        [http2Exchange]?: unknown;
      };
      // A stream promoted by a young-generation collection while in flight
      // would otherwise keep the exchange and the response alive, dead,
      // until the next full collection.
      expect(stream[http2Exchange]).toBeDefined();
      await read(response);
      if (!stream.closed) await new Promise((r) => stream.once("close", r));
      expect(stream[http2Exchange]).toBeUndefined();
    } finally {
      unsubscribe("http2.client.stream.created", onStream);
    }
  });
});

describe("a response body read whole (httpReadWhole)", () => {
  it("is offered, and resolves to the body as a plain Uint8Array", async () => {
    const { url } = await rawServer((stream) => {
      stream.respond(respondHeaders);
      stream.write(responseBytes.subarray(0, 3));
      stream.end(responseBytes.subarray(3));
    });
    const response = await request(url, new Uint8Array(0));
    expect(httpReadWhole in response.body).toBe(true);
    const body = await httpReadBody(response.body, 1024);
    expect(Buffer.isBuffer(body)).toBe(false);
    expect(body).toEqual(responseBytes);
  });

  it("fails with ResourceExhausted past the limit", async () => {
    const { url } = await rawServer((stream) => {
      stream.respond(respondHeaders);
      stream.end(responseBytes);
    });
    const response = await request(url, new Uint8Array(0));
    await expect(httpReadBody(response.body, 3)).rejects.toMatchObject({
      code: Code.ResourceExhausted,
    });
  });

  it("fails a body reset before END_STREAM with internal", async () => {
    const { url } = await rawServer(truncated);
    const response = await request(url, new Uint8Array(0));
    await expect(httpReadBody(response.body, 1024)).rejects.toMatchObject({
      code: Code.Internal,
    });
  });

  it("stops at the chunk its watch throws on, frees the stream and fails with that error, with the response still open", async () => {
    // The server sends one chunk and never ends: only the watch can stop
    // the read (a gRPC unary call seeing a second message header).
    const { url, streamClosed } = await rawServer((stream) => {
      stream.respond(respondHeaders);
      stream.write(responseBytes);
    });
    const response = await request(url, new Uint8Array(0));
    const seen: number[] = [];
    const refusal = new ConnectError("refused", Code.Unimplemented);
    await expect(
      httpReadBody(response.body, 1024, (chunk) => {
        seen.push(chunk.byteLength);
        throw refusal;
      }),
    ).rejects.toBe(refusal);
    expect(seen).toEqual([responseBytes.byteLength]);
    await streamClosed();
  });

  it("fills the trailer in once the trailers arrive, even when read before", async () => {
    const { url } = await rawServer((stream) => {
      stream.respond(respondHeaders, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers({ "x-t": "1" }));
      stream.end(responseBytes);
    });
    const response = await request(url, new Uint8Array(0));
    const trailer = response.trailer;
    await httpReadBody(response.body, 1024);
    await new Promise((resolve) => setImmediate(resolve));
    expect(trailer.get("x-t")).toBe("1");
    expect(response.trailer).toBe(trailer);
  });
});

/**
 * A readable standing in for a client HTTP/2 stream, with http2Push as its
 * push (as createHttp2HttpClient installs it) and `closed` set by `close()`.
 */
function fakeStream(): { stream: Readable; close(): void } {
  // Its "close" comes from close() alone, as an HTTP/2 stream's from its session.
  const stream = new Readable({ read() {}, autoDestroy: false });
  let closed = false;
  Object.defineProperty(stream, "closed", { get: () => closed });
  stream.push = http2Push;
  return {
    stream,
    close() {
      closed = true;
      stream.emit("close");
    },
  };
}

/** How a reader saw a body: its chunks, and the error it ended with, if any. */
interface ReadOutcome {
  readonly chunks: string[];
  readonly error: ConnectError | undefined;
}

async function readChunks(stream: Readable): Promise<ReadOutcome> {
  const chunks: string[] = [];
  try {
    for await (const chunk of http2ReadChunks(
      stream as unknown as http2.ClientHttp2Stream,
      new AbortController().signal,
    )) {
      chunks.push(new TextDecoder().decode(chunk));
    }
    return { chunks, error: undefined };
  } catch (e) {
    return { chunks, error: e as ConnectError };
  }
}

async function readWhole(stream: Readable): Promise<ReadOutcome> {
  // The stand-in has no close(NGHTTP2_CANCEL) of its own.
  Object.assign(stream, { close: () => {} });
  try {
    const body = await http2ReadWhole(
      stream as unknown as http2.ClientHttp2Stream,
      new AbortController().signal,
      1024,
    );
    const text = new TextDecoder().decode(body);
    return { chunks: text === "" ? [] : [text], error: undefined };
  } catch (e) {
    return { chunks: [], error: e as ConnectError };
  }
}

// Both readers end through one watch (Http2BodyWatch): each case runs
// them both, so that they cannot drift apart.
describe.each([
  ["http2ReadChunks", readChunks],
  ["http2ReadWhole", readWhole],
])("%s", (_name, read) => {
  it("a body ended with END_STREAM: every chunk", async () => {
    const { stream, close } = fakeStream();
    stream.push(new TextEncoder().encode("a"));
    stream.push(new TextEncoder().encode("b"));
    const outcome = read(stream);
    stream.push(null);
    await new Promise((resolve) => stream.once("end", resolve));
    close();
    const { chunks, error } = await outcome;
    expect(chunks.join("")).toBe("ab");
    expect(error).toBeUndefined();
  });

  it("a reset (closed, then ended): the call's error, by the reset's code", async () => {
    const { stream, close } = fakeStream();
    Object.assign(stream, { rstCode: http2.constants.NGHTTP2_CANCEL });
    stream.push(new TextEncoder().encode("a"));
    close();
    stream.push(null);
    const { error } = await read(stream);
    expect(error).toBeInstanceOf(ConnectError);
    expect(error?.code).toBe(Code.Canceled);
    expect(error?.rawMessage).toMatch(/before the response ended/);
  });

  it("a body ended without END_STREAM waits for the close, which tells a lost connection", async () => {
    const { stream, close } = fakeStream();
    const outcome = read(stream);
    await new Promise((resolve) => setImmediate(resolve));
    // A reset as Node reports it: the readable side ends first...
    Readable.prototype.push.call(stream, null);
    await new Promise((resolve) => stream.once("end", resolve));
    // ...and the session is gone by the close (the transport marks it lost).
    Object.assign(stream, { rstCode: http2.constants.NGHTTP2_CANCEL });
    http2MarkLost(stream as unknown as http2.ClientHttp2Stream);
    close();
    const { error } = await outcome;
    expect(error?.code).toBe(Code.Unavailable);
    expect(error?.rawMessage).toMatch(/connection lost/);
  });

  it("a stream error: the call's error", async () => {
    const { stream } = fakeStream();
    const outcome = read(stream);
    stream.emit("error", new Error("socket hang up"));
    const { error } = await outcome;
    expect(error?.code).toBe(Code.Unavailable);
    expect(error?.rawMessage).toMatch(/socket hang up/);
  });

  // Deno's node:http2 emits "end" and "close" for a response without DATA
  // frames (a gRPC trailers-only error) before anyone reads it.
  it("a body that ended and closed before the reading began: no chunks, no error", async () => {
    const { stream, close } = fakeStream();
    stream.push(null);
    stream.resume();
    await new Promise((resolve) => stream.once("end", resolve));
    stream.pause();
    close();
    expect(await read(stream)).toEqual({ chunks: [], error: undefined });
  });

  // Deno's node:http2 may close a stream whose END_STREAM came while the
  // body waits unread; its "end" comes once that is read.
  it("a stream closed with its body unread: the body, no error", async () => {
    const { stream, close } = fakeStream();
    const outcome = read(stream);
    await new Promise((resolve) => setImmediate(resolve));
    stream.pause();
    stream.push(new TextEncoder().encode("a"));
    stream.push(null);
    close();
    stream.resume();
    expect(await outcome).toEqual({ chunks: ["a"], error: undefined });
  });
});

describe("a server-streaming call over HTTP/2", () => {
  it("sends its request whole, ending the request stream with it, and reads the responses as they stream", async () => {
    const serverStreaming: MethodInfo = {
      ...unary,
      name: "ServerStream",
      path: "/test.v1.TestService/ServerStream",
      kind: "server_streaming",
    };
    const received: Buffer[] = [];
    const { url } = await rawServer((stream) => {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      // The answer waits for the request's END_STREAM: the body came whole.
      stream.on("end", () => {
        received.push(Buffer.concat(chunks));
        stream.respond({
          ":status": 200,
          "content-type": "application/connect+proto",
        });
        stream.write(envelopeEncode(0, responseBytes));
        stream.write(envelopeEncode(0, responseBytes));
        stream.end(
          envelopeEncode(envelopeFlagEndStream, new TextEncoder().encode("{}")),
        );
      });
    });
    const call = createConnectStreamCaller(
      createClientConfig(url, {}, createHttp2HttpClient(), {}),
    );
    const response = await call(serverStreaming, [{ value: "hi" }], {});
    let messages = 0;
    for await (const _ of response.message) messages++;
    expect(messages).toBe(2);
    const request = toBinary(
      StringValueSchema,
      create(StringValueSchema, { value: "hi" }),
    );
    expect(received.map((b) => new Uint8Array(b))).toEqual([
      envelopeEncode(0, request),
    ]);
  });
});

describe("keepalive options", () => {
  it("refuses durations that are not positive milliseconds when the client is made", () => {
    expect(() => createHttp2HttpClient({ pingIntervalMs: 0 })).toThrow(
      /pingIntervalMs must be a positive/,
    );
    expect(() =>
      createHttp2HttpClient({
        pingIntervalMs: 1000,
        pingTimeoutMs: Number.NaN,
      }),
    ).toThrow(/pingTimeoutMs must be a positive/);
    expect(() => createHttp2HttpClient({ idleTimeoutMs: -1 })).toThrow(
      /idleTimeoutMs must be a positive/,
    );
    expect(() =>
      createHttp2HttpClient({ pingIntervalMs: 30_000, idleTimeoutMs: 60_000 }),
    ).not.toThrow();
  });
});

describe("keepalive", () => {
  /** An h2c server that answers each stream with `respond`, counting sessions opened and closed. */
  async function countingServer(
    respond: (stream: http2.ServerHttp2Stream) => void,
  ) {
    const server = http2.createServer();
    const events: string[] = [];
    server.on("session", (session) => {
      events.push("open");
      session.on("close", () => events.push("close"));
      session.on("ping", () => events.push("ping"));
    });
    server.on("stream", respond);
    const { port, close } = await listenH2c(server);
    closers.push(close);
    return { port, events };
  }

  const ok = (stream: http2.ServerHttp2Stream) => {
    stream.respond(respondHeaders);
    stream.end(responseBytes);
  };

  function call(client: ReturnType<typeof createHttp2HttpClient>, url: string) {
    return client({
      url: url + unary.path,
      method: "POST",
      header: new Headers({ "content-type": "application/proto" }),
      body: new Uint8Array(0),
      signal: new AbortController().signal,
    });
  }

  it("a PING left unanswered destroys the session: the call in flight fails unavailable naming it, the next reconnects", async () => {
    let first = true;
    const { port, events } = await countingServer((stream) => {
      // The first call gets no answer: only its connection's fate ends it.
      if (first) {
        first = false;
        return;
      }
      ok(stream);
    });
    const proxy = await blackholeProxy(port);
    closers.push(proxy.close);
    const client = createHttp2HttpClient({
      pingIntervalMs: 50,
      pingTimeoutMs: 100,
    });
    const pending = call(client, proxy.url);
    // Answered PINGs keep the session: the call still waits after two.
    await vi.waitFor(() =>
      expect(events.filter((e) => e === "ping").length).toBe(2),
    );
    proxy.blackhole();
    const error = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).rawMessage).toMatch(/PING not acknowledged/);
    proxy.forward();
    const response = await call(client, proxy.url);
    expect(response.status).toBe(200);
    expect(proxy.connections()).toBe(2);
  });

  it("idleTimeoutMs closes a session without calls, and the next call opens another", async () => {
    const { port, events } = await countingServer(ok);
    const client = createHttp2HttpClient({ idleTimeoutMs: 300 });
    const url = `http://127.0.0.1:${port}`;
    // Two calls in a row share the session: the second comes well within
    // the idle timeout.
    await read(await call(client, url));
    await read(await call(client, url));
    expect(events).toEqual(["open"]);
    await vi.waitFor(() => expect(events).toEqual(["open", "close"]));
    await read(await call(client, url));
    expect(events).toEqual(["open", "close", "open"]);
  });
});
