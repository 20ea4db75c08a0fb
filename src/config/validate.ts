/**
 * Checks a parsed document against the config schema: unknown keys are errors,
 * every value is checked and converted, and every problem is collected with its
 * path before anything is reported.
 *
 * @module
 */
import { isLoopbackHost, parseHostPort } from "../transport/conn.ts";
import { PROTECTED_HEADER_NAMES } from "../mapping/header_rules.ts";
import { Secret } from "./secret.ts";
import type { ConfigIssue } from "./errors.ts";
import { compact, ConfigReader, describe, type KeyPath, type Locate } from "./reader.ts";
import { readStreamSection } from "./stream_section.ts";
import { readHttpSection } from "./http_section.ts";
import { parseEgressRule } from "../proxy/egress_policy.ts";

export type { KeyPath, Locate } from "./reader.ts";
export { formatPath } from "./reader.ts";
import type {
  AdminInput,
  ClientInput,
  ConfigInput,
  EgressInput,
  LogInput,
  MappingInput,
  ProxyInput,
  ServerInput,
  TokenInput,
} from "./input.ts";
import type {
  Config,
  HeaderRuleConfig,
  HttpsCertificate,
  MappingType,
  PortRange,
  ProxyProtocol,
  ProxyUser,
} from "./types.ts";

const ADMIN_HOST_REGEXP = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$/;
const NAME_REGEXP = /^[A-Za-z0-9_.-]{1,64}$/;
const PIN_REGEXP = /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$/;

const PROXY_PROTOCOLS: readonly ProxyProtocol[] = ["http", "https", "socks5"];
const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
const LOG_FORMATS = ["text", "json"] as const;

const PROXY_HANDLER_KEYS = ["protocols", "users", "via", "x_forwarded_for", "udp", "limits"];

function readProxy(
  r: ConfigReader,
  value: unknown,
  path: KeyPath = ["proxy"],
  withListener = true,
): ProxyInput | undefined {
  if (value === null) return {}; // `proxy:` alone means "run it with defaults"
  const t = r.table(
    value,
    path,
    withListener ? ["bind", ...PROXY_HANDLER_KEYS, "allow_open", "egress"] : PROXY_HANDLER_KEYS,
  );
  if (t === undefined) return undefined;

  let protocols: ProxyProtocol[] | undefined;
  const protoList = r.list(t.protocols, [...path, "protocols"]);
  if (protoList !== undefined) {
    protocols = [];
    protoList.forEach((p, i) => {
      const v = r.oneOf(p, [...path, "protocols", i], PROXY_PROTOCOLS);
      if (v !== undefined && !protocols!.includes(v)) protocols!.push(v);
    });
    if (protoList.length === 0) r.fail([...path, "protocols"], "expected at least one protocol");
  }

  const users = readUsers(r, t.users, [...path, "users"]);

  let udp: ProxyInput["udp"];
  if (t.udp !== undefined) {
    const up = [...path, "udp"];
    const ut = r.table(t.udp, up, ["enabled", "bind_ip", "idle_timeout", "replies"]);
    if (ut !== undefined) {
      udp = compact({
        enabled: r.bool(ut.enabled, [...up, "enabled"]),
        bind_ip: r.string(ut.bind_ip, [...up, "bind_ip"]),
        idle_timeout: r.duration(ut.idle_timeout, [...up, "idle_timeout"]),
        replies: r.oneOf(ut.replies, [...up, "replies"], ["sent", "any"] as const),
      });
    }
  }

  let limits: ProxyInput["limits"];
  if (t.limits !== undefined) {
    const lp = [...path, "limits"];
    const lt = r.table(t.limits, lp, [
      "max_header_bytes",
      "handshake_timeout",
      "connect_timeout",
      "idle_timeout",
      "max_connections",
    ]);
    if (lt !== undefined) {
      limits = compact({
        max_header_bytes: r.size(
          lt.max_header_bytes,
          [...lp, "max_header_bytes"],
          1024,
          16 * 1024 * 1024,
        ),
        handshake_timeout: r.duration(lt.handshake_timeout, [...lp, "handshake_timeout"]),
        connect_timeout: r.duration(lt.connect_timeout, [...lp, "connect_timeout"]),
        idle_timeout: r.duration(lt.idle_timeout, [...lp, "idle_timeout"]),
        max_connections: r.int(lt.max_connections, [...lp, "max_connections"], 1, 1_000_000),
      });
    }
  }

  return compact({
    bind: r.address(t.bind, [...path, "bind"]),
    egress: t.egress === undefined ? undefined : readEgress(r, t.egress, [...path, "egress"]),
    protocols,
    users,
    allow_open: r.bool(t.allow_open, [...path, "allow_open"]),
    via: r.bool(t.via, [...path, "via"]),
    x_forwarded_for: r.bool(t.x_forwarded_for, [...path, "x_forwarded_for"]),
    udp,
    limits,
  });
}

