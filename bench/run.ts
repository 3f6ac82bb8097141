// Runs the workloads: for each, alternates its implementations (ours,
// connect-es, floor, and on h2c unary ours-node) in each round, in an order
// rotated every round (roundOrder), each run a warm-up
// then a measured window whose CPU time is read from /proc at its edges.
// Alternating within one invocation means drift (thermal, noisy
// neighbours, the load generator's own state) hits every implementation
// alike.
//
// Servers live for the whole invocation, one process per implementation and
// HTTP version, as a real server does: a fresh process needs 2 to 3 s of load
// before its JIT has settled (connect-es longest), which the first window on
// each process gets as warm-up; later windows need less.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type H2loadSummary,
  type LoadResult,
  runH2load,
  windowOf,
} from "./load/h2load.ts";
import { verifyStream, verifyUnary } from "./load/verify.ts";
import { runWrk } from "./load/wrk.ts";
import { headerLines, streamHeaders, unaryHeaders } from "./lib/headers.ts";
import { Child } from "./lib/processes.ts";
import { serverStreamPath, unaryRequest } from "./lib/payloads.ts";
import { type Pinning, pinnedCommand } from "./lib/pinning.ts";
import { create, toBinary } from "@bufbuild/protobuf";
import { StreamRequestSchema } from "./gen/bench/v1/bench_pb.ts";
import { cpuMicros, cpuResolutionMicros } from "./lib/procstat.ts";
import { median, percentileOfSorted } from "./lib/stats.ts";
import {
  clientArgs,
  type ClientWorkload,
  type Impl,
  impls,
  roundOrder,
  type StreamWorkload,
  type UnaryWorkload,
  type Workload,
} from "./workloads.ts";

export interface Settings {
  readonly rounds: number;
  /** Warm-up of a fresh process (cold JIT): a server's first window, every client run. */
  readonly firstWarmupSeconds: number;
  /** Warm-up before every other window. */
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  /** Which load generators are installed. */
  readonly tools: { readonly h2load: boolean; readonly wrk: boolean };
  /** The HTTP/1.1 load generator: h2load --h1 (default) or wrk. */
  readonly h1Load: "h2load" | "wrk";
  readonly pinning: Pinning;
  /** Progress lines (stderr). */
  readonly log: (line: string) => void;
}

/** One measured window of one implementation. */
export interface Run {
  readonly impl: Impl;
  readonly round: number;
  /** Operations (requests, messages, calls) completed in the window. */
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  /** Operations per second. */
  readonly rate: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  /** CPU time of the measured process over the window, µs. */
  readonly cpuMicros: number;
  readonly cpuMicrosPerOp: number | undefined;
  /** Anything else worth keeping (stream calls, compressed messages, ...). */
  readonly extra?: Record<string, unknown>;
}

export interface Summary {
  readonly rate: number | undefined;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  readonly cpuMicrosPerOp: number | undefined;
  readonly errors: number;
}

export interface WorkloadResult {
  readonly workload: Workload;
  readonly runs: Run[];
  /** Per implementation, the median of each figure over the rounds. */
  readonly summary: Partial<Record<Impl, Summary>>;
  readonly ratios: {
    readonly cpuOursOverConnectEs: number | undefined;
    readonly cpuOursOverFloor: number | undefined;
    readonly rateOursOverConnectEs: number | undefined;
    readonly rateOursOverFloor: number | undefined;
    /** Our `.node` entry point on HTTP/2, where the workload has it. */
    readonly cpuOursNodeOverConnectEs: number | undefined;
    readonly cpuOursNodeOverFloor: number | undefined;
    readonly cpuOursNodeOverOurs: number | undefined;
  };
  /** Set when the workload could not run (a missing tool, a failure). */
  readonly skipped?: string;
}

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Starts a benchmark server and waits for its port. */
async function startServer(
  impl: Impl,
  httpVersion: 1 | 2,
  role: "measured" | "load",
  pinning: Pinning,
): Promise<{ child: Child; port: number }> {
  const [command, args] = pinnedCommand(pinning, role, process.execPath, [
    here(`./servers/${impl}.ts`),
    "--http",
    String(httpVersion),
    "--port",
    "0",
  ]);
  const child = new Child(`${impl} server`, command, args);
  const event = await child.next("listening", 30_000);
  return { child, port: Number(event["port"]) };
}

