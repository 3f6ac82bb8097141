// The layering of README.md's table, and no import cycles, checked over the
// imports of every module that generated files may carry (tests and
// entry-points.ts, which are never copied, are left out).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = dirname(fileURLToPath(import.meta.url));

/** What each folder may import, besides itself (README.md, "Layout"). */
const allowed: Readonly<Record<string, readonly string[]>> = {
  core: [],
  protocol: ["core"],
  server: ["core", "protocol"],
  client: ["core", "protocol"],
  node: ["core", "protocol", "server", "client"],
  web: ["core", "protocol", "server", "client"],
};

/**
 * Imports the table does not allow but the runtime has: Node's entry points
 * also offer the fetch ones (a NodeServiceHandler has `.fetch`, the HTTP/2
 * client falls back to fetch), which are plain web-standard code. Listed
 * edge by edge so that any other import of web/ from node/ fails.
 */
const exceptions: ReadonlySet<string> = new Set([
  "node/handler.ts -> web/handler.ts",
  "node/http2-client.ts -> web/fetch-client.ts",
]);

/** Module path relative to runtime-inline, with "/" -> what it imports. */
type ImportGraph = ReadonlyMap<string, readonly string[]>;

function runtimeModules(): string[] {
  return Object.keys(allowed).flatMap((folder) =>
    readdirSync(join(root, folder))
      .filter((name) => name.endsWith(".ts") && !name.endsWith(".test.ts"))
      .map((name) => `${folder}/${name}`),
  );
}

/**
 * The module specifiers of a module's import declarations, type-only ones
 * included: a type import still ties the layers together.
 */
export function importsOf(source: string): string[] {
  const file = ts.createSourceFile("m.ts", source, ts.ScriptTarget.Latest);
  return file.statements
    .filter(ts.isImportDeclaration)
    .map((statement) => (statement.moduleSpecifier as ts.StringLiteral).text);
}

/** Relative imports resolved against the importer; packages as they are. */
function resolveImport(from: string, specifier: string): string {
  return specifier.startsWith(".")
    ? posix.normalize(posix.join(posix.dirname(from), specifier))
    : specifier;
}

function readGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const module of runtimeModules()) {
    const source = readFileSync(join(root, module), "utf8");
    graph.set(
      module,
      importsOf(source).map((specifier) => resolveImport(module, specifier)),
    );
  }
  return graph;
}

/** The imports that break the table, as "from -> to: why". */
export function layoutViolations(graph: ImportGraph): string[] {
  const found: string[] = [];
  for (const [from, imports] of graph) {
    const folder = from.split("/")[0]!;
    for (const to of imports) {
      if (to.startsWith("node:")) {
        if (folder !== "node") {
          found.push(`${from} -> ${to}: node: built-ins only under node/`);
        }
        continue;
      }
      if (!graph.has(to) && to.includes(".ts")) {
        found.push(`${from} -> ${to}: not a runtime module`);
        continue;
      }
      if (!graph.has(to)) continue; // a package: the analyser vets those
      const target = to.split("/")[0]!;
      if (
        target !== folder &&
        !(allowed[folder] ?? []).includes(target) &&
        !exceptions.has(`${from} -> ${to}`)
      ) {
        found.push(`${from} -> ${to}: ${folder}/ may not import ${target}/`);
      }
    }
  }
  return found;
}

/**
 * An import cycle as the path around it (first module repeated last), or
 * undefined: a depth-first search that meets a module still on its stack.
 */
export function findCycle(graph: ImportGraph): string[] | undefined {
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const visit = (module: string): string[] | undefined => {
    if (onStack.has(module)) {
      return [...stack.slice(stack.indexOf(module)), module];
    }
    if (done.has(module)) return undefined;
    stack.push(module);
    onStack.add(module);
    for (const next of graph.get(module) ?? []) {
      if (!graph.has(next)) continue; // packages and built-ins
      const cycle = visit(next);
      if (cycle !== undefined) return cycle;
    }
    stack.pop();
    onStack.delete(module);
    done.add(module);
    return undefined;
  };
  for (const module of [...graph.keys()].sort()) {
    const cycle = visit(module);
    if (cycle !== undefined) return cycle;
  }
  return undefined;
}

describe("runtime-inline layout", () => {
  const graph = readGraph();

  it("reads every folder of the table", () => {
    for (const folder of Object.keys(allowed)) {
      expect(
        [...graph.keys()].some((m) => m.startsWith(`${folder}/`)),
        folder,
      ).toBe(true);
    }
    expect(graph.has("entry-points.ts")).toBe(false);
    expect([...graph.keys()].some((m) => m.endsWith(".test.ts"))).toBe(false);
  });

  it("imports only what README.md's table allows", () => {
    expect(layoutViolations(graph)).toEqual([]);
  });

  it("has no import cycle", () => {
    const cycle = findCycle(graph);
    expect(cycle?.join(" -> ")).toBeUndefined();
  });

  it("still needs each listed exception", () => {
    for (const edge of exceptions) {
      const [from = "", to = ""] = edge.split(" -> ");
      expect(graph.get(from), edge).toContain(to);
    }
  });
});

describe("importsOf", () => {
  it("reads value, type and side-effect imports, not exports or dynamic ones", () => {
    expect(
      importsOf(
        [
          'import { a } from "./a.ts";',
          'import type { B } from "../core/b.ts";',
          'import * as zlib from "node:zlib";',
          'import "./side.ts";',
          'export const c = await import("./dynamic.ts");',
          '// import { d } from "./comment.ts";',
        ].join("\n"),
      ),
    ).toEqual(["./a.ts", "../core/b.ts", "node:zlib", "./side.ts"]);
  });
});

describe("layoutViolations", () => {
  it("names a forbidden folder, a node: import outside node/, and an unknown module", () => {
    const graph = new Map([
      ["core/a.ts", ["protocol/p.ts", "node:zlib"]],
      ["protocol/p.ts", ["core/a.ts", "@bufbuild/protobuf"]],
      ["server/s.ts", ["server/missing.ts", "node/n.ts"]],
      ["node/n.ts", ["server/s.ts", "node:http2"]],
    ]);
    expect(layoutViolations(graph)).toEqual([
      "core/a.ts -> protocol/p.ts: core/ may not import protocol/",
      "core/a.ts -> node:zlib: node: built-ins only under node/",
      "server/s.ts -> server/missing.ts: not a runtime module",
      "server/s.ts -> node/n.ts: server/ may not import node/",
    ]);
  });
});

describe("findCycle", () => {
  it("finds a cycle and gives its path", () => {
    const graph = new Map([
      ["server/connect.ts", ["server/grpc.ts", "core/errors.ts"]],
      ["server/grpc.ts", ["server/stream.ts"]],
      ["server/stream.ts", ["server/connect.ts", "@bufbuild/protobuf"]],
      ["core/errors.ts", []],
    ]);
    expect(findCycle(graph)).toEqual([
      "server/connect.ts",
      "server/grpc.ts",
      "server/stream.ts",
      "server/connect.ts",
    ]);
  });

  it("finds a module importing itself", () => {
    expect(findCycle(new Map([["core/a.ts", ["core/a.ts"]]]))).toEqual([
      "core/a.ts",
      "core/a.ts",
    ]);
  });

  it("accepts a diamond, which is no cycle", () => {
    const graph = new Map([
      ["a.ts", ["b.ts", "c.ts"]],
      ["b.ts", ["d.ts"]],
      ["c.ts", ["d.ts"]],
      ["d.ts", []],
    ]);
    expect(findCycle(graph)).toBeUndefined();
  });
});
