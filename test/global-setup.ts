import { rmSync } from "node:fs";
import { join } from "node:path";
import { bufGenerate, repoRoot } from "./support/generate.ts";

/** Generates the fixtures once for the end-to-end tests, with .ts imports so Node and vitest load them directly. */
export default function setup(): void {
  const out = join(repoRoot, "test/gen");
  rmSync(out, { recursive: true, force: true });
  bufGenerate(out, "import_extension=ts");
}
