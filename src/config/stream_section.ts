/**
 * The `stream` section: L4 forwarding (TCP, UDP) over upstream groups, and
 * TCP↔WebSocket bridges.
 *
 * ```yaml
 * stream:
 *   upstreams:                      # optional, default []; see upstream_section.ts
 *     - name: backend
 *       strategy: round_robin
 *       servers: ["127.0.0.1:9001", { addr: "127.0.0.1:9002", backup: true }]
 *       health_check: { type: tcp, interval: 2s }
 *   servers:                        # optional, default []
 *     # every server:
 *     #   listen: "127.0.0.1:7000"  # required; host:port or [v6]:port
 *     #   protocol: tcp             # optional, default tcp; tcp | udp | ws2tcp | tcp2ws | tcp2wss
 *     #   idle_timeout: 10m         # optional, default 10m (udp: 60s); no bytes either way for
 *     #                             #   this long closes the connection (udp: ends the session)
 *     # tcp, udp, ws2tcp: exactly one of
 *     #   upstream: backend         # the name of a group in stream.upstreams
 *     #   target: "127.0.0.1:22"    # a single host:port
 *     # tcp, ws2tcp:
 *     #   proxy_protocol: v2        # optional, default none; v1 | v2 header to the upstream
 *     # tcp, ws2tcp, tcp2ws, tcp2wss:
 *     #   connect_timeout: 5s       # optional, default 5s
 *     #   max_connections: 10000    # optional, default 10000; more are closed at once
 *     # udp:
 *     #   max_sessions: 4096        # optional, default 4096; datagrams from more clients are dropped
 *     # ws2tcp:
 *     #   path: /ssh                # optional, default any path; the only path that upgrades
 *     # tcp2ws, tcp2wss:
 *     #   target: "ws://127.0.0.1:7080/"  # required; ws:// for tcp2ws, wss:// for tcp2wss
 *     # tcp2wss:
 *     #   ca_file: ca.pem           # optional, default system roots; a PEM CA to trust
 *     - { listen: "127.0.0.1:7000", protocol: tcp, upstream: backend, proxy_protocol: v2 }
 *     - { listen: "127.0.0.1:7053", protocol: udp, upstream: dns, idle_timeout: 60s }
 *     - { listen: "127.0.0.1:7080", protocol: ws2tcp, target: "127.0.0.1:22" }
 *     - { listen: "127.0.0.1:7022", protocol: tcp2ws, target: "ws://127.0.0.1:7080/" }
 *     - { listen: "127.0.0.1:7023", protocol: tcp2wss, target: "wss://host/path" }
 * ```
 *
 * @module
 */
import { compact, ConfigReader, describe, type KeyPath } from "./reader.ts";
import { ConfigError } from "./errors.ts";
import {
  completeUpstreamGroup,
  readUpstreamGroups,
  type UpstreamGroupConfig,
  type UpstreamGroupInput,
} from "./upstream_section.ts";

/** What a stream server accepts and where it sends it. */
export type StreamProtocol = "tcp" | "udp" | "ws2tcp" | "tcp2ws" | "tcp2wss";

/** Every protocol, in documentation order. */
export const STREAM_PROTOCOLS: readonly StreamProtocol[] = [
  "tcp",
  "udp",
  "ws2tcp",
  "tcp2ws",
  "tcp2wss",
];

export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 600_000;
export const DEFAULT_STREAM_UDP_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_STREAM_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_STREAM_MAX_CONNECTIONS = 10_000;
export const DEFAULT_STREAM_MAX_SESSIONS = 4096;

interface StreamServerBase {
  /** Listen address, `host:port`. */
  listen: string;
  /** Close after this long with no bytes either way (udp: end the session). */
  idle_timeout_ms: number;
}

/** Where a tcp, udp or ws2tcp server sends its traffic: exactly one is set. */
export interface StreamDestination {
  /** The name of a group in `stream.upstreams`. */
  upstream: string | undefined;
  /** A single `host:port`. */
  target: string | undefined;
}

