/**
 * `protocol: ws2tcp`: accepts WebSocket connections (`Deno.serve` +
 * `Deno.upgradeWebSocket`) and relays their messages to a TCP upstream. The
 * upstream is connected *before* the upgrade is accepted, so a client never
 * ends up connected to nothing: it gets a 502 instead.
 *
 * @module
 */
import type { WsToTcpStreamServerConfig } from "../config/stream_section.ts";
import { encodeProxyHeader } from "../mapping/proxy_protocol.ts";
import { EVENTS } from "../observability/events.ts";
import type { Histogram } from "../observability/histogram.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { Dialer } from "../proxy/dial.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort, parseHostPort, writeAll } from "../transport/conn.ts";
import type { UpstreamGroup } from "../upstream/upstream_group.ts";
import { connectUpstream } from "./_connect_upstream.ts";
import { bridgeWebSocket } from "./websocket_bridge.ts";

/** Options for {@link WsToTcpServer.listen}. */
export interface WsToTcpServerOptions {
  /** Logger with `component: "stream"` already set. */
  log: Logger;
  /** @default dialTcpTarget */
  dial?: Dialer | undefined;
  /** Observes the seconds to connect to an upstream server. */
  connectHistogram?: Histogram | undefined;
}

let nextConnId = 1;

/** See the module doc. */
export class WsToTcpServer implements AsyncDisposable {
  readonly protocol = "ws2tcp";
  /** The bound address. */
  readonly addr: HostPort;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #stop: AbortController;
  readonly #bridges = new Set<Promise<void>>();
  readonly #dial: Dialer | undefined;
  readonly #histogram: Histogram | undefined;
  #config: WsToTcpStreamServerConfig;
  #group: UpstreamGroup;
  #log: Logger;
  #pending = 0;

  private constructor(
    config: WsToTcpStreamServerConfig,
    group: UpstreamGroup,
    options: WsToTcpServerOptions,
  ) {
    const listen = parseHostPort(config.listen);
    this.#config = config;
    this.#group = group;
    this.#dial = options.dial;
    this.#histogram = options.connectHistogram;
    this.#stop = new AbortController();
    this.#log = options.log;
    this.#server = Deno.serve({
      hostname: listen.hostname,
      port: listen.port,
      signal: this.#stop.signal,
      onListen: () => {},
      onError: (err) => {
        this.#log.warn(EVENTS.protocol_error, { error: errorMessage(err) });
        return new Response("Internal Server Error", { status: 500 });
      },
    }, (req, info) => this.#handle(req, info.remoteAddr));
    this.addr = { hostname: this.#server.addr.hostname, port: this.#server.addr.port };
    this.#log = options.log.child({ listen: formatHostPort(this.addr) });
  }

  /** Binds `config.listen` and starts serving. */
  static listen(
    config: WsToTcpStreamServerConfig,
    group: UpstreamGroup,
    options: WsToTcpServerOptions,
  ): WsToTcpServer {
    return new WsToTcpServer(config, group, options);
  }

  /**
   * Applies a new config and group to connections accepted from now on (the
   * open ones keep theirs). `config.listen` is not looked at: the listener stays.
   */
  update(config: WsToTcpStreamServerConfig, group: UpstreamGroup): void {
    this.#config = config;
    this.#group = group;
  }

  /** WebSocket connections being served. */
  get active(): number {
    return this.#bridges.size;
  }

  async #handle(req: Request, remote: Deno.NetAddr): Promise<Response> {
    const log = this.#log;
    const config = this.#config;
    const group = this.#group;
    const url = new URL(req.url);
    if (config.path !== undefined && url.pathname !== config.path) {
      return new Response("Not Found", { status: 404 });
    }
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Expected a WebSocket upgrade", {
        status: 426,
        headers: { upgrade: "websocket" },
      });
    }
    const peer = formatHostPort(remote);
    if (this.#bridges.size + this.#pending >= config.max_connections) {
      log.warn(EVENTS.connection_rejected, {
        peer,
        reason: `max_connections ${config.max_connections} reached`,
      });
      return new Response("Service Unavailable", { status: 503 });
    }
    const started = Date.now();
    const conn = nextConnId++;
    const signal = this.#stop.signal;
    this.#pending++;
    let upstream;
    try {
      upstream = await connectUpstream(group, remote.hostname, {
        connectTimeoutMs: config.connect_timeout_ms,
        signal,
        log,
        dial: this.#dial,
        histogram: this.#histogram,
      });
      const header = encodeProxyHeader(config.proxy_protocol, remote, this.addr);
      if (header.length > 0) await writeAll(upstream.conn, header);
    } catch (err) {
      this.#pending--;
      if (upstream !== undefined) {
        upstream.conn.close();
        group.release(upstream.peer);
      }
      log.warn(EVENTS.connection_closed, {
        conn,
        peer,
        bytes_in: 0,
        bytes_out: 0,
        ms: Date.now() - started,
        error: errorMessage(err),
      });
      return new Response("Bad Gateway", { status: 502 });
    }
    this.#pending--;
    let upgrade: { socket: WebSocket; response: Response };
    try {
      upgrade = Deno.upgradeWebSocket(req);
    } catch (err) {
      upstream.conn.close();
      group.release(upstream.peer);
      return new Response(`Cannot upgrade to WebSocket: ${errorMessage(err)}`, { status: 400 });
    }
    const { peer: target, conn: tcp } = upstream;
    const bridge: Promise<void> = bridgeWebSocket(upgrade.socket, tcp, {
      idleTimeoutMs: config.idle_timeout_ms,
      signal,
    }).then((result) => {
      group.release(target);
      log.info(EVENTS.connection_closed, {
        conn,
        peer,
        target: target.id,
        bytes_in: result.bytesFromSocket,
        bytes_out: result.bytesToSocket,
        ms: Date.now() - started,
        ...(result.idleTimeout ? { idle_timeout: true } : {}),
        ...(result.error ? { error: errorMessage(result.error) } : {}),
      });
    }).finally(() => this.#bridges.delete(bridge));
    this.#bridges.add(bridge);
    return upgrade.response;
  }

  /** Stops accepting, closes every WebSocket and waits for them. */
  async close(): Promise<void> {
    this.#stop.abort();
    while (this.#bridges.size > 0) await Promise.all([...this.#bridges]);
    await this.#server.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
