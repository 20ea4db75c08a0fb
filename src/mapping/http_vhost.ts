/**
 * The public HTTP port of HTTP mappings (frp "vhost"): serves one visitor
 * connection, routes EACH request on it by its own Host header, forwards it
 * over a tunnel stream to the LAN service and streams the response back.
 * Built on the forward proxy's HTTP machinery (head parser, body framing,
 * chunked scanner, relay); only routing, rules and error pages are new here.
 *
 * @module
 */
import type { Secret } from "../config/secret.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import { BufferedReader } from "../proxy/_buffered_reader.ts";
import { closeQuietly, CountedConn } from "../proxy/_counted_conn.ts";
import { Deadline, IdleTimer } from "../proxy/_deadline.ts";
import { FramingError } from "../http1/framing.ts";
import {
  type BodyFraming,
  headerTokens,
  headerValues,
  HttpError,
  type HttpHeader,
  parseRequestHead,
  parseResponseHead,
  requestBodyFraming,
  type RequestHead,
  responseBodyFraming,
  type ResponseHead,
  serializeHead,
} from "../proxy/http_head.ts";
import { lingerClose, readHead, streamBody } from "../proxy/http_proxy.ts";
import { clientWantsKeepAlive, stripHopByHop, upstreamKeepsAlive } from "../proxy/http_rewrite.ts";
import { checkCredentials, parseBasicCredentials } from "../proxy/proxy_auth.ts";
import { relay } from "../proxy/relay.ts";
import type { ByteConn, HostPort } from "../transport/conn.ts";
import { writeAll } from "../transport/conn.ts";
import { applyHeaderRules, type HeaderRule, type HeaderVariables } from "./header_rules.ts";

export type { HeaderRule } from "./header_rules.ts";

/** How an HTTP mapping rewrites and guards what passes through it. */
export interface HttpMappingOptions {
  /** Applied to requests sent to the LAN service. */
  request_headers: readonly HeaderRule[];
  /** Applied to responses sent to the visitor. */
  response_headers: readonly HeaderRule[];
  /** Host header value the LAN service sees; `undefined` keeps the visitor's. */
  host_rewrite: string | undefined;
  /** Add X-Forwarded-For (append visitor IP), -Proto and -Host. */
  x_forwarded: boolean;
  /**
   * Visitors must log in with one of these (HTTP Basic); empty = open. Without
   * valid credentials the reply is 401 and no stream is opened; the
   * `Authorization` header is not forwarded to the service.
   */
  basic_auth: readonly { username: string; password: Secret }[];
}

/**
 * Where requests for one host go. Consecutive requests on a visitor
 * connection whose routes have the same `client` and `mapping` share one
 * kept stream.
 */
export interface HttpRoute {
  /** Mapping name, for logs (and the Basic realm). */
  mapping: string;
  /** Client id or name, for logs. */
  client: string;
  options: HttpMappingOptions;
  /**
   * Opens a tunnel stream to the LAN service for this visitor; rejects with an
   * Error whose message says why (e.g. the tunnel is gone).
   */
  open(visitor: HostPort, host: string): Promise<ByteConn>;
}

/** What {@link HttpVhostContext.resolve} found for a host. */
export type RouteResult =
  | { kind: "route"; route: HttpRoute }
  | { kind: "offline"; mapping: string }
  | { kind: "unknown" };

/** Everything {@link serveHttpVisitor} needs besides the connection. */
export interface HttpVhostContext {
  /** Routes a host: the Host header without port, lower-cased. */
  resolve(host: string): RouteResult;
  /** How visitors reached this port (`$scheme`, X-Forwarded-Proto). */
  scheme: "http" | "https";
  log: Logger;
  /** Connection id for logs. */
  id: string;
  limits: { max_header_bytes: number; handshake_timeout_ms: number; idle_timeout_ms: number };
  /** Aborting closes the connection and its stream. */
  signal?: AbortSignal | undefined;
}

/** Body bytes per read while streaming (requests and responses). */
const STREAM_BUFFER_BYTES = 128 * 1024;
/** First read buffer of a visitor connection or stream. */
const INITIAL_READ_BYTES = 16 * 1024;
/** Longest request target written to logs. */
const MAX_LOGGED_PATH = 256;

