/**
 * A `fetch` for the reverse proxy's full handler that speaks HTTP/1.1 to the
 * upstream itself over the same keep-alive pool as the front's fast path
 * (src/reverse/upstream_pool.ts). Unlike the runtime's `fetch`, it sends the
 * request headers it is given and nothing else (no `accept`,
 * `accept-language`, `accept-encoding` or `user-agent` of its own), and it
 * hands the response body on as the upstream sent it (no decompression), so
 * the origin sees the client's headers and the client the origin's bytes.
 *
 * Supported: `http:` and `https:` URLs, a body given as bytes (sent with
 * `content-length`) or a stream (sent with the request's `content-length`, or
 * chunked), `signal` (aborting closes the connection and rejects with its
 * reason). Redirects are never followed.
 *
 * @module
 */
import { closeQuietly } from "../proxy/_counted_conn.ts";
import type { BufferedReader } from "../proxy/_buffered_reader.ts";
import { dialTarget, dialTcpTarget } from "../proxy/dial.ts";
import {
  type BodyFraming,
  type HttpHeader,
  latin1Encode,
  parseResponseHead,
  responseBodyFraming,
  type ResponseHead,
  serializeHeadText,
} from "../proxy/http_head.ts";
import { readHeadView } from "../proxy/http_proxy.ts";
import { upstreamKeepsAlive } from "../proxy/http_rewrite.ts";
import { type ByteConn, parseHostPort, writeAll } from "../transport/conn.ts";
import type { FetchLike } from "./context.ts";
import {
  UPSTREAM_READ_BUFFER_BYTES,
  type UpstreamConn,
  upstreamConn,
  type UpstreamPool,
} from "./upstream_pool.ts";

/** Longest chunk-size or trailer line read from an upstream. */
const MAX_CHUNK_LINE_BYTES = 4096;
/** Most trailer bytes read (and dropped) after a chunked upstream body. */
const MAX_TRAILER_BYTES = 32 * 1024;
/** Request bodies at most this large go out in one write with the head. */
const COALESCE_BYTES = 16 * 1024;
/** Statuses whose response has no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const CRLF = latin1Encode("\r\n");
const LAST_CHUNK = latin1Encode("0\r\n\r\n");

/** Options for {@link createUpstreamFetch}. */
export interface UpstreamFetchOptions {
  /** Idle connections, shared with the fast path. */
  pool: UpstreamPool;
  /** Longest connect; the caller's `signal` usually ends it sooner. @default 60000 */
  connectTimeoutMs?: number;
  /** Extra CA certificates (PEM) trusted for `https:` upstreams besides the system's. */
  caCerts?: readonly string[];
}

/** A parsed `http(s)://authority/path?query` request URL, the path kept byte for byte. */
interface Target {
  tls: boolean;
  hostname: string;
  port: number;
  authority: string;
  path: string;
  /** The pool key: plain and TLS connections to one address are not mixed. */
  key: string;
}

