/**
 * The TLS listener of the `http` section: accepts TCP itself (`node:net`,
 * Nagle off), caps the open connections, selects the certificate by SNI,
 * bounds the handshake, and hands each finished connection over with its
 * ALPN protocol (`h2` or `http/1.1`).
 *
 * Why not `Deno.serve` / `Deno.listenTls`: neither has a header or idle
 * timeout nor a connection cap, `Deno.serve` takes one certificate, and a
 * `Deno.listenTls` socket keeps Nagle on, so a reply over one TLS record
 * (16 KiB) waits ~40 ms for the client's delayed ACK (src/tunnel/PROTOCOL.md,
 * "ACK nudges"). `node:tls` over a `node:net` socket has none of these limits.
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import { type ByteConn, type HostPort } from "../transport/conn.ts";
import { nodeTlsConn } from "../transport/node_tls.ts";

/** ALPN protocols offered, preferred first. */
export const TLS_FRONT_ALPN = ["h2", "http/1.1"];

/** One accepted, handshaken connection. */
export interface TlsFrontConnection {
  conn: ByteConn;
  /** `h2` or `http/1.1` (also for clients without ALPN). */
  alpn: string;
  /** The SNI server name, if the client sent one. */
  serverName: string | undefined;
}

/** Options for {@link listenTlsFront}. */
export interface TlsFrontOptions {
  hostname: string;
  port: number;
  /** The certificate for a server name (`""`: no SNI). */
  contextFor(serverName: string): tls.SecureContext;
  /** Open connections (handshaking or served) above which new ones are closed at once. */
  maxConnections(): number;
  /** From accept to the end of the handshake; 0 = no limit. */
  handshakeTimeoutMs(): number;
  /** Serves one connection; the front closes the socket when it settles. */
  serve(c: TlsFrontConnection): Promise<void>;
  /** A connection closed at once because of the cap. */
  onRejected(peer: HostPort): void;
  /** A handshake that failed or timed out. */
  onHandshakeError(peer: HostPort, error: string): void;
}

/** A running TLS front. */
export interface TlsFront {
  readonly addr: HostPort;
  /** Open connections now. */
  readonly open: number;
  /** Stops accepting, closes every connection, waits for their handlers. */
  close(): Promise<void>;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`. */
function plainIp(ip: string | undefined): string {
  const text = ip ?? "";
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  return m ? m[1]! : text;
}

/** Binds and starts accepting; rejects when the address cannot be bound. */
export function listenTlsFront(o: TlsFrontOptions): Promise<TlsFront> {
  const sockets = new Set<net.Socket>();
  const tasks = new Set<Promise<void>>();
  const onConnection = (raw: net.Socket) => {
    const peer = { hostname: plainIp(raw.remoteAddress), port: raw.remotePort ?? 0 };
    raw.on("error", () => {}); // reported through the TLS socket or the close
    if (sockets.size >= o.maxConnections()) {
      raw.destroy();
      o.onRejected(peer);
      return;
    }
    sockets.add(raw);
    raw.once("close", () => sockets.delete(raw));
    raw.setNoDelay(true);
    const ms = o.handshakeTimeoutMs();
    let done = false;
    const timer = ms > 0
      ? setTimeout(() => {
        if (done) return;
        done = true;
        raw.destroy();
        o.onHandshakeError(peer, `no TLS handshake within ${ms} ms`);
      }, ms)
      : undefined;
    const socket = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: o.contextFor(""),
      ALPNProtocols: TLS_FRONT_ALPN,
      SNICallback: (name, cb) => {
        try {
          cb(null, o.contextFor(name));
        } catch (err) {
          cb(err as Error, undefined);
        }
      },
    });
    const onError = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      raw.destroy();
      o.onHandshakeError(peer, err.message);
    };
    socket.on("error", onError); // kept until the conn wrapper has its own listener
    socket.once("secure", () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off("error", onError);
      const conn = nodeTlsConn(socket);
      const name = (socket as unknown as { servername?: unknown }).servername;
      const task = o.serve({
        conn,
        alpn: socket.alpnProtocol === "h2" ? "h2" : "http/1.1",
        serverName: typeof name === "string" && name !== "" ? name : undefined,
      })
        .catch(() => {})
        .finally(() => {
          conn.close();
          raw.destroy();
          tasks.delete(task);
        });
      tasks.add(task);
    });
  };
  const server = net.createServer(onConnection);
  return new Promise((resolve, reject) => {
    const onListenError = (err: Error) => reject(err);
    server.once("error", onListenError);
    server.listen({ host: o.hostname, port: o.port }, () => {
      server.off("error", onListenError);
      server.on("error", () => {}); // accept errors: the listener keeps going
      const a = server.address() as net.AddressInfo;
      let closing: Promise<void> | undefined;
      resolve({
        addr: { hostname: plainIp(a.address), port: a.port },
        get open() {
          return sockets.size;
        },
        close: () =>
          closing ??= (async () => {
            const stopped = new Promise<void>((r) => server.close(() => r()));
            for (const s of sockets) s.destroy();
            await Promise.allSettled([...tasks]);
            await stopped;
          })(),
      });
    });
  });
}
