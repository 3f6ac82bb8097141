// `node bench/instructions.ts`: user-space instructions per operation of
// each benchmarked server, counted by valgrind's callgrind. A deterministic
// companion to `npm run bench`, whose CPU time per request on a shared VM
// moves 10-30 % between windows: an instruction count is not swayed by the
// kernel, the scheduler or other processes, only by what the process
// itself executes (a few % run to run: GC timing, JIT decisions).
//
// For each workload and implementation: the bench's own server
// (bench/servers/<impl>.ts) starts under
//   valgrind --tool=callgrind --instr-atstart=no
// (nothing counted yet), its response is verified as `npm run bench` does,
// h2load warms it up with --warmup calls (JIT, caches, heap) with the
// workload's own request bytes, headers and h2load arguments, then, with
// the server idle, `callgrind_control -i on` starts counting, h2load makes
// --calls measured calls (fresh connections), the server is let go idle,
// `callgrind_control -i off` stops counting and `-d` dumps the total. The
// figure is that total over the calls (or, for the server stream, over the
// messages). See bench/README.md, "Instructions".
import { execFileSync } from "node:child_process";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  clientArgs,
  type Impl,
  impls as allImpls,
  type ClientWorkload,
  type StreamWorkload,
  type UnaryWorkload,
  type Workload,
  workloads,
} from "./workloads.ts";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "..");

/** The workloads measured by default: unary h2c, Order, HTTP/1.1, the stream, the clients. */
const defaultWorkloads = [
  "unary-h2c-binary-98",
  "unary-h2c-order-98",
  "unary-h1-binary-98",
  "stream-h2c",
  "client-unary-98",
  "client-grpc-unary-98",
];