function parseTarget(input: string | URL | Request): Target {
  if (input instanceof Request) {
    throw new TypeError("Cannot fetch upstream: pass a URL and init, not a Request");
  }
  const text = String(input);
  const m = /^(https?):\/\/([^/?#]+)([^#]*)/i.exec(text);
  if (!m) throw new TypeError(`Cannot fetch upstream ${JSON.stringify(text)}: not an http(s) URL`);
  const tls = m[1]!.toLowerCase() === "https";
  const authority = m[2]!;
  const hasPort = /:\d+$/.test(authority);
  const addr = parseHostPort(hasPort ? authority : `${authority}:${tls ? 443 : 80}`);
  const path = m[3] === "" ? "/" : m[3]!.startsWith("?") ? `/${m[3]}` : m[3]!;
  return {
    tls,
    hostname: addr.hostname,
    port: addr.port,
    authority,
    path,
    key: `${tls ? "https" : "http"}://${addr.hostname}:${addr.port}`,
  };
}

/** The request head: the given headers in order, with framing for `body`. */
function requestHead(
  method: string,
  target: Target,
  headers: Headers,
  body: Uint8Array | ReadableStream<Uint8Array> | null,
): { head: Uint8Array; chunked: boolean } {
  const list: HttpHeader[] = [];
  let host = false;
  let length: string | null = null;
  for (const [name, value] of headers) {
    if (name === "transfer-encoding" || name === "connection" || name === "keep-alive") continue;
    if (name === "content-length") {
      length = value;
      continue;
    }
    if (name === "host") host = true;
    list.push([name, value]);
  }
  if (!host) list.unshift(["host", target.authority]);
  let chunked = false;
  if (body instanceof Uint8Array) list.push(["content-length", String(body.length)]);
  else if (body !== null) {
    if (length !== null && /^\d{1,15}$/.test(length)) list.push(["content-length", length]);
    else {
      list.push(["transfer-encoding", "chunked"]);
      chunked = true;
    }
  } else if (length === "0") list.push(["content-length", "0"]);
  return {
    head: latin1Encode(serializeHeadText(`${method} ${target.path} HTTP/1.1`, list)),
    chunked,
  };
}

/** Reads one CRLF (or LF) terminated line of at most `max` bytes; `null` at end of stream. */
async function readLine(reader: BufferedReader, max: number): Promise<string | null> {
  let scanned = 0;
  while (true) {
    const buf = reader.buffered();
    const nl = buf.indexOf(0x0a, scanned);
    if (nl >= 0) {
      if (nl > max) break;
      let line = "";
      for (let i = 0; i < nl; i++) line += String.fromCharCode(buf[i]!);
      reader.consume(nl + 1);
      return line.endsWith("\r") ? line.slice(0, -1) : line;
    }
    if (buf.length > max) break;
    scanned = buf.length;
    if ((await reader.fill()) === null) return null;
  }
  throw new Error(`Cannot read chunked upstream body: a line exceeds ${max} bytes`);
}

/**
 * The response body as a stream of its payload (chunked framing removed).
 * `done(reusable)` is called once: at the end (whether the connection can be
 * kept), or on error or cancel (never reusable).
 */
function bodyStream(
  reader: BufferedReader,
  framing: BodyFraming,
  done: (reusable: boolean, error?: unknown) => void,
): ReadableStream<Uint8Array> {
  let remaining = framing.kind === "length" ? framing.length : 0;
  /** Chunked: bytes left in the current chunk; -1 = a size line comes next. */
  let chunkLeft = -1;
  let finished = false;
  const finish = (reusable: boolean, error?: unknown) => {
    if (finished) return;
    finished = true;
    done(reusable, error);
  };
  const more = async (what: string): Promise<void> => {
    if (reader.length > 0) return;
    if ((await reader.fill()) === null) {
      throw new Error(`Cannot read upstream body: the connection closed ${what}`);
    }
  };
  const take = (n: number): Uint8Array => {
    const chunk = reader.buffered().slice(0, Math.min(n, reader.length));
    reader.consume(chunk.length);
    return chunk;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (framing.kind === "length") {
          if (remaining === 0) {
            controller.close();
            return finish(true);
          }
          await more(`with ${remaining} of ${framing.length} bytes missing`);
          const chunk = take(remaining);
          remaining -= chunk.length;
          controller.enqueue(chunk);
          if (remaining === 0) {
            controller.close();
            finish(true);
          }
        } else if (framing.kind === "close") {
          if (reader.length === 0 && (await reader.fill()) === null) {
            controller.close();
            return finish(false);
          }
          controller.enqueue(take(reader.length));
        } else if (framing.kind === "chunked") {
          if (chunkLeft < 0) {
            const line = await readLine(reader, MAX_CHUNK_LINE_BYTES);
            if (line === null) {
              throw new Error("Cannot read upstream body: it ended in a chunk size");
            }
            const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
            if (!size) throw new Error(`Cannot read upstream body: bad chunk size line`);
            chunkLeft = parseInt(size[1]!, 16);
            if (chunkLeft === 0) {
              let trailer = 0;
              for (let l = await readLine(reader, MAX_CHUNK_LINE_BYTES); l !== "";) {
                if (l === null) throw new Error("Cannot read upstream body: it ended in trailers");
                trailer += l.length;
                if (trailer > MAX_TRAILER_BYTES) {
                  throw new Error("Cannot read upstream body: trailers too large");
                }
                l = await readLine(reader, MAX_CHUNK_LINE_BYTES);
              }
              controller.close();
              return finish(true);
            }
          }
          await more("inside a chunk");
          const chunk = take(chunkLeft);
          chunkLeft -= chunk.length;
          if (chunkLeft === 0) {
            const end = await readLine(reader, 2);
            if (end !== "") {
              throw new Error("Cannot read upstream body: chunk not followed by CRLF");
            }
            chunkLeft = -1;
          }
          controller.enqueue(chunk);
        } else {
          controller.close();
          finish(true);
        }
      } catch (err) {
        finish(false, err);
        controller.error(err);
      }
    },
    cancel(reason) {
      finish(false, reason);
    },
  }, { highWaterMark: 0 });
}

/** Sends a streamed request body, chunked or as is. */
async function sendStream(
  conn: ByteConn,
  body: ReadableStream<Uint8Array>,
  chunked: boolean,
): Promise<void> {
  for await (const chunk of body) {
    if (chunk.length === 0) continue;
    if (chunked) {
      await writeAll(conn, latin1Encode(`${chunk.length.toString(16)}\r\n`));
      await writeAll(conn, chunk);
      await writeAll(conn, CRLF);
    } else {
      await writeAll(conn, chunk);
    }
  }
  if (chunked) await writeAll(conn, LAST_CHUNK);
}

