/**
 * Fuzz cores shared by the seeded unit test and `deno task fuzz`. Each takes a
 * seeded PRNG and a number of cases, and throws on the first property
 * violation (with the seed and case in the message).
 */
import {
  type ControlMessage,
  decodeControlMessage,
  encodeControlMessage,
  encodeFrame,
  type Frame,
  FrameDecoder,
  MAX_CONTROL_PAYLOAD,
  MAX_PAYLOAD,
  ProtocolError,
} from "../../src/tunnel/mod.ts";
import { Prng } from "../unit/tunnel/_prng.ts";

/** Counters of one fuzz run. */
export interface FuzzStats {
  cases: number;
  accepted: number;
  rejected: number;
}

const NONCE = "ab".repeat(32);
const SEED_MESSAGES: ControlMessage[] = [
  { type: "client_hello", version: 1, capabilities: ["udp"], client_nonce: NONCE, name: "c" },
  { type: "server_hello", version: 1, capabilities: [], server_nonce: NONCE, session_id: "s" },
  { type: "auth", proof: NONCE, key_id: "k" },
  { type: "auth_ok", server_proof: NONCE },
  { type: "auth_failed", code: 12, message: "no" },
  {
    type: "register",
    request_id: 3,
    mappings: [{ name: "a", kind: "tcp", remote_port: 80 }, {
      name: "b",
      kind: "http",
      domains: ["x.example"],
    }],
  },
  {
    type: "register_result",
    request_id: 3,
    results: [{ name: "a", ok: true, public_addr: "1.2.3.4:80" }, {
      name: "b",
      ok: false,
      code: 18,
      message: "taken",
    }],
  },
  { type: "unregister", request_id: 4, names: ["a"] },
  { type: "open", kind: "proxy", visitor: { hostname: "127.0.0.1", port: 1 } },
  { type: "open", kind: "mapping", mapping: "a", visitor: { hostname: "::1", port: 2 }, host: "h" },
];

function randomFrame(rng: Prng): Uint8Array {
  switch (rng.int(6)) {
    case 0:
      return encodeFrame({
        type: 0,
        flags: rng.int(2) * 4,
        streamId: 1 + rng.int(0xfffffffe),
        length: 0,
        payload: rng.bytes(rng.int(8) === 0 ? rng.int(MAX_PAYLOAD + 1) : rng.int(64)),
      });
    case 1:
      return encodeFrame({
        type: 1,
        flags: rng.pick([0, 2, 8]),
        streamId: 1 + rng.int(1e9),
        length: rng.u32(),
      });
    case 2:
      return encodeFrame({ type: 2, flags: rng.pick([1, 2]), streamId: 0, length: rng.u32() });
    case 3:
      return encodeFrame({ type: 3, flags: 0, streamId: 0, length: rng.int(25) });
    default: {
      const m = rng.pick(SEED_MESSAGES);
      const id = m.type === "open" ? 1 + rng.int(1000) : 0;
      return encodeFrame({
        type: 4,
        flags: id === 0 ? 0 : 1,
        streamId: id,
        length: 0,
        payload: encodeControlMessage(m),
      });
    }
  }
}

function mutate(rng: Prng, input: Uint8Array): Uint8Array {
  let b: Uint8Array = input.slice();
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    switch (rng.int(6)) {
      case 0: // flip a byte
        if (b.length) b[rng.int(b.length)] = rng.u32() & 0xff;
        break;
      case 1: // flip a bit
        if (b.length) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      case 2: { // truncate
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      }
      case 3: { // insert random bytes
        const at = rng.int(b.length + 1);
        const ins = rng.bytes(1 + rng.int(16));
        const out = new Uint8Array(b.length + ins.length);
        out.set(b.subarray(0, at));
        out.set(ins, at);
        out.set(b.subarray(at), at + ins.length);
        b = out;
        break;
      }
      case 4: { // interesting u32 into a length/id field
        if (b.length >= 12) {
          const o = rng.pick([4, 8]);
          const v = rng.pick([0, 1, 0xffffffff, MAX_PAYLOAD, MAX_PAYLOAD + 1, 0x7fffffff]);
          new DataView(b.buffer, b.byteOffset).setUint32(o, v);
        }
        break;
      }
      default: // pure noise
        b = rng.bytes(rng.int(64));
    }
  }
  return b;
}

type Outcome = { frames: Uint8Array[]; error: string | null };

function decodeAll(input: Uint8Array, chunks: number[]): Outcome {
  const d = new FrameDecoder();
  const frames: Uint8Array[] = [];
  let pushed = 0;
  try {
    let off = 0;
    for (const n of chunks) {
      d.push(input.subarray(off, off + n));
      off += n;
      pushed += n;
      for (let f = d.next(); f !== null; f = d.next()) {
        checkFrame(f);
        frames.push(encodeFrame(f));
      }
      if (d.buffered > pushed) throw new Error(`decoder buffers ${d.buffered} > pushed ${pushed}`);
    }
    return { frames, error: null };
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return { frames, error: `${err.code}` };
  }
}

