// The load client for server streaming: h2load cannot frame a Connect
// streaming request or count the messages of a response, so this small
// node:http2 program does. It runs in its own process on the load core,
// keeps `--concurrency` ServerStream calls open on one h2c session, and
// counts the messages received, checking each call got all of them and a
// clean end of stream. It reads envelope headers only (5 bytes per
// message) and never decodes or decompresses, so that it stays far faster
// than the server it loads.
//
// Protocol (see lib/child.ts): {"event":"ready"} after the warm-up; on "go"
// it runs for --duration seconds, lets calls in flight finish (so every
// message the server produced in the window is counted), and reports
// {"event":"done"}; on "report" it sends {"event":"result", ...}.
import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { StreamRequestSchema } from "../gen/bench/v1/bench_pb.ts";
import { argValue, emit, waitForCommand } from "../lib/child.ts";
import { serverStreamPath } from "../lib/payloads.ts";
import { p50p99 } from "../lib/stats.ts";

const url = argValue("url");
const gzip = argValue("gzip", "0") === "1";
const concurrency = Number(argValue("concurrency", "4"));
const count = Number(argValue("count", "1000"));
const size = Number(argValue("size", "1024"));
const warmupSeconds = Number(argValue("warmup", "1"));
const durationSeconds = Number(argValue("duration", "2"));

const message = toBinary(
  StreamRequestSchema,
  create(StreamRequestSchema, { count, size }),
);
const requestBody = Buffer.allocUnsafe(5 + message.length);
requestBody[0] = 0;
requestBody.writeUInt32BE(message.length, 1);
requestBody.set(message, 5);

const requestHeaders: http2.OutgoingHttpHeaders = {
  ":method": "POST",
  ":path": serverStreamPath,
  "content-type": "application/connect+proto",
  "connect-protocol-version": "1",
  ...(gzip ? { "connect-accept-encoding": "gzip" } : {}),
};

// Large flow-control windows, so that the server writes as fast as it can
// and the client's WINDOW_UPDATEs are not what is measured.
const session = http2.connect(url, {
  settings: { initialWindowSize: 8 * 1024 * 1024 },
});
session.on("connect", () => session.setLocalWindowSize(64 * 1024 * 1024));
session.on("error", (error) => {
  emit("error", { message: String(error) });
  process.exit(1);
});

interface CallResult {
  messages: number;
  compressed: number;
  ok: boolean;
}

/** One ServerStream call, counting the envelopes of its response. */
function call(): Promise<CallResult> {
  return new Promise((resolve) => {
    const stream = session.request(requestHeaders);
    let status = 0;
    let messages = 0;
    let compressed = 0;
    // Envelope parsing state: header bytes seen so far, and the data bytes
    // left in the current envelope.
    const header = Buffer.alloc(5);
    let headerFill = 0;
    let remaining = 0;
    let flags = 0;
    let endStream: Buffer[] | undefined;
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => {
      let i = 0;
      while (i < chunk.length) {
        if (remaining === 0 && headerFill < 5) {
          const take = Math.min(5 - headerFill, chunk.length - i);
          chunk.copy(header, headerFill, i, i + take);
          headerFill += take;
          i += take;
          if (headerFill < 5) break;
          flags = header[0]!;
          remaining = header.readUInt32BE(1);
          if (flags & 0b10) endStream = [];
          else {
            messages++;
            if (flags & 0b01) compressed++;
          }
          if (remaining === 0) headerFill = 0;
          continue;
        }
        const take = Math.min(remaining, chunk.length - i);
        if (endStream !== undefined)
          endStream.push(chunk.subarray(i, i + take));
        remaining -= take;
        i += take;
        if (remaining === 0) headerFill = 0;
      }
    });
    const finish = () => {
      // A clean end: 200, every message, and an end-of-stream message
      // without an error.
      const end = endStream ? Buffer.concat(endStream).toString() : undefined;
      const ok =
        status === 200 &&
        messages === count &&
        end !== undefined &&
        !end.includes('"error"');
      resolve({ messages, compressed, ok });
    };
    stream.on("end", finish);
    stream.on("error", () => resolve({ messages, compressed, ok: false }));
    stream.end(requestBody);
  });
}

interface Totals {
  calls: number;
  errors: number;
  messages: number;
  compressed: number;
  latencies: number[];
}

/** Keeps `concurrency` calls going until `seconds` have passed, then lets them finish. */
async function run(seconds: number): Promise<Totals & { seconds: number }> {
  const totals: Totals = {
    calls: 0,
    errors: 0,
    messages: 0,
    compressed: 0,
    latencies: [],
  };
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const result = await call();
      totals.latencies.push(performance.now() - t0);
      totals.calls++;
      totals.messages += result.messages;
      totals.compressed += result.compressed;
      if (!result.ok) totals.errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ...totals, seconds: (performance.now() - start) / 1000 };
}

await new Promise<void>((resolve) => session.once("connect", () => resolve()));
if (warmupSeconds > 0) await run(warmupSeconds);
emit("ready");
await waitForCommand("go");
const totals = await run(durationSeconds);
emit("done");
await waitForCommand("report");
const { p50, p99 } = p50p99(totals.latencies);
emit("result", {
  calls: totals.calls,
  errors: totals.errors,
  messages: totals.messages,
  compressed: totals.compressed,
  seconds: totals.seconds,
  p50Ms: p50,
  p99Ms: p99,
});
session.close();