/** See the module doc. */
export function createUpstreamFetch(options: UpstreamFetchOptions): FetchLike {
  const { pool } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? 60_000;

  const dial = async (target: Target, signal: AbortSignal): Promise<UpstreamConn> => {
    const tcp = await dialTarget(dialTcpTarget, target.hostname, target.port, {
      timeoutMs: connectTimeoutMs,
      signal,
    });
    if (!target.tls) return upstreamConn(target.key, tcp);
    const onAbort = () => closeQuietly(tcp);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const tls = await Deno.startTls(tcp as Deno.TcpConn, {
        hostname: target.hostname,
        alpnProtocols: ["http/1.1"],
        ...(options.caCerts === undefined ? {} : { caCerts: [...options.caCerts] }),
      });
      await tls.handshake();
      return upstreamConn(target.key, tls);
    } catch (err) {
      closeQuietly(tcp);
      throw err;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  };

  return async (input, init = {}) => {
    const target = parseTarget(input);
    const method = (init.method ?? "GET").toUpperCase();
    const signal = init.signal ?? new AbortController().signal;
    signal.throwIfAborted();
    const rawBody = init.body ?? null;
    let body: Uint8Array | ReadableStream<Uint8Array> | null;
    if (rawBody === null || rawBody instanceof ReadableStream) body = rawBody;
    else if (rawBody instanceof Uint8Array) body = rawBody;
    else if (typeof rawBody === "string") body = new TextEncoder().encode(rawBody);
    else throw new TypeError("Cannot fetch upstream: the body must be bytes, a string or a stream");
    const { head, chunked } = requestHead(method, target, new Headers(init.headers), body);
    const replayable = !(body instanceof ReadableStream);

    // A kept connection the upstream closed meanwhile fails before any
    // response byte: then once more on a fresh one (only a replayable body).
    let up = replayable ? pool.take(target.key) : undefined;
    for (let attempt = 0;; attempt++) {
      const reused = up !== undefined;
      try {
        up ??= await dial(target, signal);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw err;
      }
      const conn = up.conn;
      const onAbort = () => closeQuietly(conn);
      signal.addEventListener("abort", onAbort, { once: true });
      let sent: Promise<void> | undefined;
      let sendFailed = false;
      let resp: ResponseHead;
      try {
        if (body instanceof ReadableStream) {
          await writeAll(conn, head);
          sent = sendStream(conn, body, chunked);
          sent.catch(() => {
            sendFailed = true;
            closeQuietly(conn); // the upstream cannot get a whole request now
          });
        } else if (body !== null && body.length <= COALESCE_BYTES) {
          const out = new Uint8Array(head.length + body.length);
          out.set(head);
          out.set(body, head.length);
          await writeAll(conn, out);
        } else {
          await writeAll(conn, head);
          if (body !== null) await writeAll(conn, body);
        }
        while (true) {
          const view = await readHeadView(up.reader, UPSTREAM_READ_BUFFER_BYTES);
          if (view === null) throw new Error("the connection closed before a response");
          resp = parseResponseHead(view);
          if (resp.status >= 100 && resp.status < 200 && resp.status !== 101) continue;
          break;
        }
      } catch (err) {
        signal.removeEventListener("abort", onAbort);
        closeQuietly(conn);
        if (signal.aborted) throw signal.reason;
        const stale = reused && attempt === 0 && up.reader.length === 0;
        up = undefined;
        if (stale) continue;
        throw new Error(`Cannot read the upstream response: ${(err as Error)?.message ?? err}`, {
          cause: err,
        });
      }
      if (resp.status === 101) {
        signal.removeEventListener("abort", onAbort);
        closeQuietly(conn);
        throw new Error("Cannot proxy an unexpected 101 response");
      }
      let framing: BodyFraming;
      let headers: Headers;
      try {
        framing = responseBodyFraming(resp, method);
        headers = new Headers();
        for (const [name, value] of resp.headers) headers.append(name, value);
      } catch (err) {
        signal.removeEventListener("abort", onAbort);
        closeQuietly(conn);
        throw err;
      }
      const kept = up;
      const release = async (reusable: boolean) => {
        signal.removeEventListener("abort", onAbort);
        if (reusable && sent !== undefined) {
          await sent.catch(() => {});
          reusable = !sendFailed;
        }
        if (reusable && framing.kind !== "close" && upstreamKeepsAlive(resp)) pool.put(kept);
        else closeQuietly(conn);
      };
      const noBody = framing.kind === "none" || NULL_BODY.has(resp.status);
      let out: ReadableStream<Uint8Array> | null = null;
      if (noBody) {
        void release(framing.kind === "none");
      } else {
        if (framing.kind !== "length" || framing.length > 0) kept.reader.reserve(64 * 1024);
        out = bodyStream(kept.reader, framing, (reusable, error) => {
          if (error !== undefined && signal.aborted) closeQuietly(conn);
          void release(reusable);
        });
      }
      try {
        return new Response(out, { status: resp.status, statusText: resp.reason, headers });
      } catch (err) {
        await out?.cancel(err).catch(() => {});
        closeQuietly(conn);
        throw new Error(`Cannot proxy upstream status ${resp.status}: ${(err as Error).message}`);
      }
    }
  };
}
