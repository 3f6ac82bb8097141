import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

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
  const command = bufGenerateCommand(outDir, options, inputDir, plugin);
  try {
    execFileSync(command.file, command.args, command.options);
  } finally {
    command.cleanup();
  }
}

/**
 * bufGenerate without blocking the test's process. A test file that
 * generates for long in one synchronous stretch keeps its vitest worker
 * from reading the runner's replies: past 60 s (vitest's fixed RPC
 * timeout, easily reached on a loaded 2-core machine) the run fails with
 * "Timeout calling onTaskUpdate" although every test passed.
 */
export async function bufGenerateAsync(
  outDir: string,
  options: string,
  inputDir = fixturesDir,
  plugin = join(repoRoot, "bin/protoc-gen-connect-standalone"),
): Promise<void> {
  const command = bufGenerateCommand(outDir, options, inputDir, plugin);
  try {
    await promisify(execFile)(command.file, command.args, command.options);
  } finally {
    command.cleanup();
  }
}

/** The buf command of bufGenerate, with its template in a temporary directory. */
function bufGenerateCommand(
  outDir: string,
  options: string,
  inputDir: string,
  plugin: string,
) {
  const work = mkdtempSync(join(tmpdir(), "cs-gen-"));
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
  return {
    file: join(bin, "buf"),
    args: ["generate", "--template", template],
    options: {
      cwd: inputDir,
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
      stdio: ["ignore", "pipe", "pipe"] as ("ignore" | "pipe")[],
    },
    cleanup: () => rmSync(work, { recursive: true, force: true }),
  };
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
