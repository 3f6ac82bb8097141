import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type * as TS from "typescript";

// Set by load(): the folder of the compiler's lib files (lib.*.d.ts).
let libFolder: string;

/**
 * The TypeScript compiler API, for target=js and dts (and names.ts's
 * identifier checks). protoplugin has loaded a compiler already (its own,
 * pinned version): that instance serves. Loading a second one took a third
 * of a second and some 40 MB.
 *
 * Never the `typescript` a user's project hoists: that may be any version,
 * TypeScript 7 (a native compiler, without the API or the lib files) or none.
 * (The runtime's analysis is another matter: it runs when the package is
 * built, with ts-morph's compiler; see generator/build/.)
 */
export const ts: typeof TS = load();

function load(): typeof TS {
  const fromHere = createRequire(import.meta.url);
  // Resolved from protoplugin's folder, the compiler is the very module
  // protoplugin imported, already evaluated.
  const fromProtoplugin = createRequire(
    fromHere.resolve("@bufbuild/protoplugin"),
  );
  const path = fromProtoplugin.resolve("typescript");
  libFolder = dirname(path);
  return fromProtoplugin(path) as typeof TS;
}

function isLibFile(name: string): boolean {
  return name.startsWith("lib.") && /\.d\.([^.]+\.)?[cm]?ts$/i.test(name);
}

function readLibFolder(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(dir).filter(isLibFile).sort()) {
    files.set(name, readFileSync(join(dir, name), "utf8"));
  }
  return files;
}

/**
 * Every `lib.*.d.ts` of the compiler `ts` (the same set @typescript/vfs's
 * createDefaultMapFromNodeModules reads, but from the compiler's own folder,
 * not from wherever `typescript` resolves to from @typescript/vfs).
 */
export function libFiles(): Map<string, string> {
  const files = readLibFolder(libFolder);
  if (files.size === 0) {
    throw new Error(
      `TypeScript ${ts.version} came without its lib files (lib.*.d.ts)`,
    );
  }
  return files;
}
