import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
} from "@bufbuild/protobuf";
import {
  BinaryWriter,
  base64Decode,
  base64Encode,
} from "@bufbuild/protobuf/wire";
import {
  DurationSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  StringValueSchema,
  file_google_protobuf_any,
  type Any,
} from "@bufbuild/protobuf/wkt";
import { ConnectError as UpstreamConnectError } from "@connectrpc/connect";
import {
  findTrailerError,
  parseTimeout as upstreamParseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import {
  grpcDecodeMessage,
  grpcEncodeMessage,
  grpcFormatTimeout,
  grpcParseContentType,
  grpcParseTimeout,
  grpcStatusFromTrailers,
  grpcStatusToTrailers,
} from "./grpc.ts";

// google.rpc.Status, described independently of the code under test.
const StatusSchema = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "google/rpc/status.proto",
    package: "google.rpc",
    dependency: ["google/protobuf/any.proto"],
    syntax: "proto3",
    messageType: [
      {
        name: "Status",
        field: [
          {
            name: "code",
            jsonName: "code",
            number: 1,
            type: FieldDescriptorProto_Type.INT32,
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
          {
            name: "message",
            jsonName: "message",
            number: 2,
            type: FieldDescriptorProto_Type.STRING,
            label: FieldDescriptorProto_Label.OPTIONAL,
          },
          {
            name: "details",
            jsonName: "details",
            number: 3,
            type: FieldDescriptorProto_Type.MESSAGE,
            label: FieldDescriptorProto_Label.REPEATED,
            typeName: ".google.protobuf.Any",
          },
        ],
      },
    ],
  }),
  (name) =>
    name === "google/protobuf/any.proto" ? file_google_protobuf_any : undefined,
).getMessage("google.rpc.Status") as DescMessage;

interface StatusShape {
  code: number;
  message: string;
  details: Any[];
}

type StatusInit = {
  code?: number;
  message?: string;
  details?: { typeUrl: string; value: Uint8Array }[];
};

function encodeStatus(status: StatusInit): string {
  return base64Encode(toBinary(StatusSchema, create(StatusSchema, status)));
}

describe("grpcParseContentType", () => {
  it.each([
    ["application/grpc", true],
    ["application/grpc+proto", true],
    ["application/grpc+json", false],
    ["APPLICATION/GRPC+JSON", false],
    ["Application/Grpc+Proto", true],
    ["application/grpc+json; charset=utf-8", false],
    ["application/grpc;charset=utf-8", true],
  ])("%s", (value, binary) => {
    expect(grpcParseContentType(value)).toEqual({ binary });
  });

  it.each([
    null,
    "",
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc+thrift",
    "application/grpcx",
    "application/proto",
    "application/connect+proto",
    " application/grpc",
  ])("rejects %s", (value) => {
    expect(grpcParseContentType(value)).toBeUndefined();
  });
});

describe("grpcParseTimeout", () => {
  it.each([
    ["1H", 3_600_000],
    ["2M", 120_000],
    ["3S", 3_000],
    ["250m", 250],
    ["1500u", 2],
    ["1000u", 1],
    ["1u", 1],
    ["1n", 1],
    ["1000000n", 1],
    ["1000001n", 2],
    ["0m", 0],
    ["0n", 0],
    ["00000001S", 1_000],
    ["99999999m", 99_999_999],
    ["99999999H", 99_999_999 * 3_600_000],
  ])("%s is %i ms", (value, ms) => {
    expect(grpcParseTimeout(value)).toBe(ms);
  });

  it("is undefined when absent", () => {
    expect(grpcParseTimeout(null)).toBeUndefined();
  });

  it.each([
    "",
    "123456789S",
    "-1S",
    "1.5S",
    "10x",
    "10",
    "S",
    "1h",
    "1s",
    " 1S",
    "1S ",
    "1 S",
    "+1S",
    "1e3m",
    "١S",
  ])("rejects %j", (value) => {
    const result = grpcParseTimeout(value);
    expect(result).toBeInstanceOf(ConnectError);
    expect((result as ConnectError).code).toBe(Code.InvalidArgument);
  });

  it("agrees with connect-es on whole milliseconds", () => {
    for (const value of ["1H", "2M", "3S", "250m", "0m", "99999999m"]) {
      expect(grpcParseTimeout(value)).toBe(
        upstreamParseTimeout(value, Number.MAX_SAFE_INTEGER).timeoutMs,
      );
    }
  });
});

