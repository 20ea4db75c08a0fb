/**
 * What the TCP and TLS listeners share: the bound address, iteration until
 * closed, and an idempotent close.
 *
 * @module
 */
import type { HostPort } from "./conn.ts";

/** A bound listener yielding connections of type `C` until it is closed. */
export abstract class ConnListener<C> implements AsyncIterable<C>, Disposable {
  /** The real bound address (port 0 resolved). */
  readonly addr: HostPort;
  readonly #closer: { close(): void };

  protected constructor(listener: { addr: Deno.Addr; close(): void }) {
    this.#closer = listener;
    const a = listener.addr as Deno.NetAddr;
    this.addr = { hostname: a.hostname, port: a.port };
  }

  /** The next connection; rejects once the listener is closed. */
  abstract accept(): Promise<C>;

  /** Connections until the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncGenerator<C> {
    while (true) {
      let conn: C;
      try {
        conn = await this.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return;
        }
        throw err;
      }
      yield conn;
    }
  }

  /** Stops listening. Safe to call twice. */
  close(): void {
    try {
      this.#closer.close();
    } catch {
      // already closed
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
