/**
 * `protocol: tcp`: accepts TCP connections and relays each to a server of an
 * upstream group, trying the next server when a connect fails, with an
 * optional PROXY protocol header, connect and idle timeouts, and a limit on
 * concurrent connections.
 *
 * @module
 */
import type { TcpStreamServerConfig } from "../config/stream_section.ts";
import { encodeProxyHeader } from "../mapping/proxy_protocol.ts";
import { EVENTS } from "../observability/events.ts";
import type { Histogram } from "../observability/histogram.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { Dialer } from "../proxy/dial.ts";
import { relay } from "../proxy/relay.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort, parseHostPort, writeAll } from "../transport/conn.ts";
import { listenTcp, type TcpListener } from "../transport/tcp.ts";
import type { UpstreamGroup } from "../upstream/upstream_group.ts";
import { connectUpstream } from "./_connect_upstream.ts";
import { TcpFront } from "./_tcp_front.ts";

/** Options for {@link TcpStreamServer.listen}. */
export interface TcpStreamServerOptions {
  /** Logger with `component: "stream"` already set. */
  log: Logger;
  /** @default dialTcpTarget */
  dial?: Dialer | undefined;
  /** Observes the seconds to connect to an upstream server. */
  connectHistogram?: Histogram | undefined;
}

let nextConnId = 1;

/** What a connection is served with; replaced as a whole by {@link TcpStreamServer.update}. */
interface TcpStreamRoute {
  readonly config: TcpStreamServerConfig;
  readonly group: UpstreamGroup;
}

/** See the module doc. */
export class TcpStreamServer implements AsyncDisposable {
  readonly protocol = "tcp";
  readonly #front: TcpFront;
  #route: TcpStreamRoute;

  private constructor(
    listener: TcpListener,
    route: TcpStreamRoute,
    options: TcpStreamServerOptions,
  ) {
    this.#route = route;
    const log = options.log.child({ listen: formatHostPort(listener.addr) });
    const serveOptions = { log, dial: options.dial, histogram: options.connectHistogram };
    this.#front = new TcpFront(listener, {
      maxConnections: route.config.max_connections,
      log,
      handle: (conn, signal) => serveTcpStream(conn, this.#route, signal, serveOptions),
    });
  }

  /** Binds `config.listen` and starts serving. */
  static listen(
    config: TcpStreamServerConfig,
    group: UpstreamGroup,
    options: TcpStreamServerOptions,
  ): TcpStreamServer {
    const listener = listenTcp(parseHostPort(config.listen));
    return new TcpStreamServer(listener, { config, group }, options);
  }

  /**
   * Applies a new config and group to connections accepted from now on (the
   * open ones keep theirs). `config.listen` is not looked at: the listener stays.
   */
  update(config: TcpStreamServerConfig, group: UpstreamGroup): void {
    this.#route = { config, group };
    this.#front.maxConnections = config.max_connections;
  }

  /** The bound address. */
  get addr(): HostPort {
    return this.#front.addr;
  }

  /** Connections being served. */
  get active(): number {
    return this.#front.active;
  }

  /** Stops accepting and closes every connection. */
  close(): Promise<void> {
    return this.#front.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function serveTcpStream(
  client: Deno.TcpConn,
  route: TcpStreamRoute,
  signal: AbortSignal,
  options: { log: Logger; dial: Dialer | undefined; histogram: Histogram | undefined },
): Promise<void> {
  const { config, group } = route;
  const started = Date.now();
  const conn = nextConnId++;
  const peer = formatHostPort(client.remoteAddr);
  const { log } = options;
  let upstream;
  try {
    upstream = await connectUpstream(group, client.remoteAddr.hostname, {
      connectTimeoutMs: config.connect_timeout_ms,
      signal,
      log,
      dial: options.dial,
      histogram: options.histogram,
    });
  } catch (err) {
    client.close();
    log.warn(EVENTS.connection_closed, {
      conn,
      peer,
      bytes_in: 0,
      bytes_out: 0,
      ms: Date.now() - started,
      error: errorMessage(err),
    });
    return;
  }
  const target = upstream.peer.id;
  try {
    const header = encodeProxyHeader(config.proxy_protocol, client.remoteAddr, client.localAddr);
    if (header.length > 0) await writeAll(upstream.conn, header);
  } catch (err) {
    client.close();
    upstream.conn.close();
    group.release(upstream.peer);
    log.warn(EVENTS.connection_closed, {
      conn,
      peer,
      target,
      bytes_in: 0,
      bytes_out: 0,
      ms: Date.now() - started,
      error: errorMessage(err),
    });
    return;
  }
  const result = await relay(client, upstream.conn, {
    idleTimeoutMs: config.idle_timeout_ms,
    signal,
  });
  group.release(upstream.peer);
  log.info(EVENTS.connection_closed, {
    conn,
    peer,
    target,
    bytes_in: result.bytesUp,
    bytes_out: result.bytesDown,
    ms: Date.now() - started,
    ...(result.idleTimeout ? { idle_timeout: true } : {}),
    ...(result.error ? { error: errorMessage(result.error) } : {}),
  });
}
