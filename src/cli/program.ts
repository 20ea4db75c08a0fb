/**
 * Starts every configured section in one process and reports on them: the
 * forward proxy, the tunnel client, the tunnel server (a relay when both
 * tunnel roles are present). Stopping disposes them in reverse order.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { type Config, sameConfig } from "../config/mod.ts";
import {
  errorMessage,
  EVENTS,
  Histogram,
  type HistogramSample,
  type Logger,
} from "../observability/mod.ts";
import {
  compileEgressPolicy,
  type Dialer,
  egressDialer,
  type EgressHostInfo,
  type EgressPolicy,
  type ForwardProxy,
  type OwnListener,
  relay,
  serveProxyConnection,
  startForwardProxy,
} from "../proxy/mod.ts";
import { parseIp } from "../reverse/ip_rules.ts";
import type { EgressConfig, TokenPolicy } from "../config/types.ts";
import {
  type CenterClient,
  type CenterServer,
  type ClientSession,
  type ProxyStreamHandler,
  startCenterClient,
  startCenterServer,
} from "../center/mod.ts";
import type { VirtualStream } from "../mux/mod.ts";
import { ERROR_CODES } from "../tunnel/mod.ts";
import { formatHostPort, type HostPort, parseHostPort } from "../transport/mod.ts";
import type { StatusSnapshot } from "../admin/mod.ts";
import { startStreamSection, type StreamReloadReport, type StreamSection } from "../stream/mod.ts";
import { type HttpSection, type HttpUpdateReport, startHttpSection } from "../reverse/mod.ts";
import type { UpstreamGroup } from "../upstream/mod.ts";

/** A relayed stream idle both ways this long is closed. */
const RELAY_IDLE_TIMEOUT_MS = 3_600_000;
/**
 * How often the tunnel server's sessions are looked at for a new heartbeat
 * round trip (at most one observation per session per look).
 */
const RTT_SAMPLE_MS = 1000;
const RTT_METRIC = "wmproxy_tunnel_heartbeat_rtt_seconds";
const RTT_HELP = "Tunnel server: heartbeat round trips of client sessions, sampled each second.";
/** How long this host's interface addresses are reused by the egress checks. */
const LOCAL_IPS_TTL_MS = 5_000;
const SERVER_UDP_REFUSED = "UDP ASSOCIATE is not served on tunnel streams (egress policy)";

/** Options for {@link startProgram}. */
export interface ProgramOptions {
  /**
   * Listeners started outside the program (the control API), so that the
   * tunnel server's egress protection covers them too.
   */
  extraListeners?: () => readonly HostPort[];
  /** How many internal errors the last-resort handler has counted (for status and metrics). */
  internalErrors?: () => number;
}

function ownListener(addr: HostPort): OwnListener | undefined {
  if (addr.hostname === "0.0.0.0" || addr.hostname === "::") return { ip: "any", port: addr.port };
  const ip = parseIp(addr.hostname);
  return ip === undefined ? undefined : { ip, port: addr.port };
}

/** This host's interface addresses, looked up at most every {@link LOCAL_IPS_TTL_MS}. */
function localIpsCache(): () => ReadonlySet<bigint> {
  let ips: ReadonlySet<bigint> = new Set();
  let at = -Infinity;
  return () => {
    if (performance.now() - at < LOCAL_IPS_TTL_MS) return ips;
    at = performance.now();
    try {
      ips = new Set(
        Deno.networkInterfaces().map((i) => parseIp(i.address)).filter((x) => x !== undefined),
      );
    } catch {
      ips = new Set(); // no --allow-sys: listeners bound to "any" still match loopback
    }
    return ips;
  };
}

/** The running sections. */
export interface Program extends AsyncDisposable {
  /** A snapshot for the control API. */
  status(): StatusSnapshot;
  /**
   * Applies a new (valid) config: unchanged sections keep their listeners and
   * connections, small changes apply in place, and only a section whose
   * listener or TLS changed restarts. A failed start leaves that section off.
   */
  reload(next: Config): Promise<ReloadReport>;
}

