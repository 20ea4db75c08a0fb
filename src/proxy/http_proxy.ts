/**
 * The HTTP side of the forward proxy over raw TCP: absolute-form requests
 * (keep-alive, each request to its own target, upstream reuse per host:port,
 * bodies streamed by their framing) and CONNECT tunnels.
 *
 * @module
 */
import type { ByteConn, HostPort } from "../transport/conn.ts";
import { formatHostPort, writeAll } from "../transport/conn.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage } from "../observability/log.ts";
import { BufferedReader } from "./_buffered_reader.ts";
import { closeQuietly } from "./_counted_conn.ts";
import { Deadline, IdleTimer } from "./_deadline.ts";
import { FramingError } from "../http1/framing.ts";
import { ChunkedScanner, MAX_CHUNK_LINE_BYTES } from "./chunked_scanner.ts";
import { DialError, dialTarget } from "./dial.ts";
import {
  type BodyFraming,
  findHeadEnd,
  headerValues,
  HttpError,
  type HttpHeader,
  latin1Encode,
  parseRequestHead,
  parseResponseHead,
  requestBodyFraming,
  type RequestHead,
  responseBodyFraming,
  type ResponseHead,
} from "./http_head.ts";
import {
  clientWantsKeepAlive,
  errorResponse,
  parseConnectTarget,
  parseProxyTarget,
  type ProxyTarget,
  responseHeadPassesThrough,
  rewriteRequestHead,
  rewriteResponseHeadText,
  upstreamKeepsAlive,
  upstreamKey,
} from "./http_rewrite.ts";
import { authorizeHttp, PROXY_AUTHENTICATE } from "./proxy_auth.ts";
import type { ConnState } from "./proxy_context.ts";
import { relay } from "./relay.ts";

/** Read buffer for streamed bodies. */
const STREAM_BUFFER_BYTES = 64 * 1024;
/** A head and a body chunk up to this size go out in one write. */
const COALESCE_BYTES = 16 * 1024;
/** After an error reply, read and drop input for at most this long before closing. */
const LINGER_MS = 500;
const LINGER_BYTES = 4 * 1024 * 1024;

const EMPTY = new Uint8Array(0);
const CONNECT_ESTABLISHED = new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n");

/** A kept upstream connection. */
interface Upstream {
  key: string;
  conn: ByteConn;
  reader: BufferedReader;
}

/** A reused upstream turned out closed before answering; retry on a new one. */
class StaleUpstreamError extends Error {}

/**
 * Serves HTTP requests on a connection whose first bytes look like HTTP,
 * until the client or the proxy ends it.
 */
