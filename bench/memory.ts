// `node bench/memory.ts`: the memory a server holds while it serves, as
// the OS sees it (resident set size, /proc/<pid>/status), for ours, the
// floor (raw node:http2) and connect-es in the same run:
//
// 1. one server-streaming call of --count messages (default 1,000,000) of
//    --size data bytes (default 10), on a fresh server per implementation:
//    RSS at start, peak RSS (VmHWM, kept by the kernel: no sampling), and
//    the peak over the floor's. Memory that grows with every message shows
//    here as hundreds of MiB; a call that holds nothing per message peaks
//    near the floor. Target: ours at most the floor's peak + 64 MiB.
// 2. --unary calls (default 500,000) of the 98-byte echo, 64 in flight on
//    4 HTTP/2 connections that stay open throughout, on another fresh
//    server per implementation, after a warm-up of --unary-warmup calls
//    (default 500,000) on the same connections: RSS before and after, and
//    RSS and heap used after a full GC (the servers run with --expose-gc).
//    Target: ours grows by at most 10 %. Heap used after a GC is the figure
//    that shows calls leaving something behind; RSS also follows what V8
//    reserves, which for ours keeps growing for a few hundred thousand
//    calls before it settles (after 50,000 it still grew 20 % over the next
//    500,000 here, with the heap used unchanged; after 1,000,000, 0.2 %).
// 3. what a unary call allocates: --allocation calls (default 20,000) of
//    the 98-byte echo (the same load as 2), after --allocation-warmup
//    (default 40,000), with V8's sampling heap profiler running in the
//    server (inspector, objects already collected counted too): bytes per
//    call and the functions that allocate most. Garbage is what the
//    collector works through, a visible share of a small call's CPU.
// 4. the same for the clients of the CPU benchmark (bench/clients/*.ts),
//    Connect and gRPC, 64 calls in flight on one HTTP/2 session against
//    the floor server; the profiler runs in the client.
//
// Servers are those of the CPU benchmark (bench/servers/*.ts), HTTP/2 on
// their "stream" event; the streaming client is in this process (node:http2
// with large flow-control windows, counting envelopes without decoding
// them), pinned to the other core when taskset
// is there. bench/gen is regenerated first (--no-generate skips it).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(benchDir, "..");

