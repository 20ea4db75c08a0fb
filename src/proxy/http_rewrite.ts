/**
 * Pure request and response rewriting for the HTTP forward proxy: request
 * targets, hop-by-hop and `Proxy-*` header removal, `Via` and
 * `X-Forwarded-For`, persistence decisions, and short error replies.
 *
 * @module
 */
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort } from "../transport/conn.ts";
import {
  headerTokens,
  HttpError,
  type HttpHeader,
  latin1Encode,
  type RequestHead,
  type ResponseHead,
  serializeHead,
  serializeHeadText,
} from "./http_head.ts";
import { parseIpv6 } from "./socks5_codec.ts";

/** The `Via` token this proxy adds. */
export const VIA_TOKEN = "wmproxy";

/** Headers that describe one hop only (RFC 9110 §7.6.1), lower-case. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
]);

/** Where an absolute-form request goes. */
export interface ProxyTarget extends HostPort {
  /** `host[:port]` as the Host header carries it. */
  authority: string;
  /** The origin-form target: path and query, at least "/". */
  path: string;
}

function parseAuthority(authority: string, defaultPort: number | undefined): HostPort | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._~!$&'()*+,;=%-]+))(?::(\d{0,5}))?$/.exec(
    authority,
  );
  if (!m) return null;
  const portText = m[3];
  let port: number;
  if (portText === undefined || portText === "") {
    if (defaultPort === undefined) return null;
    port = defaultPort;
  } else {
    port = Number(portText);
  }
  if (port < 1 || port > 65535) return null;
  if (m[1] !== undefined) {
    if (parseIpv6(m[1]) === null) return null;
    return { hostname: m[1], port };
  }
  return { hostname: m[2]!.toLowerCase(), port };
}

/**
 * Parses an absolute-form `http://host[:port]/path?query` request target.
 * Throws {@link HttpError} 400 for anything else (including origin-form: a
 * proxy expects an absolute URL).
 *
 * @example
 * ```ts
 * parseProxyTarget("http://example.com:8080/a?b=1");
 * // { hostname: "example.com", port: 8080, authority: "example.com:8080", path: "/a?b=1" }
 * ```
 */
export function parseProxyTarget(target: string): ProxyTarget {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(target);
  if (!m) {
    throw new HttpError(
      400,
      `Cannot proxy request target "${
        clip(target)
      }": an absolute URL (http://host/path) is expected`,
    );
  }
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "http") {
    throw new HttpError(
      400,
      `Cannot proxy request target "${
        clip(target)
      }": scheme "${scheme}" is not supported (use CONNECT for https)`,
    );
  }
  let authority = m[2]!;
  const at = authority.lastIndexOf("@");
  if (at !== -1) authority = authority.slice(at + 1); // userinfo is never forwarded
  const addr = parseAuthority(authority, 80);
  if (addr === null) {
    throw new HttpError(400, `Cannot proxy request target "${clip(target)}": invalid host`);
  }
  let path = m[3]!;
  if (path === "") path = "/";
  else if (path.startsWith("?")) path = "/" + path;
  const hostForHeader = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    ...addr,
    authority: addr.port === 80 ? hostForHeader : `${hostForHeader}:${addr.port}`,
    path,
  };
}

/**
 * Parses a CONNECT authority-form target `host:port` (port required).
 * Throws {@link HttpError} 400.
 */
export function parseConnectTarget(target: string): HostPort {
  const addr = parseAuthority(target, undefined);
  if (addr === null) {
    throw new HttpError(400, `Cannot parse CONNECT target "${clip(target)}": expected host:port`);
  }
  return addr;
}

function clip(text: string): string {
  return text.length > 80 ? text.slice(0, 80) + "…" : text;
}

/**
 * Drops hop-by-hop headers, those named in `Connection`, and every `Proxy-*`.
 * `Connection` never removes the framing (`Content-Length`,
 * `Transfer-Encoding`) or `Host`: the body is passed on as it was framed.
 */