describe("grpcFormatTimeout", () => {
  it.each([
    [1, "1m"],
    [250, "250m"],
    [1_000, "1S"],
    [1_500, "1500m"],
    [90_000, "90S"],
    [60_000, "1M"],
    [3_600_000, "1H"],
    [5_400_000, "90M"],
    [86_400_000, "24H"],
    [99_999_999, "99999999m"],
    // Past 8 digits of milliseconds, rounded up to a coarser unit.
    [100_000_001, "100001S"],
    [100_000_000, "100000S"],
    [0.4, "1m"],
    [0, "0m"],
    [-5, "0m"],
    [Number.NaN, "0m"],
    [Number.POSITIVE_INFINITY, "99999999H"],
    [99_999_999 * 3_600_000, "99999999H"],
  ])("%d ms is %s", (ms, value) => {
    expect(grpcFormatTimeout(ms)).toBe(value);
  });

  it("round-trips whole milliseconds that fit", () => {
    for (const ms of [
      1, 7, 999, 1_000, 1_001, 59_999, 60_000, 61_000, 3_599_999, 3_600_000,
      7_200_000, 99_999_999, 123_000_000, 360_000_000_000,
    ]) {
      const value = grpcFormatTimeout(ms);
      expect(value).toMatch(/^\d{1,8}[HMSm]$/);
      expect(grpcParseTimeout(value)).toBe(ms);
    }
  });

  it("never shortens a timeout", () => {
    for (const ms of [100_000_001, 6_000_000_001, 359_999_992_800_001]) {
      const value = grpcFormatTimeout(ms);
      expect(value).toMatch(/^\d{1,8}[HMSm]$/);
      expect(grpcParseTimeout(value)).toBeGreaterThanOrEqual(ms);
    }
  });
});

describe("grpc-message percent-encoding", () => {
  it.each([
    ["plain ASCII ~!", "plain ASCII ~!"],
    ["", ""],
    ["100%", "100%25"],
    ["%25", "%2525"],
    ["é", "%C3%A9"],
    ["caf\u00e9 \u20ac", "caf%C3%A9 %E2%82%AC"],
    ["😀", "%F0%9F%98%80"],
    ["tab\there", "tab%09here"],
    ["line\r\nbreak", "line%0D%0Abreak"],
    ["nul\u0000", "nul%00"],
    ["del\u007f", "del%7F"],
  ])("%j encodes as %j", (message, encoded) => {
    expect(grpcEncodeMessage(message)).toBe(encoded);
    expect(grpcDecodeMessage(encoded)).toBe(message);
  });

  it("produces only the characters the spec allows unencoded", () => {
    const all = Array.from({ length: 0x250 }, (_, i) =>
      String.fromCharCode(i),
    ).join("");
    const encoded = grpcEncodeMessage(all + "😀");
    expect(encoded).toMatch(/^[\x20-\x7e]*$/);
    expect(grpcDecodeMessage(encoded)).toBe(all + "😀");
  });

  it("encodes an unpaired surrogate as the replacement character", () => {
    expect(grpcDecodeMessage(grpcEncodeMessage("\ud800"))).toBe("\ufffd");
  });

  it("decodes lower-case hex", () => {
    expect(grpcDecodeMessage("%c3%a9")).toBe("é");
  });

  it("decodes what encodeURIComponent produces (connect-es)", () => {
    const message = "a b/c?d=é&😀%";
    expect(grpcDecodeMessage(encodeURIComponent(message))).toBe(message);
  });

  it.each([
    ["%zz", "%zz"],
    ["50%", "50%"],
    ["50% off", "50% off"],
    ["%4", "%4"],
    ["%zz%C3%A9", "%zzé"],
    // Not UTF-8 once decoded: the raw value, as the spec allows.
    ["%E2%82", "%E2%82"],
    ["ok %E2%82", "ok %E2%82"],
    ["%FF", "%FF"],
    ["%C3", "%C3"],
  ])("tolerates %j", (value, decoded) => {
    expect(grpcDecodeMessage(value)).toBe(decoded);
  });

  it("recovers raw UTF-8 bytes seen as Latin-1 header characters", () => {
    const raw = String.fromCharCode(...new TextEncoder().encode("é 100%25"));
    expect(grpcDecodeMessage(raw)).toBe("é 100%");
  });
});

const detailA = create(StringValueSchema, { value: "first" });
const detailB = create(DurationSchema, { seconds: 3n, nanos: 5 });

