/**
 * Finds where a chunked body (RFC 9112 §7.1) ends without changing a byte, so
 * the proxy can pass it through intact. Pure: bytes in, counts out. Every
 * line must end in CRLF; chunk sizes and extensions are checked by
 * `parseChunkSizeLine` of `src/http1/framing.ts`.
 *
 * @module
 */
import { checkTrailerLine, FramingError, parseChunkSizeLine } from "../http1/framing.ts";

/** Longest chunk-size line (size, extensions, CRLF) accepted. */
export const MAX_CHUNK_LINE_BYTES = 4096;

/** The result of {@link ChunkedScanner.scan}. */
export interface ChunkedScanResult {
  /** How many leading bytes of the input belong to the body. */
  consumed: number;
  /** Whether the body (last chunk and trailers) ended within those bytes. */
  done: boolean;
}

type State = "size" | "data" | "data_cr" | "data_lf" | "trailer" | "done";

const CR = 0x0d;
const LF = 0x0a;

/**
 * Incremental chunked-body scanner.
 *
 * @example
 * ```ts
 * const s = new ChunkedScanner(8192);
 * s.scan(new TextEncoder().encode("3\r\nabc\r\n0\r\n\r\nNEXT")); // { consumed: 15, done: true }
 * ```
 */
export class ChunkedScanner {
  #state: State = "size";
  #line = "";
  /** The last byte of the line so far was CR (it must be followed by LF). */
  #sawCr = false;
  #remaining = 0;
  #trailerBytes = 0;
  readonly #maxTrailerBytes: number;

  /** `maxTrailerBytes` bounds the trailer section (use the head limit). */
  constructor(maxTrailerBytes: number) {
    this.#maxTrailerBytes = maxTrailerBytes;
  }

  /** Whether the body has ended. */
  get done(): boolean {
    return this.#state === "done";
  }

  /**
   * Scans the next bytes of the body. Consumes all of `bytes` unless the body
   * ends inside them. Throws {@link FramingError} on malformed framing (bad
   * size, bare CR or LF, data not followed by CRLF, a line or the trailers
   * over their limit).
   */
  scan(bytes: Uint8Array): ChunkedScanResult {
    let i = 0;
    while (i < bytes.length && this.#state !== "done") {
      switch (this.#state) {
        case "size":
        case "trailer": {
          const b = bytes[i++]!;
          if (this.#state === "trailer" && ++this.#trailerBytes > this.#maxTrailerBytes) {
            throw new FramingError(
              `Cannot parse chunked body: trailers exceed ${this.#maxTrailerBytes} bytes`,
            );
          }
          if (this.#sawCr) {
            if (b !== LF) throw new FramingError("Cannot parse chunked body: bare CR in a line");
            this.#sawCr = false;
            this.#endLine();
          } else if (b === CR) {
            this.#sawCr = true;
          } else if (b === LF) {
            throw new FramingError("Cannot parse chunked body: a line ends in a bare LF");
          } else {
            if (this.#line.length >= MAX_CHUNK_LINE_BYTES) {
              throw new FramingError(
                `Cannot parse chunked body: a line exceeds ${MAX_CHUNK_LINE_BYTES} bytes`,
              );
            }
            this.#line += String.fromCharCode(b);
          }
          break;
        }
        case "data": {
          const n = Math.min(this.#remaining, bytes.length - i);
          i += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = "data_cr";
          break;
        }
        case "data_cr": {
          if (bytes[i++] !== CR) {
            throw new FramingError("Cannot parse chunked body: chunk data is not followed by CRLF");
          }
          this.#state = "data_lf";
          break;
        }
        case "data_lf": {
          if (bytes[i++] !== LF) {
            throw new FramingError("Cannot parse chunked body: chunk data is not followed by CRLF");
          }
          this.#state = "size";
          break;
        }
      }
    }
    return { consumed: i, done: this.#state === "done" };
  }

  #endLine(): void {
    const line = this.#line;
    this.#line = "";
    if (this.#state === "trailer") {
      if (line === "") {
        this.#state = "done";
        return;
      }
      const why = checkTrailerLine(line);
      if (why !== undefined) throw new FramingError(why);
      return;
    }
    const size = parseChunkSizeLine(line);
    if (typeof size === "string") throw new FramingError(size);
    if (size === 0) {
      this.#state = "trailer";
    } else {
      this.#remaining = size;
      this.#state = "data";
    }
  }
}
