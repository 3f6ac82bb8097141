// The stdout table: one row per implementation and workload, the median
// over rounds of each figure, and on the `ours` and `ours-node` rows their
// ratios of CPU per operation to connect-es and to the floor (below 1: ours
// uses less).
import type { Summary, WorkloadResult } from "../run.ts";
import { type Impl, impls } from "../workloads.ts";

function formatRate(value: number | undefined, unit: string): string {
  if (value === undefined) return "-";
  return `${Math.round(value).toLocaleString("en-US")} ${unit}/s`;
}

function formatMs(value: number | undefined): string {
  if (value === undefined) return "-";
  if (value < 1) return `${value.toFixed(2)} ms`;
  if (value < 100) return `${value.toPrecision(3)} ms`;
  return `${Math.round(value)} ms`;
}

function formatMicros(value: number | undefined): string {
  if (value === undefined) return "-";
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

function formatRatio(value: number | undefined): string {
  return value === undefined ? "" : `${value.toFixed(2)}x`;
}

/** A Markdown table with padded columns (readable as text, pastable in an issue). */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  alignRight: readonly boolean[],
): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    `| ${cells
      .map((c, i) =>
        alignRight[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!),
      )
      .join(" | ")} |`;
  const rule = `|${widths
    .map((w, i) =>
      alignRight[i] ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2),
    )
    .join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

export function formatResults(results: readonly WorkloadResult[]): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const result of results) {
    const { workload } = result;
    if (result.skipped !== undefined) {
      const failed = result.skipped.startsWith("failed");
      rows.push([
        workload.title,
        failed ? "(failed)" : "(skipped)",
        "",
        "",
        "",
        "",
        "",
        "",
      ]);
      notes.push(`${workload.id}: ${result.skipped}`);
      continue;
    }
    const ratios: Partial<Record<Impl, [string, string]>> = {
      ours: [
        formatRatio(result.ratios.cpuOursOverConnectEs),
        formatRatio(result.ratios.cpuOursOverFloor),
      ],
      "ours-node": [
        formatRatio(result.ratios.cpuOursNodeOverConnectEs),
        formatRatio(result.ratios.cpuOursNodeOverFloor),
      ],
    };
    let first = true;
    for (const impl of impls) {
      const s: Summary | undefined = result.summary[impl];
      if (s === undefined) continue;
      const [overConnectEs, overFloor] = ratios[impl] ?? ["", ""];
      rows.push([
        first ? workload.title : "",
        s.errors > 0 ? `${impl} (!)` : impl,
        formatRate(s.rate, workload.unit),
        formatMs(s.p50Ms),
        formatMs(s.p99Ms),
        `${formatMicros(s.cpuMicrosPerOp)}${workload.cpuOf === "client" ? " (client)" : ""}`,
        overConnectEs,
        overFloor,
      ]);
      first = false;
      if (s.errors > 0) {
        notes.push(
          `${workload.id}, ${impl}: ${s.errors} failed ${workload.unit === "msg" ? "calls" : `${workload.unit}s`} (excluded from the CPU per ${workload.unit})`,
        );
      }
    }
  }
  const table = markdownTable(
    [
      "workload",
      "impl",
      "rate",
      "p50",
      "p99",
      "CPU µs/op",
      "ours/connect-es",
      "ours/floor",
    ],
    rows,
    [false, false, true, true, true, true, true, true],
  );
  return [table, ...notes.map((n) => `(!) ${n}`)].join("\n");
}
