import { create, toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { DurationSchema, StringValueSchema } from "@bufbuild/protobuf/wkt";
import {
  ConnectError as UpstreamConnectError,
  Code as UpstreamCode,
} from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Code, codeFromHttpStatus, codeToString } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import {
  connectCodeToHttpStatus,
  connectErrorFromJson,
  connectErrorToJson,
  connectGetQuery,
  connectParseGetQuery,
  connectParseTimeout,
  connectParseUnaryContentType,
  connectSplitTrailers,
  connectTrailersToHeaders,
} from "./connect.ts";

const utf8 = new TextEncoder();

describe("connectParseUnaryContentType", () => {
  it.each([
    ["application/proto", true],
    ["application/json", false],
    ["application/json; charset=utf-8", false],
    ["application/json;charset=UTF-8", false],
    ["Application/JSON", false],
    ["APPLICATION/PROTO", true],
  ])("%s", (value, binary) => {
    expect(connectParseUnaryContentType(value)).toEqual({ binary });
  });

  it.each([
    null,
    "",
    "application/connect+proto",
    "application/connect+json",
    "application/grpc",
    "application/grpc-web+proto",
    "application/protobuf",
    "application/jsonx",
    "text/json",
    "application/xml",
  ])("rejects %s", (value) => {
    expect(connectParseUnaryContentType(value)).toBeUndefined();
  });
});

const statusByCode: [Code, number][] = [
  [Code.Canceled, 499],
  [Code.Unknown, 500],
  [Code.InvalidArgument, 400],
  [Code.DeadlineExceeded, 504],
  [Code.NotFound, 404],
  [Code.AlreadyExists, 409],
  [Code.PermissionDenied, 403],
  [Code.ResourceExhausted, 429],
  [Code.FailedPrecondition, 400],
  [Code.Aborted, 409],
  [Code.OutOfRange, 400],
  [Code.Unimplemented, 501],
  [Code.Internal, 500],
  [Code.Unavailable, 503],
  [Code.DataLoss, 500],
  [Code.Unauthenticated, 401],
];

describe("connectCodeToHttpStatus", () => {
  it("covers every code", () => {
    expect(statusByCode.map(([code]) => code).sort((a, b) => a - b)).toEqual(
      Object.values(Code).sort((a, b) => a - b),
    );
  });
  it.each(statusByCode)("code %i is HTTP %i", (code, status) => {
    expect(connectCodeToHttpStatus(code)).toBe(status);
  });
});

describe("codeFromHttpStatus", () => {
  it.each([
    [400, Code.Internal],
    [401, Code.Unauthenticated],
    [403, Code.PermissionDenied],
    [404, Code.Unimplemented],
    [429, Code.Unavailable],
    [502, Code.Unavailable],
    [503, Code.Unavailable],
    [504, Code.Unavailable],
    [200, Code.Unknown],
    [302, Code.Unknown],
    [409, Code.Unknown],
    [415, Code.Unknown],
    [499, Code.Unknown],
    [500, Code.Unknown],
    [501, Code.Unknown],
  ])("HTTP %i is code %i", (status, code) => {
    expect(codeFromHttpStatus(status)).toBe(code);
  });
});