/** `egress: { allow: [rule], deny: [rule], default: allow | deny }`. */
function readEgress(r: ConfigReader, value: unknown, path: KeyPath): EgressInput | undefined {
  const t = r.table(value, path, ["allow", "deny", "default"]);
  if (t === undefined) return undefined;
  const rules = (key: "allow" | "deny") =>
    r.list(t[key], [...path, key])?.map((v, i) => {
      const text = r.string(v, [...path, key, i]);
      if (text === undefined) return "";
      try {
        parseEgressRule(text);
      } catch (err) {
        r.fail([...path, key, i], (err as Error).message);
      }
      return text;
    });
  return compact({
    allow: rules("allow"),
    deny: rules("deny"),
    default: r.oneOf(t.default, [...path, "default"], ["allow", "deny"] as const),
  });
}

function readTiming(r: ConfigReader, t: Record<string, unknown>, path: KeyPath) {
  return {
    heartbeat_interval: r.duration(t.heartbeat_interval, [...path, "heartbeat_interval"], 100),
    heartbeat_timeout: r.duration(t.heartbeat_timeout, [...path, "heartbeat_timeout"], 100),
    handshake_timeout: r.duration(t.handshake_timeout, [...path, "handshake_timeout"], 100),
  };
}

const TIMING_KEYS = ["heartbeat_interval", "heartbeat_timeout", "handshake_timeout"];

/** `"LO-HI"` or one port (a number or text) as a range within 1-65535; undefined if not one. */
export function parsePortRange(value: unknown): PortRange | undefined {
  const text = typeof value === "number" ? String(value) : value;
  const m = typeof text === "string" ? /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(text.trim()) : null;
  const from = m ? Number(m[1]) : NaN;
  const to = m ? Number(m[2] ?? m[1]) : NaN;
  return from >= 1 && to <= 65535 && from <= to ? { from, to } : undefined;
}

function readPortRange(r: ConfigReader, value: unknown, path: KeyPath): PortRange | undefined {
  const range = parsePortRange(value);
  if (range === undefined) {
    return r.fail(
      path,
      `expected a port or a range like "10000-20000" within 1-65535, got ${describe(value)}`,
    );
  }
  return range;
}

function readTokens(r: ConfigReader, value: unknown, path: KeyPath): TokenInput[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  const tokens: TokenInput[] = [];
  list.forEach((item, i) => {
    const p = [...path, i];
    const t = r.table(item, p, [
      "name",
      "token",
      "allow_proxy",
      "allow_ports",
      "allow_domains",
      "egress",
    ]);
    if (t === undefined) return;
    const name = r.string(t.name, [...p, "name"]);
    const token = r.string(t.token, [...p, "token"]);
    if (t.name === undefined) r.fail([...p, "name"], "is required");
    if (t.token === undefined) r.fail([...p, "token"], "is required");
    if (name !== undefined && !NAME_REGEXP.test(name)) {
      r.fail([...p, "name"], "expected 1-64 characters from A-Z a-z 0-9 _ . -");
    }
    if (token !== undefined && token.length < 8) {
      r.fail([...p, "token"], "must be at least 8 characters");
    }
    if (name !== undefined && tokens.some((x) => x.name === name)) {
      r.fail([...p, "name"], `duplicate token name ${JSON.stringify(name)}`);
    }
    if (token !== undefined && tokens.some((x) => x.token.reveal() === token)) {
      r.fail([...p, "token"], "the same token is listed twice");
    }
    const ports = r.list(t.allow_ports, [...p, "allow_ports"]);
    const domains = r.list(t.allow_domains, [...p, "allow_domains"]);
    const entry: TokenInput = {
      name: name ?? "",
      token: new Secret(token ?? ""),
      allow_proxy: r.bool(t.allow_proxy, [...p, "allow_proxy"]),
      allow_ports: ports?.map((v, j) => readPortRange(r, v, [...p, "allow_ports", j])!),
      allow_domains: domains?.map((v, j) => r.string(v, [...p, "allow_domains", j])!),
      egress: t.egress === undefined ? undefined : readEgress(r, t.egress, [...p, "egress"]),
    };
    if (name !== undefined && token !== undefined) tokens.push(entry);
  });
  return tokens;
}

