// What the three benchmarked clients share: keep `--in-flight` unary calls
// going on one HTTP/2 session against the server at `--url`, in the
// `--protocol` asked for (connect or grpc), and report
// calls, errors and per-call latency. The orchestrator reads this process's
// CPU time from /proc at "go" and at "done", so the figure covers exactly
// the measured calls; latency percentiles are computed after "done", outside
// the window. A phase lasts `--warmup` / `--duration` seconds, or, given
// `--warmup-calls` / `--calls`, that many calls: bench/instructions.ts
// counts calls, since under callgrind a time-bound warm-up makes fewer
// calls the busier the machine, and leaves the JIT compiling in the window.
// With `--allocation`, V8's sampling heap profiler runs over the measured
// calls, and the result says what they allocated (bench/memory.ts).
import { argValue, emit, waitForCommand } from "../lib/child.ts";
import { type Allocation, startHeapSampling } from "../lib/heap-sampling.ts";
import { p50p99 } from "../lib/stats.ts";

export interface ClientArgs {
  readonly url: string;
  /** What to speak: the Connect protocol or gRPC (workloads.ts). */
  readonly protocol: "connect" | "grpc";
  readonly size: number;
}

export function clientArgs(): ClientArgs {
  const protocol = argValue("protocol", "connect");
  if (protocol !== "connect" && protocol !== "grpc") {
    throw new Error(`--protocol must be connect or grpc, not ${protocol}`);
  }
  return {
    url: argValue("url"),
    protocol,
    size: Number(argValue("size", "98")),
  };
}

/**
 * Runs the benchmark protocol around `call`, which makes one call and
 * resolves true when the response is the expected one.
 */
export async function drive(call: () => Promise<boolean>): Promise<void> {
  const inFlight = Number(argValue("in-flight", "64"));
  const warmupSeconds = Number(argValue("warmup", "1"));
  const durationSeconds = Number(argValue("duration", "2"));
  const warmupCalls = Number(argValue("warmup-calls", "0"));
  const measuredCalls = Number(argValue("calls", "0"));

  /** Calls until `seconds` have passed, or until `count` calls have started when it is over 0. */
  const run = async (seconds: number, count: number) => {
    let calls = 0;
    let started = 0;
    let errors = 0;
    const latencies: number[] = [];
    const start = performance.now();
    const deadline = start + seconds * 1000;
    const more =
      count > 0 ? () => started++ < count : () => performance.now() < deadline;
    const worker = async () => {
      while (more()) {
        const t0 = performance.now();
        let ok = false;
        try {
          ok = await call();
        } catch {
          ok = false;
        }
        latencies.push(performance.now() - t0);
        calls++;
        if (!ok) errors++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    return {
      calls,
      errors,
      latencies,
      seconds: (performance.now() - start) / 1000,
    };
  };

  // One call first: it opens the session, so that connecting is neither
  // in the warm-up's count nor in the window.
  if (!(await call())) {
    emit("error", {
      message: "the first call did not get the expected response",
    });
    return;
  }
  if (warmupCalls > 0 || warmupSeconds > 0) {
    await run(warmupSeconds, warmupCalls);
  }
  emit("ready");
  await waitForCommand("go");
  const stopSampling = process.argv.includes("--allocation")
    ? await startHeapSampling()
    : undefined;
  const result = await run(durationSeconds, measuredCalls);
  const allocation: Allocation | undefined = await stopSampling?.();
  emit("done");
  await waitForCommand("report");
  const { p50, p99 } = p50p99(result.latencies);
  emit("result", {
    calls: result.calls,
    errors: result.errors,
    seconds: result.seconds,
    p50Ms: p50,
    p99Ms: p99,
    ...allocation,
  });
}
