/**
 * A read buffer over a {@link ByteConn} for message heads: bytes are read into
 * one growable buffer (bounded by `maxSize`), parsed in place and consumed.
 * Leftover bytes (pipelined requests, early body bytes) stay available.
 *
 * @module
 */
import type { ByteConn } from "../transport/conn.ts";

/** Options for {@link BufferedReader}. */
export interface BufferedReaderOptions {
  /** First buffer size. @default 16384 */
  initialSize?: number;
  /** Largest buffer size; filling a full buffer of this size throws `RangeError`. */
  maxSize: number;
}

/** A bounded read buffer; see the module doc. */
export class BufferedReader {
  readonly conn: ByteConn;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  readonly #maxSize: number;

  constructor(conn: ByteConn, options: BufferedReaderOptions) {
    this.conn = conn;
    this.#maxSize = Math.max(options.maxSize, 64);
    this.#buf = new Uint8Array(Math.min(options.initialSize ?? 16384, this.#maxSize));
  }

  /** The bytes read but not yet consumed (a view; valid until the next fill). */
  buffered(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** How many bytes are buffered. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** Marks `n` buffered bytes as used. */
  consume(n: number): void {
    if (n > this.#end - this.#start) {
      throw new RangeError(`Cannot consume ${n} bytes: only ${this.length} buffered`);
    }
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /**
   * Reads more bytes into the buffer; resolves to the count, or `null` at end
   * of stream. Throws `RangeError` when `maxSize` bytes are already buffered.
   */
  async fill(): Promise<number | null> {
    if (this.#end === this.#buf.length) {
      const used = this.#end - this.#start;
      if (this.#start > 0 && used < this.#buf.length / 2) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        if (this.#buf.length >= this.#maxSize) {
          throw new RangeError(`Cannot buffer more than ${this.#maxSize} bytes`);
        }
        const next = new Uint8Array(Math.min(this.#maxSize, this.#buf.length * 2));
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      }
      this.#end = used;
      this.#start = 0;
    }
    const n = await this.conn.read(this.#buf.subarray(this.#end));
    if (n === null) return null;
    this.#end += n;
    return n;
  }

  /** Grows the buffer to `size` bytes (at most `maxSize`) for bulk streaming. */
  reserve(size: number): void {
    const want = Math.min(size, this.#maxSize);
    if (this.#buf.length >= want) return;
    const next = new Uint8Array(want);
    next.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = next;
  }

  /** Takes every buffered byte (a copy) and empties the buffer. */
  take(): Uint8Array {
    const out = this.#buf.slice(this.#start, this.#end);
    this.#start = this.#end = 0;
    return out;
  }
}
