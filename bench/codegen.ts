// Code generation speed and memory (issue #6): time and peak memory to
// generate a 100-service input with this plugin, beside protoc-gen-es on the
// same input.
//
// The input is written by bench/codegen/fixture.ts (deterministic). Each tool
// runs as the only plugin of a `buf generate` (strategy: all, so one plugin
// process), under GNU time (`/usr/bin/time`) twice: around buf (wall time,
// and the largest RSS of any single process of the tree, i.e. the plugin's
// or buf's own), and around the plugin itself through a wrapper script, so
// that the plugin's time and peak RSS are known apart from buf's parsing and
// writing. The tools run alternately, and the medians are reported. Ours
// runs twice per round: as it runs on a machine from its second run on, with
// Node's compile cache (bin/) and the analysed runtime kept beside it, and
// "cold", without them.
//
//   node bench/codegen.ts [--quick] [--services N] [--profile]
//
// --profile also runs this plugin once under `node --cpu-prof` and prints the
// functions with the most self time.
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFixture, type FixtureStats } from "./codegen/fixture.ts";
import { summarizeProfile } from "./codegen/profile.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(repoRoot, "node_modules/.bin");
const gnuTime = "/usr/bin/time";
const MB = 1024 * 1024;

/** The targets of issue #6. */
const targets = { timeRatio: 3, peakMB: 500 };

type Tool = "protoc-gen-es" | "connect-standalone" | "connect-standalone, cold";

const plugins: Record<
  Tool,
  { command: string; opt: string | undefined; env?: string }
> = {
  "protoc-gen-es": {
    command: join(bin, "protoc-gen-es"),
    opt: "target=ts",
  },
  // Default options: client and server, all three protocols, platform=node.
  // Our launcher keeps Node's compile cache (bin/), and the plugin its
  // analysis of runtime-inline/ beside it: warm from the second run on, and
  // measured warm, after an untimed run.
  "connect-standalone": {
    command: join(repoRoot, "bin/protoc-gen-connect-standalone"),
    opt: undefined,
  },
  // The same without those caches, as on a machine's first run.
  "connect-standalone, cold": {
    command: join(repoRoot, "bin/protoc-gen-connect-standalone"),
    opt: undefined,
    env: "NODE_DISABLE_COMPILE_CACHE=1",
  },
};

interface Sample {
  /** buf generate, wall seconds. */
  readonly wallSeconds: number;
  /** Largest RSS of a single process under buf (GNU time), MB. */
  readonly bufTreePeakMB: number;
  /** The plugin process alone, wall seconds. */
  readonly pluginSeconds: number;
  /** The plugin process alone, peak RSS, MB. */
  readonly pluginPeakMB: number;
}

export interface ToolResult {
  readonly services: number;
  readonly samples: readonly Sample[];
  readonly median: Sample;
  readonly output: { files: number; bytes: number; lines: number };
}

export interface CodegenResults {
  readonly quick: boolean;
  readonly rounds: number;
  readonly fixture: FixtureStats;
  readonly tools: Record<Tool, ToolResult>;
  readonly ratio: {
    pluginSeconds: number;
    wallSeconds: number;
    pluginPeak: number;
  };
  readonly targets: {
    readonly timeRatio: { value: number; limit: number; met: boolean };
    readonly peakMB: { value: number; limit: number; met: boolean };
  };
  readonly versions: Record<string, string>;
  readonly profile?: string;
}

/** Parses the last line of a GNU time -f "%e %M" report: seconds and KB. */
function parseTime(text: string): { seconds: number; peakMB: number } {
  const lines = text.trim().split("\n");
  const [seconds, kb] = (lines[lines.length - 1] ?? "").trim().split(/\s+/);
  const s = Number(seconds);
  const k = Number(kb);
  if (!Number.isFinite(s) || !Number.isFinite(k)) {
    throw new Error(`cannot parse GNU time output: ${JSON.stringify(text)}`);
  }
  return { seconds: s, peakMB: (k * 1024) / MB };
}

/**
 * Writes a wrapper script that runs `command` under GNU time, reporting into
 * `report`, and a buf template with it as the only plugin.
 */