export async function serveHttpProxy(s: ConnState): Promise<void> {
  const { ctx, reader } = s;
  const limits = ctx.config.limits;
  let upstream: Upstream | null = null;
  const live: LiveExchange = { idle: undefined, up: null };
  // One listener per connection (not per request): an abort also closes the
  // upstream in use; serveProxyConnection closes the client.
  const onAbort = () => {
    if (live.up) closeQuietly(live.up.conn);
  };
  ctx.signal?.addEventListener("abort", onAbort, { once: true });
  const closeClient = () => s.client.close();
  try {
    for (let first = true;; first = false) {
      // Keep-alive wait for the next head: the connection's reusable idle timer
      // (no timer is created per request).
      let waitIdle: IdleTimer | undefined;
      if (!first) {
        if (live.idle === undefined) live.idle = new IdleTimer(limits.idle_timeout_ms, closeClient);
        else live.idle.restart(closeClient);
        waitIdle = live.idle;
      }
      let headBytes: Uint8Array | null;
      try {
        headBytes = await readHeadView(reader, limits.max_header_bytes);
      } catch (err) {
        if (err instanceof HttpError) {
          protocolError(s, err.message);
          await respond(s, err.status, err.message);
          return;
        }
        if (waitIdle !== undefined && waitIdle.fired) return; // keep-alive idle timeout
        throw err;
      } finally {
        if (waitIdle !== undefined) waitIdle.pause();
        else s.handshake.cancel();
      }
      if (headBytes === null) return;

      let head: RequestHead;
      let framing: BodyFraming;
      try {
        head = parseRequestHead(headBytes);
        // One framing decision (src/http1/framing.ts); a refusal ends the connection.
        framing = requestBodyFraming(head);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        protocolError(s, err.message);
        await respond(s, err.status, err.message);
        return;
      }
      s.requests++;
      const isConnect = head.method === "CONNECT";
      const protocol = isConnect ? "https" : "http";
      s.protocol = protocol;
      if (!ctx.config.protocols.includes(protocol)) {
        const message = isConnect
          ? `protocol "https" (CONNECT) is disabled on this proxy`
          : `protocol "http" is disabled on this proxy`;
        ctx.log.warn(EVENTS.protocol_disabled, {
          component: "proxy",
          conn: ctx.id,
          peer: s.peer,
          protocol,
        });
        await respond(s, 403, message);
        return;
      }
      const auth = authorizeHttp(
        ctx.config.users,
        headerValues(head.headers, "proxy-authorization"),
      );
      if (!auth.ok) {
        ctx.log.warn(EVENTS.auth_failed, {
          component: "proxy",
          conn: ctx.id,
          peer: s.peer,
          protocol,
          reason: auth.reason,
          user: auth.username,
        });
        const why = auth.reason === "missing"
          ? "credentials are required"
          : auth.reason === "malformed"
          ? "malformed Proxy-Authorization header"
          : "wrong user name or password";
        await respond(s, 407, `Cannot authenticate: ${why}`, [
          ["Proxy-Authenticate", PROXY_AUTHENTICATE],
        ]);
        return;
      }
      if (isConnect) {
        if (upstream) closeQuietly(upstream.conn);
        upstream = null;
        await serveConnect(s, head);
        return;
      }
      const result = await forwardRequest(s, head, framing, upstream, live);
      upstream = result.upstream;
      if (!result.keepAlive) return;
    }
  } finally {
    live.idle?.cancel();
    ctx.signal?.removeEventListener("abort", onAbort);
    if (upstream) closeQuietly(upstream.conn);
  }
}

/** Per-connection state reused by every request on a keep-alive connection. */
interface LiveExchange {
  /** The connection's idle timer, created at the first keep-alive wait or exchange. */
  idle: IdleTimer | undefined;
  /** The upstream of the exchange in progress (closed on abort). */
  up: Upstream | null;
}

/**
 * Reads one message head. Resolves to `null` when the stream ends before any
 * byte of a head; throws {@link HttpError} 431 when it exceeds `maxBytes`.
 */
export async function readHead(
  reader: BufferedReader,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const view = await readHeadView(reader, maxBytes);
  return view === null ? null : view.slice();
}

/**
 * {@link readHead} without the copy: the head is a view into the reader's
 * buffer, valid until the reader's next `fill`/`reserve`. Parse it (or write
 * it out) before reading on.
 */
export async function readHeadView(
  reader: BufferedReader,
  maxBytes: number,
): Promise<Uint8Array | null> {
  let scanned = 0;
  while (true) {
    const buf = reader.buffered();
    const end = findHeadEnd(buf, maxBytes, scanned);
    if (end >= 0) {
      reader.consume(end);
      return buf.subarray(0, end);
    }
    scanned = buf.length;
    let n: number | null;
    try {
      n = await reader.fill();
    } catch (err) {
      if (err instanceof RangeError) {
        throw new HttpError(431, `Cannot read message head: it exceeds ${maxBytes} bytes`);
      }
      throw err;
    }
    if (n === null) {
      if (reader.buffered().every((b) => b === 0x0d || b === 0x0a)) return null;
      throw new Error("Cannot read message head: the connection closed in the middle of it");
    }
  }
}

function protocolError(s: ConnState, message: string): void {
  s.ctx.log.info(EVENTS.protocol_error, {
    component: "proxy",
    conn: s.ctx.id,
    peer: s.peer,
    protocol: s.protocol ?? "http",
    error: message,
  });
}

