/**
 * Proxying a request to a location's `proxy_pass` through an injected
 * `fetch`: upstream groups (src/upstream) pick the server; a connect failure
 * moves on to the next server, and so does a failure before the response
 * header for idempotent requests whose body can be replayed. Timeouts answer
 * 504, other failures 502. Connect errors, timeouts and 5xx count against the
 * server (passive health checks).
 *
 * @module
 */
import type { LocationConfig } from "../config/http_section.ts";
import type { UpstreamGroup, UpstreamPeer } from "../upstream/mod.ts";
import { formatHostPort } from "../transport/conn.ts";
import { DialError } from "../proxy/dial.ts";
import { EVENTS } from "../observability/events.ts";
import type { Logger } from "../observability/log.ts";
import { bufferBody, watchBody } from "./_body.ts";
import { HttpStatusError, statusResponse } from "./_errors.ts";
import type { FetchLike, RequestContext } from "./context.ts";
import { stripHopByHop, upstreamRequestHeaders } from "./headers.ts";

/** Request bodies up to this size are buffered, so a failed attempt can be retried. */
export const REPLAY_BUFFER_BYTES = 1024 * 1024;

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

/** A parsed `proxy_pass`. */
export interface ProxyTarget {
  scheme: "http" | "https";
  /** `host[:port]` of the URL. */
  authority: string;
  /** The upstream group named by the URL's host, if any. */
  group: string | undefined;
  /** The URL's path, or `undefined` when it has none (the request URI passes unchanged). */
  path: string | undefined;
}

/** Parses a `proxy_pass` URL; `groups` are the known upstream names. */
export function parseProxyPass(url: string, groups: ReadonlySet<string>): ProxyTarget {
  const u = new URL(url);
  const m = /^[a-z]+:\/\/[^/]+(\/.*)?$/i.exec(url);
  const hostIsGroup = u.port === "" && groups.has(u.hostname);
  return {
    scheme: u.protocol === "https:" ? "https" : "http",
    authority: u.host,
    group: hostIsGroup ? u.hostname : undefined,
    path: m?.[1],
  };
}

/**
 * The path and query to send upstream: the request's own when the target
 * has no path; otherwise the target path replaces the matched prefix (nginx).
 */
export function upstreamPath(
  ctx: { url: { pathname: string; search: string }; vars: { uri: string } },
  target: ProxyTarget,
  location: LocationConfig,
): string {
  const raw = ctx.url.pathname + ctx.url.search;
  if (target.path === undefined) return raw;
  const { kind, value } = location.pattern;
  if (kind === "exact") return target.path + ctx.url.search;
  const prefix = value;
  let rest: string;
  if (ctx.url.pathname.startsWith(prefix)) rest = ctx.url.pathname.slice(prefix.length);
  else if (ctx.vars.uri.startsWith(prefix)) rest = encodeURI(ctx.vars.uri.slice(prefix.length));
  else rest = ctx.url.pathname;
  let out = target.path + rest;
  if (target.path.endsWith("/") && rest.startsWith("/")) out = target.path + rest.slice(1);
  return out + ctx.url.search;
}

type Failure = "connect" | "timeout" | "io";

function classify(err: unknown): Failure {
  if (err instanceof DOMException && err.name === "TimeoutError") return "timeout";
  if (err instanceof DialError) return err.reason === "timeout" ? "timeout" : "connect";
  const text = `${(err as Error)?.message ?? ""} ${String((err as Error)?.cause ?? "")}`;
  if (/\(Connect\)|connect error|Connection refused|dns error|No route to host/i.test(text)) {
    return "connect";
  }
  return "io";
}

/** Dependencies of {@link proxyRequest}. */
export interface ProxyDeps {
  fetch: FetchLike;
  groups: ReadonlyMap<string, UpstreamGroup>;
  now: () => number;
  /** Where failed attempts are logged (`http_upstream_error`). */
  log: Logger | undefined;
}

interface Attempt {
  peer: UpstreamPeer | undefined;
  group: UpstreamGroup | undefined;
  hostPort: string;
}

