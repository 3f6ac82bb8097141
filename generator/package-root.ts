import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package's root folder, found from this module whether it runs from
 * source (generator/) or compiled (dist/generator/).
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "runtime-inline"))) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        "protoc-gen-connect-standalone: cannot find its runtime-inline folder",
      );
    }
    dir = parent;
  }
  return dir;
}