interface PooledServer {
  readonly child: Child;
  readonly port: number;
  /** Windows measured on it so far: the first one gets the long warm-up. */
  windows: number;
}

/**
 * The measured servers, started on first use and kept until `stop()`; one
 * that died is started again (its workload has failed already).
 */
export class ServerPool {
  private readonly servers = new Map<string, Promise<PooledServer>>();
  private readonly pinning: Pinning;

  constructor(pinning: Pinning) {
    this.pinning = pinning;
  }

  async get(impl: Impl, httpVersion: 1 | 2): Promise<PooledServer> {
    const key = `${impl} ${httpVersion}`;
    let server = this.servers.get(key);
    if (server !== undefined) {
      const running = await server.catch(() => undefined);
      if (running === undefined || running.child.exitReport() !== undefined) {
        server = undefined;
      }
    }
    if (server === undefined) {
      server = startServer(impl, httpVersion, "measured", this.pinning).then(
        (s) => ({ ...s, windows: 0 }),
      );
      this.servers.set(key, server);
    }
    return server;
  }

  /** Starts the servers of a workload's implementations at once. */
  async all(
    httpVersion: 1 | 2,
    list: readonly Impl[],
  ): Promise<Map<Impl, PooledServer>> {
    const servers = await Promise.all(
      list.map((impl) => this.get(impl, httpVersion)),
    );
    return new Map(list.map((impl, i) => [impl, servers[i]!]));
  }

  async stop(): Promise<void> {
    const servers = await Promise.allSettled(this.servers.values());
    this.servers.clear();
    await Promise.all(
      servers.map((s) =>
        s.status === "fulfilled" ? s.value.child.stop() : undefined,
      ),
    );
  }
}

