/**
 * Fake time for timer tests: while a FakeTime is alive, `setTimeout`,
 * `clearTimeout` and `Date.now` are replaced by a virtual clock that moves only
 * on {@link FakeTime.tick}, which runs the timers that fall due in order. No
 * test that uses it waits for real time, so none depends on the machine's
 * speed.
 *
 * ```ts
 * using time = new FakeTime();
 * const d = new Deadline(20, onExpire);
 * time.tick(19); // not yet
 * time.tick(1); // onExpire ran
 * ```
 *
 * @module
 */

interface FakeTimer {
  id: number;
  at: number;
  callback: () => void;
}

/** See the module doc. */
export class FakeTime implements Disposable {
  #now: number;
  #nextId = 1;
  readonly #timers = new Map<number, FakeTimer>();
  readonly #real = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    now: Date.now,
  };

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
    const fake = globalThis as unknown as {
      setTimeout: (cb: () => void, ms?: number) => number;
      clearTimeout: (id?: number) => void;
    };
    fake.setTimeout = (cb: () => void, ms = 0) => {
      const id = this.#nextId++;
      this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), callback: cb });
      return id;
    };
    fake.clearTimeout = (id?: number) => {
      if (id !== undefined) this.#timers.delete(id);
    };
    Date.now = () => this.#now;
  }

  /** The virtual time in ms since 1970. */
  get now(): number {
    return this.#now;
  }

  /** How many timers are pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves the clock `ms` forward, running every timer due on the way, earliest first. */
  tick(ms: number): void {
    const end = this.#now + ms;
    while (true) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers.values()) {
        if (
          t.at <= end &&
          (next === undefined || t.at < next.at || (t.at === next.at && t.id < next.id))
        ) {
          next = t;
        }
      }
      if (next === undefined) break;
      this.#timers.delete(next.id);
      this.#now = next.at;
      next.callback();
    }
    this.#now = end;
  }

  /** Restores the real clock and timers; pending fake timers are dropped. */
  [Symbol.dispose](): void {
    globalThis.setTimeout = this.#real.setTimeout;
    globalThis.clearTimeout = this.#real.clearTimeout;
    Date.now = this.#real.now;
    this.#timers.clear();
  }
}
