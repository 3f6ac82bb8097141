// Generates what the tests and the demo import (test/gen, examples/gen), so
// that tsc can typecheck them before vitest runs. Part of `npm test`.
// conformance/gen is committed (the conformance programs run right after
// `npm ci`) and regenerated here too, so that it keeps up with the plugin.
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
execFileSync(
  join(repoRoot, "node_modules/.bin/buf"),
  ["generate", "conformance", "--template", "conformance/buf.gen.yaml"],
  {
    cwd: repoRoot,
    stdio: "inherit",
    env: {
      ...process.env,
      PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env["PATH"] ?? ""}`,
    },
  },
);
// bench/gen, so that tsc can typecheck bench/ (`npm run bench` regenerates it
// itself before measuring).
execFileSync(
  join(repoRoot, "node_modules/.bin/buf"),
  ["generate", "bench", "--template", "bench/buf.gen.yaml"],
  {
    cwd: repoRoot,
    stdio: "inherit",
    env: {
      ...process.env,
      PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env["PATH"] ?? ""}`,
    },
  },
);
