/**
 * The I/O edge of the `http` section: `Deno.serve` listeners (HTTP/1.1, and
 * HTTP/2 over TLS by ALPN) around the pure handler, upstream groups with
 * their active health checks, and one pooled keep-alive HTTP client.
 *
 * TLS with several certificates on one address: `Deno.serve` takes one
 * certificate and no SNI resolver (checked on Deno 2.9.6), so such an address
 * is a TCP listener that reads the ClientHello's server name and relays the
 * connection to an internal `Deno.serve` on 127.0.0.1 holding the matching
 * certificate (the default server's one for clients without SNI). The
 * handler still sees the visitor's address. An address with one certificate
 * is served by `Deno.serve` directly.
 *
 * A plain address whose servers proxy gets the raw HTTP/1.1 front
 * (./http_front.ts) with an internal `Deno.serve` for what the front does not
 * serve itself; other plain addresses are `Deno.serve` listeners.
 *
 * Reload ({@link HttpSection.update}) swaps the compiled routes in place and
 * restarts only listeners whose address, certificate or kind changed.
 *
 * @module
 */
import type { HttpSectionConfig, VirtualServerConfig } from "../config/http_section.ts";
import { configKey } from "../config/compare.ts";
import { Histogram, type HistogramSample } from "../observability/histogram.ts";
import { readClientHello } from "../mapping/sni.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import { relay } from "../proxy/relay.ts";
import { formatHostPort, type HostPort, parseHostPort } from "../transport/conn.ts";
import { dialTcp, listenTcp, type TcpListener } from "../transport/tcp.ts";
import { UpstreamGroup } from "../upstream/mod.ts";
import type { FetchLike } from "./context.ts";
import { createHttpCore, type HttpCore } from "./handler.ts";
import { type FrontOptions, serveFrontConnection } from "./http_front.ts";
import { selectServer } from "./router.ts";
import { UpstreamPool } from "./upstream_pool.ts";
import { createUpstreamFetch } from "./upstream_fetch.ts";

/** Time allowed for a TLS client to send its ClientHello on an SNI-routed address. */
export const CLIENT_HELLO_TIMEOUT_MS = 10_000;

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
  kind: "front" | "serve" | "sni";
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
    const kind = list.length === 1 ? "serve" : "sni";
    const key = configKey({
      kind,
      certs: list.map((c) => ({
        cert: c.cert,
        key: c.key,
        names: kind === "sni" ? c.servers.map((s) => [s.server_names, s.default_server]) : [],
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

  const startUnit = (plan: ListenerPlan): Unit => {
    const addr = plan.addr;
    const bind = bindParts(addr);
    if (plan.kind === "serve") {
      const tls = plan.tls ? { cert: plan.certs[0]!.cert, key: plan.certs[0]!.key } : undefined;
      const scheme = plan.tls ? "https" : "http";
      let server: Deno.HttpServer<Deno.NetAddr>;
      try {
        server = serve(bind, tls, (req, info) =>
          core.handle(req, {
            remoteAddr: { hostname: info.remoteAddr.hostname, port: info.remoteAddr.port },
            scheme,
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
    const closers: (() => Promise<void> | void)[] = [];
    const internals = new Map<VirtualServerConfig, HostPort>();
    if (plan.kind === "sni") {
      for (const c of plan.certs) {
        const s = serve({ hostname: "127.0.0.1", port: 0 }, c, internalHandler("https"));
        closers.push(() => s.shutdown());
        for (const v of c.servers) internals.set(v, { hostname: "127.0.0.1", port: s.addr.port });
      }
    }
    let listener: TcpListener;
    try {
      listener = listenTcp(bind);
    } catch (err) {
      for (const c of closers) void c();
      throw new Error(`Cannot listen on "${addr}" (http): ${errorMessage(err)}`);
    }
    const unitStop = new AbortController();
    const onStop = () => unitStop.abort();
    stop.signal.addEventListener("abort", onStop, { once: true });
    const tasks = new Set<Promise<unknown>>();
    const timeouts = clientTimeouts(plan.servers);
    const front: FrontOptions | undefined = plan.kind === "front"
      ? {
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
      }
      : undefined;
    const serveSni = async (conn: Deno.TcpConn) => {
      try {
        const hello = await readClientHello(conn, 16 * 1024, CLIENT_HELLO_TIMEOUT_MS);
        const chosen = selectServer(plan.servers, hello.serverName ?? "");
        const target = chosen === undefined ? undefined : internals.get(chosen);
        if (target === undefined) {
          conn.close();
          return;
        }
        const upstream = await dialTcp(target);
        visitors.set(upstream.localAddr.port, {
          addr: { hostname: conn.remoteAddr.hostname, port: conn.remoteAddr.port },
          listen: addr,
          serverName: hello.serverName,
        });
        try {
          await upstream.write(hello.buffered);
          await relay(conn, upstream, { idleTimeoutMs: 3_600_000, signal: unitStop.signal });
        } finally {
          visitors.delete(upstream.localAddr.port);
        }
      } catch (err) {
        try {
          conn.close();
        } catch {
          // already closed
        }
        log.debug(EVENTS.protocol_error, {
          peer: formatHostPort(conn.remoteAddr),
          error: errorMessage(err),
        });
      }
    };
    const accept = async () => {
      for await (const conn of listener) {
        const task = front !== undefined
          ? (conn.setNoDelay(true), serveFrontConnection(conn, front))
          : serveSni(conn);
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
        for (const c of closers) await Promise.resolve(c()).catch(() => {});
      },
    };
  };

  const startLogged = (slot: string, plan: ListenerPlan) => {
    const unit = startUnit(plan);
    units.set(slot, unit);
    log.info(EVENTS.listening, {
      addr: unit.bound,
      tls: plan.tls,
      ...(plan.kind === "sni" ? { sni_routed: true } : {}),
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
    for (const [slot, plan] of await planListeners(config)) startLogged(slot, plan);
  } catch (err) {
    for (const slot of [...units.keys()]) await stopLogged(slot);
    stop.abort();
    await internal?.shutdown().catch(() => {});
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
        startLogged(slot, plan);
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
