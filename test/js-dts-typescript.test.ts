import { execFileSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fixturesDir, repoRoot } from "./support/generate.ts";

/**
 * target=js+dts in a user's project, whatever `typescript` it hoists. npm
 * puts @typescript/vfs (protoplugin's dependency, with a peer dependency on
 * any `typescript`) at the top of node_modules, next to the project's own
 * `typescript`, and protoplugin's pinned compiler below protoplugin. The
 * project here is arranged that way, with copies where a module's location
 * decides what it resolves (our package, protoplugin, vfs) and links to the
 * repo's packages elsewhere; its top-level `typescript` is TypeScript 7 in
 * one case and missing in the other. Our package sits beside node_modules,
 * not in it, so that Node runs its sources as they are; it resolves its
 * dependencies from the project's node_modules all the same.
 */

const work = mkdtempSync(join(tmpdir(), "cs-js-dts-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const repoModules = join(repoRoot, "node_modules");
const project = join(work, "project");
const modules = join(project, "node_modules");
const pkg = join(project, "protoc-gen-connect-standalone");

function link(name: string, target = join(repoModules, name)): void {
  mkdirSync(dirname(join(modules, name)), { recursive: true });
  symlinkSync(target, join(modules, name));
}

function copy(from: string, to: string): void {
  cpSync(from, to, {
    recursive: true,
    filter: (f) => !f.endsWith(".test.ts") && !f.endsWith("/node_modules"),
  });
}

// Our package from source, as a checkout has it: with runtime-inline/, which
// it analyses (with ts-morph, linked below) for want of a fresh manifest.
for (const entry of [
  "package.json",
  "bin",
  "generator",
  "templates",
  "runtime-inline",
]) {
  copy(join(repoRoot, entry), join(pkg, entry));
}
writeFileSync(
  join(project, "package.json"),
  JSON.stringify({ private: true, type: "module" }),
);
// protoplugin, with its own compiler (5.4.5, pinned) below it.
const protoplugin = join(modules, "@bufbuild/protoplugin");
copy(join(repoModules, "@bufbuild/protoplugin"), protoplugin);
mkdirSync(join(protoplugin, "node_modules"));
symlinkSync(
  join(repoModules, "@bufbuild/protoplugin/node_modules/typescript"),
  join(protoplugin, "node_modules/typescript"),
);
copy(join(repoModules, "@typescript/vfs"), join(modules, "@typescript/vfs"));
// Copied, not linked, so that it finds the project's protoplugin as when installed.
copy(
  join(repoModules, "@bufbuild/protoc-gen-es"),
  join(modules, "@bufbuild/protoc-gen-es"),
);
for (const name of ["@bufbuild/protobuf", "prettier", "ts-morph"]) link(name);

// TypeScript 7 as `npm i -D typescript` installs it, less the native
// compiler (an optional dependency per platform): its package.json, and an
// entry point that names the version. No compiler API, no lib.*.d.ts.
const typescript7 = join(work, "typescript-7");
mkdirSync(join(typescript7, "lib"), { recursive: true });
writeFileSync(
  join(typescript7, "package.json"),
  JSON.stringify({
    name: "typescript",
    version: "7.0.2",
    type: "module",
    bin: { tsc: "./bin/tsc" },
    exports: {
      "./package.json": "./package.json",
      ".": "./lib/version.cjs",
    },
  }),
);
writeFileSync(
  join(typescript7, "lib/version.cjs"),
  'const { version } = require("../package.json");\nexports.version = version;\nexports.versionMajorMinor = "7.0";\n',
);

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

function contents(dir: string): Record<string, string> {
  return Object.fromEntries(
    listFiles(dir).map((f) => [f, readFileSync(join(dir, f), "utf8")]),
  );
}

/** `buf generate` of the Eliza fixture with target=js+dts, by the plugin at `pkgDir`. */
function generate(name: string, pkgDir = pkg): Record<string, string> {
  const out = join(work, name);
  const template = join(work, `${name}.yaml`);
  writeFileSync(
    template,
    [
      "version: v2",
      "plugins:",
      `  - local: ${JSON.stringify(join(pkgDir, "bin/protoc-gen-connect-standalone"))}`,
      `    out: ${JSON.stringify(out)}`,
      // With health: its _pb files come from protoc-gen-es, run in process.
      "    opt: target=js+dts,health=true",
      "",
    ].join("\n"),
  );
  const bin = join(repoModules, ".bin");
  try {
    execFileSync(
      join(bin, "buf"),
      ["generate", "--template", template, "--path", "eliza"],
      {
        cwd: fixturesDir,
        // The pinned Node, which runs the package's TypeScript sources.
        env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
  } catch (e) {
    throw new Error(
      String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 2000),
    );
  }
  return contents(out);
}

describe("target=js+dts whatever typescript the project hoists", () => {
  // What the repo's own install (TypeScript 5.9 at the top) generates.
  const reference = generate("repo", repoRoot);

  it("has a reference with the services' .js and .d.ts, and health's messages", () => {
    expect(Object.keys(reference)).toEqual([
      "eliza/v1/eliza.ElizaService.d.ts",
      "eliza/v1/eliza.ElizaService.js",
      "grpc/health/v1/health.Health.d.ts",
      "grpc/health/v1/health.Health.js",
      "grpc/health/v1/health_pb.d.ts",
      "grpc/health/v1/health_pb.js",
    ]);
  });

  it("generates the same files with TypeScript 7 at the top", () => {
    link("typescript", typescript7);
    try {
      expect(generate("with-typescript-7")).toEqual(reference);
    } finally {
      rmSync(join(modules, "typescript"));
    }
  });

  it("generates the same files with no top-level typescript", () => {
    expect(generate("without-typescript")).toEqual(reference);
  });
});
