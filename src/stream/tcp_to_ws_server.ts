/**
 * `protocol: tcp2ws | tcp2wss`: accepts TCP connections and relays each over
 * its own WebSocket client connection to `target` (the built-in `WebSocket`;
 * with `ca_file`, through an HTTP client that trusts that CA).
 *
 * @module
 */
import type { TcpToWsStreamServerConfig } from "../config/stream_section.ts";
import { EVENTS } from "../observability/events.ts";
import type { Histogram } from "../observability/histogram.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort, parseHostPort } from "../transport/conn.ts";
import { listenTcp, type TcpListener } from "../transport/tcp.ts";
import { TcpFront } from "./_tcp_front.ts";
import { bridgeWebSocket } from "./websocket_bridge.ts";

/** Options for {@link TcpToWsServer.listen}. */
export interface TcpToWsServerOptions {
  /** Logger with `component: "stream"` already set. */
  log: Logger;
  /** PEM CA certificates to trust for `wss://` besides the system roots. */
  caCerts?: readonly string[] | undefined;
  /** Observes the seconds to open the WebSocket. */
  connectHistogram?: Histogram | undefined;
}

let nextConnId = 1;

/**
 * Opens a WebSocket and waits until it is open; rejects (and closes it) on an
 * error, a close or after `timeoutMs`.
 */
export function openWebSocket(
  url: string,
  options: { timeoutMs: number; signal: AbortSignal; client?: Deno.HttpClient | undefined },
): Promise<WebSocket> {
  const ws = options.client === undefined
    ? new WebSocket(url)
    : new WebSocket(url, { client: options.client });
  ws.binaryType = "arraybuffer";
  return new Promise<WebSocket>((resolve, reject) => {
    let failure: Error | undefined;
    const cleanup = () => {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
      ws.removeEventListener("open", onOpen);
      ws.removeEventListener("error", onError);
      ws.removeEventListener("close", onClose);
    };
    const fail = (err: Error) => {
      failure ??= err;
      if (ws.readyState === WebSocket.CLOSED) {
        cleanup();
        reject(failure);
      } else {
        try {
          ws.close();
        } catch {
          // closing already
        }
      }
    };
    const onOpen = () => {
      cleanup();
      resolve(ws);
    };
    const onError = (ev: Event) => {
      failure ??= new Error(
        `Cannot connect to "${url}": ${(ev as ErrorEvent).message || "WebSocket error"}`,
      );
    };
    const onClose = () => {
      cleanup();
      reject(failure ?? new Error(`Cannot connect to "${url}": closed during the handshake`));
    };
    const onAbort = () => fail(new Error(`Cannot connect to "${url}": aborted`));
    const timer = setTimeout(
      () => fail(new Error(`Cannot connect to "${url}": timed out after ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    ws.addEventListener("open", onOpen);
    ws.addEventListener("error", onError);
    ws.addEventListener("close", onClose);
    options.signal.addEventListener("abort", onAbort, { once: true });
    if (options.signal.aborted) onAbort();
  });
}

/** See the module doc. */
export class TcpToWsServer implements AsyncDisposable {
  readonly protocol: "tcp2ws" | "tcp2wss";
  readonly #front: TcpFront;
  readonly #client: Deno.HttpClient | undefined;
  #config: TcpToWsStreamServerConfig;

  private constructor(
    config: TcpToWsStreamServerConfig,
    listener: TcpListener,
    client: Deno.HttpClient | undefined,
    options: TcpToWsServerOptions,
  ) {
    this.protocol = config.protocol;
    this.#config = config;
    this.#client = client;
    const log = options.log.child({ listen: formatHostPort(listener.addr) });
    const serveOptions = { log, client, histogram: options.connectHistogram };
    this.#front = new TcpFront(listener, {
      maxConnections: config.max_connections,
      log,
      handle: (conn, signal) => serveTcpToWs(conn, this.#config, signal, serveOptions),
    });
  }

  /** Binds `config.listen` and starts serving. */
  static listen(config: TcpToWsStreamServerConfig, options: TcpToWsServerOptions): TcpToWsServer {
    const client = options.caCerts !== undefined && options.caCerts.length > 0
      ? Deno.createHttpClient({ caCerts: [...options.caCerts] })
      : undefined;
    let listener;
    try {
      listener = listenTcp(parseHostPort(config.listen));
    } catch (err) {
      client?.close();
      throw err;
    }
    return new TcpToWsServer(config, listener, client, options);
  }

  /**
   * Applies a new config to connections accepted from now on (the open ones
   * keep theirs). `listen`, `protocol` and `ca_file` are not looked at: a
   * change to them needs a new server.
   */
  update(config: TcpToWsStreamServerConfig): void {
    this.#config = config;
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
  async close(): Promise<void> {
    await this.#front.close();
    this.#client?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function serveTcpToWs(
  tcp: Deno.TcpConn,
  config: TcpToWsStreamServerConfig,
  signal: AbortSignal,
  options: {
    log: Logger;
    client: Deno.HttpClient | undefined;
    histogram: Histogram | undefined;
  },
): Promise<void> {
  const started = Date.now();
  const conn = nextConnId++;
  const peer = formatHostPort(tcp.remoteAddr);
  const { log } = options;
  let ws: WebSocket;
  try {
    const opening = performance.now();
    ws = await openWebSocket(config.target, {
      timeoutMs: config.connect_timeout_ms,
      signal,
      client: options.client,
    });
    options.histogram?.observe((performance.now() - opening) / 1000);
  } catch (err) {
    tcp.close();
    log.warn(EVENTS.connection_closed, {
      conn,
      peer,
      target: config.target,
      bytes_in: 0,
      bytes_out: 0,
      ms: Date.now() - started,
      error: errorMessage(err),
    });
    return;
  }
  const result = await bridgeWebSocket(ws, tcp, { idleTimeoutMs: config.idle_timeout_ms, signal });
  log.info(EVENTS.connection_closed, {
    conn,
    peer,
    target: config.target,
    bytes_in: result.bytesToSocket,
    bytes_out: result.bytesFromSocket,
    ms: Date.now() - started,
    ...(result.idleTimeout ? { idle_timeout: true } : {}),
    ...(result.error ? { error: errorMessage(result.error) } : {}),
  });
}
