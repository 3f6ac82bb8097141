// What a stretch of a process's work allocates, from V8's sampling heap
// profiler through the inspector: used by the servers (on "heap-start" /
// "heap-stop", bench/servers/common.ts) and by the benchmark clients
// (`--allocation`, bench/clients/driver.ts) for bench/memory.ts.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";

export interface Allocation {
  /** Bytes sampled between start and stop. */
  readonly bytes: number;
  /** The functions that allocated most, "name file:line", with their bytes. */
  readonly top: [string, number][];
}

/**
 * Starts sampling; the function returned stops it and sums the profile.
 * Objects the collector has already freed are counted too, so that every
 * allocation is seen, not only what survives. The session is connected
 * only here: the CPU benchmark's processes run without an inspector.
 */
export async function startHeapSampling(): Promise<() => Promise<Allocation>> {
  const session = new Session();
  session.connect();
  await session.post("HeapProfiler.startSampling", {
    // Bytes between samples, on average: small enough that a call's
    // allocations (about 10 KB) are sampled many times over a run.
    samplingInterval: 256,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = await session.post("HeapProfiler.stopSampling");
    session.disconnect();
    // The whole profile (call stacks included) for a closer look:
    // HEAP_PROFILE_OUT=/tmp/heap- writes /tmp/heap-<pid>.json.
    const out = process.env["HEAP_PROFILE_OUT"];
    if (out !== undefined && out !== "") {
      writeFileSync(`${out}${process.pid}.json`, JSON.stringify(profile));
    }
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
    return { bytes, top };
  };
}
