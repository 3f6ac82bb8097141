import { afterEach, describe, expect, it, vi } from "vitest";
import { testConfig, testMethod } from "../../test/support/server.ts";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import { serverFail, serverRedactedMessage } from "./fail.ts";
import type { HandlerContext } from "./handler.ts";

const context = { method: testMethod("Fail") } as HandlerContext;

afterEach(() => {
  vi.restoreAllMocks();
});

describe("serverFail", () => {
  it("sends a ConnectError as it is", () => {
    const error = new ConnectError("not here", Code.NotFound);
    const sent = serverFail(error, testConfig({ onError: () => {} }), context);
    expect(sent.code).toBe(Code.NotFound);
    expect(sent.rawMessage).toBe("not here");
  });

  it("withholds the message of anything else, keeping its code and metadata", () => {
    const reason = Object.assign(new Error("/etc/secret: denied"), {});
    const sent = serverFail(reason, testConfig({ onError: () => {} }), context);
    expect(sent.code).toBe(Code.Unknown);
    expect(sent.rawMessage).toBe(serverRedactedMessage);
    const timeout = new DOMException("late", "TimeoutError");
    const late = serverFail(
      timeout,
      testConfig({ onError: () => {} }),
      context,
    );
    expect(late.code).toBe(Code.DeadlineExceeded);
    expect(late.rawMessage).toBe(serverRedactedMessage);
  });

  it("keeps the message with redactErrors off", () => {
    const sent = serverFail(
      new Error("details"),
      testConfig({ redactErrors: false, onError: () => {} }),
      context,
    );
    expect(sent.code).toBe(Code.Unknown);
    expect(sent.rawMessage).toBe("details");
  });

  it("reports what was thrown and the context to onError, once", () => {
    const seen: unknown[][] = [];
    const reason = new Error("boom");
    serverFail(
      reason,
      testConfig({ onError: (...args) => void seen.push(args) }),
      context,
    );
    expect(seen).toEqual([[reason, context]]);
  });

  it("is not broken by an onError that throws or rejects", () => {
    const throwing = testConfig({
      onError: () => {
        throw new Error("logger down");
      },
    });
    expect(serverFail(new Error("x"), throwing, context).code).toBe(
      Code.Unknown,
    );
    const rejecting = testConfig({
      // A logger may well be async, whatever its declared type says.
      onError: (() => Promise.reject(new Error("later"))) as () => void,
    });
    expect(serverFail(new Error("x"), rejecting, context).code).toBe(
      Code.Unknown,
    );
  });

  it("logs a withheld error with console.error when there is no onError", () => {
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    const reason = new Error("hidden");
    serverFail(reason, testConfig(), context);
    expect(log).toHaveBeenCalledWith(
      `/test.v1.TestService/Fail: ${serverRedactedMessage}:`,
      reason,
    );
    log.mockClear();
    serverFail(new ConnectError("shown", Code.Aborted), testConfig(), context);
    expect(log).not.toHaveBeenCalled();
  });
});