function readServer(r: ConfigReader, value: unknown): ServerInput | undefined {
  const path = ["server"];
  const t = r.table(value ?? {}, path, [
    "listen",
    "tls",
    "state_dir",
    "tokens",
    "proxy",
    "egress",
    "max_clients",
    "max_streams",
    "max_handshakes",
    "max_handshakes_per_ip",
    "max_mappings",
    "mapping_max_connections",
    "shutdown_timeout",
    "http_bind",
    "https_bind",
    "https_certificates",
    "mapping_host",
    "port_range",
    "udp_idle_timeout",
    ...TIMING_KEYS,
  ]);
  if (t === undefined) return undefined;
  let tls: ServerInput["tls"];
  if (typeof t.tls === "boolean") tls = { enabled: t.tls };
  else if (t.tls !== undefined) {
    const tp = [...path, "tls"];
    const tt = r.table(t.tls, tp, ["enabled", "cert", "key", "names"]);
    if (tt !== undefined) {
      const names = r.list(tt.names, [...tp, "names"]);
      tls = {
        enabled: r.bool(tt.enabled, [...tp, "enabled"]),
        cert: r.string(tt.cert, [...tp, "cert"]),
        key: r.string(tt.key, [...tp, "key"]),
        names: names?.map((n, i) => r.string(n, [...tp, "names", i])!),
      };
      if ((tt.cert === undefined) !== (tt.key === undefined)) {
        r.fail(
          [...tp, tt.cert === undefined ? "cert" : "key"],
          "cert and key go together: give both or neither",
        );
      }
    }
  }
  return compact({
    listen: r.address(t.listen, [...path, "listen"]),
    tls,
    state_dir: r.string(t.state_dir, [...path, "state_dir"]),
    tokens: readTokens(r, t.tokens, [...path, "tokens"]),
    proxy: t.proxy === undefined ? undefined : readProxy(r, t.proxy, [...path, "proxy"], false),
    egress: t.egress === undefined ? undefined : readEgress(r, t.egress, [...path, "egress"]),
    max_clients: r.int(t.max_clients, [...path, "max_clients"], 1, 1_000_000),
    max_streams: r.int(t.max_streams, [...path, "max_streams"], 1, 65_536),
    max_handshakes: r.int(t.max_handshakes, [...path, "max_handshakes"], 1, 1_000_000),
    max_handshakes_per_ip: r.int(
      t.max_handshakes_per_ip,
      [...path, "max_handshakes_per_ip"],
      1,
      1_000_000,
    ),
    max_mappings: r.int(t.max_mappings, [...path, "max_mappings"], 1, 100_000),
    mapping_max_connections: r.int(
      t.mapping_max_connections,
      [...path, "mapping_max_connections"],
      1,
      1_000_000,
    ),
    shutdown_timeout: r.duration(t.shutdown_timeout, [...path, "shutdown_timeout"], 0),
    http_bind: r.address(t.http_bind, [...path, "http_bind"]),
    https_bind: r.address(t.https_bind, [...path, "https_bind"]),
    https_certificates: readCertificates(r, t.https_certificates, [...path, "https_certificates"]),
    mapping_host: r.string(t.mapping_host, [...path, "mapping_host"]),
    port_range: t.port_range === undefined
      ? undefined
      : readPortRange(r, t.port_range, [...path, "port_range"]),
    udp_idle_timeout: r.duration(t.udp_idle_timeout, [...path, "udp_idle_timeout"], 100),
    ...readTiming(r, t, path),
  });
}

