/**
 * SOCKS5 UDP ASSOCIATE (RFC 1928 §7): a UDP relay that accepts datagrams only
 * from the TCP client's address, forwards them to their targets (IPv4, IPv6,
 * names), wraps replies in a SOCKS5 UDP header, drops fragments, and ends when
 * the TCP connection closes or no datagram passed for `udp.idle_timeout_ms`.
 *
 * Replies: with `udp.replies: sent` (the default) only datagrams from an
 * address the client has sent to (the last {@link MAX_UDP_PEERS}) reach it;
 * anything else a third party sends to the egress port is dropped. Names are
 * resolved here so that the address sent to is known.
 *
 * Uses `node:dgram`: `Deno.listenDatagram` is unstable in Deno 2.9.
 *
 * @module
 */
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort, writeAll } from "../transport/conn.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage } from "../observability/log.ts";
import { IdleTimer } from "./_deadline.ts";
import type { ConnState } from "./proxy_context.ts";
import {
  encodeReply,
  encodeUdpDatagram,
  parseIpv4,
  parseIpv6,
  parseUdpDatagram,
  REPLY,
  type SocksAddress,
} from "./socks5_codec.ts";

type Family = "udp4" | "udp6";

/** Destinations remembered per association for `replies: sent` (oldest forgotten first). */
export const MAX_UDP_PEERS = 1024;

/** The destinations an association has sent to, bounded; pure. */
export class SentPeers {
  readonly #peers = new Map<string, true>();
  constructor(readonly max = MAX_UDP_PEERS) {}
  #key(ip: string, port: number): string {
    return `${normalizeIp(ip)} ${port}`;
  }
  add(ip: string, port: number): void {
    const key = this.#key(ip, port);
    this.#peers.delete(key);
    if (this.#peers.size >= this.max) this.#peers.delete(this.#peers.keys().next().value!);
    this.#peers.set(key, true);
  }
  has(ip: string, port: number): boolean {
    return this.#peers.has(this.#key(ip, port));
  }
  get size(): number {
    return this.#peers.size;
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip.toLowerCase();
}

function isIp(text: string): boolean {
  return parseIpv4(text) !== null || parseIpv6(text) !== null;
}

function bindSocket(type: Family, address: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type, ipv6Only: type === "udp6" });
    const onError = (err: Error) => {
      sock.close();
      reject(err);
    };
    sock.once("error", onError);
    sock.bind({ port: 0, address }, () => {
      sock.off("error", onError);
      resolve(sock);
    });
  });
}

function closeSocket(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    sock.removeAllListeners("message");
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

/** Runs one association until the TCP control connection ends or it idles out. */
export async function serveUdpAssociate(s: ConnState, requested: SocksAddress): Promise<void> {
  const { ctx, client } = s;
  const udp = ctx.config.udp;
  const clientIp = normalizeIp(client.remoteAddr.hostname);
  const localIp = client.localAddr.hostname;
  const bindIp = udp.bind_ip ?? (isIp(localIp) ? normalizeIp(localIp) : "127.0.0.1");
  let relaySock: dgram.Socket;
  try {
    relaySock = await bindSocket(bindIp.includes(":") ? "udp6" : "udp4", bindIp);
  } catch (err) {
    s.error = `Cannot bind UDP relay on "${bindIp}": ${errorMessage(err)}`;
    try {
      await writeAll(client, encodeReply(REPLY.general_failure));
    } catch {
      // the client is gone
    }
    return;
  }
  const bound = relaySock.address();
  const relayAddr: HostPort = { hostname: bound.address, port: bound.port };
  const egress = new Map<Family, Promise<dgram.Socket>>();
  let clientPort: number | undefined = requested.port !== 0 ? requested.port : undefined;
  let up = 0;
  let down = 0;
  let dropped = 0;
  let closed = false;
  const idle = new IdleTimer(udp.idle_timeout_ms, () => client.close());

  const sent = udp.replies === "sent" ? new SentPeers() : undefined;
  const onReply = (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    if (closed || clientPort === undefined) return;
    if (sent !== undefined && !sent.has(rinfo.address, rinfo.port)) {
      dropped++; // not a destination of this client: a third party
      return;
    }
    idle.touch();
    down++;
    const out = encodeUdpDatagram({ hostname: normalizeIp(rinfo.address), port: rinfo.port }, msg);
    relaySock.send(out, clientPort, clientIp, (err) => {
      if (err) dropped++;
    });
  };
  const egressFor = (family: Family): Promise<dgram.Socket> => {
    let p = egress.get(family);
    if (p === undefined) {
      p = bindSocket(family, family === "udp6" ? "::" : "0.0.0.0").then((sock) => {
        sock.on("message", onReply);
        sock.on("error", () => dropped++);
        return sock;
      });
      p.catch(() => {});
      egress.set(family, p);
    }
    return p;
  };

  relaySock.on("error", () => dropped++);
  relaySock.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    if (closed) return;
    if (
      normalizeIp(rinfo.address) !== clientIp ||
      (clientPort !== undefined && rinfo.port !== clientPort)
    ) {
      dropped++; // only the TCP client may use this association
      return;
    }
    let d;
    try {
      d = parseUdpDatagram(msg);
    } catch {
      dropped++;
      return;
    }
    if (d.frag !== 0) {
      dropped++; // fragmentation is not supported; drop, keep the association
      return;
    }
    clientPort ??= rinfo.port;
    idle.touch();
    up++;
    const family: Family = d.address.type === "ipv6" ? "udp6" : "udp4";
    const data = d.data.slice();
    const port = d.address.port;
    const name = d.address.hostname;
    const resolved = sent === undefined || d.address.type !== "domain"
      ? Promise.resolve(name)
      : lookup(name, { family: 4 }).then((a) => a.address);
    Promise.all([egressFor(family), resolved]).then(([sock, ip]) => {
      if (closed) return;
      sent?.add(ip, port);
      sock.send(data, port, ip, (err) => {
        if (err) dropped++;
      });
    }, () => dropped++);
  });

  const onAbort = () => client.close();
  ctx.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await writeAll(client, encodeReply(REPLY.succeeded, relayAddr));
    ctx.log.info(EVENTS.udp_associate, {
      component: "proxy",
      conn: ctx.id,
      peer: s.peer,
      relay: formatHostPort(relayAddr),
    });
    // The association lives as long as the TCP connection.
    const scratch = new Uint8Array(512);
    while (true) {
      const n = await client.read(scratch);
      if (n === null) break;
    }
  } catch (err) {
    if (!idle.fired && !ctx.signal?.aborted) s.error = errorMessage(err);
  } finally {
    closed = true;
    idle.cancel();
    ctx.signal?.removeEventListener("abort", onAbort);
    const socks = [relaySock];
    for (const p of egress.values()) {
      try {
        socks.push(await p);
      } catch {
        // never bound
      }
    }
    await Promise.all(socks.map(closeSocket));
    if (idle.fired) s.error ??= `UDP idle timeout after ${udp.idle_timeout_ms} ms`;
    ctx.log.info(EVENTS.udp_associate_closed, {
      component: "proxy",
      conn: ctx.id,
      relay: formatHostPort(relayAddr),
      datagrams: up + down,
      dropped,
    });
  }
}
