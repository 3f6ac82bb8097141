import { create, toBinary } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { Code } from "./code.ts";
import { ConnectError, isConnectError } from "./errors.ts";

describe("ConnectError", () => {
  it("prefixes the message with the code's wire name", () => {
    const error = new ConnectError("no such user", Code.NotFound);
    expect(error.message).toBe("[not_found] no such user");
    expect(error.rawMessage).toBe("no such user");
    expect(new ConnectError("", Code.Internal).message).toBe("[internal]");
    expect(new ConnectError("x").code).toBe(Code.Unknown);
  });

  it("serializes details given as a schema and fields, and decodes them by type", () => {
    const error = new ConnectError("x", Code.Internal, {
      details: [{ desc: StringValueSchema, value: { value: "why" } }],
    });
    expect(error.details[0]).toEqual({
      type: "google.protobuf.StringValue",
      value: toBinary(
        StringValueSchema,
        create(StringValueSchema, { value: "why" }),
      ),
    });
    expect(error.findDetails(StringValueSchema)[0]?.value).toBe("why");
  });

  it("is recognised across copies of the class by its brand", () => {
    const error = new ConnectError("x");
    // What another generated file's class would create: a plain Error with the brand.
    const foreign = Object.defineProperty(
      new Error("x"),
      Symbol.for("connect-standalone/ConnectError"),
      { value: true },
    );
    expect(error instanceof ConnectError).toBe(true);
    expect(foreign instanceof ConnectError).toBe(true);
    expect(isConnectError(new Error("x"))).toBe(false);
  });
});

describe("ConnectError.from", () => {
  it("keeps a ConnectError as it is", () => {
    const error = new ConnectError("x", Code.Aborted);
    expect(ConnectError.from(error, Code.Internal)).toBe(error);
  });

  it("makes an abort canceled and a timeout deadline_exceeded", () => {
    const abort = new DOMException("stop", "AbortError");
    const timeout = new DOMException("late", "TimeoutError");
    expect(ConnectError.from(abort, Code.Internal)).toMatchObject({
      code: Code.Canceled,
      rawMessage: "stop",
      cause: abort,
    });
    expect(ConnectError.from(timeout)).toMatchObject({
      code: Code.DeadlineExceeded,
      rawMessage: "late",
      cause: timeout,
    });
  });

  it("gives other errors and thrown values the code asked for", () => {
    const error = new TypeError("bad");
    expect(ConnectError.from(error, Code.Unavailable)).toMatchObject({
      code: Code.Unavailable,
      rawMessage: "bad",
      cause: error,
    });
    expect(ConnectError.from("oops")).toMatchObject({
      code: Code.Unknown,
      rawMessage: "oops",
      cause: "oops",
    });
  });
});
