/**
 * Bulk sender for the bulk benchmarks. Dials `--connect`, optionally performs
 * an HTTP CONNECT or SOCKS5 CONNECT handshake for `--target`, then sends an
 * 8-byte length and `--mib` MiB from one reused 1 MiB buffer, and waits for the
 * sink's byte count (bulk_sink.ts), which it checks. The clock runs from the
 * first data byte to the sink's answer, so handshakes are not counted.
 *
 * Usage: `deno run -A tests/bench/bulk_client.ts --connect ADDR [--proxy none|http|socks5]
 * [--target ADDR] [--mib N]`; prints one JSON line:
 * `{"bytes":…,"ms":…,"mbPerSec":…,"handshakeMs":…}` (MB = 10^6 bytes).
 *
 * @module
 */
import { parseArgs } from "node:util";

const CHUNK = 1 << 20;

/** The result line of one transfer. */
export interface BulkResult {
  /** Bytes sent (and confirmed by the sink). */
  bytes: number;
  /** Milliseconds from the first data byte to the sink's answer. */
  ms: number;
  /** Throughput in 10^6 bytes per second. */
  mbPerSec: number;
  /** Milliseconds spent on connect plus the proxy handshake. */
  handshakeMs: number;
}

function splitAddr(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port)) {
    throw new TypeError(`Cannot parse address: ${JSON.stringify(addr)} is not host:port`);
  }
  return { hostname: addr.slice(0, i), port };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

async function readExact(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await conn.read(out.subarray(off));
    if (got === null) throw new Error(`Cannot read ${n} bytes: connection closed after ${off}`);
    off += got;
  }
  return out;
}

/** Sends `CONNECT target` and reads the response head; throws unless the status is 2xx. */
export async function httpConnect(conn: Deno.Conn, target: string): Promise<void> {
  await writeAll(
    conn,
    new TextEncoder().encode(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`),
  );
  const head: number[] = [];
  const one = new Uint8Array(1);
  // Byte by byte: nothing after the head may be consumed (it is tunnel data).
  while (head.length < 16384) {
    if ((await conn.read(one)) === null) break;
    head.push(one[0]!);
    const n = head.length;
    if (
      n >= 4 && head[n - 4] === 13 && head[n - 3] === 10 && head[n - 2] === 13 && head[n - 1] === 10
    ) {
      const text = new TextDecoder().decode(new Uint8Array(head));
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (status === null || !status[1]!.startsWith("2")) {
        throw new Error(`Cannot CONNECT to ${target}: ${text.split("\r\n")[0]}`);
      }
      return;
    }
  }
  throw new Error(`Cannot CONNECT to ${target}: no complete response head`);
}

/** Performs a SOCKS5 no-auth CONNECT to an IPv4 `target`; throws unless the reply is success. */
export async function socks5Connect(conn: Deno.Conn, target: string): Promise<void> {
  const { hostname, port } = splitAddr(target);
  const ip = hostname.split(".").map(Number);
  if (ip.length !== 4 || ip.some((b) => !(b >= 0 && b <= 255))) {
    throw new TypeError(`Cannot use SOCKS5 target: ${hostname} is not an IPv4 address`);
  }
  await writeAll(conn, new Uint8Array([5, 1, 0]));
  const choice = await readExact(conn, 2);
  if (choice[0] !== 5 || choice[1] !== 0) {
    throw new Error(`Cannot negotiate SOCKS5: method reply ${choice[0]} ${choice[1]}`);
  }
  await writeAll(conn, new Uint8Array([5, 1, 0, 1, ...ip, port >> 8, port & 0xff]));
  const head = await readExact(conn, 4);
  if (head[1] !== 0) throw new Error(`Cannot SOCKS5 CONNECT to ${target}: reply code ${head[1]}`);
  const rest = head[3] === 1 ? 4 + 2 : head[3] === 4 ? 16 + 2 : (await readExact(conn, 1))[0]! + 2;
  await readExact(conn, rest);
}

/** Options for {@linkcode sendBulk}. */
export interface SendBulkOptions {
  /** The address to dial (a proxy, a forwarder or the sink). */
  connect: string;
  /** The handshake to perform. @default "none" */
  proxy?: "none" | "http" | "socks5";
  /** What the proxy should connect to (required with a proxy). */
  target?: string;
  /** MiB to send. @default 1024 */
  mib?: number;
}

/** Sends the bulk data and returns the measured transfer. */
export async function sendBulk(options: SendBulkOptions): Promise<BulkResult> {
  const t0 = performance.now();
  const conn = await Deno.connect(splitAddr(options.connect));
  try {
    conn.setNoDelay(true);
    const proxy = options.proxy ?? "none";
    if (proxy !== "none") {
      if (options.target === undefined) throw new TypeError("Cannot use a proxy: no --target");
      if (proxy === "http") await httpConnect(conn, options.target);
      else await socks5Connect(conn, options.target);
    }
    const buf = new Uint8Array(CHUNK);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;
    const chunks = options.mib ?? 1024;
    const bytes = chunks * CHUNK;
    const header = new Uint8Array(8);
    new DataView(header.buffer).setBigUint64(0, BigInt(bytes));
    await writeAll(conn, header);
    const t1 = performance.now();
    for (let i = 0; i < chunks; i++) await writeAll(conn, buf);
    const reply = await readExact(conn, 8);
    const t2 = performance.now();
    const got = Number(new DataView(reply.buffer).getBigUint64(0));
    if (got !== bytes) {
      throw new Error(`Cannot confirm the transfer: sink got ${got} of ${bytes} bytes`);
    }
    const ms = t2 - t1;
    return { bytes, ms, mbPerSec: bytes / 1e6 / (ms / 1000), handshakeMs: t1 - t0 };
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      connect: { type: "string" },
      proxy: { type: "string", default: "none" },
      target: { type: "string" },
      mib: { type: "string", default: "1024" },
    },
  });
  const proxy = values.proxy;
  if (
    values.connect === undefined || (proxy !== "none" && proxy !== "http" && proxy !== "socks5")
  ) {
    await Deno.stderr.write(new TextEncoder().encode(
      "usage: bulk_client.ts --connect ADDR [--proxy none|http|socks5] [--target ADDR] [--mib N]\n",
    ));
    Deno.exit(2);
  }
  try {
    const result = await sendBulk({
      connect: values.connect,
      proxy,
      ...(values.target === undefined ? {} : { target: values.target }),
      mib: Number(values.mib),
    });
    await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(result) + "\n"));
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    await Deno.stderr.write(new TextEncoder().encode(why + "\n"));
    Deno.exit(1);
  }
}