const { values: options } = parseArgs({
  options: {
    only: { type: "string", default: defaultWorkloads.join(",") },
    impls: { type: "string", default: allImpls.join(",") },
    calls: { type: "string", default: "5000" },
    warmup: { type: "string", default: "20000" },
    "client-warmup": { type: "string", default: "30000" },
    "client-calls": { type: "string", default: "10000" },
    out: { type: "string", default: join(benchDir, "instructions.json") },
    "no-generate": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (options.help) {
  process.stdout.write(`node bench/instructions.ts [options]
User-space instructions per operation (valgrind --tool=callgrind) of each
benchmarked server; needs valgrind (callgrind_control) and h2load.
  --only a,b      workloads (default ${defaultWorkloads.join(",")};
                  any server or client workload of bench/workloads.ts)
  --impls a,b     implementations (default ${allImpls.join(",")}; each
                  workload keeps only those it compares)
  --calls N       measured unary calls (default 5000); a stream workload
                  makes N / 500 calls (at least its concurrency) of 1000
                  messages each
  --warmup N      unary calls before counting starts (default 20000); a
                  stream workload makes N / 500 calls
  --client-warmup N   calls a client makes before counting (default 30000:
                  with 10000, the JIT still compiled in the window)
  --client-calls N    counted client calls (default 10000)
  --out FILE      where to write the figures (default bench/instructions.json)
  --no-generate   use bench/gen as it is
`);
  process.exit(0);
}

const log = (line: string) => process.stderr.write(`${line}\n`);

function fail(message: string): never {
  process.stderr.write(`bench/instructions.ts: ${message}\n`);
  process.exit(1);
}

function has(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

if (!has("valgrind", ["--version"]) || !has("callgrind_control", ["-h"])) {
  fail(
    "valgrind (with callgrind_control) not found; install it with: apt-get install valgrind",
  );
}
if (!has("h2load", ["--version"])) {
  fail("h2load not found; install it with: apt-get install nghttp2-client");
}

const calls = Number(options.calls);
const warmupCalls = Number(options.warmup);
if (!(calls > 0) || !(warmupCalls >= 0)) {
  fail("--calls must be > 0 and --warmup >= 0");
}
const clientWarmup = Number(options["client-warmup"]);
const clientCalls = Number(options["client-calls"]);
const wantedImpls = new Set(options.impls.split(","));
for (const impl of wantedImpls) {
  if (!(allImpls as readonly string[]).includes(impl)) {
    fail(`unknown implementation ${impl} (one of ${allImpls.join(", ")})`);
  }
}
const selected: Workload[] = [];
for (const id of options.only.split(",")) {
  const workload = workloads.find((w) => w.id === id);
  if (workload === undefined) fail(`unknown workload ${id}`);
  selected.push(workload);
}

if (!options["no-generate"]) {
  log(
    "generating bench/gen (buf generate bench --template bench/buf.gen.yaml)",
  );
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
}

// Loaded once bench/gen is there.
const { headerLines, streamHeaders, unaryHeaders } =
  await import("./lib/headers.ts");
const { serverStreamPath, unaryRequest } = await import("./lib/payloads.ts");
const { Child } = await import("./lib/processes.ts");
const { detectPinning, pinSelf, pinnedCommand } =
  await import("./lib/pinning.ts");
const { runH2load } = await import("./load/h2load.ts");
const { verifyStream, verifyUnary } = await import("./load/verify.ts");
const { checkStreamBytes, streamRequestBody, untilIdle } =
  await import("./run.ts");

type ChildProcess = InstanceType<typeof Child>;
type H2loadOptions = Parameters<typeof runH2load>[0];

const pinning = detectPinning();
pinSelf(pinning);
log(pinning.note);

/**
 * `node script args` under callgrind, on the measured core, counting
 * nothing until `callgrind_control -i on`; dumps go to `dir`.
 */
function underCallgrind(
  label: string,
  script: string,
  args: readonly string[],
  dir: string,
): ChildProcess {
  const [command, commandArgs] = pinnedCommand(
    pinning,
    "measured",
    "valgrind",
    [
      "--tool=callgrind",
      "--instr-atstart=no",
      `--callgrind-out-file=${join(dir, "callgrind.out")}`,
      process.execPath,
      script,
      ...args,
    ],
  );
  return new Child(`${label} (callgrind)`, command, commandArgs);
}

/** A benchmark server under callgrind. */
async function startServer(
  impl: Impl,
  httpVersion: 1 | 2,
  dir: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = underCallgrind(
    `${impl} server`,
    join(benchDir, "servers", `${impl}.ts`),
    ["--http", String(httpVersion), "--port", "0"],
    dir,
  );
  // Node starts in a minute or so under valgrind.
  const event = await child.next("listening", 300_000);
  return { child, port: Number(event["port"]) };
}

function callgrindControl(args: readonly string[], pid: number): void {
  execFileSync("callgrind_control", [...args, String(pid)], {
    stdio: "ignore",
    timeout: 120_000,
  });
}

/**
 * The instructions (Ir) of a dump: the `totals:` line of each file that
 * `callgrind_control -d` wrote (callgrind.out.1, ...; the final dump at exit
 * goes to callgrind.out itself and holds nothing, counting being off).
 */
function dumpedInstructions(dir: string): number {
  const files = readdirSync(dir).filter((f) => /^callgrind\.out\.\d+/.test(f));
  if (files.length === 0) throw new Error(`no callgrind dump in ${dir}`);
  let total = 0;
  for (const file of files) {
    const text = readFileSync(join(dir, file), "utf8");
    const line = /^totals: (\d+)/m.exec(text);
    if (line === null) throw new Error(`no totals in ${join(dir, file)}`);
    total += Number(line[1]);
  }
  return total;
}

/** Throws unless h2load made `expected` calls and every one got a 2xx. */
function checkAllSucceeded(
  label: string,
  summary: Awaited<ReturnType<typeof runH2load>>["summary"],
  expected: number,
): void {
  if (
    summary.started !== expected ||
    summary.succeeded !== expected ||
    summary.status2xx !== expected
  ) {
    throw new Error(
      `${label}: h2load: ${summary.succeeded} of ${expected} calls succeeded (${summary.started} started, ${summary.status2xx} 2xx, ${summary.failed} failed, ${summary.errored} errored, ${summary.timeout} timed out)`,
    );
  }
}

interface Measurement {
  readonly instructions: number;
  readonly calls: number;
  readonly operations: number;
  readonly perOperation: number;
}

/**
 * Starts `impl`'s server under callgrind, verifies it, warms it up, counts
 * the instructions of `measured` calls, stops it.
 */
async function measure(
  workload: UnaryWorkload | StreamWorkload,
  impl: Impl,
  load: {
    readonly path: string;
    readonly body: Uint8Array;
    readonly headers: Record<string, string>;
    readonly warmup: number;
    readonly measured: number;
    readonly operationsPerCall: number;
  },
): Promise<Measurement> {
  const dir = mkdtempSync(join(tmpdir(), "bench-callgrind-"));
  const label = `${impl} server`;
  try {
    const bodyFile = join(dir, "body");
    writeFileSync(bodyFile, load.body);
    const httpVersion = workload.kind === "unary" ? workload.httpVersion : 2;
    const { child, port } = await startServer(impl, httpVersion, dir);
    try {
      const url = `http://127.0.0.1:${port}${load.path}`;
      let perCall: number | undefined;
      if (workload.kind === "unary") {
        await verifyUnary(
          label,
          httpVersion,
          url,
          load.headers,
          load.body,
          unaryRequest(workload.message, workload.codec, workload.size).schema,
        );
      } else {
        perCall = await verifyStream(
          label,
          url,
          load.headers,
          load.body,
          workload,
        );
      }
      const h2load: Omit<H2loadOptions, "requests"> =
        workload.kind === "unary"
          ? {
              url,
              bodyFile,
              headers: headerLines(load.headers),
              clients: workload.connections,
              streams: workload.streams,
              h1: workload.httpVersion === 1,
            }
          : {
              url,
              bodyFile,
              headers: headerLines(load.headers),
              clients: 1,
              streams: workload.concurrency,
            };
      const check = (
        run: Awaited<ReturnType<typeof runH2load>>["summary"],
        expected: number,
      ) => {
        checkAllSucceeded(label, run, expected);
        if (perCall !== undefined) checkStreamBytes(impl, run, perCall);
      };
      if (load.warmup > 0) {
        const warm = await runH2load(
          { ...h2load, requests: load.warmup },
          pinning,
        );
        check(warm.summary, load.warmup);
      }
      await untilIdle(child);
      callgrindControl(["-i", "on"], child.pid);
      const run = await runH2load(
        { ...h2load, requests: load.measured },
        pinning,
      );
      // What the calls left to do (closing the connections, a GC they
      // started) is theirs: counted once the server is idle again.
      await untilIdle(child);
      callgrindControl(["-i", "off"], child.pid);
      callgrindControl(["-d"], child.pid);
      check(run.summary, load.measured);
      const instructions = dumpedInstructions(dir);
      const operations = load.measured * load.operationsPerCall;
      return {
        instructions,
        calls: load.measured,
        operations,
        perOperation: instructions / operations,
      };
    } finally {
      await child.stop();
    }
  } finally {
    // KEEP_CALLGRIND=1 keeps the dumps, for callgrind_annotate.
    if (process.env["KEEP_CALLGRIND"] === undefined) {
      rmSync(dir, { recursive: true, force: true });
    } else {
      log(`kept ${dir}`);
    }
  }
}

/**
 * A benchmark client (bench/clients/<impl>.ts) under callgrind against
 * `url`: its driver makes one call (opening the session), then
 * `warmupCalls`, says "ready" and waits for "go"; counting is turned on
 * before "go" and off at "done", when its `calls` have all completed, so
 * the count covers exactly the calls it reports. Counts rather than
 * seconds: under callgrind a busy machine made a timed warm-up a few
 * hundred calls, and per-call figures moved by 20 % with the JIT compiling
 * inside the window.
 */
async function measureClient(
  workload: ClientWorkload,
  impl: Impl,
  url: string,
  warmupCalls: number,
  calls: number,
): Promise<Measurement> {
  const dir = mkdtempSync(join(tmpdir(), "bench-callgrind-"));
  try {
    const child = underCallgrind(
      `${impl} client`,
      join(benchDir, "clients", `${impl}.ts`),
      [
        ...clientArgs(workload, url, 0, 0),
        "--warmup-calls",
        String(warmupCalls),
        "--calls",
        String(calls),
      ],
      dir,
    );
    try {
      // Under callgrind a call takes a few milliseconds.
      await child.next("ready", 300_000 + warmupCalls * 20);
      callgrindControl(["-i", "on"], child.pid);
      child.send("go");
      await child.next("done", 300_000 + calls * 20);
      callgrindControl(["-i", "off"], child.pid);
      callgrindControl(["-d"], child.pid);
      child.send("report");
      const result = await child.next("result", 60_000);
      const done = Number(result["calls"]);
      const errors = Number(result["errors"]);
      if (!(done > 0) || errors !== 0) {
        throw new Error(
          `${impl} client: ${errors} of ${done} calls failed (or none made)`,
        );
      }
      const instructions = dumpedInstructions(dir);
      return {
        instructions,
        calls: done,
        operations: done,
        perOperation: instructions / done,
      };
    } finally {
      await child.stop();
    }
  } finally {
    if (process.env["KEEP_CALLGRIND"] === undefined) {
      rmSync(dir, { recursive: true, force: true });
    } else {
      log(`kept ${dir}`);
    }
  }
}

interface Row {
  readonly id: string;
  readonly title: string;
  readonly unit: string;
  readonly results: Partial<Record<Impl, Measurement>>;
}

const rows: Row[] = [];
const started = performance.now();
const elapsed = () =>
  `[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s]`;

for (const workload of selected) {
  const impls = workload.impls.filter((impl) => wantedImpls.has(impl));
  const row: Row = {
    id: workload.id,
    title: workload.title,
    unit: workload.unit,
    results: {},
  };
  rows.push(row);
  if (workload.kind === "client") {
    // The floor server, natively, on the load core.
    const [command, args] = pinnedCommand(pinning, "load", process.execPath, [
      join(benchDir, "servers", "floor.ts"),
      "--http",
      "2",
      "--port",
      "0",
    ]);
    const server = new Child("floor server", command, args);
    try {
      const port = Number((await server.next("listening", 30_000))["port"]);
      for (const impl of impls) {
        log(
          `${elapsed()} ${workload.id}: ${impl} client (${clientWarmup} warm-up calls + ${clientCalls} counted under callgrind)`,
        );
        const result = await measureClient(
          workload,
          impl,
          `http://127.0.0.1:${port}`,
          clientWarmup,
          clientCalls,
        );
        row.results[impl] = result;
        log(
          `${elapsed()} ${workload.id}: ${impl}: ${Math.round(result.perOperation).toLocaleString("en-US")} instructions/${workload.unit} (${result.calls} calls)`,
        );
      }
    } finally {
      await server.stop();
    }
    continue;
  }
  let load: Omit<Parameters<typeof measure>[2], "headers"> & {
    headers: Record<string, string>;
  };
  if (workload.kind === "unary") {
    const request = unaryRequest(
      workload.message,
      workload.codec,
      workload.size,
    );
    load = {
      path: request.path,
      body: request.body,
      headers: unaryHeaders(request.contentType, workload.size),
      warmup: warmupCalls,
      measured: calls,
      operationsPerCall: 1,
    };
  } else {
    // At least one call per stream in flight, as in the bench.
    const streamCalls = (n: number) =>
      Math.max(workload.concurrency, Math.round(n / 500));
    load = {
      path: serverStreamPath,
      body: streamRequestBody(workload.count, workload.size),
      headers: streamHeaders(workload.gzip),
      warmup: warmupCalls === 0 ? 0 : streamCalls(warmupCalls),
      measured: streamCalls(calls),
      operationsPerCall: workload.count,
    };
  }
  for (const impl of impls) {
    log(
      `${elapsed()} ${workload.id}: ${impl} (${load.warmup} warm-up + ${load.measured} counted calls under callgrind)`,
    );
    const result = await measure(workload, impl, load);
    row.results[impl] = result;
    log(
      `${elapsed()} ${workload.id}: ${impl}: ${Math.round(result.perOperation).toLocaleString("en-US")} instructions/${workload.unit}`,
    );
  }
}

// The table: instructions per operation, and each over the floor's.
const shown = allImpls.filter((impl) => rows.some((r) => r.results[impl]));
const ratioOf = (row: Row, impl: Impl): number | undefined => {
  const mine = row.results[impl];
  const floor = row.results.floor;
  return mine !== undefined && floor !== undefined && impl !== "floor"
    ? mine.perOperation / floor.perOperation
    : undefined;
};
const header = [
  "workload",
  ...shown.map((impl) => `${impl} instr/op`),
  ...shown.filter((i) => i !== "floor").map((impl) => `${impl}/floor`),
];
const lines = rows.map((row) => [
  `${row.id} (per ${row.unit})`,
  ...shown.map((impl) => {
    const r = row.results[impl];
    return r === undefined
      ? "-"
      : Math.round(r.perOperation).toLocaleString("en-US");
  }),
  ...shown
    .filter((i) => i !== "floor")
    .map((impl) => {
      const ratio = ratioOf(row, impl);
      return ratio === undefined ? "-" : `${ratio.toFixed(2)}x`;
    }),
]);
const widths = header.map((h, i) =>
  Math.max(h.length, ...lines.map((l) => l[i]!.length)),
);
const format = (cells: readonly string[]) =>
  cells
    .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
    .join("  ");
process.stdout.write(
  `User-space instructions per operation (valgrind --tool=callgrind; servers: ${calls} counted calls after ${warmupCalls} warm-up calls; clients: ${clientCalls} counted calls after ${clientWarmup} warm-up calls; ratios over the floor)\n`,
);
process.stdout.write(`${format(header)}\n`);
for (const line of lines) process.stdout.write(`${format(line)}\n`);

writeFileSync(
  options.out,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      valgrind: execFileSync("valgrind", ["--version"]).toString().trim(),
      calls,
      warmup: warmupCalls,
      clientWarmup,
      clientCalls,
      workloads: rows.map((row) => ({
        ...row,
        ratios: Object.fromEntries(
          shown
            .filter((impl) => impl !== "floor")
            .map((impl) => [impl, ratioOf(row, impl) ?? null]),
        ),
      })),
    },
    null,
    2,
  )}\n`,
);
log(`wrote ${options.out}`);
