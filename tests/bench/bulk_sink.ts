/**
 * Bulk sink for the bulk benchmarks: accepts TCP connections on 127.0.0.1,
 * reads a u64 big-endian length, then reads and discards that many bytes with
 * a reused 1 MiB buffer per connection, answers with the byte count (u64) and
 * closes. No half-close is needed, so relays that tear the whole connection
 * down on a client FIN (squid's CONNECT tunnel, dante) can be measured too.
 *
 * Usage: `deno run -A tests/bench/bulk_sink.ts [--port N]` (default port 0);
 * prints `{"event":"listening","addr":"127.0.0.1:PORT"}` on stdout when ready.
 *
 * @module
 */
import { parseArgs } from "node:util";

const BUFFER_BYTES = 1 << 20;

/**
 * Reads the 8-byte length header, then that many bytes (or up to EOF), and
 * answers with the count of body bytes received (u64, big-endian).
 */
export async function drain(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buf = new Uint8Array(BUFFER_BYTES);
  const header = new Uint8Array(8);
  let headerLen = 0;
  let expected = Infinity;
  let total = 0;
  try {
    while (total < expected) {
      const n = await conn.read(buf);
      if (n === null) break;
      let body = n;
      if (headerLen < 8) {
        const take = Math.min(8 - headerLen, n);
        header.set(buf.subarray(0, take), headerLen);
        headerLen += take;
        body -= take;
        if (headerLen === 8) expected = Number(new DataView(header.buffer).getBigUint64(0));
      }
      total += body;
    }
    if (headerLen < 8) return; // a readiness probe or a peer that sent nothing
    const reply = new Uint8Array(8);
    new DataView(reply.buffer).setBigUint64(0, BigInt(total));
    let off = 0;
    while (off < reply.length) off += await conn.write(reply.subarray(off));
  } catch {
    /* the peer went away; nothing to report */
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { port: { type: "string" } } });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(values.port ?? 0) });
  const addr = listener.addr as Deno.NetAddr;
  const line = JSON.stringify({ event: "listening", addr: `${addr.hostname}:${addr.port}` });
  await Deno.stdout.write(new TextEncoder().encode(line + "\n"));
  const stop = () => listener.close();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  try {
    for await (const conn of listener) drain(conn);
  } catch { /* listener closed */ }
  Deno.exit(0);
}