/** Proxies `ctx.req` to the location's upstream. */
export async function proxyRequest(
  ctx: RequestContext,
  location: LocationConfig,
  deps: ProxyDeps,
): Promise<Response> {
  const target = parseProxyPass(location.proxy_pass!, new Set(deps.groups.keys()));
  const group = target.group === undefined ? undefined : deps.groups.get(target.group);
  const t = location.timeouts;
  const req = ctx.req;

  // The body: refused when too large, buffered when small (replayable), else streamed.
  const max = location.max_body_size;
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (max > 0 && declared > max) return statusResponse(413, "Content Too Large");
  let body: Uint8Array | ReadableStream<Uint8Array> | null = null;
  let replayable = true;
  if (req.body !== null) {
    const watched = watchBody(req.body, {
      idleTimeoutMs: t.client_body_ms,
      timeoutError: () => new HttpStatusError(408, "request body timeout"),
      ...(max > 0
        ? { maxBytes: max, limitError: () => new HttpStatusError(413, "request body too large") }
        : {}),
    });
    try {
      const buffered = await bufferBody(watched, REPLAY_BUFFER_BYTES);
      body = buffered.bytes ?? buffered.stream!;
      replayable = buffered.bytes !== undefined;
    } catch (err) {
      if (err instanceof HttpStatusError) return statusResponse(err.status, err.message);
      return statusResponse(400, "Bad Request");
    }
  }
  const retryAfterSend = replayable && IDEMPOTENT.has(req.method);
  const tries = group === undefined
    ? 1
    : location.next_upstream_tries > 0
    ? location.next_upstream_tries
    : group.peers.length;

  const tried = new Set<string>();
  let last: Failure = "io";
  for (let i = 0; i < tries; i++) {
    let attempt: Attempt;
    if (group !== undefined) {
      const peer = group.pick(ctx.vars.remote_addr, tried);
      if (peer === undefined) break;
      tried.add(peer.id);
      attempt = { peer, group, hostPort: formatHostPort(peer.addr) };
    } else {
      attempt = { peer: undefined, group: undefined, hostPort: target.authority };
    }
    const started = deps.now();
    const record = { addr: attempt.hostPort, status: "-", ms: "-" };
    ctx.upstream.push(record);
    const url = `${target.scheme}://${attempt.hostPort}${upstreamPath(ctx, target, location)}`;
    const headers = upstreamRequestHeaders(req, ctx.vars, {
      preserveHost: location.preserve_host,
      xForwarded: location.x_forwarded,
      upstreamHost: attempt.hostPort,
      rules: location.request_headers,
    });
    const ac = new AbortController();
    // Buffered body: connect + read until the header. Streamed body: connect
    // + send until the first chunk is taken, send between chunks, then read.
    let timer: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    const arm = (ms: number) => {
      clearTimeout(timer);
      if (settled) return;
      timer = setTimeout(
        () => ac.abort(new DOMException("upstream timed out", "TimeoutError")),
        ms,
      );
    };
    let sendBody = body;
    if (body instanceof ReadableStream) {
      arm(t.upstream_connect_ms + t.upstream_send_ms);
      sendBody = watchBody(body, {
        onChunk: () => arm(t.upstream_send_ms),
        onEnd: (_n, error) => {
          if (error === undefined) arm(t.upstream_read_ms);
        },
      });
    } else {
      arm(t.upstream_connect_ms + t.upstream_read_ms);
    }
    const onClientGone = () => ac.abort(new DOMException("client went away", "AbortError"));
    req.signal.addEventListener("abort", onClientGone, { once: true });
    if (attempt.peer !== undefined) attempt.group!.acquire(attempt.peer);
    let res: Response;
    try {
      res = await deps.fetch(url, {
        method: req.method,
        headers,
        body: sendBody as BodyInit | null,
        redirect: "manual",
        signal: ac.signal,
      });
    } catch (err) {
      settled = true;
      clearTimeout(timer);
      req.signal.removeEventListener("abort", onClientGone);
      if (attempt.peer !== undefined) attempt.group!.release(attempt.peer);
      const cause = ac.signal.aborted ? ac.signal.reason : err;
      record.ms = ((deps.now() - started) / 1000).toFixed(3);
      if (cause instanceof HttpStatusError) return statusResponse(cause.status, cause.message);
      if (cause instanceof DOMException && cause.name === "AbortError") {
        return statusResponse(499, "Client Closed Request");
      }
      last = classify(cause);
      const retry = (last === "connect" || retryAfterSend) && i + 1 < tries;
      deps.log?.warn(EVENTS.http_upstream_error, {
        upstream: attempt.hostPort,
        kind: last,
        error: errorText(cause),
        uri: ctx.vars.request_uri,
        retry,
      });
      if (attempt.peer !== undefined) {
        attempt.group!.reportFailure(attempt.peer, `${last}: ${errorText(cause)}`);
      }
      if (last === "connect" || retryAfterSend) continue;
      break;
    }
    settled = true;
    clearTimeout(timer);
    record.status = String(res.status);
    record.ms = ((deps.now() - started) / 1000).toFixed(3);
    if (attempt.peer !== undefined) {
      if (res.status >= 500) attempt.group!.reportFailure(attempt.peer, `status ${res.status}`);
      else attempt.group!.reportSuccess(attempt.peer);
    }
    const outHeaders = stripHopByHop(res.headers);
    const done = () => {
      req.signal.removeEventListener("abort", onClientGone);
      if (attempt.peer !== undefined) attempt.group!.release(attempt.peer);
    };
    let outBody: ReadableStream<Uint8Array> | null = res.body;
    if (outBody === null || req.method === "HEAD") {
      outBody?.cancel().catch(() => {});
      outBody = null;
      done();
    } else {
      outBody = watchBody(outBody, {
        idleTimeoutMs: t.upstream_read_ms,
        timeoutError: () => new DOMException("upstream read timed out", "TimeoutError"),
        onEnd: done,
      });
    }
    return new Response(outBody, {
      status: res.status,
      statusText: res.statusText,
      headers: outHeaders,
    });
  }
  if (group !== undefined && tried.size === 0) return statusResponse(502, "Bad Gateway");
  return last === "timeout"
    ? statusResponse(504, "Gateway Timeout")
    : statusResponse(502, "Bad Gateway");
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return `${err.message}${cause}`;
  }
  return String(err);
}
