/**
 * The I/O edge of the `http` section: listeners (HTTP/1.1, and HTTP/2 over
 * TLS by ALPN) around the pure handler, upstream groups with their active
 * health checks, and one pooled keep-alive HTTP client.
 *
 * A TLS address is a ./tls_front.ts listener: connection cap
 * (`http.max_connections`), certificate by SNI (the default server's for
 * clients without SNI), the handshake within the client header timeout. An
 * HTTP/1.1 connection then gets the raw front (./http_front.ts) with its
 * header and keep-alive timeouts, every request going to an internal
 * `Deno.serve` for https; an HTTP/2 connection is relayed as is (h2 with prior
 * knowledge) to that internal server, closed after the keep-alive timeout
 * with no traffic either way. The handler still sees the visitor's address.
 *
 * A plain address whose servers proxy gets the raw HTTP/1.1 front with an
 * internal `Deno.serve` for what the front does not serve itself, under the
 * same connection cap; other plain addresses are `Deno.serve` listeners.
 *
 * Reload ({@link HttpSection.update}) swaps the compiled routes in place and
 * restarts only listeners whose address, certificate or kind changed.
 *
 * @module
 */
import type { HttpSectionConfig, VirtualServerConfig } from "../config/http_section.ts";
import { configKey } from "../config/compare.ts";
import { Histogram, type HistogramSample } from "../observability/histogram.ts";
import tls from "node:tls";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import { relay } from "../proxy/relay.ts";
import { closeQuietly } from "../proxy/_counted_conn.ts";
import { formatHostPort, type HostPort, parseHostPort } from "../transport/conn.ts";
import { dialTcp, listenTcp, type TcpListener } from "../transport/tcp.ts";
import { UpstreamGroup } from "../upstream/mod.ts";
import type { FetchLike } from "./context.ts";
import { createHttpCore, type HttpCore } from "./handler.ts";
import { type FrontOptions, serveFrontConnection } from "./http_front.ts";
import { selectServer } from "./router.ts";
import { listenTlsFront, type TlsFrontConnection } from "./tls_front.ts";
import { UpstreamPool } from "./upstream_pool.ts";
import { createUpstreamFetch } from "./upstream_fetch.ts";

/** An HTTP/2 connection's idle limit when the keep-alive timeout is 0 (off). */
const H2_IDLE_FALLBACK_MS = 3_600_000;

/** Options for {@link startHttpSection}. */
export interface StartHttpSectionOptions {
  log: Logger;
  /** Aborting closes the section. */
  signal?: AbortSignal;
}

/** What {@link HttpSection.update} did to the listeners (by address as configured). */
export interface HttpUpdateReport {
  kept: string[];
  started: string[];
  stopped: string[];
  restarted: string[];
  /** Listeners that could not start; the others run. */
  failed: { addr: string; error: string }[];
}

/** A running `http` section. */
export interface HttpSection extends AsyncDisposable {
  /** Every bound listener, with its real address. */
  readonly listeners: { addr: string; tls: boolean }[];
  /** Upstream groups by name (their `status()` is for the admin API). */
  readonly upstreams: ReadonlyMap<string, UpstreamGroup>;
  /** Request latency per listen address (`wmproxy_http_request_duration_seconds`). */
  histograms(): HistogramSample[];
  /**
   * Applies a new config in place: routes, locations, upstreams and header
   * rules change for the next request on every connection; a listener whose
   * address, TLS certificate or front/back kind changed restarts alone;
   * unchanged listeners keep their sockets and connections. Rejects (changing
   * nothing) when a certificate cannot be read.
   */
  update(next: HttpSectionConfig): Promise<HttpUpdateReport>;
  close(): Promise<void>;
}

/** How one configured address is served. */
interface ListenerPlan {
  /** The address as configured (the routing key). */
  addr: string;
  tls: boolean;
  /** Equal keys: the running listener can stay. */
  key: string;
  kind: "front" | "serve" | "tls";
  /** TLS: one entry per distinct certificate. */
  certs: { cert: string; key: string; servers: VirtualServerConfig[] }[];
  servers: VirtualServerConfig[];
}

