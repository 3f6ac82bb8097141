import { describe, expect, it } from "vitest";
import {
  bodyBytes,
  bodyText,
  envelopes,
  readStringValue,
  serverRequest,
  stringValue,
  testConfig,
  testMethod,
} from "../../test/support/server.ts";
import { Code } from "../core/code.ts";
import { envelopeEncode } from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import { connectHandleStream } from "./connect-stream.ts";
import {
  handlerServerStreaming,
  type ServerResponse,
  type StreamMethodHandler,
} from "./handler.ts";

const count: StreamMethodHandler = {
  method: testMethod("Count", "server_streaming"),
  stream: handlerServerStreaming(async function* (request, context) {
    context.responseHeaders.set("x-header", "h");
    context.responseTrailers.set("x-trailer", "t");
    const value = (request as unknown as { value: string }).value;
    yield { value: `${value}1` };
    yield { value: `${value}2` };
  }),
};

const failAfterOne: StreamMethodHandler = {
  method: testMethod("FailAfterOne", "server_streaming"),
  stream: async function* () {
    yield { value: "one" };
    throw new ConnectError("stopped", Code.Aborted);
  },
};

function call(
  handler: StreamMethodHandler,
  body: Uint8Array[],
  headers: Record<string, string> = {},
  method = "POST",
): Promise<ServerResponse> {
  return connectHandleStream(
    handler,
    serverRequest({
      method,
      path: handler.method.path,
      headers: { "content-type": "application/connect+proto", ...headers },
      body,
    }),
    testConfig({ onError: () => {} }),
  );
}

/** The end-of-stream message, parsed. */
function endStream(frame: { flags: number; data: Uint8Array } | undefined) {
  expect(frame?.flags).toBe(0x02);
  return JSON.parse(bodyText(frame!.data)) as {
    error?: { code: string; message: string };
    metadata?: Record<string, string[]>;
  };
}

describe("connectHandleStream", () => {
  it("streams the messages, then the end of stream with the trailers", async () => {
    const response = await call(count, [envelopeEncode(0, stringValue("n"))]);
    expect(response.status).toBe(200);
    expect(response.header.get("content-type")).toBe(
      "application/connect+proto",
    );
    expect(response.header.get("x-header")).toBe("h");
    const frames = envelopes(await bodyBytes(response));
    expect(frames.slice(0, 2).map((f) => f.flags)).toEqual([0, 0]);
    expect(frames.slice(0, 2).map((f) => readStringValue(f.data))).toEqual([
      "n1",
      "n2",
    ]);
    expect(endStream(frames[2])).toEqual({ metadata: { "x-trailer": ["t"] } });
    expect(frames).toHaveLength(3);
  });

  it("ends a failing stream with its error after the messages sent", async () => {
    const response = await call(failAfterOne, [
      envelopeEncode(0, stringValue("x")),
    ]);
    expect(response.status).toBe(200);
    const frames = envelopes(await bodyBytes(response));
    expect(readStringValue(frames[0]!.data)).toBe("one");
    expect(endStream(frames[1]).error).toEqual({
      code: "aborted",
      message: "stopped",
    });
  });

  it("fails a server stream without exactly one request in the end of stream", async () => {
    const response = await call(count, []);
    const frames = envelopes(await bodyBytes(response));
    expect(endStream(frames[0]).error?.code).toBe("unimplemented");
  });

  it("refuses an unknown compression in the end of stream, with HTTP 200", async () => {
    const response = await call(count, [], {
      "connect-content-encoding": "snappy",
    });
    expect(response.status).toBe(200);
    const frames = envelopes(await bodyBytes(response));
    expect(endStream(frames[0]).error?.code).toBe("unimplemented");
  });

  it("answers 405 to anything but POST, and 415 to a unary content type", async () => {
    const get = await call(count, [], {}, "GET");
    expect(get.status).toBe(405);
    expect(get.header.get("allow")).toBe("POST");
    const unary = await call(count, [], {
      "content-type": "application/proto",
    });
    expect(unary.status).toBe(415);
    expect(unary.header.get("accept-post")).toBe(
      "application/connect+json, application/connect+proto",
    );
  });
});
