// Decompression bombs against the generated server (issue #12, item 2):
// many small compressed requests at once, each decompressing to the receive
// limit, while a client keeps making normal calls. Reports the server
// process's RSS before, at its peak and after GC, what the bombs got, and
// the latency of the normal calls during the flood.
//
//   node test/generate-for-tests.ts   # the generated Eliza server it serves
//   node bench/bombs.ts [--count 1000] [--encoding zstd|br|gzip] [--handler http2Stream|node]
//                       [--budget BYTES] [--queue N]
//
// The server runs in a child process (with --expose-gc) so that the client's
// memory is not counted; RSS is sampled every 5 ms.

import { fork, type ChildProcess } from "node:child_process";
import * as http2 from "node:http2";
import { fileURLToPath } from "node:url";
import * as zlib from "node:zlib";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    count: { type: "string", default: "1000" },
    encoding: { type: "string", default: "zstd" },
    handler: { type: "string", default: "http2Stream" },
    budget: { type: "string" },
    queue: { type: "string" },
    server: { type: "boolean", default: false },
  },
});

const readMaxBytes = 4 * 1024 * 1024;
const sayPath = "/connectrpc.eliza.v1.ElizaService/Say";

if (args.server) {
  await serve();
} else {
  await attack();
}

async function serve(): Promise<void> {
  const { createElizaServiceHandler } =
    await import("../test/gen/eliza/v1/eliza.ElizaService.ts");
  const handler = createElizaServiceHandler(
    { say: (request) => ({ sentence: `You said ${request.sentence}` }) },
    {
      readMaxBytes,
      ...(args.budget !== undefined
        ? { decompressionBudget: Number(args.budget) }
        : {}),
      ...(args.queue !== undefined
        ? { decompressionQueue: Number(args.queue) }
        : {}),
    },
  );
  const server =
    args.handler === "node"
      ? http2.createServer(handler.node)
      : http2.createServer().on("stream", handler.http2Stream);
  const gc = (globalThis as { gc?: () => void }).gc!;
  const settleGc = async () => {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  sampler.unref();
  let before = 0;
  process.on("message", async (message: string) => {
    if (message === "start") {
      await settleGc();
      before = process.memoryUsage.rss();
      peak = before;
      process.send!("started");
    } else if (message === "stop") {
      const peakSeen = Math.max(peak, process.memoryUsage.rss());
      await settleGc();
      process.send!({
        before,
        peak: peakSeen,
        after: process.memoryUsage.rss(),
      });
      server.close();
      process.exit(0);
    }
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address() as { port: number };
    process.send!({ port: address.port });
  });
}

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve) =>
    child.once("message", (m) => resolve(m as T)),
  );
}

function compress(data: Buffer, encoding: string): Buffer {
  switch (encoding) {
    case "zstd":
      return zlib.zstdCompressSync(data);
    case "br":
      return zlib.brotliCompressSync(data);
    case "gzip":
      return zlib.gzipSync(data, { level: 9 });
  }
  throw new Error(`unknown encoding ${encoding}`);
}

/** One Connect unary POST; resolves with the Connect code ("ok" for 200). */
function call(
  session: http2.ClientHttp2Session,
  body: Uint8Array,
  encoding: string | undefined,
): Promise<string> {
  return new Promise((resolve) => {
    const stream = session.request({
      ":method": "POST",
      ":path": sayPath,
      "content-type": "application/proto",
      "connect-protocol-version": "1",
      ...(encoding !== undefined ? { "content-encoding": encoding } : {}),
    });
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error) => resolve(`stream error ${error.message}`));
    stream.on("close", () => {
      if (status === 200) return resolve("ok");
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString()).code);
      } catch {
        resolve(`http ${status}`);
      }
    });
    stream.end(body);
  });
}

async function attack(): Promise<void> {
  const count = Number(args.count);
  const child = fork(
    fileURLToPath(import.meta.url),
    [...process.argv.slice(2), "--server"],
    {
      execArgv: ["--expose-gc"],
    },
  );
  const { port } = await nextMessage<{ port: number }>(child);
  const url = `http://127.0.0.1:${port}`;
  const sessions = Array.from({ length: 8 }, () => http2.connect(url));
  const normalSession = http2.connect(url);
  // "hi" as a SayRequest: field 1, length 2.
  const normal = new Uint8Array([0x0a, 0x02, 0x68, 0x69]);
  // Warm up: connections, JIT, one compressed call.
  for (let i = 0; i < 50; i++) await call(normalSession, normal, undefined);
  const bomb = compress(Buffer.alloc(readMaxBytes), args.encoding);
  child.send("start");
  await nextMessage(child);

  const outcomes = new Map<string, number>();
  let flooding = true;
  const latencies: number[] = [];
  const normalCalls = (async () => {
    const failures = new Map<string, number>();
    while (flooding) {
      const start = performance.now();
      const code = await call(normalSession, normal, undefined);
      latencies.push(performance.now() - start);
      if (code !== "ok") failures.set(code, (failures.get(code) ?? 0) + 1);
    }
    return failures;
  })();
  const floodStart = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const code = await call(
        sessions[i % sessions.length]!,
        bomb,
        args.encoding,
      );
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
    }),
  );
  const floodMs = performance.now() - floodStart;
  flooding = false;
  const normalFailures = await normalCalls;
  child.send("stop");
  const rss = await nextMessage<{
    before: number;
    peak: number;
    after: number;
  }>(child);
  for (const session of [...sessions, normalSession]) session.close();

  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length === 0
      ? "-"
      : `${latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1)} ms`;
  console.log(
    `${count} ${args.encoding} bombs of ${bomb.byteLength} bytes (${((count * bomb.byteLength) / 1024).toFixed(0)} KiB on the wire in all), each ${readMaxBytes} bytes decompressed, handler.${args.handler}`,
  );
  console.log(
    `server RSS: before ${mb(rss.before)}, peak ${mb(rss.peak)} (+${mb(rss.peak - rss.before)}), after GC ${mb(rss.after)} (+${mb(rss.after - rss.before)})`,
  );
  console.log(
    `bombs answered in ${floodMs.toFixed(0)} ms: ${[...outcomes].map(([code, n]) => `${code} ${n}`).join(", ")}`,
  );
  console.log(
    `normal calls during the flood: ${latencies.length}, median ${pct(0.5)}, p99 ${pct(0.99)}, max ${pct(1)}${normalFailures.size > 0 ? `, failed: ${[...normalFailures].map(([c, n]) => `${c} ${n}`).join(", ")}` : ""}`,
  );
}
