/**
 * A one-shot timer that runs `onExpire` unless cancelled first. Used to bound
 * handshakes and waits by closing the connection, which makes a pending read
 * fail; no promise races.
 *
 * @module
 */

/** See the module doc. */
export class Deadline {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expired = false;

  constructor(ms: number, onExpire: () => void) {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#expired = true;
      onExpire();
    }, ms);
  }

  /** Whether the deadline passed (and `onExpire` ran). */
  get expired(): boolean {
    return this.#expired;
  }

  /** Stops the timer; safe to call twice. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  [Symbol.dispose](): void {
    this.cancel();
  }
}

/**
 * Calls `onIdle` once no {@link IdleTimer.touch} happened for `ms`. One timer,
 * re-armed lazily: touching costs a clock read, not a timer.
 */
export class IdleTimer {
  #last = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #fired = false;
  readonly #ms: number;
  readonly #onIdle: () => void;

  constructor(ms: number, onIdle: () => void) {
    this.#ms = ms;
    this.#onIdle = onIdle;
    this.#arm(ms);
  }

  /** Whether `onIdle` ran. */
  get fired(): boolean {
    return this.#fired;
  }

  /** Records activity now. */
  touch(): void {
    this.#last = Date.now();
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      const idle = Date.now() - this.#last;
      if (idle >= this.#ms) {
        this.#timer = undefined;
        this.#fired = true;
        this.#onIdle();
      } else {
        this.#arm(this.#ms - idle);
      }
    }, ms);
  }

  /** Stops the timer; safe to call twice. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  [Symbol.dispose](): void {
    this.cancel();
  }
}
