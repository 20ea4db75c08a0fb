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
 *
 * A keep-alive connection can reuse one IdleTimer for all its waits:
 * {@link IdleTimer.pause} stops watching but leaves the underlying timer
 * pending, and {@link IdleTimer.restart} starts a new watch (with a new
 * callback) that reuses that pending timer instead of creating one. So a
 * request costs no `setTimeout`/`clearTimeout` pair, only about one timer per
 * `ms` of connection lifetime.
 */
export class IdleTimer {
  #last = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #fired = false;
  /** Watching (not paused, not fired, not cancelled). */
  #active = true;
  readonly #ms: number;
  #onIdle: () => void;

  constructor(ms: number, onIdle: () => void) {
    this.#ms = ms;
    this.#onIdle = onIdle;
    this.#arm(ms);
  }

  /** Whether `onIdle` ran (since the last {@link IdleTimer.restart}). */
  get fired(): boolean {
    return this.#fired;
  }

  /** Records activity now. */
  touch(): void {
    this.#last = Date.now();
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#active) return; // paused: the next restart() arms again
      const idle = Date.now() - this.#last;
      if (idle >= this.#ms) {
        this.#active = false;
        this.#fired = true;
        this.#onIdle();
      } else {
        this.#arm(this.#ms - idle);
      }
    }, ms);
  }

  /**
   * Stops watching without clearing the pending timer, so that a following
   * {@link IdleTimer.restart} is cheap. Call {@link IdleTimer.cancel} when the
   * timer is no longer needed at all.
   */
  pause(): void {
    this.#active = false;
  }

  /**
   * Starts watching again, from now, with `onIdle` as the new callback (and
   * `fired` reset). Reuses the pending timer when there is one: it fires at most
   * `ms` from now and then re-arms for the rest.
   */
  restart(onIdle: () => void): void {
    this.#onIdle = onIdle;
    this.#fired = false;
    this.#active = true;
    this.#last = Date.now();
    if (this.#timer === undefined) this.#arm(this.#ms);
  }

  /** Stops the timer; safe to call twice. */
  cancel(): void {
    this.#active = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  [Symbol.dispose](): void {
    this.cancel();
  }
}
