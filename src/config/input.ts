/**
 * The shape of a configuration after validation and before defaults: every key
 * optional, every present value already checked and converted (durations in ms).
 *
 * @module
 */
import type { LogFormat, LogLevel } from "../observability/log.ts";
import type {
  HeaderRuleConfig,
  HttpsCertificate,
  MappingType,
  PortRange,
  ProxyProtocol,
  ProxyUser,
} from "./types.ts";
import type { Secret } from "./secret.ts";
import type { StreamInput } from "./stream_section.ts";
import type { HttpSectionInput } from "./http_section.ts";

export interface EgressInput {
  allow?: string[] | undefined;
  deny?: string[] | undefined;
  default?: "allow" | "deny" | undefined;
}

export interface ProxyInput {
  bind?: string | undefined;
  egress?: EgressInput | undefined;
  protocols?: ProxyProtocol[] | undefined;
  users?: ProxyUser[] | undefined;
  allow_open?: boolean | undefined;
  via?: boolean | undefined;
  x_forwarded_for?: boolean | undefined;
  udp?: {
    enabled?: boolean | undefined;
    bind_ip?: string | undefined;
    idle_timeout?: number | undefined;
    replies?: "sent" | "any" | undefined;
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

export interface AdminInput {
  listen?: string | undefined;
  token?: Secret | undefined;
  hosts?: string[] | undefined;
}

export interface ConfigInput {
  proxy?: ProxyInput | undefined;
  server?: ServerInput | undefined;
  client?: ClientInput | undefined;
  admin?: AdminInput | undefined;
  stream?: StreamInput | undefined;
  http?: HttpSectionInput | undefined;
  log?: LogInput | undefined;
}

export interface SessionTimingInput {
  heartbeat_interval?: number | undefined;
  heartbeat_timeout?: number | undefined;
  handshake_timeout?: number | undefined;
}

export interface TokenInput {
  name: string;
  token: Secret;
  allow_proxy?: boolean | undefined;
  allow_ports?: PortRange[] | undefined;
  allow_domains?: string[] | undefined;
  egress?: EgressInput | undefined;
}

export interface ServerInput extends SessionTimingInput {
  listen?: string | undefined;
  tls?: {
    enabled?: boolean | undefined;
    cert?: string | undefined;
    key?: string | undefined;
    names?: string[] | undefined;
  } | undefined;
  state_dir?: string | undefined;
  tokens?: TokenInput[] | undefined;
  proxy?: ProxyInput | undefined;
  egress?: EgressInput | undefined;
  max_clients?: number | undefined;
  max_streams?: number | undefined;
  max_handshakes?: number | undefined;
  max_handshakes_per_ip?: number | undefined;
  max_mappings?: number | undefined;
  mapping_max_connections?: number | undefined;
  shutdown_timeout?: number | undefined;
  http_bind?: string | undefined;
  https_bind?: string | undefined;
  https_certificates?: HttpsCertificate[] | undefined;
  mapping_host?: string | undefined;
  port_range?: PortRange | undefined;
  udp_idle_timeout?: number | undefined;
}

export interface MappingInput {
  name: string;
  type: MappingType;
  local_addr: string;
  domains?: string[] | undefined;
  remote_port?: number | undefined;
  proxy_protocol?: "v1" | "v2" | undefined;
  request_headers?: HeaderRuleConfig[] | undefined;
  response_headers?: HeaderRuleConfig[] | undefined;
  host_rewrite?: string | undefined;
  x_forwarded?: boolean | undefined;
  basic_auth?: ProxyUser[] | undefined;
}

export interface ClientInput extends SessionTimingInput {
  server?: string | undefined;
  token?: Secret | undefined;
  name?: string | undefined;
  /** `null` in the file: no local proxy port. */
  bind?: string | null | undefined;
  tls?: {
    enabled?: boolean | undefined;
    ca?: string | undefined;
    server_name?: string | undefined;
    pin_sha256?: string | undefined;
    insecure?: boolean | undefined;
  } | undefined;
  reconnect?: { initial_delay?: number | undefined; max_delay?: number | undefined } | undefined;
  connect_wait?: number | undefined;
  shutdown_timeout?: number | undefined;
  mappings?: MappingInput[] | undefined;
  local_connect_timeout?: number | undefined;
  udp_idle_timeout?: number | undefined;
}
