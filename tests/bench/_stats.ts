/**
 * Summary statistics for repeated benchmark samples.
 *
 * @module
 */

/** Median, minimum and maximum of a sample, plus the raw values. */
export interface Summary {
  /** The middle value (mean of the two middle values for an even count). */
  median: number;
  /** The smallest value. */
  min: number;
  /** The largest value. */
  max: number;
  /** How many values were summarised. */
  count: number;
  /** The values in the order they were measured. */
  values: number[];
}

/**
 * Returns the median of `values`.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * median([4, 1, 2, 3]); // 2.5
 * ```
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("Cannot take the median: no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const upper = sorted[mid]!;
  return sorted.length % 2 === 1 ? upper : (sorted[mid - 1]! + upper) / 2;
}

/** Returns median, min and max of `values` (which must not be empty). */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError("Cannot summarize: no values");
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    count: values.length,
    values: [...values],
  };
}

/**
 * Pairs two equally long series run by run and returns the ratio `a[i] / b[i]`
 * of each pair, so that a ratio compares figures taken side by side in time.
 */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.min(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const den = b[i]!;
    if (den > 0) out.push(a[i]! / den);
  }
  return out;
}
