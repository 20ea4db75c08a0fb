/**
 * What a proxy connection handler needs: {@link ProxyContext} (given by the
 * caller) and the per-connection state the protocol handlers share.
 *
 * @module
 */
import type { ProxyHandlerConfig } from "../config/types.ts";
import type { Logger } from "../observability/log.ts";
import type { BufferedReader } from "./_buffered_reader.ts";
import type { ByteCounters, CountedConn } from "./_counted_conn.ts";
import type { Deadline } from "./_deadline.ts";
import type { Dialer } from "./dial.ts";
import type { ProxyLatency } from "./proxy_latency.ts";

/** Everything {@link serveProxyConnection} needs besides the connection. */
export interface ProxyContext {
  /** How to serve: protocols, users, limits. */
  config: ProxyHandlerConfig;
  /** Where `connection_closed`, `auth_failed`, … go. */
  log: Logger;
  /** Connection id for logs (unique per listener). */
  id: string;
  /** Opens target connections. @default dialTcpTarget */
  dial?: Dialer;
  /**
   * Why SOCKS5 UDP ASSOCIATE is refused (reply 0x02, `egress_denied`): its
   * datagrams would bypass the egress policy that `dial` enforces.
   * @default allowed when `udp.enabled`
   */
  udpRefused?: string | undefined;
  /** Aborting closes the connection and everything it opened. */
  signal?: AbortSignal;
  /** Shared byte counters (the listener's stats) to add this connection's bytes to. */
  counters?: ByteCounters;
  /** Where request and dial latencies are observed. @default not observed */
  latency?: ProxyLatency | undefined;
}

/** The protocol a connection turned out to speak. */
export type DetectedProtocol = "http" | "https" | "socks5";

/** Per-connection state shared by the protocol handlers (internal). */
export interface ConnState {
  readonly ctx: ProxyContext;
  readonly client: CountedConn;
  readonly reader: BufferedReader;
  readonly dial: Dialer;
  /** The client's address, `host:port`. */
  readonly peer: string;
  /** Accept to complete request head / SOCKS5 request; cancel once reached. */
  readonly handshake: Deadline;
  protocol: DetectedProtocol | undefined;
  /** The last target, `host:port`. */
  target: string | undefined;
  /** Why the connection ended, if not cleanly. */
  error: string | undefined;
  /** HTTP requests served on this connection. */
  requests: number;
}
