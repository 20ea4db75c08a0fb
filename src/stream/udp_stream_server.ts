/**
 * `protocol: udp`: one session per client address, each with its own socket
 * connected to a server of the upstream group. Datagram boundaries are kept
 * (up to 64 KiB), a session ends after `idle_timeout` without a datagram
 * either way, sessions are bounded by `max_sessions`, IPv4 and IPv6 both work,
 * and nothing is ever sent that no peer sent (no empty datagram at the end of
 * a session: defect B27).
 *
 * Uses `node:dgram`: `Deno.listenDatagram` is unstable in Deno 2.9.
 *
 * @module
 */
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import type { UdpStreamServerConfig } from "../config/stream_section.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import { IdleTimer } from "../proxy/_deadline.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort, parseHostPort } from "../transport/conn.ts";
import type { UpstreamGroup, UpstreamPeer } from "../upstream/upstream_group.ts";

/** Datagrams held per session while its socket is being set up. */
export const UDP_PENDING_DATAGRAMS = 64;

type Family = "udp4" | "udp6";

/** Options for {@link UdpStreamServer.listen}. */
export interface UdpStreamServerOptions {
  /** Logger with `component: "stream"` already set. */
  log: Logger;
}

function familyOf(host: string): Family {
  return host.includes(":") ? "udp6" : "udp4";
}

function isIpLiteral(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.includes(":");
}