const PAGE_OFFLINE = "the tunnel client serving this host is offline";
const PAGE_UNREACHABLE = "the service behind this host cannot be reached";

const REASONS: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/**
 * Serves ONE visitor connection on the public HTTP port until either side
 * ends it. Never rejects; always closes `conn` and the stream it opened.
 * Logs one `mapping_request` per request and `mapping_error` when a stream
 * cannot be opened or fails before a response.
 */
export async function serveHttpVisitor(conn: ByteConn, ctx: HttpVhostContext): Promise<void> {
  const session = new VisitorSession(conn, ctx);
  const onAbort = () => session.close();
  if (ctx.signal?.aborted) session.close();
  ctx.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await session.run();
  } catch {
    // the visitor or the stream went away; nothing left to tell anyone
  } finally {
    ctx.signal?.removeEventListener("abort", onAbort);
    session.close();
  }
}

/** A stream to a LAN service, kept while requests go to the same route. */
interface Upstream {
  route: HttpRoute;
  conn: ByteConn;
  reader: BufferedReader;
}

/** What one request did, for its `mapping_request` line. */
interface RequestRecord {
  mapping: string | undefined;
  client: string | undefined;
  host: string | undefined;
  method: string | undefined;
  path: string | undefined;
  status: number;
  error: string | undefined;
}

interface ExchangeResult {
  keepClient: boolean;
  keepUpstream: boolean;
}

/** A reused stream turned out closed before answering; retry on a new one. */
class StaleStreamError extends Error {}

/** The state of one visitor connection. */
class VisitorSession {
  readonly #ctx: HttpVhostContext;
  readonly #visitor: CountedConn;
  readonly #reader: BufferedReader;
  readonly #peer: HostPort;
  #upstream: Upstream | null = null;

