import { describe, expect, it } from "vitest";
import {
  bodyBytes,
  bodyText,
  readStringValue,
  serverRequest,
  stringValue,
  testConfig,
  testMethod,
} from "../../test/support/server.ts";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import { compressionGzip } from "../node/compression.ts";
import { connectParseGetQuery } from "../protocol/connect.ts";
import { connectHandleStream } from "./connect-stream.ts";
import { connectServer } from "./connect.ts";
import type { ServerResponse, UnaryMethodHandler } from "./handler.ts";

const echo: UnaryMethodHandler = {
  method: testMethod("Echo", "unary", true),
  unary: (request, context) => {
    context.responseHeaders.set("x-header", "h");
    context.responseTrailers.set("x-trailer", "t");
    return { value: `${(request as unknown as { value: string }).value}!` };
  },
};

const failing: UnaryMethodHandler = {
  method: testMethod("Fail"),
  unary: (_request, context) => {
    context.responseTrailers.set("x-trailer", "t");
    throw new Error("secret");
  },
};

const withGet = connectServer({ parseGetQuery: connectParseGetQuery });
const postOnly = connectServer();

function post(
  handler: UnaryMethodHandler,
  body: Uint8Array,
  headers: Record<string, string> = {},
  options: Parameters<typeof testConfig>[0] = {},
): Promise<ServerResponse> {
  return withGet.unary!(
    handler,
    serverRequest({
      path: handler.method.path,
      headers: { "content-type": "application/proto", ...headers },
      body: [body],
    }),
    testConfig({ onError: () => {}, ...options }),
  );
}

describe("connectServer", () => {
  it("accepts anything but gRPC's and gRPC-Web's content types", () => {
    for (const type of [
      "application/proto",
      "application/json",
      "application/connect+proto",
      "text/plain",
      // Served by no protocol here: Connect answers it with its 415.
      "application/grpc-web-text",
      null,
    ]) {
      expect(postOnly.accepts(type), String(type)).toBe(true);
    }
    for (const type of [
      "application/grpc",
      "application/grpc+proto",
      "Application/GRPC-Web+json",
      "application/grpc-web",
    ]) {
      expect(postOnly.accepts(type), type).toBe(false);
    }
    expect(postOnly.name).toBe("connect");
    expect(postOnly.contentTypes).toBe("application/proto, application/json");
  });

  it("serves streams only when given the streaming part", () => {
    expect(postOnly.stream).toBeUndefined();
    expect(connectServer({ stream: connectHandleStream }).stream).toBe(
      connectHandleStream,
    );
  });

  it("answers an unknown method with 404", async () => {
    const response = await postOnly.unimplemented(
      serverRequest({ path: "/test.v1.TestService/Nope" }),
      testConfig(),
    );
    expect(response.status).toBe(404);
    expect(JSON.parse(bodyText(await bodyBytes(response))).code).toBe(
      "unimplemented",
    );
  });
});