export function stripHopByHop(headers: readonly HttpHeader[]): HttpHeader[] {
  const connection = headerTokens(headers, "connection");
  const proxyConnection = headerTokens(headers, "proxy-connection");
  const out: HttpHeader[] = [];
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    if (!isHopByHopName(h[0], connection, proxyConnection)) out.push(h);
  }
  return out;
}

/** {@link HOP_BY_HOP} as an array, for allocation-free loops. */
const HOP_BY_HOP_LIST: readonly string[] = [...HOP_BY_HOP];

/**
 * Whether a header named `name` is hop-by-hop: `name.toLowerCase()` is in
 * {@link HOP_BY_HOP}, `connection` or `proxyConnection`, or starts with
 * `proxy-`. For ASCII names (all parsed ones) it compares without building
 * lower-case strings.
 */
function isHopByHopName(
  name: string,
  connection: readonly string[],
  proxyConnection: readonly string[],
): boolean {
  for (let i = 0; i < name.length; i++) {
    if (name.charCodeAt(i) >= 0x80) {
      // Unicode lower-casing can change lengths: take the exact, slow path.
      const lower = name.toLowerCase();
      if (lower === "host" || lower === "content-length" || lower === "transfer-encoding") {
        return false;
      }
      return HOP_BY_HOP.has(lower) || lower.startsWith("proxy-") ||
        connection.includes(lower) || proxyConnection.includes(lower);
    }
  }
  const n = name.length;
  if (n === 2 || n === 7 || n === 10 || n === 16) {
    for (let i = 0; i < HOP_BY_HOP_LIST.length; i++) {
      if (asciiSameLower(name, HOP_BY_HOP_LIST[i]!)) return true;
    }
  }
  if (n >= 6 && asciiStartsWithLower(name, "proxy-")) return true;
  if (
    (n === 4 && asciiSameLower(name, "host")) ||
    (n === 14 && asciiSameLower(name, "content-length")) ||
    (n === 17 && asciiSameLower(name, "transfer-encoding"))
  ) return false; // never nominated away (see stripHopByHop)
  for (let i = 0; i < connection.length; i++) {
    if (asciiSameLower(name, connection[i]!)) return true;
  }
  for (let i = 0; i < proxyConnection.length; i++) {
    if (asciiSameLower(name, proxyConnection[i]!)) return true;
  }
  return false;
}

/** `name.toLowerCase() === lower` for an ASCII `name`. */
function asciiSameLower(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  return asciiStartsWithLower(name, lower);
}

/** `name.toLowerCase().startsWith(prefix)` for an ASCII `name` (`prefix` may be anything). */
function asciiStartsWithLower(name: string, prefix: string): boolean {
  if (name.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Whether a response head can be relayed to a keep-alive HTTP/1.1 client
 * byte for byte: HTTP/1.1, and nothing hop-by-hop in it but a lone
 * `Connection: keep-alive` (which says what we would say anyway).
 */
export function responseHeadPassesThrough(head: ResponseHead): boolean {
  if (head.version !== "HTTP/1.1") return false;
  const headers = head.headers;
  const connection = headerTokens(headers, "connection");
  const proxyConnection = headerTokens(headers, "proxy-connection");
  let connectionLines = 0;
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i]![0];
    if (!isHopByHopName(name, connection, proxyConnection)) continue;
    if (name.length !== 10 || name.toLowerCase() !== "connection") return false;
    if (++connectionLines > 1) return false;
  }
  return connectionLines === 0 || (connection.length === 1 && connection[0] === "keep-alive");
}

/** Whether the client asked to keep its connection open after this request. */
export function clientWantsKeepAlive(head: RequestHead): boolean {
  const tokens = [
    ...headerTokens(head.headers, "connection"),
    ...headerTokens(head.headers, "proxy-connection"),
  ];
  if (tokens.includes("close")) return false;
  return head.version === "HTTP/1.1" || tokens.includes("keep-alive");
}

