import { describe, expect, it } from "vitest";
import { codecBinary, jsonCodec } from "../core/codec.ts";
import { bodyDefaultReadMaxBytes } from "../core/body.ts";
import { compressionBrotli, compressionGzip } from "../node/compression.ts";
import {
  serverCodec,
  serverConfig,
  serverUnsupportedMediaType,
} from "./config.ts";

describe("serverConfig", () => {
  it("fills in every default", () => {
    const config = serverConfig({}, [compressionGzip], jsonCodec);
    expect(config.interceptors).toEqual([]);
    expect(config.readMaxBytes).toBe(bodyDefaultReadMaxBytes);
    expect(config.compressions).toEqual([compressionGzip]);
    expect(config.compressMinBytes).toBe(1024);
    expect(config.binaryCodec).toBe(codecBinary);
    expect(config.jsonCodec).toBeDefined();
    expect(config.requireConnectProtocolHeader).toBe(false);
    expect(config.redactErrors).toBe(true);
    expect(config.onError).toBeUndefined();
  });

  it("takes the options' compressions over the file's, names joined without spaces", () => {
    const config = serverConfig(
      { compressions: [compressionBrotli, compressionGzip] },
      [compressionGzip],
      jsonCodec,
    );
    expect(config.compressions).toEqual([compressionBrotli, compressionGzip]);
    // grpc-js splits grpc-accept-encoding on "," alone.
    expect(config.compressionNames).toBe("br,gzip");
  });

  it("has no JSON codec in a file generated with json=false", () => {
    expect(serverConfig({}, [], undefined).jsonCodec).toBeUndefined();
  });

  it("builds the JSON codec with the options' JSON options", () => {
    const seen: unknown[] = [];
    serverConfig(
      { jsonOptions: { ignoreUnknownFields: true } },
      [],
      (options) => {
        seen.push(options);
        return jsonCodec(options);
      },
    );
    expect(seen).toEqual([{ ignoreUnknownFields: true }]);
  });
});

describe("serverCodec", () => {
  const config = serverConfig({}, [], jsonCodec);

  it("picks the binary or the JSON codec", () => {
    expect(serverCodec(config, { binary: true })).toBe(codecBinary);
    expect(serverCodec(config, { binary: false })).toBe(config.jsonCodec);
  });

  it("has none for an unknown content type, nor for JSON without a JSON codec", () => {
    expect(serverCodec(config, undefined)).toBeUndefined();
    const binaryOnly = serverConfig({}, [], undefined);
    expect(serverCodec(binaryOnly, { binary: false })).toBeUndefined();
  });
});

describe("serverUnsupportedMediaType", () => {
  it("answers 415 naming what the file reads", () => {
    const all = serverUnsupportedMediaType(
      serverConfig({}, [], jsonCodec),
      "application/proto",
      "application/proto, application/json",
    );
    expect(all.status).toBe(415);
    expect(all.header.get("accept-post")).toBe(
      "application/proto, application/json",
    );
    const binaryOnly = serverUnsupportedMediaType(
      serverConfig({}, [], undefined),
      "application/proto",
      "application/proto, application/json",
    );
    expect(binaryOnly.header.get("accept-post")).toBe("application/proto");
  });
});
