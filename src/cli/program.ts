/**
 * Starts every configured section in one process and reports on them: the
 * forward proxy, the tunnel client, the tunnel server (a relay when both
 * tunnel roles are present). Stopping disposes them in reverse order.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import type { Config } from "../config/mod.ts";
import { errorMessage, EVENTS, type Logger } from "../observability/mod.ts";
import { type ForwardProxy, relay, serveProxyConnection, startForwardProxy } from "../proxy/mod.ts";
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
import { formatHostPort } from "../transport/mod.ts";
import type { StatusSnapshot } from "../admin/mod.ts";
import { startStreamSection, type StreamSection } from "../stream/mod.ts";
import { type HttpSection, startHttpSection } from "../reverse/mod.ts";
import type { UpstreamGroup } from "../upstream/mod.ts";

/** A relayed stream idle both ways this long is closed. */
const RELAY_IDLE_TIMEOUT_MS = 3_600_000;

/** The running sections. */
export interface Program extends AsyncDisposable {
  /** A snapshot for the control API. */
  status(): StatusSnapshot;
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

/** Starts every section of `config`; rejects (after stopping what started) on the first failure. */
export async function startProgram(config: Config, log: Logger): Promise<Program> {
  const stack = new AsyncDisposableStack();
  const startedAt = new Date();
  let proxy: ForwardProxy | undefined;
  let client: CenterClient | undefined;
  let server: CenterServer | undefined;
  let stream: StreamSection | undefined;
  let http: HttpSection | undefined;
  try {
    if (config.http !== undefined) http = stack.use(await startHttpSection(config.http, { log }));
    if (config.stream !== undefined) {
      stream = stack.use(await startStreamSection(config.stream, { log }));
    }
    if (config.proxy !== undefined) {
      proxy = stack.use(
        await startForwardProxy(config.proxy, { log: log.child({ component: "proxy" }) }),
      );
    }
    if (config.client !== undefined) {
      client = stack.use(await startCenterClient(config.client, { log }));
    }
    if (config.server !== undefined) {
      const section = config.server;
      const parent = client;
      let streams = 0;
      const onProxyStream: ProxyStreamHandler = parent
        ? (stream, from) => relayToParent(stream, from, parent, log)
        : (stream, from) =>
          serveProxyConnection(stream, {
            config: section.proxy,
            log: log.child({ component: "tunnel", session: from.id }),
            id: `${from.id}/${++streams}`,
          });
      server = stack.use(await startCenterServer(section, { log, onProxyStream }));
    }
  } catch (err) {
    await stack.disposeAsync();
    throw err;
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
    return {
      version: VERSION,
      pid: Deno.pid,
      started_at: startedAt.toISOString(),
      uptime_s: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
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
      tunnel_client: config.client && client
        ? { server: config.client.server, connected: client.connected }
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
    };
  }

  return {
    status,
    [Symbol.asyncDispose]: () => stack.disposeAsync(),
  };
}
