// `npm run bench` (full: 3 rounds, median), `npm run bench -- --quick`
// (1 round, short windows, under two minutes), `--smoke` (tiny windows, a
// few workloads: what test/bench.test.ts runs).
//
// Generates bench/gen from bench/proto with the current plugin first, so
// the figures are always those of the code the plugin generates now; then
// runs every workload of workloads.ts with the generated server and client,
// connect-es and the floor, alternating; prints a table on stdout (progress
// on stderr) and writes bench/results.json. The bundle-size and code-
// generation measurements (bench/bundle.ts, bench/codegen.ts) run last, when
// present.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, platform, release } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "..");

const { values: options } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    only: { type: "string" },
    rounds: { type: "string" },
    warmup: { type: "string" },
    duration: { type: "string" },
    out: { type: "string" },
    "h1-load": { type: "string", default: "h2load" },
    "no-extras": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (options.help) {
  process.stdout.write(`npm run bench -- [options]
  --quick          1 round, 1.5 s windows (under two minutes)
  --smoke          a few workloads, short warm-ups, 0.3 s windows (the test's mode)
  --only a,b       only these workload ids (see bench/workloads.ts)
  --rounds N       rounds (default 3; quick and smoke 1)
  --warmup S       warm-up seconds before each window (default: 3 s on a
                   fresh process, 2 s on a warm one; quick 3 s and 0.5 s;
                   smoke 1 s and 0.5 s)
  --duration S     seconds per measured window (wrk rounds to whole seconds)
  --out PATH       where to write the JSON (default bench/results.json)
  --h1-load TOOL   HTTP/1.1 load generator: h2load (--h1, the default) or
                   wrk (bench/README.md says why h2load)
  --no-extras      skip bench/bundle.ts and bench/codegen.ts
`);
  process.exit(0);
}

const h1LoadOption = options["h1-load"];
if (h1LoadOption !== "h2load" && h1LoadOption !== "wrk") {
  throw new Error(`--h1-load must be h2load or wrk, not ${h1LoadOption}`);
}
const h1Load: "h2load" | "wrk" = h1LoadOption;

const started = performance.now();
const log = (line: string) =>
  process.stderr.write(
    `[${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}\n`,
  );

// 1. bench/gen, from the plugin as it is now.
log("generating bench/gen (buf generate bench --template bench/buf.gen.yaml)");
const bin = join(repoRoot, "node_modules/.bin");
execFileSync(
  join(bin, "buf"),
  ["generate", "bench", "--template", "bench/buf.gen.yaml"],
  {
    cwd: repoRoot,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
  },
);

// Everything below imports bench/gen, so it is loaded only now.
const { runWorkload, ServerPool } = await import("./run.ts");
const { workloads, smokeWorkloads, implDescriptions } =
  await import("./workloads.ts");
const { formatResults } = await import("./lib/report.ts");
const { detectPinning, pinSelf } = await import("./lib/pinning.ts");
const { clockTicksPerSecond, cpuSource, cpuResolutionMicros } =
  await import("./lib/procstat.ts");
const { h2loadVersion } = await import("./load/h2load.ts");
const { wrkVersion } = await import("./load/wrk.ts");

const mode = options.smoke ? "smoke" : options.quick ? "quick" : "full";
const number = (value: string | undefined, fallback: number) =>
  value === undefined ? fallback : Number(value);
const defaults = {
  full: { rounds: 3, firstWarmup: 3, warmup: 2, duration: 5 },
  // A fresh process needs about 3 s of load (connect-es the longest); a warm
  // one only needs the new workload's code paths compiled.
  quick: { rounds: 1, firstWarmup: 3, warmup: 0.5, duration: 1.5 },
  // Enough load before each window that a cold server (or a cold code
  // path: a new workload on a warm server) completes requests inside it,
  // even on a busy test machine: the test checks every window counted some.
  smoke: { rounds: 1, firstWarmup: 1, warmup: 0.5, duration: 0.3 },
}[mode];
const firstWarmup = number(options.warmup, defaults.firstWarmup);
// --warmup sets both, to the same value.
const warmup = options.warmup === undefined ? defaults.warmup : firstWarmup;

// Before pinSelf, which leaves this process one CPU.
const cores = availableParallelism();
const pinning = detectPinning();
pinSelf(pinning);
const [h2load, wrk] = await Promise.all([h2loadVersion(), wrkVersion()]);
const settings = {
  rounds: number(options.rounds, defaults.rounds),
  firstWarmupSeconds: firstWarmup,
  warmupSeconds: warmup,
  durationSeconds: number(options.duration, defaults.duration),
  tools: { h2load: h2load !== undefined, wrk: wrk !== undefined },
  h1Load,
  pinning,
  log,
};

const only = options.only?.split(",").map((s) => s.trim());
const selected = workloads.filter((w) =>
  only !== undefined
    ? only.includes(w.id)
    : mode === "smoke"
      ? smokeWorkloads.includes(w.id)
      : true,
);
if (only !== undefined && selected.length !== only.length) {
  const known = workloads.map((w) => w.id).join(", ");
  throw new Error(`--only: unknown workload id; known: ${known}`);
}

