import { describe, expect, it } from "vitest";
import { checkBuiltinOptions, parseOptions } from "./options.ts";

describe("parseOptions", () => {
  it("has defaults for everything", () => {
    expect(parseOptions([])).toEqual({
      client: true,
      server: true,
      platform: "node",
      naming: "camel",
    });
  });

  it("reads every option", () => {
    expect(
      parseOptions([
        { key: "client", value: "false" },
        { key: "platform", value: "web" },
        { key: "naming", value: "proto" },
      ]),
    ).toEqual({
      client: false,
      server: true,
      platform: "web",
      naming: "proto",
    });
  });

  it("names an unknown option and the accepted ones", () => {
    expect(() => parseOptions([{ key: "protocol", value: "grpc" }])).toThrow(
      /unknown option "protocol": accepted options are target, import_extension, client, server, platform, naming/,
    );
  });

  it("names a bad value and the accepted values", () => {
    expect(() => parseOptions([{ key: "server", value: "yes" }])).toThrow(
      'invalid value "yes" for option "server": accepted values are true, false',
    );
    expect(() => parseOptions([{ key: "naming", value: "snake" }])).toThrow(
      'invalid value "snake" for option "naming": accepted values are camel, proto',
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
