/**
 * Jittered exponential backoff for reconnecting ("full jitter" over a doubling
 * cap): pure, so the schedule is testable with a seeded random source.
 *
 * @module
 */

/** Options for {@link Backoff}. */
export interface BackoffOptions {
  /** First delay cap in ms. */
  initialMs: number;
  /** Largest delay in ms. */
  maxMs: number;
  /** Random source in [0, 1). @default Math.random */
  random?: () => number;
}

/**
 * Delays between reconnect attempts: attempt n waits a random time between half
 * of and the whole of `min(maxMs, initialMs * 2^n)`, so clients that lost the
 * same server spread out instead of returning all at once.
 */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    if (options.initialMs <= 0 || options.maxMs < options.initialMs) {
      throw new RangeError(
        `Cannot create backoff: need 0 < initialMs <= maxMs, got ${options.initialMs} and ${options.maxMs}`,
      );
    }
    this.#initial = options.initialMs;
    this.#max = options.maxMs;
    this.#random = options.random ?? Math.random;
  }

  /** Failed attempts since the last {@link reset}. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in ms; counts one more failure. */
  next(): number {
    const cap = Math.min(this.#max, this.#initial * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(cap / 2 + this.#random() * (cap / 2));
  }

  /** After a success: the next failure starts from `initialMs` again. */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (without throwing). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
