/**
 * The one duplex byte connection shape every layer speaks. `Deno.TcpConn`,
 * `Deno.TlsConn`, the in-memory pipe and a tunnel VirtualStream all satisfy it,
 * so the forward proxy, the relay and the mux never need to know which they hold.
 *
 * @module
 */

/** A network address as `host` and `port`; `host` is an IP literal or a name. */
export interface HostPort {
  hostname: string;
  port: number;
}

/** A duplex byte connection with half-close. */
export interface ByteConn {
  /** Reads into `p`; resolves to the byte count, or `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves to the count written. The caller may reuse `p` after. */
  write(p: Uint8Array): Promise<number>;
  /** Half-closes: the peer reads end of stream; reading here goes on. */
  closeWrite(): Promise<void>;
  /** Closes both directions and releases the resource. Safe to call twice. */
  close(): void;
  /** The peer's address (for a tunnel stream: the visitor's address). */
  readonly remoteAddr: HostPort;
  /** Our side's address. */
  readonly localAddr: HostPort;
}

/**
 * Makes `conn.close()` idempotent, as {@link ByteConn} promises: Deno's own
 * `close()` throws `BadResource` the second time, and a connection that a
 * deadline, a peer's disconnect and an error path may each close must survive
 * all three. Errors of the first close (the resource already gone) are
 * swallowed too. Returns `conn` itself, so its other methods stay as they are.
 */
export function closeOnce<C extends { close(): void }>(conn: C): C {
  const close = conn.close.bind(conn);
  let closed = false;
  Object.defineProperty(conn, "close", {
    configurable: true,
    writable: true,
    value: () => {
      if (closed) return;
      closed = true;
      try {
        close();
      } catch {
        // the resource is already gone
      }
    },
  });
  return conn;
}

/** Writes all of `p` to `conn`, looping over short writes. */
export async function writeAll(conn: Pick<ByteConn, "write">, p: Uint8Array): Promise<void> {
  let off = 0;
  while (off < p.length) off += await conn.write(off === 0 ? p : p.subarray(off));
}

/** Formats an address as `host:port`, with brackets around IPv6 literals. */
export function formatHostPort(addr: HostPort): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/**
 * Parses `host:port`, `[v6]:port` or `:port` (host defaults to `defaultHost`).
 * Throws `SyntaxError` naming the input when it is not an address.
 */
export function parseHostPort(text: string, defaultHost = "127.0.0.1"): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.%\w]+)\]|([^:\[\]\s]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new SyntaxError(`Cannot parse address "${text}": expected host:port`);
  const port = Number(m[3]);
  if (port > 65535) {
    throw new SyntaxError(`Cannot parse address "${text}": port ${port} is above 65535`);
  }
  const hostname = m[1] ?? (m[2] === "" ? defaultHost : m[2]!);
  return { hostname, port };
}

/** Whether a host names a loopback interface (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}
