/**
 * The complete, validated, defaults-filled configuration. Every field is present
 * at run time; `undefined` appears only where "not set" has a meaning of its own.
 * Field names are the YAML keys (snake_case), so an error path is the field path.
 *
 * @module
 */
import type { Secret } from "./secret.ts";
import type { StreamConfig } from "./stream_section.ts";
import type { HttpSectionConfig } from "./http_section.ts";
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
  /** Replies from: `sent` = only addresses the client sent to; `any` = anyone. */
  replies: "sent" | "any";
}

/**
 * How proxy requests are served (HTTP, CONNECT, SOCKS5): the `proxy` section
 * without its listener, and the `server.proxy` section for tunnelled streams.
 */
export interface ProxyHandlerConfig {
  /** Enabled protocols; `https` means CONNECT. */
  protocols: readonly ProxyProtocol[];
  /** Users; empty = no authentication. */
  users: readonly ProxyUser[];
  /** Add a `Via` header to forwarded HTTP requests and responses. */
  via: boolean;
  /** Add the client's address to `X-Forwarded-For` on forwarded HTTP requests. */
  x_forwarded_for: boolean;
  udp: ProxyUdpConfig;
  limits: ProxyLimits;
}

/**
 * Where a proxy may connect (`proxy.egress`, `server.egress`): rule strings
 * as in `src/proxy/egress_policy.ts` (`10.0.0.0/8`, `*.internal`, `host:443`).
 * A deny rule beats an allow rule; see that module for the order.
 */
export interface EgressConfig {
  allow: readonly string[];
  deny: readonly string[];
  /** When no rule (and, on the tunnel server, no protection) matches. */
  default: "allow" | "deny";
}

/** The `proxy` section: forward proxy (HTTP, CONNECT, SOCKS5) on one port. */
export interface ProxyConfig extends ProxyHandlerConfig {
  /** Listen address, `host:port`. */
  bind: string;
  /** Allow an unauthenticated proxy on a non-loopback address. */
  allow_open: boolean;
  /** Targets the proxy may connect to; default: all. */
  egress: EgressConfig;
}

/** Heartbeat and handshake timing of a tunnel session, in milliseconds. */
export interface SessionTiming {
  heartbeat_interval_ms: number;
  heartbeat_timeout_ms: number;
  handshake_timeout_ms: number;
}

/** An inclusive port range. */
export interface PortRange {
  from: number;
  to: number;
}

/** One client token and what it allows. */
export interface TokenPolicy {
  /** Name used in logs and the admin API. */
  name: string;
  token: Secret;
  /** May this client send proxy streams (chained proxy)? */
  allow_proxy: boolean;
  /** Remote ports it may claim for tcp/udp mappings. */
  allow_ports: readonly PortRange[];
  /** Domains it may claim for http/https mappings (`*.example.com` allowed). */
  allow_domains: readonly string[];
  /** Egress rules added to `server.egress` for this token's proxy streams; `default` overrides. */
  egress: {
    allow: readonly string[];
    deny: readonly string[];
    default: "allow" | "deny" | undefined;
  };
}

/** A header rule of an HTTP mapping; `value` may use $remote_addr, $host, $scheme. */
export interface HeaderRuleConfig {
  action: "set" | "add" | "remove" | "set_if_absent";
  name: string;
  value?: string;
}

/** A mapping kind: how visitors reach it on the server. */
export type MappingType = "http" | "https" | "tcp" | "udp";

/** One LAN service the client exposes on the server (`client.mappings[]`). */
export interface MappingConfig {
  name: string;
  type: MappingType;
  /** The LAN service, `host:port` (names allowed). */
  local_addr: string;
  /** http/https: the names visitors use (`*.example.com` allowed). */
  domains: readonly string[];
  /** tcp/udp: the public port; 0 = the server picks one. */
  remote_port: number;
  /** Send a PROXY protocol header to `local_addr` so it sees the visitor's address. */
  proxy_protocol: "v1" | "v2" | undefined;
  /** http: header rules for requests to the service and responses to visitors. */
  request_headers: readonly HeaderRuleConfig[];
  response_headers: readonly HeaderRuleConfig[];
  /** http: the Host header the service sees; `undefined` keeps the visitor's. */
  host_rewrite: string | undefined;
  /** http: add X-Forwarded-For/-Proto/-Host. */
  x_forwarded: boolean;
  /** http: visitors must log in (HTTP Basic) with one of these; empty = open. */
  basic_auth: readonly ProxyUser[];
}