function readCertificates(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): HttpsCertificate[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  const out: HttpsCertificate[] = [];
  list.forEach((item, i) => {
    const p = [...path, i];
    const t = r.table(item, p, ["domains", "cert", "key"]);
    if (t === undefined) return;
    const domains = readDomains(r, t.domains, [...p, "domains"]);
    const cert = r.string(t.cert, [...p, "cert"]);
    const key = r.string(t.key, [...p, "key"]);
    for (const k of ["domains", "cert", "key"]) {
      if (t[k] === undefined) r.fail([...p, k], "is required");
    }
    if (domains && cert && key) out.push({ domains, cert, key });
  });
  return out;
}

const DOMAIN_REGEXP =
  /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function readDomains(r: ConfigReader, value: unknown, path: KeyPath): string[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  if (list.length === 0 || list.length > 32) return r.fail(path, "expected 1 to 32 domain names");
  const out: string[] = [];
  list.forEach((d, i) => {
    const text = r.string(d, [...path, i]);
    if (text === undefined) return;
    const lower = text.toLowerCase();
    if (lower.length > 253 || !DOMAIN_REGEXP.test(lower)) {
      r.fail(
        [...path, i],
        `expected a host name like "example.com" or "*.example.com", got ${describe(d)}`,
      );
      return;
    }
    out.push(lower);
  });
  return out;
}

const MAPPING_TYPES: readonly MappingType[] = ["http", "https", "tcp", "udp"];
const RULE_ACTIONS = ["set", "add", "remove", "set_if_absent"] as const;
const HEADER_NAME_REGEXP = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;

function readRules(r: ConfigReader, value: unknown, path: KeyPath): HeaderRuleConfig[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  if (list.length > 32) return r.fail(path, "expected at most 32 rules");
  const out: HeaderRuleConfig[] = [];
  list.forEach((item, i) => {
    const p = [...path, i];
    const t = r.table(item, p, ["action", "name", "value"]);
    if (t === undefined) return;
    const action = r.oneOf(t.action, [...p, "action"], RULE_ACTIONS);
    if (t.action === undefined) r.fail([...p, "action"], "is required");
    const name = r.string(t.name, [...p, "name"]);
    if (name !== undefined && !HEADER_NAME_REGEXP.test(name)) {
      r.fail([...p, "name"], "expected an HTTP header name");
    }
    if (name !== undefined && PROTECTED_HEADER_NAMES.has(name.toLowerCase())) {
      r.fail([...p, "name"], `"${name}" frames the message and cannot be changed by a rule`);
    }
    const value = t.value === undefined
      ? undefined
      : typeof t.value === "number"
      ? String(t.value)
      : t.value;
    if (action !== undefined && action !== "remove" && typeof value !== "string") {
      r.fail([...p, "value"], `is required for action "${action}"`);
    }
    if (typeof value === "string" && (/[\r\n\0]/.test(value) || value.length > 1024)) {
      r.fail([...p, "value"], "must be at most 1024 characters without line breaks");
    }
    if (action !== undefined && name !== undefined) {
      out.push(
        action === "remove" ? { action, name } : { action, name, value: String(value ?? "") },
      );
    }
  });
  return out;
}

/** Users for HTTP Basic and SOCKS5 (RFC 1929: at most 255 bytes each), names unique. */
function readUsers(r: ConfigReader, value: unknown, path: KeyPath): ProxyUser[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  const users: ProxyUser[] = [];
  list.forEach((u, i) => {
    const up = [...path, i];
    const ut = r.table(u, up, ["username", "password"]);
    if (ut === undefined) return;
    const username = r.string(ut.username, [...up, "username"]);
    const password = r.string(ut.password, [...up, "password"]);
    if (ut.username === undefined) r.fail([...up, "username"], "is required");
    if (ut.password === undefined) r.fail([...up, "password"], "is required");
    if (username !== undefined && username.length > 255) {
      r.fail([...up, "username"], "must be at most 255 bytes (SOCKS5 limit)");
    }
    if (password !== undefined && password.length > 255) {
      r.fail([...up, "password"], "must be at most 255 bytes (SOCKS5 limit)");
    }
    if (username !== undefined && username.includes(":")) {
      r.fail([...up, "username"], 'must not contain ":" (HTTP Basic separator)');
    }
    if (username === undefined || password === undefined) return;
    if (users.some((x) => x.username === username)) {
      r.fail([...up, "username"], `duplicate user ${JSON.stringify(username)}`);
    }
    users.push({ username, password: new Secret(password) });
  });
  return users;
}

