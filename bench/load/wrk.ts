// wrk (Debian: wrk), the HTTP/1.1 load generator of `--h1-load wrk` (the
// default is h2load --h1; bench/README.md says why). It sends GET without a
// script, so a generated Lua script makes it POST the workload's body (read
// from a file, since it is binary) with the workload's headers. `--latency`
// gives p50 and p99 (from wrk's own histogram, without coordinated-omission
// correction, as for every implementation alike).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Pinning, pinnedCommand } from "../lib/pinning.ts";
import { runToCompletion } from "../lib/processes.ts";
import type { LoadResult } from "./h2load.ts";

export interface WrkOptions {
  readonly url: string;
  readonly bodyFile: string;
  /** Request headers (content-type included); wrk adds Host and Content-Length. */
  readonly headers: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly seconds: number;
}

export async function wrkVersion(): Promise<string | undefined> {
  try {
    // wrk prints its version and then the usage, and exits 1.
    const { stdout, stderr } = await runToCompletion("wrk", ["-v"], 5000);
    return /^wrk .*$/m.exec(stdout + stderr)?.[0].trim();
  } catch {
    return undefined;
  }
}

export async function runWrk(
  options: WrkOptions,
  pinning: Pinning,
): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "bench-wrk-"));
  try {
    const script = join(dir, "post.lua");
    writeFileSync(
      script,
      [
        `local f = assert(io.open(${JSON.stringify(options.bodyFile)}, "rb"))`,
        `wrk.method = "POST"`,
        `wrk.body = f:read("*a")`,
        `f:close()`,
        ...Object.entries(options.headers).map(
          ([name, value]) =>
            `wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`,
        ),
        "",
      ].join("\n"),
    );
    // wrk takes whole seconds only.
    const seconds = Math.max(1, Math.round(options.seconds));
    const [command, args] = pinnedCommand(pinning, "load", "wrk", [
      "-t1",
      `-c${options.connections}`,
      `-d${seconds}s`,
      "--latency",
      // A slow answer is still an answer: wrk's default 2 s timeout would
      // count a cold or overloaded server's slow tail as socket errors.
      "--timeout",
      "30s",
      "-s",
      script,
      options.url,
    ]);
    const run = await runToCompletion(command, args, (seconds + 60) * 1000);
    if (run.code !== 0) {
      throw new Error(`wrk failed (${run.code}): ${run.stderr || run.stdout}`);
    }
    return parseWrkOutput(run.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  switch (unit) {
    case "us":
      return n / 1000;
    case "ms":
      return n;
    case "s":
      return n * 1000;
    case "m":
      return n * 60_000;
    default:
      return NaN;
  }
}

/**
 * Reads wrk's report:
 *   Latency Distribution
 *      50%    1.23ms
 *      99%    4.56ms
 *   123456 requests in 2.00s, 12.34MB read
 *   Socket errors: connect 0, read 0, write 0, timeout 0
 *   Non-2xx or 3xx responses: 12
 *   Requests/sec:  61728.00
 */
export function parseWrkOutput(output: string): LoadResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(output);
  const rate = /Requests\/sec:\s*([\d.]+)/.exec(output);
  if (total === null || rate === null) {
    throw new Error(`unexpected wrk output:\n${output}`);
  }
  const percentile = (p: number): number | undefined => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(
      output,
    );
    return m === null ? undefined : toMs(m[1]!, m[2]!);
  };
  const non2xx = Number(
    /Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0,
  );
  const socket =
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
      output,
    );
  const socketErrors = socket
    ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0)
    : 0;
  const requests = Number(total[1]);
  return {
    requests: requests - non2xx,
    errors: non2xx + socketErrors,
    seconds: toMs(total[2]!, total[3]!) / 1000,
    rate: Number(rate[1]),
    p50Ms: percentile(50),
    p99Ms: percentile(99),
  };
}