describe("grpcStatusToTrailers", () => {
  it("writes status 0 and nothing else without an error", () => {
    const trailer = grpcStatusToTrailers(undefined, new Headers());
    expect([...trailer]).toEqual([["grpc-status", "0"]]);
  });

  it("writes status, encoded message and metadata", () => {
    const error = new ConnectError("bad é%", Code.InvalidArgument, {
      metadata: { "x-custom": "v", "x-bin": "AAE" },
    });
    const trailer = grpcStatusToTrailers(error, new Headers({ "x-a": "1" }));
    expect(Object.fromEntries(trailer)).toEqual({
      "x-a": "1",
      "x-custom": "v",
      "x-bin": "AAE",
      "grpc-status": "3",
      "grpc-message": "bad %C3%A9%25",
    });
  });

  it("leaves out an empty message", () => {
    const trailer = grpcStatusToTrailers(
      new ConnectError("", Code.NotFound),
      new Headers(),
    );
    expect(trailer.has("grpc-message")).toBe(false);
    expect(trailer.get("grpc-status")).toBe("5");
  });

  it("does not copy protocol keys from the error's metadata", () => {
    const error = new ConnectError("again", Code.Aborted, {
      metadata: {
        "grpc-status": "3",
        "grpc-message": "old",
        "grpc-status-details-bin": "CAM",
        "x-kept": "yes",
      },
    });
    const trailer = grpcStatusToTrailers(error, new Headers());
    expect(Object.fromEntries(trailer)).toEqual({
      "grpc-status": "10",
      "grpc-message": "again",
      "x-kept": "yes",
    });
  });

  it("writes details-bin as unpadded standard base64 of a google.rpc.Status", () => {
    const error = new ConnectError("with details é", Code.FailedPrecondition, {
      details: [
        { desc: StringValueSchema, value: { value: "first" } },
        {
          type: DurationSchema.typeName,
          value: toBinary(DurationSchema, detailB),
        },
      ],
    });
    const bin = grpcStatusToTrailers(error, new Headers()).get(
      "grpc-status-details-bin",
    )!;
    expect(bin).toMatch(/^[A-Za-z0-9+/]*$/);
    const status = fromBinary(
      StatusSchema,
      base64Decode(bin),
    ) as unknown as StatusShape;
    expect(status.code).toBe(Code.FailedPrecondition);
    expect(status.message).toBe("with details é");
    expect(status.details.map((d) => d.typeUrl)).toEqual([
      "type.googleapis.com/google.protobuf.StringValue",
      "type.googleapis.com/google.protobuf.Duration",
    ]);
    expect(fromBinary(StringValueSchema, status.details[0]!.value)).toEqual(
      detailA,
    );
    expect(fromBinary(DurationSchema, status.details[1]!.value)).toEqual(
      detailB,
    );
  });

  it("packs the unserialized details of a connect-es error", () => {
    const upstream = new UpstreamConnectError(
      "up",
      Code.Internal as number,
      undefined,
      [{ desc: StringValueSchema, value: { value: "first" } }],
    );
    const trailer = grpcStatusToTrailers(
      upstream as unknown as ConnectError,
      new Headers(),
    );
    const error = grpcStatusFromTrailers(trailer)!;
    expect(error.findDetails(StringValueSchema)).toEqual([detailA]);
  });
});

