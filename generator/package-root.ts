import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package's root folder, found from this module whether it runs from
 * source (generator/) or compiled (dist/generator/): the nearest folder
 * above with the package's package.json. (Not runtime-inline/: the package
 * ships without it, and the build puts a dist/runtime-inline/ of its own.)
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!isPackageRoot(dir)) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`${packageName}: cannot find its package.json`);
    }
    dir = parent;
  }
  return dir;
}

const packageName = "protoc-gen-connect-standalone";

function isPackageRoot(dir: string): boolean {
  const file = join(dir, "package.json");
  if (!existsSync(file)) return false;
  try {
    return (
      (JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name ===
      packageName
    );
  } catch {
    return false;
  }
}
