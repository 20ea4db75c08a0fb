/**
 * Shared helpers for the mapping tests: a vhost listener served by
 * serveHttpVisitor with captured JSON logs, LAN services, routes, curl, raw
 * clients, hex fixtures and ClientHello capture.
 */
import { Logger, MemorySink } from "@/observability/log.ts";
import {
  type HttpMappingOptions,
  type HttpRoute,
  type RouteResult,
  serveHttpVisitor,
} from "@/mapping/mod.ts";
import type { ByteConn, HostPort } from "@/transport/conn.ts";

/** A parsed JSON log line. */
export type LogLine = Record<string, unknown> & { event: string };

/** A vhost listener on 127.0.0.1:0. */
export interface TestVhost extends AsyncDisposable {
  port: number;
  url: string;
  lines(): LogLine[];
  events(name: string): LogLine[];
  /** Resolves with the first line of `name` matching `match` (polls the memory sink). */
  waitForEvent(name: string, match?: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/** Limits for {@link startVhost}. */
export interface VhostLimits {
  max_header_bytes: number;
  handshake_timeout_ms: number;
  idle_timeout_ms: number;
}

/** Starts a listener whose connections are served by serveHttpVisitor with `resolve`. */
export function startVhost(
  resolve: (host: string) => RouteResult,
  limits: Partial<VhostLimits> = {},
): TestVhost {
  const sink = new MemorySink();
  const log = new Logger({ format: "json", sink, level: "debug" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const abort = new AbortController();
  const tasks = new Set<Promise<void>>();
  let next = 0;
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        const t = serveHttpVisitor(conn, {
          resolve,
          scheme: "http",
          log,
          id: `v${++next}`,
          limits: {
            max_header_bytes: 64 * 1024,
            handshake_timeout_ms: 5_000,
            idle_timeout_ms: 10_000,
            ...limits,
          },
          signal: abort.signal,
        });
        tasks.add(t);
        t.finally(() => tasks.delete(t));
      }
    } catch {
      // listener closed
    }
  })();
  const lines = () => sink.lines.map((l) => JSON.parse(l) as LogLine);
  const events = (name: string) => lines().filter((l) => l.event === name);
  const port = listener.addr.port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    lines,
    events,
    async waitForEvent(name, match = () => true, timeoutMs = 5_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const hit = events(name).find(match);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(
        `Cannot find event "${name}" within ${timeoutMs} ms; log:\n${sink.lines.join("\n")}`,
      );
    },
    async [Symbol.asyncDispose]() {
      if (abort.signal.aborted) return;
      listener.close();
      await loop;
      abort.abort();
      await Promise.all([...tasks]);
    },
  };
}

/** Default mapping options, with `over` applied. */
export function mappingOptions(over: Partial<HttpMappingOptions> = {}): HttpMappingOptions {
  return {
    request_headers: [],
    response_headers: [],
    host_rewrite: undefined,
    x_forwarded: false,
    basic_auth: [],
    ...over,
  };
}

/** A route whose streams are TCP connections to 127.0.0.1:`port`; counts opens. */
export interface TestRoute extends HttpRoute {
  opens: number;
  visitors: HostPort[];
}

/** A route to a LAN service on 127.0.0.1:`port`. */
export function tcpRoute(
  mapping: string,
  port: number,
  options: HttpMappingOptions = mappingOptions(),
): TestRoute {
  const route: TestRoute = {
    mapping,
    client: "client-1",
    options,
    opens: 0,
    visitors: [],
    async open(visitor: HostPort): Promise<ByteConn> {
      route.opens++;
      route.visitors.push(visitor);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.setNoDelay(true);
      return conn;
    },
  };
  return route;
}

/** A route whose open() always rejects with `message`. */
export function failingRoute(mapping: string, message: string): HttpRoute {
  return {
    mapping,
    client: "client-1",
    options: mappingOptions(),
    open: () => Promise.reject(new Error(message)),
  };
}

/** A LAN service (Deno.serve on 127.0.0.1:0) that records requests. */
export interface Service extends AsyncDisposable {
  port: number;
  requests: { method: string; url: string; headers: Headers }[];
}