describe("Connect unary", () => {
  it("answers a binary POST with the message, headers and trailer- headers", async () => {
    const response = await post(echo, stringValue("hi"));
    expect(response.status).toBe(200);
    expect(response.header.get("content-type")).toBe("application/proto");
    expect(response.header.get("x-header")).toBe("h");
    expect(response.header.get("trailer-x-trailer")).toBe("t");
    expect(readStringValue(await bodyBytes(response))).toBe("hi!");
  });

  it("keeps its own headers plain when the implementation sets none", async () => {
    const plain: UnaryMethodHandler = {
      method: testMethod("Plain"),
      unary: () => ({ value: "x".repeat(100) }),
    };
    const response = await post(
      plain,
      stringValue("hi"),
      { "accept-encoding": "gzip" },
      { compressMinBytes: 10 },
    );
    expect(response.plainHeaderIfUnread?.()).toEqual({
      "content-type": "application/proto",
      "content-encoding": "gzip",
    });
    // Read as Headers, they are the response's headers from then on.
    response.header.append("vary", "Origin");
    expect(response.plainHeaderIfUnread?.()).toBeUndefined();
    expect(response.header.get("content-type")).toBe("application/proto");
    expect(response.header.get("vary")).toBe("Origin");
  });

  it("sends the implementation's headers as Headers, with its own", async () => {
    const response = await post(echo, stringValue("hi"));
    expect(response.plainHeaderIfUnread?.()).toBeUndefined();
  });

  it("answers JSON with JSON", async () => {
    const response = await post(echo, new TextEncoder().encode('"json"'), {
      "content-type": "application/json",
    });
    expect(response.status).toBe(200);
    expect(response.header.get("content-type")).toBe("application/json");
    expect(bodyText(await bodyBytes(response))).toBe('"json!"');
  });

  it("compresses a response the client accepts, past compressMinBytes", async () => {
    const response = await post(
      echo,
      stringValue("x".repeat(100)),
      { "accept-encoding": "gzip" },
      { compressMinBytes: 10 },
    );
    expect(response.header.get("content-encoding")).toBe("gzip");
    const body = await compressionGzip.decompress(
      await bodyBytes(response),
      1000,
    );
    expect(readStringValue(body)).toBe(`${"x".repeat(100)}!`);
  });

  it("reads a compressed request", async () => {
    const response = await post(
      echo,
      await compressionGzip.compress(stringValue("zipped")),
      { "content-encoding": "gzip" },
    );
    expect(readStringValue(await bodyBytes(response))).toBe("zipped!");
  });

  it("refuses an unknown compression with Unimplemented (HTTP 501)", async () => {
    const response = await post(echo, stringValue("x"), {
      "content-encoding": "snappy",
    });
    expect(response.status).toBe(501);
    const error = JSON.parse(bodyText(await bodyBytes(response)));
    expect(error.code).toBe("unimplemented");
    expect(error.message).toContain('"snappy"');
  });

  it("sends an implementation's error with its status, redacted, its trailers as headers", async () => {
    const response = await post(failing, stringValue("x"));
    expect(response.status).toBe(500);
    expect(response.header.get("content-type")).toBe("application/json");
    expect(response.header.get("trailer-x-trailer")).toBe("t");
    expect(JSON.parse(bodyText(await bodyBytes(response)))).toEqual({
      code: "unknown",
      message: "internal error (details withheld)",
    });
  });

  it("sends a ConnectError's code and message", async () => {
    const response = await post(
      {
        method: testMethod("NotFound"),
        unary: () => {
          throw new ConnectError("no such user", Code.NotFound);
        },
      },
      stringValue("x"),
    );
    expect(response.status).toBe(404);
    expect(JSON.parse(bodyText(await bodyBytes(response)))).toEqual({
      code: "not_found",
      message: "no such user",
    });
  });

  it("refuses a request larger than readMaxBytes with ResourceExhausted", async () => {
    const response = await post(
      echo,
      stringValue("x".repeat(100)),
      {},
      { readMaxBytes: 10 },
    );
    expect(JSON.parse(bodyText(await bodyBytes(response))).code).toBe(
      "resource_exhausted",
    );
  });

  it("checks Connect-Protocol-Version when required", async () => {
    const missing = await post(
      echo,
      stringValue("x"),
      {},
      {
        requireConnectProtocolHeader: true,
      },
    );
    expect(missing.status).toBe(400);
    const wrong = await post(echo, stringValue("x"), {
      "connect-protocol-version": "2",
    });
    expect(wrong.status).toBe(400);
    const right = await post(echo, stringValue("x"), {
      "connect-protocol-version": "1",
    });
    expect(right.status).toBe(200);
  });

  it("answers 415 for a content type it does not read", async () => {
    const response = await post(echo, stringValue("x"), {
      "content-type": "text/plain",
    });
    expect(response.status).toBe(415);
    expect(response.header.get("accept-post")).toBe(
      "application/json, application/proto",
    );
  });

  it("answers 405 for other HTTP methods, naming GET only for NO_SIDE_EFFECTS methods", async () => {
    const put = (handler: UnaryMethodHandler) =>
      withGet.unary!(
        handler,
        serverRequest({ method: "PUT", path: handler.method.path }),
        testConfig(),
      );
    const readOnly = await put(echo);
    expect(readOnly.status).toBe(405);
    expect(readOnly.header.get("allow")).toBe("GET, POST");
    expect((await put(failing)).header.get("allow")).toBe("POST");
  });

  it("serves GET for a NO_SIDE_EFFECTS method when the file has GET code", async () => {
    const get = (server: typeof withGet) =>
      server.unary!(
        echo,
        serverRequest({
          method: "GET",
          path: echo.method.path,
          search: "?encoding=json&message=%22q%22",
        }),
        testConfig(),
      );
    const response = await get(withGet);
    expect(response.status).toBe(200);
    expect(bodyText(await bodyBytes(response))).toBe('"q!"');
    // Without connectParseGetQuery, GET is not served at all.
    expect((await get(postOnly)).status).toBe(405);
  });
});
