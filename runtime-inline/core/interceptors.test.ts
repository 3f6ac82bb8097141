import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  applyInterceptors,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "./interceptors.ts";
import type { MethodInfo } from "./method.ts";
import { createContextValues } from "./context-values.ts";

const method: MethodInfo = {
  service: "test.v1.TestService",
  name: "Echo",
  path: "/test.v1.TestService/Echo",
  kind: "unary",
  input: StringValueSchema,
  output: StringValueSchema,
  noSideEffects: false,
};

function text(value: string): Message {
  return create(StringValueSchema, { value });
}

function valueOf(message: unknown): string {
  if (!isMessage(message, StringValueSchema)) {
    throw new Error("expected a google.protobuf.StringValue");
  }
  return message.value;
}

function unaryRequest(value = "ping"): UnaryRequest {
  return {
    stream: false,
    service: method.service,
    method,
    requestMethod: "POST",
    url: "http://127.0.0.1:1/test.v1.TestService/Echo",
    header: new Headers(),
    signal: new AbortController().signal,
    contextValues: createContextValues(),
    message: text(value),
  };
}

/** The innermost step: answers with the request's message and headers, and logs the call. */
function echo(log: string[]) {
  return async (request: UnaryRequest): Promise<UnaryResponse> => {
    log.push("send");
    return {
      stream: false,
      method: request.method,
      header: new Headers(request.header),
      trailer: new Headers(),
      message: request.message,
    };
  };
}

/** An interceptor that logs before and after the rest of the chain. */
function logging(name: string, log: string[]): Interceptor {
  return (next) => async (request) => {
    log.push(`${name} before`);
    const response = await next(request);
    log.push(`${name} after`);
    return response;
  };
}

describe("applyInterceptors", () => {
  it("returns next itself for no interceptors", () => {
    const next = echo([]);
    expect(applyInterceptors(next, undefined)).toBe(next);
    expect(applyInterceptors(next, [])).toBe(next);
  });

  it("runs a single interceptor around next", async () => {
    const log: string[] = [];
    const call = applyInterceptors(echo(log), [logging("a", log)]);
    await call(unaryRequest());
    expect(log).toEqual(["a before", "send", "a after"]);
  });

  it("makes the first interceptor the outermost", async () => {
    const log: string[] = [];
    const call = applyInterceptors(echo(log), [
      logging("a", log),
      logging("b", log),
      logging("c", log),
    ]);
    await call(unaryRequest());
    expect(log).toEqual([
      "a before",
      "b before",
      "c before",
      "send",
      "c after",
      "b after",
      "a after",
    ]);
  });

  it("wraps once, not once per call", async () => {
    let wraps = 0;
    const counting: Interceptor = (next) => {
      wraps++;
      return next;
    };
    const call = applyInterceptors(echo([]), [counting, counting]);
    expect(wraps).toBe(2);
    await call(unaryRequest());
    await call(unaryRequest());
    expect(wraps).toBe(2);
  });

  it("lets an interceptor add request headers that the inner steps see", async () => {
    const seen: (string | null)[] = [];
    const call = applyInterceptors(echo([]), [
      (next) => async (request) => {
        request.header.set("authorization", "Bearer token");
        return await next(request);
      },
      (next) => async (request) => {
        seen.push(request.header.get("authorization"));
        return await next(request);
      },
    ]);
    const response = await call(unaryRequest());
    expect(seen).toEqual(["Bearer token"]);
    expect(response.header.get("authorization")).toBe("Bearer token");
  });

  it("lets an interceptor replace the request and the response", async () => {
    const call = applyInterceptors(echo([]), [
      (next) => async (request) => {
        const response = await next({
          ...request,
          message: text("replaced request"),
        } as UnaryRequest);
        return {
          ...response,
          message: text(`outer saw: ${valueOf(response.message)}`),
        } as UnaryResponse;
      },
    ]);
    const response = await call(unaryRequest("original"));
    expect(response.message).toMatchObject({
      value: "outer saw: replaced request",
    });
  });

  it("lets an interceptor answer without calling next", async () => {
    const log: string[] = [];
    const call = applyInterceptors(echo(log), [
      logging("outer", log),
      () => async (request) => ({
        stream: false,
        method: request.method,
        header: new Headers({ "x-cached": "1" }),
        trailer: new Headers(),
        message: text("from cache"),
      }),
      logging("inner", log),
    ]);
    const response = await call(unaryRequest());
    expect(log).toEqual(["outer before", "outer after"]);
    expect(response.header.get("x-cached")).toBe("1");
    expect(response.message).toMatchObject({ value: "from cache" });
  });

  it("passes next's rejection out through every interceptor", async () => {
    const log: string[] = [];
    const failure = new Error("send failed");
    const seenByInterceptor: unknown[] = [];
    const call = applyInterceptors(
      async (_: UnaryRequest): Promise<UnaryResponse> => {
        throw failure;
      },
      [
        logging("outer", log),
        (next) => async (request) => {
          try {
            return await next(request);
          } catch (e) {
            seenByInterceptor.push(e);
            throw e;
          }
        },
      ],
    );
    await expect(call(unaryRequest())).rejects.toBe(failure);
    expect(seenByInterceptor).toEqual([failure]);
    expect(log).toEqual(["outer before"]);
  });

  it("lets an interceptor turn a rejection into a response", async () => {
    const call = applyInterceptors(
      async (_: UnaryRequest): Promise<UnaryResponse> => {
        throw new Error("send failed");
      },
      [
        (next) => async (request) => {
          try {
            return await next(request);
          } catch {
            return {
              stream: false,
              method: request.method,
              header: new Headers(),
              trailer: new Headers(),
              message: text("fallback"),
            };
          }
        },
      ],
    );
    await expect(call(unaryRequest())).resolves.toMatchObject({
      message: { value: "fallback" },
    });
  });

  it("passes a streaming request and response through, messages and all", async () => {
    const seenKinds: boolean[] = [];
    const next = async (request: StreamRequest): Promise<StreamResponse> => ({
      stream: true,
      method: request.method,
      header: new Headers(),
      trailer: new Headers({ "x-count": "0" }),
      message: (async function* () {
        for await (const m of request.message) yield m;
      })(),
    });
    const call = applyInterceptors(next, [
      (inner) => async (request) => {
        seenKinds.push(request.stream);
        if (!request.stream) return await inner(request);
        const upper = (async function* () {
          for await (const m of request.message) {
            yield text(valueOf(m).toUpperCase());
          }
        })();
        return await inner({ ...request, message: upper });
      },
    ]);
    const response = await call({
      stream: true,
      service: method.service,
      method: { ...method, kind: "bidi_streaming" },
      requestMethod: "POST",
      url: "http://127.0.0.1:1/test.v1.TestService/Echo",
      header: new Headers(),
      signal: new AbortController().signal,
      contextValues: createContextValues(),
      message: (async function* () {
        yield text("a");
        yield text("b");
      })(),
    });
    expect(response.stream).toBe(true);
    const values: string[] = [];
    for await (const m of response.message) {
      values.push(valueOf(m));
    }
    expect(values).toEqual(["A", "B"]);
    expect(seenKinds).toEqual([true]);
  });
});
