/**
 * The server side of intranet penetration: registers the mappings clients
 * declare (checked against each token's policy and the server's port range),
 * owns the public listeners (HTTP by Host, HTTPS by SNI, a TCP listener and a
 * UDP socket per port mapping) and opens a stream to the owning client for
 * every visitor. Clients that leave lose their claims; names they held answer
 * "offline" until someone claims them again.
 *
 * @module
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import type { ServerConfig } from "../config/types.ts";
import { errorMessage, EVENTS, type Logger } from "../observability/mod.ts";
import {
  type DomainMappingSpec,
  ERROR_CODES,
  type MappingResult,
  type MappingSpec,
  type PortMappingSpec,
  type RegisterMessage,
  type RegisterResultMessage,
} from "../tunnel/mod.ts";
import {
  type ByteConn,
  formatHostPort,
  type HostPort,
  listenTcp,
  writeAll,
} from "../transport/mod.ts";
import type { VirtualStream } from "../mux/mod.ts";
import { relay } from "../proxy/mod.ts";
import { Secret } from "../config/secret.ts";
import { DatagramDeframer, frameDatagram } from "../mapping/datagram_framing.ts";
import { type MappingOwner, MappingRegistry } from "../mapping/mapping_registry.ts";
import {
  type HttpMappingOptions,
  type RouteResult,
  serveHttpVisitor,
} from "../mapping/http_vhost.ts";
import { readClientHello } from "../mapping/sni.ts";
import type { ClientSession } from "./session_registry.ts";
import { RefusalLog } from "./refusal_log.ts";

/** A claim: the mapping, its client, and how its visitors are served. */
interface Owner extends MappingOwner {
  client: ClientSession;
  spec: MappingSpec;
  options: HttpMappingOptions | undefined;
}

/** A TCP listener or UDP socket of a port mapping. */
interface PortListener {
  addr: HostPort;
  close(): void;
}

const VISITOR_IDLE_MS = 3_600_000;
/** Datagram bytes waiting for the tunnel per visitor; more are dropped, as UDP may. */
const MAX_UDP_QUEUE_BYTES = 1024 * 1024;
const HELLO_TIMEOUT_MS = 10_000;

function allowedDomain(domain: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => {
    if (p === "*") return true;
    if (p.startsWith("*.")) return domain.endsWith(p.slice(1)) || domain === p.slice(2);
    return domain === p;
  });
}

function allowedPort(port: number, config: ServerConfig, client: ClientSession): boolean {
  const r = config.port_range;
  return port >= r.from && port <= r.to &&
    client.token.allow_ports.some((a) => port >= a.from && port <= a.to);
}

function httpOptions(spec: DomainMappingSpec): HttpMappingOptions {
  const h = spec.http;
  return {
    request_headers: h?.request_headers ?? [],
    response_headers: h?.response_headers ?? [],
    host_rewrite: h?.host_rewrite,
    x_forwarded: h?.x_forwarded ?? true,
    basic_auth: (h?.basic_auth ?? []).map((u) => ({
      username: u.username,
      password: new Secret(u.password),
    })),
  };
}

/** Mapping registration and the public listeners of a tunnel server. */
export class MappingService {
  readonly #config: ServerConfig;
  readonly #log: Logger;
  readonly #registry = new MappingRegistry<Owner>();
  readonly #ports = new Map<string, PortListener>();
  readonly #publicListeners: { close(): void }[] = [];
  readonly #tasks = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #visitors = 0;
  /** Mapping names each session holds, for `max_mappings`. */
  readonly #held = new Map<string, Set<string>>();
  /** Log lines of visitors refused by `mapping_max_connections`, at most one a second per listener. */
  readonly #refusals: RefusalLog;
  readonly #refusalFlush: ReturnType<typeof setInterval>;
  /** Internal TLS listeners that terminate HTTPS for `https_certificates`, by domain pattern. */
  readonly #terminators: { domains: readonly string[]; addr: HostPort }[] = [];
  /** Visitor address of each internal TLS connection, by its local port. */
  readonly #terminated = new Map<number, HostPort>();
  /** Public HTTP and HTTPS addresses, once bound. */
  httpAddr: HostPort | undefined;
  httpsAddr: HostPort | undefined;

