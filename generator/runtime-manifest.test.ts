import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildManifest, writeManifest } from "./build/build-manifest.ts";
import { packageRoot } from "./package-root.ts";
import type { RuntimeLibrary } from "./runtime-library.ts";
import {
  analyserFiles,
  loadRuntimeLibrary,
  manifestPath,
  sourceHash,
  type Manifest,
} from "./runtime-manifest.ts";

const roots: string[] = [];
afterEach(() => {
  for (const dir of roots.splice(0)) rmSync(dir, { recursive: true });
});

/** A checkout in miniature: the analyser's code, and a runtime of two modules. */
function checkout(): string {
  const root = mkdtempSync(join(tmpdir(), "cs-manifest-"));
  roots.push(root);
  for (const file of analyserFiles) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    cpSync(join(packageRoot(), file), join(root, file));
  }
  mkdirSync(join(root, "runtime-inline"));
  writeRuntime(
    root,
    "a.ts",
    'import { b } from "./b.ts";\nexport const a = b;\n',
  );
  writeRuntime(root, "b.ts", "export const b = 1;\n");
  return root;
}

function writeRuntime(root: string, name: string, text: string): void {
  writeFileSync(join(root, "runtime-inline", name), text);
}

function readManifestFile(root: string): Manifest {
  return JSON.parse(readFileSync(join(root, manifestPath), "utf8")) as Manifest;
}

/** Writes the checkout's manifest, its library changed by `tamper` but its hash kept. */
function writeTampered(root: string, tamper: (json: LibraryJSON) => void) {
  const { manifest } = buildManifest(root);
  const library = structuredClone(manifest.library) as LibraryJSON;
  tamper(library);
  writeManifest(join(root, manifestPath), { ...manifest, library });
}

type LibraryJSON = { declarations: { id: string; name: string }[] };

const ids = (library: RuntimeLibrary) => [...library.declarations.keys()];

describe("loadRuntimeLibrary", () => {
  it("reads a fresh manifest and analyses nothing", async () => {
    const root = checkout();
    // Analysing would find b; only the manifest names it c.
    writeTampered(root, (json) => (json.declarations[0]!.name = "c"));
    const library = await loadRuntimeLibrary(root);
    expect(library.declarations.get("a#a")?.name).toBe("c");
  });

  it("analyses the sources when the manifest is missing, and writes it", async () => {
    const root = checkout();
    expect(ids(await loadRuntimeLibrary(root))).toEqual(["a#a", "b#b"]);
    expect(readManifestFile(root).sourceHash).toBe(sourceHash(root));
  });

  it("detects a manifest older than the runtime's sources", async () => {
    const root = checkout();
    writeTampered(root, (json) => (json.declarations[0]!.name = "c"));
    writeRuntime(root, "b.ts", "export const b = 1;\nexport const d = 2;\n");
    const library = await loadRuntimeLibrary(root);
    expect(ids(library)).toEqual(["a#a", "b#b", "b#d"]);
    expect(library.declarations.get("a#a")?.name).toBe("a");
    // Rewritten for the next run.
    expect(readManifestFile(root).sourceHash).toBe(sourceHash(root));
  });

  it("detects a manifest older than the analyser's code", async () => {
    const root = checkout();
    writeTampered(root, (json) => (json.declarations[0]!.name = "c"));
    appendFileSync(join(root, analyserFiles[0]!), "// changed\n");
    const library = await loadRuntimeLibrary(root);
    expect(library.declarations.get("a#a")?.name).toBe("a");
  });

  it("takes the manifest as it is where the package is installed", async () => {
    const root = checkout();
    writeTampered(root, (json) => (json.declarations[0]!.name = "c"));
    rmSync(join(root, "runtime-inline"), { recursive: true });
    const library = await loadRuntimeLibrary(root);
    expect(library.declarations.get("a#a")?.name).toBe("c");
    rmSync(join(root, manifestPath));
    await expect(loadRuntimeLibrary(root)).rejects.toThrow(
      /runtime-manifest\.json is missing.*npm run build/,
    );
  });
});

describe("buildManifest", () => {
  it("fails on a rule of runtime-inline/README.md, naming the file and line", () => {
    const root = checkout();
    writeRuntime(root, "b.ts", "export const b = 1;\nconsole.log(b);\n");
    expect(() => buildManifest(root)).toThrow(
      "runtime-inline: b.ts:2: only declarations may appear at the top level",
    );
  });

  it("analyses the repository's runtime", () => {
    const { manifest, library } = buildManifest(packageRoot());
    expect(manifest.sourceHash).toBe(sourceHash(packageRoot()));
    expect(library.entryPoints.size).toBeGreaterThan(0);
  });
});