/** `protocol: tcp`: accept TCP, forward to an upstream. */
export interface TcpStreamServerConfig extends StreamServerBase, StreamDestination {
  protocol: "tcp";
  proxy_protocol: "v1" | "v2" | undefined;
  connect_timeout_ms: number;
  max_connections: number;
}

/** `protocol: udp`: per-client sessions to an upstream. */
export interface UdpStreamServerConfig extends StreamServerBase, StreamDestination {
  protocol: "udp";
  max_sessions: number;
}

/** `protocol: ws2tcp`: accept WebSocket, relay binary messages to TCP. */
export interface WsToTcpStreamServerConfig extends StreamServerBase, StreamDestination {
  protocol: "ws2tcp";
  /** The only path that upgrades; `undefined` = any. */
  path: string | undefined;
  proxy_protocol: "v1" | "v2" | undefined;
  connect_timeout_ms: number;
  max_connections: number;
}

/** `protocol: tcp2ws | tcp2wss`: accept TCP, relay over a WebSocket client. */
export interface TcpToWsStreamServerConfig extends StreamServerBase {
  protocol: "tcp2ws" | "tcp2wss";
  /** `ws://…` (tcp2ws) or `wss://…` (tcp2wss). */
  target: string;
  /** tcp2wss: a PEM CA file to trust besides the system roots. */
  ca_file: string | undefined;
  connect_timeout_ms: number;
  max_connections: number;
}

/** One stream server (complete). */
export type StreamServerConfig =
  | TcpStreamServerConfig
  | UdpStreamServerConfig
  | WsToTcpStreamServerConfig
  | TcpToWsStreamServerConfig;

/** The complete `stream` section. */
export interface StreamConfig {
  upstreams: readonly UpstreamGroupConfig[];
  servers: readonly StreamServerConfig[];
}

/** A stream server after validation, before defaults (durations in ms). */
export interface StreamServerInput {
  listen: string;
  protocol?: StreamProtocol | undefined;
  idle_timeout?: number | undefined;
  upstream?: string | undefined;
  target?: string | undefined;
  proxy_protocol?: "v1" | "v2" | undefined;
  connect_timeout?: number | undefined;
  max_connections?: number | undefined;
  max_sessions?: number | undefined;
  path?: string | undefined;
  ca_file?: string | undefined;
}

/** The `stream` section after validation, before defaults. */
export interface StreamInput {
  upstreams?: UpstreamGroupInput[] | undefined;
  servers?: StreamServerInput[] | undefined;
}

const COMMON_KEYS = ["listen", "protocol", "idle_timeout"] as const;
const PROTOCOL_KEYS: Record<StreamProtocol, readonly string[]> = {
  tcp: ["upstream", "target", "proxy_protocol", "connect_timeout", "max_connections"],
  udp: ["upstream", "target", "max_sessions"],
  ws2tcp: ["upstream", "target", "path", "proxy_protocol", "connect_timeout", "max_connections"],
  tcp2ws: ["target", "connect_timeout", "max_connections"],
  tcp2wss: ["target", "ca_file", "connect_timeout", "max_connections"],
};
const ALL_SERVER_KEYS = [
  ...COMMON_KEYS,
  ...new Set(Object.values(PROTOCOL_KEYS).flat()),
];

