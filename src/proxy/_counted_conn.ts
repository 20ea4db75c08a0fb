/**
 * A {@link ByteConn} wrapper that counts bytes both ways into its own fields
 * and an optional shared counter (the listener's stats).
 *
 * @module
 */
import type { ByteConn, HostPort } from "../transport/conn.ts";

/** Byte counters shared by all connections of one listener. */
export interface ByteCounters {
  /** Bytes read from clients. */
  bytesIn: number;
  /** Bytes written to clients. */
  bytesOut: number;
}

/** See the module doc. */
export class CountedConn implements ByteConn {
  readonly inner: ByteConn;
  readonly #shared: ByteCounters | undefined;
  /** Bytes read from this connection. */
  bytesRead = 0;
  /** Bytes written to this connection. */
  bytesWritten = 0;

  constructor(inner: ByteConn, shared?: ByteCounters) {
    this.inner = inner;
    this.#shared = shared;
  }

  get remoteAddr(): HostPort {
    return this.inner.remoteAddr;
  }

  get localAddr(): HostPort {
    return this.inner.localAddr;
  }

  async read(p: Uint8Array): Promise<number | null> {
    const n = await this.inner.read(p);
    if (n !== null) {
      this.bytesRead += n;
      if (this.#shared) this.#shared.bytesIn += n;
    }
    return n;
  }

  async write(p: Uint8Array): Promise<number> {
    const n = await this.inner.write(p);
    this.bytesWritten += n;
    if (this.#shared) this.#shared.bytesOut += n;
    return n;
  }

  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }

  close(): void {
    try {
      this.inner.close();
    } catch {
      // already closed
    }
  }
}

/** Closes `conn`, ignoring "already closed" (a `Deno.TcpConn` throws on a second close). */
export function closeQuietly(conn: Pick<ByteConn, "close">): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
