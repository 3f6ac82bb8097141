import { create, isMessage, toBinary, type Message } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { getEventListeners } from "node:events";
import { queryObjects } from "node:v8";
import { describe, expect, it } from "vitest";
import {
  clientStreamCaller,
  clientUnaryCaller,
  type StreamSend,
  type UnarySend,
} from "./call.ts";
import { connectClientTimeoutHeader } from "./connect.ts";
import { grpcClientTimeoutHeader } from "./grpc.ts";
import {
  clientNeverAborted,
  createClientConfig,
  type ClientUnaryCall,
} from "./config.ts";
import { Code } from "../core/code.ts";
import { envelopeEncode } from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import type {
  Interceptor,
  StreamRequest,
  StreamResponse,
  UnaryRequest,
} from "../core/interceptors.ts";
import {
  createContextKey,
  createContextValues,
} from "../core/context-values.ts";
import type { MethodInfo } from "../core/method.ts";

const method: MethodInfo = {
  service: "test.v1.TestService",
  name: "ServerStream",
  path: "/test.v1.TestService/ServerStream",
  kind: "server_streaming",
  input: StringValueSchema,
  output: StringValueSchema,
  noSideEffects: false,
};

const config = createClientConfig(
  "http://127.0.0.1:1",
  {},
  () => Promise.reject(new Error("no request is sent in these tests")),
  {},
);

/**
 * A transport whose response has every message, and its end, already
 * buffered: what a fast server leaves in the socket before the caller reads.
 */
function buffered(count: number): StreamSend {
  return async (request) => ({
    stream: true,
    method: request.method,
    header: new Headers(),
    trailer: new Headers({ "x-trailer": "sent" }),
    message: (async function* (): AsyncGenerator<Message> {
      for (let i = 0; i < count; i++) {
        yield create(StringValueSchema, { value: `message ${i}` });
      }
    })(),
  });
}

const timeoutHeader = { name: "x-timeout", format: String, maxMs: 1000 };

async function readAfterCancel(
  cancelAfter: number,
  total: number,
): Promise<{ received: string[]; error: unknown }> {
  const controller = new AbortController();
  const call = clientStreamCaller(config, timeoutHeader, buffered(total));
  const response = await call(method, [{ value: "request" }], {
    signal: controller.signal,
  });
  const received: string[] = [];
  try {
    for await (const message of response.message) {
      if (!isMessage(message, StringValueSchema))
        throw new Error("not a StringValue");
      received.push(message.value);
      if (received.length === cancelAfter) controller.abort();
    }
  } catch (e) {
    return { received, error: e };
  }
  return { received, error: undefined };
}

