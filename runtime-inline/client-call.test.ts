import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { getEventListeners } from "node:events";
import { queryObjects } from "node:v8";
import { describe, expect, it } from "vitest";
import { clientStreamCaller, type StreamSend } from "./client-call.ts";
import { createClientConfig } from "./client-config.ts";
import { Code } from "./code.ts";
import { ConnectError } from "./errors.ts";
import type { MethodInfo } from "./method.ts";

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

const timeoutHeader = { name: "x-timeout", format: String };

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