  constructor(config: ServerConfig, deps: { log: Logger }) {
    this.#config = config;
    this.#log = deps.log;
    this.#refusals = new RefusalLog({
      emit: (line) => {
        const [component, peer] = line.peer.split(" ", 2) as [string, string];
        this.#log.warn(EVENTS.connection_rejected, {
          component,
          peer,
          reason: line.reason,
          ...(line.suppressed > 0 ? { suppressed: line.suppressed } : {}),
        });
      },
    });
    this.#refusalFlush = setInterval(() => this.#refusals.flush(), 1000);
    Deno.unrefTimer(this.#refusalFlush);
  }

  /**
   * Admits one more visitor on a public listener that has `active` now, or
   * logs (rate-limited) and returns false when `mapping_max_connections` are open.
   */
  #admitVisitor(
    component: string,
    listener: HostPort,
    active: number,
    visitor: HostPort,
  ): boolean {
    const max = this.#config.mapping_max_connections;
    if (active < max) return true;
    const where = formatHostPort(listener);
    this.#refusals.record(
      `${component} ${where}`,
      `${component} ${formatHostPort(visitor)}`,
      `mapping_max_connections (${max}) reached on ${component} listener ${where}`,
    );
    return false;
  }

  #track(p: Promise<void>): void {
    this.#tasks.add(p);
    p.finally(() => this.#tasks.delete(p));
  }

  /** Binds the public HTTP and HTTPS listeners that are configured. */
  async start(): Promise<void> {
    const c = this.#config;
    if (c.http_bind !== undefined) this.httpAddr = this.#listenPublic(c.http_bind, "http");
    if (c.https_bind !== undefined) {
      for (const entry of c.https_certificates) await this.#startTerminator(entry);
      this.httpsAddr = this.#listenPublic(c.https_bind, "https");
    }
  }

  /**
   * HTTPS termination: Deno cannot start server TLS on a socket whose
   * ClientHello we already read, so each certificate gets an internal TLS
   * listener on 127.0.0.1; the public port relays terminated names to it and
   * remembers who the visitor was. Behind it, requests route like HTTP ones.
   */
  async #startTerminator(
    entry: { domains: readonly string[]; cert: string; key: string },
  ): Promise<void> {
    let cert: string;
    let key: string;
    try {
      [cert, key] = await Promise.all([
        Deno.readTextFile(entry.cert),
        Deno.readTextFile(entry.key),
      ]);
    } catch (err) {
      throw new Error(
        `Cannot read server.https_certificates for ${entry.domains.join(", ")}: ${
          errorMessage(err)
        }`,
      );
    }
    const listener = Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert,
      key,
      alpnProtocols: ["http/1.1"],
    });
    this.#publicListeners.push(listener);
    this.#terminators.push({
      domains: entry.domains,
      addr: { hostname: "127.0.0.1", port: listener.addr.port },
    });
    this.#track(
      (async () => {
        for await (const tls of listener) {
          const visitor = this.#terminated.get(tls.remoteAddr.port);
          this.#terminated.delete(tls.remoteAddr.port);
          const id = `https${++this.#visitors}`;
          const conn: ByteConn = {
            read: (p) => tls.read(p),
            write: (p) => tls.write(p),
            closeWrite: () => tls.closeWrite(),
            close: () => tls.close(),
            remoteAddr: visitor ?? tls.remoteAddr,
            localAddr: tls.localAddr,
          };
          this.#track(serveHttpVisitor(conn, {
            resolve: (host) => this.#route("http", host),
            scheme: "https",
            log: this.#log.child({ component: "https" }),
            id,
            limits: this.#httpLimits(),
            signal: this.#abort.signal,
          }));
        }
      })().catch(() => {}),
    );
  }

  #terminatorFor(host: string): HostPort | undefined {
    return this.#terminators.find((t) => allowedDomain(host, t.domains))?.addr;
  }

  #httpLimits() {
    const l = this.#config.proxy.limits;
    return {
      max_header_bytes: l.max_header_bytes,
      handshake_timeout_ms: l.handshake_timeout_ms,
      idle_timeout_ms: l.idle_timeout_ms,
    };
  }

  #listenPublic(bind: string, scheme: "http" | "https"): HostPort {
    const [hostname, port] = [
      bind.slice(0, bind.lastIndexOf(":")).replace(/^\[|\]$/g, ""),
      Number(bind.slice(bind.lastIndexOf(":") + 1)),
    ];
    let listener;
    try {
      listener = listenTcp({ hostname: hostname || "127.0.0.1", port });
    } catch (err) {
      throw new Error(`Cannot listen on "${bind}" (server.${scheme}_bind): ${errorMessage(err)}`);
    }
    this.#publicListeners.push(listener);
    this.#log.info(EVENTS.listening, { component: scheme, addr: formatHostPort(listener.addr) });
    let active = 0;
    this.#track((async () => {
      for await (const conn of listener) {
        if (!this.#admitVisitor(scheme, listener.addr, active, conn.remoteAddr)) {
          conn.close();
          continue;
        }
        const id = `${scheme}${++this.#visitors}`;
        active++;
        const served = scheme === "http" ? this.#serveHttp(conn, id) : this.#serveHttps(conn, id);
        this.#track(served.finally(() => active--));
      }
    })());
    return listener.addr;
  }

  #route(scheme: "http" | "https", host: string): RouteResult {
    const r = this.#registry.resolveHost(scheme, host);
    if (r.kind !== "route") return r;
    const owner = r.owner;
    return {
      kind: "route",
      route: {
        mapping: owner.mapping,
        client: owner.client.name ?? owner.client.id,
        options: owner.options ?? httpOptions({ name: owner.mapping, kind: "http", domains: [] }),
        open: (visitor, h) => this.#open(owner, visitor, h),
      },
    };
  }

  #open(owner: Owner, visitor: HostPort, host: string | undefined): Promise<VirtualStream> {
    if (!owner.client.session.isOpen) {
      return Promise.reject(
        new Error(`the tunnel of client "${owner.client.name ?? owner.client.id}" is closed`),
      );
    }
    return owner.client.session.open({
      type: "open",
      kind: "mapping",
      mapping: owner.mapping,
      visitor: { hostname: visitor.hostname, port: visitor.port },
      ...(host === undefined ? {} : { host }),
    });
  }

  async #serveHttp(conn: ByteConn, id: string): Promise<void> {
    await serveHttpVisitor(conn, {
      resolve: (host) => this.#route("http", host),
      scheme: "http",
      log: this.#log.child({ component: "http" }),
      id,
      limits: this.#httpLimits(),
      signal: this.#abort.signal,
    });
  }

  async #serveHttps(conn: ByteConn, id: string): Promise<void> {
    const peer = formatHostPort(conn.remoteAddr);
    let hello;
    try {
      hello = await readClientHello(conn, 16 * 1024 + 1024, HELLO_TIMEOUT_MS);
    } catch (err) {
      this.#log.info(EVENTS.mapping_error, {
        component: "https",
        conn: id,
        peer,
        error: errorMessage(err),
      });
      conn.close();
      return;
    }
    const host = hello.serverName;
    const terminator = host === undefined ? undefined : this.#terminatorFor(host);
    if (terminator !== undefined) {
      return await this.#relayToTerminator(conn, terminator, hello.buffered, id);
    }
    const r = host === undefined
      ? { kind: "unknown" as const }
      : this.#registry.resolveHost("https", host);
    if (r.kind !== "route") {
      this.#log.info(EVENTS.mapping_error, {
        component: "https",
        conn: id,
        peer,
        host,
        error: host === undefined
          ? "the TLS ClientHello has no server name (SNI)"
          : r.kind === "offline"
          ? `the client serving "${host}" is offline`
          : `no mapping serves "${host}"`,
      });
      conn.close();
      return;
    }
    await this.#relayVisitor(conn, r.owner, id, host, hello.buffered);
  }

  async #relayToTerminator(
    conn: ByteConn,
    to: HostPort,
    first: Uint8Array,
    id: string,
  ): Promise<void> {
    let inner: Deno.TcpConn;
    try {
      inner = await Deno.connect({ hostname: to.hostname, port: to.port });
      inner.setNoDelay(true);
      this.#terminated.set((inner.localAddr as Deno.NetAddr).port, conn.remoteAddr);
      await writeAll(inner, first);
    } catch (err) {
      this.#log.warn(EVENTS.mapping_error, {
        component: "https",
        conn: id,
        error: errorMessage(err),
      });
      conn.close();
      return;
    }
    await relay(conn, inner, { idleTimeoutMs: VISITOR_IDLE_MS, signal: this.#abort.signal });
  }

  async #relayVisitor(
    conn: ByteConn,
    owner: Owner,
    id: string,
    host: string | undefined,
    first?: Uint8Array,
  ) {
    const peer = formatHostPort(conn.remoteAddr);
    const t0 = performance.now();
    let stream: VirtualStream;
    try {
      stream = await this.#open(owner, conn.remoteAddr, host);
      if (first && first.length > 0) await writeAll(stream, first);
    } catch (err) {
      this.#log.warn(EVENTS.mapping_error, {
        conn: id,
        mapping: owner.mapping,
        peer,
        error: errorMessage(err),
      });
      conn.close();
      return;
    }
    const r = await relay(conn, stream, {
      idleTimeoutMs: VISITOR_IDLE_MS,
      signal: this.#abort.signal,
    });
    this.#log.info(EVENTS.connection_closed, {
      component: owner.spec.kind,
      conn: id,
      mapping: owner.mapping,
      peer,
      bytes_in: r.bytesUp + (first?.length ?? 0),
      bytes_out: r.bytesDown,
      ms: Math.round(performance.now() - t0),
      ...(r.error ? { error: r.error.message } : {}),
    });
  }

  /** Handles a `register` from `client`; resolves to the answer to send. */
  async register(client: ClientSession, msg: RegisterMessage): Promise<RegisterResultMessage> {
    const results: MappingResult[] = [];
    for (const spec of msg.mappings) {
      let result: MappingResult;
      try {
        result = await this.#registerOne(client, spec);
      } catch (err) {
        result = {
          name: spec.name,
          ok: false,
          code: ERROR_CODES.INTERNAL_ERROR,
          message: errorMessage(err),
        };
      }
      if (result.ok) {
        this.#log.info(EVENTS.mapping_registered, {
          component: "tunnel",
          session: client.id,
          client: client.name,
          mapping: spec.name,
          kind: spec.kind,
          public_addr: result.public_addr,
          ...(spec.kind === "http" || spec.kind === "https" ? { domains: spec.domains } : {}),
        });
      } else {
        this.#log.warn(EVENTS.mapping_refused, {
          component: "tunnel",
          session: client.id,
          client: client.name,
          mapping: spec.name,
          code: result.code,
          reason: result.message,
        });
      }
      results.push(result);
    }
    return { type: "register_result", request_id: msg.request_id, results };
  }

  async #registerOne(client: ClientSession, spec: MappingSpec): Promise<MappingResult> {
    const held = this.#held.get(client.id) ?? new Set<string>();
    const max = this.#config.max_mappings;
    if (!held.has(spec.name) && held.size >= max) {
      return {
        name: spec.name,
        ok: false,
        code: ERROR_CODES.RESOURCE_EXHAUSTED,
        message: `this client already holds ${held.size} mappings, the server's max_mappings ` +
          `(${max}); unregister one or raise server.max_mappings`,
      };
    }
    const result = await this.#registerNew(client, spec);
    if (result.ok) {
      held.add(spec.name);
      this.#held.set(client.id, held);
    } else if (held.delete(spec.name) && held.size === 0) {
      this.#held.delete(client.id); // its old claim was dropped on the way
    }
    return result;
  }

  async #registerNew(client: ClientSession, spec: MappingSpec): Promise<MappingResult> {
    const fail = (code: number, message: string): MappingResult => ({
      name: spec.name,
      ok: false,
      code,
      message,
    });
    const owner: Owner = {
      sessionId: client.id,
      token: client.token.name,
      mapping: spec.name,
      client,
      spec,
      options: spec.kind === "http" || spec.kind === "https" ? httpOptions(spec) : undefined,
    };
    // A mapping registered again by the same session replaces its old claims.
    this.#drop(this.#registry.release(client.id, new Set([spec.name])));
    if (spec.kind === "http" || spec.kind === "https") {
      // An http mapping is reachable on http_bind, or on https_bind where the server terminates TLS.
      const addr = spec.kind === "http"
        ? this.httpAddr ?? (this.#terminators.length > 0 ? this.httpsAddr : undefined)
        : this.httpsAddr;
      if (addr === undefined) {
        return fail(
          ERROR_CODES.NOT_FOUND,
          `this server has no public ${spec.kind.toUpperCase()} port (server.${spec.kind}_bind)`,
        );
      }
      const bad = spec.domains.find((d) =>
        !allowedDomain(d.toLowerCase(), client.token.allow_domains)
      );
      if (bad !== undefined) {
        return fail(
          ERROR_CODES.FORBIDDEN,
          `domain "${bad}" is outside token "${client.token.name}"'s allow_domains`,
        );
      }
      const claim = this.#registry.claimDomains(
        spec.kind,
        spec.domains.map((d) => d.toLowerCase()),
        owner,
      );
      if (!claim.ok) return fail(ERROR_CODES.CONFLICT, claim.message);
      return { name: spec.name, ok: true, public_addr: formatHostPort(addr) };
    }
    const { kind: transport, remote_port: remotePort } = spec as PortMappingSpec;
    if (remotePort !== 0) {
      if (!allowedPort(remotePort, this.#config, client)) {
        return fail(
          ERROR_CODES.FORBIDDEN,
          `port ${remotePort} is outside the server's port_range ${this.#config.port_range.from}-${this.#config.port_range.to} or token "${client.token.name}"'s allow_ports`,
        );
      }
      return this.#claimPort(transport, remotePort, owner, fail);
    }
    // remote_port 0: the first free allowed port, from a random start.
    const { from, to } = this.#config.port_range;
    const span = to - from + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span && i < 2000; i++) {
      const port = from + ((start + i) % span);
      if (this.#registry.hasPort(transport, port) || !allowedPort(port, this.#config, client)) {
        continue;
      }
      const r = await this.#claimPort(transport, port, owner, fail);
      if (r.ok) return r;
    }
    return fail(ERROR_CODES.CONFLICT, `no free ${transport} port in the allowed range`);
  }

  async #claimPort(
    transport: "tcp" | "udp",
    port: number,
    owner: Owner,
    fail: (code: number, message: string) => MappingResult,
  ): Promise<MappingResult> {
    const key = `${transport}:${port}`;
    const claim = this.#registry.claimPort(transport, port, owner);
    if (!claim.ok) return fail(ERROR_CODES.CONFLICT, claim.message);
    let listener = this.#ports.get(key);
    if (listener === undefined) {
      try {
        listener = transport === "tcp"
          ? this.#listenTcpMapping(port)
          : await this.#listenUdpMapping(port);
      } catch (err) {
        this.#registry.release(owner.sessionId, new Set([owner.mapping]));
        return fail(
          ERROR_CODES.CONFLICT,
          `${transport} port ${port} is busy on the server (${errorMessage(err)})`,
        );
      }
      this.#ports.set(key, listener);
    }
    return { name: owner.mapping, ok: true, public_addr: formatHostPort(listener.addr) };
  }

  #listenTcpMapping(port: number): PortListener {
    const listener = listenTcp({ hostname: this.#config.mapping_host, port });
    let active = 0;
    this.#track((async () => {
      for await (const conn of listener) {
        const owner = this.#registry.portOwner("tcp", port);
        const id = `tcp${++this.#visitors}`;
        if (
          owner === undefined || !this.#admitVisitor("tcp", listener.addr, active, conn.remoteAddr)
        ) {
          conn.close();
          continue;
        }
        active++;
        this.#track(this.#relayVisitor(conn, owner, id, undefined).finally(() => active--));
      }
    })());
    return listener;
  }

  #listenUdpMapping(port: number): Promise<PortListener> {
    const host = this.#config.mapping_host;
    const socket = dgram.createSocket({ type: host.includes(":") ? "udp6" : "udp4" });
    const sessions = new Map<
      string,
      { stream: Promise<VirtualStream>; last: number; queued: number; writing: Promise<unknown> }
    >();
    const idleMs = this.#config.udp_idle_timeout_ms;
    const sweep = setInterval(() => {
      const now = Date.now();
      for (const [key, s] of sessions) {
        if (now - s.last < idleMs) continue;
        sessions.delete(key);
        s.stream.then((st) => st.closeWrite().then(() => st.close()), () => {});
      }
    }, Math.max(50, Math.min(idleMs / 4, 5000)));
    const onMessage = (msg: Buffer, rinfo: { address: string; port: number }) => {
      const key = `${rinfo.address}|${rinfo.port}`;
      let s = sessions.get(key);
      if (s === undefined) {
        const owner = this.#registry.portOwner("udp", port);
        if (owner === undefined) return;
        const visitor = { hostname: rinfo.address, port: rinfo.port };
        const bound = socket.address();
        if (
          !this.#admitVisitor(
            "udp",
            { hostname: bound.address, port: bound.port },
            sessions.size,
            visitor,
          )
        ) return; // dropped, as UDP may
        const stream = this.#open(owner, { hostname: rinfo.address, port: rinfo.port }, undefined);
        s = { stream, last: Date.now(), queued: 0, writing: stream };
        sessions.set(key, s);
        const entry = s;
        stream.then(
          (st) =>
            this.#track(
              this.#udpDownstream(st, socket, rinfo, () =>
                sessions.get(key) === entry && (entry.last = Date.now()))
                .finally(() => {
                  if (sessions.get(key) === entry) {
                    sessions.delete(key);
                  }
                }),
            ),
          (err) => {
            sessions.delete(key);
            this.#log.warn(EVENTS.mapping_error, {
              component: "udp",
              mapping: owner.mapping,
              error: errorMessage(err),
            });
          },
        );
      }
      const entry = s;
      entry.last = Date.now();
      if (entry.queued + msg.byteLength > MAX_UDP_QUEUE_BYTES) return; // the client is slow: drop
      entry.queued += msg.byteLength;
      const data = frameDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
      // One chain per visitor keeps datagrams in order of arrival.
      entry.writing = entry.writing
        .then(() => entry.stream)
        .then((st) => st.write(data))
        .then(() => entry.queued -= msg.byteLength, () => entry.queued -= msg.byteLength);
    };
    socket.on("message", onMessage);
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => {
        socket.off("error", reject);
        socket.on(
          "error",
          (err) =>
            this.#log.warn(EVENTS.mapping_error, { component: "udp", port, error: err.message }),
        );
        const a = socket.address();
        resolve({
          addr: { hostname: a.address, port: a.port },
          close: () => {
            clearInterval(sweep);
            for (const s of sessions.values()) s.stream.then((st) => st.close(), () => {});
            sessions.clear();
            try {
              socket.close();
            } catch {
              // already closed
            }
          },
        });
      });
    });
  }

  async #udpDownstream(
    stream: VirtualStream,
    socket: dgram.Socket,
    to: { address: string; port: number },
    touch: () => void,
  ): Promise<void> {
    const deframer = new DatagramDeframer();
    const buf = new Uint8Array(65536 + 2);
    try {
      for (let n = await stream.read(buf); n !== null; n = await stream.read(buf)) {
        for (const dg of deframer.push(buf.subarray(0, n))) {
          touch();
          socket.send(dg, to.port, to.address);
        }
      }
    } catch {
      // stream reset or session gone: the visitor session ends
    } finally {
      stream.close();
    }
  }

  /** Handles an `unregister`: drops the named mappings of `client`. */
  unregister(client: ClientSession, names: readonly string[]): RegisterResultMessage["results"] {
    this.#drop(this.#registry.release(client.id, new Set(names)));
    const held = this.#held.get(client.id);
    for (const name of names) held?.delete(name);
    if (held?.size === 0) this.#held.delete(client.id);
    return names.map((name) => ({ name, ok: true, public_addr: "" }));
  }

  /** A client session ended: drop every claim it held. */
  release(client: ClientSession): void {
    const dropped = this.#registry.release(client.id);
    this.#held.delete(client.id);
    this.#drop(dropped);
    for (const [, owner] of dropped) {
      this.#log.info(EVENTS.mapping_released, {
        component: "tunnel",
        session: client.id,
        mapping: owner.mapping,
      });
    }
  }

  /** Closes the listeners of dropped port claims that nobody took over. */
  #drop(dropped: [string, Owner][]): void {
    for (const [key] of dropped) {
      const listener = this.#ports.get(key);
      if (listener === undefined) continue;
      const [transport, port] = key.split(":") as ["tcp" | "udp", string];
      if (this.#registry.portOwner(transport, Number(port)) !== undefined) continue;
      this.#ports.delete(key);
      listener.close();
    }
  }

  /** Every listener this service has bound (public HTTP/HTTPS, TLS terminators, mapping ports). */
  listenerAddrs(): HostPort[] {
    return [
      ...(this.httpAddr ? [this.httpAddr] : []),
      ...(this.httpsAddr ? [this.httpsAddr] : []),
      ...this.#terminators.map((t) => t.addr),
      ...[...this.#ports.values()].map((l) => l.addr),
    ];
  }

  /** Live claims, for status pages. */
  entries(): { key: string; mapping: string; session: string }[] {
    return this.#registry.entries().map((e) => ({
      key: e.key,
      mapping: e.owner.mapping,
      session: e.owner.sessionId,
    }));
  }

  /** Closes every public listener and visitor connection. */
  async close(): Promise<void> {
    this.#abort.abort();
    clearInterval(this.#refusalFlush);
    this.#refusals.flush();
    for (const l of this.#publicListeners) l.close();
    for (const l of this.#ports.values()) l.close();
    this.#ports.clear();
    await Promise.allSettled([...this.#tasks]);
  }
}
