import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { packageRoot } from "./package-root.ts";
import { loadRuntimeLibrary } from "./runtime-cache.ts";
import { RuntimeLibrary } from "./runtime-library.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "cs-runtime-cache-"));
  dirs.push(dir);
  return dir;
}

function runtime(b: string): string {
  const dir = tempDir();
  writeFileSync(
    join(dir, "a.ts"),
    'import { b } from "./b.ts";\nexport const a = () => b;\n',
  );
  writeFileSync(join(dir, "b.ts"), `export const b = ${b};\n`);
  return dir;
}

const json = (library: RuntimeLibrary) => JSON.stringify(library);

describe("loadRuntimeLibrary", () => {
  it("gives back what the analysis gives, for the whole runtime", () => {
    const dir = join(packageRoot(), "runtime-inline");
    const cache = tempDir();
    const analysed = RuntimeLibrary.load(dir);
    expect(json(loadRuntimeLibrary(dir, cache))).toBe(json(analysed));
    expect(readdirSync(cache)).toHaveLength(1);
    // Read back, with every kind of piece and the dependency sets.
    const cached = loadRuntimeLibrary(dir, cache);
    expect(json(cached)).toBe(json(analysed));
    const root = analysed.entryPoint("createServiceHandler");
    expect(cached.closure([root])).toEqual(analysed.closure([root]));
  });

  it("reads the analysis from the cache once written", () => {
    const dir = runtime("1");
    const cache = tempDir();
    loadRuntimeLibrary(dir, cache);
    const [file] = readdirSync(cache);
    const written = JSON.parse(readFileSync(join(cache, file!), "utf8"));
    written.declarations[0].module = "from the cache";
    writeFileSync(join(cache, file!), JSON.stringify(written));
    expect(
      [...loadRuntimeLibrary(dir, cache).declarations.values()][0]!.module,
    ).toBe("from the cache");
  });

  it("analyses afresh what the cache cannot give", () => {
    const dir = runtime("1");
    const cache = tempDir();
    loadRuntimeLibrary(dir, cache);
    const [file] = readdirSync(cache);
    writeFileSync(join(cache, file!), '[{"name": "a"}');
    expect(json(loadRuntimeLibrary(dir, cache))).toBe(
      json(RuntimeLibrary.load(dir)),
    );
    // Changed sources are another analysis.
    writeFileSync(join(dir, "b.ts"), "export const b = 2;\n");
    expect(json(loadRuntimeLibrary(dir, cache))).toBe(
      json(RuntimeLibrary.load(dir)),
    );
    expect(readdirSync(cache)).toHaveLength(2);
  });

  it("keeps nothing without a cache folder", () => {
    const dir = runtime("1");
    expect(json(loadRuntimeLibrary(dir, undefined))).toBe(
      json(RuntimeLibrary.load(dir)),
    );
  });
});
