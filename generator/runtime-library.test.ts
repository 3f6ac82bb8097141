import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RuntimeLibrary } from "./runtime-library.ts";

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
  return RuntimeLibrary.load(dir);
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
    expect(lib.closure(["a"]).map((d) => d.name)).toEqual(["b", "a"]);
    const a = lib.declarations.get("a")!;
    expect(a.statements[0]).toContainEqual({
      kind: "import",
      name: "create",
      from: "@bufbuild/protobuf",
      typeOnly: false,
      shorthand: false,
    });
    expect(a.statements[0]).toContainEqual({
      kind: "runtime",
      name: "b",
      shorthand: true,
    });
    // Not exported: only @public declarations keep `export`.
    expect(a.statements[0]!.join("")).not.toContain("export");
  });

  it("refuses a runtime module imported as a namespace", () => {
    expect(() =>
      library({
        "a.ts": 'import * as b from "./b.ts";\nexport const a = b.b;\n',
        "b.ts": "export const b = 1;\n",
      }),
    ).toThrow(/a\.ts:1: import runtime modules by name, not as a namespace/);
  });
});