describe("connectErrorToJson", () => {
  it("writes only the code for an error without message or details", () => {
    expect(connectErrorToJson(new ConnectError("", Code.Unavailable))).toBe(
      '{"code":"unavailable"}',
    );
  });

  it("writes the raw message, without the [code] prefix", () => {
    expect(
      JSON.parse(
        connectErrorToJson(new ConnectError("bad name", Code.InvalidArgument)),
      ),
    ).toEqual({ code: "invalid_argument", message: "bad name" });
  });

  it("writes details as unpadded standard base64, with debug", () => {
    const value = new Uint8Array([0xfb, 0xff]); // "+/8=" padded
    const error = new ConnectError("m", Code.Internal, {
      details: [
        { type: "x.Y", value },
        { type: "x.Z", value: new Uint8Array(0), debug: { a: 1 } },
      ],
    });
    expect(JSON.parse(connectErrorToJson(error))).toEqual({
      code: "internal",
      message: "m",
      details: [
        { type: "x.Y", value: "+/8" },
        { type: "x.Z", value: "", debug: { a: 1 } },
      ],
    });
  });

  it("packs {desc, value} details", () => {
    const error = new ConnectError("m", Code.Internal);
    // As an error of @connectrpc/connect holds its outgoing details.
    (error.details as unknown[]).push({
      desc: DurationSchema,
      value: { seconds: 30n },
    });
    const bytes = toBinary(
      DurationSchema,
      create(DurationSchema, { seconds: 30n }),
    );
    expect(JSON.parse(connectErrorToJson(error)).details).toEqual([
      {
        type: "google.protobuf.Duration",
        value: base64Encode(bytes, "std_raw"),
      },
    ]);
  });

  it("accepts an error of @connectrpc/connect", () => {
    const upstream = new UpstreamConnectError(
      "denied",
      UpstreamCode.PermissionDenied,
      undefined,
      [{ desc: StringValueSchema, value: { value: "why" } }],
    );
    const parsed = connectErrorFromJson(
      utf8.encode(connectErrorToJson(upstream as unknown as ConnectError)),
      403,
      new Headers(),
    );
    expect(parsed.code).toBe(Code.PermissionDenied);
    expect(parsed.rawMessage).toBe("denied");
    expect(parsed.findDetails(StringValueSchema).map((m) => m.value)).toEqual([
      "why",
    ]);
  });
});

