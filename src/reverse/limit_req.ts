/**
 * Request-rate limiting as nginx's `limit_req` does it: a leaky bucket per
 * key that drains at `rate`; a request adds one; more than `burst` waiting is
 * refused; with `nodelay` the accepted excess is not delayed. State per zone
 * is bounded: the least recently seen key is evicted first (B21: never
 * "refuse everyone when full").
 *
 * @module
 */
import type { LimitReqZoneConfig } from "../config/http_section.ts";

interface Bucket {
  /** Requests waiting, in thousandths (nginx's `excess`). */
  excess: number;
  /** When the last accepted request arrived (ms). */
  last: number;
}

/** The verdict for one request. */
export type LimitVerdict =
  | { kind: "pass" }
  | { kind: "delay"; ms: number }
  | { kind: "reject" };

/** One `limit_req_zones` entry with its buckets. */
export class LimitReqZone {
  readonly name: string;
  readonly key: string;
  readonly #ratePerMs: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(config: LimitReqZoneConfig) {
    this.name = config.name;
    this.key = config.key;
    this.#ratePerMs = config.rate_per_second / 1000;
    this.#maxKeys = config.max_keys;
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Accounts one request of `key` at time `now` (ms) against `burst`.
   * Rejected requests do not fill the bucket.
   */
  check(key: string, burst: number, nodelay: boolean, now: number): LimitVerdict {
    const bucket = this.#buckets.get(key);
    let excess = 0;
    if (bucket !== undefined) {
      const elapsed = Math.max(0, now - bucket.last);
      excess = Math.max(0, bucket.excess - this.#ratePerMs * elapsed * 1000 + 1000);
      if (excess > burst * 1000) return { kind: "reject" };
      this.#buckets.delete(key); // re-insert: most recently seen last
    }
    this.#buckets.set(key, { excess, last: now });
    if (this.#buckets.size > this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (excess === 0 || nodelay) return { kind: "pass" };
    return { kind: "delay", ms: Math.ceil(excess / 1000 / this.#ratePerMs) };
  }
}
