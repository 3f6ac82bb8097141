// CPU time of a process as the OS accounts it: utime + stime from
// /proc/<pid>/stat, summed over all its threads (the JS thread, GC helpers,
// the libuv pool that runs zlib). Wall time would count time a server spent
// waiting for the load generator; CPU time per request does not, which is
// why it is the least noisy figure the benchmark reports.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

let ticksPerSecond: number | undefined;

/** The kernel's clock tick (USER_HZ), the unit of /proc/<pid>/stat times. */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    let value = NaN;
    try {
      value = Number(
        execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim(),
      );
    } catch {
      // getconf missing: 100 is USER_HZ on every Linux architecture Node runs on.
    }
    ticksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
  }
  return ticksPerSecond;
}

/** Whether CPU times come from /proc (Linux) or from `ps` (elsewhere, 10 ms or coarser). */
export function cpuSource(): "proc" | "ps" {
  return existsSync(`/proc/${process.pid}/stat`) ? "proc" : "ps";
}

/** User + system CPU time the process has used so far, in microseconds. */
export function cpuMicros(pid: number): number {
  if (cpuSource() === "proc") {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (the command name) is in parentheses and may contain spaces
    // or parentheses itself: the fields after it start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state), so utime (field 14) is fields[11] and
    // stime (field 15) fields[12]. Both are in clock ticks.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1e6) / clockTicksPerSecond();
  }
  // macOS and the BSDs: `ps -o time=` is [[dd-]hh:]mm:ss.ss of CPU time.
  const text = execFileSync("ps", ["-o", "time=", "-p", String(pid)], {
    encoding: "utf8",
  }).trim();
  const [days, rest] = text.includes("-") ? text.split("-") : ["0", text];
  const parts = (rest ?? "0").split(":").map(Number).reverse();
  const seconds =
    (parts[0] ?? 0) +
    (parts[1] ?? 0) * 60 +
    (parts[2] ?? 0) * 3600 +
    Number(days) * 86400;
  return seconds * 1e6;
}

/** The CPU resolution of one sample, in microseconds: one clock tick. */
export function cpuResolutionMicros(): number {
  return 1e6 / clockTicksPerSecond();
}
