import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createEcmaScriptPlugin } from "@bufbuild/protoplugin";
import { emitFiles } from "./emit-service.ts";
import { parseOptions } from "./options.ts";
import { packageRoot } from "./package-root.ts";
import type { RuntimeLibrary } from "./runtime-library.ts";
import { loadRuntimeLibrary } from "./runtime-manifest.ts";
import { transpile } from "./transpile.ts";

const root = packageRoot();
const { version } = JSON.parse(
  readFileSync(join(root, "package.json"), "utf8"),
) as {
  version: string;
};

let library: RuntimeLibrary | undefined;

/**
 * Reads the analysed runtime (see runtime-manifest.ts), once, before the
 * plugin runs: protoplugin's run is synchronous, and analysing from source
 * in a checkout loads its analyser with import().
 */
export async function loadRuntime(): Promise<void> {
  library ??= await loadRuntimeLibrary(root);
}

/**
 * The plugin; its output is not yet formatted (see format.ts). loadRuntime
 * comes first.
 */
export const plugin = createEcmaScriptPlugin({
  name: "protoc-gen-connect-standalone",
  version: `v${version}`,
  parseOptions,
  generateTs(schema) {
    if (library === undefined) throw new Error("loadRuntime() comes first");
    emitFiles(schema, library);
  },
  // js and dts with protoplugin's compiler and its lib files, whatever
  // `typescript` the project has (see transpile.ts).
  transpile,
});
