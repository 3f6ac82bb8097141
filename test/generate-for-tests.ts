// Generates what the tests and the demo import (test/gen, examples/gen), so
// that tsc can typecheck them before vitest runs. Part of `npm test`.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { generateTestFixtures, repoRoot } from "./support/generate.ts";

generateTestFixtures();
execFileSync(
  join(repoRoot, "node_modules/.bin/buf"),
  ["generate", "examples", "--template", "examples/buf.gen.yaml"],
  {
    cwd: repoRoot,
    stdio: "inherit",
    env: {
      ...process.env,
      PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env["PATH"] ?? ""}`,
    },
  },
);
