import { refsOf, type Code, type EntryPoint } from "../templates/code.ts";
import type { RuntimeDeclaration, RuntimeLibrary } from "./runtime-library.ts";

/** The part of the runtime a piece of generated code needs. */
export interface Selection {
  /** The entry points the code names, with the id of each one's declaration, in order of first use. */
  readonly entryPoints: ReadonlyMap<EntryPoint, string>;
  /** Every declaration they reach, definitions before their top-level uses. */
  readonly declarations: readonly RuntimeDeclaration[];
}

/** Step one of writing a file: which runtime declarations `code` reaches. */
export function selectRuntime(library: RuntimeLibrary, code: Code): Selection {
  const entryPoints = new Map<EntryPoint, string>();
  for (const ref of refsOf(code)) {
    if (ref.kind === "runtime" && !entryPoints.has(ref.name)) {
      entryPoints.set(ref.name, library.entryPoint(ref.name));
    }
  }
  return {
    entryPoints,
    declarations: library.closure(entryPoints.values()),
  };
}

/** The declarations of several selections, each once, in the library's order. */
export function unionOf(
  library: RuntimeLibrary,
  selections: readonly Selection[],
): Selection {
  const entryPoints = new Map<EntryPoint, string>();
  for (const s of selections) {
    for (const [name, id] of s.entryPoints) entryPoints.set(name, id);
  }
  return {
    entryPoints,
    declarations: library.closure(entryPoints.values()),
  };
}