function setUp(
  work: string,
  tool: Tool,
  command: string,
): { template: string; report: string; out: string } {
  const file = tool.replace(/\W+/g, "-");
  const wrapper = join(work, `${file}.sh`);
  const report = join(work, `${file}.time`);
  const out = join(work, `out-${file}`);
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const { opt, env } = plugins[tool];
  writeFileSync(
    wrapper,
    `#!/bin/sh\n${env === undefined ? "" : `${env} `}exec ${gnuTime} -f "%e %M" -o ${q(report)} ${command} "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  const template = join(work, `${file}.gen.yaml`);
  writeFileSync(
    template,
    [
      "version: v2",
      "plugins:",
      `  - local: ${JSON.stringify(wrapper)}`,
      `    out: ${JSON.stringify(out)}`,
      ...(opt === undefined ? [] : [`    opt: ${JSON.stringify(opt)}`]),
      "    strategy: all",
      "",
    ].join("\n"),
  );
  return { template, report, out };
}

const env = () => ({
  ...process.env,
  // Plugins run on the pinned Node, which strips types.
  PATH: `${bin}:${process.env["PATH"] ?? ""}`,
});

function runOnce(
  work: string,
  input: string,
  setup: { template: string; report: string; out: string },
): Sample {
  rmSync(setup.out, { recursive: true, force: true });
  rmSync(setup.report, { force: true });
  const bufReport = join(work, "buf.time");
  execFileSync(
    gnuTime,
    [
      "-f",
      "%e %M",
      "-o",
      bufReport,
      join(bin, "buf"),
      "generate",
      "--template",
      setup.template,
    ],
    { cwd: input, env: env(), stdio: ["ignore", "ignore", "pipe"] },
  );
  const buf = parseTime(readFileSync(bufReport, "utf8"));
  const plugin = parseTime(readFileSync(setup.report, "utf8"));
  return {
    wallSeconds: buf.seconds,
    bufTreePeakMB: buf.peakMB,
    pluginSeconds: plugin.seconds,
    pluginPeakMB: plugin.peakMB,
  };
}

function countOutput(dir: string): {
  files: number;
  bytes: number;
  lines: number;
} {
  let files = 0;
  let bytes = 0;
  let lines = 0;
  for (const entry of readdirSync(dir, {
    recursive: true,
    withFileTypes: true,
  })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const text = readFileSync(path);
    files++;
    bytes += statSync(path).size;
    for (const b of text) if (b === 0x0a) lines++;
  }
  return { files, bytes, lines };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function medianSample(samples: readonly Sample[]): Sample {
  return {
    wallSeconds: median(samples.map((s) => s.wallSeconds)),
    bufTreePeakMB: median(samples.map((s) => s.bufTreePeakMB)),
    pluginSeconds: median(samples.map((s) => s.pluginSeconds)),
    pluginPeakMB: median(samples.map((s) => s.pluginPeakMB)),
  };
}

function version(pkg: string): string {
  const json = JSON.parse(
    readFileSync(join(repoRoot, "node_modules", pkg, "package.json"), "utf8"),
  ) as { version: string };
  return json.version;
}

/** Runs this plugin once under `node --cpu-prof` and summarizes the profile. */
function profile(work: string, input: string): string {
  const dir = join(work, "cpu-prof");
  mkdirSync(dir);
  const setup = setUp(
    work,
    "connect-standalone",
    `${join(bin, "node")} --cpu-prof --cpu-prof-dir=${dir} ${join(repoRoot, "bin/protoc-gen-connect-standalone")}`,
  );
  runOnce(work, input, setup);
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error("node --cpu-prof wrote no profile");
  return summarizeProfile(
    JSON.parse(readFileSync(join(dir, file), "utf8")),
    repoRoot,
  );
}

function formatTable(r: CodegenResults): string {
  const header = [
    "tool",
    "services",
    "wall s",
    "plugin s",
    "peak MB",
    "output MB",
    "ratio",
  ];
  const es = r.tools["protoc-gen-es"].median;
  const rows = (Object.entries(r.tools) as [Tool, ToolResult][]).map(
    ([tool, t]) => [
      tool,
      String(t.services),
      t.median.wallSeconds.toFixed(2),
      t.median.pluginSeconds.toFixed(2),
      t.median.pluginPeakMB.toFixed(0),
      (t.output.bytes / MB).toFixed(2),
      `${(t.median.pluginSeconds / es.pluginSeconds).toFixed(2)}x (wall ${(t.median.wallSeconds / es.wallSeconds).toFixed(2)}x)`,
    ],
  );
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => row[i]!.length)),
  );
  const line = (cells: string[]) =>
    "| " +
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join(" | ") +
    " |";
  const f = r.fixture;
  const out = [
    `Code generation: ${f.services} services, ${f.methods} methods, ${f.messages} messages in ${f.files} files ` +
      `(${(f.protoBytes / 1024).toFixed(0)} KB of .proto); buf generate, strategy: all; ` +
      `median of ${r.rounds} round${r.rounds === 1 ? "" : "s"}`,
    "",
    line(header),
    "|" +
      widths
        .map((w, i) =>
          i === 0 ? `-${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`,
        )
        .join("|") +
      "|",
    ...rows.map(line),
    "",
    "wall s: buf generate; plugin s and peak MB: the plugin process alone (GNU time in a wrapper); ratio: plugin time / protoc-gen-es's; " +
      "cold: without Node's compile cache and our analysis kept beside it, as on the first run on a machine (the targets are checked warm).",
  ];
  for (const [tool, t] of Object.entries(r.tools)) {
    out.push(
      `${tool}: ${t.output.files} files, ${t.output.lines} lines; largest RSS under buf ${t.median.bufTreePeakMB.toFixed(0)} MB; ` +
        `plugin s per round ${t.samples.map((s) => s.pluginSeconds.toFixed(2)).join(", ")}`,
    );
  }
  const tr = r.targets.timeRatio;
  const pk = r.targets.peakMB;
  out.push(
    `Target: time ≤ ${tr.limit}x protoc-gen-es's: ${tr.value.toFixed(2)}x (plugin time; wall ${r.ratio.wallSeconds.toFixed(2)}x), ` +
      (tr.met ? "met" : `missed by ${(tr.value - tr.limit).toFixed(2)}x`),
    `Target: peak memory ≤ ${pk.limit} MB: ${pk.value.toFixed(0)} MB, ` +
      (pk.met ? "met" : `missed by ${(pk.value - pk.limit).toFixed(0)} MB`),
  );
  if (r.profile !== undefined) out.push("", r.profile);
  return out.join("\n");
}

export async function run(options: {
  quick: boolean;
  services?: number;
  profile?: boolean;
}): Promise<{ table: string; results: CodegenResults }> {
  const services = options.services ?? 100;
  const rounds = options.quick ? 1 : 3;
  const work = mkdtempSync(join(tmpdir(), "cs-bench-codegen-"));
  try {
    const input = join(work, "proto");
    const fixture = writeFixture(input, services);
    const tools = Object.keys(plugins) as Tool[];
    const setups = Object.fromEntries(
      tools.map((tool) => [tool, setUp(work, tool, plugins[tool].command)]),
    ) as Record<Tool, ReturnType<typeof setUp>>;
    // One untimed run of each warms the disk cache and buf's; --quick skips
    // it, but for one of ours, which fills the caches.
    for (const tool of options.quick ? ["connect-standalone" as const] : tools)
      runOnce(work, input, setups[tool]);
    const samples = Object.fromEntries(
      tools.map((tool) => [tool, [] as Sample[]]),
    ) as Record<Tool, Sample[]>;
    for (let round = 0; round < rounds; round++) {
      for (const tool of tools) {
        samples[tool].push(runOnce(work, input, setups[tool]));
      }
    }
    const result = (tool: Tool): ToolResult => ({
      services,
      samples: samples[tool],
      median: medianSample(samples[tool]),
      output: countOutput(setups[tool].out),
    });
    const es = result("protoc-gen-es");
    const ours = result("connect-standalone");
    const cold = result("connect-standalone, cold");
    const timeRatio = ours.median.pluginSeconds / es.median.pluginSeconds;
    const results: CodegenResults = {
      quick: options.quick,
      rounds,
      fixture,
      tools: {
        "protoc-gen-es": es,
        "connect-standalone": ours,
        "connect-standalone, cold": cold,
      },
      ratio: {
        pluginSeconds: timeRatio,
        wallSeconds: ours.median.wallSeconds / es.median.wallSeconds,
        pluginPeak: ours.median.pluginPeakMB / es.median.pluginPeakMB,
      },
      targets: {
        timeRatio: {
          value: timeRatio,
          limit: targets.timeRatio,
          met: timeRatio <= targets.timeRatio,
        },
        peakMB: {
          value: ours.median.pluginPeakMB,
          limit: targets.peakMB,
          met: ours.median.pluginPeakMB <= targets.peakMB,
        },
      },
      versions: {
        node: process.version,
        "@bufbuild/buf": version("@bufbuild/buf"),
        "@bufbuild/protoc-gen-es": version("@bufbuild/protoc-gen-es"),
      },
      ...(options.profile ? { profile: profile(work, input) } : {}),
    };
    return { table: formatTable(results), results };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const n = args.indexOf("--services");
  const { table } = await run({
    quick: args.includes("--quick"),
    profile: args.includes("--profile"),
    ...(n >= 0 ? { services: Number(args[n + 1]) } : {}),
  });
  process.stdout.write(table + "\n");
}
