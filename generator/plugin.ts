import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createEcmaScriptPlugin } from "@bufbuild/protoplugin";
import { emitFiles } from "./emit-service.ts";
import { parseOptions } from "./options.ts";
import { packageRoot } from "./package-root.ts";
import { loadRuntimeLibrary } from "./runtime-cache.ts";
import { transpile } from "./transpile.ts";

const root = packageRoot();
const { version } = JSON.parse(
  readFileSync(join(root, "package.json"), "utf8"),
) as {
  version: string;
};

/** The plugin; its output is not yet formatted (see format.ts). */
export const plugin = createEcmaScriptPlugin({
  name: "protoc-gen-connect-standalone",
  version: `v${version}`,
  parseOptions,
  generateTs(schema) {
    emitFiles(schema, loadRuntimeLibrary(join(root, "runtime-inline")));
  },
  // js and dts with protoplugin's compiler and its lib files, whatever
  // `typescript` the project has (see transpile.ts).
  transpile,
});