/**
 * Sends a short error reply and closes gracefully: half-close, then drop
 * input for a moment so that unread request bytes do not turn the close into
 * a reset that destroys the reply.
 */
async function respond(
  s: ConnState,
  status: number,
  message: string,
  extraHeaders: readonly HttpHeader[] = [],
  lingerAfter = true,
): Promise<void> {
  s.error ??= message;
  try {
    await writeAll(s.client, errorResponse(status, message, extraHeaders));
  } catch {
    return; // the client is gone
  }
  if (lingerAfter) await lingerClose(s.client, s.reader);
}

/**
 * Ends a connection after a last reply without losing it: half-close, then
 * read and drop input (what `reader` holds included) for at most
 * {@link LINGER_MS}, so that unread request bytes do not turn the close into
 * a reset that destroys the reply. The caller closes `conn` afterwards.
 */
export async function lingerClose(conn: ByteConn, reader: BufferedReader): Promise<void> {
  try {
    await conn.closeWrite();
  } catch {
    return; // the peer is gone
  }
  const linger = new Deadline(LINGER_MS, () => conn.close());
  try {
    let dropped = reader.take().length;
    const scratch = new Uint8Array(16 * 1024);
    while (dropped < LINGER_BYTES) {
      const n = await conn.read(scratch);
      if (n === null) break;
      dropped += n;
    }
  } catch {
    // closed by the linger deadline
  } finally {
    linger.cancel();
  }
}

function dialFailureStatus(err: DialError): number {
  if (err.reason === "not_allowed") return 403; // the egress policy (src/proxy/egress_policy.ts)
  return err.reason === "timeout" ? 504 : 502;
}

async function openUpstream(s: ConnState, target: HostPort, key: string): Promise<Upstream> {
  const limits = s.ctx.config.limits;
  const conn = await dialTarget(s.dial, target.hostname, target.port, {
    timeoutMs: limits.connect_timeout_ms,
    signal: s.ctx.signal,
  });
  return {
    key,
    conn,
    reader: new BufferedReader(conn, {
      initialSize: 16 * 1024,
      maxSize: Math.max(limits.max_header_bytes, STREAM_BUFFER_BYTES),
    }),
  };
}

async function forwardRequest(
  s: ConnState,
  head: RequestHead,
  framing: BodyFraming,
  current: Upstream | null,
  live: LiveExchange,
): Promise<{ keepAlive: boolean; upstream: Upstream | null }> {
  const { ctx } = s;
  const debug = ctx.log.enabled("debug");
  const started = performance.now();
  let target: ProxyTarget;
  try {
    target = parseProxyTarget(head.target);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    if (current) closeQuietly(current.conn);
    protocolError(s, err.message);
    await respond(s, err.status, err.message);
    return { keepAlive: false, upstream: null };
  }
  const key = upstreamKey(target);
  s.target = key;
  let up = current?.key === key ? current : null;
  if (current && up === null) closeQuietly(current.conn);
  const outHead = rewriteRequestHead(head, target, {
    via: ctx.config.via,
    forwardedFor: ctx.config.x_forwarded_for ? s.client.remoteAddr.hostname : undefined,
  });
  for (let attempt = 0;; attempt++) {
    const reused = up !== null;
    if (up === null) {
      try {
        up = await openUpstream(s, target, key);
      } catch (err) {
        if (!(err instanceof DialError)) throw err;
        await respond(s, dialFailureStatus(err), err.message);
        return { keepAlive: false, upstream: null };
      }
    }
    try {
      const r = await exchange(s, head, framing, outHead, up, reused, live);
      if (r.headAt > 0) ctx.latency?.request.observe((r.headAt - started) / 1000);
      if (debug) {
        ctx.log.debug(EVENTS.proxy_request, {
          component: "proxy",
          conn: ctx.id,
          method: head.method,
          target: key,
          status: r.status,
          ms: Math.round(performance.now() - started),
        });
      }
      if (!r.keepUpstream) closeQuietly(up.conn);
      return { keepAlive: r.keepClient, upstream: r.keepUpstream ? up : null };
    } catch (err) {
      closeQuietly(up.conn);
      if (err instanceof StaleUpstreamError && attempt === 0) {
        up = null;
        continue;
      }
      throw err;
    }
  }
}

