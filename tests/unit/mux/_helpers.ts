/** Shared helpers for the mux tests. */
import { Session, type SessionOptions, type VirtualStream } from "@/mux/mod.ts";
import type { PairFactory } from "../transport/_pairs.ts";

/** A client and a server session over one connected pair. */
export interface SessionPair extends AsyncDisposable {
  client: Session;
  server: Session;
}

/** Opens sessions over a fresh pair from `factory`; dispose closes both and waits. */
export async function sessionPair(
  factory: PairFactory,
  client: Partial<SessionOptions> = {},
  server: Partial<SessionOptions> = {},
): Promise<SessionPair> {
  const pair = await factory.make();
  const c = new Session(pair.a, { heartbeatIntervalMs: 0, ...client, role: "client" });
  const s = new Session(pair.b, { heartbeatIntervalMs: 0, ...server, role: "server" });
  return {
    client: c,
    server: s,
    async [Symbol.asyncDispose]() {
      await Promise.all([c.close(), s.close()]);
      pair.close();
    },
  };
}

/** Byte `i` of the test pattern. */
export function patternByte(i: number): number {
  return (i * 7 + (i >>> 13)) & 0xff;
}

/** Fills `buf` with the pattern starting at stream offset `offset`. */
export function fillPattern(buf: Uint8Array, offset: number): void {
  for (let i = 0; i < buf.length; i++) buf[i] = patternByte(offset + i);
}

/** Writes `total` pattern bytes in `chunk`-sized writes, then half-closes. */
export async function sendPattern(
  s: VirtualStream,
  total: number,
  chunk = 65536,
  closeWrite = true,
): Promise<void> {
  const buf = new Uint8Array(chunk);
  for (let off = 0; off < total; off += chunk) {
    const n = Math.min(chunk, total - off);
    fillPattern(buf.subarray(0, n), off);
    await s.write(buf.subarray(0, n));
  }
  if (closeWrite) await s.closeWrite();
}

/** Reads to end of stream, checking the pattern; resolves to the byte count. */
export async function receivePattern(s: VirtualStream, bufSize = 262144): Promise<number> {
  const buf = new Uint8Array(bufSize);
  let total = 0;
  for (let n = await s.read(buf); n !== null; n = await s.read(buf)) {
    for (let i = 0; i < n; i++) {
      if (buf[i] !== patternByte(total + i)) {
        throw new Error(`byte ${total + i} is ${buf[i]}, expected ${patternByte(total + i)}`);
      }
    }
    total += n;
  }
  return total;
}

/** Reads everything to end of stream. */
export async function readAll(
  s: { read(p: Uint8Array): Promise<number | null> },
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (let n = await s.read(buf); n !== null; n = await s.read(buf)) parts.push(buf.slice(0, n));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Round trips a ping both ways, so every frame queued before has been handled by both. */
export async function barrier(pair: SessionPair): Promise<void> {
  await pair.client.ping();
  await pair.server.ping();
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);
