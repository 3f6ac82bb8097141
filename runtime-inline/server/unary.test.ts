import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  serverRequest,
  testConfig,
  testMethod,
} from "../../test/support/server.ts";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type { Interceptor } from "../core/interceptors.ts";
import { serverRedactedMessage } from "./fail.ts";
import type { HandlerContext, UnaryImplementation } from "./handler.ts";
import { serverRunUnary } from "./unary.ts";

const method = testMethod("Say");
const input = create(StringValueSchema, { value: "in" });

function run(
  unary: UnaryImplementation,
  options: Parameters<typeof testConfig>[0] = {},
  timeoutMs?: number,
  signal?: AbortSignal,
) {
  return serverRunUnary(
    { method, unary },
    serverRequest({
      path: method.path,
      headers: { "x-in": "1" },
      ...(signal === undefined ? {} : { signal }),
    }),
    testConfig({ onError: () => {}, ...options }),
    "grpc-web",
    input,
    timeoutMs,
  );
}

async function failure(promise: ReturnType<typeof run>): Promise<ConnectError> {
  const result = await promise;
  if (result.ok) throw new Error("expected a failure");
  return result.error;
}

async function success(promise: ReturnType<typeof run>) {
  const result = await promise;
  if (!result.ok) throw result.error;
  return result;
}

describe("serverRunUnary", () => {
  it("calls the implementation with the request and its context", async () => {
    let seen: HandlerContext | undefined;
    const output = await success(
      run((request, context) => {
        seen = context;
        context.responseHeaders.set("x-out", "h");
        context.responseTrailers.set("x-trailer", "t");
        return { value: `${(request as typeof input).value}!` };
      }),
    );
    expect(output.message).toEqual(create(StringValueSchema, { value: "in!" }));
    expect(output.header?.get("x-out")).toBe("h");
    expect(output.trailer?.get("x-trailer")).toBe("t");
    expect(seen?.protocol).toBe("grpc-web");
    expect(seen?.method).toBe(method);
    expect(seen?.requestHeaders.get("x-in")).toBe("1");
    expect(seen?.timeoutMs()).toBeUndefined();
  });

  it("runs interceptors first in the list outermost", async () => {
    const log: string[] = [];
    const named =
      (name: string): Interceptor =>
      (next) =>
      async (request) => {
        log.push(`${name} in`);
        const response = await next(request);
        log.push(`${name} out`);
        return response;
      };
    await run(
      () => {
        log.push("implementation");
        return {};
      },
      { interceptors: [named("a"), named("b")] },
    );
    expect(log).toEqual(["a in", "b in", "implementation", "b out", "a out"]);
  });

  it("lets an interceptor see the request and answer instead", async () => {
    const interceptor: Interceptor = () => async (request) => {
      expect(request.stream).toBe(false);
      expect(request.header.get("x-in")).toBe("1");
      throw new ConnectError("no entry", Code.PermissionDenied);
    };
    let called = false;
    const error = await failure(
      run(
        () => {
          called = true;
          return {};
        },
        { interceptors: [interceptor] },
      ),
    );
    expect(called).toBe(false);
    expect(error.code).toBe(Code.PermissionDenied);
  });

  it("turns a failure into the error to send, redacted and reported", async () => {
    const reported: unknown[] = [];
    const reason = new Error("secret path");
    const error = await failure(
      run(
        () => {
          throw reason;
        },
        { onError: (e) => void reported.push(e) },
      ),
    );
    expect(error.code).toBe(Code.Unknown);
    expect(error.rawMessage).toBe(serverRedactedMessage);
    expect(reported).toEqual([reason]);
  });

  it("answers alike whether the implementation returns, resolves or gives a thenable", async () => {
    const answers: UnaryImplementation[] = [
      () => ({ value: "out" }),
      async () => ({ value: "out" }),
      // Not a Promise: any thenable, as `await` takes.
      () => ({
        then(resolve: (value: { value: string }) => void) {
          resolve({ value: "out" });
        },
      }),
      () => create(StringValueSchema, { value: "out" }),
    ];
    for (const unary of answers) {
      const output = await success(run(unary));
      expect(output.message).toEqual(
        create(StringValueSchema, { value: "out" }),
      );
    }
  });

  it("answers a call without a deadline or interceptors at once when the implementation does", () => {
    // No promise to wait for: the protocol writes the response in the same turn.
    const result = run(() => ({ value: "out" }));
    expect(result).not.toBeInstanceOf(Promise);
    expect(run(() => Promise.resolve({ value: "out" }))).toBeInstanceOf(
      Promise,
    );
    expect(run(() => ({ value: "out" }), {}, 1000)).toBeInstanceOf(Promise);
  });

  it("turns a throw and a rejection alike into the error to send", async () => {
    const reported: unknown[] = [];
    const reason = new ConnectError("no", Code.NotFound);
    const failing: UnaryImplementation[] = [
      () => {
        throw reason;
      },
      () => Promise.reject(reason),
      async () => {
        throw reason;
      },
    ];
    for (const unary of failing) {
      const error = await failure(
        run(unary, { onError: (e) => void reported.push(e) }),
      );
      expect(error).toBe(reason);
    }
    expect(reported).toEqual([reason, reason, reason]);
  });

  it("makes no response headers or trailers for an implementation that sets none", async () => {
    const plain = await success(run(() => ({ value: "out" })));
    expect(plain.header).toBeUndefined();
    expect(plain.trailer).toBeUndefined();
    const failed = await run(() => {
      throw new ConnectError("no", Code.NotFound);
    });
    expect(failed.header).toBeUndefined();
    expect(failed.trailer).toBeUndefined();
  });

  it("gives interceptors response headers and trailers to read and set", async () => {
    const interceptor: Interceptor = (next) => async (request) => {
      const response = await next(request);
      response.header.set("x-by", "interceptor");
      return response;
    };
    const output = await success(
      run(() => ({ value: "out" }), { interceptors: [interceptor] }),
    );
    expect(output.header?.get("x-by")).toBe("interceptor");
    expect(output.trailer).toBeInstanceOf(Headers);
  });

  it("keeps the response headers and trailers set before a failure, for the error", async () => {
    const result = await run((_request, context) => {
      context.responseHeaders.set("x-out", "h");
      context.responseTrailers.set("x-trailer", "t");
      throw new ConnectError("no", Code.NotFound);
    });
    expect(result.ok).toBe(false);
    expect(result.header?.get("x-out")).toBe("h");
    expect(result.trailer?.get("x-trailer")).toBe("t");
  });

  it("answers at the deadline an implementation that never does", async () => {
    let signal: AbortSignal | undefined;
    const error = await failure(
      run(
        (_request, context) => {
          signal = context.signal;
          return new Promise(() => {});
        },
        {},
        1,
      ),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(signal?.aborted).toBe(true);
  });

  it("aborts the implementation's signal when the client goes away", async () => {
    const client = new AbortController();
    let aborted: Promise<void> | undefined;
    const call = run(
      (_request, context) => {
        aborted = new Promise((resolve) =>
          context.signal.addEventListener("abort", () => resolve()),
        );
        client.abort(new ConnectError("gone", Code.Canceled));
        return aborted.then(() => {
          throw context.signal.reason;
        });
      },
      {},
      undefined,
      client.signal,
    );
    const error = await failure(call);
    expect(error.code).toBe(Code.Canceled);
  });
});