describe("grpcStatusFromTrailers", () => {
  it("round-trips code, message, two details and metadata", () => {
    const sent = new ConnectError("two details é%", Code.ResourceExhausted, {
      metadata: { "x-trailer": "t" },
      details: [
        { desc: StringValueSchema, value: { value: "first" } },
        { desc: DurationSchema, value: { seconds: 3n, nanos: 5 } },
      ],
    });
    const trailer = grpcStatusToTrailers(sent, new Headers());
    const header = new Headers({ "x-header": "h", "grpc-encoding": "gzip" });
    const error = grpcStatusFromTrailers(trailer, header)!;
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toBe("two details é%");
    expect(error.details.map((d) => d.type)).toEqual([
      "google.protobuf.StringValue",
      "google.protobuf.Duration",
    ]);
    expect(error.findDetails(StringValueSchema)).toEqual([detailA]);
    expect(error.findDetails(DurationSchema)).toEqual([detailB]);
    expect(Object.fromEntries(error.metadata)).toEqual({
      "x-header": "h",
      "x-trailer": "t",
    });
  });

  it("is undefined for status 0", () => {
    expect(
      grpcStatusFromTrailers(new Headers({ "grpc-status": "0" })),
    ).toBeUndefined();
  });

  it("is undefined for status 0 even with a details-bin", () => {
    const trailer = new Headers({
      "grpc-status": "0",
      "grpc-status-details-bin": encodeStatus({ code: 5, message: "x" }),
    });
    expect(grpcStatusFromTrailers(trailer)).toBeUndefined();
  });

  it("reads status and message without details-bin", () => {
    const error = grpcStatusFromTrailers(
      new Headers({ "grpc-status": "7", "grpc-message": "no%20way %E2%82" }),
    )!;
    expect(error.code).toBe(Code.PermissionDenied);
    // Not UTF-8: the raw value.
    expect(error.rawMessage).toBe("no%20way %E2%82");
    expect(error.details).toEqual([]);
  });

  it("reads the status from the header of a trailers-only response", () => {
    const header = new Headers({
      "grpc-status": "14",
      "grpc-message": "down",
      "x-h": "1",
    });
    const error = grpcStatusFromTrailers(new Headers(), header)!;
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("down");
    expect(Object.fromEntries(error.metadata)).toEqual({ "x-h": "1" });
  });

  it("does not duplicate metadata when header and trailer are the same", () => {
    const headers = new Headers({ "grpc-status": "2", "x-h": "1" });
    const error = grpcStatusFromTrailers(headers, headers)!;
    expect(error.metadata.get("x-h")).toBe("1");
  });

  it("is Internal without grpc-status", () => {
    const error = grpcStatusFromTrailers(
      new Headers({ "x-t": "1" }),
      new Headers({ "x-h": "2" }),
    )!;
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toMatch(/missing grpc-status/);
    expect(Object.fromEntries(error.metadata)).toEqual({
      "x-h": "2",
      "x-t": "1",
    });
  });

  it.each(["", "abc", "-1", "1.5", "0x3", "12345678901"])(
    "is Internal for grpc-status %j",
    (value) => {
      const error = grpcStatusFromTrailers(
        new Headers({ "grpc-status": value }),
      )!;
      expect(error.code).toBe(Code.Internal);
      expect(error.rawMessage).toMatch(/invalid grpc-status/);
    },
  );

  it.each(["17", "99", "4294967295"])(
    "is Unknown for the out-of-range code %s",
    (value) => {
      const error = grpcStatusFromTrailers(
        new Headers({ "grpc-status": value, "grpc-message": "m" }),
      )!;
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe("m");
    },
  );

  it("prefers code and message of details-bin", () => {
    const trailer = new Headers({
      "grpc-status": "2",
      "grpc-message": "header message",
      "grpc-status-details-bin": encodeStatus({
        code: Code.NotFound,
        message: "status message",
      }),
    });
    const error = grpcStatusFromTrailers(trailer)!;
    expect(error.code).toBe(Code.NotFound);
    expect(error.rawMessage).toBe("status message");
  });

  it("keeps grpc-status when details-bin has code 0 or no code", () => {
    for (const code of [0, 42]) {
      const trailer = new Headers({
        "grpc-status": "9",
        "grpc-message": "header",
        "grpc-status-details-bin": encodeStatus({
          code,
          message: "status",
          details: [
            {
              typeUrl: "type.googleapis.com/google.protobuf.StringValue",
              value: toBinary(StringValueSchema, detailA),
            },
          ],
        }),
      });
      const error = grpcStatusFromTrailers(trailer)!;
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.rawMessage).toBe("header");
      expect(error.findDetails(StringValueSchema)).toEqual([detailA]);
    }
  });

  it("accepts padded and unpadded details-bin", () => {
    const padded = encodeStatus({ code: 3, message: "abc" });
    expect(padded.endsWith("=")).toBe(true);
    for (const bin of [padded, padded.replace(/=+$/, "")]) {
      const error = grpcStatusFromTrailers(
        new Headers({ "grpc-status": "3", "grpc-status-details-bin": bin }),
      )!;
      expect(error.rawMessage).toBe("abc");
    }
  });

  it("takes the type name after the last slash of the type URL", () => {
    const trailer = new Headers({
      "grpc-status": "3",
      "grpc-status-details-bin": encodeStatus({
        code: 3,
        details: [
          { typeUrl: "example.com/a/b/pkg.Type", value: new Uint8Array([1]) },
          { typeUrl: "pkg.NoSlash", value: new Uint8Array() },
        ],
      }),
    });
    expect(grpcStatusFromTrailers(trailer)!.details).toEqual([
      { type: "pkg.Type", value: new Uint8Array([1]) },
      { type: "pkg.NoSlash", value: new Uint8Array() },
    ]);
  });

  it("skips unknown fields of Status and Any", () => {
    const any = new BinaryWriter()
      .tag(1, 2)
      .string("type.googleapis.com/x.Y")
      .tag(9, 0)
      .int32(1)
      .tag(2, 2)
      .bytes(new Uint8Array([7]))
      .finish();
    const status = new BinaryWriter()
      .tag(5, 2)
      .string("ignored")
      .tag(1, 0)
      .int32(6)
      .tag(3, 2)
      .bytes(any)
      .tag(7, 5)
      .fixed32(1)
      .finish();
    const error = grpcStatusFromTrailers(
      new Headers({
        "grpc-status": "6",
        "grpc-status-details-bin": base64Encode(status, "std_raw"),
      }),
    )!;
    expect(error.code).toBe(Code.AlreadyExists);
    expect(error.details).toEqual([
      { type: "x.Y", value: new Uint8Array([7]) },
    ]);
  });

  it.each([
    ["not base64", "!!!"],
    ["truncated protobuf", base64Encode(new Uint8Array([0x1a, 0x05, 0x0a]))],
  ])("falls back to grpc-status for a %s details-bin", (_, bin) => {
    const error = grpcStatusFromTrailers(
      new Headers({
        "grpc-status": "8",
        "grpc-message": "slow down",
        "grpc-status-details-bin": bin,
      }),
    )!;
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toBe("slow down");
    expect(error.details).toEqual([]);
  });
});

