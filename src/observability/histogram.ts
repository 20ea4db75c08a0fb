/**
 * A fixed-bucket latency histogram (Prometheus style): observing is a binary
 * search over the bucket bounds and two additions, with no allocation; a
 * snapshot gives cumulative counts ready for `_bucket{le=…}` lines.
 *
 * @module
 */

/**
 * Default bucket upper bounds in seconds, from 0.5 ms to 10 s (the `+Inf`
 * bucket is implied).
 */
export const LATENCY_BUCKETS_S: readonly number[] = Object.freeze([
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

/** Most bucket bounds a histogram may have. */
export const MAX_HISTOGRAM_BUCKETS = 64;

/** A point-in-time copy of a {@link Histogram}. */
export interface HistogramSnapshot {
  /** Upper bounds, strictly increasing (the `+Inf` bucket is implied). */
  buckets: readonly number[];
  /** Cumulative count per bucket (observations ≤ that bound), same length as `buckets`. */
  counts: readonly number[];
  /** Every observation (the `+Inf` bucket). */
  count: number;
  /** Sum of every observation. */
  sum: number;
}

/** One histogram as reported in the status snapshot. */
export interface HistogramSample {
  /** Metric name, e.g. `wmproxy_proxy_request_duration_seconds`. */
  metric: string;
  /** One line for `# HELP`. */
  help: string;
  /** Label names to values (without `le`). */
  labels: Record<string, string>;
  hist: HistogramSnapshot;
}

/**
 * A histogram with fixed upper bounds.
 *
 * @example
 * ```ts
 * import { Histogram } from "./histogram.ts";
 * const h = new Histogram([0.1, 1]);
 * h.observe(0.05);
 * h.observe(0.5);
 * h.observe(3);
 * const s = h.snapshot();
 * if (s.counts.join() !== "1,2" || s.count !== 3) throw new Error("unexpected");
 * ```
 */
export class Histogram {
  readonly #bounds: Float64Array;
  /** Per-bucket (not cumulative) counts; the last slot is the `+Inf` bucket. */
  readonly #counts: Float64Array;
  readonly #buckets: readonly number[];
  #count = 0;
  #sum = 0;

  /**
   * Throws a RangeError when `buckets` is empty, longer than
   * {@link MAX_HISTOGRAM_BUCKETS}, or not strictly increasing finite numbers.
   */
  constructor(buckets: readonly number[] = LATENCY_BUCKETS_S) {
    if (buckets.length === 0 || buckets.length > MAX_HISTOGRAM_BUCKETS) {
      throw new RangeError(
        `Cannot create histogram: expected 1 to ${MAX_HISTOGRAM_BUCKETS} buckets, got ${buckets.length}`,
      );
    }
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      if (!Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!)) {
        throw new RangeError(
          `Cannot create histogram: buckets must be strictly increasing finite numbers, got [${
            buckets.join(", ")
          }]`,
        );
      }
    }
    this.#buckets = Object.freeze([...buckets]);
    this.#bounds = Float64Array.from(buckets);
    this.#counts = new Float64Array(buckets.length + 1);
  }

  /** Records one value (seconds). NaN is ignored; negative values count as 0. */
  observe(seconds: number): void {
    if (seconds !== seconds) return; // NaN
    const v = seconds < 0 ? 0 : seconds;
    const bounds = this.#bounds;
    // First bucket whose bound is >= v (bounds.length = the +Inf slot).
    let lo = 0;
    let hi = bounds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bounds[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    this.#counts[lo]!++;
    this.#count++;
    this.#sum += v;
  }

  /** A copy with cumulative counts. */
  snapshot(): HistogramSnapshot {
    const counts = new Array<number>(this.#bounds.length);
    let total = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      total += this.#counts[i]!;
      counts[i] = total;
    }
    return { buckets: this.#buckets, counts, count: this.#count, sum: this.#sum };
  }
}
