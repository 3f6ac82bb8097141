import {
  trailerParse as upstreamTrailerParse,
  trailerSerialize as upstreamTrailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import {
  grpcWebDecodeTrailers,
  grpcWebEncodeTrailers,
  grpcWebParseContentType,
} from "./grpc-web.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();

describe("grpcWebParseContentType", () => {
  it.each([
    ["application/grpc-web", true],
    ["application/grpc-web+proto", true],
    ["application/grpc-web+json", false],
    ["APPLICATION/GRPC-WEB+JSON", false],
    ["application/grpc-web+json; charset=utf-8", false],
    ["application/grpc-web;charset=utf-8", true],
  ])("%s", (value, binary) => {
    expect(grpcWebParseContentType(value)).toEqual({ binary });
  });

  it.each([
    null,
    "",
    "application/grpc",
    "application/grpc+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
    "application/grpc-web+thrift",
    "application/grpc-webx",
    "application/json",
  ])("rejects %s", (value) => {
    expect(grpcWebParseContentType(value)).toBeUndefined();
  });
});

describe("grpcWebEncodeTrailers", () => {
  it("writes name: value CRLF lines with lower-case names", () => {
    const trailer = new Headers();
    trailer.set("Grpc-Status", "3");
    trailer.set("Grpc-Message", "bad%20input");
    trailer.set("X-Custom-Bin", "AAE");
    expect(text.decode(grpcWebEncodeTrailers(trailer))).toBe(
      "grpc-message: bad%20input\r\ngrpc-status: 3\r\nx-custom-bin: AAE\r\n",
    );
  });

  it("writes nothing for no trailers", () => {
    expect(grpcWebEncodeTrailers(new Headers())).toEqual(new Uint8Array());
  });

  it("writes repeated names as one line", () => {
    const trailer = new Headers();
    trailer.append("x-multi", "a");
    trailer.append("x-multi", "b");
    expect(text.decode(grpcWebEncodeTrailers(trailer))).toBe(
      "x-multi: a, b\r\n",
    );
  });

  it("writes a Latin-1 value byte for byte", () => {
    const trailer = new Headers({ "x-latin": "\u00e9" });
    expect(grpcWebEncodeTrailers(trailer)).toEqual(
      new Uint8Array([...utf8.encode("x-latin: "), 0xe9, 0x0d, 0x0a]),
    );
  });
});

describe("grpcWebDecodeTrailers", () => {
  it("round-trips", () => {
    const trailer = new Headers();
    trailer.set("grpc-status", "0");
    trailer.append("x-multi", "a");
    trailer.append("x-multi", "b");
    trailer.set("x-latin", "caf\u00e9");
    const decoded = grpcWebDecodeTrailers(grpcWebEncodeTrailers(trailer));
    expect([...decoded]).toEqual([...trailer]);
  });

  it("appends repeated lines", () => {
    const decoded = grpcWebDecodeTrailers(
      utf8.encode("x-multi: a\r\nX-Multi: b\r\ngrpc-status: 0\r\n"),
    );
    expect(decoded.get("x-multi")).toBe("a, b");
    expect(decoded.get("grpc-status")).toBe("0");
  });

  it("tolerates LF, white-space, empty lines and a missing final newline", () => {
    const decoded = grpcWebDecodeTrailers(
      utf8.encode(
        "\r\nGrpc-Status:3\n grpc-message :  bad input \t\r\n\r\n\nx-empty:\r\nx-colon: a:b",
      ),
    );
    expect(Object.fromEntries(decoded)).toEqual({
      "grpc-status": "3",
      "grpc-message": "bad input",
      "x-empty": "",
      "x-colon": "a:b",
    });
  });

  it("reads no trailers from an empty payload", () => {
    expect([...grpcWebDecodeTrailers(new Uint8Array())]).toEqual([]);
  });

  it.each([
    "grpc-status 0\r\n",
    "grpc-status: 0\r\nno colon here\r\n",
    ": value\r\n",
    "bad name: value\r\n",
    "x-nul: a\u0000b\r\n",
  ])("throws Internal for %j", (payload) => {
    let caught: unknown;
    try {
      grpcWebDecodeTrailers(utf8.encode(payload));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConnectError);
    expect((caught as ConnectError).code).toBe(Code.Internal);
  });

  it("reads what connect-es writes, and connect-es reads ours", () => {
    const trailer = new Headers();
    trailer.set("grpc-status", "5");
    trailer.set("grpc-message", "not%20found");
    trailer.append("x-multi", "a");
    trailer.append("x-multi", "b");
    expect([
      ...grpcWebDecodeTrailers(upstreamTrailerSerialize(trailer)),
    ]).toEqual([...trailer]);
    expect([...upstreamTrailerParse(grpcWebEncodeTrailers(trailer))]).toEqual([
      ...trailer,
    ]);
  });
});
