import { describe, expect, it } from "vitest";
import { serverRequest, testMethod } from "../../test/support/server.ts";
import { ServerCallContext, ServerInterceptorRequest } from "./context.ts";

const method = testMethod("Say");

describe("ServerCallContext", () => {
  it("carries the call's method, protocol, request and response parts", () => {
    const request = serverRequest({
      method: "GET",
      path: method.path,
      search: "?message=x",
      headers: { "x-in": "1" },
    });
    const responseHeaders = new Headers();
    const responseTrailers = new Headers();
    const signal = new AbortController().signal;
    const context = new ServerCallContext(
      method,
      "connect",
      request,
      responseHeaders,
      responseTrailers,
      signal,
      () => 42,
    );
    expect(context.method).toBe(method);
    expect(context.protocol).toBe("connect");
    expect(context.requestMethod).toBe("GET");
    expect(context.url).toBe(
      "http://127.0.0.1/test.v1.TestService/Say?message=x",
    );
    expect(context.responseHeaders).toBe(responseHeaders);
    expect(context.responseTrailers).toBe(responseTrailers);
    expect(context.signal).toBe(signal);
    expect(context.timeoutMs()).toBe(42);
  });

  it("builds the request headers only when read, then keeps them", () => {
    const request = serverRequest({
      path: method.path,
      headers: { "x-in": "1" },
    });
    const context = new ServerCallContext(
      method,
      "grpc",
      request,
      new Headers(),
      new Headers(),
      new AbortController().signal,
      () => undefined,
    );
    expect(request.headersBuilt()).toBe(0);
    expect(context.requestHeaders.get("x-in")).toBe("1");
    expect(context.requestHeaders).toBe(context.requestHeaders);
  });
});

describe("ServerInterceptorRequest", () => {
  it("is a unary or stream request whose headers are built on first read", () => {
    const request = serverRequest({
      path: method.path,
      headers: { "x-in": "1" },
    });
    const signal = new AbortController().signal;
    const unary = new ServerInterceptorRequest(
      false,
      method,
      request,
      signal,
      "message",
    );
    expect(unary.stream).toBe(false);
    expect(unary.method).toBe(method);
    expect(unary.url).toBe("http://127.0.0.1/test.v1.TestService/Say");
    expect(unary.signal).toBe(signal);
    expect(unary.message).toBe("message");
    expect(request.headersBuilt()).toBe(0);
    expect(unary.header.get("x-in")).toBe("1");
    expect(request.headersBuilt()).toBe(1);
    const stream = new ServerInterceptorRequest(
      true,
      method,
      request,
      signal,
      [],
    );
    expect(stream.stream).toBe(true);
  });
});
