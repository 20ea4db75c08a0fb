/**
 * Finds where a chunked body (RFC 9112 §7.1) ends without changing a byte, so
 * the proxy can pass it through intact. Pure: bytes in, counts out.
 *
 * @module
 */

/** Longest chunk-size line (size, extensions, CRLF) accepted. */
export const MAX_CHUNK_LINE_BYTES = 4096;

/** Largest chunk size accepted (2^48 bytes; keeps arithmetic exact). */
export const MAX_CHUNK_SIZE = 2 ** 48;

/** The result of {@link ChunkedScanner.scan}. */
export interface ChunkedScanResult {
  /** How many leading bytes of the input belong to the body. */
  consumed: number;
  /** Whether the body (last chunk and trailers) ended within those bytes. */
  done: boolean;
}

type State = "size" | "data" | "data_cr" | "data_lf" | "trailer" | "done";

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
   * ends inside them. Throws `SyntaxError` on malformed framing and
   * `RangeError` when a line or the trailers exceed their limit.
   */
  scan(bytes: Uint8Array): ChunkedScanResult {
    let i = 0;
    while (i < bytes.length && this.#state !== "done") {
      switch (this.#state) {
        case "size": {
          const b = bytes[i++]!;
          if (b === 0x0a) {
            this.#endSizeLine();
          } else {
            if (this.#line.length >= MAX_CHUNK_LINE_BYTES) {
              throw new RangeError(
                `Cannot parse chunked body: chunk-size line exceeds ${MAX_CHUNK_LINE_BYTES} bytes`,
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
          const b = bytes[i++]!;
          if (b === 0x0d) this.#state = "data_lf";
          else if (b === 0x0a) this.#state = "size";
          else {throw new SyntaxError(
              "Cannot parse chunked body: chunk data is not followed by CRLF",
            );}
          break;
        }
        case "data_lf": {
          if (bytes[i++] !== 0x0a) {
            throw new SyntaxError("Cannot parse chunked body: chunk data is not followed by CRLF");
          }
          this.#state = "size";
          break;
        }
        case "trailer": {
          const b = bytes[i++]!;
          if (++this.#trailerBytes > this.#maxTrailerBytes) {
            throw new RangeError(
              `Cannot parse chunked body: trailers exceed ${this.#maxTrailerBytes} bytes`,
            );
          }
          if (b === 0x0a) {
            const line = this.#line;
            this.#line = "";
            if (line === "" || line === "\r") this.#state = "done";
          } else {
            this.#line += String.fromCharCode(b);
            if (this.#line.length > MAX_CHUNK_LINE_BYTES * 2) {
              throw new RangeError(`Cannot parse chunked body: a trailer line is too long`);
            }
          }
          break;
        }
      }
    }
    return { consumed: i, done: this.#state === "done" };
  }

  #endSizeLine(): void {
    let line = this.#line;
    this.#line = "";
    if (line.endsWith("\r")) line = line.slice(0, -1);
    const semi = line.indexOf(";");
    const sizeText = (semi === -1 ? line : line.slice(0, semi)).replace(/[ \t]+$/, "");
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) {
      throw new SyntaxError(
        `Cannot parse chunked body: "${sizeText.slice(0, 20)}" is not a chunk size`,
      );
    }
    const size = parseInt(sizeText, 16);
    if (size > MAX_CHUNK_SIZE) {
      throw new RangeError(
        `Cannot parse chunked body: chunk size ${size} is above ${MAX_CHUNK_SIZE}`,
      );
    }
    if (size === 0) {
      this.#state = "trailer";
    } else {
      this.#remaining = size;
      this.#state = "data";
    }
  }
}