interface Unit {
  plan: ListenerPlan;
  bound: string;
  front: FrontOptions | undefined;
  close(): Promise<void>;
}

async function readTls(server: VirtualServerConfig, index: number) {
  const tls = server.tls;
  if (tls === undefined) {
    throw new Error(`Cannot listen with TLS: http.servers[${index}].tls is not set`);
  }
  try {
    const [cert, key] = await Promise.all([
      Deno.readTextFile(tls.cert),
      Deno.readTextFile(tls.key),
    ]);
    return { cert, key };
  } catch (err) {
    throw new Error(
      `Cannot read the certificate of http.servers[${index}] (${tls.cert}, ${tls.key}): ${
        errorMessage(err)
      }`,
    );
  }
}

function bindParts(addr: string): HostPort {
  const hp = parseHostPort(addr);
  return { hostname: hp.hostname || "127.0.0.1", port: hp.port };
}

/** Whether any location of `servers` proxies (then a plain address gets the raw front). */
function proxies(servers: readonly VirtualServerConfig[]): boolean {
  return servers.some((s) => s.locations.some((l) => l.proxy_pass !== undefined));
}

/** Client timeouts of an address: the most lenient of its locations. */
function clientTimeouts(servers: readonly VirtualServerConfig[]) {
  let header = 0;
  let keepAlive = 0;
  for (const s of servers) {
    for (const l of s.locations) {
      header = Math.max(header, l.timeouts.client_header_ms);
      keepAlive = Math.max(keepAlive, l.timeouts.keep_alive_ms);
    }
  }
  return { header, keepAlive };
}

/** Reads certificates and decides how each address is served. */
async function planListeners(config: HttpSectionConfig): Promise<Map<string, ListenerPlan>> {
  const plans = new Map<string, ListenerPlan>();
  const plain = new Map<string, VirtualServerConfig[]>();
  const secure = new Map<string, { server: VirtualServerConfig; index: number }[]>();
  config.servers.forEach((s, index) => {
    for (const a of s.listen) plain.set(a, [...(plain.get(a) ?? []), s]);
    for (const a of s.listen_tls) secure.set(a, [...(secure.get(a) ?? []), { server: s, index }]);
  });
  for (const [addr, servers] of plain) {
    const kind = proxies(servers) ? "front" : "serve";
    plans.set(`plain ${addr}`, { addr, tls: false, key: kind, kind, certs: [], servers });
  }
  for (const [addr, entries] of secure) {
    const certs = new Map<string, { cert: string; key: string; servers: VirtualServerConfig[] }>();
    for (const { server, index } of entries) {
      const id = `${server.tls!.cert}\n${server.tls!.key}`;
      const known = certs.get(id);
      if (known) known.servers.push(server);
      else certs.set(id, { ...(await readTls(server, index)), servers: [server] });
    }
    const list = [...certs.values()];
    const kind = "tls";
    const key = configKey({
      kind,
      certs: list.map((c) => ({
        cert: c.cert,
        key: c.key,
        names: c.servers.map((s) => [s.server_names, s.default_server]),
      })),
    });
    plans.set(`tls ${addr}`, {
      addr,
      tls: true,
      key,
      kind,
      certs: list,
      servers: entries.map((e) => e.server),
    });
  }
  return plans;
}

/** Upstream groups by name with the config each was built from. */
type Groups = Map<string, { key: string; group: UpstreamGroup }>;

/**
 * Starts every listener of an `http` section; logs `listening` with
 * `component: "http"`, the bound `addr` and `tls` for each. Rejects (closing
 * what it opened) when a listener cannot be bound or a certificate read.
 */
