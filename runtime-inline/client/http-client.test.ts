import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import {
  httpClientError,
  httpFieldsHeaders,
  httpFieldsOf,
  httpHeaderGet,
  httpResponseFields,
  type HttpResponse,
} from "./http-client.ts";

describe("httpClientError", () => {
  it("says what failed from the causes, and keeps the original error as cause", () => {
    const socket = Object.assign(
      new Error("connect ECONNREFUSED 127.0.0.1:8080"),
      { code: "ECONNREFUSED" },
    );
    const fetchError = new TypeError("fetch failed", { cause: socket });
    const error = httpClientError(fetchError);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe(
      "fetch failed: connect ECONNREFUSED 127.0.0.1:8080",
    );
    expect(error.cause).toBe(fetchError);
  });

  it("names every address tried when the cause is an AggregateError without a message", () => {
    const error = httpClientError(
      new TypeError("fetch failed", {
        cause: new AggregateError([
          new Error("connect ECONNREFUSED ::1:8080"),
          new Error("connect ECONNREFUSED 127.0.0.1:8080"),
        ]),
      }),
    );
    expect(error.rawMessage).toBe(
      "fetch failed: connect ECONNREFUSED ::1:8080, connect ECONNREFUSED 127.0.0.1:8080",
    );
  });

  it("does not repeat a cause the message already holds", () => {
    const cause = new Error("connect ECONNREFUSED 127.0.0.1:1");
    const error = httpClientError(
      new Error(`stream canceled (caused by: ${cause.message})`, { cause }),
    );
    expect(error.rawMessage).toBe(
      "stream canceled (caused by: connect ECONNREFUSED 127.0.0.1:1)",
    );
  });

  it("keeps ConnectErrors, aborts and timeouts as they are", () => {
    const connectError = new ConnectError("nope", Code.NotFound);
    expect(httpClientError(connectError)).toBe(connectError);
    expect(
      httpClientError(new DOMException("aborted", "AbortError")).code,
    ).toBe(Code.Canceled);
    expect(
      httpClientError(new DOMException("timed out", "TimeoutError")).code,
    ).toBe(Code.DeadlineExceeded);
  });
});

describe("httpHeaderGet", () => {
  const response = (header: Headers, fields?: object): HttpResponse =>
    Object.assign(
      {
        status: 200,
        header,
        body: (async function* () {})(),
        trailer: new Headers(),
        contentDecoded: false,
      },
      fields === undefined ? {} : { [httpResponseFields]: fields },
    );

  it("reads the transport's fields where the response has them, as Headers.get would give the value", () => {
    const fields = {
      "content-type": "application/proto",
      "set-cookie": ["a", "b"],
    };
    // A header that would throw if read: the fields answer without it.
    const header = new Proxy(new Headers(), {
      get() {
        throw new Error("the Headers was read");
      },
    });
    const r = response(header, fields);
    expect(httpHeaderGet(r, "content-type")).toBe("application/proto");
    expect(httpHeaderGet(r, "set-cookie")).toBe("a, b");
    expect(httpHeaderGet(r, "content-encoding")).toBeNull();
  });

  it("reads the Headers of a response without fields", () => {
    const r = response(new Headers({ "Content-Type": "application/json" }));
    expect(httpHeaderGet(r, "content-type")).toBe("application/json");
    expect(httpHeaderGet(r, "content-encoding")).toBeNull();
  });
});

describe("httpFieldsOf and httpFieldsHeaders", () => {
  it("turn a Headers into a record and back, several values of a name joined", () => {
    const header = new Headers([
      ["X-A", "1"],
      ["x-a", "2"],
      ["x-b", "3"],
    ]);
    const fields = httpFieldsOf(header);
    expect(fields).toEqual({ "x-a": "1, 2", "x-b": "3" });
    expect([...httpFieldsHeaders(fields)]).toEqual([...header]);
  });
});
