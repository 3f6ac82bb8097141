import { describe, expect, it } from "vitest";
import { code, rt } from "../templates/code.ts";
import { analyseRuntime } from "./build/analyse-runtime.ts";
import { selectRuntime, unionOf } from "./select.ts";

// A runtime of three modules whose entry points are named like real ones,
// so that rt() accepts them.
const library = analyseRuntime([
  [
    "a.ts",
    'import { shared } from "./c.ts";\nexport function jsonCodec() { return shared; }\n',
  ],
  [
    "b.ts",
    'import { shared } from "./c.ts";\nexport function grpcServer() { return shared; }\nexport const unused = 1;\n',
  ],
  ["c.ts", "export const shared = 1;\n"],
  [
    "entry-points.ts",
    'import type { jsonCodec } from "./a.ts";\nimport type { grpcServer } from "./b.ts";\nexport interface EntryPoints {\n  readonly jsonCodec: typeof jsonCodec;\n  readonly grpcServer: typeof grpcServer;\n}\n',
  ],
]);

describe("selectRuntime", () => {
  it("takes the entry points a template names, and what they reach", () => {
    const selection = selectRuntime(
      library,
      code`${rt("grpcServer")}(); ${rt("grpcServer")}();`,
    );
    expect([...selection.entryPoints]).toEqual([
      ["grpcServer", "b#grpcServer"],
    ]);
    expect(selection.declarations.map((d) => d.id)).toEqual([
      "c#shared",
      "b#grpcServer",
    ]);
  });

  it("unites selections, each declaration once, in the library's order", () => {
    const union = unionOf(library, [
      selectRuntime(library, code`${rt("grpcServer")}`),
      selectRuntime(library, code`${rt("jsonCodec")}`),
    ]);
    expect(union.declarations.map((d) => d.id)).toEqual([
      "c#shared",
      "a#jsonCodec",
      "b#grpcServer",
    ]);
  });

  it("names a template's entry point that the runtime lacks", () => {
    expect(() =>
      selectRuntime(library, code`${rt("createServiceHandler")}`),
    ).toThrow(/"createServiceHandler", which is not in EntryPoints/);
  });
});

describe("a {@link} in the JSDoc of an exported declaration", () => {
  it("reaches what it names, as it does in an unexported one", () => {
    const linked = analyseRuntime([
      [
        "a.ts",
        'import { helper } from "./c.ts";\n/** See {@link helper}. */\nexport function jsonCodec() { return 1; }\n',
      ],
      ["c.ts", "export function helper() {}\n"],
      [
        "entry-points.ts",
        'import type { jsonCodec } from "./a.ts";\nexport interface EntryPoints {\n  readonly jsonCodec: typeof jsonCodec;\n}\n',
      ],
    ]);
    const selection = selectRuntime(linked, code`${rt("jsonCodec")}`);
    expect(selection.declarations.map((d) => d.id)).toEqual([
      "c#helper",
      "a#jsonCodec",
    ]);
  });
});
