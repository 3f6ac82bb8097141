import { describe, it, expect } from "vitest";
import { Code } from "./code.ts";
import {
  compressionAcceptHeader,
  compressionFind,
  compressionNegotiate,
  compressionUnknown,
  type Compression,
} from "./compression.ts";

// Negotiation only looks at names: stand-ins that compress nothing will do.
function fake(name: string): Compression {
  return {
    name,
    compress: async (data) => data,
    decompress: async (data) => data,
  };
}

const gzip = fake("gzip");
const br = fake("br");
const zstd = fake("zstd");
const deflate = fake("deflate");

/** The order of node/compression.ts's defaults. */
function defaults(): Compression[] {
  return [gzip, br, zstd, deflate];
}

describe("compressionNegotiate", () => {
  const available = defaults();

  it.each<[string | null, string | undefined]>([
    ["gzip, br", "gzip"],
    ["br, gzip", "br"],
    ["br;q=0.5, gzip", "br"],
    ["gzip;q=1.0, br;q=0.9", "gzip"],
    ["identity", undefined],
    ["identity, br", "br"],
    [null, undefined],
    ["", undefined],
    ["snappy", undefined],
    ["snappy, zstd", "zstd"],
    ["  GZIP ,BR", "gzip"],
    ["  ,  Br  ;  q=0.8 ,gzip", "br"],
    ["snappy, gzip", "gzip"],
    ["deflate, gzip", "deflate"],
    ["br;q=0, gzip", "gzip"],
    ["br; q=0.000", undefined],
  ])("%j picks %s", (header, expected) => {
    expect(compressionNegotiate(available, header)?.name).toBe(expected);
  });

  it("returns the very object from the list", () => {
    expect(compressionNegotiate(available, "br")).toBe(br);
  });

  it("finds nothing in an empty list", () => {
    expect(compressionNegotiate([], "gzip, br")).toBeUndefined();
  });
});

describe("compressionFind", () => {
  const available = defaults();

  it("finds by name, case-insensitively", () => {
    expect(compressionFind(available, "gzip")).toBe(gzip);
    expect(compressionFind(available, "GZip")).toBe(gzip);
    expect(compressionFind(available, "br")).toBe(br);
    expect(compressionFind(available, "zstd")).toBe(zstd);
  });

  it("returns null for no compression", () => {
    expect(compressionFind(available, "identity")).toBeNull();
    expect(compressionFind(available, "Identity")).toBeNull();
    expect(compressionFind(available, "")).toBeNull();
    expect(compressionFind(available, null)).toBeNull();
    expect(compressionFind([], "identity")).toBeNull();
  });

  it("returns undefined for an unknown or unavailable name", () => {
    expect(compressionFind(available, "snappy")).toBeUndefined();
    expect(compressionFind([gzip], "deflate")).toBeUndefined();
    expect(compressionFind([gzip], "br")).toBeUndefined();
  });
});

describe("compressionAcceptHeader", () => {
  it("joins names with a comma and space", () => {
    expect(compressionAcceptHeader(defaults())).toBe("gzip, br, zstd, deflate");
    expect(compressionAcceptHeader([gzip])).toBe("gzip");
    expect(compressionAcceptHeader([])).toBe("");
  });

  it("negotiates back to the first entry", () => {
    const available = defaults();
    expect(
      compressionNegotiate(available, compressionAcceptHeader(available)),
    ).toBe(available[0]);
  });
});

describe("compressionUnknown", () => {
  it("names the encoding and those accepted, with Unimplemented", () => {
    const error = compressionUnknown("snappy", [gzip, br]);
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toBe(
      'unknown compression "snappy": accepted are gzip, br',
    );
    expect(compressionUnknown("gzip", []).rawMessage).toBe(
      'unknown compression "gzip": accepted are none',
    );
  });
});