/** Whether the upstream will keep its connection open after this response. */
export function upstreamKeepsAlive(head: ResponseHead): boolean {
  const tokens = headerTokens(head.headers, "connection");
  if (tokens.includes("close")) return false;
  return head.version === "HTTP/1.1" || tokens.includes("keep-alive");
}

/** Options for {@link rewriteRequestHead}. */
export interface RewriteRequestOptions {
  /** Add `Via: 1.1 wmproxy`. */
  via: boolean;
  /** The client IP to append to `X-Forwarded-For`; `undefined` = do not add. */
  forwardedFor: string | undefined;
}

/**
 * The head to send upstream: origin-form target, `Host` set to the target's
 * authority (RFC 9112 §3.2.2), hop-by-hop and `Proxy-*` headers removed.
 */
export function rewriteRequestHead(
  head: RequestHead,
  target: ProxyTarget,
  options: RewriteRequestOptions,
): Uint8Array {
  const headers: HttpHeader[] = [["Host", target.authority]];
  for (const h of stripHopByHop(head.headers)) {
    const lower = h[0].toLowerCase();
    if (lower === "host") continue;
    if (lower === "x-forwarded-for" && options.forwardedFor !== undefined) continue;
    headers.push(h);
  }
  if (options.forwardedFor !== undefined) {
    const prior = head.headers.filter(([n]) => n.toLowerCase() === "x-forwarded-for").map(([, v]) =>
      v
    );
    headers.push(["X-Forwarded-For", [...prior, options.forwardedFor].join(", ")]);
  }
  if (options.via) addVia(headers, head.version);
  return serializeHead(`${head.method} ${target.path} ${head.version}`, headers);
}

function addVia(headers: HttpHeader[], version: string): void {
  const token = `${version.slice(5)} ${VIA_TOKEN}`;
  const i = headers.findIndex(([n]) => n.toLowerCase() === "via");
  if (i === -1) headers.push(["Via", token]);
  else headers[i] = [headers[i]![0], `${headers[i]![1]}, ${token}`];
}

/** Options for {@link rewriteResponseHead}. */
export interface RewriteResponseOptions {
  /** Add `Via`. */
  via: boolean;
  /** The proxy will close the client connection after this response. */
  close: boolean;
  /** The client spoke HTTP/1.0 (needs an explicit `Connection: keep-alive`). */
  http10Client: boolean;
}

/** The head to send to the client: hop-by-hop removed, our `Connection` decision added. */
export function rewriteResponseHead(
  head: ResponseHead,
  options: RewriteResponseOptions,
): Uint8Array {
  return latin1Encode(rewriteResponseHeadText(head, options));
}

/** {@link rewriteResponseHead} as a latin1 string (to encode straight into an output buffer). */
export function rewriteResponseHeadText(
  head: ResponseHead,
  options: RewriteResponseOptions,
): string {
  const headers = stripHopByHop(head.headers);
  if (options.close) headers.push(["Connection", "close"]);
  else if (options.http10Client) headers.push(["Connection", "keep-alive"]);
  if (options.via) addVia(headers, head.version);
  const reason = head.reason === "" ? "" : ` ${head.reason}`;
  return serializeHeadText(`${head.version} ${head.status}${reason}`, headers);
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/**
 * A complete short reply generated by the proxy: plain-text body of `message`
 * and a newline, `Connection: close` unless `keepAlive`.
 */
export function errorResponse(
  status: number,
  message: string,
  extraHeaders: readonly HttpHeader[] = [],
  keepAlive = false,
): Uint8Array {
  const body = latin1Encode(
    (status + " " + (REASONS[status] ?? "Error") + ": " + message + "\n").replace(
      /[^\x20-\x7e\n]/g,
      "?",
    ),
  );
  const head = serializeHead(`HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`, [
    ...extraHeaders,
    ["Content-Type", "text/plain; charset=utf-8"],
    ["Content-Length", String(body.length)],
    ["Connection", keepAlive ? "keep-alive" : "close"],
  ]);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** The key under which an upstream connection can be reused. */
export function upstreamKey(addr: HostPort): string {
  return formatHostPort(addr);
}