  constructor(conn: ByteConn, ctx: HttpVhostContext) {
    this.#ctx = ctx;
    this.#visitor = new CountedConn(conn);
    this.#reader = new BufferedReader(this.#visitor, {
      initialSize: INITIAL_READ_BYTES,
      maxSize: Math.max(ctx.limits.max_header_bytes, STREAM_BUFFER_BYTES),
    });
    let peer: HostPort;
    try {
      peer = { hostname: conn.remoteAddr.hostname, port: conn.remoteAddr.port };
    } catch {
      peer = { hostname: "unknown", port: 0 };
    }
    this.#peer = peer;
  }

  /** Closes the visitor and the stream. Safe to call twice. */
  close(): void {
    this.#visitor.close();
    if (this.#upstream) closeQuietly(this.#upstream.conn);
    this.#upstream = null;
  }

  async run(): Promise<void> {
    const limits = this.#ctx.limits;
    for (let first = true;; first = false) {
      const wait = new Deadline(
        first ? limits.handshake_timeout_ms : limits.idle_timeout_ms,
        () => this.#visitor.close(),
      );
      let headBytes: Uint8Array | null;
      try {
        if (first && !(await this.#looksLikeHttp())) return;
        headBytes = await readHead(this.#reader, limits.max_header_bytes);
      } catch (err) {
        if (err instanceof HttpError) {
          const rec = this.#record();
          rec.status = err.status;
          rec.error = err.message;
          await this.#page(err.status, err.message, { keepAlive: false, headRequest: false });
          this.#logRequest(rec, performance.now(), this.#visitor.bytesWritten);
          return;
        }
        if (wait.expired) return; // handshake or keep-alive idle timeout
        throw err;
      } finally {
        wait.cancel();
      }
      if (headBytes === null) return;
      if (!(await this.#serveRequest(headBytes))) return;
    }
  }

  /** Checks the first byte; answers 400 to obvious non-HTTP (e.g. TLS on the HTTP port). */
  async #looksLikeHttp(): Promise<boolean> {
    if (this.#reader.length === 0 && (await this.#reader.fill()) === null) return false;
    const b = this.#reader.buffered()[0]!;
    if ((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x0d || b === 0x0a) {
      return true;
    }
    const rec = this.#record();
    rec.status = 400;
    rec.error = `Cannot parse request: first byte 0x${
      b.toString(16).padStart(2, "0")
    } does not start an HTTP request`;
    await this.#page(400, rec.error, { keepAlive: false, headRequest: false });
    this.#logRequest(rec, performance.now(), this.#visitor.bytesWritten);
    return false;
  }

  #record(): RequestRecord {
    return {
      mapping: undefined,
      client: undefined,
      host: undefined,
      method: undefined,
      path: undefined,
      status: 0,
      error: undefined,
    };
  }

  #logRequest(rec: RequestRecord, started: number, writtenBefore: number): void {
    this.#ctx.log.info(EVENTS.mapping_request, {
      component: "vhost",
      conn: this.#ctx.id,
      mapping: rec.mapping,
      client: rec.client,
      host: rec.host,
      method: rec.method,
      path: rec.path,
      status: rec.status,
      bytes: this.#visitor.bytesWritten - writtenBefore,
      ms: Math.round(performance.now() - started),
      error: rec.error,
    });
  }

  #logMappingError(rec: RequestRecord, error: string): void {
    rec.error = error;
    this.#ctx.log.warn(EVENTS.mapping_error, {
      component: "vhost",
      conn: this.#ctx.id,
      mapping: rec.mapping,
      client: rec.client,
      host: rec.host,
      error,
    });
  }

  /** Serves one request; resolves to whether the connection stays open. */
  async #serveRequest(headBytes: Uint8Array): Promise<boolean> {
    const started = performance.now();
    const writtenBefore = this.#visitor.bytesWritten;
    const rec = this.#record();
    try {
      return await this.#route(headBytes, rec);
    } catch (err) {
      rec.error ??= errorMessage(err); // e.g. the visitor went away mid-response
      throw err;
    } finally {
      this.#logRequest(rec, started, writtenBefore);
    }
  }

  async #route(headBytes: Uint8Array, rec: RequestRecord): Promise<boolean> {
    let head: RequestHead;
    let framing: BodyFraming;
    let target: { path: string; authority: string | undefined };
    try {
      head = parseRequestHead(headBytes);
      rec.method = head.method;
      rec.path = head.target.length > MAX_LOGGED_PATH
        ? head.target.slice(0, MAX_LOGGED_PATH) + "…"
        : head.target;
      framing = requestBodyFraming(head);
      if (head.method === "CONNECT") {
        throw new HttpError(405, "Cannot serve CONNECT: this port serves HTTP mappings only");
      }
      target = splitTarget(head.target);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      rec.status = err.status;
      rec.error = err.message;
      await this.#page(err.status, err.message, {
        keepAlive: false,
        headRequest: rec.method === "HEAD",
      });
      return false;
    }
    const headRequest = head.method === "HEAD";
    // An error page may keep the connection when no request body is left unread.
    const canKeep = framing.kind === "none" && clientWantsKeepAlive(head);
    let hostValue: string;
    let host: string;
    try {
      hostValue = requestHostValue(head, target.authority);
      host = routingHost(hostValue);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      rec.status = err.status;
      rec.error = err.message;
      await this.#page(err.status, err.message, { keepAlive: false, headRequest });
      return false;
    }
    rec.host = host;
    const found = this.#ctx.resolve(host);
    if (found.kind === "unknown") {
      rec.status = 404;
      return await this.#page(404, `no mapping serves host "${host}"`, {
        keepAlive: canKeep,
        headRequest,
      });
    }
    if (found.kind === "offline") {
      rec.mapping = found.mapping;
      rec.status = 502;
      this.#logMappingError(rec, `Cannot reach mapping "${found.mapping}": ${PAGE_OFFLINE}`);
      return await this.#page(502, PAGE_OFFLINE, { keepAlive: canKeep, headRequest });
    }
    const route = found.route;
    rec.mapping = route.mapping;
    rec.client = route.client;
    const users = route.options.basic_auth;
    if (users.length > 0) {
      const why = checkBasicAuth(users, headerValues(head.headers, "authorization"));
      if (why !== undefined) {
        rec.status = 401;
        rec.error = why;
        return await this.#page(401, "this host requires a user name and password", {
          keepAlive: canKeep,
          headRequest,
          headers: [["WWW-Authenticate", `Basic realm="${realmText(route.mapping)}"`]],
        });
      }
    }
    return await this.#forward(head, framing, target.path, hostValue, host, route, rec, canKeep);
  }

  async #forward(
    head: RequestHead,
    framing: BodyFraming,
    path: string,
    hostValue: string,
    host: string,
    route: HttpRoute,
    rec: RequestRecord,
    canKeep: boolean,
  ): Promise<boolean> {
    const vars: HeaderVariables = {
      remote_addr: this.#peer.hostname,
      host,
      scheme: this.#ctx.scheme,
    };
    const upgrade = upgradeValue(head);
    const outHead = buildRequestHead(head, path, hostValue, route.options, vars, upgrade);
    let up = this.#upstream;
    if (up !== null && !sameRoute(up.route, route)) {
      await this.#dropUpstream();
      up = null;
    }
    for (let attempt = 0;; attempt++) {
      const reused = up !== null;
      if (up === null) {
        try {
          const conn = await route.open(this.#peer, host);
          up = {
            route,
            conn,
            reader: new BufferedReader(conn, {
              initialSize: INITIAL_READ_BYTES,
              maxSize: Math.max(this.#ctx.limits.max_header_bytes, STREAM_BUFFER_BYTES),
            }),
          };
          this.#upstream = up;
        } catch (err) {
          rec.status = 502;
          this.#logMappingError(
            rec,
            `Cannot open a stream for mapping "${route.mapping}": ${errorMessage(err)}`,
          );
          return await this.#page(502, PAGE_UNREACHABLE, {
            keepAlive: canKeep,
            headRequest: head.method === "HEAD",
          });
        }
      }
      try {
        const r = await this.#exchange(head, framing, outHead, up, reused, rec, vars, upgrade);
        if (!r.keepUpstream) {
          closeQuietly(up.conn);
          if (this.#upstream === up) this.#upstream = null;
        }
        return r.keepClient;
      } catch (err) {
        closeQuietly(up.conn);
        if (this.#upstream === up) this.#upstream = null;
        if (err instanceof StaleStreamError && attempt === 0) {
          up = null;
          continue;
        }
        throw err;
      }
    }
  }

  /** Ends the kept stream: FIN first so the service sees a clean end, then close. */
  async #dropUpstream(): Promise<void> {
    const up = this.#upstream;
    this.#upstream = null;
    if (up === null) return;
    try {
      await up.conn.closeWrite();
    } catch {
      // already gone
    }
    closeQuietly(up.conn);
  }

  /** Sends one request on `up` and streams its response back. */
  async #exchange(
    head: RequestHead,
    framing: BodyFraming,
    outHead: Uint8Array,
    up: Upstream,
    reused: boolean,
    rec: RequestRecord,
    vars: HeaderVariables,
    upgrade: string | undefined,
  ): Promise<ExchangeResult> {
    const limits = this.#ctx.limits;
    const visitor = this.#visitor;
    const reader = this.#reader;
    let responseStarted = false;
    let idleFired = false;
    const idle = new IdleTimer(limits.idle_timeout_ms, () => {
      idleFired = true;
      closeQuietly(up.conn);
      if (responseStarted) visitor.close();
    });
    if (
      framing.kind === "chunked" || (framing.kind === "length" && framing.length > reader.length)
    ) {
      reader.reserve(STREAM_BUFFER_BYTES);
    }
    let bodyDone = false;
    let bodyFailed = false;
    /** Why the request body failed: a FramingError is the visitor's fault (400). */
    let bodyError: unknown;
    const bodyTask = streamBody(reader, up.conn, framing, outHead, limits.max_header_bytes, idle)
      .then(() => {
        bodyDone = true;
      }, (err) => {
        bodyFailed = true;
        bodyError = err;
        closeQuietly(up.conn);
      });
    const headRequest = head.method === "HEAD";

    const fail = async (status: number, error: string): Promise<ExchangeResult> => {
      if (bodyError instanceof FramingError && !responseStarted) {
        // The request body could not be framed: that, not the closed stream, is the answer.
        rec.status = 400;
        rec.error = bodyError.message;
        await this.#page(400, bodyError.message, { keepAlive: false, headRequest, linger: true });
        return { keepClient: false, keepUpstream: false };
      }
      rec.status = status;
      this.#logMappingError(rec, error);
      if (!responseStarted) {
        const reason = status === 504
          ? `the service behind this host did not answer within ${limits.idle_timeout_ms} ms`
          : PAGE_UNREACHABLE;
        // While the request body is still being read, nobody else may read the visitor.
        await this.#page(status, reason, {
          keepAlive: false,
          headRequest,
          linger: bodyDone || bodyFailed,
        });
      }
      return { keepClient: false, keepUpstream: false };
    };
    const noAnswer = `Cannot get a response for mapping "${up.route.mapping}"`;
    const timeout = `${noAnswer}: no response within ${limits.idle_timeout_ms} ms`;

    try {
      let resp: ResponseHead;
      let anyResponse = false;
      while (true) {
        let respHead: Uint8Array | null;
        try {
          respHead = await readHead(up.reader, limits.max_header_bytes);
        } catch (err) {
          if (idleFired) return await fail(504, timeout);
          if (err instanceof HttpError) return await fail(502, `${noAnswer}: ${err.message}`);
          if (reused && !anyResponse && framing.kind === "none") {
            await bodyTask;
            throw new StaleStreamError(errorMessage(err));
          }
          return await fail(502, `${noAnswer}: the stream failed: ${errorMessage(err)}`);
        }
        if (respHead === null) {
          if (idleFired) return await fail(504, timeout);
          if (reused && !anyResponse && framing.kind === "none") {
            await bodyTask;
            throw new StaleStreamError("the stream closed before a response");
          }
          return await fail(502, `${noAnswer}: the stream closed before a response`);
        }
        anyResponse = true;
        try {
          resp = parseResponseHead(respHead);
        } catch (err) {
          return await fail(502, `${noAnswer}: ${errorMessage(err)}`);
        }
        if (resp.status === 101) {
          if (upgrade === undefined) {
            return await fail(502, `${noAnswer}: 101 Switching Protocols without an Upgrade`);
          }
          idle.cancel();
          await bodyTask;
          if (bodyFailed) return await fail(502, `${noAnswer}: the request body failed`);
          rec.status = 101;
          responseStarted = true;
          await this.#switchProtocols(resp, up, vars);
          return { keepClient: false, keepUpstream: false };
        }
        if (resp.status >= 100 && resp.status < 200) {
          if (head.version === "HTTP/1.1") await writeAll(visitor, respHead);
          idle.touch();
          continue;
        }
        break;
      }
      let respFraming: BodyFraming;
      try {
        respFraming = responseBodyFraming(resp, head.method);
      } catch (err) {
        return await fail(502, `${noAnswer}: ${errorMessage(err)}`);
      }
      const keepClient = bodyDone && respFraming.kind !== "close" && clientWantsKeepAlive(head);
      const headers = applyHeaderRules(
        stripHopByHop(resp.headers),
        up.route.options.response_headers,
        vars,
      );
      if (!keepClient) headers.push(["Connection", "close"]);
      else if (head.version === "HTTP/1.0") headers.push(["Connection", "keep-alive"]);
      const reason = resp.reason === "" ? "" : ` ${resp.reason}`;
      const visitorHead = serializeHead(`${resp.version} ${resp.status}${reason}`, headers);
      if (
        respFraming.kind === "chunked" || respFraming.kind === "close" ||
        (respFraming.kind === "length" && respFraming.length > up.reader.length)
      ) {
        up.reader.reserve(STREAM_BUFFER_BYTES);
      }
      rec.status = resp.status;
      responseStarted = true;
      try {
        await streamBody(
          up.reader,
          visitor,
          respFraming,
          visitorHead,
          limits.max_header_bytes,
          idle,
          true,
        );
      } catch (err) {
        if (err instanceof FramingError && !err.prefixSent) {
          responseStarted = false;
          return await fail(502, `${noAnswer}: ${err.message}`);
        }
        rec.error = idleFired
          ? `idle timeout after ${limits.idle_timeout_ms} ms`
          : `Cannot relay the response of mapping "${up.route.mapping}": ${errorMessage(err)}`;
        visitor.close();
        return { keepClient: false, keepUpstream: false };
      }
      const keepUpstream = bodyDone && !bodyFailed && respFraming.kind !== "close" &&
        upstreamKeepsAlive(resp);
      return { keepClient, keepUpstream };
    } finally {
      idle.cancel();
      if (!bodyDone && framing.kind !== "none") {
        // The response ended first: the rest of the request body cannot be framed.
        visitor.close();
        closeQuietly(up.conn);
      }
      await bodyTask;
    }
  }

  /** 101: pass the response on, then relay raw bytes both ways until both ends close. */
  async #switchProtocols(resp: ResponseHead, up: Upstream, vars: HeaderVariables): Promise<void> {
    const headers = applyHeaderRules(
      stripHopByHop(resp.headers),
      up.route.options.response_headers,
      vars,
    );
    headers.push(["Connection", "Upgrade"]);
    const protocols = headerValues(resp.headers, "upgrade");
    if (protocols.length > 0) headers.push(["Upgrade", protocols.join(", ")]);
    const reason = resp.reason === "" ? "" : ` ${resp.reason}`;
    await writeAll(this.#visitor, serializeHead(`${resp.version} 101${reason}`, headers));
    const fromService = up.reader.take();
    if (fromService.length > 0) await writeAll(this.#visitor, fromService);
    const fromVisitor = this.#reader.take();
    if (fromVisitor.length > 0) await writeAll(up.conn, fromVisitor);
    if (this.#upstream === up) this.#upstream = null; // the relay owns it now
    await relay(this.#visitor, up.conn, {
      idleTimeoutMs: this.#ctx.limits.idle_timeout_ms,
      signal: this.#ctx.signal,
    });
  }

  /**
   * Writes an error page. With `keepAlive` resolves to `true` (the connection
   * goes on); otherwise half-closes and drops input for a moment (`linger`, on
   * by default) so that unread request bytes do not turn the close into a
   * reset that destroys the page, and resolves to `false`.
   */
  async #page(
    status: number,
    reason: string,
    options: {
      keepAlive: boolean;
      headRequest: boolean;
      headers?: readonly HttpHeader[];
      linger?: boolean;
    },
  ): Promise<boolean> {
    try {
      await writeAll(
        this.#visitor,
        errorPage(status, reason, options.keepAlive, options.headRequest, options.headers ?? []),
      );
      if (options.keepAlive) return true;
    } catch {
      return false; // the visitor is gone
    }
    if (options.linger !== false) await lingerClose(this.#visitor, this.#reader);
    return false;
  }
}

