/**
 * `node generator/build/build-manifest.ts` (the last step of `npm run build`,
 * and so of `npm pack`): analyses runtime-inline/ with ts-morph and writes
 * what it finds to dist/runtime-manifest.json.
 *
 * Why it exists: every generation used to parse and type-check the runtime
 * (about a second; an on-disk cache hid it on later runs), and so needed a
 * TypeScript compiler and the runtime's sources wherever the plugin was
 * installed. The analysis depends on nothing but those sources and the
 * analyser, both fixed when the package is packed: done once there, it
 * leaves the installed plugin a JSON file to read, ts-morph a devDependency
 * and runtime-inline/ out of the package. The analysis's rules
 * (runtime-inline/README.md) fail the build, with the file and line.
 *
 * In a checkout, the plugin runs this module itself when the manifest is
 * missing or stale (see generator/runtime-manifest.ts).
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { ts } from "ts-morph";
import { packageRoot } from "../package-root.ts";
import type { RuntimeLibrary } from "../runtime-library.ts";
import {
  manifestFormat,
  manifestPath,
  readSources,
  runtimeFolder,
  sourceHash,
  type Manifest,
} from "../runtime-manifest.ts";
import { analyseRuntime } from "./analyse-runtime.ts";

/** Analyses the runtime of the checkout at `root`. */
export function buildManifest(root: string): {
  manifest: Manifest;
  library: RuntimeLibrary;
} {
  // Hashed first: a source changed during the analysis makes the manifest
  // stale, not wrong and fresh.
  const hash = sourceHash(root);
  const library = analyseRuntime(readSources(join(root, runtimeFolder)));
  return {
    manifest: {
      format: manifestFormat,
      sourceHash: hash,
      typescript: ts.version,
      library: library.toJSON(),
    },
    library,
  };
}

/**
 * Writes a manifest whole (renamed into place: a run reading it meanwhile
 * sees all or none). From a generation run, a file that cannot be written
 * (a read-only checkout) is no reason to fail: the next run analyses again.
 */
export function writeManifest(
  file: string,
  manifest: Manifest,
  { required = false } = {},
): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, JSON.stringify(manifest));
    renameSync(partial, file);
  } catch (e) {
    if (required) throw e;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const root = packageRoot();
  try {
    const { manifest, library } = buildManifest(root);
    writeManifest(join(root, manifestPath), manifest, { required: true });
    process.stdout.write(
      `${manifestPath}: ${library.declarations.size} declarations, ${library.entryPoints.size} entry points (TypeScript ${ts.version})\n`,
    );
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
