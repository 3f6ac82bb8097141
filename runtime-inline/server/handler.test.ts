import { create, type Message } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import {
  handlerBodyFailed,
  handlerClientGone,
  handlerClientStreaming,
  handlerNotFound,
  handlerServerStreaming,
  handlerSingleRequest,
  handlerUnsupportedMediaType,
  type HandlerContext,
} from "./handler.ts";

function message(value: string): Message {
  return create(StringValueSchema, { value });
}

async function* messages(...values: string[]): AsyncGenerator<Message> {
  for (const value of values) yield message(value);
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ConnectError)) throw new Error("expected a failure");
  return error;
}

const context = {} as HandlerContext;

describe("handlerSingleRequest", () => {
  it("returns the one request message", async () => {
    expect(await handlerSingleRequest(messages("a"))).toEqual(message("a"));
  });

  it("refuses none or more than one with Unimplemented, as connect-go", async () => {
    const none = await failure(handlerSingleRequest(messages()));
    expect(none.code).toBe(Code.Unimplemented);
    expect(none.rawMessage).toBe("protocol error: no request message");
    const two = await failure(handlerSingleRequest(messages("a", "b")));
    expect(two.code).toBe(Code.Unimplemented);
    expect(two.rawMessage).toBe(
      "protocol error: more than one request message",
    );
  });
});

describe("handlerServerStreaming", () => {
  it("calls the implementation with the one request and yields what it yields", async () => {
    const stream = handlerServerStreaming(async function* (request, ctx) {
      expect(ctx).toBe(context);
      const value = (request as ReturnType<typeof message> & { value: string })
        .value;
      yield { value: `${value}1` };
      yield { value: `${value}2` };
    });
    expect(await collect(stream(messages("x"), context))).toEqual([
      { value: "x1" },
      { value: "x2" },
    ]);
  });

  it("fails before the implementation runs without exactly one request", async () => {
    let called = false;
    const stream = handlerServerStreaming(async function* () {
      called = true;
      yield {};
    });
    const error = await failure(collect(stream(messages(), context)));
    expect(error.code).toBe(Code.Unimplemented);
    expect(called).toBe(false);
  });
});

describe("handlerClientStreaming", () => {
  it("yields the implementation's one response", async () => {
    const stream = handlerClientStreaming(async (requests) => {
      const all = await collect(requests);
      return { value: `${all.length} requests` };
    });
    expect(await collect(stream(messages("a", "b", "c"), context))).toEqual([
      { value: "3 requests" },
    ]);
  });
});

describe("handlerClientGone", () => {
  it("is Canceled, with the reason given or a default", () => {
    const gone = handlerClientGone();
    expect(gone.code).toBe(Code.Canceled);
    expect(gone.rawMessage).toBe("the client went away");
    expect(handlerClientGone(new Error("reset")).code).toBe(Code.Canceled);
    const known = new ConnectError("late", Code.DeadlineExceeded);
    expect(handlerClientGone(known)).toBe(known);
  });
});

describe("handlerBodyFailed", () => {
  it("hides a transport error behind Canceled, keeping it as cause", () => {
    const cause = new Error("read ECONNRESET 10.0.0.1:443");
    const error = handlerBodyFailed(cause);
    expect(error.code).toBe(Code.Canceled);
    expect(error.rawMessage).not.toContain("10.0.0.1");
    expect(error.cause).toBe(cause);
  });

  it("passes a ConnectError through", () => {
    const tooLarge = new ConnectError("too large", Code.ResourceExhausted);
    expect(handlerBodyFailed(tooLarge)).toBe(tooLarge);
  });
});

describe("handlerUnsupportedMediaType", () => {
  it("answers 415 naming the accepted content types", () => {
    const response = handlerUnsupportedMediaType("application/proto");
    expect(response.status).toBe(415);
    expect(response.header.get("accept-post")).toBe("application/proto");
    expect(response.body).toBeUndefined();
  });
});

describe("handlerNotFound", () => {
  it("answers 404 with a Connect error body a Connect client reads as unimplemented", () => {
    const response = handlerNotFound("/test.v1.TestService/Nope");
    expect(response.status).toBe(404);
    expect(response.header.get("content-type")).toBe("application/json");
    expect(
      JSON.parse(new TextDecoder().decode(response.body as Uint8Array)),
    ).toEqual({
      code: "unimplemented",
      message: "no such method: /test.v1.TestService/Nope",
    });
  });
});
