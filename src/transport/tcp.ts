/**
 * TCP dial and listen helpers. Every connection gets `setNoDelay(true)`:
 * Deno leaves Nagle on, which stalls small writes ~40 ms (DESIGN.md §11).
 *
 * @module
 */
import { closeOnce, type HostPort } from "./conn.ts";
import { ConnListener } from "./_conn_listener.ts";

/** Options for {@link dialTcp}. */
export interface DialTcpOptions {
  /** Aborting rejects the dial (and closes a connection that arrives late). */
  signal?: AbortSignal;
}

/** Connects over TCP with Nagle off. */
export async function dialTcp(addr: HostPort, options: DialTcpOptions = {}): Promise<Deno.TcpConn> {
  const { signal } = options;
  signal?.throwIfAborted();
  const conn = await Deno.connect({ hostname: addr.hostname, port: addr.port, transport: "tcp" });
  if (signal?.aborted) {
    conn.close();
    signal.throwIfAborted();
  }
  conn.setNoDelay(true);
  return closeOnce(conn);
}

/** A bound TCP listener whose accepted connections have Nagle off and an idempotent close. */
export class TcpListener extends ConnListener<Deno.TcpConn> {
  readonly #listener: Deno.TcpListener;

  /** Internal; use {@link listenTcp}. */
  constructor(listener: Deno.TcpListener) {
    super(listener);
    this.#listener = listener;
  }

  /** The next connection; rejects once the listener is closed. */
  async accept(): Promise<Deno.TcpConn> {
    const conn = closeOnce(await this.#listener.accept());
    try {
      conn.setNoDelay(true);
    } catch {
      // the peer is already gone; the first read or write will say so
    }
    return conn;
  }
}

/**
 * Binds a TCP listener; `addr.port` 0 picks a free port, reported in
 * `listener.addr`.
 */
export function listenTcp(addr: HostPort): TcpListener {
  return new TcpListener(
    Deno.listen({ hostname: addr.hostname, port: addr.port, transport: "tcp" }),
  );
}