/** A certificate the server uses to terminate HTTPS for some mapping domains. */
export interface HttpsCertificate {
  domains: readonly string[];
  cert: string;
  key: string;
}

/** The `server` section: the tunnel server ("center server"). */
export interface ServerConfig extends SessionTiming {
  /** Tunnel listen address. */
  listen: string;
  tls: {
    /** TLS on the tunnel listener; false is an explicit opt-out. */
    enabled: boolean;
    /** Certificate and key files; when absent, generated into `state_dir`. */
    cert: string | undefined;
    key: string | undefined;
    /** Names a generated certificate is valid for. */
    names: readonly string[];
  };
  /** Where generated certificates live. */
  state_dir: string;
  tokens: readonly TokenPolicy[];
  /** How streams of kind "proxy" are served. */
  proxy: ProxyHandlerConfig;
  /**
   * Targets proxy streams may connect to. Loopback, link-local, unspecified
   * and this process's own listeners are refused unless an allow rule lifts it.
   */
  egress: EgressConfig;
  /** Concurrent client sessions. */
  max_clients: number;
  /** Concurrent streams per session. */
  max_streams: number;
  /** Connections between accept and `auth_ok` (pre-auth), all addresses together. */
  max_handshakes: number;
  /** Pre-auth connections from one address (IPv6: one /64). */
  max_handshakes_per_ip: number;
  /** Mappings one client session may hold. */
  max_mappings: number;
  /** Visitor connections (UDP: visitor sessions) at once per public mapping listener. */
  mapping_max_connections: number;
  /** On SIGTERM: how long open streams may take to finish. */
  shutdown_timeout_ms: number;
  /** Public listener for HTTP mappings (routed by Host); `undefined` = none. */
  http_bind: string | undefined;
  /** Public listener for HTTPS mappings (routed by SNI); `undefined` = none. */
  https_bind: string | undefined;
  /** Domains whose HTTPS the server terminates (then handled as HTTP); others pass through. */
  https_certificates: readonly HttpsCertificate[];
  /** Address TCP and UDP mapping listeners bind. */
  mapping_host: string;
  /** Ports TCP/UDP mappings may use; `remote_port: 0` picks from here. */
  port_range: PortRange;
  /** A UDP visitor session with no datagram either way for this long ends. */
  udp_idle_timeout_ms: number;
}

/** The `client` section: the tunnel client ("center client"). */
export interface ClientConfig extends SessionTiming {
  /** The tunnel server, `host:port`. */
  server: string;
  token: Secret;
  /** Name sent in the hello, for the server's logs. */
  name: string | undefined;
  /** Local proxy port whose connections go through the tunnel; `undefined` = none. */
  bind: string | undefined;
  tls: {
    enabled: boolean;
    /** CA file to verify the server with (else the system roots). */
    ca: string | undefined;
    /** Name to verify (and send as SNI); default: the host of `server`. */
    server_name: string | undefined;
    /** Accept only a server whose certificate (or CA) has this SHA-256 fingerprint. */
    pin_sha256: string | undefined;
    /** Skip verification (a warning at every connect). */
    insecure: boolean;
  };
  reconnect: { initial_delay_ms: number; max_delay_ms: number };
  /** How long a local connection waits for the tunnel while disconnected. */
  connect_wait_ms: number;
  /** On SIGTERM: how long open streams may take to finish. */
  shutdown_timeout_ms: number;
  /** LAN services exposed on the server. */
  mappings: readonly MappingConfig[];
  /** Time to connect to a mapping's `local_addr`. */
  local_connect_timeout_ms: number;
  /** A UDP mapping session with no datagram either way for this long ends. */
  udp_idle_timeout_ms: number;
}

/** The `admin` section: the control API. */
export interface AdminConfig {
  /** Listen address; loopback by default. */
  listen: string;
  /** Bearer token; required on a non-loopback address. */
  token: Secret | undefined;
  /**
   * Extra Host header values the API answers (`name` or `name:port`), besides
   * the bound address and localhost/127.0.0.1/[::1] with the bound port.
   */
  hosts: readonly string[];
}

/** The `log` section. */
export interface LogConfig {
  level: LogLevel;
  format: LogFormat;
}

/** The whole configuration. A section that is `undefined` does not run. */
export interface Config {
  proxy: ProxyConfig | undefined;
  server: ServerConfig | undefined;
  client: ClientConfig | undefined;
  admin: AdminConfig | undefined;
  stream: StreamConfig | undefined;
  /** The reverse proxy and web server. */
  http: HttpSectionConfig | undefined;
  log: LogConfig;
}
