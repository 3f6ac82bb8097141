// Summarizes a V8 CPU profile (`node --cpu-prof`) of the plugin: self time
// by area (package or source directory) and the functions with the most
// self time.

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly hitCount?: number;
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/** Where a function comes from: a package, a directory of this repository, or V8's pseudo-frames. */
function area(url: string, functionName: string): string {
  if (url === "") {
    return functionName.startsWith("(") ? functionName : "(native)";
  }
  if (url.startsWith("node:")) return "node built-ins";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1]!;
  const dir = /\/(generator|templates|runtime-inline|bin)\//.exec(url);
  if (dir) return `${dir[1]}/`;
  return "other";
}

function shortUrl(url: string, repoRoot: string): string {
  const root = `file://${repoRoot}/`;
  let u = url.startsWith(root) ? url.slice(root.length) : url;
  u = u.replace(/^.*node_modules\//, "");
  return u;
}

export function summarizeProfile(
  profile: CpuProfile,
  repoRoot: string,
  top = 25,
): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Self time per node: the time from each sample to the next.
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const next = deltas[i + 1] ?? 0;
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + next);
  }
  const total = (profile.endTime - profile.startTime) / 1000;
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, micros] of self) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const a = area(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + micros / 1000);
    const key =
      url === ""
        ? functionName
        : `${functionName || "(anonymous)"}  ${shortUrl(url, repoRoot)}:${lineNumber + 1}`;
    functions.set(key, (functions.get(key) ?? 0) + micros / 1000);
  }
  const pct = (ms: number) => `${((ms / total) * 100).toFixed(1)}%`;
  const out = [
    `CPU profile of connect-standalone (node --cpu-prof): ${(total / 1000).toFixed(2)} s profiled`,
    "Self time by area:",
  ];
  for (const [a, ms] of [...areas].sort((x, y) => y[1] - x[1])) {
    if (ms / total < 0.005) continue;
    out.push(`  ${ms.toFixed(0).padStart(6)} ms ${pct(ms).padStart(6)}  ${a}`);
  }
  out.push(`Top ${top} functions by self time:`);
  for (const [f, ms] of [...functions]
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)) {
    out.push(`  ${ms.toFixed(0).padStart(6)} ms ${pct(ms).padStart(6)}  ${f}`);
  }
  return out.join("\n");
}
