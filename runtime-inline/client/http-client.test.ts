import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import { httpClientError } from "./http-client.ts";

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