interface ExchangeResult {
  status: number;
  /** `performance.now()` when the final response head arrived; 0 when none did. */
  headAt: number;
  keepClient: boolean;
  keepUpstream: boolean;
}

/** Sends one request upstream and streams its response back. */
async function exchange(
  s: ConnState,
  head: RequestHead,
  framing: BodyFraming,
  outHead: Uint8Array,
  up: Upstream,
  reused: boolean,
  live: LiveExchange,
): Promise<ExchangeResult> {
  const { ctx, client, reader } = s;
  const limits = ctx.config.limits;
  let responseStarted = false;
  let idleFired = false;
  const onIdle = () => {
    idleFired = true;
    closeQuietly(up.conn);
    if (responseStarted) client.close();
  };
  let idle = live.idle;
  if (idle === undefined) idle = live.idle = new IdleTimer(limits.idle_timeout_ms, onIdle);
  else idle.restart(onIdle);
  live.up = up;
  if (ctx.signal?.aborted) {
    closeQuietly(up.conn);
    client.close();
  }

  let bodyDone = false;
  let bodyFailed = false;
  /** Why the request body failed: a FramingError is the client's fault (400). */
  let bodyError: unknown;
  let bodyTask: Promise<void> | undefined;
  if (framing.kind === "none") {
    // No request body: just the head (no concurrent body task needed).
    try {
      await writeAll(up.conn, outHead);
      idle.touch();
      bodyDone = true;
    } catch {
      bodyFailed = true;
      closeQuietly(up.conn);
    }
  } else {
    if (
      framing.kind === "chunked" || (framing.kind === "length" && framing.length > reader.length)
    ) {
      reader.reserve(STREAM_BUFFER_BYTES);
    }
    bodyTask = streamBody(reader, up.conn, framing, outHead, limits.max_header_bytes, idle)
      .then(() => {
        bodyDone = true;
      }, (err) => {
        bodyFailed = true;
        bodyError = err;
        closeQuietly(up.conn);
      });
  }

  const fail = async (status: number, message: string): Promise<ExchangeResult> => {
    if (bodyError instanceof FramingError && !responseStarted) {
      // The request body could not be framed: that, not the closed upstream, is the answer.
      status = 400;
      message = bodyError.message;
      protocolError(s, message);
    }
    if (responseStarted) {
      s.error ??= message;
    } else {
      // While the request body is still being read, nobody else may read the client.
      await respond(s, status, message, [], bodyDone || bodyFailed);
    }
    return { status, headAt: 0, keepClient: false, keepUpstream: false };
  };

  try {
    let resp: ResponseHead;
    let respHead: Uint8Array | null;
    let anyResponse = false;
    while (true) {
      try {
        respHead = await readHeadView(up.reader, limits.max_header_bytes);
      } catch (err) {
        if (idleFired) {
          return await fail(
            504,
            `Cannot get a response from "${up.key}": no response within ${limits.idle_timeout_ms} ms`,
          );
        }
        if (err instanceof HttpError) {
          return await fail(502, `Cannot read response from "${up.key}": ${err.message}`);
        }
        if (reused && !anyResponse && framing.kind === "none") {
          await bodyTask;
          throw new StaleUpstreamError(errorMessage(err));
        }
        return await fail(502, `Cannot read response from "${up.key}": ${errorMessage(err)}`);
      }
      if (respHead === null) {
        if (idleFired) {
          return await fail(
            504,
            `Cannot get a response from "${up.key}": no response within ${limits.idle_timeout_ms} ms`,
          );
        }
        if (reused && !anyResponse && framing.kind === "none") {
          await bodyTask;
          throw new StaleUpstreamError("closed before responding");
        }
        return await fail(
          502,
          `Cannot read response from "${up.key}": the connection closed before a response`,
        );
      }
      anyResponse = true;
      try {
        resp = parseResponseHead(respHead);
      } catch (err) {
        return await fail(502, `Cannot read response from "${up.key}": ${errorMessage(err)}`);
      }
      if (resp.status >= 100 && resp.status < 200) {
        if (resp.status === 101) {
          return await fail(
            502,
            `Cannot proxy response from "${up.key}": protocol upgrades are not supported`,
          );
        }
        if (head.version === "HTTP/1.1") await writeAll(client, respHead);
        idle.touch();
        continue;
      }
      break;
    }
    const headAt = performance.now();
    let respFraming: BodyFraming;
    try {
      respFraming = responseBodyFraming(resp, head.method);
    } catch (err) {
      return await fail(502, `Cannot read response from "${up.key}": ${errorMessage(err)}`);
    }
    const keepClient = bodyDone && respFraming.kind !== "close" && clientWantsKeepAlive(head);
    // Nothing to change in the head (the common keep-alive case): it goes out as received.
    const clientHead = keepClient && !ctx.config.via && head.version === "HTTP/1.1" &&
        responseHeadPassesThrough(resp)
      ? respHead.slice()
      : latin1Encode(rewriteResponseHeadText(resp, {
        via: ctx.config.via,
        close: !keepClient,
        http10Client: head.version === "HTTP/1.0",
      }));
    if (
      respFraming.kind !== "none" && respFraming.kind !== "length" ||
      (respFraming.kind === "length" && respFraming.length > up.reader.length)
    ) {
      up.reader.reserve(STREAM_BUFFER_BYTES);
    }
    responseStarted = true;
    try {
      const bodyLength = respFraming.kind === "length" ? respFraming.length : 0;
      if (
        respFraming.kind === "length" && bodyLength <= up.reader.length &&
        bodyLength <= COALESCE_BYTES
      ) {
        // The whole (small) body is buffered: head and body in one buffer and
        // one write, which is what streamBody would send, minus two copies.
        const out = new Uint8Array(clientHead.length + bodyLength);
        out.set(clientHead);
        out.set(up.reader.buffered().subarray(0, bodyLength), clientHead.length);
        await writeAll(client, out);
        up.reader.consume(bodyLength);
        idle.touch();
      } else {
        await streamBody(
          up.reader,
          client,
          respFraming,
          clientHead,
          limits.max_header_bytes,
          idle,
          true,
        );
      }
    } catch (err) {
      if (err instanceof FramingError && !err.prefixSent) {
        responseStarted = false;
        return await fail(502, `Cannot read response from "${up.key}": ${err.message}`);
      }
      s.error ??= idleFired
        ? `idle timeout after ${limits.idle_timeout_ms} ms`
        : `Cannot relay response from "${up.key}": ${errorMessage(err)}`;
      client.close();
      return { status: resp.status, headAt, keepClient: false, keepUpstream: false };
    }
    const keepUpstream = bodyDone && !bodyFailed && respFraming.kind !== "close" &&
      upstreamKeepsAlive(resp);
    return { status: resp.status, headAt, keepClient, keepUpstream };
  } finally {
    idle.pause();
    live.up = null;
    if (!bodyDone && framing.kind !== "none") {
      // The response ended first: the rest of the request body cannot be framed.
      client.close();
      closeQuietly(up.conn);
    }
    await bodyTask;
  }
}

