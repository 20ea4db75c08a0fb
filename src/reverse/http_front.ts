/**
 * The raw HTTP/1.1 front of a plain `http` listener whose servers proxy.
 *
 * `Request`/`Response` objects and `fetch` cost more than the proxying itself
 * (measured: a `Deno.serve` + `fetch` relay ≈ 9k req/s, the same over raw
 * sockets ≈ 20k). So the front reads each request head itself, routes it
 * with the section's own router, and proxies the common case (origin-form
 * HTTP/1.1 to an `http://` upstream, no upgrade, no `Expect`, a body of at
 * most {@link FAST_BODY_BYTES} with a Content-Length, no limit_req) over
 * pooled keep-alive upstream connections, with the same retries, passive
 * health, header rules, timeouts and access log as the handler.
 *
 * Everything else takes the slow path: the request goes, unchanged, over
 * the client's own loopback connection to an internal `Deno.serve` running
 * the full handler, and its response (or upgrade) comes back the same way.
 * So both paths answer with one set of rules.
 *
 * The front also enforces the client header and keep-alive timeouts, which
 * `Deno.serve` cannot.
 *
 * @module
 */
import type { LocationConfig } from "../config/http_section.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import { BufferedReader } from "../proxy/_buffered_reader.ts";
import { closeQuietly } from "../proxy/_counted_conn.ts";
import { IdleTimer } from "../proxy/_deadline.ts";
import { DialError, dialTarget, dialTcpTarget } from "../proxy/dial.ts";
import {
  type BodyFraming,
  HttpError,
  type HttpHeader,
  latin1Encode,
  latin1EncodeInto,
  parseRequestHead,
  parseResponseHead,
  requestBodyFraming,
  type RequestHead,
  responseBodyFraming,
  type ResponseHead,
  serializeHeadText,
} from "../proxy/http_head.ts";
import { lingerClose, readHeadView, streamBody } from "../proxy/http_proxy.ts";
import { FramingError } from "../http1/framing.ts";
import {
  clientWantsKeepAlive,
  responseHeadPassesThrough,
  stripHopByHop,
  upstreamKeepsAlive,
} from "../proxy/http_rewrite.ts";
import { relay } from "../proxy/relay.ts";
import { type ByteConn, formatHostPort, type HostPort, writeAll } from "../transport/conn.ts";
import type { UpstreamGroup, UpstreamPeer } from "../upstream/mod.ts";
import { logAccess } from "./access_log.ts";
import type { CompiledServer, HttpCore } from "./handler.ts";
import { parseHostHeader } from "./handler.ts";
import { applyRulesToList } from "./headers.ts";
import { ipAllowed } from "./ip_rules.ts";
import { normalizePath } from "./router.ts";
import { parseProxyPass, type ProxyTarget, upstreamPath } from "./upstream_proxy.ts";
import type { RequestVariables } from "./variables.ts";
import {
  UPSTREAM_READ_BUFFER_BYTES,
  type UpstreamConn,
  upstreamConn,
  type UpstreamPool,
} from "./upstream_pool.ts";

/** Largest request head the front accepts (431 above). */
export const FRONT_MAX_HEAD_BYTES = 32 * 1024;
/** Request bodies up to this size (with a Content-Length) stay on the fast path. */
export const FAST_BODY_BYTES = 64 * 1024;
/** A response head and a body up to this size go out in one write. */
const COALESCE_BYTES = 16 * 1024;
/** Read buffer of a client connection (heads, small bodies, streamed chunks). */
const CLIENT_BUFFER_BYTES = 64 * 1024;
/** An upgraded (WebSocket) connection idle both ways this long is closed. */
const UPGRADE_IDLE_MS = 3_600_000;

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
/** Paths the WHATWG URL parser leaves alone (so raw == `URL.pathname`): no dot segments. */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@/%]*$/;
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;
/** Queries the URL parser leaves alone. */
const PLAIN_QUERY = /^[A-Za-z0-9\-._~!$&()*+,;=:@/?%]*$/;
const EMPTY = new Uint8Array(0);

/** Who is behind a connection to the internal server (for the handler). */
export interface FrontVisitor {
  addr: HostPort;
  listen: string;
}

