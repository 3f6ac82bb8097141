import { create, createRegistry, isMessage } from "@bufbuild/protobuf";
import {
  AnySchema,
  anyPack,
  anyUnpack,
  FieldDescriptorProtoSchema,
  StringValueSchema,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { Code } from "./code.ts";
import { codecBinary, jsonCodec } from "./codec.ts";
import { ConnectError } from "./errors.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

function decodeError(decode: () => unknown): ConnectError {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    return error as ConnectError;
  }
  throw new Error("expected decode to throw");
}

const field = create(FieldDescriptorProtoSchema, {
  name: "display_name",
  number: 3,
  typeName: ".test.v1.Name",
});

describe("codecBinary", () => {
  it("is binary", () => {
    expect(codecBinary.binary).toBe(true);
  });

  it("round-trips a message", () => {
    const encoded = codecBinary.encode(FieldDescriptorProtoSchema, field);
    const decoded = codecBinary.decode(FieldDescriptorProtoSchema, encoded);
    expect(isMessage(decoded, FieldDescriptorProtoSchema)).toBe(true);
    expect(decoded).toEqual(field);
  });

  it("encodes the protobuf wire format", () => {
    const message = create(StringValueSchema, { value: "hi" });
    expect(codecBinary.encode(StringValueSchema, message)).toEqual(
      bytes(0x0a, 0x02, 0x68, 0x69),
    );
  });

  it("encodes a default message as zero bytes, and decodes zero bytes as one", () => {
    const empty = create(StringValueSchema);
    expect(codecBinary.encode(StringValueSchema, empty).byteLength).toBe(0);
    expect(codecBinary.decode(StringValueSchema, bytes())).toEqual(empty);
  });

  it("fails on truncated input with InvalidArgument naming the type", () => {
    // Field 1, length 5, but one byte of data.
    const error = decodeError(() =>
      codecBinary.decode(StringValueSchema, bytes(0x0a, 0x05, 0x61)),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(
      /^cannot decode google\.protobuf\.StringValue: /,
    );
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.rawMessage).toContain((error.cause as Error).message);
  });

  it("fails on invalid UTF-8 in a proto3 string with InvalidArgument", () => {
    const error = decodeError(() =>
      codecBinary.decode(StringValueSchema, bytes(0x0a, 0x01, 0xff)),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(
      /^cannot decode google\.protobuf\.StringValue: /,
    );
  });
});

describe("jsonCodec", () => {
  const json = jsonCodec();

  it("is not binary", () => {
    expect(json.binary).toBe(false);
  });

  it("encodes UTF-8 JSON with JSON field names", () => {
    const encoded = json.encode(FieldDescriptorProtoSchema, field);
    expect(JSON.parse(text.decode(encoded))).toEqual({
      name: "display_name",
      number: 3,
      typeName: ".test.v1.Name",
    });
  });

  it("encodes non-ASCII text as UTF-8", () => {
    const encoded = json.encode(
      StringValueSchema,
      create(StringValueSchema, { value: "é" }),
    );
    expect(encoded).toEqual(bytes(0x22, 0xc3, 0xa9, 0x22));
  });

  it("round-trips a message", () => {
    const decoded = json.decode(
      FieldDescriptorProtoSchema,
      json.encode(FieldDescriptorProtoSchema, field),
    );
    expect(isMessage(decoded, FieldDescriptorProtoSchema)).toBe(true);
    expect(decoded).toEqual(field);
  });

  it("decodes proto field names as well", () => {
    const decoded = json.decode(
      FieldDescriptorProtoSchema,
      utf8.encode('{"type_name": ".a.B"}'),
    );
    expect(decoded).toMatchObject({ typeName: ".a.B" });
  });

  it("passes write options through", () => {
    const encoded = jsonCodec({ useProtoFieldName: true }).encode(
      FieldDescriptorProtoSchema,
      field,
    );
    expect(JSON.parse(text.decode(encoded))).toEqual({
      name: "display_name",
      number: 3,
      type_name: ".test.v1.Name",
    });
  });

  it("fails on an unknown field with InvalidArgument, unless read options ignore it", () => {
    const input = utf8.encode('{"name": "x", "nope": 1}');
    const error = decodeError(() =>
      json.decode(FieldDescriptorProtoSchema, input),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(
      /^cannot decode google\.protobuf\.FieldDescriptorProto: .*"nope"/,
    );
    const lenient = jsonCodec({ ignoreUnknownFields: true });
    expect(lenient.decode(FieldDescriptorProtoSchema, input)).toMatchObject({
      name: "x",
    });
  });

  it.each([
    ["empty input", bytes()],
    ["truncated JSON", utf8.encode('{"name": "x"')],
    ["plain text", utf8.encode("not json")],
    ["a JSON value of the wrong type", utf8.encode("[1, 2]")],
    ["a field of the wrong type", utf8.encode('{"number": "three"}')],
  ])("fails on %s with InvalidArgument", (_, input) => {
    const error = decodeError(() =>
      json.decode(FieldDescriptorProtoSchema, input),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(
      /^cannot decode google\.protobuf\.FieldDescriptorProto: ./,
    );
    expect(error.cause).toBeInstanceOf(Error);
  });

  it("fails on invalid UTF-8 with InvalidArgument rather than decoding U+FFFD", () => {
    // "\xff" as a JSON string: the bytes are not UTF-8.
    const error = decodeError(() =>
      json.decode(StringValueSchema, bytes(0x22, 0xff, 0x22)),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it("accepts a leading UTF-8 byte order mark", () => {
    const input = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8.encode('"x"')]);
    expect(json.decode(StringValueSchema, input)).toMatchObject({
      value: "x",
    });
  });

  describe("google.protobuf.Any", () => {
    const packed = anyPack(
      StringValueSchema,
      create(StringValueSchema, { value: "inside" }),
    );
    const packedJson = utf8.encode(
      '{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "inside"}',
    );

    it("round-trips with a registry", () => {
      const withRegistry = jsonCodec({
        registry: createRegistry(StringValueSchema),
      });
      expect(
        JSON.parse(text.decode(withRegistry.encode(AnySchema, packed))),
      ).toEqual({
        "@type": "type.googleapis.com/google.protobuf.StringValue",
        value: "inside",
      });
      const decoded = withRegistry.decode(AnySchema, packedJson);
      expect(
        anyUnpack(decoded as typeof packed, StringValueSchema),
      ).toMatchObject({ value: "inside" });
    });

    it("fails to decode without a registry, with InvalidArgument", () => {
      const error = decodeError(() => json.decode(AnySchema, packedJson));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(
        /^cannot decode google\.protobuf\.Any: /,
      );
    });

    // encode is not wrapped: protobuf's error comes through as it is.
    it("throws protobuf's own error on encode without a registry", () => {
      expect(() => json.encode(AnySchema, packed)).toThrow(
        /not in the type registry/,
      );
    });
  });
});
