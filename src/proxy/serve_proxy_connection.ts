/**
 * Serves one accepted connection: detects the protocol from the first byte
 * (0x05 = SOCKS5, a letter = HTTP/CONNECT) and hands over. Works on any
 * {@link ByteConn}, so tunnelled streams are served the same way.
 *
 * @module
 */
import type { ByteConn } from "../transport/conn.ts";
import { formatHostPort } from "../transport/conn.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage } from "../observability/log.ts";
import { BufferedReader } from "./_buffered_reader.ts";
import { CountedConn } from "./_counted_conn.ts";
import { Deadline } from "./_deadline.ts";
import { dialTcpTarget } from "./dial.ts";
import { serveHttpProxy } from "./http_proxy.ts";
import type { ConnState, ProxyContext } from "./proxy_context.ts";
import { serveSocks5 } from "./socks5.ts";

/** First read buffer of a connection (grows to the head limit when needed). */
const INITIAL_READ_BYTES = 16 * 1024;
/** Smallest read buffer cap, so that bodies stream in useful chunks. */
const MIN_READ_CAP_BYTES = 64 * 1024;

function looksLikeHttp(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x0d || b === 0x0a;
}

/**
 * Serves ONE connection until it ends; never rejects. Closes `conn` (and
 * everything it opened) before resolving, and logs `connection_closed`.
 */
export async function serveProxyConnection(conn: ByteConn, ctx: ProxyContext): Promise<void> {
  const started = performance.now();
  const limits = ctx.config.limits;
  const client = new CountedConn(conn, ctx.counters);
  let peer: string;
  try {
    peer = formatHostPort(conn.remoteAddr);
  } catch {
    peer = "unknown";
  }
  const handshake = new Deadline(limits.handshake_timeout_ms, () => client.close());
  const s: ConnState = {
    ctx,
    client,
    reader: new BufferedReader(client, {
      initialSize: INITIAL_READ_BYTES,
      maxSize: Math.max(limits.max_header_bytes, MIN_READ_CAP_BYTES),
    }),
    dial: ctx.dial ?? dialTcpTarget,
    peer,
    handshake,
    protocol: undefined,
    target: undefined,
    error: undefined,
    requests: 0,
  };
  const onAbort = () => client.close();
  if (ctx.signal?.aborted) client.close();
  ctx.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const n = await s.reader.fill();
    if (n !== null) {
      const first = s.reader.buffered()[0]!;
      if (first === 0x05) {
        await serveSocks5(s);
      } else if (looksLikeHttp(first)) {
        await serveHttpProxy(s);
      } else {
        s.error = `Cannot detect protocol: first byte 0x${first.toString(16).padStart(2, "0")} ` +
          `is neither SOCKS5 (0x05) nor an HTTP method`;
        ctx.log.info(EVENTS.protocol_error, {
          component: "proxy",
          conn: ctx.id,
          peer,
          error: s.error,
        });
      }
    }
  } catch (err) {
    if (handshake.expired && s.error === undefined) {
      s.error = `handshake timeout after ${limits.handshake_timeout_ms} ms`;
    } else if (!ctx.signal?.aborted) {
      s.error ??= errorMessage(err);
    }
  } finally {
    handshake.cancel();
    ctx.signal?.removeEventListener("abort", onAbort);
    client.close();
    ctx.log.info(EVENTS.connection_closed, {
      component: "proxy",
      conn: ctx.id,
      peer,
      protocol: s.protocol,
      target: s.target,
      requests: s.protocol === "http" || s.protocol === "https" ? s.requests : undefined,
      bytes_in: client.bytesRead,
      bytes_out: client.bytesWritten,
      ms: Math.round(performance.now() - started),
      error: s.error,
    });
  }
}
