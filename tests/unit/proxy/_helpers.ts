/**
 * Shared helpers for the forward proxy tests: a test config, an in-process
 * proxy with captured JSON logs, origins, curl, raw clients and a UDP echo.
 */
import dgram from "node:dgram";
import type { ProxyConfig, ProxyUser } from "@/config/types.ts";
import { Secret } from "@/config/secret.ts";
import { Logger, MemorySink } from "@/observability/log.ts";
import type { ByteConn, HostPort } from "@/transport/conn.ts";
import { formatHostPort } from "@/transport/conn.ts";
import { type Dialer, type ForwardProxy, startForwardProxy } from "@/proxy/mod.ts";

/** A complete proxy config for tests; `over` replaces top-level fields and limits. */
export function testConfig(
  over: Partial<Omit<ProxyConfig, "limits">> & { limits?: Partial<ProxyConfig["limits"]> } = {},
): ProxyConfig {
  const { limits, ...rest } = over;
  return {
    bind: "127.0.0.1:0",
    allow_open: false,
    egress: { allow: [], deny: [], default: "allow" },
    protocols: ["http", "https", "socks5"],
    users: [],
    via: false,
    x_forwarded_for: false,
    udp: { enabled: true, bind_ip: undefined, idle_timeout_ms: 5_000, replies: "sent" },
    ...rest,
    limits: {
      max_header_bytes: 64 * 1024,
      handshake_timeout_ms: 5_000,
      connect_timeout_ms: 5_000,
      idle_timeout_ms: 10_000,
      max_connections: 64,
      ...limits,
    },
  };
}

/** One proxy user. */
export function user(username: string, password: string): ProxyUser {
  return { username, password: new Secret(password) };
}

/** A parsed JSON log line. */
export type LogLine = Record<string, unknown> & { event: string };

