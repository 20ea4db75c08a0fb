/**
 * The error a stream operation fails with.
 *
 * @module
 */
import { errorCodeName } from "../tunnel/constants.ts";

/**
 * A stream ended by a reset (local or remote) or by the end of its session.
 * `code` is from PROTOCOL.md §15.
 */
export class StreamError extends Error {
  /** Error code (PROTOCOL.md §15). */
  readonly code: number;
  /** Whether the peer caused it (RST or GO_AWAY received). */
  readonly remote: boolean;

  constructor(code: number, message: string, remote: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "StreamError";
    this.code = code;
    this.remote = remote;
  }

  /** The name of {@link StreamError.code}. */
  get codeName(): string {
    return errorCodeName(this.code);
  }
}