describe("interoperability with connect-es", () => {
  it("connect-es reads our trailers", () => {
    const sent = new ConnectError("ours é%", Code.DataLoss, {
      metadata: { "x-m": "1" },
      details: [
        { desc: StringValueSchema, value: { value: "first" } },
        { desc: DurationSchema, value: { seconds: 3n, nanos: 5 } },
      ],
    });
    const error = findTrailerError(grpcStatusToTrailers(sent, new Headers()))!;
    expect(error.code).toBe(Code.DataLoss);
    expect(error.rawMessage).toBe("ours é%");
    expect(error.findDetails(StringValueSchema)).toEqual([detailA]);
    expect(error.findDetails(DurationSchema)).toEqual([detailB]);
    expect(error.metadata.get("x-m")).toBe("1");
  });

  it("connect-es reads our message without details", () => {
    const sent = new ConnectError("tab\t100% é 😀", Code.Aborted);
    const error = findTrailerError(grpcStatusToTrailers(sent, new Headers()))!;
    expect(error.rawMessage).toBe("tab\t100% é 😀");
  });

  it("connect-es reads our success", () => {
    expect(
      findTrailerError(grpcStatusToTrailers(undefined, new Headers())),
    ).toBeUndefined();
  });

  it("we read the trailers of connect-es", () => {
    const upstream = new UpstreamConnectError(
      "theirs é% ?&",
      Code.OutOfRange as number,
      { "x-m": "1" },
      [
        { desc: StringValueSchema, value: { value: "first" } },
        { desc: DurationSchema, value: { seconds: 3n, nanos: 5 } },
      ],
    );
    const trailer = setTrailerStatus(new Headers(), upstream);
    const error = grpcStatusFromTrailers(trailer)!;
    expect(error.code).toBe(Code.OutOfRange);
    expect(error.rawMessage).toBe("theirs é% ?&");
    expect(error.details.map((d) => d.type)).toEqual([
      "google.protobuf.StringValue",
      "google.protobuf.Duration",
    ]);
    expect(error.findDetails(StringValueSchema)).toEqual([detailA]);
    expect(error.findDetails(DurationSchema)).toEqual([detailB]);
    expect(Object.fromEntries(error.metadata)).toEqual({ "x-m": "1" });
  });

  it("we read connect-es's message without details", () => {
    const upstream = new UpstreamConnectError(
      "a b/c é 😀 100%",
      Code.Unauthenticated as number,
    );
    const error = grpcStatusFromTrailers(
      setTrailerStatus(new Headers(), upstream),
    )!;
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toBe("a b/c é 😀 100%");
  });

  it("produces the same details-bin as connect-es", () => {
    const details = [
      { desc: StringValueSchema, value: { value: "first" } },
      { desc: DurationSchema, value: { seconds: 3n, nanos: 5 } },
    ];
    const ours = grpcStatusToTrailers(
      new ConnectError("same", Code.Canceled, { details }),
      new Headers(),
    );
    const theirs = setTrailerStatus(
      new Headers(),
      new UpstreamConnectError("same", Code.Canceled as number, {}, details),
    );
    expect(ours.get("grpc-status-details-bin")).toBe(
      theirs.get("grpc-status-details-bin"),
    );
  });
});