/** A running in-process proxy and its log. */
export interface TestProxy extends AsyncDisposable {
  proxy: ForwardProxy;
  /** `127.0.0.1:PORT` */
  addr: string;
  port: number;
  lines(): LogLine[];
  events(name: string): LogLine[];
  /** Resolves with the first line of `name` matching `match` (polls the memory sink). */
  waitForEvent(name: string, match?: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/** Starts the forward proxy on 127.0.0.1:0 with a JSON memory log. */
export async function startTestProxy(
  config: ProxyConfig = testConfig(),
  options: { dial?: Dialer } = {},
): Promise<TestProxy> {
  const sink = new MemorySink();
  const log = new Logger({ format: "json", sink, level: "debug" });
  const proxy = await startForwardProxy(config, { log, ...options });
  const lines = () => sink.lines.map((l) => JSON.parse(l) as LogLine);
  const events = (name: string) => lines().filter((l) => l.event === name);
  return {
    proxy,
    addr: formatHostPort(proxy.addr),
    port: proxy.addr.port,
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
    [Symbol.asyncDispose]: () => proxy.close(),
  };
}

/** An HTTP origin answering `NAME PATH` (and echoing POST bodies as `NAME PATH len=N`). */
export interface Origin extends AsyncDisposable {
  url: string;
  port: number;
  hostname: string;
  requests: { method: string; url: string; headers: Headers }[];
}

/** Starts an origin with Deno.serve on `hostname`:0. */
export function startOrigin(
  name: string,
  hostname = "127.0.0.1",
  handler?: (req: Request) => Response | Promise<Response>,
): Origin {
  const requests: Origin["requests"] = [];
  const server = Deno.serve({ port: 0, hostname, onListen: () => {} }, async (req) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers });
    if (handler) return await handler(req);
    const path = new URL(req.url).pathname;
    if (req.body) {
      const body = new Uint8Array(await req.arrayBuffer());
      return new Response(`${name} ${path} len=${body.length} sha=${await sha256(body)}`);
    }
    return new Response(`${name} ${path}`);
  });
  const port = server.addr.port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host}:${port}`,
    port,
    hostname,
    requests,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** Hex SHA-256 of `data`. */
export async function sha256(data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The result of running curl. */
export interface CurlResult {
  code: number;
  bytes: Uint8Array;
  stdout: string;
  stderr: string;
}

/** Runs curl with `-sS --max-time 20` and `args`; never uses the environment's proxy settings. */
export async function curl(args: string[], stdin?: Uint8Array): Promise<CurlResult> {
  const cmd = new Deno.Command("curl", {
    args: ["-sS", "--max-time", "20", "--noproxy", "", ...args],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_PROXY: "", no_proxy: "" },
    clearEnv: true,
  });
  const child = cmd.spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    bytes: out.stdout,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** Whether this machine can bind ::1. */
export function hasIpv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

/** Connects a raw TCP client. */
export async function connect(addr: HostPort | number): Promise<Deno.TcpConn> {
  const a = typeof addr === "number" ? { hostname: "127.0.0.1", port: addr } : addr;
  const conn = await Deno.connect({ hostname: a.hostname, port: a.port });
  conn.setNoDelay(true);
  return conn;
}

/** Reads exactly `n` bytes (fewer only at end of stream). */
export async function readN(conn: ByteConn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const k = await conn.read(out.subarray(off));
    if (k === null) return out.subarray(0, off);
    off += k;
  }
  return out;
}

/** Reads until end of stream (or a reset), at most `limit` bytes. */
export async function readAll(conn: ByteConn, limit = 16 * 1024 * 1024): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(64 * 1024);
  try {
    while (total < limit) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      total += n;
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Reads until `marker` has been seen; returns everything read. */
export async function readUntil(
  conn: ByteConn,
  marker: string,
  limit = 1024 * 1024,
): Promise<string> {
  const dec = new TextDecoder();
  let text = "";
  const buf = new Uint8Array(16 * 1024);
  while (!text.includes(marker) && text.length < limit) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n));
  }
  return text;
}

/** Writes all of `data` (string as UTF-8). */
export async function send(conn: ByteConn, data: string | Uint8Array): Promise<void> {
  let p = typeof data === "string" ? new TextEncoder().encode(data) : data;
  while (p.length > 0) p = p.subarray(await conn.write(p));
}

/** A UDP echo server (node:dgram). */
export interface UdpEcho extends AsyncDisposable {
  port: number;
  hostname: string;
  received: number;
}

/** Starts a UDP echo server on `hostname`:0. */
export async function startUdpEcho(hostname = "127.0.0.1"): Promise<UdpEcho> {
  const sock = await bindUdp(hostname);
  const echo: UdpEcho = {
    port: sock.address().port,
    hostname,
    received: 0,
    [Symbol.asyncDispose]: () => closeUdp(sock),
  };
  sock.on("message", (msg, rinfo) => {
    echo.received++;
    sock.send(msg, rinfo.port, rinfo.address);
  });
  return echo;
}

/** Binds a UDP socket on `hostname`:0. */
export function bindUdp(hostname: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(hostname.includes(":") ? "udp6" : "udp4");
    sock.once("error", reject);
    sock.bind(0, hostname, () => {
      sock.off("error", reject);
      resolve(sock);
    });
  });
}

/** Closes a UDP socket and waits for it. */
export function closeUdp(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => sock.close(() => resolve()));
}

/** Receives the next datagram on `sock`, or `null` after `ms`. */
export function nextDatagram(sock: dgram.Socket, ms: number): Promise<Uint8Array | null> {
  return new Promise((resolve) => {
    const onMessage = (msg: Uint8Array) => {
      clearTimeout(timer);
      resolve(new Uint8Array(msg));
    };
    const timer = setTimeout(() => {
      sock.off("message", onMessage);
      resolve(null);
    }, ms);
    sock.once("message", onMessage);
  });
}

/** A raw TCP HTTP origin: counts connections, serves keep-alive requests with `respond`. */
export interface RawOrigin extends AsyncDisposable {
  port: number;
  url: string;
  connections: number;
  heads: string[];
  /** What `respond` threw (an assertion in it, say); dispose rethrows the first. */
  failures: unknown[];
}

/**
 * Starts a keep-alive HTTP/1.1 origin on raw TCP. `respond` gets the head and
 * the connection (to read a body or write interim replies) and returns the reply.
 */
export function startRawOrigin(
  respond: (head: string, conn: Deno.TcpConn, leftover: Uint8Array) => Promise<string> | string = (
    head,
  ) => {
    const path = head.split(" ")[1] ?? "";
    return `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`;
  },
): RawOrigin {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.TcpConn>();
  const tasks = new Set<Promise<void>>();
  const origin: RawOrigin = {
    port: listener.addr.port,
    url: `http://127.0.0.1:${listener.addr.port}`,
    connections: 0,
    heads: [],
    failures: [],
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await loop;
      await Promise.all(tasks);
      if (origin.failures.length > 0) throw origin.failures[0];
    },
  };
  const serve = async (conn: Deno.TcpConn) => {
    const dec = new TextDecoder();
    let text = "";
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const end = text.indexOf("\r\n\r\n");
        if (end === -1) {
          const n = await conn.read(buf);
          if (n === null) break;
          text += dec.decode(buf.subarray(0, n));
          continue;
        }
        const head = text.slice(0, end + 4);
        text = text.slice(end + 4);
        origin.heads.push(head);
        let reply: string;
        try {
          reply = await respond(head, conn, new TextEncoder().encode(text));
        } catch (err) {
          origin.failures.push(err);
          break;
        }
        text = "";
        await send(conn, reply);
      }
    } catch {
      // closed
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // closed
      }
    }
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        origin.connections++;
        conns.add(conn);
        const t = serve(conn);
        tasks.add(t);
        t.finally(() => tasks.delete(t));
      }
    } catch {
      // closed
    }
  })();
  return origin;
}

/** A port on 127.0.0.1 with nothing listening. */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}
