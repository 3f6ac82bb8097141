import { createRequire } from "node:module";
import type * as TS from "typescript";

/**
 * The TypeScript compiler API, for the runtime's analysis. protoplugin has
 * loaded a compiler already (it transpiles for target=js and dts): that
 * instance serves. Loading a second one, ts-morph's, took a third of a
 * second and some 40 MB.
 */
export const ts: typeof TS = load();

function load(): typeof TS {
  const fromHere = createRequire(import.meta.url);
  try {
    // Resolved from protoplugin's folder, the compiler is the very module
    // protoplugin imported, already evaluated.
    const fromProtoplugin = createRequire(
      fromHere.resolve("@bufbuild/protoplugin"),
    );
    return fromProtoplugin("typescript") as typeof TS;
  } catch {
    // A protoplugin without a compiler of its own: ts-morph's.
    return (fromHere("ts-morph") as { ts: typeof TS }).ts;
  }
}
