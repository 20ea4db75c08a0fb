/**
 * Every default, and the one function that fills them in.
 *
 * @module
 */
import { Secret } from "./secret.ts";
import { completeStreamSection } from "./stream_section.ts";
import { completeHttpSection } from "./http_section.ts";
import type {
  ClientConfig,
  Config,
  EgressConfig,
  MappingConfig,
  ProxyConfig,
  ProxyHandlerConfig,
  ProxyProtocol,
  ServerConfig,
  SessionTiming,
} from "./types.ts";
import type {
  ClientInput,
  ConfigInput,
  EgressInput,
  MappingInput,
  ProxyInput,
  ServerInput,
  SessionTimingInput,
} from "./input.ts";

export const DEFAULT_PROXY_BIND = "127.0.0.1:8090";
export const DEFAULT_PROXY_PROTOCOLS: readonly ProxyProtocol[] = ["http", "https", "socks5"];
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_CONNECTIONS = 10_000;
export const DEFAULT_UDP_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_SERVER_LISTEN = "127.0.0.1:8091";
export const DEFAULT_CLIENT_BIND = "127.0.0.1:8090";
export const DEFAULT_CERT_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1"];
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 45_000;
export const DEFAULT_SESSION_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CLIENTS = 1000;
export const DEFAULT_MAX_STREAMS = 4096;
/** Tunnel connections between accept and `auth_ok`, all addresses together. */
export const DEFAULT_MAX_HANDSHAKES = 256;
/** Tunnel connections between accept and `auth_ok` from one address (IPv6: one /64). */
export const DEFAULT_MAX_HANDSHAKES_PER_IP = 8;
/** Mappings one client session may hold. */
export const DEFAULT_MAX_MAPPINGS = 64;
/** Visitor connections (UDP: visitor sessions) at once per public mapping listener. */
export const DEFAULT_MAPPING_MAX_CONNECTIONS = 1024;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
export const DEFAULT_RECONNECT_INITIAL_MS = 500;
export const DEFAULT_RECONNECT_MAX_MS = 30_000;
export const DEFAULT_CONNECT_WAIT_MS = 5_000;
export const DEFAULT_TOKEN_PORTS = [{ from: 1024, to: 65535 }] as const;
export const DEFAULT_TOKEN_DOMAINS: readonly string[] = ["*"];
export const DEFAULT_MAPPING_HOST = "127.0.0.1";
/**
 * Every unprivileged port, like frp without `allowPorts` (binding below 1024
 * needs privileges); tokens narrow it with `allow_ports`.
 */
export const DEFAULT_PORT_RANGE = { from: 1024, to: 65535 } as const;
export const DEFAULT_UDP_SESSION_IDLE_MS = 60_000;
export const DEFAULT_LOCAL_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_ADMIN_LISTEN = "127.0.0.1:8837";
export const DEFAULT_LOG_LEVEL = "info";
export const DEFAULT_LOG_FORMAT = "text";

/** Where generated certificates go when `server.state_dir` is not set. */
export function defaultStateDir(): string {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // no env permission
    }
  };
  const explicit = env("WMPROXY_STATE_DIR");
  if (explicit) return explicit;
  const xdg = env("XDG_STATE_HOME");
  if (xdg) return `${xdg}/wmproxy`;
  const home = env("HOME");
  return home ? `${home}/.local/state/wmproxy` : "./wmproxy-state";
}

function completeTiming(input: SessionTimingInput): SessionTiming {
  return {
    heartbeat_interval_ms: input.heartbeat_interval ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    heartbeat_timeout_ms: input.heartbeat_timeout ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    handshake_timeout_ms: input.handshake_timeout ?? DEFAULT_SESSION_HANDSHAKE_TIMEOUT_MS,
  };
}

/** Fills the `server` section's defaults. */
export function completeServer(input: ServerInput): ServerConfig {
  return {
    listen: input.listen ?? DEFAULT_SERVER_LISTEN,
    tls: {
      enabled: input.tls?.enabled ?? true,
      cert: input.tls?.cert,
      key: input.tls?.key,
      names: input.tls?.names ?? DEFAULT_CERT_NAMES,
    },
    state_dir: input.state_dir ?? defaultStateDir(),
    tokens: (input.tokens ?? []).map((t) => ({
      name: t.name,
      token: t.token,
      allow_proxy: t.allow_proxy ?? true,
      allow_ports: t.allow_ports ?? DEFAULT_TOKEN_PORTS,
      allow_domains: t.allow_domains ?? DEFAULT_TOKEN_DOMAINS,
      egress: {
        allow: t.egress?.allow ?? [],
        deny: t.egress?.deny ?? [],
        default: t.egress?.default,
      },
    })),
    proxy: completeProxyHandler(input.proxy ?? {}),
    egress: completeEgress(input.egress),
    max_clients: input.max_clients ?? DEFAULT_MAX_CLIENTS,
    max_streams: input.max_streams ?? DEFAULT_MAX_STREAMS,
    max_handshakes: input.max_handshakes ?? DEFAULT_MAX_HANDSHAKES,
    max_handshakes_per_ip: input.max_handshakes_per_ip ?? DEFAULT_MAX_HANDSHAKES_PER_IP,
    max_mappings: input.max_mappings ?? DEFAULT_MAX_MAPPINGS,
    mapping_max_connections: input.mapping_max_connections ?? DEFAULT_MAPPING_MAX_CONNECTIONS,
    shutdown_timeout_ms: input.shutdown_timeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    http_bind: input.http_bind,
    https_bind: input.https_bind,
    https_certificates: input.https_certificates ?? [],
    mapping_host: input.mapping_host ?? DEFAULT_MAPPING_HOST,
    port_range: input.port_range ?? DEFAULT_PORT_RANGE,
    udp_idle_timeout_ms: input.udp_idle_timeout ?? DEFAULT_UDP_SESSION_IDLE_MS,
    ...completeTiming(input),
  };
}