function readServer(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
  groups: ReadonlySet<string>,
): StreamServerInput | undefined {
  const t = r.table(value, path, ALL_SERVER_KEYS);
  if (t === undefined) return undefined;
  const before = r.issues.length;
  const protocol = r.oneOf(t.protocol, [...path, "protocol"], STREAM_PROTOCOLS);
  const proto = protocol ?? "tcp";
  if (t.protocol === undefined || protocol !== undefined) {
    const allowed = PROTOCOL_KEYS[proto];
    for (const key of Object.keys(t)) {
      const known = ALL_SERVER_KEYS.includes(key);
      if (known && !(COMMON_KEYS as readonly string[]).includes(key) && !allowed.includes(key)) {
        r.fail([...path, key], `is not valid with protocol: ${proto}`);
      }
    }
  }
  if (t.listen === undefined) r.fail([...path, "listen"], "is required");
  const listen = r.address(t.listen, [...path, "listen"]);

  let upstream: string | undefined;
  let target: string | undefined;
  if (proto === "tcp2ws" || proto === "tcp2wss") {
    if (t.target === undefined) r.fail([...path, "target"], "is required");
    target = r.string(t.target, [...path, "target"]);
    if (target !== undefined) {
      const scheme = proto === "tcp2ws" ? "ws:" : "wss:";
      let url: URL | undefined;
      try {
        url = new URL(target);
      } catch {
        // reported below
      }
      if (url === undefined || url.protocol !== scheme) {
        r.fail(
          [...path, "target"],
          `expected a URL like "${scheme}//host:port/path" for protocol: ${proto}, got ${
            describe(target)
          }`,
        );
      }
    }
  } else {
    upstream = r.string(t.upstream, [...path, "upstream"]);
    target = t.target === undefined ? undefined : r.address(t.target, [...path, "target"]);
    if (t.upstream === undefined && t.target === undefined) {
      r.fail(path, "expected one of upstream or target");
    } else if (t.upstream !== undefined && t.target !== undefined) {
      r.fail([...path, "target"], "cannot be combined with upstream");
    }
    if (upstream !== undefined && !groups.has(upstream)) {
      const known = groups.size === 0 ? "none are defined" : `known: ${[...groups].join(", ")}`;
      r.fail(
        [...path, "upstream"],
        `no upstream group named ${JSON.stringify(upstream)} in stream.upstreams (${known})`,
      );
    }
  }
  const path_ = r.string(t.path, [...path, "path"]);
  if (path_ !== undefined && !path_.startsWith("/")) {
    r.fail([...path, "path"], `expected a path starting with "/", got ${describe(path_)}`);
  }
  const input = compact({
    listen: listen ?? "",
    protocol,
    idle_timeout: r.duration(t.idle_timeout, [...path, "idle_timeout"]),
    upstream,
    target,
    proxy_protocol: r.oneOf(t.proxy_protocol, [...path, "proxy_protocol"], ["v1", "v2"] as const),
    connect_timeout: r.duration(t.connect_timeout, [...path, "connect_timeout"]),
    max_connections: r.int(t.max_connections, [...path, "max_connections"], 1, 1_000_000),
    max_sessions: r.int(t.max_sessions, [...path, "max_sessions"], 1, 1_000_000),
    path: path_,
    ca_file: r.string(t.ca_file, [...path, "ca_file"]),
  });
  return r.issues.length > before ? undefined : input;
}

/**
 * Reads the `stream` section (`value` is what the document holds under
 * `stream`), reporting every problem to `r` with its path.
 */
export function readStreamSection(r: ConfigReader, value: unknown): StreamInput | undefined {
  const path = ["stream"];
  if (value === null) return {};
  const t = r.table(value, path, ["upstreams", "servers"]);
  if (t === undefined) return undefined;
  const upstreams = t.upstreams === undefined
    ? undefined
    : readUpstreamGroups(r, t.upstreams, [...path, "upstreams"]);
  // Names of every listed group, valid or not, so one bad group is not also
  // reported as missing by each server that uses it.
  const names = new Set<string>();
  if (Array.isArray(t.upstreams)) {
    for (const g of t.upstreams) {
      const name = (g as { name?: unknown } | null)?.name;
      if (typeof name === "string") names.add(name);
    }
  }
  let servers: StreamServerInput[] | undefined;
  const list = r.list(t.servers, [...path, "servers"]);
  if (list !== undefined) {
    servers = [];
    const listens = new Map<string, number>();
    list.forEach((item, i) => {
      const server = readServer(r, item, [...path, "servers", i], names);
      if (server === undefined) return;
      const kind = server.protocol === "udp" ? "udp" : "tcp";
      const key = `${kind} ${server.listen}`;
      const other = listens.get(key);
      if (other !== undefined && !server.listen.endsWith(":0")) {
        r.fail(
          [...path, "servers", i, "listen"],
          `${server.listen} is already used by stream.servers[${other}]`,
        );
        return;
      }
      listens.set(key, i);
      servers!.push(server);
    });
  }
  return compact({ upstreams, servers });
}

