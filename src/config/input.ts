/**
 * The shape of a configuration after validation and before defaults: every key
 * optional, every present value already checked and converted (durations in ms).
 *
 * @module
 */
import type { LogFormat, LogLevel } from "../observability/log.ts";
import type { ProxyProtocol, ProxyUser } from "./types.ts";

export interface ProxyInput {
  bind?: string | undefined;
  protocols?: ProxyProtocol[] | undefined;
  users?: ProxyUser[] | undefined;
  allow_open?: boolean | undefined;
  via?: boolean | undefined;
  x_forwarded_for?: boolean | undefined;
  udp?: {
    enabled?: boolean | undefined;
    bind_ip?: string | undefined;
    idle_timeout?: number | undefined;
  } | undefined;
  limits?: {
    max_header_bytes?: number | undefined;
    handshake_timeout?: number | undefined;
    connect_timeout?: number | undefined;
    idle_timeout?: number | undefined;
    max_connections?: number | undefined;
  } | undefined;
}

export interface LogInput {
  level?: LogLevel | undefined;
  format?: LogFormat | undefined;
}

export interface ConfigInput {
  proxy?: ProxyInput | undefined;
  log?: LogInput | undefined;
}
