/**
 * The one error type of the tunnel protocol.
 *
 * @module
 */
import { errorCodeName } from "./constants.ts";

/**
 * A violation of PROTOCOL.md: bad bytes, a broken limit or a misused id. Its
 * `code` is from the spec's error table (§15) and is what the session sends in
 * its GO_AWAY.
 *
 * @example
 * ```ts
 * import { ERROR_CODES, ProtocolError } from "@/tunnel/mod.ts";
 * const err = new ProtocolError(ERROR_CODES.FRAME_SIZE_ERROR, "Cannot decode frame: payload length 70000 exceeds limit 65536");
 * err.codeName; // "FRAME_SIZE_ERROR"
 * ```
 */
export class ProtocolError extends Error {
  /** The error code (PROTOCOL.md §15). */
  readonly code: number;

  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.code = code;
  }

  /** The name of {@link ProtocolError.code}, e.g. `FLOW_CONTROL_ERROR`. */
  get codeName(): string {
    return errorCodeName(this.code);
  }
}