/** On a relay node: a client's proxy stream becomes a stream to our own parent. */
async function relayToParent(
  stream: VirtualStream,
  from: ClientSession,
  parent: CenterClient,
  log: Logger,
): Promise<void> {
  let up: VirtualStream;
  try {
    up = await parent.openStream({
      type: "open",
      kind: "proxy",
      visitor: { ...stream.remoteAddr },
    });
  } catch (err) {
    log.warn(EVENTS.stream_refused, {
      component: "relay",
      session: from.id,
      error: errorMessage(err),
    });
    stream.reset(ERROR_CODES.CONNECT_FAILED);
    return;
  }
  const r = await relay(stream, up, { idleTimeoutMs: RELAY_IDLE_TIMEOUT_MS });
  log.info(EVENTS.connection_closed, {
    component: "relay",
    session: from.id,
    stream: stream.id,
    parent_stream: up.id,
    bytes_out: r.bytesUp,
    bytes_in: r.bytesDown,
    ...(r.error ? { error: r.error.message } : {}),
  });
}

/** What a reload did, section by section. */
export interface ReloadReport {
  /** Unchanged: listeners and connections untouched. */
  kept: string[];
  /**
   * Changed and applied in place: listeners and connections kept (`stream`:
   * those of its unchanged servers; see {@link ReloadReport.stream}).
   */
  updated: string[];
  /** Changed where a restart is needed (listen address, TLS, …): only that section restarted. */
  restarted: string[];
  started: string[];
  stopped: string[];
  /**
   * Sections that could not start with the new config (left off; fix and
   * reload again). A stream server that could not start is reported as
   * section `stream` (the rest of the section runs on).
   */
  failed: { section: string; error: string }[];
  /** Server by server, when the stream section was updated in place. */
  stream?: StreamReloadReport;
  /** Listener by listener, when the http section was updated in place. */
  http?: HttpUpdateReport;
}

/** Server keys a running tunnel server takes in place; any other change restarts it. */
const SERVER_IN_PLACE = [
  "tokens",
  "proxy",
  "egress",
  "max_clients",
  "max_handshakes",
  "max_handshakes_per_ip",
  "shutdown_timeout_ms",
] as const;

function without<T extends object>(value: T | undefined, keys: readonly string[]): unknown {
  if (value === undefined) return undefined;
  return Object.fromEntries(Object.entries(value).filter(([k]) => !keys.includes(k)));
}