/**
 * Copies one body from `src` to `dst` by its framing, passing the bytes
 * through unchanged; `prefix` (a head) goes out first, coalesced with the
 * first body bytes when they are already buffered. With `holdPrefix` (for
 * responses: a request may wait for `100 Continue` before its body), a
 * chunked body's prefix waits for the first chunk-size line, so that a bad
 * one is found before the head went out. A {@link FramingError} thrown for a
 * malformed body says in `prefixSent` whether the prefix went out.
 */
export async function streamBody(
  src: BufferedReader,
  dst: ByteConn,
  framing: BodyFraming,
  prefix: Uint8Array | null,
  maxTrailerBytes: number,
  idle: IdleTimer,
  holdPrefix = false,
): Promise<void> {
  let pending = prefix;
  try {
    await copyBody();
  } catch (err) {
    if (err instanceof FramingError) err.prefixSent = pending === null;
    throw err;
  }
  async function copyBody(): Promise<void> {
    const flush = async (chunk: Uint8Array): Promise<void> => {
      if (pending !== null) {
        const p = pending;
        pending = null;
        if (chunk.length === 0) {
          await writeAll(dst, p);
        } else if (chunk.length <= COALESCE_BYTES) {
          const both = new Uint8Array(p.length + chunk.length);
          both.set(p);
          both.set(chunk, p.length);
          await writeAll(dst, both);
        } else {
          await writeAll(dst, p);
          await writeAll(dst, chunk);
        }
      } else if (chunk.length > 0) {
        await writeAll(dst, chunk);
      }
      idle.touch();
    };
    /** Makes sure some bytes are buffered; `false` at end of stream. */
    const more = async (): Promise<boolean> => {
      if (src.length > 0) return true;
      if (pending !== null) await flush(EMPTY); // e.g. Expect: 100-continue waits for the head
      const n = await src.fill();
      if (n === null) return false;
      idle.touch();
      return true;
    };
    switch (framing.kind) {
      case "none":
        break;
      case "length": {
        let remaining = framing.length;
        while (remaining > 0) {
          if (!(await more())) {
            throw new Error(
              `Cannot read body: the connection closed with ${remaining} of ${framing.length} bytes missing`,
            );
          }
          const chunk = src.buffered().subarray(0, Math.min(remaining, src.length));
          await flush(chunk);
          src.consume(chunk.length);
          remaining -= chunk.length;
        }
        break;
      }
      case "chunked": {
        const scanner = new ChunkedScanner(maxTrailerBytes);
        if (holdPrefix && pending !== null) {
          while (src.buffered().indexOf(0x0a) === -1 && src.length < MAX_CHUNK_LINE_BYTES + 2) {
            const n = await src.fill();
            if (n === null) break;
            idle.touch();
          }
        }
        while (true) {
          if (!(await more())) {
            throw new Error(
              "Cannot read chunked body: the connection closed before the last chunk",
            );
          }
          const buf = src.buffered();
          const r = scanner.scan(buf);
          await flush(buf.subarray(0, r.consumed));
          src.consume(r.consumed);
          if (r.done) break;
        }
        break;
      }
      case "close": {
        while (await more()) {
          const buf = src.buffered();
          await flush(buf);
          src.consume(buf.length);
        }
        break;
      }
    }
    if (pending !== null) await flush(EMPTY);
  }
}

