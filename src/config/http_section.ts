/**
 * The `http` section: the nginx-like reverse proxy and web server. Its types,
 * the reader that checks it (every problem with its path), and the one
 * function that fills its defaults and resolves inheritance
 * (http → server → location).
 *
 * Keys, with defaults (copied into config.example.yaml):
 *
 * ```yaml
 * http:
 *   # optional, default: []. Named upstream groups; proxy_pass "http://NAME" uses one.
 *   upstreams:
 *     - name: app                  # required
 *       strategy: round_robin      # see the upstream section docs
 *       servers: [{ addr: "127.0.0.1:9001" }]
 *   # optional, default: []. Request-rate zones for limit_req (nginx limit_req_zone).
 *   limit_req_zones:
 *     - name: perip                # required
 *       key: "$remote_addr"        # optional, default: "$remote_addr"; any variable text
 *       rate: "10r/s"              # required: "N r/s" or "N r/m"
 *       max_keys: 10000            # optional, default: 10000; least recently seen keys are evicted
 *   # optional, default: {}. Named matchers, used by locations as match: "@NAME".
 *   matchers:
 *     writes: { methods: [POST, PUT], hosts: ["api.example"], schemes: [https], client_ips: ["10.0.0.0/8"] }
 *   # optional. The access log, one `http_access` event per response, written after it.
 *   access_log:
 *     enabled: true                # optional, default: true
 *     # optional, default: the format below. Variables: see "Variables".
 *     format: '$remote_addr "$request" $status $bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_addr $upstream_response_time'
 *   # optional, default: 10000. Open client connections per listen address (plain
 *   # proxy and TLS addresses); more are closed at once (connection_rejected).
 *   max_connections: 10000
 *   # Inherited by every server and location unless they set their own:
 *   timeouts:
 *     client_header: 60s           # optional, default: 60s; TLS handshake, then whole request head (plain proxy and TLS addresses)
 *     client_body: 60s             # optional, default: 60s: gap between body reads
 *     keep_alive: 75s              # optional, default: 75s; idle between requests (plain proxy and TLS
 *                                  #   addresses; an HTTP/2 connection with no traffic either way)
 *     upstream_connect: 10s        # optional, default: 10s (with fetch, for TLS upstreams and the
 *                                  #   slow path: the header wait is upstream_connect + upstream_read)
 *     upstream_read: 60s           # optional, default: 60s; until the response header, and between body reads
 *     upstream_send: 60s           # optional, default: 60s; between chunks of a streamed request body
 *   max_body_size: 1MiB            # optional, default: 1MiB; larger request bodies get 413 (0 = no limit)
 *   allow: []                      # optional, default: [] (all). IPs or CIDRs, v4 and v6
 *   deny: []                       # optional, default: []. Checked before allow; 403
 *   request_headers: []            # optional, default: []. Rules {action, name, value}; appended per level
 *   response_headers: []           # optional, default: []
 *   servers:                       # required, at least one
 *     - listen: ["127.0.0.1:8080"] # optional, default: ["127.0.0.1:8080"] when listen_tls is empty
 *       listen_tls: []             # optional, default: []. Needs tls on every server listening there
 *       server_names: []           # optional, default: [] (any). "a.example", "*.example", "www.*", "~regex"
 *       default_server: false      # optional, default: false; else the first server on an address is its default
 *       tls: { cert: FILE, key: FILE }  # required with listen_tls; chosen by SNI, the default server's for no SNI
 *       root: DIR                  # optional; the file root of its file_server locations
 *       # ...and timeouts, max_body_size, allow, deny, request_headers, response_headers (inherited)
 *       locations:                 # optional, default: [] (every request gets 404)
 *         - path: "/"              # required: "= /x" exact, "^~ /x" preferential prefix, "~ re" regex,
 *                                  #   "~* re" case-insensitive regex, "/x" prefix, "@name" named (try_files only)
 *           match: "@writes"       # optional: a named matcher or an inline one (methods, hosts, schemes, client_ips)
 *           # exactly one of proxy_pass, file_server, static_response:
 *           proxy_pass: "http://app"   # URL; its host is an upstream name or host:port. A path replaces the matched prefix
 *           file_server:
 *             root: DIR            # optional, default: the server's root; the URI is appended
 *             alias: DIR           # optional: replaces the matched prefix (nginx alias); not with root
 *             index: [index.html]  # optional, default: [index.html]
 *             browse: false        # optional, default: false; HTML-escaped directory listings
 *             hidden: [".*"]       # optional, default: [".*"]; name globs answered with 404
 *             cache_control: "max-age=3600"   # optional, default: none
 *             precompressed: true  # optional, default: true; serve FILE.br / FILE.gz when accepted
 *             gzip: true           # optional, default: true; compress text types on the fly
 *             mime_types: {}       # optional: extra "ext": "type" pairs
 *             default_type: application/octet-stream  # optional
 *           static_response:
 *             status: 200          # optional, default: 200
 *             headers: {}          # optional: name: value (variables expanded)
 *             body: ""             # optional, default: ""; variables expanded
 *             content_type: "text/plain; charset=utf-8"   # optional
 *           try_files: ["$uri", "$uri/", "=404"]  # optional; needs file_server. Last: "=CODE", "@name" or a URI
 *           limit_req: { zone: perip, burst: 0, nodelay: false, status: 429 }  # optional
 *           websocket: false       # optional, default: false; proxy WebSocket upgrades (needs proxy_pass)
 *           preserve_host: true    # optional, default: true; false sends the upstream's host:port
 *           x_forwarded: true      # optional, default: true; X-Forwarded-For/-Proto/-Host
 *           next_upstream_tries: 0 # optional, default: 0 (every server of the group once)
 *           # ...and timeouts, max_body_size, allow, deny, request_headers, response_headers (inherited)
 * ```
 *
 * Variables (in header values, static bodies, try_files, limit_req keys and
 * the access log): `$remote_addr`, `$remote_port`, `$host`, `$hostname` (Host
 * with port), `$scheme`, `$request_method`, `$request_uri`, `$uri`, `$args`,
 * `$server_name`, `$server_port`, `$http_NAME` (request header), `$request`;
 * access log only: `$status`, `$bytes_sent`, `$request_time`,
 * `$upstream_addr`, `$upstream_status`, `$upstream_response_time`, `$time_iso8601`.
 *
 * @module
 */
