/**
 * The event vocabulary shared by logs, the e2e harness and operators.
 * Add a name here before logging it.
 *
 * @module
 */
export const EVENTS = {
  /** A listener is bound. Fields: `component`, `addr` (the real bound address). */
  listening: "listening",
  /** A listener stopped accepting. Fields: `component`, `addr`. */
  listener_closed: "listener_closed",
  /** A client connection was accepted. Fields: `component`, `conn`, `peer`. */
  connection_opened: "connection_opened",
  /** A connection ended. Fields: `component`, `conn`, `peer`, `target`, `bytes_in`, `bytes_out`, `ms`, `error?`. */
  connection_closed: "connection_closed",
  /** A proxied HTTP request finished. Fields: `conn`, `method`, `target`, `status`, `ms`. */
  proxy_request: "proxy_request",
  /** A client failed proxy authentication. Fields: `component`, `peer`, `protocol`. */
  auth_failed: "auth_failed",
  /** Bad bytes from a peer. Fields: `component`, `peer`, `error`. */
  protocol_error: "protocol_error",
  /** A SOCKS5 UDP association was set up or ended. Fields: `conn`, `relay`, `datagrams`. */
  udp_associate: "udp_associate",
  udp_associate_closed: "udp_associate_closed",
  /** Process lifecycle. */
  starting: "starting",
  stopping: "stopping",
  stopped: "stopped",
  config_warning: "config_warning",
  fatal: "fatal",
  /** An unhandled rejection or uncaught exception; the process keeps serving. Fields: `kind`, `error`, `stack?`. */
  internal_error: "internal_error",
  /** Tunnel sessions (mux). Fields: `session`, `peer`, `code?`, `error?`. */
  session_opened: "session_opened",
  session_closed: "session_closed",
  session_protocol_error: "session_protocol_error",
  heartbeat_timeout: "heartbeat_timeout",
  /** A GO_AWAY was sent or received. Fields: `session`, `code`, `remote`. */
  session_go_away: "session_go_away",
  /** A proxy protocol that is not enabled was asked for. Fields: `component`, `conn`, `peer`, `protocol`. */
  protocol_disabled: "protocol_disabled",
  /** A connection was closed at once because of a limit. Fields: `component`, `peer`, `reason`. */
  connection_rejected: "connection_rejected",
  /** A listener's accept failed (e.g. out of file descriptors). Fields: `component`, `addr`, `error`. */
  accept_error: "accept_error",
  /** Tunnel server: the TLS identity clients must trust. Fields: `fingerprint`, `ca_file`, `client_settings`. */
  tls_identity: "tls_identity",
  /** TLS is off on a tunnel listener or client. */
  tls_disabled: "tls_disabled",
  /** The client skips certificate verification. */
  tls_insecure: "tls_insecure",
  /** A tunnel connection failed before authentication. Fields: `peer`, `error`. */
  tunnel_handshake_failed: "tunnel_handshake_failed",
  /** An authenticated client session started / ended. Fields: `session`, `client`, `token`, `peer`, `code`, `reason`. */
  client_connected: "client_connected",
  client_disconnected: "client_disconnected",
  /** A client was authenticated but not admitted. Fields: `peer`, `reason`. */
  client_refused: "client_refused",
  /** A proxy target was refused by the egress policy. Fields: `component`, `token?`, `session?`, `peer`, `target`, `address?`, `rule`. */
  egress_denied: "egress_denied",
  /** A stream was refused by policy. Fields: `session`, `reason`. */
  stream_refused: "stream_refused",
  /** Tunnel client: connected / lost / failed to connect. Fields: `server`, `session`, `error`, `retry_in_ms`. */
  tunnel_connected: "tunnel_connected",
  tunnel_disconnected: "tunnel_disconnected",
  tunnel_connect_failed: "tunnel_connect_failed",
  /** Server: a mapping was registered / refused / released. Fields: `session`, `mapping`, `public_addr`, `code`, `reason`. */
  mapping_registered: "mapping_registered",
  mapping_refused: "mapping_refused",
  mapping_released: "mapping_released",
  /** Client: the server accepted / refused a mapping. Fields: `mapping`, `public_addr`, `code`, `reason`. */
  mapping_ready: "mapping_ready",
  mapping_failed: "mapping_failed",
  /** A visitor could not be served. Fields: `mapping`, `host`, `error`. */
  mapping_error: "mapping_error",
  /** One HTTP request through a mapping. Fields: `conn`, `mapping`, `host`, `method`, `path`, `status`, `bytes`, `ms`. */
  mapping_request: "mapping_request",
  /** SIGHUP: the config was re-read. Fields: `result`, `message` or `error`. */
  reload: "reload",
  /** An upstream server was marked down / up. Fields: `upstream`, `peer`, `reason` (`passive` or `active`), `error?`. */
  upstream_peer_down: "upstream_peer_down",
  upstream_peer_up: "upstream_peer_up",
  /** Connecting to an upstream server failed; the next one is tried. Fields: `component`, `upstream`, `peer`, `error`. */
  upstream_connect_failed: "upstream_connect_failed",
  /** A UDP stream session started / ended. Fields: `component`, `listen`, `peer`, `target`, `datagrams_in`, `datagrams_out`, `bytes_in`, `bytes_out`, `ms`. */
  udp_session_opened: "udp_session_opened",
  udp_session_closed: "udp_session_closed",
  /** Reverse proxy: one response, logged after its body. Fields: `server`, `location`, `remote_addr`, `method`, `uri`, `status`, `bytes`, `ms`, `upstream_addr`, `line` (the configured format). */
  http_access: "http_access",
  /** Reverse proxy: an upstream attempt failed. Fields: `upstream`, `kind` (connect, timeout, io), `error`, `uri`, `retry`. */
  http_upstream_error: "http_upstream_error",
  /** Reverse proxy: a request failed inside wmproxy (answered 500) or a listener problem. Fields: `uri`, `error`. */
  http_error: "http_error",
  /** Client: a reload withdrew a mapping. Fields: `mapping`. */
  mapping_removed: "mapping_removed",
  /** A reload applied a new config. Fields: `kept`, `updated`, `restarted`. */
  reload_applied: "reload_applied",
} as const;

/** One of the known event names. */
export type EventName = keyof typeof EVENTS;
