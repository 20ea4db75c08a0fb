/**
 * The complete, validated, defaults-filled configuration. Every field is present
 * at run time; `undefined` appears only where "not set" has a meaning of its own.
 * Field names are the YAML keys (snake_case), so an error path is the field path.
 *
 * @module
 */
import type { Secret } from "./secret.ts";
import type { LogFormat, LogLevel } from "../observability/log.ts";

/** A protocol the forward proxy can serve on its port. */
export type ProxyProtocol = "http" | "https" | "socks5";

/** One proxy user (HTTP Basic and SOCKS5 RFC 1929). */
export interface ProxyUser {
  username: string;
  password: Secret;
}

/** Limits of the forward proxy; durations in milliseconds. */
export interface ProxyLimits {
  /** Largest HTTP request head or SOCKS5 handshake in bytes. */
  max_header_bytes: number;
  /** Time allowed from accept to a complete request head or SOCKS5 request. */
  handshake_timeout_ms: number;
  /** Time allowed to connect to a target. */
  connect_timeout_ms: number;
  /** A relayed connection with no traffic either way for this long is closed. */
  idle_timeout_ms: number;
  /** Concurrent client connections; more are accepted and closed at once. */
  max_connections: number;
}

/** SOCKS5 UDP ASSOCIATE settings. */
export interface ProxyUdpConfig {
  enabled: boolean;
  /** IP the UDP relay binds; `undefined` = the IP the TCP client connected to. */
  bind_ip: string | undefined;
  /** An association with no datagram either way for this long ends. */
  idle_timeout_ms: number;
}

/** The `proxy` section: forward proxy (HTTP, CONNECT, SOCKS5) on one port. */
export interface ProxyConfig {
  /** Listen address, `host:port`. */
  bind: string;
  /** Enabled protocols; `https` means CONNECT. */
  protocols: readonly ProxyProtocol[];
  /** Users; empty = no authentication. */
  users: readonly ProxyUser[];
  /** Allow an unauthenticated proxy on a non-loopback address. */
  allow_open: boolean;
  /** Add a `Via` header to forwarded HTTP requests and responses. */
  via: boolean;
  /** Add the client's address to `X-Forwarded-For` on forwarded HTTP requests. */
  x_forwarded_for: boolean;
  udp: ProxyUdpConfig;
  limits: ProxyLimits;
}

/** The `log` section. */
export interface LogConfig {
  level: LogLevel;
  format: LogFormat;
}

/** The whole configuration. A section that is `undefined` does not run. */
export interface Config {
  proxy: ProxyConfig | undefined;
  log: LogConfig;
}
