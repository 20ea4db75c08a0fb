/**
 * An in-memory `ByteConn` pair with half-close and bounded buffering, for
 * tests and in-process loopback (yamux `testConnPipe`).
 *
 * @module
 */
import type { ByteConn, HostPort } from "./conn.ts";

/** Options for {@link createPipe}. */
export interface PipeOptions {
  /** Bytes buffered per direction before `write` waits. @default 262144 */
  capacity?: number;
  /** Address reported by the first end as `localAddr` (the second's `remoteAddr`). */
  firstAddr?: HostPort;
  /** Address reported by the second end as `localAddr`. */
  secondAddr?: HostPort;
}

/** One direction of a pipe: a bounded byte queue. */
class Channel {
  readonly capacity: number;
  chunks: Uint8Array[] = [];
  head = 0;
  bytes = 0;
  /** The writer half-closed or closed: the reader sees end of stream after the bytes. */
  eof = false;
  /** The reader closed: writes fail. */
  readerGone = false;
  readWaiter: (() => void) | null = null;
  writeWaiter: (() => void) | null = null;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  wakeReader(): void {
    const w = this.readWaiter;
    this.readWaiter = null;
    w?.();
  }

  wakeWriter(): void {
    const w = this.writeWaiter;
    this.writeWaiter = null;
    w?.();
  }
}

/** One end of an in-memory pipe. */
export class PipeConn implements ByteConn {
  readonly #in: Channel;
  readonly #out: Channel;
  readonly localAddr: HostPort;
  readonly remoteAddr: HostPort;
  #closed = false;

  /** Internal; use {@link createPipe}. */
  constructor(input: Channel, output: Channel, localAddr: HostPort, remoteAddr: HostPort) {
    this.#in = input;
    this.#out = output;
    this.localAddr = localAddr;
    this.remoteAddr = remoteAddr;
  }

  /** Reads buffered bytes; `null` after the peer's half-close or close, or after a local close. */
  async read(p: Uint8Array): Promise<number | null> {
    if (this.#closed) throw new Deno.errors.BadResource("Cannot read: the pipe end is closed");
    const ch = this.#in;
    while (ch.bytes === 0) {
      if (ch.eof || this.#closed) return null;
      if (ch.readWaiter !== null) throw new TypeError("Cannot read: another read is pending");
      await new Promise<void>((resolve) => ch.readWaiter = resolve);
    }
    if (p.length === 0) return 0;
    let n = 0;
    while (n < p.length && ch.bytes > 0) {
      const chunk = ch.chunks[ch.head]!;
      const k = Math.min(chunk.length, p.length - n);
      p.set(k === chunk.length ? chunk : chunk.subarray(0, k), n);
      if (k === chunk.length) ch.head++;
      else ch.chunks[ch.head] = chunk.subarray(k);
      n += k;
      ch.bytes -= k;
    }
    if (ch.head === ch.chunks.length) {
      ch.chunks = [];
      ch.head = 0;
    }
    ch.wakeWriter();
    return n;
  }

  /** Copies as much of `p` as fits (waiting for room); resolves to the count. */
  async write(p: Uint8Array): Promise<number> {
    const ch = this.#out;
    while (true) {
      if (this.#closed) throw new Deno.errors.BadResource("Cannot write: the pipe end is closed");
      if (ch.eof) throw new Deno.errors.BrokenPipe("Cannot write: the write side is closed");
      if (ch.readerGone) throw new Deno.errors.BrokenPipe("Cannot write: the peer closed the pipe");
      if (p.length === 0) return 0;
      const room = ch.capacity - ch.bytes;
      if (room > 0) {
        const n = Math.min(room, p.length);
        ch.chunks.push(p.slice(0, n));
        ch.bytes += n;
        ch.wakeReader();
        return n;
      }
      if (ch.writeWaiter !== null) throw new TypeError("Cannot write: another write is pending");
      await new Promise<void>((resolve) => ch.writeWaiter = resolve);
    }
  }

  /** Half-closes: the peer reads end of stream after the buffered bytes. */
  closeWrite(): Promise<void> {
    if (this.#closed) {
      return Promise.reject(
        new Deno.errors.BadResource("Cannot close write: the pipe end is closed"),
      );
    }
    this.#out.eof = true;
    this.#out.wakeReader();
    return Promise.resolve();
  }

  /** Closes both directions; pending local reads resolve `null`, pending writes reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.eof = true;
    this.#out.wakeReader();
    this.#out.wakeWriter();
    this.#in.readerGone = true;
    this.#in.chunks = [];
    this.#in.head = 0;
    this.#in.bytes = 0;
    this.#in.wakeReader();
    this.#in.wakeWriter();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Creates two connected in-memory ends.
 *
 * @example
 * ```ts
 * import { createPipe } from "@/transport/pipe.ts";
 * const [a, b] = createPipe({ capacity: 1024 });
 * await a.write(new Uint8Array([1, 2, 3]));
 * await b.read(new Uint8Array(8)); // 3
 * ```
 */
export function createPipe(options: PipeOptions = {}): [PipeConn, PipeConn] {
  const capacity = options.capacity ?? 262144;
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(`Cannot create pipe: capacity ${capacity} is not a positive integer`);
  }
  const ab = new Channel(capacity);
  const ba = new Channel(capacity);
  const first = options.firstAddr ?? { hostname: "pipe", port: 1 };
  const second = options.secondAddr ?? { hostname: "pipe", port: 2 };
  return [new PipeConn(ba, ab, first, second), new PipeConn(ab, ba, second, first)];
}