/** What every connection of one front shares. */
export interface FrontOptions {
  /** The listen address as configured (the routing key). */
  listen: string;
  /** The section's current core (a reload swaps it). */
  core(): HttpCore;
  pool: UpstreamPool;
  /** The internal `Deno.serve` of the slow path. */
  internal: HostPort;
  /** Internal-connection local port → visitor; the internal server reads it. */
  visitors: Map<number, FrontVisitor>;
  /** Client header and keep-alive timeouts of this address (ms). */
  headerTimeoutMs: number;
  keepAliveTimeoutMs: number;
  log: Logger;
  /** Aborting ends every connection. */
  signal: AbortSignal;
  now: () => number;
  /** Seconds from a request head to its response head. */
  observe?: ((listen: string, seconds: number) => void) | undefined;
  /**
   * The client's scheme; `https` (a TLS listener, ./tls_front.ts) sends every
   * request down the slow path, whose internal server then runs for https.
   * @default "http"
   */
  scheme?: "http" | "https" | undefined;
}

/** A routed request that the fast path can serve. */
interface Plan {
  core: HttpCore;
  server: CompiledServer;
  location: LocationConfig;
  target: ProxyTarget;
  group: UpstreamGroup | undefined;
  head: RequestHead;
  path: string;
  query: string;
  uri: string;
  host: string;
  hostHeader: string;
  bodyLength: number;
  /** The request head as received (a copy), for passing it through unchanged. */
  raw: Uint8Array;
}

const targets = new WeakMap<LocationConfig, ProxyTarget>();

function targetOf(core: HttpCore, location: LocationConfig): ProxyTarget {
  let t = targets.get(location);
  if (t === undefined) {
    t = parseProxyPass(location.proxy_pass!, new Set(core.groups.keys()));
    targets.set(location, t);
  }
  return t;
}

/** Routes `head`; `undefined` sends the request down the slow path. */
function plan(
  head: RequestHead,
  framing: BodyFraming,
  raw: Uint8Array,
  o: FrontOptions,
  clientIp: string,
): Plan | undefined {
  if (head.version !== "HTTP/1.1" || o.scheme === "https") return undefined;
  const t = head.target;
  if (t.charCodeAt(0) !== 0x2f) return undefined;
  const q = t.indexOf("?");
  const path = q === -1 ? t : t.slice(0, q);
  const query = q === -1 ? "" : t.slice(q);
  if (!PLAIN_PATH.test(path) || DOT_SEGMENT.test(path)) return undefined;
  if (query !== "" && !PLAIN_QUERY.test(query)) return undefined;
  let hostHeader: string | undefined;
  let upgradeOrExpect = false;
  for (const [name, value] of head.headers) {
    const n = name.length;
    if (n === 4 && name.toLowerCase() === "host") {
      if (hostHeader !== undefined) return undefined;
      hostHeader = value;
    } else if (n === 7 && name.toLowerCase() === "upgrade") upgradeOrExpect = true;
    else if (n === 6 && name.toLowerCase() === "expect") upgradeOrExpect = true;
  }
  if (hostHeader === undefined || upgradeOrExpect) return undefined;
  const host = parseHostHeader(hostHeader);
  const uri = normalizePath(path);
  if (host === undefined || host === "" || uri === undefined) return undefined;
  const core = o.core();
  const server = core.selectServer(o.listen, host);
  if (server === undefined) return undefined;
  const m = server.router.match(uri, {
    method: head.method,
    host,
    scheme: "http",
    clientIp,
  });
  if (m === undefined) return undefined;
  const location = m.location;
  if (location.proxy_pass === undefined || location.limit_req !== undefined) return undefined;
  if (!ipAllowed(core.ipRules(location), clientIp)) return undefined;
  const target = targetOf(core, location);
  if (target.scheme !== "http") return undefined;
  const group = target.group === undefined ? undefined : core.groups.get(target.group);
  if (target.group !== undefined && group === undefined) return undefined;
  if (framing.kind !== "none" && framing.kind !== "length") return undefined;
  const bodyLength = framing.kind === "length" ? framing.length : 0;
  if (bodyLength > FAST_BODY_BYTES) return undefined;
  if (location.max_body_size > 0 && bodyLength > location.max_body_size) return undefined;
  return {
    core,
    server,
    location,
    target,
    group,
    head,
    path,
    query,
    uri,
    host,
    hostHeader,
    bodyLength,
    raw,
  };
}