/** CONNECT: dial, answer 200, then relay bytes both ways. */
async function serveConnect(s: ConnState, head: RequestHead): Promise<void> {
  const { ctx } = s;
  const limits = ctx.config.limits;
  let target: HostPort;
  try {
    target = parseConnectTarget(head.target);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    protocolError(s, err.message);
    await respond(s, err.status, err.message);
    return;
  }
  s.target = formatHostPort(target);
  let conn: ByteConn;
  const dialStarted = performance.now();
  try {
    conn = await dialTarget(s.dial, target.hostname, target.port, {
      timeoutMs: limits.connect_timeout_ms,
      signal: ctx.signal,
    });
    ctx.latency?.connect.observe((performance.now() - dialStarted) / 1000);
  } catch (err) {
    if (!(err instanceof DialError)) throw err;
    await respond(s, dialFailureStatus(err), err.message);
    return;
  }
  try {
    await writeAll(s.client, CONNECT_ESTABLISHED);
    const early = s.reader.take();
    if (early.length > 0) await writeAll(conn, early);
  } catch (err) {
    closeQuietly(conn);
    throw err;
  }
  const r = await relay(s.client, conn, {
    idleTimeoutMs: limits.idle_timeout_ms,
    signal: ctx.signal,
  });
  if (r.error) s.error = r.error.message;
  else if (r.idleTimeout) s.error = `idle timeout after ${limits.idle_timeout_ms} ms`;
}