const { values: options } = parseArgs({
  options: {
    count: { type: "string", default: "1000000" },
    size: { type: "string", default: "10" },
    unary: { type: "string", default: "500000" },
    "unary-warmup": { type: "string", default: "500000" },
    allocation: { type: "string", default: "20000" },
    "allocation-warmup": { type: "string", default: "40000" },
    impls: { type: "string", default: "floor,ours,connect-es" },
    only: { type: "string" },
    "no-generate": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (options.help) {
  process.stdout.write(`node bench/memory.ts [options]
  --count N         messages of the server stream (default 1000000)
  --size N          data bytes per message (default 10)
  --unary N         unary calls (default 500000; 0 skips)
  --unary-warmup N  unary calls before the first reading (default 500000)
  --allocation N    unary calls sampled for allocation (default 20000; 0 skips)
  --allocation-warmup N
                    unary calls before sampling starts (default 40000)
  --impls a,b       implementations (default floor,ours,connect-es)
  --only stream|unary|allocation
  --no-generate     use bench/gen as it is
`);
  process.exit(0);
}

const count = Number(options.count);
const size = Number(options.size);
const unaryCalls = Number(options.unary);
const unaryWarmup = Number(options["unary-warmup"]);
const allocationCalls = Number(options.allocation);
if (
  options.only !== undefined &&
  !["stream", "unary", "allocation"].includes(options.only)
) {
  throw new Error(
    `--only must be stream, unary or allocation, not ${options.only}`,
  );
}
const allocationWarmup = Number(options["allocation-warmup"]);
const impls = options.impls.split(",") as ("floor" | "ours" | "connect-es")[];
const log = (line: string) => process.stderr.write(`${line}\n`);

if (!options["no-generate"]) {
  log("generating bench/gen");
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
const { create, toBinary } = await import("@bufbuild/protobuf");
const { StreamRequestSchema } = await import("./gen/bench/v1/bench_pb.ts");
const { serverStreamPath, unaryRequest, unaryPath } =
  await import("./lib/payloads.ts");
const { Child } = await import("./lib/processes.ts");
const { detectPinning, pinSelf, pinnedCommand } =
  await import("./lib/pinning.ts");

const pinning = detectPinning();
pinSelf(pinning);
log(pinning.note);

const MiB = 1024 * 1024;

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function rss(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string) =>
    Number(new RegExp(`^${name}:\\s*(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}

async function startServer(impl: string) {
  const [command, args] = pinnedCommand(pinning, "measured", process.execPath, [
    // For "memory": a full collection before the heap is read.
    "--expose-gc",
    join(benchDir, `servers/${impl}.ts`),
    "--http",
    "2",
    "--port",
    "0",
  ]);
  const child = new Child(`${impl} server`, command, args);
  const event = await child.next("listening", 30_000);
  return { child, url: `http://127.0.0.1:${Number(event["port"])}` };
}

/** One ServerStream call; resolves with the messages counted and whether it ended cleanly. */
function streamCall(
  url: string,
): Promise<{ messages: number; ok: boolean; seconds: number }> {
  const message = toBinary(
    StreamRequestSchema,
    create(StreamRequestSchema, { count, size }),
  );
  const body = Buffer.alloc(5 + message.length);
  body.writeUInt32BE(message.length, 1);
  body.set(message, 5);
  const started = performance.now();
  return new Promise((resolve) => {
    const session = http2.connect(url, {
      settings: { initialWindowSize: 8 * MiB },
    });
    session.on("connect", () => session.setLocalWindowSize(64 * MiB));
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": serverStreamPath,
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
    });
    let status = 0;
    let messages = 0;
    let endStream = false;
    // Envelope state: header bytes still to read, payload bytes still to skip.
    let headerLeft = 5;
    let flags = 0;
    let length = 0;
    let payloadLeft = 0;
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (chunk: Buffer) => {
      let i = 0;
      while (i < chunk.length) {
        if (payloadLeft > 0) {
          const take = Math.min(payloadLeft, chunk.length - i);
          payloadLeft -= take;
          i += take;
          continue;
        }
        const byte = chunk[i++]!;
        if (headerLeft === 5) flags = byte;
        else length = length * 256 + byte;
        if (--headerLeft === 0) {
          if ((flags & 0b10) !== 0) endStream = true;
          else messages++;
          payloadLeft = length;
          headerLeft = 5;
          length = 0;
        }
      }
    });
    const finish = (ok: boolean) => {
      session.close();
      resolve({
        messages,
        ok: ok && status === 200 && endStream && messages === count,
        seconds: (performance.now() - started) / 1000,
      });
    };
    stream.on("end", () => finish(true));
    stream.on("error", () => finish(false));
    stream.end(body);
  });
}

/** RSS, then RSS and heap used after a full collection in the server. */
async function memory(child: InstanceType<typeof Child>) {
  const raw = rss(child.pid).rss;
  child.send("memory");
  const event = await child.next("memory", 30_000);
  return {
    rss: raw,
    rssAfterGc: Number(event["rss"]),
    heapAfterGc: Number(event["heapUsed"]),
    heapTotalAfterGc: Number(event["heapTotal"]),
    externalAfterGc: Number(event["external"]),
  };
}

const fmt = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
const results: Record<string, unknown> = {
  node: process.version,
  pinning: pinning.note,
  count,
  size,
  unaryCalls,
};

if (options.only === undefined || options.only === "stream") {
  log(`\n1. one server stream of ${count} messages of ${size} data bytes`);
  const stream: Record<string, { start: number; peak: number }> = {};
  for (const impl of impls) {
    const { child, url } = await startServer(impl);
    try {
      const start = rss(child.pid).rss;
      const call = await streamCall(url);
      if (!call.ok) throw new Error(`${impl}: the stream did not complete`);
      const { peak } = rss(child.pid);
      stream[impl] = { start, peak };
      log(
        `  ${impl.padEnd(10)} start ${fmt(start).padStart(8)}  peak ${fmt(peak).padStart(8)}  (${call.seconds.toFixed(1)} s)`,
      );
    } finally {
      await child.stop();
    }
  }
  const floor = stream["floor"];
  const ours = stream["ours"];
  if (floor !== undefined && ours !== undefined) {
    const over = ours.peak - floor.peak;
    log(
      `  ours peaks ${fmt(over)} over the floor (target: at most 64 MiB): ${over <= 64 * MiB ? "met" : "NOT MET"}`,
    );
  }
  results["stream"] = stream;
}

/**
 * Unary calls on `sessions` HTTP/2 connections kept open from the warm-up
 * to the end, `inFlight` at a time: what is measured is what calls leave
 * behind, not what connections do. (h2load opens new connections on every
 * run; node:http2 then keeps tens of MiB more per run of 64 connections,
 * the floor as much as ours.)
 */
function unaryLoad(url: string, sessions = 4, inFlight = 64) {
  const { body, contentType } = unaryRequest("payload", "binary", 98);
  const open = Array.from({ length: sessions }, () => {
    const session = http2.connect(url);
    session.on("error", () => {});
    return session;
  });
  const headers = {
    ":method": "POST",
    ":path": unaryPath,
    "content-type": contentType,
    "connect-protocol-version": "1",
  };
  const call = (session: http2.ClientHttp2Session) =>
    new Promise<boolean>((resolve) => {
      const stream = session.request(headers);
      let status = 0;
      let length = 0;
      stream.on("response", (h) => (status = Number(h[":status"])));
      stream.on("data", (chunk: Buffer) => (length += chunk.length));
      stream.on("end", () => resolve(status === 200 && length === body.length));
      stream.on("error", () => resolve(false));
      stream.end(body);
    });
  return {
    async run(n: number): Promise<void> {
      let started = 0;
      let failed = 0;
      const worker = async (index: number) => {
        const session = open[index % sessions]!;
        while (started < n) {
          started++;
          if (!(await call(session))) failed++;
        }
      };
      await Promise.all(Array.from({ length: inFlight }, (_, i) => worker(i)));
      if (failed > 0) throw new Error(`${failed} of ${n} unary calls failed`);
    },
    close(): void {
      for (const session of open) session.close();
    },
  };
}

if (
  (options.only === undefined || options.only === "unary") &&
  unaryCalls > 0
) {
  log(
    `\n2. ${unaryCalls} unary calls (98 B echo, 64 in flight on 4 connections), after ${unaryWarmup}`,
  );
  type Reading = Awaited<ReturnType<typeof memory>>;
  const unary: Record<string, { before: Reading; after: Reading }> = {};
  const pct = (before: number, after: number) => {
    const growth = ((after - before) / before) * 100;
    return `${growth >= 0 ? "+" : ""}${growth.toFixed(1)} %`;
  };
  for (const impl of impls) {
    const { child, url } = await startServer(impl);
    const load = unaryLoad(url);
    try {
      await load.run(unaryWarmup);
      const before = await memory(child);
      await load.run(unaryCalls);
      const after = await memory(child);
      unary[impl] = { before, after };
      log(
        `  ${impl.padEnd(10)} RSS ${fmt(before.rss).padStart(8)} -> ${fmt(after.rss).padStart(8)} (${pct(before.rss, after.rss)});` +
          ` after a full GC: RSS ${fmt(before.rssAfterGc)} -> ${fmt(after.rssAfterGc)} (${pct(before.rssAfterGc, after.rssAfterGc)}),` +
          ` heap used ${(before.heapAfterGc / MiB).toFixed(1)} -> ${(after.heapAfterGc / MiB).toFixed(1)} MiB`,
      );
    } finally {
      load.close();
      await child.stop();
    }
  }
  const ours = unary["ours"];
  if (ours !== undefined) {
    const growth = (ours.after.rss - ours.before.rss) / ours.before.rss;
    log(
      `  ours RSS grows ${pct(ours.before.rss, ours.after.rss)} (target: at most 10 %): ${growth <= 0.1 ? "met" : "NOT MET"}`,
    );
  }
  results["unary"] = unary;
}

if (
  (options.only === undefined || options.only === "allocation") &&
  allocationCalls > 0
) {
  log(
    `\n3. allocation of ${allocationCalls} unary calls (98 B echo, as in 2), after ${allocationWarmup}`,
  );
  interface PerCall {
    bytesPerCall: number;
    top: [string, number][];
  }
  /** An allocation event's bytes and top functions per call, logged after `label`. */
  const perCall = (event: Record<string, unknown>, label: string): PerCall => {
    const top = (event["top"] as [string, number][]).map(
      ([name, bytes]): [string, number] => [name, bytes / allocationCalls],
    );
    const bytesPerCall = Number(event["bytes"]) / allocationCalls;
    log(
      `  ${label} ${(bytesPerCall / 1024).toFixed(1)} KB per call; most by ` +
        top
          .slice(0, 4)
          .map(([name, bytes]) => `${name} ${bytes.toFixed(0)} B`)
          .join(", "),
    );
    return { bytesPerCall, top };
  };
  const allocation: Record<string, PerCall> = {};
  for (const impl of impls) {
    const { child, url } = await startServer(impl);
    const load = unaryLoad(url);
    try {
      await load.run(allocationWarmup);
      child.send("heap-start");
      await child.next("heap-sampling", 30_000);
      await load.run(allocationCalls);
      child.send("heap-stop");
      const event = await child.next("allocation", 120_000);
      allocation[impl] = perCall(event, impl.padEnd(10));
    } finally {
      load.close();
      await child.stop();
    }
  }
  results["allocation"] = allocation;

  log(
    `\n4. allocation of ${allocationCalls} unary client calls (98 B echo, 64 in flight on one HTTP/2 session, against the floor server), after ${allocationWarmup}`,
  );
  const clientAllocation: Record<string, Record<string, PerCall>> = {};
  // The floor server is the peer of every client, pinned to the other core.
  const [serverCommand, serverArgs] = pinnedCommand(
    pinning,
    "load",
    process.execPath,
    [join(benchDir, "servers/floor.ts"), "--http", "2", "--port", "0"],
  );
  const server = new Child("floor server", serverCommand, serverArgs);
  try {
    const port = Number((await server.next("listening", 30_000))["port"]);
    for (const protocol of ["connect", "grpc"] as const) {
      const byImpl: (typeof clientAllocation)[string] = {};
      for (const impl of impls) {
        const [command, args] = pinnedCommand(
          pinning,
          "measured",
          process.execPath,
          [
            join(benchDir, `clients/${impl}.ts`),
            "--url",
            `http://127.0.0.1:${port}`,
            "--protocol",
            protocol,
            "--size",
            "98",
            "--in-flight",
            "64",
            "--warmup-calls",
            String(allocationWarmup),
            "--calls",
            String(allocationCalls),
            "--allocation",
          ],
        );
        const child = new Child(`${impl} client`, command, args);
        try {
          await child.next("ready", 120_000);
          child.send("go");
          await child.next("done", 120_000);
          child.send("report");
          const result = await child.next("result", 60_000);
          if (Number(result["errors"]) !== 0) {
            throw new Error(
              `${impl} client: ${String(result["errors"])} calls failed`,
            );
          }
          byImpl[impl] = perCall(
            result,
            `${protocol.padEnd(7)} ${impl.padEnd(10)}`,
          );
        } finally {
          await child.stop();
        }
      }
      clientAllocation[protocol] = byImpl;
    }
  } finally {
    await server.stop();
  }
  results["clientAllocation"] = clientAllocation;
}

process.stdout.write(`${JSON.stringify(results)}\n`);