import { compact, ConfigReader, describe, type KeyPath } from "./reader.ts";
import type { HeaderRuleConfig } from "./types.ts";
import { PROTECTED_HEADER_NAMES } from "../mapping/header_rules.ts";
import { parseCidr } from "../reverse/ip_rules.ts";
import {
  completeUpstreamGroup,
  readUpstreamGroups,
  type UpstreamGroupConfig,
  type UpstreamGroupInput,
} from "./upstream_section.ts";

export type { HeaderRuleConfig, UpstreamGroupConfig };

// ---------------------------------------------------------------- defaults

export const DEFAULT_HTTP_LISTEN = "127.0.0.1:8080";
export const DEFAULT_CLIENT_HEADER_TIMEOUT_MS = 60_000;
export const DEFAULT_CLIENT_BODY_TIMEOUT_MS = 60_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 75_000;
export const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_UPSTREAM_READ_TIMEOUT_MS = 60_000;
export const DEFAULT_UPSTREAM_SEND_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_BODY_SIZE = 1024 * 1024;
export const DEFAULT_LIMIT_REQ_KEY = "$remote_addr";
export const DEFAULT_LIMIT_REQ_MAX_KEYS = 10_000;
export const DEFAULT_LIMIT_REQ_STATUS = 429;
export const DEFAULT_INDEX: readonly string[] = ["index.html"];
export const DEFAULT_HIDDEN: readonly string[] = [".*"];
export const DEFAULT_MIME_TYPE = "application/octet-stream";
export const DEFAULT_STATIC_CONTENT_TYPE = "text/plain; charset=utf-8";
export const DEFAULT_HTTP_MAX_CONNECTIONS = 10_000;
export const DEFAULT_ACCESS_LOG_FORMAT =
  '$remote_addr "$request" $status $bytes_sent "$http_referer" "$http_user_agent" ' +
  "$request_time $upstream_addr $upstream_response_time";

// ---------------------------------------------------------------- types

/** How a location's path pattern matches (nginx `location` modifiers). */
export type LocationKind = "exact" | "prefix_priority" | "regex" | "regex_i" | "prefix" | "named";

/** A parsed location pattern. */
export interface LocationPattern {
  kind: LocationKind;
  /** The path, regex source, or name (without `@`). */
  value: string;
}

/** Optional extra conditions on a location. `undefined` = any. */
export interface MatcherConfig {
  /** Upper-case methods. */
  methods: readonly string[] | undefined;
  /** Host patterns like server_names. */
  hosts: readonly string[] | undefined;
  schemes: readonly ("http" | "https")[] | undefined;
  /** IPs or CIDRs. */
  client_ips: readonly string[] | undefined;
}

/** Client and upstream timeouts in milliseconds. */
export interface HttpTimeouts {
  client_header_ms: number;
  client_body_ms: number;
  keep_alive_ms: number;
  upstream_connect_ms: number;
  upstream_read_ms: number;
  upstream_send_ms: number;
}

/** A named request-rate zone. */
export interface LimitReqZoneConfig {
  name: string;
  /** Variable text whose expansion is the key. */
  key: string;
  /** Requests per second (a rate of "30r/m" is 0.5). */
  rate_per_second: number;
  /** Keys tracked at most; the least recently seen is evicted. */
  max_keys: number;
}

/** A location's use of a zone. */
export interface LimitReqConfig {
  zone: string;
  burst: number;
  nodelay: boolean;
  status: number;
}

/** Static file serving of a location. */
export interface FileServerConfig {
  /** Root the URI is appended to; `undefined` when `alias` is used. */
  root: string | undefined;
  /** Directory that replaces the matched prefix. */
  alias: string | undefined;
  index: readonly string[];
  browse: boolean;
  hidden: readonly string[];
  cache_control: string | undefined;
  precompressed: boolean;
  gzip: boolean;
  mime_types: Readonly<Record<string, string>>;
  default_type: string;
}

/** A fixed reply. */
export interface StaticResponseConfig {
  status: number;
  headers: Readonly<Record<string, string>>;
  body: string;
  content_type: string;
}

/** Where try_files goes when no candidate exists. */
export type TryFilesFallback =
  | { kind: "status"; status: number }
  | { kind: "named"; name: string }
  | { kind: "uri"; uri: string };

/** nginx `try_files`. */
export interface TryFilesConfig {
  candidates: readonly string[];
  fallback: TryFilesFallback;
}

/** One location, with every inherited value resolved. */
export interface LocationConfig {
  /** As written, e.g. `"^~ /static/"`. */
  path: string;
  pattern: LocationPattern;
  match: MatcherConfig | undefined;
  proxy_pass: string | undefined;
  file_server: FileServerConfig | undefined;
  static_response: StaticResponseConfig | undefined;
  try_files: TryFilesConfig | undefined;
  limit_req: LimitReqConfig | undefined;
  websocket: boolean;
  preserve_host: boolean;
  x_forwarded: boolean;
  /** 0 = every server of the group once. */
  next_upstream_tries: number;
  timeouts: HttpTimeouts;
  /** 0 = no limit. */
  max_body_size: number;
  allow: readonly string[];
  deny: readonly string[];
  /** http, then server, then location rules, in order. */
  request_headers: readonly HeaderRuleConfig[];
  response_headers: readonly HeaderRuleConfig[];
}

/** A TLS certificate pair (file paths). */
export interface TlsFilesConfig {
  cert: string;
  key: string;
}

