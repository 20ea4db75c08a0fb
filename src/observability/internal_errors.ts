/**
 * The last-resort handler: a promise rejection nobody handled or an exception
 * nobody caught is a bug, but it must not stop a proxy that serves everyone
 * else. It is logged as `internal_error` (message and stack), counted for
 * `/metrics` (`wmproxy_internal_errors_total`), and the process keeps serving.
 *
 * @module
 */
import { EVENTS } from "./events.ts";
import { errorMessage, type Logger } from "./log.ts";

/** Longest stack logged per error (characters). */
export const MAX_STACK_CHARS = 4096;

/** Counts and logs what would otherwise kill the process. */
export class InternalErrors {
  #count = 0;
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Errors seen since start. */
  get count(): number {
    return this.#count;
  }

  /**
   * Handles one `unhandledrejection` or `error` event: cancels its default
   * (exiting), logs `internal_error` and counts it.
   */
  readonly handle = (event: Event): void => {
    event.preventDefault();
    this.#count++;
    const cause = event.type === "unhandledrejection"
      ? (event as PromiseRejectionEvent).reason
      : (event as ErrorEvent).error ?? (event as ErrorEvent).message;
    const stack = cause instanceof Error && typeof cause.stack === "string"
      ? cause.stack.slice(0, MAX_STACK_CHARS)
      : undefined;
    this.#log.error(EVENTS.internal_error, {
      kind: event.type === "unhandledrejection" ? "unhandled_rejection" : "uncaught_exception",
      error: errorMessage(cause),
      ...(stack === undefined ? {} : { stack }),
    });
  };

  /** Listens on `target` (the global scope) until the result is disposed. */
  install(target: EventTarget = globalThis): Disposable {
    target.addEventListener("unhandledrejection", this.handle);
    target.addEventListener("error", this.handle);
    return {
      [Symbol.dispose]: () => {
        target.removeEventListener("unhandledrejection", this.handle);
        target.removeEventListener("error", this.handle);
      },
    };
  }
}