/** The warm-up before a window on `server`, and counts the window. */
function warmupFor(server: PooledServer, settings: Settings): number {
  return server.windows++ === 0
    ? settings.firstWarmupSeconds
    : settings.warmupSeconds;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wall clock in µs since the epoch, the clock of h2load's request log. */
const nowMicros = () => (performance.timeOrigin + performance.now()) * 1000;

/** CPU time of a child, or why it has none: it died (with its stderr). */
function cpuOf(child: Child): number {
  try {
    return cpuMicros(child.pid);
  } catch (error) {
    throw new Error(child.exitReport() ?? String(error));
  }
}

function toRun(
  impl: Impl,
  round: number,
  load: LoadResult,
  cpu: number,
  extra?: Record<string, unknown>,
): Run {
  return {
    impl,
    round,
    ops: load.requests,
    errors: load.errors,
    seconds: load.seconds,
    rate: load.rate,
    p50Ms: load.p50Ms,
    p99Ms: load.p99Ms,
    cpuMicros: cpu,
    cpuMicrosPerOp: load.requests > 0 ? cpu / load.requests : undefined,
    ...(extra === undefined ? {} : { extra }),
  };
}

/** What one h2load window sends, and how. */
interface H2loadLoad {
  readonly url: string;
  readonly bodyFile: string;
  readonly headers: readonly string[];
  readonly warmup: number;
  readonly clients: number;
  readonly streams: number;
  readonly h1: boolean;
}

/**
 * One h2load run of warm-up + window + tail, with the server's CPU read at
 * the window's two edges while h2load keeps the load steady; the requests
 * counted are those completed between the two readings (from h2load's log).
 * The warm-up (at least 0.2 s) also keeps connection setup out of the window.
 */
async function h2loadWindow(
  settings: Settings,
  server: Child,
  impl: Impl,
  round: number,
  load: H2loadLoad,
): Promise<Run> {
  const lead = Math.max(load.warmup, 0.2);
  const tail = 0.3;
  const running = runH2load(
    {
      h1: load.h1,
      url: load.url,
      bodyFile: load.bodyFile,
      headers: load.headers,
      clients: load.clients,
      streams: load.streams,
      seconds: lead + settings.durationSeconds + tail,
    },
    settings.pinning,
  );
  await sleep(lead * 1000);
  const from = nowMicros();
  const cpu0 = cpuOf(server);
  await sleep(settings.durationSeconds * 1000);
  const to = nowMicros();
  const cpu1 = cpuOf(server);
  const { summary, log } = await running;
  const window = windowOf(log, from, to);
  return toRun(impl, round, window, cpu1 - cpu0, {
    h2loadWholeRun: summary,
  });
}

/**
 * wrk has no per-request log: a warm-up run, then a measured run with the
 * server's CPU read just before it starts and just after it ends. wrk stops
 * with up to one request per connection in flight (64), whose CPU is
 * charged to the requests it counted: under 1.5% in quick mode, 0.5% in a
 * full run at the slowest rates measured.
 */
async function wrkWindow(
  workload: UnaryWorkload,
  settings: Settings,
  server: Child,
  impl: Impl,
  round: number,
  load: {
    url: string;
    bodyFile: string;
    headers: Record<string, string>;
    warmup: number;
  },
): Promise<Run> {
  const options = {
    url: load.url,
    bodyFile: load.bodyFile,
    headers: load.headers,
    connections: workload.connections,
  };
  if (load.warmup > 0) {
    await runWrk({ ...options, seconds: load.warmup }, settings.pinning);
  }
  const cpu0 = cpuOf(server);
  const result = await runWrk(
    { ...options, seconds: settings.durationSeconds },
    settings.pinning,
  );
  // Let the server finish what was in flight, inside the CPU reading.
  await sleep(100);
  const cpu1 = cpuOf(server);
  return toRun(impl, round, result, cpu1 - cpu0);
}

async function runUnary(
  workload: UnaryWorkload,
  settings: Settings,
  pool: ServerPool,
  runs: Run[],
): Promise<void> {
  const request = unaryRequest(workload.message, workload.codec, workload.size);
  const headers = unaryHeaders(request.contentType, workload.size);
  const dir = mkdtempSync(join(tmpdir(), "bench-body-"));
  const bodyFile = join(dir, "body");
  writeFileSync(bodyFile, request.body);
  const wrk = workload.httpVersion === 1 && settings.h1Load === "wrk";
  try {
    const servers = await pool.all(workload.httpVersion, workload.impls);
    for (const [impl, server] of servers) {
      await verifyUnary(
        `${impl} server`,
        workload.httpVersion,
        `http://127.0.0.1:${server.port}${request.path}`,
        headers,
        request.body,
        request.schema,
      );
    }
    for (let round = 1; round <= settings.rounds; round++) {
      for (const impl of roundOrder(round, workload.impls)) {
        const server = servers.get(impl)!;
        const url = `http://127.0.0.1:${server.port}${request.path}`;
        const warmup = warmupFor(server, settings);
        const run = wrk
          ? await wrkWindow(workload, settings, server.child, impl, round, {
              url,
              bodyFile,
              headers,
              warmup,
            })
          : await h2loadWindow(settings, server.child, impl, round, {
              url,
              bodyFile,
              headers: headerLines(headers),
              warmup,
              clients: workload.connections,
              streams: workload.streams,
              h1: workload.httpVersion === 1,
            });
        runs.push(run);
        settings.log(progress(workload, run, settings.rounds));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a child that speaks the ready / go / done / report protocol (the
 * streaming load client, a benchmark client) and reads `cpuChild`'s CPU time
 * between "go" and "done".
 */
async function protocolWindow(
  child: Child,
  cpuChild: Child,
  settings: Settings,
  warmup: number,
): Promise<{ result: Record<string, unknown>; cpu: number }> {
  try {
    await child.next("ready", (warmup + 60) * 1000);
    const cpu0 = cpuOf(cpuChild);
    child.send("go");
    await child.next("done", (settings.durationSeconds + 60) * 1000);
    const cpu1 = cpuOf(cpuChild);
    child.send("report");
    const result = await child.next("result", 30_000);
    return { result, cpu: cpu1 - cpu0 };
  } finally {
    await child.stop();
  }
}

/** A Connect streaming request body: one enveloped StreamRequest. */
export function streamRequestBody(count: number, size: number): Buffer {
  const message = toBinary(
    StreamRequestSchema,
    create(StreamRequestSchema, { count, size }),
  );
  const body = Buffer.allocUnsafe(5 + message.length);
  body[0] = 0;
  body.writeUInt32BE(message.length, 1);
  body.set(message, 5);
  return body;
}

/**
 * Server streaming under h2load: `concurrency` calls in flight on one h2c
 * connection, each reading the whole response (h2load reads and discards,
 * far faster than any server writes, so no server is held back by its
 * reader). The window is a run of a fixed number of calls, sized from the
 * warm-up's rate to last about the window's length, with the server's CPU
 * read just before and just after it: every call completes inside the
 * reading, so CPU per message = CPU / (calls x count) counts every message
 * paid for, and none twice.
 *
 * h2load counts a call as succeeded on HTTP 200 and a clean close, which a
 * server that fails fast also gets (Connect errors ride in the body), so
 * each server's response is verified once (every message there, gzipped on
 * the gzip workload) and its size then checked against h2load's count of
 * response bytes: every call must have received exactly as much.
 */
async function runStream(
  workload: StreamWorkload,
  settings: Settings,
  pool: ServerPool,
  runs: Run[],
): Promise<void> {
  const headers = streamHeaders(workload.gzip);
  const body = streamRequestBody(workload.count, workload.size);
  const dir = mkdtempSync(join(tmpdir(), "bench-body-"));
  const bodyFile = join(dir, "body");
  writeFileSync(bodyFile, body);
  try {
    const servers = await pool.all(2, workload.impls);
    const responseBytes = new Map<Impl, number>();
    for (const [impl, server] of servers) {
      responseBytes.set(
        impl,
        await verifyStream(
          `${impl} server`,
          `http://127.0.0.1:${server.port}${serverStreamPath}`,
          headers,
          body,
          workload,
        ),
      );
    }
    for (let round = 1; round <= settings.rounds; round++) {
      for (const impl of roundOrder(round, workload.impls)) {
        const server = servers.get(impl)!;
        const perCall = responseBytes.get(impl)!;
        const options = {
          url: `http://127.0.0.1:${server.port}${serverStreamPath}`,
          bodyFile,
          headers: headerLines(headers),
          clients: 1,
          streams: workload.concurrency,
        };
        // The warm-up, timed; its rate sizes the window (at least one
        // call per stream in flight).
        const warmup = warmupFor(server, settings);
        let callsPerSecond = 0;
        if (warmup > 0) {
          const { summary } = await runH2load(
            { ...options, seconds: warmup },
            settings.pinning,
          );
          // From the bytes received, not the calls completed: a slow
          // call (gzip) may not complete within a short warm-up.
          callsPerSecond = summary.dataBytes / perCall / summary.seconds;
        }
        const calls =
          Math.max(
            1,
            Math.round(
              (callsPerSecond * settings.durationSeconds) /
                workload.concurrency,
            ),
          ) * workload.concurrency;
        // The warm-up ended with calls in flight, which the server may go
        // on serving until it sees them reset: not the window's work.
        await untilIdle(server.child);
        const cpu0 = cpuOf(server.child);
        const { summary, log } = await runH2load(
          { ...options, requests: calls },
          settings.pinning,
        );
        const cpu = cpuOf(server.child) - cpu0;
        checkStreamBytes(impl, summary, perCall);
        const messages = summary.succeeded * workload.count;
        const durations = Float64Array.from(log.duration).sort();
        const run = toRun(
          impl,
          round,
          {
            requests: messages,
            errors: summary.started - summary.succeeded,
            seconds: summary.seconds,
            rate: messages / summary.seconds,
            p50Ms: msOf(percentileOfSorted(durations, 50)),
            p99Ms: msOf(percentileOfSorted(durations, 99)),
          },
          cpu,
          {
            calls: summary.succeeded,
            responseBytesPerCall: perCall,
            // Verified on one call, and every call was as large (above).
            compressedMessages: workload.gzip ? messages : 0,
            h2loadRun: summary,
          },
        );
        runs.push(run);
        settings.log(progress(workload, run, settings.rounds));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Waits (up to 3 s) until `child` uses at most one clock tick of CPU in
 * 100 ms, so that a reading taken next starts from an idle process.
 */
export async function untilIdle(child: Child): Promise<void> {
  const deadline = performance.now() + 3000;
  while (performance.now() < deadline) {
    const before = cpuOf(child);
    await sleep(100);
    if (cpuOf(child) - before <= cpuResolutionMicros()) return;
  }
}

const msOf = (micros: number | undefined) =>
  micros === undefined ? undefined : micros / 1000;

/**
 * Throws unless every call of an h2load run succeeded and received exactly
 * `perCall` bytes, the size of the verified response: a server that ended
 * calls early, or stopped compressing, sent a different number.
 */
export function checkStreamBytes(
  impl: Impl,
  run: H2loadSummary,
  perCall: number,
): void {
  if (
    run.succeeded !== run.started ||
    run.dataBytes !== run.succeeded * perCall
  ) {
    throw new Error(
      `${impl} server: h2load received ${run.dataBytes} response bytes for ${run.succeeded} of ${run.started} calls; expected ${perCall} bytes per call, every call succeeded`,
    );
  }
}

async function runClient(
  workload: ClientWorkload,
  settings: Settings,
  runs: Run[],
): Promise<void> {
  // The server is the load side here: the floor server, on the load core.
  const server = await startServer("floor", 2, "load", settings.pinning);
  try {
    for (let round = 1; round <= settings.rounds; round++) {
      for (const impl of roundOrder(round, workload.impls)) {
        // A fresh client process every run: always the long warm-up.
        const warmup = settings.firstWarmupSeconds;
        const [command, args] = pinnedCommand(
          settings.pinning,
          "measured",
          process.execPath,
          [
            here(`./clients/${impl}.ts`),
            ...clientArgs(
              workload,
              `http://127.0.0.1:${server.port}`,
              warmup,
              settings.durationSeconds,
            ),
          ],
        );
        const client = new Child(`${impl} client`, command, args);
        const serverCpu0 = cpuOf(server.child);
        const { result, cpu } = await protocolWindow(
          client,
          client,
          settings,
          warmup,
        );
        const serverCpu = cpuOf(server.child) - serverCpu0;
        const calls = Number(result["calls"]);
        const seconds = Number(result["seconds"]);
        const run = toRun(
          impl,
          round,
          {
            requests: calls - Number(result["errors"]),
            errors: Number(result["errors"]),
            seconds,
            rate: calls / seconds,
            p50Ms: result["p50Ms"] as number | undefined,
            p99Ms: result["p99Ms"] as number | undefined,
          },
          cpu,
          // The server's CPU over the client's whole life, warm-up
          // included: only to see that the server was not the bottleneck.
          { serverCpuMicrosIncludingWarmup: serverCpu },
        );
        runs.push(run);
        settings.log(progress(workload, run, settings.rounds));
      }
    }
  } finally {
    await server.child.stop();
  }
}

function progress(workload: Workload, run: Run, rounds: number): string {
  const rate = Math.round(run.rate).toLocaleString("en-US");
  const cpu = run.cpuMicrosPerOp?.toFixed(2) ?? "-";
  const errors = run.errors > 0 ? `, ${run.errors} errors` : "";
  return `  ${workload.id} round ${run.round}/${rounds} ${run.impl}: ${rate} ${workload.unit}/s, ${cpu} µs CPU/${workload.unit}${errors}`;
}

function summarize(runs: readonly Run[]): Partial<Record<Impl, Summary>> {
  // In the order of `impls` (the table's), whatever each round's order.
  const summary: Partial<Record<Impl, Summary>> = {};
  for (const impl of impls) {
    const mine = runs.filter((r) => r.impl === impl);
    if (mine.length === 0) continue;
    summary[impl] = {
      rate: median(mine.map((r) => r.rate)),
      p50Ms: median(mine.map((r) => r.p50Ms)),
      p99Ms: median(mine.map((r) => r.p99Ms)),
      cpuMicrosPerOp: median(mine.map((r) => r.cpuMicrosPerOp)),
      errors: mine.reduce((sum, r) => sum + r.errors, 0),
    };
  }
  return summary;
}

function ratio(
  a: number | undefined,
  b: number | undefined,
): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

/** The reason a workload cannot run here, if any. */
export function missingTool(
  workload: Workload,
  tools: Settings["tools"],
  h1Load: Settings["h1Load"],
): string | undefined {
  if (workload.kind === "client") return undefined;
  const wrk =
    workload.kind === "unary" && workload.httpVersion === 1 && h1Load === "wrk";
  if (wrk && !tools.wrk) {
    return "wrk not found; install it with: apt-get install nghttp2-client wrk";
  }
  if (!wrk && !tools.h2load) {
    return "h2load not found; install it with: apt-get install nghttp2-client wrk";
  }
  return undefined;
}

/** The workload as the table names it: HTTP/1.1 titles name wrk when it ran them. */
function titledForLoad(
  workload: Workload,
  h1Load: Settings["h1Load"],
): Workload {
  return workload.kind === "unary" &&
    workload.httpVersion === 1 &&
    h1Load === "wrk"
    ? { ...workload, title: workload.title.replace("h2load --h1", "wrk") }
    : workload;
}

export async function runWorkload(
  workload: Workload,
  settings: Settings,
  pool: ServerPool,
): Promise<WorkloadResult> {
  const runs: Run[] = [];
  let skipped = missingTool(workload, settings.tools, settings.h1Load);
  if (skipped === undefined) {
    settings.log(titledForLoad(workload, settings.h1Load).title);
    try {
      if (workload.kind === "unary")
        await runUnary(workload, settings, pool, runs);
      else if (workload.kind === "stream")
        await runStream(workload, settings, pool, runs);
      else await runClient(workload, settings, runs);
    } catch (error) {
      skipped = `failed: ${error instanceof Error ? error.message : String(error)}`;
      settings.log(`  ${workload.id} ${skipped}`);
    }
  } else {
    settings.log(`${workload.title}: skipped, ${skipped}`);
  }
  const summary = summarize(runs);
  return {
    workload: titledForLoad(workload, settings.h1Load),
    runs,
    summary,
    ratios: {
      cpuOursOverConnectEs: ratio(
        summary.ours?.cpuMicrosPerOp,
        summary["connect-es"]?.cpuMicrosPerOp,
      ),
      cpuOursOverFloor: ratio(
        summary.ours?.cpuMicrosPerOp,
        summary.floor?.cpuMicrosPerOp,
      ),
      rateOursOverConnectEs: ratio(
        summary.ours?.rate,
        summary["connect-es"]?.rate,
      ),
      rateOursOverFloor: ratio(summary.ours?.rate, summary.floor?.rate),
      cpuOursNodeOverConnectEs: ratio(
        summary["ours-node"]?.cpuMicrosPerOp,
        summary["connect-es"]?.cpuMicrosPerOp,
      ),
      cpuOursNodeOverFloor: ratio(
        summary["ours-node"]?.cpuMicrosPerOp,
        summary.floor?.cpuMicrosPerOp,
      ),
      cpuOursNodeOverOurs: ratio(
        summary["ours-node"]?.cpuMicrosPerOp,
        summary.ours?.cpuMicrosPerOp,
      ),
    },
    ...(skipped === undefined ? {} : { skipped }),
  };
}