/** Fills in the defaults of the `stream` section. */
export function completeStreamSection(input: StreamInput): StreamConfig {
  return {
    upstreams: (input.upstreams ?? []).map(completeUpstreamGroup),
    servers: (input.servers ?? []).map(completeStreamServer),
  };
}

function completeStreamServer(s: StreamServerInput): StreamServerConfig {
  const protocol = s.protocol ?? "tcp";
  const connect_timeout_ms = s.connect_timeout ?? DEFAULT_STREAM_CONNECT_TIMEOUT_MS;
  const max_connections = s.max_connections ?? DEFAULT_STREAM_MAX_CONNECTIONS;
  const idle_timeout_ms = s.idle_timeout ??
    (protocol === "udp" ? DEFAULT_STREAM_UDP_IDLE_TIMEOUT_MS : DEFAULT_STREAM_IDLE_TIMEOUT_MS);
  const dest = { upstream: s.upstream, target: s.target };
  switch (protocol) {
    case "tcp":
      return {
        listen: s.listen,
        protocol,
        idle_timeout_ms,
        ...dest,
        proxy_protocol: s.proxy_protocol,
        connect_timeout_ms,
        max_connections,
      };
    case "udp":
      return {
        listen: s.listen,
        protocol,
        idle_timeout_ms,
        ...dest,
        max_sessions: s.max_sessions ?? DEFAULT_STREAM_MAX_SESSIONS,
      };
    case "ws2tcp":
      return {
        listen: s.listen,
        protocol,
        idle_timeout_ms,
        ...dest,
        path: s.path,
        proxy_protocol: s.proxy_protocol,
        connect_timeout_ms,
        max_connections,
      };
    case "tcp2ws":
    case "tcp2wss":
      return {
        listen: s.listen,
        protocol,
        idle_timeout_ms,
        target: s.target ?? "",
        ca_file: s.ca_file,
        connect_timeout_ms,
        max_connections,
      };
  }
}

/** Arguments of `wmproxy ws-proxy`. */
export interface WsProxyArgs {
  /** `--from`: the listen address. */
  from: string;
  /** `--to`: `host:port` (ws2tcp), or a `ws://`/`wss://` URL or `host:port` (tcp2ws/tcp2wss). */
  to: string;
  /** `--mode`, matched case-insensitively: ws2tcp, tcp2ws or tcp2wss. */
  mode: string;
}

/**
 * The complete stream section that `wmproxy ws-proxy --from A --to T --mode M`
 * runs. Throws {@link ConfigError} naming the bad flag.
 */
export function wsProxyStreamConfig(args: WsProxyArgs): StreamConfig {
  const mode = args.mode.trim().toLowerCase();
  const r = new ConfigReader(() => undefined);
  const modes = ["ws2tcp", "tcp2ws", "tcp2wss"] as const;
  if (!(modes as readonly string[]).includes(mode)) {
    r.fail(["mode"], `expected one of ${modes.join(", ")}, got ${describe(args.mode)}`);
    throw new ConfigError("ws-proxy arguments", r.issues);
  }
  let target = args.to.trim();
  if (mode !== "ws2tcp" && !/^wss?:\/\//i.test(target)) {
    target = `${mode === "tcp2wss" ? "wss" : "ws"}://${target}/`;
  }
  const input = readStreamSection(r, {
    servers: [{ listen: args.from, protocol: mode, target }],
  });
  if (input === undefined || r.issues.length > 0) {
    const issues = r.issues.map((i) => ({
      ...i,
      path: i.path.endsWith(".listen") ? "from" : i.path.endsWith(".target") ? "to" : i.path,
    }));
    throw new ConfigError("ws-proxy arguments", issues);
  }
  return completeStreamSection(input);
}
