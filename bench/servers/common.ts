// What the three benchmarked servers share: their command line
// (`--http 1|2 --port 0`), listening on 127.0.0.1, and telling the
// orchestrator their port. Each server is its own process, started pinned to
// one core by the orchestrator, so that its CPU time is its own.
import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  argValue,
  emit,
  exitWithParent,
  waitForCommand,
} from "../lib/child.ts";
import { startHeapSampling } from "../lib/heap-sampling.ts";

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
 * sampling heap profiler (bench/lib/heap-sampling.ts), then
 * `{"event":"heap-sampling"}`. On "heap-stop": the bytes sampled in
 * between and the functions that allocated most of them, as
 * `{"event":"allocation", bytes, top: [[function, bytes], ...]}`.
 */
async function answerAllocation(): Promise<void> {
  for (;;) {
    await waitForCommand("heap-start");
    const stop = await startHeapSampling();
    emit("heap-sampling");
    await waitForCommand("heap-stop");
    emit("allocation", { ...(await stop()) });
  }
}