function variables(p: Plan, peer: HostPort): RequestVariables {
  let headers: Headers | undefined;
  const list = p.head.headers;
  const colon = p.hostHeader.lastIndexOf(":");
  const port = colon > p.hostHeader.lastIndexOf("]") ? p.hostHeader.slice(colon + 1) : "";
  return {
    remote_addr: peer.hostname,
    remote_port: String(peer.port),
    host: p.host,
    hostname: p.hostHeader,
    scheme: "http",
    request_method: p.head.method,
    request_uri: p.head.target,
    uri: p.uri,
    args: p.query.slice(1),
    server_name: p.server.config.server_names[0] ?? "",
    server_port: port || "80",
    request: `${p.head.method} ${p.head.target} HTTP/1.1`,
    get headers() {
      if (headers === undefined) {
        headers = new Headers();
        for (const [n, v] of list) {
          try {
            headers.append(n, v);
          } catch {
            // a value Headers refuses cannot be a variable either
          }
        }
      }
      return headers;
    },
    extra: {},
  };
}

/** `x-forwarded-*` names by length, for the pass-through check. */
const FORWARDED = ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"];

/**
 * Whether the client's head can go upstream as received plus the
 * `x-forwarded-*` lines: no rules, Host kept, same path, nothing hop-by-hop
 * and no `x-forwarded-*` of its own.
 */
function passRequestThrough(p: Plan, path: string): boolean {
  const loc = p.location;
  if (loc.request_headers.length > 0 || !loc.preserve_host || path !== p.head.target) return false;
  const raw = p.raw;
  const n = raw.length;
  if (n < 4 || raw[n - 4] !== 0x0d || raw[n - 3] !== 0x0a) return false;
  const headers = p.head.headers;
  if (stripHopByHop(headers).length !== headers.length) return false;
  if (!loc.x_forwarded) return true;
  for (const [name] of headers) {
    const len = name.length;
    if (len >= 15 && len <= 17 && FORWARDED.includes(name.toLowerCase())) return false;
  }
  return true;
}

