/**
 * The accepting side of the TCP stream servers: an accept loop that serves
 * every connection concurrently (never one at a time: defect B13), closes
 * connections past `max_connections` at once, and on close stops accepting,
 * aborts every handler and waits for them.
 *
 * @module
 */
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort } from "../transport/conn.ts";
import type { TcpListener } from "../transport/tcp.ts";

/** Serves one accepted connection; must close it before resolving. */
export type TcpHandler = (conn: Deno.TcpConn, signal: AbortSignal) => Promise<void>;

/** Options for {@link TcpFront}. */
export interface TcpFrontOptions {
  /** Read at every accept, so a reload may change it. */
  maxConnections: number;
  log: Logger;
  handle: TcpHandler;
}

/** See the module doc. */
export class TcpFront {
  /** The bound address. */
  readonly addr: HostPort;
  readonly #listener: TcpListener;
  readonly #options: TcpFrontOptions;
  readonly #handlers = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  readonly #loop: Promise<void>;

  constructor(listener: TcpListener, options: TcpFrontOptions) {
    this.#listener = listener;
    this.addr = listener.addr;
    this.#options = { ...options };
    this.#loop = this.#acceptLoop();
  }

  /** Connections being served. */
  get active(): number {
    return this.#handlers.size;
  }

  /** The connection limit applies to connections accepted from now on. */
  set maxConnections(value: number) {
    this.#options.maxConnections = value;
  }

  async #acceptLoop(): Promise<void> {
    const { log } = this.#options;
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return;
        }
        log.warn(EVENTS.accept_error, {
          addr: formatHostPort(this.addr),
          error: errorMessage(err),
        });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const maxConnections = this.#options.maxConnections;
      if (this.#handlers.size >= maxConnections) {
        log.warn(EVENTS.connection_rejected, {
          peer: formatHostPort(conn.remoteAddr),
          reason: `max_connections ${maxConnections} reached`,
        });
        conn.close();
        continue;
      }
      const handler: Promise<void> = this.#options.handle(conn, signal)
        .catch((err) => {
          log.error(EVENTS.connection_closed, { error: errorMessage(err) });
          try {
            conn.close();
          } catch {
            // closed by the handler
          }
        })
        .finally(() => this.#handlers.delete(handler));
      this.#handlers.add(handler);
    }
  }

  /** Stops accepting, aborts every connection and waits for the handlers. */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#listener.close();
    await this.#loop;
    while (this.#handlers.size > 0) await Promise.all([...this.#handlers]);
  }
}
