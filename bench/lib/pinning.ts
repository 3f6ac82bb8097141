// Which cores the processes run on. The server (or, in the client
// benchmark, the client) gets one core to itself and the load generator the
// other, so that neither steals CPU from the other and the per-request CPU
// of the measured process is not inflated by contention or migrations.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

export interface Pinning {
  /** Whether child processes are started under `taskset`. */
  readonly pinned: boolean;
  /** The core of the measured process (a server, or a client in the client benchmark). */
  readonly measuredCore: number | undefined;
  /** The core of the load generator (h2load, wrk, the streaming load client, the client benchmark's server). */
  readonly loadCore: number | undefined;
  /** One line for the report. */
  readonly note: string;
}

/** The CPUs this process may run on, from /proc/self/status ("0-1,4"). */
function allowedCpus(): number[] {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1];
    if (line === undefined) return [];
    const cpus: number[] = [];
    for (const part of line.trim().split(",")) {
      const [from, to] = part.split("-").map(Number);
      if (from === undefined || !Number.isFinite(from)) continue;
      for (let cpu = from; cpu <= (to ?? from); cpu++) cpus.push(cpu);
    }
    return cpus;
  } catch {
    return [];
  }
}

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function detectPinning(): Pinning {
  const unpinned = (why: string): Pinning => ({
    pinned: false,
    measuredCore: undefined,
    loadCore: undefined,
    note: `not pinned: ${why}; figures are noisier`,
  });
  if (!hasTaskset()) {
    return unpinned("taskset not found (Debian: apt-get install util-linux)");
  }
  const cpus = allowedCpus();
  if (cpus.length < 2) {
    return unpinned(
      `only ${Math.max(cpus.length, availableParallelism())} CPU available`,
    );
  }
  const [measuredCore, loadCore] = cpus as [number, number];
  return {
    pinned: true,
    measuredCore,
    loadCore,
    note: `measured process on CPU ${measuredCore}, load generator on CPU ${loadCore} (taskset)`,
  };
}

/** The command line that runs `command args` on the given role's core. */
export function pinnedCommand(
  pinning: Pinning,
  role: "measured" | "load",
  command: string,
  args: readonly string[],
): [string, string[]] {
  const core = role === "measured" ? pinning.measuredCore : pinning.loadCore;
  if (!pinning.pinned || core === undefined) return [command, [...args]];
  // taskset execs the command, so the child's pid is the command's pid.
  return ["taskset", ["-c", String(core), command, ...args]];
}

/**
 * Moves this process (all its threads) to the load core, so that the
 * orchestrator's own bits of work (reading /proc, parsing output) never run
 * on the measured core.
 */
export function pinSelf(pinning: Pinning): void {
  if (!pinning.pinned || pinning.loadCore === undefined) return;
  try {
    execFileSync(
      "taskset",
      ["-a", "-c", "-p", String(pinning.loadCore), String(process.pid)],
      { stdio: "ignore" },
    );
  } catch {
    // Not fatal: the orchestrator is idle while a window is measured.
  }
}