/** Fills a mapping's defaults. */
export function completeMapping(input: MappingInput): MappingConfig {
  return {
    name: input.name,
    type: input.type,
    local_addr: input.local_addr,
    domains: input.domains ?? [],
    remote_port: input.remote_port ?? 0,
    proxy_protocol: input.proxy_protocol,
    request_headers: input.request_headers ?? [],
    response_headers: input.response_headers ?? [],
    host_rewrite: input.host_rewrite,
    x_forwarded: input.x_forwarded ?? true,
    basic_auth: input.basic_auth ?? [],
  };
}

/** Fills the `client` section's defaults; a missing `server` or `token` is left empty for the checks. */
export function completeClient(input: ClientInput): ClientConfig {
  return {
    server: input.server ?? "",
    token: input.token ?? new Secret(""),
    name: input.name,
    bind: input.bind === null ? undefined : input.bind ?? DEFAULT_CLIENT_BIND,
    tls: {
      enabled: input.tls?.enabled ?? true,
      ca: input.tls?.ca,
      server_name: input.tls?.server_name,
      pin_sha256: input.tls?.pin_sha256,
      insecure: input.tls?.insecure ?? false,
    },
    reconnect: {
      initial_delay_ms: input.reconnect?.initial_delay ?? DEFAULT_RECONNECT_INITIAL_MS,
      max_delay_ms: input.reconnect?.max_delay ?? DEFAULT_RECONNECT_MAX_MS,
    },
    connect_wait_ms: input.connect_wait ?? DEFAULT_CONNECT_WAIT_MS,
    shutdown_timeout_ms: input.shutdown_timeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
    mappings: (input.mappings ?? []).map(completeMapping),
    local_connect_timeout_ms: input.local_connect_timeout ?? DEFAULT_LOCAL_CONNECT_TIMEOUT_MS,
    udp_idle_timeout_ms: input.udp_idle_timeout ?? DEFAULT_UDP_SESSION_IDLE_MS,
    ...completeTiming(input),
  };
}

/** Fills an `egress` table's defaults: no rules, default allow. */
export function completeEgress(input: EgressInput | undefined): EgressConfig {
  return {
    allow: input?.allow ?? [],
    deny: input?.deny ?? [],
    default: input?.default ?? "allow",
  };
}

/** Fills the proxy handler defaults (shared by `proxy` and `server.proxy`). */
export function completeProxyHandler(input: ProxyInput): ProxyHandlerConfig {
  return {
    protocols: input.protocols ?? DEFAULT_PROXY_PROTOCOLS,
    users: input.users ?? [],
    via: input.via ?? false,
    x_forwarded_for: input.x_forwarded_for ?? false,
    udp: {
      enabled: input.udp?.enabled ?? true,
      bind_ip: input.udp?.bind_ip,
      idle_timeout_ms: input.udp?.idle_timeout ?? DEFAULT_UDP_IDLE_TIMEOUT_MS,
      replies: input.udp?.replies ?? "sent",
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

/** Fills the `proxy` section's defaults. */
export function completeProxy(input: ProxyInput): ProxyConfig {
  return {
    bind: input.bind ?? DEFAULT_PROXY_BIND,
    allow_open: input.allow_open ?? false,
    egress: completeEgress(input.egress),
    ...completeProxyHandler(input),
  };
}

/** Fills every default: the only place defaults are applied. */
export function completeConfig(input: ConfigInput): Config {
  return {
    proxy: input.proxy === undefined ? undefined : completeProxy(input.proxy),
    server: input.server === undefined ? undefined : completeServer(input.server),
    client: input.client === undefined ? undefined : completeClient(input.client),
    stream: input.stream === undefined ? undefined : completeStreamSection(input.stream),
    http: input.http === undefined ? undefined : completeHttpSection(input.http),
    admin: input.admin === undefined ? undefined : {
      listen: input.admin.listen ?? DEFAULT_ADMIN_LISTEN,
      token: input.admin.token,
      hosts: input.admin.hosts ?? [],
    },
    log: {
      level: input.log?.level ?? DEFAULT_LOG_LEVEL,
      format: input.log?.format ?? DEFAULT_LOG_FORMAT,
    },
  };
}
