import { create, toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import {
  connectEndStreamFromJson,
  connectEndStreamToJson,
  connectHeaderAcceptEncoding,
  connectHeaderContentEncoding,
  connectParseStreamContentType,
  connectStreamContentTypeJson,
  connectStreamContentTypeProto,
} from "./connect-stream.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();

function parse(data: Uint8Array): unknown {
  return JSON.parse(text.decode(data));
}

function endStreamError(json: string): ConnectError {
  try {
    connectEndStreamFromJson(utf8.encode(json));
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return error as ConnectError;
  }
  throw new Error(`expected ${json} to be rejected`);
}

describe("constants", () => {
  it("are the Connect streaming content types and compression headers", () => {
    expect(connectStreamContentTypeProto).toBe("application/connect+proto");
    expect(connectStreamContentTypeJson).toBe("application/connect+json");
    expect(connectHeaderContentEncoding).toBe("connect-content-encoding");
    expect(connectHeaderAcceptEncoding).toBe("connect-accept-encoding");
  });
});

describe("connectParseStreamContentType", () => {
  it.each([
    ["application/connect+proto", true],
    ["application/connect+json", false],
    ["APPLICATION/CONNECT+PROTO", true],
    ["Application/Connect+Json", false],
    ["application/connect+json; charset=utf-8", false],
    ["application/connect+json;charset=utf-8", false],
    ["application/connect+proto ;foo=bar", true],
    ["application/connect+json;", false],
  ])("%s", (value, binary) => {
    expect(connectParseStreamContentType(value)).toEqual({ binary });
  });

  it.each([
    null,
    "",
    "application/proto",
    "application/json",
    "application/grpc",
    "application/grpc+proto",
    "application/connect",
    "application/connect+",
    "application/connect+thrift",
    "application/connect+protobuf",
    "application/connect+json5",
    " application/connect+proto",
    "application/connect+proto ",
    "text/connect+proto",
    "xapplication/connect+proto",
  ])("%j is not a Connect streaming content type", (value) => {
    expect(connectParseStreamContentType(value)).toBeUndefined();
  });
});

describe("connectEndStreamToJson", () => {
  it("is {} for a success without trailers", () => {
    expect(text.decode(connectEndStreamToJson(undefined, new Headers()))).toBe(
      "{}",
    );
  });

  it("sends trailers as metadata, one array per name", () => {
    const trailer = new Headers({ "x-one": "1", "X-Two": "2" });
    expect(parse(connectEndStreamToJson(undefined, trailer))).toEqual({
      metadata: { "x-one": ["1"], "x-two": ["2"] },
    });
  });

  it("sends each Set-Cookie value on its own, other repeated values joined as Headers joins them", () => {
    const trailer = new Headers();
    trailer.append("set-cookie", "a=1");
    trailer.append("set-cookie", "b=2");
    trailer.append("x-list", "a");
    trailer.append("x-list", "b");
    expect(parse(connectEndStreamToJson(undefined, trailer))).toEqual({
      metadata: { "set-cookie": ["a=1", "b=2"], "x-list": ["a, b"] },
    });
  });

  it("sends the error's code and message", () => {
    const error = new ConnectError("no such thing", Code.NotFound);
    expect(parse(connectEndStreamToJson(error, new Headers()))).toEqual({
      error: { code: "not_found", message: "no such thing" },
    });
  });

  it("leaves out an empty message", () => {
    const error = new ConnectError("", Code.Aborted);
    expect(parse(connectEndStreamToJson(error, new Headers()))).toEqual({
      error: { code: "aborted" },
    });
  });

  it("sends details in unpadded base64", () => {
    const detail = create(StringValueSchema, { value: "a" });
    const error = new ConnectError("bad", Code.InvalidArgument, {
      details: [{ desc: StringValueSchema, value: { value: "a" } }],
    });
    expect(parse(connectEndStreamToJson(error, new Headers()))).toEqual({
      error: {
        code: "invalid_argument",
        message: "bad",
        details: [
          {
            type: "google.protobuf.StringValue",
            value: base64Encode(toBinary(StringValueSchema, detail), "std_raw"),
          },
        ],
      },
    });
    // Two bytes: "AQI=" in padded base64.
    const short = new ConnectError("bad", Code.InvalidArgument, {
      details: [{ type: "x.Y", value: new Uint8Array([1, 2]) }],
    });
    expect(parse(connectEndStreamToJson(short, new Headers()))).toMatchObject({
      error: { details: [{ type: "x.Y", value: "AQI" }] },
    });
  });

  it("adds the error's metadata after the trailers", () => {
    const error = new ConnectError("failed", Code.Internal, {
      metadata: { "x-error": "e", "x-both": "from error" },
    });
    const trailer = new Headers({ "x-both": "from trailer", "x-t": "t" });
    expect(parse(connectEndStreamToJson(error, trailer))).toEqual({
      error: { code: "internal", message: "failed" },
      metadata: {
        "x-both": ["from trailer", "from error"],
        "x-t": ["t"],
        "x-error": ["e"],
      },
    });
  });
});

describe("connectEndStreamFromJson", () => {
  it("reads {} as success without trailers", () => {
    const end = connectEndStreamFromJson(utf8.encode("{}"));
    expect(end.error).toBeUndefined();
    expect([...end.trailer]).toEqual([]);
  });

  it.each(['{"error": null, "metadata": null}', '{"unknown": 1}'])(
    "reads %s as success",
    (json) => {
      const end = connectEndStreamFromJson(utf8.encode(json));
      expect(end.error).toBeUndefined();
      expect([...end.trailer]).toEqual([]);
    },
  );

  it("reads metadata as trailers, every value of a name", () => {
    const end = connectEndStreamFromJson(
      utf8.encode(
        '{"metadata": {"X-One": ["1"], "x-many": ["a", "b"], "x-none": []}}',
      ),
    );
    expect(end.error).toBeUndefined();
    expect(end.trailer.get("x-one")).toBe("1");
    expect(end.trailer.get("x-many")).toBe("a, b");
    expect(end.trailer.has("x-none")).toBe(false);
  });

  it("reads an error with its code, message and details, the trailers as its metadata", () => {
    const detail = toBinary(
      StringValueSchema,
      create(StringValueSchema, { value: "why" }),
    );
    const end = connectEndStreamFromJson(
      utf8.encode(
        JSON.stringify({
          error: {
            code: "permission_denied",
            message: "not yours",
            details: [
              {
                type: "google.protobuf.StringValue",
                value: base64Encode(detail, "std_raw"),
              },
            ],
          },
          metadata: { "x-t": ["t"] },
        }),
      ),
    );
    expect(end.error).toBeInstanceOf(ConnectError);
    expect(end.error!.code).toBe(Code.PermissionDenied);
    expect(end.error!.rawMessage).toBe("not yours");
    expect(end.error!.findDetails(StringValueSchema)).toMatchObject([
      { value: "why" },
    ]);
    expect(end.error!.metadata.get("x-t")).toBe("t");
    expect(end.trailer.get("x-t")).toBe("t");
  });

  it("reads an error without a message as an empty message", () => {
    const end = connectEndStreamFromJson(
      utf8.encode('{"error": {"code": "not_found"}}'),
    );
    expect(end.error!.code).toBe(Code.NotFound);
    expect(end.error!.rawMessage).toBe("");
  });

  it("reads an error without a code as Unknown, keeping its message", () => {
    const end = connectEndStreamFromJson(
      utf8.encode('{"error": {"code": "no_such_code", "message": "hm"}}'),
    );
    expect(end.error!.code).toBe(Code.Unknown);
    expect(end.error!.rawMessage).toBe("hm");
  });

  it("reads an empty error object as Unknown with a message that says so", () => {
    const end = connectEndStreamFromJson(utf8.encode('{"error": {}}'));
    expect(end.error!.code).toBe(Code.Unknown);
    expect(end.error!.rawMessage).toBe("end-of-stream error without a message");
  });

  it("round-trips what connectEndStreamToJson writes", () => {
    const error = new ConnectError("over quota", Code.ResourceExhausted, {
      metadata: { "x-e": "e" },
      details: [{ type: "x.Y", value: new Uint8Array([0, 255]) }],
    });
    const end = connectEndStreamFromJson(
      connectEndStreamToJson(error, new Headers({ "x-t": "t" })),
    );
    expect(end.error!.code).toBe(Code.ResourceExhausted);
    expect(end.error!.rawMessage).toBe("over quota");
    expect(end.error!.details).toEqual([
      { type: "x.Y", value: new Uint8Array([0, 255]) },
    ]);
    expect(Object.fromEntries(end.trailer)).toEqual({ "x-e": "e", "x-t": "t" });
  });

  it.each([
    ["empty input", ""],
    ["truncated JSON", '{"error": '],
    ["plain text", "bye"],
  ])("rejects %s as Internal, with the parse error as cause", (_, json) => {
    const error = endStreamError(json);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("invalid end-of-stream message");
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it.each(["null", "[]", "[{}]", "1", '"{}"', "true"])(
    "rejects the JSON value %s as Internal",
    (json) => {
      const error = endStreamError(json);
      expect(error.code).toBe(Code.Internal);
      expect(error.rawMessage).toBe("invalid end-of-stream message");
    },
  );

  it.each(['{"metadata": []}', '{"metadata": "x"}', '{"metadata": 1}'])(
    "rejects metadata that is not an object: %s",
    (json) => {
      const error = endStreamError(json);
      expect(error.code).toBe(Code.Internal);
      expect(error.rawMessage).toBe("invalid end-of-stream metadata");
    },
  );

  it.each([
    '{"metadata": {"x-bad": "v"}}',
    '{"metadata": {"x-bad": null}}',
    '{"metadata": {"x-bad": [1]}}',
    '{"metadata": {"x-bad": ["ok", null]}}',
    '{"metadata": {"x-bad": [["v"]]}}',
  ])("rejects metadata values that are not arrays of strings: %s", (json) => {
    const error = endStreamError(json);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe('invalid end-of-stream metadata "x-bad"');
  });

  it.each([
    '{"error": "failed"}',
    '{"error": 13}',
    '{"error": []}',
    '{"error": true}',
  ])("rejects an error that is not an object: %s", (json) => {
    const error = endStreamError(json);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("invalid end-of-stream error");
  });

  it("checks the metadata before the error", () => {
    const error = endStreamError(
      '{"error": {"code": "not_found"}, "metadata": {"x": [1]}}',
    );
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe('invalid end-of-stream metadata "x"');
  });
});

describe("connectEndStreamFromJson with metadata Headers refuses", () => {
  it.each([
    '{"metadata": {"bad name": ["v"]}}',
    '{"metadata": {"x": ["a\\u0000b"]}}',
    '{"metadata": {"x": ["a\\nb"]}}',
  ])("is an internal error, not a TypeError: %s", (json) => {
    let thrown: unknown;
    try {
      connectEndStreamFromJson(new TextEncoder().encode(json));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConnectError);
    expect((thrown as ConnectError).code).toBe(Code.Internal);
    expect((thrown as ConnectError).message).toContain(
      "invalid end-of-stream metadata",
    );
  });
});