const HTTP_ONLY_KEYS = [
  "request_headers",
  "response_headers",
  "host_rewrite",
  "x_forwarded",
  "basic_auth",
];

function readMappings(r: ConfigReader, value: unknown, path: KeyPath): MappingInput[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  const out: MappingInput[] = [];
  list.forEach((item, i) => {
    const p = [...path, i];
    const t = r.table(item, p, [
      "name",
      "type",
      "local_addr",
      "domains",
      "remote_port",
      "proxy_protocol",
      ...HTTP_ONLY_KEYS,
    ]);
    if (t === undefined) return;
    for (const k of ["name", "type", "local_addr"]) {
      if (t[k] === undefined) r.fail([...p, k], "is required");
    }
    const name = r.string(t.name, [...p, "name"]);
    if (name !== undefined && !NAME_REGEXP.test(name)) {
      r.fail([...p, "name"], "expected 1-64 characters from A-Z a-z 0-9 _ . -");
    }
    if (name !== undefined && out.some((m) => m.name === name)) {
      r.fail([...p, "name"], `duplicate mapping name ${JSON.stringify(name)}`);
    }
    const type = r.oneOf(t.type, [...p, "type"], MAPPING_TYPES);
    const local = r.address(t.local_addr, [...p, "local_addr"]);
    const byDomain = type === "http" || type === "https";
    if (byDomain && t.domains === undefined) {
      r.fail([...p, "domains"], `is required for type "${type}"`);
    }
    if (byDomain && t.remote_port !== undefined) {
      r.fail([...p, "remote_port"], `is for tcp and udp mappings, not "${type}"`);
    }
    if (!byDomain && type !== undefined && t.domains !== undefined) {
      r.fail([...p, "domains"], `is for http and https mappings, not "${type}"`);
    }
    if (type !== undefined && type !== "http" && type !== "https") {
      for (const k of HTTP_ONLY_KEYS) {
        if (t[k] !== undefined) r.fail([...p, k], `is for http mappings, not "${type}"`);
      }
    }
    const proxyProtocol = r.oneOf(
      t.proxy_protocol,
      [...p, "proxy_protocol"],
      ["v1", "v2"] as const,
    );
    if (proxyProtocol !== undefined && type === "udp") {
      r.fail([...p, "proxy_protocol"], "is not supported for udp mappings");
    }
    const entry: MappingInput = {
      name: name ?? "",
      type: type ?? "tcp",
      local_addr: local ?? "",
      domains: byDomain ? readDomains(r, t.domains, [...p, "domains"]) : undefined,
      remote_port: r.int(t.remote_port, [...p, "remote_port"], 0, 65535),
      proxy_protocol: proxyProtocol,
      request_headers: readRules(r, t.request_headers, [...p, "request_headers"]),
      response_headers: readRules(r, t.response_headers, [...p, "response_headers"]),
      host_rewrite: r.string(t.host_rewrite, [...p, "host_rewrite"]),
      x_forwarded: r.bool(t.x_forwarded, [...p, "x_forwarded"]),
      basic_auth: readUsers(r, t.basic_auth, [...p, "basic_auth"]),
    };
    if (name !== undefined && type !== undefined && local !== undefined) out.push(entry);
  });
  return out;
}