/** Whether a kept stream of route `a` may carry a request for route `b`. */
function sameRoute(a: HttpRoute, b: HttpRoute): boolean {
  return a === b || (a.mapping === b.mapping && a.client === b.client);
}

/**
 * Splits a request target into the origin-form path to forward and, for an
 * absolute-form target (`http://host/path`), its authority (which then
 * overrides Host, RFC 9112 §3.2.2).
 */
function splitTarget(target: string): { path: string; authority: string | undefined } {
  if (target.startsWith("/") || target === "*") return { path: target, authority: undefined };
  const m = /^[Hh][Tt][Tt][Pp][Ss]?:\/\/([^/?#]*)([^#]*)/.exec(target);
  if (!m) {
    throw new HttpError(
      400,
      `Cannot route request target "${clip(target)}": expected a path or an absolute URL`,
    );
  }
  let authority = m[1]!;
  const at = authority.lastIndexOf("@");
  if (at !== -1) authority = authority.slice(at + 1);
  let path = m[2]!;
  if (path === "") path = "/";
  else if (path.startsWith("?")) path = "/" + path;
  return { path, authority };
}

/** The Host value the visitor asked for (authority of an absolute target wins). */
function requestHostValue(head: RequestHead, authority: string | undefined): string {
  if (authority !== undefined) return authority;
  const values = headerValues(head.headers, "host");
  if (values.length > 1) {
    throw new HttpError(400, "Cannot route request: more than one Host header");
  }
  const value = values[0];
  if (value === undefined || value === "") {
    throw new HttpError(400, "Cannot route request: a Host header is required");
  }
  return value;
}

const HOST_REGEXP =
  /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?))(?::(\d{1,5}))?$/;

