import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import module from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { collectGarbage } from "./memory.ts";
import { RuntimeLibrary, type Sources } from "./runtime-library.ts";
import { ts } from "./typescript.ts";

/**
 * The analysed runtime-inline/, kept on disk from one run to the next: in a
 * folder of Node's compile cache, when the launcher has enabled that cache
 * (bin/), and under the same switch (NODE_DISABLE_COMPILE_CACHE). Analysing
 * took a third of a second and more of every run; reading it back, a few
 * milliseconds.
 *
 * The analysis is a function of the runtime's sources, of the code that
 * analyses them and of the TypeScript compiler's version: a hash of all
 * three names the file, so that anything changed is analysed afresh. A
 * file that cannot be read or written is no reason to fail.
 */
export function loadRuntimeLibrary(
  dir: string,
  cacheDir: string | undefined = defaultCacheDir(),
): RuntimeLibrary {
  const sources = RuntimeLibrary.sources(dir);
  if (cacheDir === undefined) return analyse(sources);
  const file = join(cacheDir, `runtime-${key(sources)}.json`);
  try {
    return RuntimeLibrary.fromJSON(JSON.parse(readFileSync(file, "utf8")));
  } catch {
    // Not there yet, or not whole: analysed below.
  }
  const library = analyse(sources);
  try {
    mkdirSync(cacheDir, { recursive: true });
    // Renamed into place whole: a run reading it meanwhile sees all or none.
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, JSON.stringify(library));
    renameSync(partial, file);
  } catch {
    // A read-only or full disk: the next run analyses again.
  }
  return library;
}

function analyse(sources: Sources): RuntimeLibrary {
  const library = RuntimeLibrary.analyse(sources);
  // The compiler program behind the analysis is garbage now.
  collectGarbage();
  return library;
}

function defaultCacheDir(): string | undefined {
  // Node 22.8 and later; undefined when the compile cache is off.
  const nodeCache = module.getCompileCacheDir?.();
  return nodeCache === undefined
    ? undefined
    : join(nodeCache, "protoc-gen-connect-standalone");
}

function key(sources: Sources): string {
  const hash = createHash("sha256");
  // Each part after its length, so that no two lists of parts hash alike.
  const add = (part: string) => hash.update(`${part.length}:`).update(part);
  analysingCode.forEach(add);
  add(ts.version);
  for (const [name, text] of sources) {
    add(name);
    add(text);
  }
  return hash.digest("hex").slice(0, 32);
}

// This module and the analysis, as they run (from source or compiled).
const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const analysingCode = ["./runtime-cache", "./runtime-library"].map((m) =>
  readFileSync(fileURLToPath(new URL(m + extension, import.meta.url)), "utf8"),
);
