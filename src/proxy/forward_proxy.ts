/**
 * The forward proxy listener: binds `config.bind`, accepts connections up to
 * `limits.max_connections` and serves each with {@link serveProxyConnection}.
 *
 * @module
 */
import type { ProxyConfig } from "../config/types.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort, parseHostPort } from "../transport/conn.ts";
import type { ByteCounters } from "./_counted_conn.ts";
import { type Dialer, egressDialer } from "./dial.ts";
import { compileEgressPolicy, egressAllowsAll, type EgressPolicy } from "./egress_policy.ts";
import { ProxyLatency } from "./proxy_latency.ts";
import { serveProxyConnection } from "./serve_proxy_connection.ts";

/** Options for {@link startForwardProxy}. */
export interface ForwardProxyOptions {
  /** Where events go. */
  log: Logger;
  /** Aborting is the same as {@link ForwardProxy.close}. */
  signal?: AbortSignal;
  /** Opens target connections (tests inject failures). @default dialTcpTarget */
  dial?: Dialer;
}

/** Counters of a running forward proxy. */
export interface ForwardProxyStats {
  /** Client connections being served now. */
  connectionsOpen: number;
  /** Client connections accepted since start (including refused ones). */
  connectionsTotal: number;
  /** Connections closed at once because `max_connections` were open. */
  connectionsRejected: number;
  /** Bytes read from clients. */
  bytesIn: number;
  /** Bytes written to clients. */
  bytesOut: number;
}

/** A running forward proxy; see {@link startForwardProxy}. */
export class ForwardProxy implements AsyncDisposable {
  /** The real bound address (port 0 resolved). */
  readonly addr: HostPort;
  /** Request and dial latency histograms of this listener's connections. */
  readonly latency: ProxyLatency = new ProxyLatency();
  readonly #listener: Deno.TcpListener;
  #config: ProxyConfig;
  #egress: EgressPolicy;
  readonly #log: Logger;
  readonly #dial: Dialer | undefined;
  readonly #abort = new AbortController();
  readonly #tasks = new Set<Promise<void>>();
  readonly #counters: ByteCounters = { bytesIn: 0, bytesOut: 0 };
  #total = 0;
  #rejected = 0;
  #nextId = 1;
  #acceptLoop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  /** Internal; use {@link startForwardProxy}. */
  constructor(listener: Deno.TcpListener, config: ProxyConfig, options: ForwardProxyOptions) {
    this.#listener = listener;
    this.addr = { hostname: listener.addr.hostname, port: listener.addr.port };
    this.#config = config;
    this.#egress = compileEgressPolicy(config.egress, { protect: false });
    this.#log = options.log;
    this.#dial = options.dial;
  }

  /** The dialer of one connection: the egress policy around the base dialer, when it has rules. */
  #dialFor(id: string, peer: string): Dialer | undefined {
    const policy = this.#egress;
    if (egressAllowsAll(policy)) return this.#dial;
    return egressDialer({
      policy,
      hostInfo: () => ({ own: [], localIps: new Set() }),
      dial: this.#dial,
      onDenied: (d) =>
        this.#log.warn(EVENTS.egress_denied, { component: "proxy", conn: id, peer, ...d }),
    });
  }

  /**
   * Applies a new config in place (reload): new connections use it, open ones
   * finish under the old one. The bind address cannot change here.
   */
  updateConfig(next: ProxyConfig): void {
    if (next.bind !== this.#config.bind) {
      throw new RangeError(
        `Cannot update the proxy in place: bind changed from ${this.#config.bind} to ${next.bind}`,
      );
    }
    this.#config = next;
    this.#egress = compileEgressPolicy(next.egress, { protect: false });
  }

  /** A snapshot of the counters. */
  get stats(): ForwardProxyStats {
    return {
      connectionsOpen: this.#tasks.size,
      connectionsTotal: this.#total,
      connectionsRejected: this.#rejected,
      bytesIn: this.#counters.bytesIn,
      bytesOut: this.#counters.bytesOut,
    };
  }

  /** Internal: starts accepting. */
  start(): void {
    this.#acceptLoop = this.#accept();
  }

  async #accept(): Promise<void> {
    const addr = formatHostPort(this.addr);
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#abort.signal.aborted) break;
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) break;
        // EMFILE and friends: log, breathe, keep serving.
        this.#log.error(EVENTS.accept_error, {
          component: "proxy",
          addr,
          error: errorMessage(err),
        });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      this.#total++;
      try {
        conn.setNoDelay(true);
      } catch {
        // the connection is already gone; serving it will notice
      }
      if (this.#tasks.size >= this.#config.limits.max_connections) {
        this.#rejected++;
        this.#log.warn(EVENTS.connection_rejected, {
          component: "proxy",
          peer: formatHostPort(conn.remoteAddr),
          reason: `max_connections (${this.#config.limits.max_connections}) reached`,
        });
        try {
          conn.close();
        } catch {
          // already closed
        }
        continue;
      }
      const id = `p${this.#nextId++}`;
      const dial = this.#dialFor(id, formatHostPort(conn.remoteAddr));
      const task = serveProxyConnection(conn, {
        config: this.#config,
        log: this.#log,
        id,
        signal: this.#abort.signal,
        counters: this.#counters,
        latency: this.latency,
        ...(dial ? { dial } : {}),
        ...(egressAllowsAll(this.#egress) ? {} : { udpRefused: "the egress policy has rules" }),
      });
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
    this.#log.info(EVENTS.listener_closed, { component: "proxy", addr });
  }

  /** Stops accepting, closes every live connection and waits for them to end. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort();
      try {
        this.#listener.close();
      } catch {
        // already closed
      }
      await this.#acceptLoop;
      while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function describeListenError(err: unknown): string {
  if (err instanceof Deno.errors.AddrInUse) return "address already in use";
  if (err instanceof Deno.errors.AddrNotAvailable) return "address not available";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  return errorMessage(err).replace(/\s*\(os error \d+\)$/, "");
}

/**
 * Binds `config.bind` (port 0 allowed), logs `listening` with the real
 * address and starts serving HTTP, CONNECT and SOCKS5 on it.
 * Throws `Cannot listen on "ADDR": <reason>` when binding fails.
 *
 * @example
 * ```ts ignore
 * await using proxy = await startForwardProxy(config.proxy, { log });
 * console.log(proxy.addr.port);
 * ```
 */
export function startForwardProxy(
  config: ProxyConfig,
  options: ForwardProxyOptions,
): Promise<ForwardProxy> {
  let addr: HostPort;
  try {
    addr = parseHostPort(config.bind);
  } catch (err) {
    return Promise.reject(new Error(`Cannot listen on "${config.bind}": ${errorMessage(err)}`));
  }
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: addr.hostname, port: addr.port, transport: "tcp" });
  } catch (err) {
    return Promise.reject(
      new Error(`Cannot listen on "${config.bind}": ${describeListenError(err)}`, { cause: err }),
    );
  }
  const proxy = new ForwardProxy(listener, config, options);
  options.log.info(EVENTS.listening, { component: "proxy", addr: formatHostPort(proxy.addr) });
  proxy.start();
  if (options.signal) {
    const signal = options.signal;
    if (signal.aborted) proxy.close();
    else signal.addEventListener("abort", () => proxy.close(), { once: true });
  }
  return Promise.resolve(proxy);
}