describe("connectErrorFromJson", () => {
  it("round-trips an error with details", () => {
    const error = new ConnectError("overloaded", Code.ResourceExhausted, {
      details: [
        { desc: DurationSchema, value: { seconds: 30n, nanos: 5 } },
        {
          type: "x.Y",
          value: new Uint8Array([0, 1, 2, 250, 251, 252]),
          debug: { k: ["v"] },
        },
      ],
    });
    const metadata = new Headers({ "x-a": "1" });
    const parsed = connectErrorFromJson(
      utf8.encode(connectErrorToJson(error)),
      429,
      metadata,
    );
    expect(parsed).toBeInstanceOf(ConnectError);
    expect(parsed.code).toBe(Code.ResourceExhausted);
    expect(parsed.rawMessage).toBe("overloaded");
    expect(parsed.message).toBe("[resource_exhausted] overloaded");
    expect(parsed.details).toEqual(error.details);
    expect(parsed.findDetails(DurationSchema)[0]?.seconds).toBe(30n);
    expect(parsed.metadata.get("x-a")).toBe("1");
  });

  it("takes the code from the HTTP status but keeps the message and details when the code is missing or unknown", () => {
    for (const code of [undefined, null, "teapot", 7]) {
      const parsed = connectErrorFromJson(
        utf8.encode(
          JSON.stringify({
            code,
            message: "oops",
            details: [{ type: "c", value: "AA" }],
          }),
        ),
        401,
        new Headers(),
      );
      expect(parsed.code).toBe(Code.Unauthenticated);
      expect(parsed.rawMessage).toBe("oops");
      expect(parsed.details).toHaveLength(1);
    }
    const notJson = connectErrorFromJson(
      utf8.encode("<html>"),
      503,
      new Headers(),
    );
    expect([notJson.code, notJson.rawMessage]).toEqual([
      Code.Unavailable,
      "HTTP 503",
    ]);
  });

  it("round-trips every code", () => {
    for (const code of Object.values(Code)) {
      const parsed = connectErrorFromJson(
        utf8.encode(connectErrorToJson(new ConnectError("", code))),
        connectCodeToHttpStatus(code),
        new Headers(),
      );
      expect(parsed.code).toBe(code);
      expect(parsed.rawMessage).toBe("");
    }
  });

  it.each(["CgIIPA", "CgIIPA==", "-_8", "+/8=", "+/8"])(
    "decodes detail value %s",
    (value) => {
      const body = JSON.stringify({
        code: "unavailable",
        details: [{ type: "t", value }],
      });
      const parsed = connectErrorFromJson(
        utf8.encode(body),
        503,
        new Headers(),
      );
      expect(parsed.details).toHaveLength(1);
      expect(parsed.details[0]?.debug).toBeUndefined();
      expect("debug" in parsed.details[0]!).toBe(false);
    },
  );

  it("reads the spec's example", () => {
    const body =
      '{"code":"unavailable","message":"overloaded: back off and retry","details":[{"type":"google.rpc.RetryInfo","value":"CgIIPA","debug":{"retryDelay":"30s"}}]}';
    const parsed = connectErrorFromJson(utf8.encode(body), 503, new Headers());
    expect(parsed.code).toBe(Code.Unavailable);
    expect(parsed.details).toEqual([
      {
        type: "google.rpc.RetryInfo",
        value: new Uint8Array([0x0a, 0x02, 0x08, 0x3c]),
        debug: { retryDelay: "30s" },
      },
    ]);
  });

  it("drops malformed details but keeps the error", () => {
    const body = JSON.stringify({
      code: "aborted",
      message: 7,
      details: [
        null,
        1,
        { type: "a" },
        { type: 1, value: "" },
        { type: "b", value: "!!" },
        { type: "c", value: "AA" },
      ],
    });
    const parsed = connectErrorFromJson(utf8.encode(body), 409, new Headers());
    expect(parsed.code).toBe(Code.Aborted);
    expect(parsed.rawMessage).toBe("");
    expect(parsed.details).toEqual([{ type: "c", value: new Uint8Array([0]) }]);
  });

  it.each([
    ["<html><body>Bad Gateway</body></html>", 502, Code.Unavailable],
    ["{}", 400, Code.Internal],
    ['{"code":"nope"}', 404, Code.Unimplemented],
    ['{"code":"ok"}', 500, Code.Unknown],
    ['{"code":null}', 401, Code.Unauthenticated],
    ['{"code":3}', 403, Code.PermissionDenied],
    ['{"code":"unavailable","mess', 503, Code.Unavailable],
    ["", 429, Code.Unavailable],
    ["null", 418, Code.Unknown],
    ['["unavailable"]', 500, Code.Unknown],
    ['"unavailable"', 504, Code.Unavailable],
  ])("falls back to the HTTP status for %j", (body, status, code) => {
    const metadata = new Headers({ "x-b": "2" });
    const parsed = connectErrorFromJson(utf8.encode(body), status, metadata);
    expect(parsed.code).toBe(code);
    expect(parsed.message).toBe(`[${codeToString(code)}] HTTP ${status}`);
    expect(parsed.metadata.get("x-b")).toBe("2");
  });

  it("does not throw on invalid UTF-8", () => {
    const parsed = connectErrorFromJson(
      new Uint8Array([0xff, 0xfe, 0x7b]),
      500,
      new Headers(),
    );
    expect(parsed.code).toBe(Code.Unknown);
  });
});

describe("connectParseTimeout", () => {
  it("is undefined without the header", () => {
    expect(connectParseTimeout(null)).toBeUndefined();
  });

  it.each([
    ["0", 0],
    ["1", 1],
    ["5000", 5000],
    ["0000000007", 7],
    ["9999999999", 9999999999],
  ])("reads %s", (value, ms) => {
    expect(connectParseTimeout(value)).toBe(ms);
  });

  it.each([
    "10000000000",
    "-1",
    "1.5",
    " 5",
    "5 ",
    "",
    "1e3",
    "0x10",
    "+5",
    "٣",
    "five",
  ])("rejects %j", (value) => {
    const result = connectParseTimeout(value);
    expect(result).toBeInstanceOf(ConnectError);
    const error = result as ConnectError;
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain(`"${value}"`);
  });
});

