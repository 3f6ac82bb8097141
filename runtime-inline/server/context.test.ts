import { describe, expect, it } from "vitest";
import { serverRequest, testMethod } from "../../test/support/server.ts";
import {
  createContextKey,
  createContextValues,
} from "../core/context-values.ts";
import { deadlineForRequest, deadlineStart } from "../core/deadline.ts";
import type { HandlerOptions } from "./handler.ts";
import { ServerCallContext, serverInterceptorRequest } from "./context.ts";

const method = testMethod("Say");

function callContext(
  request: ReturnType<typeof serverRequest>,
  contextValues?: HandlerOptions["contextValues"],
): ServerCallContext {
  return new ServerCallContext(
    method,
    "grpc",
    request,
    deadlineForRequest(undefined, new AbortController().signal),
    contextValues,
  );
}

describe("ServerCallContext", () => {
  it("carries the call's method, protocol, request and response parts", () => {
    const request = serverRequest({
      method: "GET",
      path: method.path,
      search: "?message=x",
      headers: { "x-in": "1" },
    });
    const deadline = deadlineStart(60_000, new AbortController().signal);
    const context = new ServerCallContext(
      method,
      "connect",
      request,
      deadline,
      undefined,
    );
    expect(context.method).toBe(method);
    expect(context.protocol).toBe("connect");
    expect(context.requestMethod).toBe("GET");
    expect(context.url).toBe(
      "http://127.0.0.1/test.v1.TestService/Say?message=x",
    );
    expect(context.responseHeaders).toBeInstanceOf(Headers);
    expect(context.responseTrailers).toBeInstanceOf(Headers);
    expect(context.responseHeaders).not.toBe(context.responseTrailers);
    expect(context.responseHeadersIfAny()).toBe(context.responseHeaders);
    expect(context.responseTrailersIfAny()).toBe(context.responseTrailers);
    expect(context.signal).toBe(deadline.signal);
    expect(context.timeoutMs).toBe(deadline.remainingMs);
    deadline.cleanup();
  });

  it("without a deadline, has the request's signal and no timeout", () => {
    const client = new AbortController();
    const context = new ServerCallContext(
      method,
      "grpc",
      serverRequest({ path: method.path, signal: client.signal }),
      undefined,
      undefined,
    );
    expect(context.signal).toBe(client.signal);
    expect(context.timeoutMs()).toBeUndefined();
  });

  it("makes its response headers and trailers only when read", () => {
    const context = callContext(serverRequest({ path: method.path }));
    expect(context.responseHeadersIfAny()).toBeUndefined();
    expect(context.responseTrailersIfAny()).toBeUndefined();
    context.responseHeaders.set("x-out", "1");
    expect(context.responseHeadersIfAny()?.get("x-out")).toBe("1");
    expect(context.responseTrailersIfAny()).toBeUndefined();
  });

  it("builds the request headers only when read, then keeps them", () => {
    const request = serverRequest({
      path: method.path,
      headers: { "x-in": "1" },
    });
    const context = callContext(request);
    expect(request.headersBuilt()).toBe(0);
    expect(context.requestHeaders.get("x-in")).toBe("1");
    expect(context.requestHeaders).toBe(context.requestHeaders);
  });

  it("makes empty values on first read without an option, then keeps them", () => {
    const key = createContextKey("none");
    const context = callContext(serverRequest({ path: method.path }));
    expect(context.values.get(key)).toBe("none");
    context.values.set(key, "set");
    expect(context.values.get(key)).toBe("set");
    // Another call starts empty: nothing is shared between calls.
    const other = callContext(serverRequest({ path: method.path }));
    expect(other.values.get(key)).toBe("none");
  });

  it("calls the contextValues option once, on first read, with the request", () => {
    const key = createContextKey("");
    const seen: { method: string; url: string; header: string | null }[] = [];
    const request = serverRequest({
      path: method.path,
      headers: { authorization: "Bearer x" },
    });
    const context = callContext(request, (r) => {
      seen.push({
        method: r.method,
        url: r.url,
        header: r.header.get("authorization"),
      });
      return createContextValues().set(key, "from option");
    });
    expect(seen).toEqual([]);
    expect(request.headersBuilt()).toBe(0);
    expect(context.values.get(key)).toBe("from option");
    expect(context.values).toBe(context.values);
    expect(seen).toEqual([
      {
        method: "POST",
        url: "http://127.0.0.1/test.v1.TestService/Say",
        header: "Bearer x",
      },
    ]);
  });
});

describe("serverInterceptorRequest", () => {
  it("is a unary or stream request whose headers are built on first read", () => {
    const request = serverRequest({
      path: method.path,
      headers: { "x-in": "1" },
    });
    const context = callContext(request);
    const unary = serverInterceptorRequest(false, request, context, "message");
    expect(unary.stream).toBe(false);
    expect(unary.service).toBe("test.v1.TestService");
    expect(unary.method).toBe(method);
    expect(unary.requestMethod).toBe("POST");
    expect(unary.url).toBe("http://127.0.0.1/test.v1.TestService/Say");
    expect(unary.signal).toBe(context.signal);
    expect(unary.message).toBe("message");
    expect(request.headersBuilt()).toBe(0);
    expect(unary.header.get("x-in")).toBe("1");
    expect(request.headersBuilt()).toBe(1);
    const stream = serverInterceptorRequest(true, request, context, []);
    expect(stream.stream).toBe(true);
  });

  it("shares the implementation's values", () => {
    const key = createContextKey<string | undefined>(undefined);
    const request = serverRequest({ path: method.path });
    const context = callContext(request);
    const unary = serverInterceptorRequest(false, request, context, "m");
    unary.contextValues.set(key, "user");
    expect(context.values.get(key)).toBe("user");
    expect(unary.contextValues).toBe(context.values);
  });

  it("keeps its headers and values in a copy made with spread", () => {
    const key = createContextKey<string | undefined>(undefined);
    const request = serverRequest({
      path: method.path,
      headers: { "x-in": "1" },
    });
    const context = callContext(request);
    const copy = {
      ...serverInterceptorRequest(false, request, context, "m"),
      message: "changed",
    };
    expect(copy.header.get("x-in")).toBe("1");
    copy.contextValues.set(key, "user");
    expect(context.values.get(key)).toBe("user");
    expect(copy.message).toBe("changed");
  });
});
