import { describe, expect, it } from "vitest";
import { checkBuiltinOptions, parseOptions } from "./options.ts";

describe("parseOptions", () => {
  it("has defaults for everything", () => {
    expect(parseOptions([])).toEqual({
      client: true,
      server: true,
      platform: "node",
      naming: "camel",
      protocols: ["connect", "grpc", "grpc-web"],
      json: true,
      runtime: "inline",
      health: false,
      reflection: false,
    });
  });

  it("reads every option", () => {
    expect(
      parseOptions([
        { key: "client", value: "false" },
        { key: "platform", value: "web" },
        { key: "naming", value: "proto" },
        { key: "json", value: "false" },
        { key: "runtime", value: "shared" },
        { key: "health", value: "true" },
        { key: "reflection", value: "true" },
      ]),
    ).toEqual({
      client: false,
      server: true,
      platform: "web",
      naming: "proto",
      protocols: ["connect", "grpc-web"],
      json: false,
      runtime: "shared",
      health: true,
      reflection: true,
    });
  });

  it("reads protocols separated by commas, as buf and protoc pass them", () => {
    // "protocols=grpc-web,connect" reaches the plugin split on ",".
    expect(
      parseOptions([
        { key: "protocols", value: "grpc-web" },
        { key: "connect", value: "" },
        { key: "naming", value: "proto" },
      ]).protocols,
    ).toEqual(["grpc-web", "connect"]);
    expect(
      parseOptions([{ key: "protocols", value: "grpc+grpc+connect" }])
        .protocols,
    ).toEqual(["grpc", "connect"]);
    expect(
      parseOptions([
        { key: "protocols", value: "grpc" },
        { key: "protocols", value: "grpc-web" },
      ]).protocols,
    ).toEqual(["grpc", "grpc-web"]);
  });

  it("refuses a bare protocol name that does not follow protocols=", () => {
    expect(() =>
      parseOptions([
        { key: "naming", value: "proto" },
        { key: "grpc", value: "" },
      ]),
    ).toThrow(/unknown option "grpc"/);
  });

  it("names a bad protocol and the accepted ones", () => {
    expect(() =>
      parseOptions([{ key: "protocols", value: "connect+http" }]),
    ).toThrow(
      'invalid value "http" for option "protocols": accepted values are connect, grpc, grpc-web, separated by "," or "+"',
    );
    expect(() => parseOptions([{ key: "protocols", value: "" }])).toThrow(
      'invalid value "" for option "protocols"',
    );
  });

  it("refuses gRPC on the web platform, which has no trailers", () => {
    expect(() =>
      parseOptions([
        { key: "platform", value: "web" },
        { key: "protocols", value: "connect+grpc" },
      ]),
    ).toThrow(/cannot include grpc with "platform=web"/);
  });

  it("names an unknown option and the accepted ones", () => {
    expect(() => parseOptions([{ key: "protocol", value: "grpc" }])).toThrow(
      /unknown option "protocol": accepted options are target, import_extension, client, server, platform, naming, protocols, json/,
    );
  });

  it("names a bad value and the accepted values", () => {
    expect(() => parseOptions([{ key: "server", value: "yes" }])).toThrow(
      'invalid value "yes" for option "server": accepted values are true, false',
    );
    expect(() => parseOptions([{ key: "naming", value: "snake" }])).toThrow(
      'invalid value "snake" for option "naming": accepted values are camel, proto',
    );
    expect(() => parseOptions([{ key: "health", value: "" }])).toThrow(
      'invalid value "" for option "health": accepted values are true, false',
    );
  });

  it("refuses to generate nothing", () => {
    expect(() =>
      parseOptions([
        { key: "client", value: "false" },
        { key: "server", value: "false" },
      ]),
    ).toThrow(/leave nothing to generate/);
  });
});

describe("checkBuiltinOptions", () => {
  it("accepts the documented targets in any order", () => {
    expect(() => checkBuiltinOptions("target=ts")).not.toThrow();
    expect(() =>
      checkBuiltinOptions("target=dts+js,import_extension=js"),
    ).not.toThrow();
    expect(() => checkBuiltinOptions("")).not.toThrow();
  });

  it("names bad values with the accepted ones", () => {
    expect(() => checkBuiltinOptions("target=wasm")).toThrow(
      'invalid value "wasm" for option "target": accepted values are ts, js+dts, js, dts, ts+js+dts',
    );
    expect(() => checkBuiltinOptions("import_extension=mjs")).toThrow(
      'invalid value "mjs" for option "import_extension": accepted values are js, ts, none',
    );
  });
});
