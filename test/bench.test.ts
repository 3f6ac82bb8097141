// Smoke test of the benchmark (bench/, `npm run bench`): runs it in its
// --smoke mode (six workloads, one of each kind, message and client
// protocol, short warm-ups, windows of a fraction of a second) and checks
// that it prints the table and writes a results file with a measurement of
// every implementation (ours through .node too on h2c unary), that every
// server answered correctly and that every gzip stream was compressed. It
// asserts no figure: timings on a busy test machine mean nothing.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { headerLines, unaryHeaders } from "../bench/lib/headers.ts";
import { parseH2loadOutput } from "../bench/load/h2load.ts";
import { h2cUnaryImpls, roundOrder, threeImpls } from "../bench/workloads.ts";
import { repoRoot } from "./support/generate.ts";

// h2load is not an npm package (Debian: nghttp2-client, which .ci/run
// installs), and every server workload needs it (wrk only runs with
// --h1-load wrk); without it the benchmark only prints how to install it,
// so there is nothing to test.
const hasH2load = spawnSync("h2load", ["--version"]).status === 0;

interface Run {
  impl: string;
  ops: number;
  errors: number;
  cpuMicrosPerOp?: number;
  extra?: {
    compressedMessages?: number;
    responseBytesPerCall?: number;
    h2loadWholeRun?: { succeeded: number; failed: number; errored: number };
  };
}

interface Results {
  mode: string;
  machine: { node: string; h2load: string | null };
  workloads: {
    workload: { id: string };
    runs: Run[];
    summary: Record<string, unknown>;
    ratios: Record<string, number | undefined>;
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
      for (const impl of ["ours", "ours-node", "connect-es", "floor"]) {
        expect(stdout).toMatch(new RegExp(`\\| ${impl} +\\|`));
      }

      const results = JSON.parse(readFileSync(out, "utf8")) as Results;
      expect(results.mode).toBe("smoke");
      expect(results.machine.node).toBe(process.version);
      const ids = results.workloads.map((w) => w.workload.id);
      expect(ids).toEqual([
        "unary-h2c-binary-98",
        "unary-h2c-order-98",
        "unary-h1-binary-98",
        "stream-h2c-gzip",
        "client-unary-98",
        "client-grpc-unary-98",
      ]);
      for (const {
        workload,
        runs,
        summary,
        ratios,
        skipped,
      } of results.workloads) {
        expect(skipped, workload.id).toBeUndefined();
        const h2cUnary = workload.id.startsWith("unary-h2c-");
        const expected = h2cUnary ? h2cUnaryImpls : threeImpls;
        // One round: the first round's order is the workload's own.
        expect(runs.map((r) => r.impl)).toEqual(expected);
        expect(Object.keys(summary)).toEqual(expected);
        const measured = (impl: string) =>
          (summary[impl] as { cpuMicrosPerOp?: number }).cpuMicrosPerOp !==
          undefined;
        if (h2cUnary && measured("ours-node") && measured("floor")) {
          expect(ratios["cpuOursNodeOverFloor"], workload.id).toBeGreaterThan(
            0,
          );
        }
        for (const run of runs) {
          const label = `${workload.id} ${run.impl}`;
          const whole = run.extra?.h2loadWholeRun;
          if (whole === undefined) {
            expect(run.ops, label).toBeGreaterThan(0);
          } else {
            // A unary window is 0.3 s inside a longer h2load run: on a
            // machine busy enough, a cold server may complete nothing in
            // it, so what must hold is that the run got answers, no errors.
            expect(whole.succeeded, label).toBeGreaterThan(0);
            expect(whole.failed + whole.errored, label).toBe(0);
          }
          expect(run.errors, label).toBe(0);
          if (workload.id === "stream-h2c-gzip") {
            expect(run.extra?.compressedMessages, label).toBe(run.ops);
            expect(run.extra?.responseBytesPerCall, label).toBeGreaterThan(0);
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
  it("reports RSS of a server stream and of unary calls, and what a call allocates, per implementation, servers and clients", async () => {
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
        "--allocation",
        "200",
        "--allocation-warmup",
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
      allocation: Record<
        string,
        { bytesPerCall: number; top: [string, number][] }
      >;
      clientAllocation: Record<
        "connect" | "grpc",
        Record<string, { bytesPerCall: number; top: [string, number][] }>
      >;
    };
    for (const impl of ["floor", "ours"]) {
      const stream = results.stream[impl]!;
      expect(stream.peak).toBeGreaterThanOrEqual(stream.start);
      const unary = results.unary[impl]!;
      expect(unary.before.rss).toBeGreaterThan(0);
      expect(unary.after.heapAfterGc).toBeGreaterThan(0);
      const allocation = results.allocation[impl]!;
      expect(allocation.bytesPerCall).toBeGreaterThan(0);
      expect(allocation.top.length).toBeGreaterThan(0);
      for (const protocol of ["connect", "grpc"] as const) {
        const client = results.clientAllocation[protocol][impl]!;
        expect(client.bytesPerCall, `${protocol} ${impl}`).toBeGreaterThan(0);
        expect(client.top.length).toBeGreaterThan(0);
      }
    }
  }, 120_000);
});

describe("the benchmark's order of implementations", () => {
  it("rotates every round, so that each runs first once in as many rounds", () => {
    const rounds = [1, 2, 3].map((round) => roundOrder(round));
    expect(rounds).toEqual([
      ["ours", "connect-es", "floor"],
      ["connect-es", "floor", "ours"],
      ["floor", "ours", "connect-es"],
    ]);
    for (const order of rounds)
      expect([...order].sort()).toEqual([...threeImpls].sort());
    expect(roundOrder(4)).toEqual(roundOrder(1));
  });

  it("rotates the four implementations of the h2c unary workloads alike", () => {
    const rounds = [1, 2, 3, 4].map((round) =>
      roundOrder(round, h2cUnaryImpls),
    );
    expect(rounds.map((order) => order[0])).toEqual(h2cUnaryImpls);
    for (const order of rounds)
      expect([...order].sort()).toEqual([...h2cUnaryImpls].sort());
    expect(roundOrder(5, h2cUnaryImpls)).toEqual(rounds[0]);
  });
});

describe("the benchmark's load generators", () => {
  it("send the headers of a Connect client, accept-encoding only below 1 KiB", () => {
    expect(headerLines(unaryHeaders("application/proto", 98))).toEqual([
      "content-type: application/proto",
      "connect-protocol-version: 1",
      "user-agent: connect-es/2.2.0",
      "accept-encoding: gzip,br",
    ]);
    expect(unaryHeaders("application/proto", 16384)).not.toHaveProperty(
      "accept-encoding",
    );
  });

  it("read h2load's count of response bytes, which the stream rows check", () => {
    const summary = parseH2loadOutput(
      [
        "finished in 2.24s, 37.51 req/s, 36.91MB/s",
        "requests: 84 total, 84 started, 84 done, 84 succeeded, 0 failed, 0 errored, 0 timeout",
        "status codes: 84 2xx, 0 3xx, 0 4xx, 0 5xx",
        "traffic: 82.68MB (86693016) total, 1.55KB (1584) headers (space savings 90.12%), 82.67MB (86688588) data",
      ].join("\n"),
    );
    expect(summary).toMatchObject({
      started: 84,
      succeeded: 84,
      dataBytes: 86688588,
    });
  });
});