/** Starts a LAN service answering `NAME PATH` unless `handler` is given. */
export function startService(
  name: string,
  handler?: (req: Request) => Response | Promise<Response>,
): Service {
  const requests: Service["requests"] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers });
    if (handler) return await handler(req);
    return new Response(`${name} ${new URL(req.url).pathname}`);
  });
  return {
    port: server.addr.port,
    requests,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A raw TCP LAN service: `serve` gets each accepted connection (and owns it). */
export interface RawService extends AsyncDisposable {
  port: number;
  connections: number;
}

/** Starts a raw TCP service on 127.0.0.1:0. */
export function startRawService(serve: (conn: Deno.TcpConn) => Promise<void>): RawService {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.TcpConn>();
  const tasks = new Set<Promise<void>>();
  const svc: RawService = {
    port: listener.addr.port,
    connections: 0,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) closeQuietly(c);
      await loop;
      await Promise.all([...tasks]);
    },
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        svc.connections++;
        conns.add(conn);
        const t = serve(conn).catch(() => {}).finally(() => {
          conns.delete(conn);
          closeQuietly(conn);
        });
        tasks.add(t);
        t.finally(() => tasks.delete(t));
      }
    } catch {
      // closed
    }
  })();
  return svc;
}

/** Closes, ignoring "already closed". */
export function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch {
    // closed
  }
}

/** Concatenates byte arrays. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Parses a hex fixture: `#` lines are comments, whitespace is ignored. */
export function parseHexFixture(text: string): Uint8Array {
  const hex = text.split("\n").filter((l) => !l.startsWith("#")).join("").replace(/\s+/g, "");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Captures the first TLS records a real client sends: starts a raw listener,
 * runs `command(port)` against it, reads until the first handshake message is
 * complete (by record and handshake lengths, not with the parser under test),
 * then stops the client.
 */
export async function captureClientHello(command: (port: number) => string[]): Promise<Uint8Array> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [cmd, ...args] = command(listener.addr.port);
  const child = new Deno.Command(cmd!, {
    args,
    stdin: "piped",
    stdout: "null",
    stderr: "null",
    clearEnv: true,
  }).spawn();
  const conn = await listener.accept();
  const timer = setTimeout(() => closeQuietly(conn), 5_000);
  const chunks: Uint8Array[] = [];
  try {
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      const all = concat(chunks);
      if (helloComplete(all)) return all;
      const n = await conn.read(buf);
      if (n === null) throw new Error(`Cannot capture ClientHello: ${cmd} closed early`);
      chunks.push(buf.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
    try {
      child.kill();
    } catch {
      // exited
    }
    await child.stdin.close().catch(() => {});
    await child.status;
  }
}

/** Whether `bytes` holds a complete first handshake message (records de-framed). */
function helloComplete(bytes: Uint8Array): boolean {
  const hs: number[] = [];
  let off = 0;
  while (off + 5 <= bytes.length) {
    const len = (bytes[off + 3]! << 8) | bytes[off + 4]!;
    if (off + 5 + len > bytes.length) return false;
    for (let i = 0; i < len; i++) hs.push(bytes[off + 5 + i]!);
    off += 5 + len;
    if (hs.length >= 4) {
      const msgLen = (hs[1]! << 16) | (hs[2]! << 8) | hs[3]!;
      if (hs.length >= 4 + msgLen) return true;
    }
  }
  return false;
}

/**
 * Re-frames the handshake bytes of `hello` (one or more records) into records
 * of at most `size` bytes each: a legal TLS encoding of the same hello.
 */
export function reframe(hello: Uint8Array, size: number): Uint8Array {
  const hs: Uint8Array[] = [];
  let off = 0;
  while (off + 5 <= hello.length) {
    const len = (hello[off + 3]! << 8) | hello[off + 4]!;
    hs.push(hello.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  const payload = concat(hs);
  const records: Uint8Array[] = [];
  for (let i = 0; i < payload.length; i += size) {
    const part = payload.subarray(i, Math.min(payload.length, i + size));
    records.push(new Uint8Array([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part);
  }
  return concat(records);
}

export { connect, curl, readAll, readUntil, send, sha256 } from "../proxy/_helpers.ts";
export type { CurlResult } from "../proxy/_helpers.ts";
