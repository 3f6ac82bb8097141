import { describe, expect, it } from "vitest";
import { nameRuntime } from "./naming.ts";
import { analyseRuntime } from "./build/analyse-runtime.ts";

/** The declarations reachable from `root` in modules given as text. */
function select(modules: Record<string, string>, root: string) {
  const library = analyseRuntime(Object.entries(modules));
  return library.closure([root]);
}

describe("nameRuntime", () => {
  it("keeps plain names, and renames a private clash in print order", () => {
    const decls = select(
      {
        "a.ts":
          'import { b } from "./b.ts";\nconst helper = 1;\nexport const a = () => helper + b;\n',
        "b.ts": "const helper = 2;\nexport const b = helper;\n",
      },
      "a#a",
    );
    const names = nameRuntime(decls);
    expect(names.declaration("b#helper")).toBe("helper");
    expect(names.declaration("a#helper")).toBe("helper$1");
    expect(names.declaration("a#a")).toBe("a");
  });

  it("never renames an exported public declaration; private ones give way", () => {
    const decls = select(
      {
        "a.ts":
          'import { Code } from "./b.ts";\nconst Code$ = 1;\nexport const a = () => Code + Code$;\n',
        "b.ts": "/** @public */\nexport const Code = 3;\n",
        "c.ts": "",
      },
      "a#a",
    );
    const names = nameRuntime(decls, { identifiers: ["Code"] });
    // A method called Code is a member name: the public Code keeps its name.
    expect(names.declaration("b#Code")).toBe("Code");
    expect(names.shadowed).toEqual([]);
  });

  it("hides a public declaration whose name the service declares", () => {
    const decls = select(
      { "a.ts": "/** @public */\nexport interface HttpClient {}\n" },
      "a#HttpClient",
    );
    const names = nameRuntime(decls, { declared: ["HttpClient"] });
    expect(names.declaration("a#HttpClient")).toBe("HttpClient$1");
    expect(names.shadowed.map((d) => d.id)).toEqual(["a#HttpClient"]);
  });

  it("keeps import aliases, shares equal imports, and separates clashing ones", () => {
    const decls = select(
      {
        "a.ts": [
          'import { connect as http2Connect } from "node:http2";',
          'import { b } from "./b.ts";',
          'import { c } from "./c.ts";',
          "export const a = () => [http2Connect, b, c];",
          "",
        ].join("\n"),
        "b.ts":
          'import type { OutgoingHttpHeaders } from "node:http";\nexport const b = (h: OutgoingHttpHeaders) => h;\n',
        "c.ts":
          'import type { OutgoingHttpHeaders } from "node:http2";\nimport { connect as http2Connect } from "node:http2";\nexport const c = (h: OutgoingHttpHeaders) => [h, http2Connect];\n',
      },
      "a#a",
    );
    const names = nameRuntime(decls);
    expect(names.imports).toEqual([
      {
        from: "node:http",
        name: "OutgoingHttpHeaders",
        local: "OutgoingHttpHeaders",
        typeOnly: true,
      },
      {
        from: "node:http2",
        name: "OutgoingHttpHeaders",
        local: "OutgoingHttpHeaders$1",
        typeOnly: true,
      },
      {
        from: "node:http2",
        name: "connect",
        local: "http2Connect",
        typeOnly: false,
      },
    ]);
  });

  it("never shadows a global the runtime uses", () => {
    const decls = select(
      {
        "a.ts":
          'import { b } from "./b.ts";\nconst Headers = 1;\nexport const a = () => Headers + b;\n',
        "b.ts": "export const b = () => new Headers();\n",
      },
      "a#a",
    );
    expect(nameRuntime(decls).declaration("a#Headers")).toBe("Headers$1");
  });

  it("keeps private names clear of the service's identifiers", () => {
    const decls = select({ "a.ts": "export const config = 1;\n" }, "a#config");
    const names = nameRuntime(decls, { identifiers: ["config"] });
    expect(names.declaration("a#config")).toBe("config$1");
  });

  it("gives the file's own imports their names, or fails on a clash", () => {
    const decls = select(
      { "a.ts": "/** @public */\nexport type MessageInitShape = 1;\n" },
      "a#MessageInitShape",
    );
    expect(() =>
      nameRuntime(decls, {
        imports: [
          {
            from: "@bufbuild/protobuf",
            name: "MessageInitShape",
            local: "MessageInitShape",
            typeOnly: true,
          },
        ],
      }),
    ).not.toThrow();
    expect(() =>
      nameRuntime(decls, {
        declared: ["X"],
        imports: [{ from: "x", name: "X", local: "X", typeOnly: true }],
      }),
    ).toThrow(/the template's import "X" clashes/);
  });
});
