/**
 * Rate-limits the log lines of refused connections so that a flood cannot
 * flood the log: per key (a reason and an address), the first refusal is
 * written at once, later ones within `intervalMs` are only counted and
 * reported as `suppressed` with the next line of that key, or by
 * {@link RefusalLog.flush}, which the caller runs on a timer. Pure: the clock
 * is injected and lines go to `emit`. At most `maxKeys` keys are tracked;
 * refusals past that are counted under one shared key.
 *
 * @module
 */

/** One line to write. */
export interface RefusalLine {
  /** The address of the last refused connection of this key. */
  peer: string;
  reason: string;
  /** Refusals of this key since the previous line that were not written. */
  suppressed: number;
}

/** Options for {@link RefusalLog}. */
export interface RefusalLogOptions {
  emit: (line: RefusalLine) => void;
  /** At most one line per key this often. @default 1000 */
  intervalMs?: number;
  /** Keys tracked at most. @default 1024 */
  maxKeys?: number;
  /** Clock. @default Date.now */
  now?: () => number;
}

interface KeyState {
  last: number;
  suppressed: number;
  peer: string;
  reason: string;
}

const OVERFLOW_KEY = "\0overflow";

/** See the module doc. */
export class RefusalLog {
  readonly #emit: (line: RefusalLine) => void;
  readonly #interval: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #keys = new Map<string, KeyState>();

  constructor(options: RefusalLogOptions) {
    this.#emit = options.emit;
    this.#interval = options.intervalMs ?? 1000;
    this.#maxKeys = options.maxKeys ?? 1024;
    this.#now = options.now ?? Date.now;
  }

  /** Records one refused connection of `peer` under `key`. */
  record(key: string, peer: string, reason: string): void {
    const now = this.#now();
    let k = key;
    let s = this.#keys.get(k);
    if (s === undefined && this.#keys.size >= this.#maxKeys) {
      this.flush();
      if (this.#keys.size >= this.#maxKeys) {
        k = OVERFLOW_KEY;
        s = this.#keys.get(k);
        reason = `${reason} (and refusals of other addresses and reasons)`;
      }
    }
    if (s === undefined) {
      this.#keys.set(k, { last: now, suppressed: 0, peer, reason });
      this.#emit({ peer, reason, suppressed: 0 });
      return;
    }
    s.peer = peer;
    s.reason = reason;
    if (now - s.last >= this.#interval) {
      const suppressed = s.suppressed;
      s.last = now;
      s.suppressed = 0;
      this.#emit({ peer, reason, suppressed });
      return;
    }
    s.suppressed++;
  }

  /**
   * Writes a summary line for each key with unwritten refusals whose interval
   * has passed, and forgets keys that have been quiet for an interval.
   */
  flush(): void {
    const now = this.#now();
    for (const [key, s] of this.#keys) {
      if (now - s.last < this.#interval) continue;
      if (s.suppressed > 0) {
        this.#emit({ peer: s.peer, reason: s.reason, suppressed: s.suppressed });
        s.suppressed = 0;
        s.last = now;
        continue;
      }
      this.#keys.delete(key);
    }
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#keys.size;
  }
}
