import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { collectGarbage } from "./performance/memory.ts";
import { RuntimeLibrary, type Sources } from "./runtime-library.ts";

/**
 * The runtime as the plugin uses it: the analysis of runtime-inline/, made
 * when the package is built (generator/build/build-manifest.ts, run by
 * `npm run build` and so by `npm pack`) and shipped as
 * dist/runtime-manifest.json. Generating reads that file and parses no
 * TypeScript; an installed package has no runtime-inline/ at all (the
 * declarations' text is in the manifest).
 *
 * A checkout (tests, the demo, conformance) has the sources, and a manifest
 * that may be missing or older than they are. The manifest names a hash of
 * the sources and of the code that analyses them: when that is not the
 * hash of the checkout's files, the runtime is analysed afresh (the
 * analyser, and ts-morph, a devDependency, loaded only then), and the
 * manifest rewritten for the next run. A stale manifest is never used.
 */
export async function loadRuntimeLibrary(
  root: string,
  file: string = join(root, manifestPath),
): Promise<RuntimeLibrary> {
  if (!existsSync(join(root, runtimeFolder))) {
    // Installed: the manifest is all there is.
    return RuntimeLibrary.fromJSON(readInstalledManifest(file).library);
  }
  const hash = sourceHash(root);
  const manifest = readManifest(file);
  if (manifest?.sourceHash === hash) {
    return RuntimeLibrary.fromJSON(manifest.library);
  }
  const { buildManifest, writeManifest } =
    await import("./build/build-manifest.ts");
  const built = buildManifest(root);
  // The compiler program behind the analysis is garbage now.
  collectGarbage();
  writeManifest(file, built.manifest);
  return built.library;
}

/** The manifest's path in the package. */
export const manifestPath = "dist/runtime-manifest.json";

/** The runtime's sources, in a checkout only. */
export const runtimeFolder = "runtime-inline";

/**
 * The code whose change may change the analysis, besides the runtime's
 * sources (paths from the package root, as in a checkout).
 */
export const analyserFiles = [
  "generator/runtime-library.ts",
  "generator/runtime-manifest.ts",
  "generator/build/analyse-runtime.ts",
  "generator/build/build-manifest.ts",
];

/** Bumped when the manifest's shape changes. */
export const manifestFormat = 1;

export interface Manifest {
  readonly format: typeof manifestFormat;
  /** See sourceHash. */
  readonly sourceHash: string;
  /** The TypeScript compiler that analysed the runtime (ts-morph's). */
  readonly typescript: string;
  /** RuntimeLibrary.toJSON(). */
  readonly library: unknown;
}

/**
 * A hash of what the analysis depends on, in a checkout: the runtime's
 * sources, the analyser's code (analyserFiles) and ts-morph's version.
 * Reading some sixty files takes a few milliseconds; analysing them, about
 * a second.
 */
export function sourceHash(root: string): string {
  const hash = createHash("sha256");
  // Each part after its length, so that no two lists of parts hash alike.
  const add = (part: string) => hash.update(`${part.length}:`).update(part);
  add(`format ${manifestFormat}`);
  add(`ts-morph ${tsMorphVersion(root)}`);
  for (const name of analyserFiles) {
    add(name);
    add(readFileSync(join(root, name), "utf8"));
  }
  for (const [name, text] of readSources(join(root, runtimeFolder))) {
    add(name);
    add(text);
  }
  return hash.digest("hex");
}

/**
 * The modules of `dir` and its folders (tests excluded), by path relative
 * to `dir` with `/` between folders ("server/router.ts").
 */
export function readSources(dir: string): Sources {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => f.split("\\").join("/"))
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .sort()
    .map((f) => [f, readFileSync(join(dir, f), "utf8")] as const);
}

function tsMorphVersion(root: string): string {
  try {
    const main = createRequire(join(root, "package.json")).resolve("ts-morph");
    const pkg = join(dirname(main), "..", "package.json");
    return (JSON.parse(readFileSync(pkg, "utf8")) as { version: string })
      .version;
  } catch {
    return "none";
  }
}

/** The manifest in `file`, or undefined if it is missing or not whole. */
function readManifest(file: string): Manifest | undefined {
  try {
    const manifest = JSON.parse(readFileSync(file, "utf8")) as Manifest;
    return manifest.format === manifestFormat ? manifest : undefined;
  } catch {
    return undefined;
  }
}

function readInstalledManifest(file: string): Manifest {
  const manifest = readManifest(file);
  if (manifest === undefined) {
    throw new Error(
      `${file} is missing or unreadable, and there is no ${runtimeFolder}/ to analyse: ` +
        "the package was packed without `npm run build`",
    );
  }
  return manifest;
}
