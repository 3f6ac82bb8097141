import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

// --expose-gc can be set at run time; the gc function then exists in a new context.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/**
 * A full collection, now. Node grows the heap rather than collect until it
 * is far larger than what is live: generating 100 services peaked at 830 MB,
 * mostly garbage, with under 250 MB live. The plugin collects after each
 * phase that leaves much behind (the runtime's analysis, protoplugin's run,
 * cutting the files up for formatting), once the heap is over 96 MB.
 */
export function collectGarbage(): void {
  // A small run ends before a large heap matters: not worth the pause.
  if (process.memoryUsage().heapUsed > collectAboveBytes) gc();
}

const collectAboveBytes = 96 * 1024 * 1024;

/**
 * A collector for a loop: it collects whenever the old generation has grown
 * by `growthBytes` since its last collection, keeping the peak near the live
 * size at the cost of a few full collections (tens of milliseconds each).
 * The young generation is left out of the count: it fills and empties all
 * the time (up to 64 MB here), and its survivors show in the old one.
 */
export function garbageCollector(growthBytes = 64 * 1024 * 1024): () => void {
  let floor = oldGenerationBytes();
  return () => {
    if (oldGenerationBytes() - floor < growthBytes) return;
    gc();
    floor = oldGenerationBytes();
  };
}

function oldGenerationBytes(): number {
  let bytes = 0;
  for (const space of getHeapSpaceStatistics()) {
    if (!youngSpaces.has(space.space_name)) bytes += space.space_used_size;
  }
  return bytes;
}

const youngSpaces = new Set(["new_space", "new_large_object_space"]);