function readClient(r: ConfigReader, value: unknown): ClientInput | undefined {
  const path = ["client"];
  const t = r.table(value ?? {}, path, [
    "server",
    "token",
    "name",
    "bind",
    "tls",
    "reconnect",
    "connect_wait",
    "shutdown_timeout",
    "mappings",
    "local_connect_timeout",
    "udp_idle_timeout",
    ...TIMING_KEYS,
  ]);
  if (t === undefined) return undefined;
  let tls: ClientInput["tls"];
  if (typeof t.tls === "boolean") tls = { enabled: t.tls };
  else if (t.tls !== undefined) {
    const tp = [...path, "tls"];
    const tt = r.table(t.tls, tp, ["enabled", "ca", "server_name", "pin_sha256", "insecure"]);
    if (tt !== undefined) {
      tls = {
        enabled: r.bool(tt.enabled, [...tp, "enabled"]),
        ca: r.string(tt.ca, [...tp, "ca"]),
        server_name: r.string(tt.server_name, [...tp, "server_name"]),
        pin_sha256: r.string(tt.pin_sha256, [...tp, "pin_sha256"]),
        insecure: r.bool(tt.insecure, [...tp, "insecure"]),
      };
      if (tls.pin_sha256 !== undefined && !PIN_REGEXP.test(tls.pin_sha256)) {
        r.fail(
          [...tp, "pin_sha256"],
          "expected a SHA-256 fingerprint: 64 hex digits, optionally in colon-separated pairs",
        );
      }
      const ways = [tls.ca, tls.pin_sha256, tls.insecure ? true : undefined].filter((x) =>
        x !== undefined
      );
      if (ways.length > 1) {
        r.fail(tp, "choose one of ca, pin_sha256 and insecure: true");
      }
    }
  }
  let reconnect: ClientInput["reconnect"];
  if (t.reconnect !== undefined) {
    const rp = [...path, "reconnect"];
    const rt = r.table(t.reconnect, rp, ["initial_delay", "max_delay"]);
    if (rt !== undefined) {
      reconnect = compact({
        initial_delay: r.duration(rt.initial_delay, [...rp, "initial_delay"], 10),
        max_delay: r.duration(rt.max_delay, [...rp, "max_delay"], 10),
      });
    }
  }
  const token = r.string(t.token, [...path, "token"]);
  const name = r.string(t.name, [...path, "name"]);
  if (name !== undefined && !NAME_REGEXP.test(name)) {
    r.fail([...path, "name"], "expected 1-64 characters from A-Z a-z 0-9 _ . -");
  }
  return compact({
    server: r.address(t.server, [...path, "server"]),
    token: token === undefined ? undefined : new Secret(token),
    name,
    bind: t.bind === null ? null : r.address(t.bind, [...path, "bind"]),
    tls,
    reconnect,
    connect_wait: r.duration(t.connect_wait, [...path, "connect_wait"], 0),
    shutdown_timeout: r.duration(t.shutdown_timeout, [...path, "shutdown_timeout"], 0),
    mappings: readMappings(r, t.mappings, [...path, "mappings"]),
    local_connect_timeout: r.duration(
      t.local_connect_timeout,
      [...path, "local_connect_timeout"],
      10,
    ),
    udp_idle_timeout: r.duration(t.udp_idle_timeout, [...path, "udp_idle_timeout"], 100),
    ...readTiming(r, t, path),
  });
}

function readAdmin(r: ConfigReader, value: unknown): AdminInput | undefined {
  if (value === null) return {};
  const t = r.table(value, ["admin"], ["listen", "token", "hosts"]);
  if (t === undefined) return undefined;
  const token = r.string(t.token, ["admin", "token"]);
  if (token !== undefined && token.length < 8) {
    r.fail(["admin", "token"], "must be at least 8 characters");
  }
  const hosts = r.list(t.hosts, ["admin", "hosts"])?.map((v, i) => {
    const host = r.string(v, ["admin", "hosts", i]);
    if (host !== undefined && !ADMIN_HOST_REGEXP.test(host)) {
      r.fail(
        ["admin", "hosts", i],
        `expected a Host header value like "admin.example.com" or "10.0.0.5:8837", got ${
          JSON.stringify(host)
        }`,
      );
    }
    return host ?? "";
  });
  return compact({
    listen: r.address(t.listen, ["admin", "listen"]),
    token: token === undefined ? undefined : new Secret(token),
    hosts,
  });
}