describe("clientStreamCaller, a call cancelled while messages are buffered", () => {
  it("hands out no message after the cancel", async () => {
    const { received, error } = await readAfterCancel(1, 3);
    expect(received).toEqual(["message 0"]);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Canceled);
  });

  it("does not report success when the end was buffered too", async () => {
    const { received, error } = await readAfterCancel(3, 3);
    expect(received).toEqual(["message 0", "message 1", "message 2"]);
    expect((error as ConnectError).code).toBe(Code.Canceled);
  });

  it("reads every message of a call nobody cancels", async () => {
    const { received, error } = await readAfterCancel(-1, 3);
    expect(error).toBeUndefined();
    expect(received).toHaveLength(3);
  });

  it("a deadline that passes between reads fails the next one with deadline_exceeded", async () => {
    // A timeout of 0 has passed by the time the first message is read.
    const call = clientStreamCaller(config, timeoutHeader, buffered(2));
    const response = await call(method, [{ value: "request" }], {
      timeoutMs: 0,
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
    const iterator = response.message[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
  });
});

// The messages of the test below: queryObjects counts the live ones.
class Tracked {
  readonly index: number;
  constructor(index: number) {
    this.index = index;
  }
}

describe("clientStreamCaller, a long stream", () => {
  it("holds no message it has handed out, and adds nothing per message to the caller's signal", async () => {
    const user = new AbortController();
    const call = clientStreamCaller(config, timeoutHeader, async (request) => ({
      stream: true,
      method: request.method,
      header: new Headers(),
      trailer: new Headers(),
      message: (async function* (): AsyncGenerator<Message> {
        for (let i = 0; ; i++) yield new Tracked(i) as unknown as Message;
      })(),
    }));
    const response = await call(method, [{ value: "request" }], {
      signal: user.signal,
      timeoutMs: 3_600_000,
    });
    const iterator = response.message[Symbol.asyncIterator]();
    const pull = async (n: number) => {
      for (let i = 0; i < n; i++) await iterator.next();
    };
    await pull(1000);
    const before = queryObjects(Tracked, { format: "count" });
    await pull(20_000);
    expect(queryObjects(Tracked, { format: "count" }) - before).toBeLessThan(
      100,
    );
    expect(getEventListeners(user.signal, "abort").length).toBe(1);
    await iterator.return?.();
    // Once the call is over, it lets go of the caller's signal.
    expect(getEventListeners(user.signal, "abort").length).toBe(0);
  });
});

describe("timeoutMs the protocol cannot send", () => {
  const unaryMethod: MethodInfo = { ...method, kind: "unary", name: "Unary" };

  /** A transport that records what each call sent, and whether its signal had fired. */
  function recording() {
    const sent: { header: string | null; aborted: boolean }[] = [];
    const send =
      (name: string): UnarySend =>
      async (call, _compression, fields) => {
        // Past a timer that would fire at once (a NaN or overlong delay).
        await new Promise((resolve) => setTimeout(resolve, 5));
        sent.push({
          header: fields[name] ?? null,
          aborted: call.signal.aborted,
        });
        return {
          stream: false,
          method: call.method,
          header: new Headers(),
          trailer: new Headers(),
          message: create(StringValueSchema, { value: "ok" }),
        };
      };
    return { sent, send };
  }

  for (const [protocol, header] of [
    ["connect", connectClientTimeoutHeader],
    ["grpc", grpcClientTimeoutHeader],
  ] as const) {
    it(`${protocol}: NaN, a negative and a non-number are refused with invalid_argument, naming the value, before the call`, async () => {
      const { sent, send } = recording();
      const call = clientUnaryCaller(config, header, send(header.name));
      for (const [value, shown] of [
        [NaN, "NaN"],
        [-1, "-1"],
        [-Infinity, "-Infinity"],
        ["100" as unknown as number, "100"],
      ] as const) {
        const error = await call(
          unaryMethod,
          { value: "x" },
          {
            timeoutMs: value,
          },
        ).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe(Code.InvalidArgument);
        expect((error as ConnectError).rawMessage).toContain(
          `timeoutMs ${shown}`,
        );
      }
      expect(sent).toEqual([]);
    });

    it(`${protocol}: Infinity and more than the header carries are clamped to the longest the header carries, and the timer does not fire`, async () => {
      const { sent, send } = recording();
      const call = clientUnaryCaller(config, header, send(header.name));
      await call(unaryMethod, { value: "x" }, { timeoutMs: Infinity });
      // Connect's is 1e10 (11 digits); gRPC's, 10 times its 8 digits of hours.
      await call(unaryMethod, { value: "x" }, { timeoutMs: header.maxMs * 10 });
      const longest = header.format(header.maxMs);
      expect(sent).toEqual([
        { header: longest, aborted: false },
        { header: longest, aborted: false },
      ]);
    });
  }

  it("the longest headers are what the specifications allow", () => {
    expect(
      connectClientTimeoutHeader.format(connectClientTimeoutHeader.maxMs),
    ).toBe("9999999999");
    expect(grpcClientTimeoutHeader.format(grpcClientTimeoutHeader.maxMs)).toBe(
      "99999999H",
    );
  });

  it("a streaming call refuses NaN the same way", async () => {
    let sent = false;
    const call = clientStreamCaller(config, timeoutHeader, async (request) => {
      sent = true;
      return buffered(0)(request, undefined, {}, (async function* () {})());
    });
    const error = await call(method, [], { timeoutMs: NaN }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect(sent).toBe(false);
  });
});

describe("a request iterable that throws", () => {
  /**
   * A transport that sends the whole request body before it answers (as
   * fetch does) and, as a real one, turns a body that broke off into its
   * own failure, or into a cancellation once the call's signal has fired.
   */
  const sendingFirst: StreamSend = async (
    request,
    _compression,
    _fields,
    body,
  ) => {
    try {
      for await (const _ of body);
    } catch {
      if (request.signal.aborted) throw request.signal.reason;
      throw new ConnectError("fetch failed", Code.Unavailable);
    }
    return buffered(1)(request, undefined, {}, body);
  };

  async function callWith(requests: AsyncIterable<{ value: string }>) {
    const call = clientStreamCaller(config, timeoutHeader, sendingFirst);
    try {
      const response = await call(
        { ...method, kind: "client_streaming" },
        requests,
        {},
      );
      for await (const _ of response.message);
    } catch (e) {
      return e;
    }
    throw new Error("the call succeeded");
  }

  it("fails the call with unknown, the caller's message and the error as cause, not unavailable", async () => {
    const mine = new Error("my producer broke");
    const error = await callWith(
      (async function* () {
        yield { value: "one" };
        throw mine;
      })(),
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unknown);
    expect((error as ConnectError).rawMessage).toBe("my producer broke");
    expect((error as ConnectError).cause).toBe(mine);
  });

  it("fails the call with the caller's own ConnectError as it is", async () => {
    const mine = new ConnectError("no more", Code.FailedPrecondition);
    const error = await callWith(
      (async function* () {
        yield { value: "one" };
        throw mine;
      })(),
    );
    expect(error).toBe(mine);
  });
});

describe("the request body each kind of streaming call sends", () => {
  /** A transport that records the body it is given, and answers with nothing. */
  function recordingBody() {
    const bodies: (Uint8Array | AsyncIterable<Uint8Array>)[] = [];
    const send: StreamSend = async (request, _compression, _fields, body) => {
      bodies.push(body);
      return buffered(0)(request, undefined, {}, body);
    };
    return { bodies, send };
  }

  function envelope(value: string): Uint8Array {
    return envelopeEncode(
      0,
      toBinary(StringValueSchema, create(StringValueSchema, { value })),
    );
  }

  async function drain(response: Promise<StreamResponse>): Promise<void> {
    for await (const _ of (await response).message);
  }

  it("server streaming: its one request whole, in one envelope, so that it goes over any HTTP", async () => {
    const { bodies, send } = recordingBody();
    const call = clientStreamCaller(config, timeoutHeader, send);
    await drain(call(method, [{ value: "request" }], {}));
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).toBeInstanceOf(Uint8Array);
    expect(bodies[0]).toEqual(envelope("request"));
  });

  it("server streaming: what an interceptor made of the request is sent as it is, whole", async () => {
    const { bodies, send } = recordingBody();
    const doubling: Interceptor = (next) => async (request) => {
      if (!request.stream) return next(request);
      const messages = request.message;
      return next({
        ...request,
        message: (async function* () {
          for await (const m of messages) {
            yield m;
            yield create(StringValueSchema, { value: "extra" });
          }
        })(),
      });
    };
    const call = clientStreamCaller(
      createClientConfig(
        "http://127.0.0.1:1",
        { interceptors: [doubling] },
        config.httpClient,
        {},
      ),
      timeoutHeader,
      send,
    );
    await drain(call(method, [{ value: "request" }], {}));
    const both = new Uint8Array([...envelope("request"), ...envelope("extra")]);
    expect(bodies).toEqual([both]);
  });

  it("server streaming: a request that fails to encode fails the call with its error, and nothing is sent", async () => {
    const { bodies, send } = recordingBody();
    const mine = new Error("my interceptor broke");
    const breaking: Interceptor = (next) => async (request) =>
      request.stream
        ? next({
            ...request,
            message: (async function* (): AsyncGenerator<Message> {
              throw mine;
            })(),
          })
        : next(request);
    const call = clientStreamCaller(
      createClientConfig(
        "http://127.0.0.1:1",
        { interceptors: [breaking] },
        config.httpClient,
        {},
      ),
      timeoutHeader,
      send,
    );
    const error = await call(method, [{ value: "request" }], {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: Code.Unknown,
      rawMessage: "my interceptor broke",
      cause: mine,
    });
    expect(bodies).toEqual([]);
  });

  for (const kind of ["client_streaming", "bidi_streaming"] as const) {
    it(`${kind}: a stream of envelopes, sent before the requests are all produced`, async () => {
      const { bodies, send } = recordingBody();
      const call = clientStreamCaller(config, timeoutHeader, send);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const requests = (async function* () {
        yield { value: "one" };
        await held;
        yield { value: "two" };
      })();
      const response = await call({ ...method, kind }, requests, {});
      // The transport has the body while the second request is still held.
      expect(bodies).toHaveLength(1);
      const body = bodies[0]!;
      expect(body).not.toBeInstanceOf(Uint8Array);
      const chunks: Uint8Array[] = [];
      const iterator = (body as AsyncIterable<Uint8Array>)[
        Symbol.asyncIterator
      ]();
      chunks.push((await iterator.next()).value as Uint8Array);
      release();
      for (let r = await iterator.next(); r.done !== true;) {
        chunks.push(r.value);
        r = await iterator.next();
      }
      expect(chunks).toEqual([envelope("one"), envelope("two")]);
      for await (const _ of response.message);
    });
  }
});

describe("clientUnaryCaller, the signal a unary call gets", () => {
  const unary: MethodInfo = { ...method, kind: "unary", name: "Unary" };
  const send =
    (seen: ClientUnaryCall[]): UnarySend =>
    async (call) => {
      seen.push(call);
      return {
        stream: false,
        method: call.method,
        header: new Headers(),
        trailer: new Headers(),
        message: create(StringValueSchema, { value: "ok" }),
      };
    };

  it("without a deadline, a caller's signal or interceptors: the shared one that never fires", async () => {
    const seen: ClientUnaryCall[] = [];
    const call = clientUnaryCaller(config, timeoutHeader, send(seen));
    await call(unary, { value: "1" }, undefined);
    expect(seen[0]!.signal).toBe(clientNeverAborted);
  });

  it("with interceptors, which may listen to it: one of the call's own, which they can leave listeners on", async () => {
    const seen: ClientUnaryCall[] = [];
    const listening: Interceptor = (next) => async (request) => {
      request.signal.addEventListener("abort", () => {});
      return await next(request);
    };
    const call = clientUnaryCaller(
      createClientConfig(
        "http://127.0.0.1:1",
        { interceptors: [listening] },
        config.httpClient,
        {},
      ),
      timeoutHeader,
      send(seen),
    );
    await call(unary, { value: "1" }, undefined);
    await call(unary, { value: "2" }, undefined);
    const [first, second] = seen.map((r) => r.signal);
    expect(first).not.toBe(clientNeverAborted);
    expect(second).not.toBe(first);
    expect(getEventListeners(clientNeverAborted, "abort")).toHaveLength(0);
  });
});

describe("clientUnaryCaller, context values", () => {
  const unary: MethodInfo = {
    ...method,
    name: "Get",
    path: "/test.v1.TestService/Get",
    kind: "unary",
    noSideEffects: true,
  };
  const key = createContextKey("default");
  const send =
    (seen: ClientUnaryCall[]): UnarySend =>
    async (call) => {
      seen.push(call);
      return {
        stream: false,
        method: call.method,
        header: new Headers(),
        trailer: new Headers(),
        message: create(StringValueSchema, { value: "ok" }),
      };
    };

  it("without interceptors, the protocol gets the call without what only interceptors read: no context values, no Headers", async () => {
    const seen: ClientUnaryCall[] = [];
    const call = clientUnaryCaller(config, timeoutHeader, send(seen));
    await call(unary, { value: "1" }, { headers: { "x-mine": "1" } });
    expect(Object.keys(seen[0]!).sort()).toEqual([
      "message",
      "method",
      "requestMethod",
      "signal",
      "url",
    ]);
  });

  it("with interceptors, each call has values of its own, or the call options'", async () => {
    const seen: (UnaryRequest | StreamRequest)[] = [];
    const interceptor: Interceptor = (next) => async (request) => {
      request.contextValues.set(key, `${request.contextValues.get(key)}+`);
      seen.push(request);
      return await next(request);
    };
    const call = clientUnaryCaller(
      createClientConfig(
        "http://127.0.0.1:1",
        { interceptors: [interceptor] },
        config.httpClient,
        {},
      ),
      timeoutHeader,
      send([]),
    );
    await call(unary, { value: "1" }, undefined);
    await call(unary, { value: "2" }, {});
    const own = createContextValues().set(key, "mine");
    await call(unary, { value: "3" }, { contextValues: own });
    expect(seen.map((r) => r.contextValues.get(key))).toEqual([
      "default+",
      "default+",
      "mine+",
    ]);
    expect(seen[2]!.contextValues).toBe(own);
    expect(seen[0]!.service).toBe("test.v1.TestService");
  });

  it("requestMethod is GET only for a NO_SIDE_EFFECTS method when the protocol sends those with GET", async () => {
    const seen: ClientUnaryCall[] = [];
    const get = clientUnaryCaller(config, timeoutHeader, send(seen), true);
    const post = clientUnaryCaller(config, timeoutHeader, send(seen));
    await get(unary, { value: "x" }, undefined);
    await get({ ...unary, noSideEffects: false }, { value: "x" }, undefined);
    await post(unary, { value: "x" }, undefined);
    expect(seen.map((r) => r.requestMethod)).toEqual(["GET", "POST", "POST"]);
  });
});
