// Small statistics helpers: medians over rounds, percentiles over latencies.

/** The median of the finite values, or undefined when there are none. */
export function median(
  values: readonly (number | undefined)[],
): number | undefined {
  const sorted = values
    .filter((v): v is number => v !== undefined && Number.isFinite(v))
    .sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[middle]
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** The p-th percentile (0..100, nearest rank) of values sorted ascending. */
export function percentileOfSorted(
  sorted: ArrayLike<number>,
  p: number,
): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** p50 and p99 of unsorted values (sorts a copy). */
export function p50p99(values: Float64Array | number[]): {
  p50: number | undefined;
  p99: number | undefined;
} {
  const sorted = Float64Array.from(values).sort();
  return {
    p50: percentileOfSorted(sorted, 50),
    p99: percentileOfSorted(sorted, 99),
  };
}