function checkFrame(f: Frame): void {
  if (f.payload.length > MAX_PAYLOAD) {
    throw new Error(`decoder returned a ${f.payload.length}-byte payload`);
  }
}

/** Frame decoder: only ProtocolError, same result for any chunking, frames re-encode. */
export function fuzzFrameDecoder(seed: number, cases: number): FuzzStats {
  const rng = new Prng(seed);
  const stats: FuzzStats = { cases: 0, accepted: 0, rejected: 0 };
  for (let i = 0; i < cases; i++) {
    const parts: Uint8Array[] = [];
    const count = 1 + rng.int(4);
    for (let k = 0; k < count; k++) parts.push(randomFrame(rng));
    let input: Uint8Array = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      input.set(p, off);
      off += p.length;
    }
    if (rng.int(4) !== 0) input = mutate(rng, input);
    const whole = decodeAll(input, [input.length]);
    const chunks: number[] = [];
    for (let left = input.length; left > 0;) {
      const n = Math.min(left, 1 + rng.int(rng.int(2) ? 16 : 70000));
      chunks.push(n);
      left -= n;
    }
    let split: Outcome;
    try {
      split = decodeAll(input, chunks);
    } catch (err) {
      throw new Error(`seed ${seed} case ${i}: ${err}`);
    }
    if (
      whole.error !== split.error || whole.frames.length !== split.frames.length ||
      whole.frames.some((f, j) => !equalBytes(f, split.frames[j]!))
    ) {
      throw new Error(`seed ${seed} case ${i}: chunked decoding differs from whole decoding`);
    }
    stats.cases++;
    if (whole.error === null) stats.accepted++;
    else stats.rejected++;
  }
  return stats;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const enc = new TextEncoder();

function mutateJson(rng: Prng, value: unknown, depth = 0): unknown {
  if (depth > 4 || rng.int(4) === 0) {
    return rng.pick<unknown>([
      null,
      true,
      0,
      -1,
      1.5,
      2 ** 40,
      "",
      "x".repeat(rng.int(300)),
      [],
      {},
      "open",
      NONCE,
      { hostname: "h", port: 1 },
    ]);
  }
  if (Array.isArray(value)) {
    const out = value.map((v) => rng.int(3) === 0 ? mutateJson(rng, v, depth + 1) : v);
    if (rng.int(4) === 0) out.push(mutateJson(rng, out[0], depth + 1));
    if (rng.int(4) === 0) out.pop();
    return out;
  }
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = { ...value as Record<string, unknown> };
    const keys = Object.keys(out);
    if (keys.length && rng.int(3) === 0) delete out[rng.pick(keys)];
    if (keys.length && rng.int(2) === 0) {
      const k = rng.pick(keys);
      out[k] = mutateJson(rng, out[k], depth + 1);
    }
    if (rng.int(5) === 0) out["extra" + rng.int(3)] = mutateJson(rng, null, depth + 1);
    return out;
  }
  return mutateJson(rng, null, 99);
}

/** Control decoder: only ProtocolError; accepted messages re-encode to a fixed point. */
export function fuzzControlDecoder(seed: number, cases: number): FuzzStats {
  const rng = new Prng(seed ^ 0x9e3779b9);
  const stats: FuzzStats = { cases: 0, accepted: 0, rejected: 0 };
  for (let i = 0; i < cases; i++) {
    const base = rng.pick(SEED_MESSAGES);
    let bytes: Uint8Array;
    const mode = rng.int(3);
    if (mode === 0) bytes = enc.encode(JSON.stringify(mutateJson(rng, base)));
    else if (mode === 1) bytes = mutate(rng, encodeControlMessage(base));
    else bytes = rng.bytes(rng.int(2) ? rng.int(64) : MAX_CONTROL_PAYLOAD + rng.int(3));
    let decoded: ControlMessage;
    try {
      decoded = decodeControlMessage(bytes);
    } catch (err) {
      if (!(err instanceof ProtocolError)) {
        throw new Error(`seed ${seed} case ${i}: decodeControlMessage threw ${err}`);
      }
      stats.cases++;
      stats.rejected++;
      continue;
    }
    const again = encodeControlMessage(decoded);
    if (!equalBytes(encodeControlMessage(decodeControlMessage(again)), again)) {
      throw new Error(`seed ${seed} case ${i}: re-encoding is not a fixed point`);
    }
    stats.cases++;
    stats.accepted++;
  }
  return stats;
}