/** A virtual server. */
export interface VirtualServerConfig {
  listen: readonly string[];
  listen_tls: readonly string[];
  server_names: readonly string[];
  default_server: boolean;
  tls: TlsFilesConfig | undefined;
  root: string | undefined;
  locations: readonly LocationConfig[];
}

/** The access log. */
export interface AccessLogConfig {
  enabled: boolean;
  format: string;
}

/** The complete `http` section. */
export interface HttpSectionConfig {
  upstreams: readonly UpstreamGroupConfig[];
  limit_req_zones: readonly LimitReqZoneConfig[];
  access_log: AccessLogConfig;
  /** Open client connections per plain-front or TLS listen address. */
  max_connections: number;
  servers: readonly VirtualServerConfig[];
}

// ---------------------------------------------------------------- input

/** Keys that servers and locations inherit. */
export interface InheritedInput {
  timeouts?: Partial<HttpTimeouts> | undefined;
  max_body_size?: number | undefined;
  allow?: string[] | undefined;
  deny?: string[] | undefined;
  request_headers?: HeaderRuleConfig[] | undefined;
  response_headers?: HeaderRuleConfig[] | undefined;
}

export interface FileServerInput {
  root?: string | undefined;
  alias?: string | undefined;
  index?: string[] | undefined;
  browse?: boolean | undefined;
  hidden?: string[] | undefined;
  cache_control?: string | undefined;
  precompressed?: boolean | undefined;
  gzip?: boolean | undefined;
  mime_types?: Record<string, string> | undefined;
  default_type?: string | undefined;
}

export interface StaticResponseInput {
  status?: number | undefined;
  headers?: Record<string, string> | undefined;
  body?: string | undefined;
  content_type?: string | undefined;
}

export interface LimitReqInput {
  zone: string;
  burst?: number | undefined;
  nodelay?: boolean | undefined;
  status?: number | undefined;
}

export interface LimitReqZoneInput {
  name: string;
  key?: string | undefined;
  rate_per_second: number;
  max_keys?: number | undefined;
}

export interface LocationInput extends InheritedInput {
  path: string;
  pattern: LocationPattern;
  /** A matcher name (resolved by complete) or an inline matcher. */
  match?: string | MatcherConfig | undefined;
  proxy_pass?: string | undefined;
  file_server?: FileServerInput | undefined;
  static_response?: StaticResponseInput | undefined;
  try_files?: TryFilesConfig | undefined;
  limit_req?: LimitReqInput | undefined;
  websocket?: boolean | undefined;
  preserve_host?: boolean | undefined;
  x_forwarded?: boolean | undefined;
  next_upstream_tries?: number | undefined;
}

export interface VirtualServerInput extends InheritedInput {
  listen?: string[] | undefined;
  listen_tls?: string[] | undefined;
  server_names?: string[] | undefined;
  default_server?: boolean | undefined;
  tls?: TlsFilesConfig | undefined;
  root?: string | undefined;
  locations?: LocationInput[] | undefined;
}

export interface HttpSectionInput extends InheritedInput {
  upstreams?: UpstreamGroupInput[] | undefined;
  limit_req_zones?: LimitReqZoneInput[] | undefined;
  matchers?: Record<string, MatcherConfig> | undefined;
  access_log?: { enabled?: boolean | undefined; format?: string | undefined } | undefined;
  max_connections?: number | undefined;
  servers?: VirtualServerInput[] | undefined;
}

// ---------------------------------------------------------------- reader

const NAME_REGEXP = /^[A-Za-z0-9_.-]{1,64}$/;
const HEADER_NAME_REGEXP = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const METHOD_REGEXP = /^[A-Z]{1,20}$/;
const RULE_ACTIONS = ["set", "add", "remove", "set_if_absent"] as const;
const INHERITED_KEYS = [
  "timeouts",
  "max_body_size",
  "allow",
  "deny",
  "request_headers",
  "response_headers",
] as const;

/**
 * Parses a location path: `= /x`, `^~ /x`, `~ re`, `~* re`, `@name` or `/x`.
 * Throws `SyntaxError`.
 */
export function parseLocationPattern(text: string): LocationPattern {
  const m = /^(=|\^~|~\*|~)\s+(.+)$/.exec(text.trim());
  if (m) {
    const value = m[2]!;
    switch (m[1]) {
      case "=":
      case "^~":
        if (!value.startsWith("/")) {
          throw new SyntaxError(`expected a path starting with "/" after "${m[1]}"`);
        }
        return { kind: m[1] === "=" ? "exact" : "prefix_priority", value };
      default:
        try {
          new RegExp(value, m[1] === "~*" ? "i" : "");
        } catch (err) {
          throw new SyntaxError(`invalid regular expression: ${(err as Error).message}`);
        }
        return { kind: m[1] === "~*" ? "regex_i" : "regex", value };
    }
  }
  const t = text.trim();
  if (t.startsWith("@") && NAME_REGEXP.test(t.slice(1))) {
    return { kind: "named", value: t.slice(1) };
  }
  if (t.startsWith("/")) return { kind: "prefix", value: t };
  throw new SyntaxError(
    `expected "/prefix", "= /exact", "^~ /prefix", "~ regex", "~* regex" or "@name", got ${
      JSON.stringify(text)
    }`,
  );
}

/** Parses `"10r/s"` or `"30r/m"` into requests per second. Throws `SyntaxError`. */
export function parseRate(value: unknown): number {
  if (typeof value === "string") {
    const m = /^(\d+(?:\.\d+)?)\s*r\/(s|m)$/.exec(value.trim());
    if (m && Number(m[1]) > 0) return Number(m[1]) / (m[2] === "m" ? 60 : 1);
  }
  throw new SyntaxError(`expected a rate like "10r/s" or "30r/m", got ${describe(value)}`);
}

function stringList(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
  check?: (s: string, p: KeyPath) => void,
): string[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  const out: string[] = [];
  list.forEach((item, i) => {
    const s = r.string(item, [...path, i]);
    if (s === undefined) {
      if (item === undefined) r.fail([...path, i], "expected a non-empty string");
      return;
    }
    check?.(s, [...path, i]);
    out.push(s);
  });
  return out;
}