log(
  `mode ${mode}: ${settings.rounds} round(s), ${settings.durationSeconds} s windows; ${pinning.note}`,
);
const missing = [
  settings.tools.h2load ? "" : "h2load",
  settings.tools.wrk || h1Load !== "wrk" ? "" : "wrk",
].filter(Boolean);
if (missing.length > 0) {
  log(
    `missing ${missing.join(" and ")}: ` +
      "its workloads are skipped; install with: apt-get install nghttp2-client wrk",
  );
}

// 2. The workloads, one after the other.
const results = [];
const pool = new ServerPool(pinning);
try {
  for (const workload of selected) {
    results.push(await runWorkload(workload, settings, pool));
  }
} finally {
  await pool.stop();
}

function packageVersion(name: string): string | undefined {
  try {
    const path = join(repoRoot, "node_modules", name, "package.json");
    return (JSON.parse(readFileSync(path, "utf8")) as { version: string })
      .version;
  } catch {
    return undefined;
  }
}

function gitCommit(): string | undefined {
  try {
    const git = (args: string[]) =>
      execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
    const dirty = git([
      "status",
      "--porcelain",
      "--",
      "generator",
      "templates",
      "runtime-inline",
    ]);
    return `${git(["rev-parse", "--short", "HEAD"])}${dirty ? " (plugin sources modified)" : ""}`;
  } catch {
    return undefined;
  }
}

const header = [
  `ours = the generated code; connect-es = @connectrpc/connect-node ${packageVersion("@connectrpc/connect-node") ?? "?"}; floor = raw node:http2 / node:http + protobuf-es ${packageVersion("@bufbuild/protobuf") ?? "?"}`,
  `${mode} mode, ${settings.rounds === 1 ? "1 round" : `median of ${settings.rounds} rounds`} of ${settings.durationSeconds} s windows${h1Load === "wrk" ? ` (wrk: ${Math.max(1, Math.round(settings.durationSeconds))} s)` : ""}; ${pinning.note}`,
  `load: h2load (HTTP/2, HTTP/1.1 with ${h1Load === "wrk" ? "wrk" : "h2load --h1"}, streams); headers as @connectrpc/connect-node's client sends them`,
  `rate: requests, messages or calls per second; p50/p99: per request (h2load log${h1Load === "wrk" ? " / wrk --latency" : ""}), per whole 1000-message call for streams, per call for clients`,
  `CPU µs/op: user+system CPU of the server process (of the client process on client rows) per request, message or call, from /proc (1 tick = ${cpuResolutionMicros()} µs); ratios are of CPU per op, below 1 means ours uses less; ours-node = ours served by .node on HTTP/2 (Node's compatibility layer), its ratios on its own row`,
].join("\n");

process.stdout.write(`\n${header}\n\n${formatResults(results)}\n`);

// 3. Bundle size and code generation, measured by their own modules.
const extras: Record<string, unknown> = {};
if (!options["no-extras"] && mode !== "smoke") {
  for (const name of ["bundle", "codegen"]) {
    const file = join(benchDir, `${name}.ts`);
    if (!existsSync(file)) continue;
    log(`${name}: running bench/${name}.ts`);
    try {
      const module = (await import(pathToFileURL(file).href)) as {
        run(options: {
          quick: boolean;
        }): Promise<{ table: string; results: unknown }>;
      };
      const { table, results: extra } = await module.run({
        quick: mode !== "full",
      });
      extras[name] = extra;
      process.stdout.write(`\n${table.trimEnd()}\n`);
    } catch (error) {
      extras[name] = { error: String(error) };
      log(`${name}: failed: ${String(error)}`);
    }
  }
}

const elapsedSeconds = (performance.now() - started) / 1000;
const json = {
  date: new Date().toISOString(),
  mode,
  elapsedSeconds,
  machine: {
    cpu: cpus()[0]?.model,
    cores,
    os: `${platform()} ${release()}`,
    node: process.version,
    h2load: h2load ?? null,
    wrk: wrk ?? null,
    clockTicksPerSecond: clockTicksPerSecond(),
    cpuSource: cpuSource(),
    pinning,
  },
  versions: {
    plugin: gitCommit() ?? null,
    "@connectrpc/connect-node":
      packageVersion("@connectrpc/connect-node") ?? null,
    "@connectrpc/connect": packageVersion("@connectrpc/connect") ?? null,
    "@bufbuild/protobuf": packageVersion("@bufbuild/protobuf") ?? null,
  },
  settings: {
    rounds: settings.rounds,
    firstWarmupSeconds: settings.firstWarmupSeconds,
    warmupSeconds: settings.warmupSeconds,
    durationSeconds: settings.durationSeconds,
    h1Load,
  },
  implementations: implDescriptions,
  workloads: results,
  skipped: results
    .filter((r) => r.skipped !== undefined)
    .map((r) => ({ id: r.workload.id, reason: r.skipped })),
  ...extras,
};
const out = resolve(options.out ?? join(benchDir, "results.json"));
writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
log(
  `wrote ${out === join(benchDir, "results.json") ? "bench/results.json" : out} in ${elapsedSeconds.toFixed(0)} s`,
);