/** The head sent upstream (the handler's rules, on a header list), followed by `body`. */
function upstreamRequest(
  p: Plan,
  vars: RequestVariables,
  upstreamHost: string,
  path: string,
  body: Uint8Array,
): Uint8Array {
  const loc = p.location;
  if (passRequestThrough(p, path)) {
    const tail = loc.x_forwarded
      ? `x-forwarded-for: ${vars.remote_addr}\r\nx-forwarded-proto: http\r\n` +
        `x-forwarded-host: ${p.hostHeader}\r\n\r\n`
      : "\r\n";
    const keep = p.raw.length - 2;
    const out = new Uint8Array(keep + tail.length + body.length);
    out.set(p.raw.subarray(0, keep));
    latin1EncodeInto(tail, out, keep);
    out.set(body, keep + tail.length);
    return out;
  }
  let list: HttpHeader[] = [];
  const prior: string[] = [];
  for (const h of stripHopByHop(p.head.headers)) {
    const lower = h[0].toLowerCase();
    if (lower === "host") continue;
    if (loc.x_forwarded) {
      if (lower === "x-forwarded-for") {
        prior.push(h[1]);
        continue;
      }
      if (lower === "x-forwarded-proto" || lower === "x-forwarded-host") continue;
    }
    list.push(h);
  }
  list.unshift(["host", loc.preserve_host ? p.hostHeader : upstreamHost]);
  if (loc.x_forwarded) {
    prior.push(vars.remote_addr);
    list.push(["x-forwarded-for", prior.join(", ")]);
    list.push(["x-forwarded-proto", "http"]);
    list.push(["x-forwarded-host", p.hostHeader]);
  }
  if (loc.request_headers.length > 0) list = applyRulesToList(list, loc.request_headers, vars);
  const head = serializeHeadText(`${p.head.method} ${path} HTTP/1.1`, list);
  const out = new Uint8Array(head.length + body.length);
  latin1EncodeInto(head, out, 0);
  out.set(body, head.length);
  return out;
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** The body of the handler's short reply, `STATUS Reason\n`. */
function statusBody(status: number): string {
  return `${status} ${REASONS[status] ?? "Error"}\n`;
}

/** The handler's short reply, as bytes. */
function statusReply(status: number, keepAlive: boolean): Uint8Array {
  const reason = REASONS[status] ?? "Error";
  const body = statusBody(status);
  return latin1Encode(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${body.length}\r\n${keepAlive ? "" : "connection: close\r\n"}\r\n${body}`,
  );
}

/** `invalid`: the upstream's response cannot be framed or parsed (502, no retry, close). */
type Failure = "connect" | "timeout" | "io" | "invalid";

/** A connection whose writes are counted (for `bytes` in the access log). */
class CountingConn implements ByteConn {
  sent = 0;
  constructor(readonly inner: ByteConn) {}
  read(p: Uint8Array): Promise<number | null> {
    return this.inner.read(p);
  }
  async write(p: Uint8Array): Promise<number> {
    const n = await this.inner.write(p);
    this.sent += n;
    return n;
  }
  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }
  close(): void {
    this.inner.close();
  }
  get remoteAddr(): HostPort {
    return this.inner.remoteAddr;
  }
  get localAddr(): HostPort {
    return this.inner.localAddr;
  }
}

/**
 * Serves one client connection until it closes, times out, or the front
 * stops. Never rejects; closes `conn`.
 */
export async function serveFrontConnection(conn: ByteConn, o: FrontOptions): Promise<void> {
  const session = new FrontConnection(conn, o);
  try {
    await session.run();
  } catch (err) {
    o.log.debug(EVENTS.protocol_error, {
      peer: formatHostPort(conn.remoteAddr),
      error: errorMessage(err),
    });
  } finally {
    session.close();
  }
}

class FrontConnection {
  readonly client: CountingConn;
  readonly reader: BufferedReader;
  readonly o: FrontOptions;
  readonly peer: HostPort;
  #internal: UpstreamConn | undefined;
  #internalPort = 0;
  #waitTimer: IdleTimer | undefined;
  #headTimer: IdleTimer | undefined;
  /** Upstream read/send timer; re-created when a location's timeout differs. */
  #upTimer: IdleTimer | undefined;
  #upTimerMs = 0;
  #upTimedOut = false;
  #current: UpstreamConn | undefined;
  readonly #onAbort = () => this.close();

  constructor(conn: ByteConn, o: FrontOptions) {
    this.client = new CountingConn(conn);
    this.o = o;
    this.peer = conn.remoteAddr;
    this.reader = new BufferedReader(conn, {
      initialSize: 16 * 1024,
      maxSize: CLIENT_BUFFER_BYTES,
    });
    o.signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  close(): void {
    this.o.signal.removeEventListener("abort", this.#onAbort);
    this.#waitTimer?.cancel();
    this.#headTimer?.cancel();
    this.#upTimer?.cancel();
    closeQuietly(this.client);
    if (this.#current !== undefined) closeQuietly(this.#current.conn);
    this.#dropInternal();
  }

  #dropInternal(): void {
    if (this.#internal === undefined) return;
    closeQuietly(this.#internal.conn);
    this.o.visitors.delete(this.#internalPort);
    this.#internal = undefined;
  }

  async run(): Promise<void> {
    const closeClient = () => closeQuietly(this.client);
    let first = true;
    while (!this.o.signal.aborted) {
      if (!first && this.reader.length === 0 && this.o.keepAliveTimeoutMs > 0) {
        // Between requests: the keep-alive timeout.
        if (this.#waitTimer === undefined) {
          this.#waitTimer = new IdleTimer(this.o.keepAliveTimeoutMs, closeClient);
        } else this.#waitTimer.restart(closeClient);
        const n = await this.reader.fill().catch(() => null);
        this.#waitTimer.pause();
        if (n === null) return;
      }
      first = false;
      // The whole head within the header timeout.
      if (this.o.headerTimeoutMs > 0) {
        if (this.#headTimer === undefined) {
          this.#headTimer = new IdleTimer(this.o.headerTimeoutMs, closeClient);
        } else this.#headTimer.restart(closeClient);
      }
      let view: Uint8Array | null;
      try {
        view = await readHeadView(this.reader, FRONT_MAX_HEAD_BYTES);
      } catch (err) {
        if (err instanceof HttpError) await this.#refuse(err);
        return;
      } finally {
        this.#headTimer?.pause();
      }
      if (view === null) return;
      let head: RequestHead;
      let framing: BodyFraming;
      try {
        head = parseRequestHead(view);
        // One framing decision (src/http1/framing.ts); a refusal ends the connection.
        framing = requestBodyFraming(head);
        checkAbsoluteTarget(head);
      } catch (err) {
        await this.#refuse(err instanceof HttpError ? err : new HttpError(400, errorMessage(err)));
        return;
      }
      const raw = view.slice();
      const p = plan(head, framing, raw, this.o, this.peer.hostname);
      const keep = p === undefined ? await this.#slow(raw, head, framing) : await this.#fast(p);
      if (!keep) return;
    }
  }

  /**
   * Refuses a request that cannot be read in exactly one way: the short
   * reply with `connection: close`, then the connection ends; nothing after
   * the refused head is read as a request.
   */
  async #refuse(err: HttpError): Promise<void> {
    this.o.log.debug(EVENTS.protocol_error, {
      peer: formatHostPort(this.peer),
      status: err.status,
      error: err.message,
    });
    await this.#reply(err.status, false);
    await lingerClose(this.client, this.reader);
  }

  /** Sends the short reply; resolves to how many of its body bytes went out. */
  async #reply(status: number, keepAlive: boolean): Promise<number> {
    const reply = statusReply(status, keepAlive);
    const before = this.client.sent;
    try {
      await writeAll(this.client, reply);
    } catch {
      // the client is gone
    }
    const headLength = reply.length - statusBody(status).length;
    return Math.max(0, this.client.sent - before - headLength);
  }

  /** An IdleTimer for upstream waits of `ms`, restarted; firing closes the upstream. */
  #armUpstream(ms: number, up: UpstreamConn): IdleTimer {
    this.#upTimedOut = false;
    this.#current = up;
    const onIdle = () => {
      this.#upTimedOut = true;
      if (this.#current !== undefined) closeQuietly(this.#current.conn);
    };
    if (this.#upTimer === undefined || this.#upTimerMs !== ms) {
      this.#upTimer?.cancel();
      this.#upTimer = new IdleTimer(ms, onIdle);
      this.#upTimerMs = ms;
    } else {
      this.#upTimer.restart(onIdle);
    }
    return this.#upTimer;
  }

  async #dial(p: Plan, hostPort: string, addr: HostPort): Promise<UpstreamConn> {
    const conn = await dialTarget(dialTcpTarget, addr.hostname, addr.port, {
      timeoutMs: p.location.timeouts.upstream_connect_ms,
      signal: this.o.signal,
    });
    return upstreamConn(hostPort, conn);
  }

  /** The fast path; resolves to whether the client connection stays open. */
  async #fast(p: Plan): Promise<boolean> {
    const o = this.o;
    const start = o.now();
    const t = p.location.timeouts;
    // The whole (small) body first: it is replayed on a retry.
    let body = EMPTY;
    if (p.bodyLength > 0) {
      const bodyTimer = t.client_body_ms > 0
        ? new IdleTimer(t.client_body_ms, () => closeQuietly(this.client))
        : undefined;
      try {
        while (this.reader.length < p.bodyLength) {
          const n = await this.reader.fill().catch(() => null);
          if (n === null) return false;
          bodyTimer?.touch();
        }
      } finally {
        bodyTimer?.cancel();
      }
      body = this.reader.buffered().slice(0, p.bodyLength);
      this.reader.consume(p.bodyLength);
    }
    const vars = variables(p, this.peer);
    const ctx = { vars, start, upstream: [] as { addr: string; status: string; ms: string }[] };
    const path = upstreamPath(
      { url: { pathname: p.path, search: p.query }, vars },
      p.target,
      p.location,
    );
    const group = p.group;
    const tries = group === undefined
      ? 1
      : p.location.next_upstream_tries > 0
      ? p.location.next_upstream_tries
      : group.peers.length;
    const retryAfterSend = IDEMPOTENT.has(p.head.method);
    const tried = new Set<string>();
    let last: Failure = "io";
    for (let i = 0; i < tries; i++) {
      let peer: UpstreamPeer | undefined;
      let hostPort: string;
      let addr: HostPort;
      if (group !== undefined) {
        peer = group.pick(vars.remote_addr, tried);
        if (peer === undefined) break;
        tried.add(peer.id);
        addr = peer.addr;
        hostPort = formatHostPort(peer.addr);
      } else {
        hostPort = p.target.authority;
        addr = parseAuthority(hostPort);
      }
      const record = { addr: hostPort, status: "-", ms: "-" };
      ctx.upstream.push(record);
      const attemptStart = o.now();
      if (peer !== undefined) group!.acquire(peer);
      const outcome = await this.#exchange(p, hostPort, addr, path, vars, body, record);
      if (peer !== undefined) group!.release(peer);
      record.ms = ((o.now() - attemptStart) / 1000).toFixed(3);
      if (outcome.kind === "done") {
        if (peer !== undefined) {
          if (outcome.status >= 500) group!.reportFailure(peer, `status ${outcome.status}`);
          else group!.reportSuccess(peer);
        }
        this.#finish(p, ctx, outcome.status, outcome.bytes, outcome.error);
        return outcome.keep;
      }
      last = outcome.failure;
      const retryable = last === "connect" || (retryAfterSend && last !== "invalid");
      const retry = retryable && i + 1 < tries;
      o.log.warn(EVENTS.http_upstream_error, {
        upstream: hostPort,
        kind: last,
        error: outcome.error,
        uri: vars.request_uri,
        retry,
      });
      if (peer !== undefined) group!.reportFailure(peer, `${last}: ${outcome.error}`);
      if (!retryable) break;
    }
    const status = group !== undefined && tried.size === 0 ? 502 : last === "timeout" ? 504 : 502;
    // After a response that could not be framed, both sides end (the upstream already has).
    const keep = last !== "invalid" && clientWantsKeepAlive(p.head);
    const bytes = await this.#reply(status, keep);
    this.#finish(p, ctx, status, bytes, undefined);
    if (!keep) await lingerClose(this.client, this.reader);
    return keep;
  }

  #finish(
    p: Plan,
    ctx: Parameters<typeof logAccess>[0],
    status: number,
    bytes: number,
    error: unknown,
  ): void {
    const o = this.o;
    o.observe?.(o.listen, (o.now() - ctx.start) / 1000);
    const config = p.core.config.access_log;
    if (!config.enabled || !o.log.enabled("info")) return;
    logAccess(
      ctx,
      { server: p.server.label, location: p.location.path },
      config,
      o.log,
      o.now,
      { status, bytes, ...(error === undefined ? {} : { error }) },
    );
  }

  /** One attempt on one upstream address. */
  async #exchange(
    p: Plan,
    hostPort: string,
    addr: HostPort,
    path: string,
    vars: RequestVariables,
    body: Uint8Array,
    record: { status: string },
  ): Promise<
    | { kind: "done"; status: number; keep: boolean; bytes: number; error?: string }
    | { kind: "failed"; failure: Failure; error: string }
  > {
    const o = this.o;
    const t = p.location.timeouts;
    const request = upstreamRequest(p, vars, hostPort, path, body);
    let up = o.pool.take(hostPort);
    for (let attempt = 0;; attempt++) {
      const reused = up !== undefined;
      if (up === undefined) {
        try {
          up = await this.#dial(p, hostPort, addr);
        } catch (err) {
          const failure: Failure = err instanceof DialError && err.reason === "timeout"
            ? "timeout"
            : "connect";
          return { kind: "failed", failure, error: errorMessage(err) };
        }
      }
      const timer = this.#armUpstream(t.upstream_read_ms, up);
      let resp: ResponseHead;
      let respHead: Uint8Array | null;
      try {
        await writeAll(up.conn, request);
        timer.touch();
        while (true) {
          respHead = await readHeadView(up.reader, UPSTREAM_READ_BUFFER_BYTES);
          if (respHead === null) throw new Error("the connection closed before a response");
          resp = parseResponseHead(respHead);
          if (resp.status >= 100 && resp.status < 200 && resp.status !== 101) {
            await writeAll(this.client, respHead.slice());
            timer.touch();
            continue;
          }
          break;
        }
      } catch (err) {
        timer.pause();
        closeQuietly(up.conn);
        if (err instanceof HttpError) {
          // The upstream answered, but not with a head that can be read in one way.
          return { kind: "failed", failure: "invalid", error: err.message };
        }
        const stale = reused && attempt === 0 && !this.#upTimedOut && up.reader.length === 0;
        up = undefined;
        if (stale) continue; // a kept connection the upstream had closed: once more, fresh
        if (this.#upTimedOut) {
          return {
            kind: "failed",
            failure: "timeout",
            error: `no response within ${t.upstream_read_ms} ms`,
          };
        }
        return {
          kind: "failed",
          failure: "io",
          error: err instanceof HttpError ? err.message : errorMessage(err),
        };
      }
      record.status = String(resp.status);
      if (resp.status === 101) {
        timer.pause();
        closeQuietly(up.conn);
        return { kind: "failed", failure: "io", error: "unexpected 101 response" };
      }
      let framing: BodyFraming;
      try {
        framing = responseBodyFraming(resp, p.head.method);
      } catch (err) {
        timer.pause();
        closeQuietly(up.conn);
        return { kind: "failed", failure: "invalid", error: errorMessage(err) };
      }
      const keep = framing.kind !== "close" && clientWantsKeepAlive(p.head);
      let outHead: Uint8Array;
      if (keep && p.location.response_headers.length === 0 && responseHeadPassesThrough(resp)) {
        outHead = respHead.slice();
      } else {
        let list = stripHopByHop(resp.headers);
        if (p.location.response_headers.length > 0) {
          list = applyRulesToList(list, p.location.response_headers, vars);
        }
        if (!keep) list.push(["connection", "close"]);
        const reason = resp.reason === "" ? "" : ` ${resp.reason}`;
        outHead = latin1Encode(serializeHeadText(`HTTP/1.1 ${resp.status}${reason}`, list));
      }
      const before = this.client.sent;
      try {
        const length = framing.kind === "length" ? framing.length : -1;
        if (length >= 0 && length <= up.reader.length && length <= COALESCE_BYTES) {
          const out = new Uint8Array(outHead.length + length);
          out.set(outHead);
          out.set(up.reader.buffered().subarray(0, length), outHead.length);
          await writeAll(this.client, out);
          up.reader.consume(length);
        } else {
          if (length !== 0) up.reader.reserve(CLIENT_BUFFER_BYTES);
          await streamBody(
            up.reader,
            this.client,
            framing,
            outHead,
            FRONT_MAX_HEAD_BYTES,
            timer,
            true,
          );
        }
      } catch (err) {
        timer.pause();
        closeQuietly(up.conn);
        if (err instanceof FramingError && !err.prefixSent) {
          return { kind: "failed", failure: "invalid", error: err.message };
        }
        closeQuietly(this.client);
        const sent = Math.max(0, this.client.sent - before - outHead.length);
        return {
          kind: "done",
          status: resp.status,
          keep: false,
          bytes: sent,
          error: this.#upTimedOut
            ? `upstream read timed out after ${t.upstream_read_ms} ms`
            : errorMessage(err),
        };
      }
      timer.pause();
      this.#current = undefined;
      if (framing.kind !== "close" && upstreamKeepsAlive(resp)) o.pool.put(up);
      else closeQuietly(up.conn);
      const bytes = Math.max(0, this.client.sent - before - outHead.length);
      return { kind: "done", status: resp.status, keep, bytes };
    }
  }

  /** The slow path: the request through the internal server; resolves to keep-alive. */
  async #slow(headBytes: Uint8Array, head: RequestHead, framing: BodyFraming): Promise<boolean> {
    const o = this.o;
    if (this.#internal === undefined) {
      const conn = await Deno.connect({
        hostname: o.internal.hostname,
        port: o.internal.port,
        transport: "tcp",
      });
      conn.setNoDelay(true);
      this.#internalPort = conn.localAddr.port;
      o.visitors.set(this.#internalPort, { addr: this.peer, listen: o.listen });
      this.#internal = upstreamConn("internal", conn);
    }
    const inner = this.#internal;
    let bodyDone = framing.kind === "none";
    let bodyFailed = false;
    /** Why the request body failed: a FramingError is the client's fault (400). */
    let bodyError: unknown;
    let responseStarted = false;
    let bodyTask: Promise<void> | undefined;
    const idle = new IdleTimer(UPGRADE_IDLE_MS, () => this.close());
    try {
      if (bodyDone) {
        await writeAll(inner.conn, headBytes);
      } else {
        this.reader.reserve(CLIENT_BUFFER_BYTES);
        bodyTask = streamBody(
          this.reader,
          inner.conn,
          framing,
          headBytes,
          FRONT_MAX_HEAD_BYTES,
          idle,
        )
          .then(() => {
            bodyDone = true;
          }, (err) => {
            bodyFailed = true;
            bodyError = err;
            closeQuietly(inner.conn);
          });
      }
      let resp: ResponseHead;
      while (true) {
        const view = await readHeadView(inner.reader, 64 * 1024);
        if (view === null) throw new Error("the internal server closed the connection");
        resp = parseResponseHead(view);
        if (resp.status === 101) {
          responseStarted = true;
          await writeAll(this.client, view.slice());
          await bodyTask;
          return await this.#upgrade(inner);
        }
        if (resp.status >= 100 && resp.status < 200) {
          await writeAll(this.client, view.slice());
          continue;
        }
        responseStarted = true;
        const rf = responseBodyFraming(resp, head.method);
        const keepClient = rf.kind !== "close" && clientWantsKeepAlive(head);
        const list = stripHopByHop(resp.headers);
        if (!keepClient) list.push(["connection", "close"]);
        const reason = resp.reason === "" ? "" : ` ${resp.reason}`;
        const out = latin1Encode(serializeHeadText(`HTTP/1.1 ${resp.status}${reason}`, list));
        if (rf.kind !== "none") inner.reader.reserve(CLIENT_BUFFER_BYTES);
        await streamBody(inner.reader, this.client, rf, out, FRONT_MAX_HEAD_BYTES, idle);
        await bodyTask;
        if (rf.kind === "close" || !upstreamKeepsAlive(resp) || bodyFailed) this.#dropInternal();
        return keepClient && bodyDone && !bodyFailed;
      }
    } catch (err) {
      this.#dropInternal();
      await bodyTask;
      if (bodyError instanceof FramingError && !responseStarted) {
        await this.#refuse(new HttpError(400, bodyError.message));
        return false;
      }
      throw err;
    } finally {
      idle.cancel();
    }
  }

  /** After a 101 from the internal server: bytes both ways until either side ends. */
  async #upgrade(inner: UpstreamConn): Promise<boolean> {
    const fromClient = this.reader.take();
    const fromInner = inner.reader.take();
    if (fromClient.length > 0) await writeAll(inner.conn, fromClient);
    if (fromInner.length > 0) await writeAll(this.client, fromInner);
    this.o.visitors.delete(this.#internalPort);
    this.#internal = undefined;
    await relay(this.client.inner, inner.conn, {
      idleTimeoutMs: UPGRADE_IDLE_MS,
      signal: this.o.signal,
    });
    return false;
  }
}

/**
 * Refuses an absolute-form target whose authority is not the Host field
 * (RFC 9112 §3.2.2 makes the target win; this front routes by Host, so the
 * two must agree). Throws {@link HttpError} 400.
 */
function checkAbsoluteTarget(head: RequestHead): void {
  const t = head.target;
  if (t.charCodeAt(0) === 0x2f || t === "*") return;
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(t);
  if (m === null) return; // authority-form (CONNECT) and the rest: the handler answers
  let authority = m[1]!;
  const at = authority.lastIndexOf("@");
  if (at !== -1) authority = authority.slice(at + 1);
  const host = headerValue(head.headers, "host");
  if (host === undefined || host.toLowerCase() !== authority.toLowerCase()) {
    throw new HttpError(
      400,
      "Cannot route request: the authority of the request target is not the Host field",
    );
  }
}

function headerValue(headers: readonly HttpHeader[], lower: string): string | undefined {
  for (const [name, value] of headers) if (name.toLowerCase() === lower) return value;
  return undefined;
}

function parseAuthority(authority: string): HostPort {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(authority) ?? /^([^:]+)(?::(\d+))?$/.exec(authority);
  return { hostname: m?.[1] ?? authority, port: Number(m?.[2] ?? 80) };
}
