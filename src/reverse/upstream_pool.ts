/**
 * Idle keep-alive connections to upstream HTTP servers, per `host:port`,
 * reused last-in first-out. Bounded per address; a connection idle longer
 * than the idle limit is closed by a periodic sweep.
 *
 * @module
 */
import type { ByteConn } from "../transport/conn.ts";
import { BufferedReader } from "../proxy/_buffered_reader.ts";
import { closeQuietly } from "../proxy/_counted_conn.ts";

/** Idle connections kept per upstream address. */
export const POOL_MAX_IDLE_PER_ADDR = 64;
/** An idle connection is closed after this long unused. */
export const POOL_IDLE_TIMEOUT_MS = 60_000;

/** Largest response head (and read buffer) on an upstream connection. */
export const UPSTREAM_READ_BUFFER_BYTES = 64 * 1024;

/** One upstream connection with its read buffer. */
export interface UpstreamConn {
  /** `host:port` it is connected to. */
  readonly key: string;
  readonly conn: ByteConn;
  readonly reader: BufferedReader;
  /** When it was last returned to the pool (ms). */
  idleSince: number;
}

/** Wraps a fresh connection for pooling. */
export function upstreamConn(key: string, conn: ByteConn): UpstreamConn {
  return {
    key,
    conn,
    reader: new BufferedReader(conn, {
      initialSize: 16 * 1024,
      maxSize: UPSTREAM_READ_BUFFER_BYTES,
    }),
    idleSince: 0,
  };
}

/** See the module doc. */
export class UpstreamPool {
  readonly #idle = new Map<string, UpstreamConn[]>();
  readonly #maxIdle: number;
  readonly #idleMs: number;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(maxIdlePerAddr = POOL_MAX_IDLE_PER_ADDR, idleTimeoutMs = POOL_IDLE_TIMEOUT_MS) {
    this.#maxIdle = maxIdlePerAddr;
    this.#idleMs = idleTimeoutMs;
  }

  /** An idle connection to `key`, if one is kept. */
  take(key: string): UpstreamConn | undefined {
    return this.#idle.get(key)?.pop();
  }

  /** Keeps `up` for reuse (or closes it when the pool is full or closed). */
  put(up: UpstreamConn): void {
    let list = this.#idle.get(up.key);
    if (list === undefined) this.#idle.set(up.key, list = []);
    if (this.#closed || list.length >= this.#maxIdle || up.reader.length > 0) {
      closeQuietly(up.conn);
      return;
    }
    up.idleSince = Date.now();
    list.push(up);
    if (this.#sweep === undefined) {
      const sweep = setInterval(() => this.#closeIdle(), Math.max(1000, this.#idleMs / 2));
      Deno.unrefTimer(sweep as unknown as number);
      this.#sweep = sweep;
    }
  }

  /** How many idle connections are kept. */
  get size(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  #closeIdle(): void {
    const oldest = Date.now() - this.#idleMs;
    for (const [key, list] of this.#idle) {
      const keep = list.filter((up) => {
        if (up.idleSince > oldest) return true;
        closeQuietly(up.conn);
        return false;
      });
      if (keep.length === 0) this.#idle.delete(key);
      else this.#idle.set(key, keep);
    }
  }

  /** Closes every idle connection; later `put`s close theirs. */
  close(): void {
    this.#closed = true;
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    for (const list of this.#idle.values()) for (const up of list) closeQuietly(up.conn);
    this.#idle.clear();
  }
}
