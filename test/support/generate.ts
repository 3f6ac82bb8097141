import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "../..",
);
export const fixturesDir = join(repoRoot, "fixtures");
const bin = join(repoRoot, "node_modules/.bin");

/**
 * Runs `buf generate` over `inputDir` with protoc-gen-es and this plugin (as
 * a local plugin, the way users run it), writing into `outDir`. `plugin`:
 * the plugin's executable (this checkout's, unless an installed one).
 */
export function bufGenerate(
  outDir: string,
  options: string,
  inputDir = fixturesDir,
  plugin = join(repoRoot, "bin/protoc-gen-connect-standalone"),
): void {
  const work = mkdtempSync(join(tmpdir(), "cs-gen-"));
  try {
    const template = join(work, "buf.gen.yaml");
    const esOpt = options.includes("import_extension=ts")
      ? "target=ts,import_extension=ts,erasable_syntax=true"
      : options.includes("import_extension=js")
        ? "target=ts,import_extension=js,erasable_syntax=true"
        : "target=ts,erasable_syntax=true";
    writeFileSync(
      template,
      [
        "version: v2",
        "plugins:",
        "  - local: protoc-gen-es",
        `    out: ${JSON.stringify(outDir)}`,
        `    opt: ${JSON.stringify(esOpt)}`,
        "    strategy: all",
        `  - local: ${JSON.stringify(plugin)}`,
        `    out: ${JSON.stringify(outDir)}`,
        ...(options === "" ? [] : [`    opt: ${JSON.stringify(options)}`]),
        "    strategy: all",
        "",
      ].join("\n"),
    );
    execFileSync(join(bin, "buf"), ["generate", "--template", template], {
      cwd: inputDir,
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Generates the fixtures for the end-to-end tests into test/gen, with .ts imports so Node and vitest load them directly. */
export function generateTestFixtures(): void {
  const out = join(repoRoot, "test/gen");
  rmSync(out, { recursive: true, force: true });
  bufGenerate(out, "import_extension=ts");
  // The same with one runtime file for all services (runtime=shared).
  const shared = join(repoRoot, "test/gen-shared");
  rmSync(shared, { recursive: true, force: true });
  bufGenerate(shared, "import_extension=ts,runtime=shared");
  // The health and reflection services beside the example's Eliza.
  const ops = join(repoRoot, "test/gen-ops");
  rmSync(ops, { recursive: true, force: true });
  bufGenerate(
    ops,
    "import_extension=ts,health=true,reflection=true",
    join(repoRoot, "examples"),
  );
}
