/**
 * The session's coalescing writer buffer: frames of every stream are copied,
 * in order, into pooled fixed-size chunks, and the socket writer takes whole
 * chunks. No allocation per frame; chunks are recycled. Pure.
 *
 * @module
 */
import { FRAME_HEADER_SIZE } from "../tunnel/constants.ts";
import { writeFrameHeader } from "../tunnel/frame.ts";

/** Size of one pooled chunk. */
export const OUTGOING_CHUNK_SIZE = 256 * 1024;
const MAX_FREE_CHUNKS = 8;

/** A FIFO byte queue made of pooled chunks. */
export class OutgoingBuffer {
  readonly #chunkSize: number;
  #sealed: Uint8Array[] = [];
  #fill: Uint8Array | null = null;
  #fillLen = 0;
  #current: Uint8Array | null = null;
  #currentOff = 0;
  #bytes = 0;
  #free: Uint8Array[] = [];

  constructor(chunkSize = OUTGOING_CHUNK_SIZE) {
    if (chunkSize < FRAME_HEADER_SIZE) {
      throw new RangeError(`Cannot create buffer: chunk size ${chunkSize} is below one header`);
    }
    this.#chunkSize = chunkSize;
  }

  /** Bytes queued and not yet taken by {@link OutgoingBuffer.advance}. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends one frame header. */
  header(type: number, flags: number, streamId: number, length: number): void {
    if (this.#fill === null || this.#chunkSize - this.#fillLen < FRAME_HEADER_SIZE) this.#next();
    writeFrameHeader(this.#fill!, this.#fillLen, type, flags, streamId, length);
    this.#fillLen += FRAME_HEADER_SIZE;
    this.#bytes += FRAME_HEADER_SIZE;
  }

  /** Appends `src[off, off + n)`. */
  bytesFrom(src: Uint8Array, off: number, n: number): void {
    this.#bytes += n;
    while (n > 0) {
      if (this.#fill === null || this.#fillLen === this.#chunkSize) this.#next();
      const k = Math.min(n, this.#chunkSize - this.#fillLen);
      this.#fill!.set(k === src.length ? src : src.subarray(off, off + k), this.#fillLen);
      this.#fillLen += k;
      off += k;
      n -= k;
    }
  }

  /** The next bytes to write (a view), or `null` when empty. */
  peek(): Uint8Array | null {
    if (this.#current === null) {
      const sealed = this.#sealed.shift();
      if (sealed !== undefined) {
        this.#current = sealed;
      } else if (this.#fillLen > 0) {
        this.#current = this.#fill!.subarray(0, this.#fillLen);
        this.#fill = null;
        this.#fillLen = 0;
      } else {
        return null;
      }
      this.#currentOff = 0;
    }
    return this.#currentOff === 0 ? this.#current : this.#current.subarray(this.#currentOff);
  }

  /** Marks `n` bytes of the last {@link OutgoingBuffer.peek} as written. */
  advance(n: number): void {
    const cur = this.#current;
    if (cur === null) throw new RangeError("Cannot advance: nothing was peeked");
    this.#currentOff += n;
    this.#bytes -= n;
    if (this.#currentOff >= cur.length) {
      this.#current = null;
      this.#currentOff = 0;
      if (this.#free.length < MAX_FREE_CHUNKS && cur.buffer.byteLength === this.#chunkSize) {
        this.#free.push(new Uint8Array(cur.buffer as ArrayBuffer));
      }
    }
  }

  /** Drops everything queued. */
  clear(): void {
    this.#sealed.length = 0;
    this.#fill = null;
    this.#fillLen = 0;
    this.#current = null;
    this.#currentOff = 0;
    this.#bytes = 0;
  }

  #next(): void {
    if (this.#fill !== null && this.#fillLen > 0) {
      this.#sealed.push(this.#fill.subarray(0, this.#fillLen));
    }
    this.#fill = this.#free.pop() ?? new Uint8Array(this.#chunkSize);
    this.#fillLen = 0;
  }
}
