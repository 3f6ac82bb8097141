// h2load (Debian: nghttp2-client) as the load generator of every server
// workload: unary on HTTP/2 and (with --h1) HTTP/1.1, and server streaming,
// whose whole response it reads and discards. A C client on its own core,
// far faster than the servers it loads, so the measured process is the
// bottleneck. Its summary has no
// percentiles, so every run writes --log-file (one line per request: start
// µs, status, duration µs); p50/p99, the rate and the request count of the
// measured window all come from that log.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Pinning, pinnedCommand } from "../lib/pinning.ts";
import { runToCompletion } from "../lib/processes.ts";
import { percentileOfSorted } from "../lib/stats.ts";

export interface LoadResult {
  /** Requests that completed with a 2xx status in the window. */
  readonly requests: number;
  /** Requests that failed, errored, timed out or got a non-2xx status. */
  readonly errors: number;
  readonly seconds: number;
  readonly rate: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
}

export interface H2loadOptions {
  /** HTTP/1.1 (h2load --h1; one request per connection at a time). */
  readonly h1?: boolean;
  readonly url: string;
  readonly bodyFile: string;
  readonly headers: readonly string[];
  readonly clients: number;
  readonly streams: number;
  /** How long to run (h2load -D), or how many requests to make (-n). */
  readonly seconds?: number;
  readonly requests?: number;
}

/** h2load's own summary of a whole run. */
export type H2loadSummary = ReturnType<typeof parseH2loadOutput>;

/** Per-request log of a run: completion times (µs since the epoch), durations (µs), 2xx or not. */
export interface RequestLog {
  readonly end: Float64Array;
  readonly duration: Float64Array;
  readonly ok: Uint8Array;
}

export async function h2loadVersion(): Promise<string | undefined> {
  try {
    const { stdout } = await runToCompletion("h2load", ["--version"], 5000);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs h2load for `seconds` (or `requests`) and returns every request it completed. The
 * caller picks a window inside the run (see `windowOf`): h2load stops with
 * up to clients x streams requests in flight, whose server CPU would
 * otherwise be charged to the requests it counted (640 of them at -c64 -m10,
 * several percent of a short window).
 */
export async function runH2load(
  options: H2loadOptions,
  pinning: Pinning,
): Promise<{
  summary: ReturnType<typeof parseH2loadOutput>;
  log: RequestLog;
}> {
  const dir = mkdtempSync(join(tmpdir(), "bench-h2load-"));
  const logFile = join(dir, "requests.log");
  try {
    const args = [
      ...(options.h1 === true ? ["--h1"] : []),
      "-t1",
      `-c${options.clients}`,
      `-m${options.streams}`,
      options.requests !== undefined
        ? `-n${options.requests}`
        : // h2load takes fractional durations in ms.
          `-D${Math.max(1, Math.round((options.seconds ?? 1) * 1000))}ms`,
      "-d",
      options.bodyFile,
      ...options.headers.flatMap((h) => ["-H", h]),
      `--log-file=${logFile}`,
      options.url,
    ];
    const [command, commandArgs] = pinnedCommand(
      pinning,
      "load",
      "h2load",
      args,
    );
    const run = await runToCompletion(
      command,
      commandArgs,
      // A run of -n requests has no set length: 10 minutes at most.
      ((options.seconds ?? 540) + 60) * 1000,
    );
    if (run.code !== 0) {
      throw new Error(
        `h2load failed (${run.code}): ${run.stderr || run.stdout}`,
      );
    }
    return { summary: parseH2loadOutput(run.stdout), log: readLog(logFile) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads an h2load --log-file: one line per completed request, tab-separated
 * start time (µs since the epoch), HTTP status, duration (µs).
 */
function readLog(logFile: string): RequestLog {
  let text = "";
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    // No request completed.
  }
  const lines = text.split("\n");
  const end = new Float64Array(lines.length);
  const duration = new Float64Array(lines.length);
  const ok = new Uint8Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const [start, status, micros] = line.split("\t");
    if (start === undefined || status === undefined || micros === undefined) {
      continue;
    }
    duration[n] = Number(micros);
    end[n] = Number(start) + duration[n]!;
    ok[n] = status.startsWith("2") ? 1 : 0;
    n++;
  }
  return {
    end: end.subarray(0, n),
    duration: duration.subarray(0, n),
    ok: ok.subarray(0, n),
  };
}

/**
 * The requests that completed between `fromMicros` and `toMicros` (µs since
 * the epoch): in steady state as many as the server finished in that time,
 * so CPU read at the same two instants divides by the right count.
 */
export function windowOf(
  log: RequestLog,
  fromMicros: number,
  toMicros: number,
): LoadResult {
  const durations: number[] = [];
  let errors = 0;
  for (let i = 0; i < log.end.length; i++) {
    const end = log.end[i]!;
    if (end < fromMicros || end >= toMicros) continue;
    if (log.ok[i] === 1) durations.push(log.duration[i]!);
    else errors++;
  }
  const sorted = Float64Array.from(durations).sort();
  const seconds = (toMicros - fromMicros) / 1e6;
  return {
    requests: sorted.length,
    errors,
    seconds,
    rate: sorted.length / seconds,
    p50Ms: ms(percentileOfSorted(sorted, 50)),
    p99Ms: ms(percentileOfSorted(sorted, 99)),
  };
}

function ms(micros: number | undefined): number | undefined {
  return micros === undefined ? undefined : micros / 1000;
}

/**
 * Reads h2load's summary (kept in results.json for diagnosis; the figures
 * come from the log):
 *   finished in 2.00s, 45000.50 req/s, 5.2MB/s
 *   requests: 90000 total, 90000 started, 90000 done, 90000 succeeded, 0 failed, 0 errored, 0 timeout
 *   status codes: 90000 2xx, 0 3xx, 0 4xx, 0 5xx
 *   traffic: 16.16KB (16543) total, 120B (120) headers (space savings 0.00%), 16.00KB (16384) data
 * `dataBytes` (the response bodies, as received: the streaming workloads
 * check it against the size of a verified response) is the exact count.
 */
export function parseH2loadOutput(output: string): {
  seconds: number;
  rate: number;
  started: number;
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  dataBytes: number;
} {
  const finished = /finished in ([\d.]+)(ms|s|us),\s*([\d.]+) req\/s/.exec(
    output,
  );
  const requests =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      output,
    );
  const status = /status codes: (\d+) 2xx/.exec(output);
  const traffic = /traffic: .*\((\d+)\) data/.exec(output);
  if (
    finished === null ||
    requests === null ||
    status === null ||
    traffic === null
  ) {
    throw new Error(`unexpected h2load output:\n${output}`);
  }
  const unit = finished[2];
  return {
    seconds:
      Number(finished[1]) / (unit === "ms" ? 1e3 : unit === "us" ? 1e6 : 1),
    rate: Number(finished[3]),
    started: Number(requests[2]),
    done: Number(requests[3]),
    succeeded: Number(requests[4]),
    failed: Number(requests[5]),
    errored: Number(requests[6]),
    timeout: Number(requests[7]),
    status2xx: Number(status[1]),
    dataBytes: Number(traffic[1]),
  };
}