export async function startHttpSection(
  config: HttpSectionConfig,
  options: StartHttpSectionOptions,
): Promise<HttpSection> {
  const log = options.log.child({ component: "http" });
  const stop = new AbortController();
  const pool = new UpstreamPool();
  // The full handler's upstream requests share the fast path's pool and, unlike
  // the runtime's fetch, add no headers of their own (src/reverse/upstream_fetch.ts).
  const fetchWithPool: FetchLike = createUpstreamFetch({ pool });
  const latency = new Map<string, Histogram>();
  const observe = (listen: string | undefined, seconds: number) => {
    const key = listen ?? "-";
    let h = latency.get(key);
    if (h === undefined) latency.set(key, h = new Histogram());
    h.observe(seconds);
  };
  /** Internal connections (by their local port) → the visitor behind them. */
  const visitors = new Map<
    number,
    { addr: HostPort; listen: string; serverName?: string | undefined }
  >();
  let groups: Groups = new Map();
  let core: HttpCore;
  const units = new Map<string, Unit>();
  let internal: Deno.HttpServer<Deno.NetAddr> | undefined;
  let internalHttps: Deno.HttpServer<Deno.NetAddr> | undefined;
  let maxConnections = config.max_connections;
  const rejected = (peer: HostPort, listen: string) =>
    log.warn(EVENTS.connection_rejected, {
      peer: formatHostPort(peer),
      listen,
      reason: `max_connections (${maxConnections})`,
    });

  /** Builds the core for `cfg`, reusing unchanged upstream groups. */
  const buildCore = (cfg: HttpSectionConfig) => {
    const next: Groups = new Map();
    const added: UpstreamGroup[] = [];
    for (const g of cfg.upstreams) {
      const key = configKey(g);
      const known = groups.get(g.name);
      if (known !== undefined && known.key === key) next.set(g.name, known);
      else {
        const group = new UpstreamGroup(g, { log });
        next.set(g.name, { key, group });
        added.push(group);
      }
    }
    const removed = [...groups.entries()]
      .filter(([name, g]) => next.get(name)?.group !== g.group)
      .map(([, g]) => g.group);
    const upstreams = new Map([...next].map(([name, g]) => [name, g.group]));
    const built = createHttpCore(cfg, { fetch: fetchWithPool, upstreams, log, observe });
    return { next, added, removed, built };
  };

  /** Internal requests: only from our own front/SNI connections. */
  const internalHandler = (scheme: "http" | "https") =>
  (
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> | Response => {
    const visitor = visitors.get(info.remoteAddr.port);
    if (visitor === undefined) return new Response("403 Forbidden\n", { status: 403 });
    return core.handle(req, {
      remoteAddr: visitor.addr,
      scheme,
      listen: visitor.listen,
      ...(visitor.serverName ? { serverName: visitor.serverName } : {}),
    });
  };

  const serve = (
    bind: HostPort,
    tls: { cert: string; key: string } | undefined,
    handler: Deno.ServeHandler<Deno.NetAddr>,
  ): Deno.HttpServer<Deno.NetAddr> =>
    Deno.serve({
      hostname: bind.hostname,
      port: bind.port,
      ...(tls ?? {}),
      onListen: () => {},
      onError: (err) => {
        log.error(EVENTS.http_error, { error: errorMessage(err) });
        return new Response("500 Internal Server Error\n", { status: 500 });
      },
    }, handler);

  const internalAddr = (): HostPort => {
    internal ??= serve({ hostname: "127.0.0.1", port: 0 }, undefined, internalHandler("http"));
    return { hostname: "127.0.0.1", port: internal.addr.port };
  };
  /** The internal server of TLS addresses (plain h1 and h2 with prior knowledge). */
  const internalHttpsAddr = (): HostPort => {
    internalHttps ??= serve(
      { hostname: "127.0.0.1", port: 0 },
      undefined,
      internalHandler("https"),
    );
    return { hostname: "127.0.0.1", port: internalHttps.addr.port };
  };

  const startTlsUnit = async (plan: ListenerPlan): Promise<Unit> => {
    const addr = plan.addr;
    const bind = bindParts(addr);
    const contexts = new Map<VirtualServerConfig, tls.SecureContext>();
    for (const c of plan.certs) {
      let context: tls.SecureContext;
      try {
        context = tls.createSecureContext({ cert: c.cert, key: c.key });
      } catch (err) {
        throw new Error(`Cannot listen on "${addr}" (http): bad certificate: ${errorMessage(err)}`);
      }
      for (const s of c.servers) contexts.set(s, context);
    }
    const contextFor = (name: string): tls.SecureContext => {
      // The plan this listener started with: a reload keeps it only with the
      // same certificates and names, and its server objects key `contexts`.
      const chosen = selectServer(plan.servers, name) ?? plan.servers[0]!;
      return contexts.get(chosen) ?? contexts.values().next().value!;
    };
    const unitStop = new AbortController();
    const onStop = () => unitStop.abort();
    stop.signal.addEventListener("abort", onStop, { once: true });
    const timeouts = clientTimeouts(plan.servers);
    const front: FrontOptions = {
      listen: addr,
      core: () => core,
      pool,
      internal: internalHttpsAddr(),
      visitors,
      headerTimeoutMs: timeouts.header,
      keepAliveTimeoutMs: timeouts.keepAlive,
      log,
      signal: unitStop.signal,
      now: Date.now,
      observe,
      scheme: "https",
    };
    const serveH2 = async (c: TlsFrontConnection) => {
      const upstream = await dialTcp(front.internal);
      const port = upstream.localAddr.port;
      visitors.set(port, { addr: c.conn.remoteAddr, listen: addr, serverName: c.serverName });
      try {
        await relay(c.conn, upstream, {
          idleTimeoutMs: front.keepAliveTimeoutMs > 0
            ? front.keepAliveTimeoutMs
            : H2_IDLE_FALLBACK_MS,
          signal: unitStop.signal,
        });
      } finally {
        visitors.delete(port);
        closeQuietly(upstream);
      }
    };
    let listener;
    try {
      listener = await listenTlsFront({
        hostname: bind.hostname,
        port: bind.port,
        contextFor,
        maxConnections: () => maxConnections,
        handshakeTimeoutMs: () => front.headerTimeoutMs,
        serve: (c) => c.alpn === "h2" ? serveH2(c) : serveFrontConnection(c.conn, front),
        onRejected: (peer) => rejected(peer, addr),
        onHandshakeError: (peer, error) =>
          log.debug(EVENTS.protocol_error, { peer: formatHostPort(peer), error }),
      });
    } catch (err) {
      stop.signal.removeEventListener("abort", onStop);
      throw new Error(`Cannot listen on "${addr}" (http): ${errorMessage(err)}`);
    }
    const bound = listener;
    const unit: Unit = {
      plan,
      bound: formatHostPort(bound.addr),
      front,
      close: async () => {
        stop.signal.removeEventListener("abort", onStop);
        unitStop.abort();
        await bound.close();
      },
    };
    return unit;
  };

  const startUnit = async (plan: ListenerPlan): Promise<Unit> => {
    const addr = plan.addr;
    const bind = bindParts(addr);
    if (plan.kind === "tls") return await startTlsUnit(plan);
    if (plan.kind === "serve") {
      let server: Deno.HttpServer<Deno.NetAddr>;
      try {
        server = serve(bind, undefined, (req, info) =>
          core.handle(req, {
            remoteAddr: { hostname: info.remoteAddr.hostname, port: info.remoteAddr.port },
            scheme: "http",
            listen: addr,
          }));
      } catch (err) {
        throw new Error(`Cannot listen on "${addr}" (http): ${errorMessage(err)}`);
      }
      return {
        plan,
        bound: formatHostPort(server.addr),
        front: undefined,
        close: () => server.shutdown(),
      };
    }
    let listener: TcpListener;
    try {
      listener = listenTcp(bind);
    } catch (err) {
      throw new Error(`Cannot listen on "${addr}" (http): ${errorMessage(err)}`);
    }
    const unitStop = new AbortController();
    const onStop = () => unitStop.abort();
    stop.signal.addEventListener("abort", onStop, { once: true });
    const tasks = new Set<Promise<unknown>>();
    const timeouts = clientTimeouts(plan.servers);
    const front: FrontOptions = {
      listen: addr,
      core: () => core,
      pool,
      internal: internalAddr(),
      visitors,
      headerTimeoutMs: timeouts.header,
      keepAliveTimeoutMs: timeouts.keepAlive,
      log,
      signal: unitStop.signal,
      now: Date.now,
      observe,
    };
    const accept = async () => {
      for await (const conn of listener) {
        if (tasks.size >= maxConnections) {
          rejected(conn.remoteAddr, addr);
          closeQuietly(conn);
          continue;
        }
        conn.setNoDelay(true);
        const task = serveFrontConnection(conn, front);
        tasks.add(task);
        task.finally(() => tasks.delete(task));
      }
    };
    const loop = accept().catch(() => {});
    return {
      plan,
      bound: formatHostPort(listener.addr),
      front,
      close: async () => {
        stop.signal.removeEventListener("abort", onStop);
        try {
          listener.close();
        } catch {
          // already closed
        }
        unitStop.abort();
        await loop;
        await Promise.allSettled([...tasks]);
      },
    };
  };

  const startLogged = async (slot: string, plan: ListenerPlan) => {
    const unit = await startUnit(plan);
    units.set(slot, unit);
    log.info(EVENTS.listening, {
      addr: unit.bound,
      tls: plan.tls,
      ...(plan.kind === "front" ? { front: true } : {}),
    });
  };
  const stopLogged = async (slot: string) => {
    const unit = units.get(slot);
    if (unit === undefined) return;
    units.delete(slot);
    await unit.close().catch(() => {});
    log.info(EVENTS.listener_closed, { addr: unit.bound });
  };

  const first = buildCore(config);
  groups = first.next;
  core = first.built;
  try {
    for (const [slot, plan] of await planListeners(config)) await startLogged(slot, plan);
  } catch (err) {
    for (const slot of [...units.keys()]) await stopLogged(slot);
    stop.abort();
    await internal?.shutdown().catch(() => {});
    await internalHttps?.shutdown().catch(() => {});
    pool.close();
    throw err;
  }
  for (const g of groups.values()) g.group.start();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      for (const slot of [...units.keys()].reverse()) await stopLogged(slot);
      stop.abort();
      await internal?.shutdown().catch(() => {});
      await internalHttps?.shutdown().catch(() => {});
      pool.close();
      for (const g of groups.values()) await g.group.close().catch(() => {});
    })();
    return closing;
  };
  options.signal?.addEventListener("abort", () => void close(), { once: true });

  const update = async (next: HttpSectionConfig): Promise<HttpUpdateReport> => {
    const plans = await planListeners(next); // may reject: nothing changed yet
    const built = buildCore(next);
    const report: HttpUpdateReport = {
      kept: [],
      started: [],
      stopped: [],
      restarted: [],
      failed: [],
    };
    groups = built.next;
    core = built.built;
    maxConnections = next.max_connections;
    for (const g of built.added) g.start();
    for (const g of built.removed) await g.close().catch(() => {});
    for (const slot of [...units.keys()]) {
      if (!plans.has(slot)) {
        report.stopped.push(units.get(slot)!.plan.addr);
        await stopLogged(slot);
      }
    }
    for (const [slot, plan] of plans) {
      const running = units.get(slot);
      if (running !== undefined && running.plan.key === plan.key) {
        running.plan = plan;
        if (running.front !== undefined) {
          const t = clientTimeouts(plan.servers);
          running.front.headerTimeoutMs = t.header;
          running.front.keepAliveTimeoutMs = t.keepAlive;
        }
        report.kept.push(plan.addr);
        continue;
      }
      if (running !== undefined) await stopLogged(slot);
      try {
        await startLogged(slot, plan);
        (running !== undefined ? report.restarted : report.started).push(plan.addr);
      } catch (err) {
        log.error(EVENTS.http_error, { addr: plan.addr, error: errorMessage(err) });
        report.failed.push({ addr: plan.addr, error: errorMessage(err) });
      }
    }
    return report;
  };

  return {
    get listeners() {
      return [...units.values()].map((u) => ({ addr: u.bound, tls: u.plan.tls }));
    },
    get upstreams() {
      return new Map([...groups].map(([name, g]) => [name, g.group]));
    },
    histograms: () =>
      [...latency].map(([listen, h]) => ({
        metric: "wmproxy_http_request_duration_seconds",
        help: "Seconds from an http request's head to its response head, per listen address.",
        labels: { listen },
        hist: h.snapshot(),
      })),
    update,
    close,
    [Symbol.asyncDispose]: close,
  };
}