describe("trailers", () => {
  it("prefixes trailers into headers", () => {
    const into = new Headers({ "content-type": "application/json" });
    connectTrailersToHeaders(
      new Headers([
        ["X-Cost", "237"],
        ["x-bin-bin", "AAE"],
      ]),
      into,
    );
    expect([...into]).toEqual([
      ["content-type", "application/json"],
      ["trailer-x-bin-bin", "AAE"],
      ["trailer-x-cost", "237"],
    ]);
  });

  it("splits trailers from headers, case-insensitively", () => {
    const [header, trailer] = connectSplitTrailers(
      new Headers([
        ["Content-Type", "application/proto"],
        ["Trailer-Acme-Operation-Cost", "237"],
        ["TRAILER-x-a", "1"],
        ["trailer-x-a", "2"],
        ["x-trailer-not", "3"],
      ]),
    );
    expect([...header]).toEqual([
      ["content-type", "application/proto"],
      ["x-trailer-not", "3"],
    ]);
    expect([...trailer]).toEqual([
      ["acme-operation-cost", "237"],
      ["x-a", "1, 2"],
    ]);
  });

  it("round-trips", () => {
    const header = new Headers({ "x-h": "h" });
    const trailer = new Headers({ "x-t": "t", "grpc-status": "0" });
    const wire = new Headers(header);
    connectTrailersToHeaders(trailer, wire);
    const [h, t] = connectSplitTrailers(wire);
    expect([...h]).toEqual([...header]);
    expect([...t]).toEqual([...trailer]);
  });
});

function parseGet(query: string) {
  expect(query.startsWith("?")).toBe(true);
  return connectParseGetQuery(new URLSearchParams(query));
}

describe("connectGetQuery", () => {
  const binaryMessage = new Uint8Array([0x0a, 0x03, 0xfb, 0xff, 0xfe]);

  it("base64url-encodes a binary message, unpadded", () => {
    expect(connectGetQuery(binaryMessage, true, undefined)).toBe(
      "?connect=v1&base64=1&encoding=proto&message=CgP7__4",
    );
  });

  it("percent-encodes a JSON message", () => {
    const json = '{"name":"Buf & Co?","emoji":"🙂","plus":"a+b"}';
    const query = connectGetQuery(utf8.encode(json), false, undefined);
    expect(query).toBe(
      `?connect=v1&encoding=json&message=${encodeURIComponent(json)}`,
    );
    expect(query).not.toContain("base64");
  });

  it("base64-encodes a compressed message and names the compression", () => {
    expect(connectGetQuery(new Uint8Array([1, 2, 3]), false, "gzip")).toBe(
      "?connect=v1&base64=1&compression=gzip&encoding=json&message=AQID",
    );
    expect(connectGetQuery(new Uint8Array([1, 2, 3]), true, "br")).toBe(
      "?connect=v1&base64=1&compression=br&encoding=proto&message=AQID",
    );
  });

  it.each([
    [new Uint8Array(0), true, undefined],
    [new Uint8Array(0), false, undefined],
    [binaryMessage, true, undefined],
    [new Uint8Array(256).map((_, i) => i), true, undefined],
    [utf8.encode('{"a":"x+y z=1&b=%20 ü"}'), false, undefined],
    [utf8.encode('{"a":1}'), false, "gzip"],
    [binaryMessage, true, "zstd"],
  ] as const)("round-trips %#", (message, binary, compression) => {
    expect(parseGet(connectGetQuery(message, binary, compression))).toEqual({
      message,
      binary,
      compression,
    });
  });

  it("round-trips through a URL", () => {
    const url = new URL(
      "https://example.com/a.B/C" +
        connectGetQuery(binaryMessage, true, undefined),
    );
    expect(connectParseGetQuery(url.searchParams)).toEqual({
      message: binaryMessage,
      binary: true,
      compression: undefined,
    });
  });
});

