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
import { grpcWebServer } from "./grpc-web.ts";
import { grpcServeStream } from "./grpc.ts";
import type {
  ServerResponse,
  StreamMethodHandler,
  UnaryMethodHandler,
} from "./handler.ts";

const echo: UnaryMethodHandler = {
  method: testMethod("Echo"),
  unary: (request, context) => {
    context.responseTrailers.set("x-trailer", "t");
    return { value: `${(request as unknown as { value: string }).value}!` };
  },
};

const twice: StreamMethodHandler = {
  method: testMethod("Twice", "bidi_streaming"),
  stream: async function* (requests) {
    for await (const request of requests) {
      const value = (request as unknown as { value: string }).value;
      yield { value };
      yield { value };
    }
  },
};

const server = grpcWebServer(grpcServeStream);

function request(path: string, body: Uint8Array[], contentType?: string) {
  return serverRequest({
    path,
    headers: { "content-type": contentType ?? "application/grpc-web+proto" },
    body,
    // gRPC-Web needs no HTTP/2.
    httpVersion: "1.1",
  });
}

async function frames(response: ServerResponse) {
  return envelopes(await bodyBytes(response));
}

describe("grpcWebServer", () => {
  it("accepts gRPC-Web's content types only", () => {
    expect(server.name).toBe("grpc-web");
    expect(server.contentTypes).toBe("application/grpc-web");
    for (const type of [
      "application/grpc-web",
      "application/grpc-web+proto",
      "application/grpc-web+json",
      "application/grpc-web;charset=utf-8",
    ]) {
      expect(server.accepts(type), type).toBe(true);
    }
    for (const type of [
      "application/grpc",
      "application/grpc-web-text",
      "application/proto",
      null,
    ]) {
      expect(server.accepts(type), String(type)).toBe(false);
    }
  });

  it("serves streams only when given grpcServeStream", () => {
    expect(grpcWebServer().stream).toBeUndefined();
    expect(server.stream).toBeDefined();
  });

  it("answers a unary call with its message, then the status as a trailers envelope", async () => {
    const response = await server.unary!(
      echo,
      request(echo.method.path, [envelopeEncode(0, stringValue("hi"))]),
      testConfig(),
    );
    expect(response.status).toBe(200);
    expect(response.trailer).toBeUndefined();
    const [message, trailer] = await frames(response);
    expect(message?.flags).toBe(0);
    expect(readStringValue(message!.data)).toBe("hi!");
    expect(trailer?.flags).toBe(0x80);
    const text = bodyText(trailer!.data);
    expect(text).toContain("grpc-status: 0");
    expect(text).toContain("x-trailer: t");
  });

  it("streams every response message, the status last", async () => {
    const response = await server.stream!(
      twice,
      request(twice.method.path, [
        envelopeEncode(0, stringValue("a")),
        envelopeEncode(0, stringValue("b")),
      ]),
      testConfig(),
    );
    const all = await frames(response);
    expect(all.slice(0, 4).map((f) => readStringValue(f.data))).toEqual([
      "a",
      "a",
      "b",
      "b",
    ]);
    expect(all[4]?.flags).toBe(0x80);
    expect(bodyText(all[4]!.data)).toContain("grpc-status: 0");
  });

  it("answers an unknown method with status unimplemented in the body", async () => {
    const response = await server.unimplemented(
      request("/test.v1.TestService/Nope", []),
      testConfig(),
    );
    expect(response.status).toBe(200);
    const [trailer] = await frames(response);
    expect(trailer?.flags).toBe(0x80);
    expect(bodyText(trailer!.data)).toContain(
      `grpc-status: ${Code.Unimplemented}`,
    );
  });

  it("answers 415 for JSON in a file without JSON, 405 for GET", async () => {
    const json = await server.unary!(
      echo,
      request(echo.method.path, [], "application/grpc-web+json"),
      { ...testConfig(), jsonCodec: undefined },
    );
    expect(json.status).toBe(415);
    expect(json.header.get("accept-post")).toBe("application/grpc-web+proto");
    const get = await server.unary!(
      echo,
      serverRequest({ method: "GET", path: echo.method.path }),
      testConfig(),
    );
    expect(get.status).toBe(405);
  });
});