function cidrList(r: ConfigReader, value: unknown, path: KeyPath): string[] | undefined {
  return stringList(r, value, path, (s, p) => {
    try {
      parseCidr(s);
    } catch (err) {
      r.fail(p, (err as Error).message);
    }
  });
}

function readRules(r: ConfigReader, value: unknown, path: KeyPath): HeaderRuleConfig[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  if (list.length > 64) return r.fail(path, "expected at most 64 rules");
  const out: HeaderRuleConfig[] = [];
  list.forEach((item, i) => {
    const p = [...path, i];
    const t = r.table(item, p, ["action", "name", "value"]);
    if (t === undefined) return;
    if (t.action === undefined) r.fail([...p, "action"], "is required");
    const action = r.oneOf(t.action, [...p, "action"], RULE_ACTIONS);
    if (t.name === undefined) r.fail([...p, "name"], "is required");
    const name = r.string(t.name, [...p, "name"]);
    if (name !== undefined && !HEADER_NAME_REGEXP.test(name)) {
      r.fail([...p, "name"], "expected an HTTP header name");
    }
    if (name !== undefined && PROTECTED_HEADER_NAMES.has(name.toLowerCase())) {
      r.fail([...p, "name"], `"${name}" frames the message and cannot be changed by a rule`);
    }
    const v = typeof t.value === "number" ? String(t.value) : t.value;
    if (v !== undefined && typeof v !== "string") {
      r.fail([...p, "value"], `expected a string, got ${describe(v)}`);
    }
    if (action !== undefined && action !== "remove" && v === undefined) {
      r.fail([...p, "value"], `is required for action "${action}"`);
    }
    if (typeof v === "string" && (/[\r\n\0]/.test(v) || v.length > 4096)) {
      r.fail([...p, "value"], "must be at most 4096 characters without line breaks");
    }
    if (action !== undefined && name !== undefined) {
      out.push(action === "remove" ? { action, name } : { action, name, value: String(v ?? "") });
    }
  });
  return out;
}

function readTimeouts(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): Partial<HttpTimeouts> | undefined {
  if (value === undefined) return undefined;
  const keys = [
    "client_header",
    "client_body",
    "keep_alive",
    "upstream_connect",
    "upstream_read",
    "upstream_send",
  ] as const;
  const t = r.table(value, path, keys);
  if (t === undefined) return undefined;
  const out: Partial<HttpTimeouts> = {};
  for (const k of keys) {
    const ms = r.duration(t[k], [...path, k]);
    if (ms !== undefined) out[`${k}_ms`] = ms;
  }
  return out;
}

function readInherited(
  r: ConfigReader,
  t: Record<string, unknown>,
  path: KeyPath,
): InheritedInput {
  return compact({
    timeouts: readTimeouts(r, t.timeouts, [...path, "timeouts"]),
    max_body_size: r.size(t.max_body_size, [...path, "max_body_size"], 0, 2 ** 50),
    allow: cidrList(r, t.allow, [...path, "allow"]),
    deny: cidrList(r, t.deny, [...path, "deny"]),
    request_headers: readRules(r, t.request_headers, [...path, "request_headers"]),
    response_headers: readRules(r, t.response_headers, [...path, "response_headers"]),
  });
}

function readMatcher(r: ConfigReader, value: unknown, path: KeyPath): MatcherConfig | undefined {
  const t = r.table(value, path, ["methods", "hosts", "schemes", "client_ips"]);
  if (t === undefined) return undefined;
  const schemes = r.list(t.schemes, [...path, "schemes"])?.map((s, i) =>
    r.oneOf(s, [...path, "schemes", i], ["http", "https"] as const)
  ).filter((s): s is "http" | "https" => s !== undefined);
  return {
    methods: stringList(r, t.methods, [...path, "methods"], (s, p) => {
      if (!METHOD_REGEXP.test(s)) r.fail(p, `expected an upper-case method like "GET", got "${s}"`);
    }),
    hosts: stringList(r, t.hosts, [...path, "hosts"], (s, p) => checkServerName(r, s, p)),
    schemes,
    client_ips: cidrList(r, t.client_ips, [...path, "client_ips"]),
  };
}

function checkServerName(r: ConfigReader, s: string, p: KeyPath): void {
  if (s.startsWith("~")) {
    try {
      new RegExp(s.slice(1), "i");
    } catch (err) {
      r.fail(p, `invalid regular expression: ${(err as Error).message}`);
    }
    return;
  }
  if (!/^(\*\.)?[A-Za-z0-9_.:\[\]-]+(\.\*)?$/.test(s) && s !== "*") {
    r.fail(p, `expected a host name like "a.example", "*.example" or "www.*", got "${s}"`);
  }
}

function readFileServer(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): FileServerInput | undefined {
  const t = r.table(value ?? {}, path, [
    "root",
    "alias",
    "index",
    "browse",
    "hidden",
    "cache_control",
    "precompressed",
    "gzip",
    "mime_types",
    "default_type",
  ]);
  if (t === undefined) return undefined;
  let mime: Record<string, string> | undefined;
  if (t.mime_types !== undefined) {
    const m = r.table(t.mime_types, [...path, "mime_types"], Object.keys(t.mime_types ?? {}));
    if (m !== undefined) {
      mime = {};
      for (const [ext, type] of Object.entries(m)) {
        const s = r.string(type, [...path, "mime_types", ext]);
        if (s !== undefined) mime[ext.replace(/^\./, "").toLowerCase()] = s;
      }
    }
  }
  const out: FileServerInput = compact({
    root: r.string(t.root, [...path, "root"]),
    alias: r.string(t.alias, [...path, "alias"]),
    index: stringList(r, t.index, [...path, "index"], (s, p) => {
      if (s.includes("/") || s.includes("\\") || s === "." || s === "..") {
        r.fail(p, "expected a file name");
      }
    }),
    browse: r.bool(t.browse, [...path, "browse"]),
    hidden: stringList(r, t.hidden, [...path, "hidden"]),
    cache_control: r.string(t.cache_control, [...path, "cache_control"]),
    precompressed: r.bool(t.precompressed, [...path, "precompressed"]),
    gzip: r.bool(t.gzip, [...path, "gzip"]),
    mime_types: mime,
    default_type: r.string(t.default_type, [...path, "default_type"]),
  });
  if (out.root !== undefined && out.alias !== undefined) {
    r.fail([...path, "alias"], "cannot be used together with root");
  }
  return out;
}

