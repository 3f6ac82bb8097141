import { create, type Message } from "@bufbuild/protobuf";
import {
  Int32ValueSchema,
  StringValueSchema,
  type StringValue,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import type { StreamCaller, UnaryCaller } from "./config.ts";
import {
  clientBidiStreamingMethod,
  clientClientStreamingMethod,
  clientServerStreamingMethod,
  clientUnaryMethod,
} from "./client.ts";
import type { CallOptions } from "./config.ts";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type { MethodInfo } from "../core/method.ts";

function methodOf<Kind extends MethodInfo["kind"]>(kind: Kind, name: string) {
  return {
    service: "test.v1.TestService",
    name,
    path: `/test.v1.TestService/${name}`,
    kind,
    input: Int32ValueSchema,
    output: StringValueSchema,
    noSideEffects: false,
  } satisfies MethodInfo;
}

const unaryMethod = methodOf("unary", "Unary");
const serverStreamingMethod = methodOf("server_streaming", "ServerStream");
const clientStreamingMethod = methodOf("client_streaming", "ClientStream");
const bidiStreamingMethod = methodOf("bidi_streaming", "Bidi");

function text(value: string): StringValue {
  return create(StringValueSchema, { value });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

interface Recorded {
  method: MethodInfo;
  input: unknown;
  options: CallOptions | undefined;
}

/** A unary caller that records its calls and answers with `value`. */
function unaryCaller(value = "answer"): {
  call: UnaryCaller;
  calls: Recorded[];
  header: Headers;
  trailer: Headers;
} {
  const calls: Recorded[] = [];
  const header = new Headers({ "x-header": "h" });
  const trailer = new Headers({ "x-trailer": "t" });
  const call: UnaryCaller = async (method, input, options) => {
    calls.push({ method, input, options });
    return {
      stream: false,
      method,
      header,
      trailer,
      message: text(value),
    };
  };
  return { call, calls, header, trailer };
}

/**
 * A stream caller that records its calls and answers with `values`; it
 * knows how many response messages were read and whether the response was
 * stopped.
 */
function streamCaller(values: string[]): {
  call: StreamCaller;
  calls: Recorded[];
  header: Headers;
  trailer: Headers;
  read: () => number;
  finished: () => boolean;
} {
  const calls: Recorded[] = [];
  const header = new Headers({ "x-header": "h" });
  const trailer = new Headers();
  let read = 0;
  let finished = false;
  const call: StreamCaller = async (method, input, options) => {
    calls.push({ method, input, options });
    return {
      stream: true,
      method,
      header,
      trailer,
      message: (async function* (): AsyncGenerator<Message> {
        try {
          for (const value of values) {
            read++;
            yield text(value);
          }
          // Complete once the messages have been read to the end.
          trailer.set("x-trailer", "t");
        } finally {
          finished = true;
        }
      })(),
    };
  };
  return {
    call,
    calls,
    header,
    trailer,
    read: () => read,
    finished: () => finished,
  };
}

function failingCaller(error: unknown): StreamCaller {
  return () => Promise.reject(error);
}

const options: CallOptions = {
  timeoutMs: 1000,
  headers: { "x-option": "1" },
};

describe("clientUnaryMethod", () => {
  it("calls the caller with the method, the request and the options, and resolves to the message", async () => {
    const { call, calls } = unaryCaller("pong");
    const method = clientUnaryMethod(call, unaryMethod);
    const request = { value: 42 };
    const message = await method(request, options);
    expect(message).toEqual(text("pong"));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe(unaryMethod);
    expect(calls[0]!.input).toBe(request);
    expect(calls[0]!.options).toBe(options);
  });

  it("passes no options as undefined", async () => {
    const { call, calls } = unaryCaller();
    await clientUnaryMethod(call, unaryMethod)({ value: 1 });
    expect(calls[0]!.options).toBeUndefined();
  });

  it("makes one call per invocation", async () => {
    const { call, calls } = unaryCaller();
    const method = clientUnaryMethod(call, unaryMethod);
    await method({ value: 1 });
    await method({ value: 2 });
    expect(calls.map((c) => c.input)).toEqual([{ value: 1 }, { value: 2 }]);
  });

  it("raw resolves to the message with the response headers and trailers", async () => {
    const { call, calls, header, trailer } = unaryCaller("pong");
    const request = create(Int32ValueSchema, { value: 7 });
    const result = await clientUnaryMethod(call, unaryMethod).raw(
      request,
      options,
    );
    expect(result.message).toEqual(text("pong"));
    expect(result.header).toBe(header);
    expect(result.trailer).toBe(trailer);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.input).toBe(request);
    expect(calls[0]!.options).toBe(options);
  });

  it("rejects with the caller's error, both ways", async () => {
    const failure = new ConnectError("nope", Code.NotFound);
    const call: UnaryCaller = () => Promise.reject(failure);
    const method = clientUnaryMethod(call, unaryMethod);
    await expect(method({ value: 1 })).rejects.toBe(failure);
    await expect(method.raw({ value: 1 })).rejects.toBe(failure);
  });
});

describe("clientServerStreamingMethod", () => {
  it("starts the call only when the loop starts, with the request as a one-element list", async () => {
    const { call, calls } = streamCaller(["a", "b"]);
    const method = clientServerStreamingMethod(call, serverStreamingMethod);
    const request = { value: 5 };
    const messages = method(request, options);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(0);
    expect(await collect(messages)).toEqual([text("a"), text("b")]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe(serverStreamingMethod);
    expect(calls[0]!.input).toEqual([request]);
    expect((calls[0]!.input as unknown[])[0]).toBe(request);
    expect(calls[0]!.options).toBe(options);
  });

  it("yields nothing for a response without messages", async () => {
    const { call } = streamCaller([]);
    const method = clientServerStreamingMethod(call, serverStreamingMethod);
    expect(await collect(method({ value: 1 }))).toEqual([]);
  });

  it("stops reading the response when the loop is left early", async () => {
    const { call, read, finished } = streamCaller(["a", "b", "c"]);
    const method = clientServerStreamingMethod(call, serverStreamingMethod);
    for await (const message of method({ value: 1 })) {
      expect(message).toEqual(text("a"));
      break;
    }
    expect(read()).toBe(1);
    expect(finished()).toBe(true);
  });

  it("fails the loop, not the invocation, when the call fails", async () => {
    const failure = new ConnectError("down", Code.Unavailable);
    const method = clientServerStreamingMethod(
      failingCaller(failure),
      serverStreamingMethod,
    );
    const messages = method({ value: 1 });
    await expect(collect(messages)).rejects.toBe(failure);
  });

  it("passes on an error of the response messages after those that came", async () => {
    const failure = new ConnectError("mid-stream", Code.Internal);
    const call: StreamCaller = async (method) => ({
      stream: true,
      method,
      header: new Headers(),
      trailer: new Headers(),
      message: (async function* () {
        yield text("first");
        throw failure;
      })(),
    });
    const received: Message[] = [];
    const error = await rejection(
      (async () => {
        for await (const m of clientServerStreamingMethod(
          call,
          serverStreamingMethod,
        )({ value: 1 })) {
          received.push(m);
        }
      })(),
    );
    expect(error).toBe(failure);
    expect(received).toEqual([text("first")]);
  });

  it("raw starts the call at once and resolves to the headers, the trailers and the messages", async () => {
    const { call, calls, header, trailer } = streamCaller(["a", "b"]);
    const method = clientServerStreamingMethod(call, serverStreamingMethod);
    const request = { value: 9 };
    const result = await method.raw(request, options);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.input).toEqual([request]);
    expect(calls[0]!.options).toBe(options);
    expect(result.header).toBe(header);
    expect(result.trailer).toBe(trailer);
    expect(result.trailer.get("x-trailer")).toBeNull();
    expect(await collect(result.messages)).toEqual([text("a"), text("b")]);
    expect(result.trailer.get("x-trailer")).toBe("t");
  });

  it("raw rejects with the call's error", async () => {
    const failure = new ConnectError("down", Code.Unavailable);
    const method = clientServerStreamingMethod(
      failingCaller(failure),
      serverStreamingMethod,
    );
    await expect(method.raw({ value: 1 })).rejects.toBe(failure);
  });
});

describe("clientClientStreamingMethod", () => {
  it("passes the requests through as given and resolves to the one response", async () => {
    const { call, calls } = streamCaller(["sum"]);
    const method = clientClientStreamingMethod(call, clientStreamingMethod);
    const requests = [{ value: 1 }, { value: 2 }];
    expect(await method(requests, options)).toEqual(text("sum"));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe(clientStreamingMethod);
    expect(calls[0]!.input).toBe(requests);
    expect(calls[0]!.options).toBe(options);
  });

  it("passes an async iterable of requests through as given", async () => {
    const { call, calls } = streamCaller(["sum"]);
    const requests = (async function* () {
      yield { value: 1 };
    })();
    await clientClientStreamingMethod(call, clientStreamingMethod)(requests);
    expect(calls[0]!.input).toBe(requests);
    expect(calls[0]!.options).toBeUndefined();
  });

  it("raw resolves to the response with the headers and the completed trailers", async () => {
    const { call, header, trailer } = streamCaller(["sum"]);
    const result = await clientClientStreamingMethod(
      call,
      clientStreamingMethod,
    ).raw([]);
    expect(result.message).toEqual(text("sum"));
    expect(result.header).toBe(header);
    expect(result.trailer).toBe(trailer);
    expect(result.trailer.get("x-trailer")).toBe("t");
  });

  it.each(["call", "raw"] as const)(
    "fails with Unimplemented when the response has no message (%s)",
    async (how) => {
      const { call } = streamCaller([]);
      const method = clientClientStreamingMethod(call, clientStreamingMethod);
      const error = await rejection(
        how === "raw" ? method.raw([]) : method([]),
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect(error).toMatchObject({
        code: Code.Unimplemented,
        rawMessage: "protocol error: no response message",
      });
    },
  );

  it.each(["call", "raw"] as const)(
    "fails with Unimplemented at a second response message, and stops reading (%s)",
    async (how) => {
      const { call, read, finished } = streamCaller(["one", "two", "three"]);
      const method = clientClientStreamingMethod(call, clientStreamingMethod);
      const error = await rejection(
        how === "raw" ? method.raw([]) : method([]),
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect(error).toMatchObject({
        code: Code.Unimplemented,
        rawMessage: "protocol error: more than one response message",
      });
      expect(read()).toBe(2);
      expect(finished()).toBe(true);
    },
  );

  it("rejects with the call's error", async () => {
    const failure = new ConnectError("denied", Code.PermissionDenied);
    const method = clientClientStreamingMethod(
      failingCaller(failure),
      clientStreamingMethod,
    );
    await expect(method([])).rejects.toBe(failure);
    await expect(method.raw([])).rejects.toBe(failure);
  });

  it("rejects with an error of the response messages", async () => {
    const failure = new ConnectError("cut", Code.Internal);
    const call: StreamCaller = async (method) => ({
      stream: true,
      method,
      header: new Headers(),
      trailer: new Headers(),
      message: (async function* (): AsyncGenerator<Message> {
        throw failure;
      })(),
    });
    await expect(
      clientClientStreamingMethod(call, clientStreamingMethod)([]),
    ).rejects.toBe(failure);
  });
});

describe("clientBidiStreamingMethod", () => {
  it("starts the call only when the loop starts, passing the requests through as given", async () => {
    const { call, calls } = streamCaller(["a", "b"]);
    const method = clientBidiStreamingMethod(call, bidiStreamingMethod);
    const requests = (async function* () {
      yield { value: 1 };
    })();
    const messages = method(requests, options);
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(0);
    expect(await collect(messages)).toEqual([text("a"), text("b")]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe(bidiStreamingMethod);
    expect(calls[0]!.input).toBe(requests);
    expect(calls[0]!.options).toBe(options);
  });

  it("stops reading the response when the loop is left early", async () => {
    const { call, read, finished } = streamCaller(["a", "b", "c"]);
    const method = clientBidiStreamingMethod(call, bidiStreamingMethod);
    const received: Message[] = [];
    for await (const message of method([{ value: 1 }])) {
      received.push(message);
      if (received.length === 2) break;
    }
    expect(received).toEqual([text("a"), text("b")]);
    expect(read()).toBe(2);
    expect(finished()).toBe(true);
  });

  it("fails the loop, not the invocation, when the call fails", async () => {
    const failure = new ConnectError("down", Code.Unavailable);
    const method = clientBidiStreamingMethod(
      failingCaller(failure),
      bidiStreamingMethod,
    );
    const messages = method([]);
    await expect(collect(messages)).rejects.toBe(failure);
  });

  it("raw starts the call at once and resolves to the headers, the trailers and the messages", async () => {
    const { call, calls, header, trailer } = streamCaller(["a"]);
    const requests = [{ value: 1 }, { value: 2 }];
    const result = await clientBidiStreamingMethod(
      call,
      bidiStreamingMethod,
    ).raw(requests, options);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.input).toBe(requests);
    expect(calls[0]!.options).toBe(options);
    expect(result.header).toBe(header);
    expect(result.trailer).toBe(trailer);
    expect(await collect(result.messages)).toEqual([text("a")]);
    expect(result.trailer.get("x-trailer")).toBe("t");
  });

  it("raw rejects with the call's error", async () => {
    const failure = new ConnectError("down", Code.Unavailable);
    const method = clientBidiStreamingMethod(
      failingCaller(failure),
      bidiStreamingMethod,
    );
    await expect(method.raw([])).rejects.toBe(failure);
  });
});