describe("connectParseGetQuery", () => {
  it("reads the spec's example", () => {
    expect(
      parseGet(
        "?message=%7B%22name%22%3A%22Buf%22%7D&encoding=json&connect=v1",
      ),
    ).toEqual({
      message: utf8.encode('{"name":"Buf"}'),
      binary: false,
      compression: undefined,
    });
  });

  it("does not require connect=v1", () => {
    expect(parseGet("?encoding=proto&base64=1&message=AQID")).toEqual({
      message: new Uint8Array([1, 2, 3]),
      binary: true,
      compression: undefined,
    });
  });

  it("allows unknown parameters", () => {
    expect(
      parseGet("?encoding=proto&base64=1&message=AQID&cachebust=5"),
    ).not.toBeInstanceOf(ConnectError);
  });

  it("reads a missing message as empty", () => {
    expect(parseGet("?encoding=proto")).toEqual({
      message: new Uint8Array(0),
      binary: true,
      compression: undefined,
    });
    expect(parseGet("?encoding=json&base64=1")).toEqual({
      message: new Uint8Array(0),
      binary: false,
      compression: undefined,
    });
  });

  it.each([
    ["AQID", [1, 2, 3]],
    ["-_8", [0xfb, 0xff]],
    ["-_8%3D", [0xfb, 0xff]],
    ["%2B%2F8%3D", [0xfb, 0xff]],
    ["AQ", [1]],
    ["AQ%3D%3D", [1]],
    ["AQI", [1, 2]],
    ["AQI%3D", [1, 2]],
    ["", []],
  ])("decodes base64 %s", (encoded, bytes) => {
    expect(parseGet(`?encoding=proto&base64=1&message=${encoded}`)).toEqual({
      message: new Uint8Array(bytes),
      binary: true,
      compression: undefined,
    });
  });

  it.each([
    "AQ+D", // a raw "+" arrives as a space
    "AQ ID",
    "A",
    "AQIDB",
    "AQ%3D",
    "AQI%3D%3D",
    "AQ%3D%3DAQ",
    "%3DAQI",
    "AQ.D",
    "AQ%0AID",
    "%F0%9F%99%82",
  ])("rejects bad base64 %s", (encoded) => {
    const result = parseGet(`?encoding=proto&base64=1&message=${encoded}`);
    expect(result).toBeInstanceOf(ConnectError);
    expect((result as ConnectError).code).toBe(Code.InvalidArgument);
    expect((result as ConnectError).rawMessage).toContain("base64");
  });

  it("ignores base64 values other than 1", () => {
    expect(parseGet("?encoding=json&base64=0&message=AQID")).toEqual({
      message: utf8.encode("AQID"),
      binary: false,
      compression: undefined,
    });
  });

  it.each([
    ["?message=AQID&base64=1", "missing"],
    ["?encoding=xml&message=AQID", '"xml"'],
    ["?encoding=&message=AQID", '""'],
    ["?encoding=PROTO&message=AQID", '"PROTO"'],
    ["?encoding=proto&message=AQID&connect=v2", '"v2"'],
    ["?encoding=proto&message=AQID&connect=", '""'],
  ])("rejects %s", (query, mentions) => {
    const result = parseGet(query);
    expect(result).toBeInstanceOf(ConnectError);
    expect((result as ConnectError).code).toBe(Code.InvalidArgument);
    expect((result as ConnectError).rawMessage).toContain(mentions);
  });

  it("returns the compression as given", () => {
    expect(
      parseGet("?encoding=proto&base64=1&compression=gzip&message=AQID"),
    ).toEqual({
      message: new Uint8Array([1, 2, 3]),
      binary: true,
      compression: "gzip",
    });
  });
});