function readStaticResponse(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): StaticResponseInput | undefined {
  const t = r.table(value ?? {}, path, ["status", "headers", "body", "content_type"]);
  if (t === undefined) return undefined;
  let headers: Record<string, string> | undefined;
  if (t.headers !== undefined) {
    const h = r.table(t.headers, [...path, "headers"], Object.keys(t.headers ?? {}));
    if (h !== undefined) {
      headers = {};
      for (const [name, v] of Object.entries(h)) {
        const p = [...path, "headers", name];
        if (!HEADER_NAME_REGEXP.test(name) || PROTECTED_HEADER_NAMES.has(name.toLowerCase())) {
          r.fail(p, "expected a header name that does not frame the message");
          continue;
        }
        const s = typeof v === "number" ? String(v) : r.string(v, p);
        if (s !== undefined && /[\r\n\0]/.test(s)) r.fail(p, "must not contain line breaks");
        else if (s !== undefined) headers[name] = s;
      }
    }
  }
  const body = t.body === undefined
    ? undefined
    : typeof t.body === "string"
    ? t.body
    : r.fail([...path, "body"], `expected a string, got ${describe(t.body)}`);
  return compact({
    status: r.int(t.status, [...path, "status"], 100, 999),
    headers,
    body,
    content_type: r.string(t.content_type, [...path, "content_type"]),
  });
}

function readTryFiles(r: ConfigReader, value: unknown, path: KeyPath): TryFilesConfig | undefined {
  const list = stringList(r, value, path);
  if (list === undefined) return undefined;
  if (list.length < 2) {
    return r.fail(
      path,
      "expected at least one candidate and a last fallback (=CODE, @name or URI)",
    );
  }
  const last = list[list.length - 1]!;
  let fallback: TryFilesFallback | undefined;
  const status = /^=(\d{3})$/.exec(last);
  if (status) fallback = { kind: "status", status: Number(status[1]) };
  else if (last.startsWith("@") && NAME_REGEXP.test(last.slice(1))) {
    fallback = { kind: "named", name: last.slice(1) };
  } else if (last.startsWith("/")) fallback = { kind: "uri", uri: last };
  if (fallback === undefined) {
    return r.fail([...path, list.length - 1], `expected "=CODE", "@name" or a URI, got "${last}"`);
  }
  list.slice(0, -1).forEach((c, i) => {
    if (!c.startsWith("/") && !c.startsWith("$")) {
      r.fail([...path, i], `expected a path starting with "/" or a variable, got "${c}"`);
    }
  });
  return { candidates: list.slice(0, -1), fallback };
}

function readLimitReq(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): LocationInput["limit_req"] {
  const t = r.table(value, path, ["zone", "burst", "nodelay", "status"]);
  if (t === undefined) return undefined;
  if (t.zone === undefined) r.fail([...path, "zone"], "is required");
  const zone = r.string(t.zone, [...path, "zone"]);
  const out = compact({
    burst: r.int(t.burst, [...path, "burst"], 0, 1_000_000),
    nodelay: r.bool(t.nodelay, [...path, "nodelay"]),
    status: r.int(t.status, [...path, "status"], 400, 599),
  });
  return zone === undefined ? undefined : { zone, ...out };
}

const LOCATION_KEYS = [
  "path",
  "match",
  "proxy_pass",
  "file_server",
  "static_response",
  "try_files",
  "limit_req",
  "websocket",
  "preserve_host",
  "x_forwarded",
  "next_upstream_tries",
  ...INHERITED_KEYS,
];