function bind(type: Family, address: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type, ipv6Only: type === "udp6" });
    const onError = (err: Error) => {
      try {
        sock.close();
      } catch {
        // not bound
      }
      reject(err);
    };
    sock.once("error", onError);
    sock.bind({ port, address }, () => {
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

class UdpSession {
  readonly client: HostPort;
  /** The group the peer came from (a reload may give the server a new one). */
  readonly group: UpstreamGroup;
  readonly peer: UpstreamPeer;
  readonly started = Date.now();
  socket: dgram.Socket | undefined;
  pending: Uint8Array[] = [];
  closed = false;
  datagramsIn = 0;
  datagramsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  dropped = 0;
  idle: IdleTimer | undefined;
  ready: Promise<void> = Promise.resolve();

  constructor(client: HostPort, group: UpstreamGroup, peer: UpstreamPeer) {
    this.client = client;
    this.group = group;
    this.peer = peer;
  }
}

/** See the module doc. */
export class UdpStreamServer implements AsyncDisposable {
  readonly protocol = "udp";
  /** The bound address. */
  readonly addr: HostPort;
  readonly #socket: dgram.Socket;
  #config: UdpStreamServerConfig;
  #group: UpstreamGroup;
  readonly #log: Logger;
  readonly #sessions = new Map<string, UdpSession>();
  #closed = false;
  #lastRejectLog = 0;

  private constructor(
    socket: dgram.Socket,
    config: UdpStreamServerConfig,
    group: UpstreamGroup,
    log: Logger,
  ) {
    this.#socket = socket;
    const a = socket.address();
    this.addr = { hostname: a.address, port: a.port };
    this.#config = config;
    this.#group = group;
    this.#log = log.child({ listen: formatHostPort(this.addr) });
    socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => this.#onClient(msg, rinfo));
    socket.on("error", (err: Error) => {
      this.#log.warn(EVENTS.accept_error, { addr: formatHostPort(this.addr), error: err.message });
    });
  }

  /** Binds `config.listen` and starts serving. */
  static async listen(
    config: UdpStreamServerConfig,
    group: UpstreamGroup,
    options: UdpStreamServerOptions,
  ): Promise<UdpStreamServer> {
    const addr = parseHostPort(config.listen);
    const socket = await bind(familyOf(addr.hostname), addr.hostname, addr.port);
    return new UdpStreamServer(socket, config, group, options.log);
  }

  /**
   * Applies a new config and group to sessions that start from now on (live
   * sessions keep theirs). `config.listen` is not looked at: the socket stays.
   */
  update(config: UdpStreamServerConfig, group: UpstreamGroup): void {
    this.#config = config;
    this.#group = group;
  }

  /** Live sessions. */
  get sessions(): number {
    return this.#sessions.size;
  }

  #onClient(msg: Uint8Array, rinfo: dgram.RemoteInfo): void {
    if (this.#closed) return;
    const key = `${rinfo.address}|${rinfo.port}`;
    let session = this.#sessions.get(key);
    if (session === undefined) {
      session = this.#open(key, { hostname: rinfo.address, port: rinfo.port });
      if (session === undefined) return;
    }
    session.idle?.touch();
    session.datagramsIn++;
    session.bytesIn += msg.length;
    if (session.socket === undefined) {
      if (session.pending.length < UDP_PENDING_DATAGRAMS) session.pending.push(msg);
      else session.dropped++;
      return;
    }
    session.socket.send(msg, (err) => {
      if (err) session.dropped++;
    });
  }

  #open(key: string, client: HostPort): UdpSession | undefined {
    const max = this.#config.max_sessions;
    if (this.#sessions.size >= max) {
      const now = Date.now();
      if (now - this.#lastRejectLog >= 1000) {
        this.#lastRejectLog = now;
        this.#log.warn(EVENTS.connection_rejected, {
          peer: formatHostPort(client),
          reason: `max_sessions ${max} reached`,
        });
      }
      return undefined;
    }
    const peer = this.#group.pick(client.hostname);
    if (peer === undefined) return undefined;
    this.#group.acquire(peer);
    const session = new UdpSession(client, this.#group, peer);
    this.#sessions.set(key, session);
    session.idle = new IdleTimer(this.#config.idle_timeout_ms, () => {
      void this.#end(key, session, undefined);
    });
    session.ready = this.#connect(key, session);
    return session;
  }

  async #connect(key: string, session: UdpSession): Promise<void> {
    const { peer } = session;
    try {
      let host = peer.addr.hostname;
      if (!isIpLiteral(host)) host = (await lookup(host)).address;
      const family = familyOf(host);
      const sock = await bind(family, family === "udp6" ? "::" : "0.0.0.0", 0);
      await new Promise<void>((resolve, reject) => {
        sock.once("error", reject);
        sock.connect(peer.addr.port, host, () => {
          sock.off("error", reject);
          resolve();
        });
      }).catch(async (err) => {
        await closeSocket(sock);
        throw err;
      });
      if (session.closed) {
        await closeSocket(sock);
        return;
      }
      sock.on("message", (reply: Uint8Array) => {
        if (session.closed) return;
        session.idle?.touch();
        session.datagramsOut++;
        session.bytesOut += reply.length;
        this.#socket.send(reply, session.client.port, session.client.hostname, (err) => {
          if (err) session.dropped++;
        });
      });
      sock.on("error", (err: Error) => {
        session.group.reportFailure(peer, err.message);
        void this.#end(key, session, err);
      });
      session.socket = sock;
      session.group.reportSuccess(peer);
      this.#log.debug(EVENTS.udp_session_opened, {
        peer: formatHostPort(session.client),
        target: peer.id,
      });
      for (const msg of session.pending) {
        sock.send(msg, (err) => {
          if (err) session.dropped++;
        });
      }
      session.pending = [];
    } catch (err) {
      session.group.reportFailure(peer, errorMessage(err));
      await this.#end(key, session, err);
    }
  }

  async #end(key: string, session: UdpSession, err: unknown): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    session.idle?.cancel();
    if (this.#sessions.get(key) === session) this.#sessions.delete(key);
    session.group.release(session.peer);
    if (session.socket !== undefined) await closeSocket(session.socket);
    this.#log.info(EVENTS.udp_session_closed, {
      peer: formatHostPort(session.client),
      target: session.peer.id,
      datagrams_in: session.datagramsIn,
      datagrams_out: session.datagramsOut,
      bytes_in: session.bytesIn,
      bytes_out: session.bytesOut,
      dropped: session.dropped,
      ms: Date.now() - session.started,
      ...(err === undefined ? {} : { error: errorMessage(err) }),
    });
  }

  /** Ends every session and closes the listening socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const sessions = [...this.#sessions.entries()];
    await Promise.all(sessions.map(async ([key, s]) => {
      await s.ready;
      await this.#end(key, s, undefined);
    }));
    await closeSocket(this.#socket);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