function readLog(r: ConfigReader, value: unknown): LogInput | undefined {
  if (value === null) return {};
  const t = r.table(value, ["log"], ["level", "format"]);
  if (t === undefined) return undefined;
  return compact({
    level: r.oneOf(t.level, ["log", "level"], LOG_LEVELS),
    format: r.oneOf(t.format, ["log", "format"], LOG_FORMATS),
  });
}

/**
 * Validates a parsed document. Returns the checked input and every issue found;
 * the input is meaningful only when there are no issues.
 */
export function validateConfig(
  doc: unknown,
  locate: Locate = () => undefined,
): { input: ConfigInput; issues: ConfigIssue[] } {
  const r = new ConfigReader(locate);
  if (doc === null || doc === undefined) return { input: {}, issues: [] };
  const known = ["proxy", "server", "client", "stream", "http", "admin", "log"];
  const t = r.table(doc, [], known);
  if (t === undefined) return { input: {}, issues: r.issues };
  const input = compact({
    proxy: t.proxy === undefined ? undefined : readProxy(r, t.proxy),
    server: t.server === undefined ? undefined : readServer(r, t.server),
    client: t.client === undefined ? undefined : readClient(r, t.client),
    admin: t.admin === undefined ? undefined : readAdmin(r, t.admin),
    stream: t.stream === undefined ? undefined : readStreamSection(r, t.stream),
    http: t.http === undefined ? undefined : readHttpSection(r, t.http),
    log: t.log === undefined ? undefined : readLog(r, t.log),
  });
  return { input, issues: r.issues };
}

/** Rules that need defaults filled in (a default bind is loopback, for one). */
export function checkCompleteConfig(
  config: Config,
  locate: Locate = () => undefined,
): ConfigIssue[] {
  const r = new ConfigReader(locate);
  const proxy = config.proxy;
  if (proxy !== undefined) {
    const host = parseHostPort(proxy.bind).hostname;
    if (!isLoopbackHost(host) && proxy.users.length === 0 && !proxy.allow_open) {
      r.fail(
        ["proxy", "bind"],
        `refusing an open proxy on non-loopback address ${JSON.stringify(proxy.bind)}: ` +
          "add proxy.users, or set proxy.allow_open: true if anyone who can reach it may use it",
      );
    }
  }
  const admin = config.admin;
  if (
    admin !== undefined && admin.token === undefined &&
    !isLoopbackHost(parseHostPort(admin.listen).hostname)
  ) {
    r.fail(
      ["admin", "listen"],
      `refusing the control API on non-loopback address ${
        JSON.stringify(admin.listen)
      } without admin.token`,
    );
  }
  const server = config.server;
  if (server !== undefined) {
    if (server.tokens.length === 0) {
      r.fail(
        ["server", "tokens"],
        "the tunnel server needs at least one token (or the --token flag)",
      );
    }
    if (server.heartbeat_timeout_ms <= server.heartbeat_interval_ms) {
      r.fail(["server", "heartbeat_timeout"], "must be longer than heartbeat_interval");
    }
  }
  const client = config.client;
  if (client !== undefined && client.server === "") {
    r.fail(
      ["client", "server"],
      "is required: the tunnel server as host:port (or the --server flag)",
    );
  }
  if (client !== undefined && client.token.reveal() === "") {
    r.fail(["client", "token"], "is required (or the --token flag)");
  }
  if (client !== undefined && client.heartbeat_timeout_ms <= client.heartbeat_interval_ms) {
    r.fail(["client", "heartbeat_timeout"], "must be longer than heartbeat_interval");
  }
  if (client !== undefined && client.reconnect.max_delay_ms < client.reconnect.initial_delay_ms) {
    r.fail(["client", "reconnect", "max_delay"], "must be at least initial_delay");
  }
  return r.issues;
}

/**
 * Validates mappings given outside a file (the `--map` flag) exactly like
 * `client.mappings`; issues carry the path `--map[i]…`.
 */
export function validateMappings(
  raw: unknown[],
): { mappings: MappingInput[]; issues: ConfigIssue[] } {
  const r = new ConfigReader(() => undefined);
  const mappings = readMappings(r, raw, ["--map"]) ?? [];
  return { mappings, issues: r.issues };
}