function readProxyPass(r: ConfigReader, value: unknown, path: KeyPath): string | undefined {
  const s = r.string(value, path);
  if (s === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return r.fail(path, `expected a URL like "http://app" or "http://127.0.0.1:9000/", got "${s}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return r.fail(path, `expected an http:// or https:// URL, got "${s}"`);
  }
  if (url.search !== "" || url.hash !== "" || url.username !== "") {
    return r.fail(path, "expected no query, fragment or user info");
  }
  return s;
}

function readLocation(r: ConfigReader, value: unknown, path: KeyPath): LocationInput | undefined {
  const t = r.table(value, path, LOCATION_KEYS);
  if (t === undefined) return undefined;
  if (t.path === undefined) r.fail([...path, "path"], "is required");
  const pathText = r.string(t.path, [...path, "path"]);
  let pattern: LocationPattern | undefined;
  if (pathText !== undefined) {
    try {
      pattern = parseLocationPattern(pathText);
    } catch (err) {
      r.fail([...path, "path"], (err as Error).message);
    }
  }
  let match: string | MatcherConfig | undefined;
  if (typeof t.match === "string") {
    if (!t.match.startsWith("@") || !NAME_REGEXP.test(t.match.slice(1))) {
      r.fail([...path, "match"], `expected "@name" or a matcher mapping, got "${t.match}"`);
    } else match = t.match.slice(1);
  } else if (t.match !== undefined) match = readMatcher(r, t.match, [...path, "match"]);
  const proxy_pass = readProxyPass(r, t.proxy_pass, [...path, "proxy_pass"]);
  const file_server = t.file_server === undefined
    ? undefined
    : readFileServer(r, t.file_server, [...path, "file_server"]);
  const static_response = t.static_response === undefined
    ? undefined
    : readStaticResponse(r, t.static_response, [...path, "static_response"]);
  const handlers = [t.proxy_pass, t.file_server, t.static_response].filter((h) => h !== undefined);
  if (handlers.length !== 1 && pattern !== undefined) {
    r.fail(
      path,
      handlers.length === 0
        ? "expected one of proxy_pass, file_server or static_response"
        : "expected only one of proxy_pass, file_server or static_response",
    );
  }
  const try_files = readTryFiles(r, t.try_files, [...path, "try_files"]);
  if (t.try_files !== undefined && t.file_server === undefined) {
    r.fail([...path, "try_files"], "needs file_server on the same location");
  }
  const websocket = r.bool(t.websocket, [...path, "websocket"]);
  if (websocket === true && t.proxy_pass === undefined) {
    r.fail([...path, "websocket"], "needs proxy_pass on the same location");
  }
  if (
    proxy_pass !== undefined && pattern !== undefined &&
    (pattern.kind === "regex" || pattern.kind === "regex_i" || pattern.kind === "named")
  ) {
    if (/^[a-z]+:\/\/[^/]+\/./.test(proxy_pass)) {
      r.fail([...path, "proxy_pass"], "cannot have a path in a regex or named location");
    }
  }
  if (
    file_server?.alias !== undefined && pattern !== undefined &&
    pattern.kind !== "prefix" && pattern.kind !== "prefix_priority" && pattern.kind !== "exact"
  ) {
    r.fail([...path, "file_server", "alias"], "needs a prefix or exact location");
  }
  if (pathText === undefined || pattern === undefined) return undefined;
  return compact({
    path: pathText,
    pattern,
    match,
    proxy_pass,
    file_server,
    static_response,
    try_files,
    limit_req: t.limit_req === undefined
      ? undefined
      : readLimitReq(r, t.limit_req, [...path, "limit_req"]),
    websocket,
    preserve_host: r.bool(t.preserve_host, [...path, "preserve_host"]),
    x_forwarded: r.bool(t.x_forwarded, [...path, "x_forwarded"]),
    next_upstream_tries: r.int(t.next_upstream_tries, [...path, "next_upstream_tries"], 0, 100),
    ...readInherited(r, t, path),
  });
}

const SERVER_KEYS = [
  "listen",
  "listen_tls",
  "server_names",
  "default_server",
  "tls",
  "root",
  "locations",
  ...INHERITED_KEYS,
];

function addressList(r: ConfigReader, value: unknown, path: KeyPath): string[] | undefined {
  const list = r.list(value, path);
  if (list === undefined) return undefined;
  const out: string[] = [];
  list.forEach((item, i) => {
    const a = r.address(item, [...path, i]);
    if (a !== undefined) out.push(a);
  });
  return out;
}

/** Names other parts of the section define, for reference checks. */
interface SectionNames {
  matchers: ReadonlySet<string>;
  zones: ReadonlySet<string>;
}

function readServerEntry(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
  names: SectionNames,
): VirtualServerInput | undefined {
  const t = r.table(value, path, SERVER_KEYS);
  if (t === undefined) return undefined;
  let tls: TlsFilesConfig | undefined;
  if (t.tls !== undefined) {
    const tt = r.table(t.tls, [...path, "tls"], ["cert", "key"]);
    if (tt !== undefined) {
      if (tt.cert === undefined) r.fail([...path, "tls", "cert"], "is required");
      if (tt.key === undefined) r.fail([...path, "tls", "key"], "is required");
      const cert = r.string(tt.cert, [...path, "tls", "cert"]);
      const key = r.string(tt.key, [...path, "tls", "key"]);
      if (cert !== undefined && key !== undefined) tls = { cert, key };
    }
  }
  const listen_tls = addressList(r, t.listen_tls, [...path, "listen_tls"]);
  if (listen_tls !== undefined && listen_tls.length > 0 && t.tls === undefined) {
    r.fail([...path, "tls"], "is required with listen_tls (cert and key files)");
  }
  const locList = r.list(t.locations, [...path, "locations"]);
  const locations: LocationInput[] = [];
  const seen = new Set<string>();
  const named = new Set<string>();
  const fallbacks: [KeyPath, string][] = [];
  const serverRoot = typeof t.root === "string" ? t.root : undefined;
  locList?.forEach((item, i) => {
    const lp = [...path, "locations", i];
    const l = readLocation(r, item, lp);
    if (l === undefined) return;
    const key = `${l.pattern.kind} ${l.pattern.value} ${JSON.stringify(l.match ?? null)}`;
    if (seen.has(key)) r.fail([...lp, "path"], `duplicate location "${l.path}"`);
    seen.add(key);
    if (l.pattern.kind === "named") named.add(l.pattern.value);
    if (typeof l.match === "string" && !names.matchers.has(l.match)) {
      r.fail([...lp, "match"], `unknown matcher "@${l.match}" (http.matchers)`);
    }
    if (l.limit_req !== undefined && !names.zones.has(l.limit_req.zone)) {
      r.fail(
        [...lp, "limit_req", "zone"],
        `unknown zone "${l.limit_req.zone}" (http.limit_req_zones)`,
      );
    }
    if (l.try_files?.fallback.kind === "named") {
      fallbacks.push([[...lp, "try_files"], l.try_files.fallback.name]);
    }
    const fileRoot = l.file_server?.root ?? l.file_server?.alias ?? serverRoot;
    if (l.file_server !== undefined && fileRoot === undefined) {
      r.fail([...lp, "file_server", "root"], "is required (or root on the server)");
    }
    locations.push(l);
  });
  for (const [p, name] of fallbacks) {
    if (!named.has(name)) r.fail(p, `unknown named location "@${name}" in this server`);
  }
  return compact({
    listen: addressList(r, t.listen, [...path, "listen"]),
    listen_tls,
    server_names: stringList(
      r,
      t.server_names,
      [...path, "server_names"],
      (s, p) => checkServerName(r, s, p),
    ),
    default_server: r.bool(t.default_server, [...path, "default_server"]),
    tls,
    root: r.string(t.root, [...path, "root"]),
    locations: locList === undefined ? undefined : locations,
    ...readInherited(r, t, path),
  });
}

/**
 * Reads and checks the `http` section: unknown keys, types, references
 * (upstream, zone, matcher and named-location names) and listener conflicts,
 * each problem reported on `r` with its path. `undefined` when the section is
 * unusable.
 */
export function readHttpSection(r: ConfigReader, value: unknown): HttpSectionInput | undefined {
  const path: KeyPath = ["http"];
  const t = r.table(value ?? {}, path, [
    "upstreams",
    "limit_req_zones",
    "matchers",
    "access_log",
    "max_connections",
    "servers",
    ...INHERITED_KEYS,
  ]);
  if (t === undefined) return undefined;

  const upstreams = t.upstreams === undefined
    ? []
    : readUpstreamGroups(r, t.upstreams, [...path, "upstreams"]);

  const zones: NonNullable<HttpSectionInput["limit_req_zones"]> = [];
  r.list(t.limit_req_zones, [...path, "limit_req_zones"])?.forEach((item, i) => {
    const p = [...path, "limit_req_zones", i];
    const z = r.table(item, p, ["name", "key", "rate", "max_keys"]);
    if (z === undefined) return;
    if (z.name === undefined) r.fail([...p, "name"], "is required");
    if (z.rate === undefined) r.fail([...p, "rate"], "is required");
    const name = r.string(z.name, [...p, "name"]);
    if (name !== undefined && !NAME_REGEXP.test(name)) r.fail([...p, "name"], "expected a name");
    if (name !== undefined && zones.some((o) => o.name === name)) {
      r.fail([...p, "name"], `duplicate zone "${name}"`);
    }
    let rate: number | undefined;
    if (z.rate !== undefined) {
      try {
        rate = parseRate(z.rate);
      } catch (err) {
        r.fail([...p, "rate"], (err as Error).message);
      }
    }
    const key = r.string(z.key, [...p, "key"]);
    const max_keys = r.int(z.max_keys, [...p, "max_keys"], 1, 10_000_000);
    if (name !== undefined && rate !== undefined) {
      zones.push(compact({ name, rate_per_second: rate, key, max_keys }));
    }
  });

  const matchers: Record<string, MatcherConfig> = {};
  if (t.matchers !== undefined) {
    const m = r.table(t.matchers, [...path, "matchers"], Object.keys(t.matchers ?? {}));
    for (const [name, v] of Object.entries(m ?? {})) {
      if (!NAME_REGEXP.test(name)) r.fail([...path, "matchers", name], "expected a name");
      const matcher = readMatcher(r, v, [...path, "matchers", name]);
      if (matcher !== undefined) matchers[name] = matcher;
    }
  }

  let access_log: HttpSectionInput["access_log"];
  if (t.access_log !== undefined) {
    const a = r.table(t.access_log, [...path, "access_log"], ["enabled", "format"]);
    if (a !== undefined) {
      access_log = compact({
        enabled: r.bool(a.enabled, [...path, "access_log", "enabled"]),
        format: r.string(a.format, [...path, "access_log", "format"]),
      });
    }
  }

  if (t.servers === undefined) r.fail([...path, "servers"], "is required (at least one server)");
  const serverList = r.list(t.servers, [...path, "servers"]);
  if (serverList !== undefined && serverList.length === 0) {
    r.fail([...path, "servers"], "expected at least one server");
  }
  const servers: (VirtualServerInput | undefined)[] = (serverList ?? []).map((item, i) =>
    readServerEntry(r, item, [...path, "servers", i], {
      matchers: new Set(Object.keys(matchers)),
      zones: new Set(zones.map((z) => z.name)),
    })
  );

  // Cross references and listener conflicts.
  const plain = new Map<string, number>();
  const tlsAddrs = new Map<string, number>();
  servers.forEach((s, i) => {
    if (s === undefined) return;
    const sp = [...path, "servers", i];
    for (const a of s.listen ?? (s.listen_tls?.length ? [] : [DEFAULT_HTTP_LISTEN])) {
      if (tlsAddrs.has(a)) r.fail([...sp, "listen"], `"${a}" is a TLS address of another server`);
      plain.set(a, i);
    }
    for (const a of s.listen_tls ?? []) {
      if (plain.has(a)) r.fail([...sp, "listen_tls"], `"${a}" is a plain address of a server`);
      tlsAddrs.set(a, i);
    }
  });

  return compact({
    upstreams,
    limit_req_zones: zones,
    matchers,
    access_log,
    max_connections: r.int(t.max_connections, [...path, "max_connections"], 1, 1_000_000),
    servers: servers.filter((s): s is VirtualServerInput => s !== undefined),
    ...readInherited(r, t, path),
  });
}

// ---------------------------------------------------------------- complete

function completeTimeouts(...levels: (Partial<HttpTimeouts> | undefined)[]): HttpTimeouts {
  const pick = <K extends keyof HttpTimeouts>(k: K, d: number): number => {
    for (let i = levels.length - 1; i >= 0; i--) {
      const v = levels[i]?.[k];
      if (v !== undefined) return v;
    }
    return d;
  };
  return {
    client_header_ms: pick("client_header_ms", DEFAULT_CLIENT_HEADER_TIMEOUT_MS),
    client_body_ms: pick("client_body_ms", DEFAULT_CLIENT_BODY_TIMEOUT_MS),
    keep_alive_ms: pick("keep_alive_ms", DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
    upstream_connect_ms: pick("upstream_connect_ms", DEFAULT_UPSTREAM_CONNECT_TIMEOUT_MS),
    upstream_read_ms: pick("upstream_read_ms", DEFAULT_UPSTREAM_READ_TIMEOUT_MS),
    upstream_send_ms: pick("upstream_send_ms", DEFAULT_UPSTREAM_SEND_TIMEOUT_MS),
  };
}

function completeFileServer(input: FileServerInput, serverRoot: string | undefined) {
  return {
    root: input.alias !== undefined ? undefined : input.root ?? serverRoot,
    alias: input.alias,
    index: input.index ?? DEFAULT_INDEX,
    browse: input.browse ?? false,
    hidden: input.hidden ?? DEFAULT_HIDDEN,
    cache_control: input.cache_control,
    precompressed: input.precompressed ?? true,
    gzip: input.gzip ?? true,
    mime_types: input.mime_types ?? {},
    default_type: input.default_type ?? DEFAULT_MIME_TYPE,
  } satisfies FileServerConfig;
}

/**
 * Fills every default of the `http` section and resolves inheritance: each
 * location carries its final timeouts, limits, IP lists and header rules
 * (http, then server, then location rules), and its matcher resolved by name.
 * The only place `http` defaults are applied.
 */
export function completeHttpSection(input: HttpSectionInput): HttpSectionConfig {
  const matchers = input.matchers ?? {};
  return {
    upstreams: (input.upstreams ?? []).map(completeUpstreamGroup),
    limit_req_zones: (input.limit_req_zones ?? []).map((z) => ({
      name: z.name,
      key: z.key ?? DEFAULT_LIMIT_REQ_KEY,
      rate_per_second: z.rate_per_second,
      max_keys: z.max_keys ?? DEFAULT_LIMIT_REQ_MAX_KEYS,
    })),
    access_log: {
      enabled: input.access_log?.enabled ?? true,
      format: input.access_log?.format ?? DEFAULT_ACCESS_LOG_FORMAT,
    },
    max_connections: input.max_connections ?? DEFAULT_HTTP_MAX_CONNECTIONS,
    servers: (input.servers ?? []).map((s): VirtualServerConfig => ({
      listen: s.listen ?? ((s.listen_tls ?? []).length > 0 ? [] : [DEFAULT_HTTP_LISTEN]),
      listen_tls: s.listen_tls ?? [],
      server_names: s.server_names ?? [],
      default_server: s.default_server ?? false,
      tls: s.tls,
      root: s.root,
      locations: (s.locations ?? []).map((l): LocationConfig => ({
        path: l.path,
        pattern: l.pattern,
        match: typeof l.match === "string" ? matchers[l.match] : l.match,
        proxy_pass: l.proxy_pass,
        file_server: l.file_server === undefined
          ? undefined
          : completeFileServer(l.file_server, s.root),
        static_response: l.static_response === undefined ? undefined : {
          status: l.static_response.status ?? 200,
          headers: l.static_response.headers ?? {},
          body: l.static_response.body ?? "",
          content_type: l.static_response.content_type ?? DEFAULT_STATIC_CONTENT_TYPE,
        },
        try_files: l.try_files,
        limit_req: l.limit_req === undefined ? undefined : {
          zone: l.limit_req.zone,
          burst: l.limit_req.burst ?? 0,
          nodelay: l.limit_req.nodelay ?? false,
          status: l.limit_req.status ?? DEFAULT_LIMIT_REQ_STATUS,
        },
        websocket: l.websocket ?? false,
        preserve_host: l.preserve_host ?? true,
        x_forwarded: l.x_forwarded ?? true,
        next_upstream_tries: l.next_upstream_tries ?? 0,
        timeouts: completeTimeouts(input.timeouts, s.timeouts, l.timeouts),
        max_body_size: l.max_body_size ?? s.max_body_size ?? input.max_body_size ??
          DEFAULT_MAX_BODY_SIZE,
        allow: l.allow ?? s.allow ?? input.allow ?? [],
        deny: l.deny ?? s.deny ?? input.deny ?? [],
        request_headers: [
          ...(input.request_headers ?? []),
          ...(s.request_headers ?? []),
          ...(l.request_headers ?? []),
        ],
        response_headers: [
          ...(input.response_headers ?? []),
          ...(s.response_headers ?? []),
          ...(l.response_headers ?? []),
        ],
      })),
    })),
  };
}

/** Options for {@link fileServerSectionConfig} (`wmproxy file-server`). */
export interface FileServerPreset {
  root: string;
  /** @default "127.0.0.1:8080" */
  listen?: string;
  /** Directory listings. @default false */
  browse?: boolean;
}

/** The http section of `wmproxy file-server --root DIR --listen ADDR [--browse]`. */
export function fileServerSectionConfig(options: FileServerPreset): HttpSectionConfig {
  return completeHttpSection({
    servers: [{
      listen: [options.listen ?? DEFAULT_HTTP_LISTEN],
      locations: [{
        path: "/",
        pattern: { kind: "prefix", value: "/" },
        file_server: { root: options.root, browse: options.browse ?? false },
      }],
    }],
  });
}

/** Options for {@link reverseProxySectionConfig} (`wmproxy reverse-proxy`). */
export interface ReverseProxyPreset {
  /** Listen address. */
  from: string;
  /** Upstream URL, e.g. `http://127.0.0.1:9000`. */
  to: string;
}

/**
 * The http section of `wmproxy reverse-proxy --from ADDR --to URL`. Throws
 * `SyntaxError` for a bad address or URL (the CLI reports it as a usage error).
 */
export function reverseProxySectionConfig(options: ReverseProxyPreset): HttpSectionConfig {
  const r = new ConfigReader(() => undefined);
  const from = r.address(options.from, ["--from"]);
  const to = readProxyPass(r, options.to, ["--to"]);
  if (from === undefined || to === undefined) {
    throw new SyntaxError(r.issues.map((i) => `${i.path}: ${i.message}`).join("; "));
  }
  return completeHttpSection({
    servers: [{
      listen: [from],
      locations: [{
        path: "/",
        pattern: { kind: "prefix", value: "/" },
        proxy_pass: to,
        websocket: true,
      }],
    }],
  });
}
