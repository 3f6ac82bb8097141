// Smoke test of the benchmark (bench/, `npm run bench`): runs it in its
// --smoke mode (four workloads, one of each kind, no warm-up, windows of a
// fraction of a second) and checks that it prints the table and writes a
// results file with a measurement of every implementation, that every
// server answered correctly and that every gzip stream was compressed. It
// asserts no figure: timings on a busy test machine mean nothing.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { impls, roundOrder } from "../bench/workloads.ts";
import { repoRoot } from "./support/generate.ts";

// h2load is not an npm package (Debian: nghttp2-client, which .ci/run
// installs), and the smoke run's first workload needs it; without it the
// benchmark only prints how to install it, so there is nothing to test. A
// missing wrk just skips its workload, which the test accepts.
const hasH2load = spawnSync("h2load", ["--version"]).status === 0;
const hasWrk = spawnSync("wrk", ["-v"]).error === undefined;

interface Run {
  impl: string;
  ops: number;
  errors: number;
  cpuMicrosPerOp?: number;
  extra?: { compressedMessages?: number };
}

interface Results {
  mode: string;
  machine: { node: string; h2load: string | null };
  workloads: {
    workload: { id: string };
    runs: Run[];
    summary: Record<string, unknown>;
    skipped?: string;
  }[];
}

function runBench(
  args: string[],
  script = "bench/main.ts",
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!hasH2load)("npm run bench -- --smoke", () => {
  it("prints the table and writes results with every implementation", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-smoke-"));
    try {
      const out = join(dir, "results.json");
      const { code, stdout, stderr } = await runBench([
        "--smoke",
        "--out",
        out,
      ]);
      expect(code, stderr).toBe(0);

      expect(stdout).toMatch(/\| workload +\| impl +\| +rate \|/);
      for (const impl of ["ours", "connect-es", "floor"]) {
        expect(stdout).toMatch(new RegExp(`\\| ${impl} +\\|`));
      }

      const results = JSON.parse(readFileSync(out, "utf8")) as Results;
      expect(results.mode).toBe("smoke");
      expect(results.machine.node).toBe(process.version);
      const ids = results.workloads.map((w) => w.workload.id);
      expect(ids).toEqual([
        "unary-h2c-binary-98",
        "unary-h1-binary-98",
        "stream-h2c-gzip",
        "client-unary-98",
      ]);
      for (const { workload, runs, summary, skipped } of results.workloads) {
        if (workload.id === "unary-h1-binary-98" && !hasWrk) {
          expect(skipped).toMatch(/apt-get install nghttp2-client wrk/);
          continue;
        }
        expect(skipped, workload.id).toBeUndefined();
        expect(runs.map((r) => r.impl)).toEqual([
          "ours",
          "connect-es",
          "floor",
        ]);
        expect(Object.keys(summary)).toEqual(["ours", "connect-es", "floor"]);
        for (const run of runs) {
          const label = `${workload.id} ${run.impl}`;
          expect(run.ops, label).toBeGreaterThan(0);
          expect(run.errors, label).toBe(0);
          if (workload.id === "stream-h2c-gzip") {
            expect(run.extra?.compressedMessages, label).toBe(run.ops);
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});

// bench/memory.ts, tiny: the shape of its output only, no figure.
describe("node bench/memory.ts", () => {
  it("reports RSS of a server stream and of unary calls per implementation", async () => {
    const { code, stdout, stderr } = await runBench(
      [
        "--impls",
        "floor,ours",
        "--count",
        "2000",
        "--unary",
        "500",
        "--unary-warmup",
        "100",
      ],
      "bench/memory.ts",
    );
    expect(code, stderr).toBe(0);
    const results = JSON.parse(stdout) as {
      stream: Record<string, { start: number; peak: number }>;
      unary: Record<
        string,
        Record<"before" | "after", { rss: number; heapAfterGc: number }>
      >;
    };
    for (const impl of ["floor", "ours"]) {
      const stream = results.stream[impl]!;
      expect(stream.peak).toBeGreaterThanOrEqual(stream.start);
      const unary = results.unary[impl]!;
      expect(unary.before.rss).toBeGreaterThan(0);
      expect(unary.after.heapAfterGc).toBeGreaterThan(0);
    }
  }, 120_000);
});

describe("the benchmark's order of implementations", () => {
  it("rotates every round, so that each runs first once in as many rounds", () => {
    const rounds = [1, 2, 3].map(roundOrder);
    expect(rounds).toEqual([
      ["ours", "connect-es", "floor"],
      ["connect-es", "floor", "ours"],
      ["floor", "ours", "connect-es"],
    ]);
    for (const order of rounds)
      expect([...order].sort()).toEqual([...impls].sort());
    expect(roundOrder(4)).toEqual(roundOrder(1));
  });
});
