/**
 * TLS dial and listen helpers with our ALPN id (PROTOCOL.md §4). The client
 * dials TCP, turns Nagle off, then starts TLS (`Deno.connectTls` cannot set
 * NODELAY); the server uses `Deno.listenTls`.
 *
 * @module
 */
import { closeOnce, type HostPort } from "./conn.ts";
import { ConnListener } from "./_conn_listener.ts";

/** The ALPN protocol id of the tunnel (PROTOCOL.md §4). */
export const TUNNEL_ALPN = "wmproxy/1";

/** Options for {@link dialTls}. */
export interface DialTlsOptions {
  /** Extra trusted CA certificates (PEM); the system roots are used too. */
  caCerts?: string[];
  /** Name to verify and send as SNI. @default addr.hostname */
  serverName?: string;
  /** ALPN protocols to offer. @default ["wmproxy/1"] */
  alpnProtocols?: string[];
  /** Fail unless the server selects one of `alpnProtocols`. @default true */
  requireAlpn?: boolean;
  /** Aborting closes the connection being set up. */
  signal?: AbortSignal;
}

/** Connects over TCP with Nagle off, then completes a TLS handshake. */
export async function dialTls(addr: HostPort, options: DialTlsOptions = {}): Promise<Deno.TlsConn> {
  const { signal } = options;
  signal?.throwIfAborted();
  const tcp = await Deno.connect({ hostname: addr.hostname, port: addr.port, transport: "tcp" });
  tcp.setNoDelay(true);
  const alpn = options.alpnProtocols ?? [TUNNEL_ALPN];
  let tls: Deno.TlsConn | null = null;
  const onAbort = () => (tls ?? tcp).close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    tls = await Deno.startTls(tcp, {
      hostname: options.serverName ?? addr.hostname,
      alpnProtocols: alpn,
      ...(options.caCerts ? { caCerts: options.caCerts } : {}),
    });
    const info = await tls.handshake();
    if ((options.requireAlpn ?? true) && !alpn.includes(info.alpnProtocol ?? "")) {
      throw new Deno.errors.InvalidData(
        `Cannot use TLS connection to ${addr.hostname}:${addr.port}: the server selected ALPN ${
          JSON.stringify(info.alpnProtocol)
        }, expected ${alpn.join(" or ")}`,
      );
    }
    return closeOnce(tls);
  } catch (err) {
    try {
      (tls ?? tcp).close();
    } catch {
      // already closed
    }
    signal?.throwIfAborted();
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Options for {@link listenTls}. */
export interface ListenTlsOptions extends HostPort {
  /** Certificate chain (PEM), leaf first. */
  cert: string;
  /** Private key (PEM). */
  key: string;
  /** ALPN protocols to select. @default ["wmproxy/1"] */
  alpnProtocols?: string[];
}

/** A bound TLS listener. */
export class TlsListener extends ConnListener<Deno.TlsConn> {
  readonly #listener: Deno.TlsListener;

  /** Internal; use {@link listenTls}. */
  constructor(listener: Deno.TlsListener) {
    super(listener);
    this.#listener = listener;
  }

  /**
   * The next connection, before its handshake; call {@link tlsHandshake} (or
   * read) on it, and close it when the handshake fails (closing twice is safe).
   */
  async accept(): Promise<Deno.TlsConn> {
    return closeOnce(await this.#listener.accept());
  }
}

/** Binds a TLS listener with our ALPN id; port 0 picks a free port (see `addr`). */
export function listenTls(options: ListenTlsOptions): TlsListener {
  return new TlsListener(Deno.listenTls({
    hostname: options.hostname,
    port: options.port,
    transport: "tcp",
    cert: options.cert,
    key: options.key,
    alpnProtocols: options.alpnProtocols ?? [TUNNEL_ALPN],
  }));
}

/**
 * Completes the server side of a handshake and checks that the client chose
 * `alpn`. Throws `Deno.errors.InvalidData` otherwise; the caller closes `conn`.
 */
export async function tlsHandshake(conn: Deno.TlsConn, alpn = TUNNEL_ALPN): Promise<void> {
  const info = await conn.handshake();
  if (info.alpnProtocol !== alpn) {
    throw new Deno.errors.InvalidData(
      `Cannot accept TLS connection: the client offered ALPN ${
        JSON.stringify(info.alpnProtocol)
      }, expected ${JSON.stringify(alpn)}`,
    );
  }
}
