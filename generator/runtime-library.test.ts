import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { analyseRuntimeDir } from "./build/analyse-runtime.ts";
import type { RuntimeLibrary } from "./runtime-library.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true });
});

function library(files: Record<string, string>): RuntimeLibrary {
  const dir = mkdtempSync(join(tmpdir(), "cs-runtime-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text);
  }
  return analyseRuntimeDir(dir);
}

describe("RuntimeLibrary", () => {
  it("follows references across modules", () => {
    const lib = library({
      "a.ts": [
        'import { b } from "./b.ts";',
        'import { create } from "@bufbuild/protobuf";',
        "export function a(): number {",
        "  const local = { b };",
        "  return local.b.length + create.length;",
        "}",
        "",
      ].join("\n"),
      "b.ts": ["export const b = [1];", "export const unused = 2;", ""].join(
        "\n",
      ),
    });
    expect(lib.closure(["a#a"]).map((d) => d.id)).toEqual(["b#b", "a#a"]);
    const a = lib.declarations.get("a#a")!;
    expect(a.statements[0]).toContainEqual({
      kind: "import",
      name: "create",
      local: "create",
      from: "@bufbuild/protobuf",
      typeOnly: false,
      shorthand: false,
    });
    expect(a.statements[0]).toContainEqual({
      kind: "runtime",
      id: "b#b",
      text: "b",
      shorthand: true,
    });
    // `export` is a piece of its own: the emitter decides whether it stays.
    expect(a.statements[0]![0]).toEqual({ kind: "export" });
    expect(
      a.statements[0]!.filter((p) => typeof p === "string").join(""),
    ).not.toContain("export");
  });

  it("refuses a runtime module imported as a namespace", () => {
    expect(() =>
      library({
        "a.ts": 'import * as b from "./b.ts";\nexport const a = b.b;\n',
        "b.ts": "export const b = 1;\n",
      }),
    ).toThrow(/a\.ts:1: import runtime modules by name, not as a namespace/);
  });

  it("refuses imports of other packages, naming the file and line", () => {
    expect(() =>
      library({ "a.ts": 'import { x } from "lodash";\nexport const a = x;\n' }),
    ).toThrow(/a\.ts:1: imports "lodash"/);
  });

  it("refuses default exports and export lists", () => {
    expect(() =>
      library({ "a.ts": "const a = 1;\nexport default a;\n" }),
    ).toThrow(/a\.ts:2: only declarations may appear at the top level/);
    expect(() => library({ "a.ts": "const a = 1;\nexport { a };\n" })).toThrow(
      /a\.ts:2: only declarations/,
    );
  });

  it("keys declarations by module, so modules may share private names", () => {
    const lib = library({
      "a.ts":
        'import { b } from "./b.ts";\nconst helper = 1;\nexport const a = () => helper + b;\n',
      "b.ts": "const helper = 2;\nexport const b = helper;\n",
    });
    expect(lib.closure(["a#a"]).map((d) => d.id)).toEqual([
      "b#helper",
      "b#b",
      "a#helper",
      "a#a",
    ]);
  });

  it("reads the entry points from interface EntryPoints", () => {
    const lib = library({
      "a.ts": "export function a(): void {}\nexport interface A {}\n",
      "entry-points.ts":
        'import type { a, A } from "./a.ts";\nexport interface EntryPoints {\n  readonly a: typeof a;\n  readonly A: A;\n}\n',
    });
    expect([...lib.entryPoints]).toEqual([
      ["a", "a#a"],
      ["A", "a#A"],
    ]);
    // Never copied itself.
    expect([...lib.declarations.keys()]).not.toContain(
      "entry-points#EntryPoints",
    );
    expect(() => lib.entryPoint("b")).toThrow(
      /"b", which is not in EntryPoints/,
    );
  });
});
