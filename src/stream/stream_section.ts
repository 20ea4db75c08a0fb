/**
 * Runs a `stream` section: its upstream groups (with active health checks)
 * and every server (tcp, udp, ws2tcp, tcp2ws, tcp2wss).
 *
 * @module
 */
import type {
  StreamConfig,
  StreamDestination,
  StreamProtocol,
  StreamServerConfig,
} from "../config/stream_section.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { Dialer } from "../proxy/dial.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort } from "../transport/conn.ts";
import { UpstreamGroup } from "../upstream/upstream_group.ts";
import { TcpStreamServer } from "./tcp_stream_server.ts";
import { TcpToWsServer } from "./tcp_to_ws_server.ts";
import { UdpStreamServer } from "./udp_stream_server.ts";
import { WsToTcpServer } from "./ws_to_tcp_server.ts";

/** Options for {@link startStreamSection}. */
export interface StartStreamSectionOptions {
  log: Logger;
  /** Aborting closes everything. */
  signal?: AbortSignal | undefined;
  /** How TCP upstreams are dialled. @default dialTcpTarget */
  dial?: Dialer | undefined;
}

/** A bound stream server. */
export interface StreamListenerInfo {
  protocol: StreamProtocol;
  /** The real bound address, `host:port`. */
  addr: string;
}

/** A running `stream` section. */
export interface StreamSection extends AsyncDisposable {
  /** One per `stream.servers` entry, in config order. */
  readonly listeners: readonly StreamListenerInfo[];
  /** The named groups of `stream.upstreams`, in config order (for the admin API). */
  readonly upstreams: readonly UpstreamGroup[];
  /** Stops every listener, closes every connection and stops health checks. */
  close(): Promise<void>;
}

interface RunningServer {
  readonly addr: HostPort;
  close(): Promise<void>;
}

/** A group of one server for `target: host:port`; passive checks never mark it down. */
function targetGroup(target: string): UpstreamGroup {
  return new UpstreamGroup({
    name: `target ${target}`,
    strategy: "round_robin",
    servers: [{ addr: target, weight: 1, max_fails: 0, fail_timeout_ms: 10_000, backup: false }],
    health_check: undefined,
  });
}

/**
 * Starts every upstream group and server of `config`. Rejects with
 * `Cannot listen on …` (after closing whatever started) when a listener
 * cannot be bound.
 */
export async function startStreamSection(
  config: StreamConfig,
  options: StartStreamSectionOptions,
): Promise<StreamSection> {
  const log = options.log.child({ component: "stream" });
  const upstreams = config.upstreams.map((g) => new UpstreamGroup(g, { log }));
  const byName = new Map(upstreams.map((g) => [g.name, g]));
  const implicit: UpstreamGroup[] = [];
  const servers: RunningServer[] = [];
  const listeners: StreamListenerInfo[] = [];

  const groupFor = (s: StreamDestination, index: number): UpstreamGroup => {
    if (s.upstream !== undefined) {
      const g = byName.get(s.upstream);
      if (g === undefined) {
        throw new RangeError(
          `Cannot start stream.servers[${index}]: no upstream group named "${s.upstream}"`,
        );
      }
      return g;
    }
    const g = targetGroup(s.target ?? "");
    implicit.push(g);
    return g;
  };

  const startOne = async (s: StreamServerConfig, index: number): Promise<RunningServer> => {
    switch (s.protocol) {
      case "tcp":
        return TcpStreamServer.listen(s, groupFor(s, index), { log, dial: options.dial });
      case "udp":
        return await UdpStreamServer.listen(s, groupFor(s, index), { log });
      case "ws2tcp":
        return WsToTcpServer.listen(s, groupFor(s, index), { log, dial: options.dial });
      case "tcp2ws":
      case "tcp2wss": {
        const caCerts = s.ca_file === undefined ? undefined : [await Deno.readTextFile(s.ca_file)];
        return TcpToWsServer.listen(s, { log, caCerts });
      }
    }
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      options.signal?.removeEventListener("abort", onAbort);
      await Promise.all(servers.map(async (s) => {
        await s.close();
        log.info(EVENTS.listener_closed, { addr: formatHostPort(s.addr) });
      }));
      await Promise.all([...upstreams, ...implicit].map((g) => g.close()));
    })();
    return closing;
  };
  const onAbort = () => void close();

  try {
    for (const [index, s] of config.servers.entries()) {
      let server: RunningServer;
      try {
        server = await startOne(s, index);
      } catch (err) {
        throw new Error(
          `Cannot listen on "${s.listen}" (stream.servers[${index}], ${s.protocol}): ${
            errorMessage(err)
          }`,
          { cause: err },
        );
      }
      servers.push(server);
      const addr = formatHostPort(server.addr);
      listeners.push({ protocol: s.protocol, addr });
      log.info(EVENTS.listening, { addr, protocol: s.protocol });
    }
  } catch (err) {
    await close();
    throw err;
  }
  for (const g of upstreams) g.start();
  if (options.signal?.aborted) await close();
  else options.signal?.addEventListener("abort", onAbort, { once: true });

  return {
    listeners,
    upstreams,
    close,
    [Symbol.asyncDispose]: close,
  };
}
