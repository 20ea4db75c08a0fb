/**
 * A string that never shows itself in logs, JSON or `Deno.inspect`.
 *
 * @example
 * ```ts
 * const s = new Secret("hunter2");
 * String(s); // "***"
 * s.reveal(); // "hunter2"
 * ```
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The real value; call only where the secret is used. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "***";
  }

  toJSON(): string {
    return "***";
  }

  [Symbol.for("Deno.customInspect")](): string {
    return "Secret(***)";
  }
}