/** Starts every section of `config`; rejects (after stopping what started) on the first failure. */
export async function startProgram(
  config: Config,
  log: Logger,
  options: ProgramOptions = {},
): Promise<Program> {
  const startedAt = new Date();
  let current = config;
  let proxy: ForwardProxy | undefined;
  let client: CenterClient | undefined;
  let server: CenterServer | undefined;
  let stream: StreamSection | undefined;
  let http: HttpSection | undefined;
  /** The server's proxy settings for tunnelled streams (a reload may change them). */
  let serverProxy = config.server?.proxy;
  /** The server's egress rules (a reload may change them). */
  let serverEgress = config.server?.egress;
  let streams = 0;
  const localIps = localIpsCache();
  /** Every listener of this process, for the egress protection. */
  const hostInfo = (): EgressHostInfo => {
    const addrs: HostPort[] = [...(options.extraListeners?.() ?? [])];
    if (proxy) addrs.push(proxy.addr);
    if (client?.localAddr) addrs.push(client.localAddr);
    if (server) addrs.push(server.addr, ...server.mappings.listenerAddrs());
    for (const l of [...(stream?.listeners ?? []), ...(http?.listeners ?? [])]) {
      try {
        addrs.push(parseHostPort(l.addr));
      } catch {
        // not host:port (cannot be dialled either)
      }
    }
    const own = addrs.map(ownListener).filter((x) => x !== undefined);
    return { own, localIps: own.some((l) => l.ip === "any") ? localIps() : new Set() };
  };
  const policies = new WeakMap<TokenPolicy, { base: EgressConfig; policy: EgressPolicy }>();
  const policyFor = (token: TokenPolicy, base: EgressConfig): EgressPolicy => {
    const cached = policies.get(token);
    if (cached?.base === base) return cached.policy;
    const policy = compileEgressPolicy(base, { protect: true, token: token.egress });
    policies.set(token, { base, policy });
    return policy;
  };
  const serverDial = (from: ClientSession, id: string, peer: string): Dialer =>
    egressDialer({
      policy: policyFor(from.token, serverEgress!),
      hostInfo,
      onDenied: (d) =>
        log.warn(EVENTS.egress_denied, {
          component: "tunnel",
          session: from.id,
          conn: id,
          token: from.token.name,
          client: from.name,
          peer,
          ...d,
        }),
    });
  // Relayed streams go to whichever client runs now (a reload may replace it).
  const onProxyStream: ProxyStreamHandler = (stream, from) => {
    if (client !== undefined) return relayToParent(stream, from, client, log);
    const id = `${from.id}/${++streams}`;
    let peer = from.peer;
    try {
      peer = formatHostPort(stream.remoteAddr);
    } catch {
      // no visitor address: the session's peer stands in
    }
    return serveProxyConnection(stream, {
      config: serverProxy!,
      log: log.child({ component: "tunnel", session: from.id }),
      id,
      dial: serverDial(from, id, peer),
      udpRefused: SERVER_UDP_REFUSED,
    });
  };

  const starters = {
    http: async (c: Config) => http = c.http && await startHttpSection(c.http, { log }),
    stream: async (c: Config) => stream = c.stream && await startStreamSection(c.stream, { log }),
    proxy: async (c: Config) =>
      proxy = c.proxy &&
        await startForwardProxy(c.proxy, { log: log.child({ component: "proxy" }) }),
    client: async (c: Config) => client = c.client && await startCenterClient(c.client, { log }),
    server: async (c: Config) => {
      serverProxy = c.server?.proxy;
      serverEgress = c.server?.egress;
      server = c.server && await startCenterServer(c.server, { log, onProxyStream });
    },
  } as const;
  type Section = keyof typeof starters;
  const ORDER: readonly Section[] = ["http", "stream", "proxy", "client", "server"];
  const running = (name: Section): AsyncDisposable | undefined =>
    ({ http, stream, proxy, client, server })[name];
  const stop = async (name: Section) => {
    await running(name)?.[Symbol.asyncDispose]();
    if (name === "http") http = undefined;
    else if (name === "stream") stream = undefined;
    else if (name === "proxy") proxy = undefined;
    else if (name === "client") client = undefined;
    else server = undefined;
  };
  // Heartbeat round trips are only kept as "the last one" by the sessions:
  // look at them regularly and observe each new value.
  const tunnelRtt = new Histogram();
  const lastRtt = new WeakMap<object, number>();
  const rttTimer = setInterval(() => {
    if (server === undefined) return;
    for (const c of server.registry.list()) {
      const rtt = c.session.stats().rttMs;
      if (rtt === null || lastRtt.get(c) === rtt) continue;
      lastRtt.set(c, rtt);
      tunnelRtt.observe(rtt / 1000);
    }
  }, RTT_SAMPLE_MS);
  Deno.unrefTimer(rttTimer);

  const stopAll = async () => {
    clearInterval(rttTimer);
    for (const name of [...ORDER].reverse()) await stop(name);
  };

  try {
    for (const name of ORDER) await starters[name](config);
  } catch (err) {
    await stopAll();
    throw err;
  }

  async function reload(next: Config): Promise<ReloadReport> {
    const report: ReloadReport = {
      kept: [],
      updated: [],
      restarted: [],
      started: [],
      stopped: [],
      failed: [],
    };
    const prev = current;
    current = next;
    // Stop first in reverse order (the server relays through the client), then start in order.
    const toRestart: Section[] = [];
    for (const name of [...ORDER].reverse()) {
      const a = prev[name];
      const b = next[name];
      if (b !== undefined && running(name) === undefined) {
        // New, or configured before but not running (it failed to start): start it.
        toRestart.push(name);
        report.started.push(name);
        continue;
      }
      if (name === "stream" && stream && next.stream) {
        // Even when unchanged: servers that failed to start last time are tried again.
        const r = await stream.update(next.stream);
        const changed = r.updated.length + r.restarted.length + r.started.length +
          r.stopped.length + r.failed.length;
        if (changed === 0) {
          report.kept.push(name);
        } else {
          report.stream = r;
          report.updated.push(name);
          for (const f of r.failed) report.failed.push({ section: name, error: f.error });
        }
        continue;
      }
      if (name === "http" && http && next.http && !sameConfig(a, b)) {
        // Routes, upstreams and rules in place; only changed listeners restart.
        let r: HttpUpdateReport;
        try {
          r = await http.update(next.http);
        } catch (err) {
          // A certificate could not be read: the running section stays as it was.
          report.failed.push({ section: name, error: errorMessage(err) });
          continue;
        }
        report.http = r;
        report.updated.push(name);
        for (const f of r.failed) {
          report.failed.push({ section: name, error: `${f.addr}: ${f.error}` });
        }
        continue;
      }
      if (sameConfig(a, b)) {
        if (a !== undefined) report.kept.push(name);
        continue;
      }
      if (b === undefined) {
        await stop(name);
        report.stopped.push(name);
        continue;
      }
      if (name === "proxy" && prev.proxy!.bind === next.proxy!.bind && proxy) {
        proxy.updateConfig(next.proxy!);
        report.updated.push(name);
        continue;
      }
      if (
        name === "client" && client &&
        sameConfig(without(prev.client, ["mappings"]), without(next.client, ["mappings"]))
      ) {
        await client.updateMappings(next.client!.mappings);
        report.updated.push(name);
        continue;
      }
      if (
        name === "server" && server &&
        sameConfig(without(prev.server, SERVER_IN_PLACE), without(next.server, SERVER_IN_PLACE))
      ) {
        serverProxy = next.server!.proxy;
        serverEgress = next.server!.egress;
        server.update(next.server!);
        report.updated.push(name);
        continue;
      }
      await stop(name);
      toRestart.push(name);
      report.restarted.push(name);
    }
    for (const name of ORDER) {
      if (!toRestart.includes(name)) continue;
      try {
        await starters[name](next);
      } catch (err) {
        report.failed.push({ section: name, error: errorMessage(err) });
      }
    }
    if (report.failed.length > 0) log.error(EVENTS.reload_applied, { ...report });
    else log.info(EVENTS.reload_applied, { ...report });
    return report;
  }

  function status(): StatusSnapshot {
    const listeners: StatusSnapshot["listeners"] = [];
    if (proxy) listeners.push({ component: "proxy", addr: formatHostPort(proxy.addr) });
    if (client?.localAddr) {
      listeners.push({ component: "client", addr: formatHostPort(client.localAddr) });
    }
    if (server) {
      listeners.push({ component: "tunnel", addr: formatHostPort(server.addr) });
      const m = server.mappings;
      if (m.httpAddr) listeners.push({ component: "http", addr: formatHostPort(m.httpAddr) });
      if (m.httpsAddr) listeners.push({ component: "https", addr: formatHostPort(m.httpsAddr) });
    }
    for (const l of stream?.listeners ?? []) {
      listeners.push({ component: `stream/${l.protocol}`, addr: l.addr });
    }
    for (const l of http?.listeners ?? []) {
      listeners.push({ component: l.tls ? "http/tls" : "http", addr: l.addr });
    }
    const groups: UpstreamGroup[] = [
      ...(stream?.upstreams ?? []),
      ...(http?.upstreams.values() ?? []),
    ];
    const p = proxy?.stats;
    const histograms: HistogramSample[] = [
      ...(proxy?.latency.samples() ?? []),
      ...(server
        ? [{ metric: RTT_METRIC, help: RTT_HELP, labels: {}, hist: tunnelRtt.snapshot() }]
        : []),
      ...(stream?.histograms() ?? []),
      ...(http?.histograms() ?? []),
    ];
    return {
      version: VERSION,
      pid: Deno.pid,
      started_at: startedAt.toISOString(),
      uptime_s: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
      internal_errors: options.internalErrors?.() ?? 0,
      listeners,
      proxy: p
        ? {
          connections_open: p.connectionsOpen,
          connections_total: p.connectionsTotal,
          connections_rejected: p.connectionsRejected,
          bytes_in: p.bytesIn,
          bytes_out: p.bytesOut,
        }
        : null,
      tunnel_server: server
        ? {
          addr: formatHostPort(server.addr),
          sessions: server.registry.list().map((c) => {
            const st = c.session.stats();
            return {
              id: c.id,
              client: c.name,
              token: c.token.name,
              peer: c.peer,
              since: c.since.toISOString(),
              rtt_ms: st.rttMs,
              streams: st.streams,
              streams_total: st.streamsOpened + st.streamsAccepted,
              bytes_in: st.bytesIn,
              bytes_out: st.bytesOut,
            };
          }),
          mappings: server.mappings.entries(),
        }
        : null,
      tunnel_client: current.client && client
        ? { server: current.client.server, connected: client.connected }
        : null,
      upstreams: groups.flatMap((g) =>
        g.status().map((u) => ({
          group: g.name,
          addr: u.addr,
          backup: u.backup,
          healthy: u.healthy,
          active: u.active,
          fails: u.fails,
        }))
      ),
      histograms,
    };
  }

  return {
    status,
    reload,
    [Symbol.asyncDispose]: stopAll,
  };
}
