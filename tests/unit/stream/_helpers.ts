/**
 * Shared helpers for the stream tests: TCP and UDP echo services, a JSON log
 * sink that can be searched, and small TCP client helpers.
 */
import dgram from "node:dgram";
import { Logger, MemorySink } from "@/observability/log.ts";
import { formatHostPort } from "@/transport/conn.ts";
import { waitFor } from "../../_wait.ts";

/** A TCP echo service; `firstBytes` records what each connection sent first. */
export interface TcpEcho extends AsyncDisposable {
  addr: string;
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** The first chunk of each connection. */
  firstChunks: Uint8Array[];
  stop(): Promise<void>;
}

/** Starts a TCP echo on 127.0.0.1 (or `host`), port 0. */
export function startTcpEcho(host = "127.0.0.1"): TcpEcho {
  const listener = Deno.listen({ hostname: host, port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const echo: TcpEcho = {
    addr: formatHostPort(listener.addr),
    port: listener.addr.port,
    accepted: 0,
    firstChunks: [],
    stop,
    [Symbol.asyncDispose]: stop,
  };
  const serve = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    let first = true;
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (first) echo.firstChunks.push(buf.slice(0, n));
        first = false;
        let off = 0;
        while (off < n) off += await conn.write(buf.subarray(off, n));
      }
      await conn.closeWrite();
    } catch {
      // closed
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        echo.accepted++;
        conns.add(conn);
        const t: Promise<void> = serve(conn).finally(() => tasks.delete(t));
        tasks.add(t);
      }
    } catch {
      // listener closed
    }
  })();
  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= (async () => {
      try {
        listener.close();
      } catch {
        // closed
      }
      await loop;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await Promise.all([...tasks]);
    })();
    return stopped;
  }
  return echo;
}

/** A UDP echo service bound to `host`, port 0. */
export async function startUdpEcho(
  host = "127.0.0.1",
): Promise<{ addr: string; port: number; received: number[]; stop(): Promise<void> }> {
  const type = host.includes(":") ? "udp6" : "udp4";
  const sock = dgram.createSocket({ type, ipv6Only: type === "udp6" });
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind({ port: 0, address: host }, () => resolve());
  });
  const received: number[] = [];
  sock.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    received.push(msg.length);
    sock.send(msg, rinfo.port, rinfo.address);
  });
  const port = sock.address().port;
  return {
    addr: formatHostPort({ hostname: host, port }),
    port,
    received,
    stop: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

/** A JSON logger whose lines can be searched. */
export function testLog(): { log: Logger; events: (name: string) => Record<string, unknown>[] } {
  const sink = new MemorySink();
  const log = new Logger({ format: "json", sink, level: "debug" });
  return {
    log,
    events: (name) =>
      sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) =>
        e.event === name
      ),
  };
}

/** {@link waitFor} as a boolean: whether `cond` held within `ms`. */
export async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  return await waitFor(cond, "a condition", ms).then(() => true, () => false);
}

/** Splits `host:port`. */
export function hostPort(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  return { hostname: addr.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(addr.slice(i + 1)) };
}

/** Writes `data`, half-closes, and reads everything back. */
export async function tcpRoundTrip(addr: string, data: Uint8Array): Promise<Uint8Array> {
  const conn = await Deno.connect({ ...hostPort(addr), transport: "tcp" });
  try {
    const reading = readAll(conn);
    let off = 0;
    while (off < data.length) off += await conn.write(data.subarray(off));
    await conn.closeWrite();
    return await reading;
  } finally {
    conn.close();
  }
}

/** Reads until end of stream. */
export async function readAll(conn: Deno.Conn, limit = 64 * 1024 * 1024): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
    if (total > limit) throw new RangeError("readAll: limit exceeded");
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Reads exactly `n` bytes (or fewer at end of stream). */
export async function readN(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await conn.read(out.subarray(off));
    if (r === null) break;
    off += r;
  }
  return out.subarray(0, off);
}

/** Deterministic pseudo-random bytes. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