/** The routing key of a Host value: lower-case, without port or trailing dot. */
function routingHost(value: string): string {
  const m = HOST_REGEXP.exec(value);
  if (!m || (m[3] !== undefined && Number(m[3]) > 65535) || value.length > 300) {
    throw new HttpError(400, `Cannot route request: Host "${clip(value)}" is not a host name`);
  }
  const host = (m[1] ?? m[2]!).toLowerCase();
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

/** The Upgrade protocols of a request that asks to switch (`Connection: upgrade`). */
function upgradeValue(head: RequestHead): string | undefined {
  if (head.version !== "HTTP/1.1") return undefined;
  if (!headerTokens(head.headers, "connection").includes("upgrade")) return undefined;
  const values = headerValues(head.headers, "upgrade");
  return values.length > 0 ? values.join(", ") : undefined;
}

/** The head sent to the LAN service. */
function buildRequestHead(
  head: RequestHead,
  path: string,
  hostValue: string,
  options: HttpMappingOptions,
  vars: HeaderVariables,
  upgrade: string | undefined,
): Uint8Array {
  const headers: HttpHeader[] = [["Host", options.host_rewrite ?? hostValue]];
  const auth = options.basic_auth.length > 0;
  for (const h of stripHopByHop(head.headers)) {
    const lower = h[0].toLowerCase();
    if (lower === "host") continue;
    if (auth && lower === "authorization") continue;
    if (
      options.x_forwarded &&
      (lower === "x-forwarded-for" || lower === "x-forwarded-proto" ||
        lower === "x-forwarded-host")
    ) continue;
    headers.push(h);
  }
  if (options.x_forwarded) {
    const prior = headerValues(head.headers, "x-forwarded-for");
    headers.push(["X-Forwarded-For", [...prior, vars.remote_addr].join(", ")]);
    headers.push(["X-Forwarded-Proto", vars.scheme]);
    headers.push(["X-Forwarded-Host", hostValue]);
  }
  if (upgrade !== undefined) {
    headers.push(["Connection", "Upgrade"]);
    headers.push(["Upgrade", upgrade]);
  }
  const out = applyHeaderRules(headers, options.request_headers, vars);
  return serializeHead(`${head.method} ${path} ${head.version}`, out);
}

/** `undefined` when the credentials match one of `users`, else why not. */
function checkBasicAuth(
  users: readonly { username: string; password: Secret }[],
  values: readonly string[],
): string | undefined {
  if (values.length === 0) return "Cannot authenticate: credentials are required";
  if (values.length > 1) return "Cannot authenticate: more than one Authorization header";
  let creds: { username: string; password: string };
  try {
    creds = parseBasicCredentials(values[0]!);
  } catch {
    return "Cannot authenticate: malformed Authorization header";
  }
  return checkCredentials(users, creds.username, creds.password)
    ? undefined
    : `Cannot authenticate user "${clip(creds.username)}": wrong user name or password`;
}

function realmText(mapping: string): string {
  return mapping.replace(/[^\x20-\x7e]|["\\]/g, "_");
}

function clip(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 80 ? printable.slice(0, 80) + "…" : printable;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const encoder = new TextEncoder();

/** A complete small HTML error reply. */
function errorPage(
  status: number,
  reason: string,
  keepAlive: boolean,
  headRequest: boolean,
  extraHeaders: readonly HttpHeader[],
): Uint8Array {
  const title = `${status} ${REASONS[status] ?? "Error"}`;
  // deno-lint-ignore no-control-regex
  const line = reason.replace(/[\x00-\x1f\x7f]+/g, " ").slice(0, 300);
  const body = encoder.encode(
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>\n` +
      `<body><h1>${title}</h1>\n<p>${escapeHtml(line)}</p>\n<hr><p>wmproxy</p></body></html>\n`,
  );
  const head = serializeHead(`HTTP/1.1 ${title}`, [
    ...extraHeaders,
    ["Content-Type", "text/html; charset=utf-8"],
    ["Content-Length", String(body.length)],
    ["Cache-Control", "no-store"],
    ["Connection", keepAlive ? "keep-alive" : "close"],
  ]);
  if (headRequest) return head;
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}
