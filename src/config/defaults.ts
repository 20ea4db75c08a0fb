/**
 * Every default, and the one function that fills them in.
 *
 * @module
 */
import type { Config, ProxyConfig, ProxyProtocol } from "./types.ts";
import type { ConfigInput, ProxyInput } from "./input.ts";

export const DEFAULT_PROXY_BIND = "127.0.0.1:8090";
export const DEFAULT_PROXY_PROTOCOLS: readonly ProxyProtocol[] = ["http", "https", "socks5"];
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;
export const DEFAULT_UDP_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_LOG_LEVEL = "info";
export const DEFAULT_LOG_FORMAT = "text";

/** Fills the `proxy` section's defaults. */
export function completeProxy(input: ProxyInput): ProxyConfig {
  return {
    bind: input.bind ?? DEFAULT_PROXY_BIND,
    protocols: input.protocols ?? DEFAULT_PROXY_PROTOCOLS,
    users: input.users ?? [],
    allow_open: input.allow_open ?? false,
    via: input.via ?? false,
    x_forwarded_for: input.x_forwarded_for ?? false,
    udp: {
      enabled: input.udp?.enabled ?? true,
      bind_ip: input.udp?.bind_ip,
      idle_timeout_ms: input.udp?.idle_timeout ?? DEFAULT_UDP_IDLE_TIMEOUT_MS,
    },
    limits: {
      max_header_bytes: input.limits?.max_header_bytes ?? DEFAULT_MAX_HEADER_BYTES,
      handshake_timeout_ms: input.limits?.handshake_timeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      connect_timeout_ms: input.limits?.connect_timeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
      idle_timeout_ms: input.limits?.idle_timeout ?? DEFAULT_IDLE_TIMEOUT_MS,
      max_connections: input.limits?.max_connections ?? DEFAULT_MAX_CONNECTIONS,
    },
  };
}

/** Fills every default: the only place defaults are applied. */
export function completeConfig(input: ConfigInput): Config {
  return {
    proxy: input.proxy === undefined ? undefined : completeProxy(input.proxy),
    log: {
      level: input.log?.level ?? DEFAULT_LOG_LEVEL,
      format: input.log?.format ?? DEFAULT_LOG_FORMAT,
    },
  };
}
