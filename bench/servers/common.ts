// What the three benchmarked servers share: their command line
// (`--http 1|2 --port 0`), listening on 127.0.0.1, and telling the
// orchestrator their port. Each server is its own process, started pinned to
// one core by the orchestrator, so that its CPU time is its own.
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { Session } from "node:inspector/promises";
import type { AddressInfo } from "node:net";
import {
  argValue,
  emit,
  exitWithParent,
  waitForCommand,
} from "../lib/child.ts";

export function serverArgs(): { httpVersion: 1 | 2; port: number } {
  const version = argValue("http", "2");
  if (version !== "1" && version !== "2") {
    throw new Error(`--http must be 1 or 2, not ${version}`);
  }
  return {
    httpVersion: version === "1" ? 1 : 2,
    port: Number(argValue("port", "0")),
  };
}

/** Listens on 127.0.0.1 and reports the port as `{"event":"listening","port":N}`. */
export function listenAndReport(
  server: http.Server | http2.Http2Server,
  port: number,
): void {
  server.listen(port, "127.0.0.1", () => {
    emit("listening", { port: (server.address() as AddressInfo).port });
  });
  exitWithParent();
  void answerMemory();
  void answerAllocation();
}

/**
 * On "memory" (bench/memory.ts): a full garbage collection when the server
 * runs with --expose-gc, then `{"event":"memory", rss, heapUsed, ...}`, so
 * that what the heap still holds can be told apart from what V8 keeps.
 */
async function answerMemory(): Promise<void> {
  for (;;) {
    await waitForCommand("memory");
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    emit("memory", { gc: gc !== undefined, ...process.memoryUsage() });
  }
}

/**
 * On "heap-start" (bench/memory.ts, `--only allocation`): starts V8's
 * sampling heap profiler, counting objects the collector has already freed
 * too, so that it sees every allocation, not only what survives; then
 * `{"event":"heap-sampling"}`. On "heap-stop": the bytes sampled in
 * between and the functions that allocated most of them, as
 * `{"event":"allocation", bytes, top: [[function, bytes], ...]}`.
 */
async function answerAllocation(): Promise<void> {
  // Connected only when asked: the CPU benchmark's servers run without an
  // inspector session.
  await waitForCommand("heap-start");
  const session = new Session();
  session.connect();
  for (;;) {
    await session.post("HeapProfiler.startSampling", {
      // Bytes between samples, on average: small enough that a call's
      // allocations (about 10 KB) are sampled many times over a run.
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    emit("heap-sampling");
    await waitForCommand("heap-stop");
    const { profile } = await session.post("HeapProfiler.stopSampling");
    const byFunction = new Map<string, number>();
    let bytes = 0;
    const visit = (node: (typeof profile)["head"]) => {
      if (node.selfSize > 0) {
        const frame = node.callFrame;
        const file = frame.url.split("/").slice(-2).join("/");
        const name = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
        byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
        bytes += node.selfSize;
      }
      for (const child of node.children) visit(child);
    };
    visit(profile.head);
    const top = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15);
    emit("allocation", { bytes, top });
    await waitForCommand("heap-start");
  }
}
