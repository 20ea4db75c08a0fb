/**
 * Slows down an address that fails to authenticate: each failure in the
 * window doubles the delay before the next answer, up to a cap. The delay is
 * for EVERY answer to that address, `auth_ok` included, so how fast an answer
 * comes does not tell a right token from a wrong one; and such an address may
 * run only {@link AuthThrottle.parallelWhileFailing} handshakes at once, so
 * guesses cannot be spread over parallel connections. State is bounded: the
 * oldest addresses are forgotten first. Pure: the clock is injected.
 *
 * @module
 */

/** Options for {@link AuthThrottle}. */
export interface AuthThrottleOptions {
  /** Failures are forgotten this long after the last one. @default 600000 */
  windowMs?: number;
  /** Delay after the first failure. @default 250 */
  baseDelayMs?: number;
  /** Largest delay. @default 10000 */
  maxDelayMs?: number;
  /** Addresses remembered at most. @default 10000 */
  maxEntries?: number;
  /** Handshakes an address with recent failures may run at once. @default 1 */
  parallelWhileFailing?: number;
  /** Clock. @default Date.now */
  now?: () => number;
}

interface Entry {
  failures: number;
  last: number;
}

/** Per-address failure counter that turns failures into a delay. */
export class AuthThrottle {
  readonly #window: number;
  readonly #base: number;
  readonly #max: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  /** Handshakes an address with recent failures may run at once. */
  readonly parallelWhileFailing: number;

  constructor(options: AuthThrottleOptions = {}) {
    this.#window = options.windowMs ?? 600_000;
    this.#base = options.baseDelayMs ?? 250;
    this.#max = options.maxDelayMs ?? 10_000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? Date.now;
    this.parallelWhileFailing = options.parallelWhileFailing ?? 1;
  }

  /** Whether `address` has failures within the window (it is being slowed down). */
  failing(address: string): boolean {
    return this.delayFor(address) > 0;
  }

  /** How long to wait before any answer to `address` (0 when it has no recent failures). */
  delayFor(address: string): number {
    const e = this.#entries.get(address);
    if (e === undefined) return 0;
    if (this.#now() - e.last > this.#window) {
      this.#entries.delete(address);
      return 0;
    }
    return Math.min(this.#max, this.#base * 2 ** Math.min(e.failures - 1, 20));
  }

  /** Counts a failure from `address`. */
  fail(address: string): void {
    const e = this.#entries.get(address);
    this.#entries.delete(address); // re-insert: Map order is age order
    this.#entries.set(address, { failures: (e?.failures ?? 0) + 1, last: this.#now() });
    while (this.#entries.size > this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** Forgets `address` after a success. */
  succeed(address: string): void {
    this.#entries.delete(address);
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.#entries.size;
  }
}
