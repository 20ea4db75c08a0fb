/**
 * TLS ClientHello parsing for HTTPS passthrough routing: find the server name
 * (SNI, RFC 6066 §3) a visitor asks for without terminating TLS. The parser is
 * pure and checks every length; {@link readClientHello} is the thin I/O edge
 * that reads just enough bytes to decide and hands them back for forwarding.
 *
 * @module
 */
import type { ByteConn } from "../transport/conn.ts";

/** Largest ClientHello handshake message accepted (body, without its 4-byte header). */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

/**
 * Most input bytes the parser looks at: the largest message, its header and
 * the headers of up to 128 records carrying it. Past this, the input is `not_tls`.
 */
export const MAX_CLIENT_HELLO_INPUT_BYTES = MAX_CLIENT_HELLO_BYTES + 4 + 128 * 5;

/** The outcome of {@link parseClientHello}. */
export type ClientHelloResult =
  | { status: "need_more" }
  | { status: "not_tls"; reason: string }
  | { status: "ok"; serverName: string | undefined };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;
const MAX_RECORD_PAYLOAD = 16384;
const MAX_HOST_NAME_BYTES = 255;

const NEED_MORE: ClientHelloResult = Object.freeze({ status: "need_more" });

function notTls(reason: string): ClientHelloResult {
  return { status: "not_tls", reason: `Cannot parse TLS ClientHello: ${reason}` };
}

/** Byte `i` of the handshake stream whose fragments are `parts` (start/end pairs in `bytes`). */
function handshakeByte(bytes: Uint8Array, parts: readonly number[], i: number): number {
  for (let k = 0; k < parts.length; k += 2) {
    const len = parts[k + 1]! - parts[k]!;
    if (i < len) return bytes[parts[k]! + i]!;
    i -= len;
  }
  return 0; // not reached: callers check the length first
}

/**
 * Parses the TLS ClientHello at the start of `bytes` (records and handshake
 * message may be split anywhere) and returns the server name it asks for,
 * lower-cased, or `undefined` when it has none. `need_more` means "read more
 * and call again with all bytes so far"; `not_tls` carries the reason (not a
 * TLS handshake, a malformed or oversized hello, an invalid name). Looks at
 * no more than {@link MAX_CLIENT_HELLO_INPUT_BYTES} bytes; never throws.
 *
 * @example
 * ```ts
 * parseClientHello(new Uint8Array([0x16, 0x03])); // { status: "need_more" }
 * parseClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n")).status; // "not_tls"
 * ```
 */
export function parseClientHello(bytes: Uint8Array): ClientHelloResult {
  // 1. Gather the handshake message from its records.
  const parts: number[] = [];
  let have = 0;
  let need = -1; // 4 + message length, once the handshake header is known
  let off = 0;
  while (need < 0 || have < need) {
    if (off + 5 > bytes.length) {
      // Check the part of the record header already here, to answer early.
      if (off < bytes.length && bytes[off] !== RECORD_HANDSHAKE) {
        return notTls(`record type 0x${hex(bytes[off]!)} is not a handshake`);
      }
      if (off + 1 < bytes.length && bytes[off + 1] !== 0x03) {
        return notTls(`record version major ${bytes[off + 1]} is not 3`);
      }
      return moreOrLimit(bytes);
    }
    const type = bytes[off]!;
    if (type !== RECORD_HANDSHAKE) return notTls(`record type 0x${hex(type)} is not a handshake`);
    if (bytes[off + 1] !== 0x03) return notTls(`record version major ${bytes[off + 1]} is not 3`);
    const len = (bytes[off + 3]! << 8) | bytes[off + 4]!;
    if (len === 0 || len > MAX_RECORD_PAYLOAD) {
      return notTls(`record length ${len} is not within 1..${MAX_RECORD_PAYLOAD}`);
    }
    const start = off + 5;
    const end = Math.min(start + len, bytes.length);
    parts.push(start, end);
    have += end - start;
    if (need < 0 && have >= 4) {
      const msgType = handshakeByte(bytes, parts, 0);
      if (msgType !== HANDSHAKE_CLIENT_HELLO) {
        return notTls(`handshake message type ${msgType} is not ClientHello (1)`);
      }
      const msgLen = (handshakeByte(bytes, parts, 1) << 16) |
        (handshakeByte(bytes, parts, 2) << 8) | handshakeByte(bytes, parts, 3);
      if (msgLen > MAX_CLIENT_HELLO_BYTES) {
        return notTls(`ClientHello length ${msgLen} exceeds ${MAX_CLIENT_HELLO_BYTES} bytes`);
      }
      need = 4 + msgLen;
    }
    if (need >= 0 && have >= need) break;
    if (end < start + len) return moreOrLimit(bytes);
    off = start + len;
    if (off >= MAX_CLIENT_HELLO_INPUT_BYTES) {
      return notTls(`no complete ClientHello within ${MAX_CLIENT_HELLO_INPUT_BYTES} bytes`);
    }
  }
  // 2. One contiguous view of the message: a subarray when one record holds it.
  let msg: Uint8Array;
  if (parts[1]! - parts[0]! >= need) {
    msg = bytes.subarray(parts[0]!, parts[0]! + need);
  } else {
    msg = new Uint8Array(need);
    let at = 0;
    for (let k = 0; k < parts.length && at < need; k += 2) {
      const take = Math.min(parts[k + 1]! - parts[k]!, need - at);
      msg.set(bytes.subarray(parts[k]!, parts[k]! + take), at);
      at += take;
    }
  }
  return parseHelloBody(msg);
}

function moreOrLimit(bytes: Uint8Array): ClientHelloResult {
  if (bytes.length >= MAX_CLIENT_HELLO_INPUT_BYTES) {
    return notTls(`no complete ClientHello within ${MAX_CLIENT_HELLO_INPUT_BYTES} bytes`);
  }
  return NEED_MORE;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, "0");
}

/** Parses a complete ClientHello message (with its 4-byte handshake header). */
function parseHelloBody(msg: Uint8Array): ClientHelloResult {
  const end = msg.length;
  let p = 4;
  // legacy_version (2) + random (32) + the session id's length byte (1)
  if (p + 35 > end) return notTls("truncated before the session id");
  if (msg[p] !== 0x03) return notTls(`client version major ${msg[p]} is not 3`);
  p += 34;
  const sidLen = msg[p]!;
  if (sidLen > 32) return notTls(`session id length ${sidLen} exceeds 32`);
  p += 1 + sidLen;
  if (p + 2 > end) return notTls("truncated before the cipher suites");
  const csLen = (msg[p]! << 8) | msg[p + 1]!;
  if (csLen < 2 || csLen % 2 !== 0) return notTls(`cipher suites length ${csLen} is invalid`);
  p += 2 + csLen;
  if (p + 1 > end) return notTls("truncated before the compression methods");
  const cmLen = msg[p]!;
  if (cmLen < 1) return notTls("no compression methods");
  p += 1 + cmLen;
  if (p > end) return notTls("truncated in the compression methods");
  if (p === end) return { status: "ok", serverName: undefined }; // no extensions
  if (p + 2 > end) return notTls("truncated extensions length");
  const extLen = (msg[p]! << 8) | msg[p + 1]!;
  p += 2;
  if (p + extLen !== end) {
    return notTls(`extensions length ${extLen} does not match the ${end - p} bytes left`);
  }
  let serverName: string | undefined;
  let seenSni = false;
  while (p < end) {
    if (p + 4 > end) return notTls("truncated extension header");
    const type = (msg[p]! << 8) | msg[p + 1]!;
    const len = (msg[p + 2]! << 8) | msg[p + 3]!;
    p += 4;
    if (p + len > end) return notTls(`extension ${type} length ${len} overruns the hello`);
    if (type === EXT_SERVER_NAME) {
      if (seenSni) return notTls("duplicate server_name extension");
      seenSni = true;
      const r = parseServerNameExtension(msg, p, p + len);
      if (typeof r !== "string" && r !== undefined) return r;
      serverName = r;
    }
    p += len;
  }
  return { status: "ok", serverName };
}

/** The host name of a server_name extension body in `msg[from, to)`. */
function parseServerNameExtension(
  msg: Uint8Array,
  from: number,
  to: number,
): string | undefined | ClientHelloResult {
  if (to === from) return undefined; // empty body (allowed in a ServerHello; tolerate)
  if (from + 2 > to) return notTls("truncated server name list");
  const listLen = (msg[from]! << 8) | msg[from + 1]!;
  if (from + 2 + listLen !== to) return notTls("server name list length mismatch");
  let p = from + 2;
  let name: string | undefined;
  while (p < to) {
    if (p + 3 > to) return notTls("truncated server name entry");
    const nameType = msg[p]!;
    const len = (msg[p + 1]! << 8) | msg[p + 2]!;
    p += 3;
    if (p + len > to) return notTls("server name entry overruns its list");
    if (nameType === NAME_TYPE_HOST) {
      if (name !== undefined) return notTls("more than one host_name");
      const parsed = hostName(msg, p, p + len);
      if (parsed === undefined) return notTls("server name is not a DNS host name");
      name = parsed;
    }
    p += len;
  }
  return name;
}

/** The lower-cased DNS name in `msg[from, to)`, or `undefined` when it is not one. */
function hostName(msg: Uint8Array, from: number, to: number): string | undefined {
  const len = to - from;
  if (len < 1 || len > MAX_HOST_NAME_BYTES) return undefined;
  let out = "";
  for (let i = from; i < to; i++) {
    let c = msg[i]!;
    if (c >= 0x41 && c <= 0x5a) c += 0x20; // A-Z -> a-z
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d ||
      c === 0x2e || c === 0x5f;
    if (!ok) return undefined;
    out += String.fromCharCode(c);
  }
  if (out.startsWith(".") || out.endsWith(".") || out.includes("..")) return undefined;
  return out;
}

/** What {@link readClientHello} read and found. */
export interface ClientHelloRead {
  /** The server name, lower-cased; `undefined` when absent or not decidable. */
  serverName: string | undefined;
  /** Every byte read, to be forwarded first (a copy owned by the caller). */
  buffered: Uint8Array;
  /** The parse result: `need_more` when the stream ended or `maxBytes` came first. */
  hello: ClientHelloResult;
}

/**
 * Reads from `conn` until a ClientHello can be judged (see
 * {@link parseClientHello}), the stream ends, or `maxBytes` are read, and
 * returns the name and every byte read. When no decision comes within
 * `timeoutMs`, closes `conn` and rejects with `Cannot read TLS ClientHello: …`;
 * read errors reject too. Does not close `conn` otherwise.
 */
export async function readClientHello(
  conn: ByteConn,
  maxBytes: number,
  timeoutMs: number,
): Promise<ClientHelloRead> {
  const cap = Math.max(16, Math.min(maxBytes, MAX_CLIENT_HELLO_INPUT_BYTES));
  let buf = new Uint8Array(Math.min(cap, 4096));
  let len = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
  }, timeoutMs);
  try {
    while (true) {
      if (len === buf.length) {
        if (buf.length >= cap) {
          return { serverName: undefined, buffered: buf.slice(0, len), hello: NEED_MORE };
        }
        const next = new Uint8Array(Math.min(cap, buf.length * 2));
        next.set(buf);
        buf = next;
      }
      let n: number | null;
      try {
        n = await conn.read(buf.subarray(len));
      } catch (err) {
        if (timedOut) {
          throw new Error(`Cannot read TLS ClientHello: none within ${timeoutMs} ms`);
        }
        throw err;
      }
      if (n === null) {
        if (timedOut) throw new Error(`Cannot read TLS ClientHello: none within ${timeoutMs} ms`);
        const hello = len === 0 ? NEED_MORE : parseClientHello(buf.subarray(0, len));
        return {
          serverName: hello.status === "ok" ? hello.serverName : undefined,
          buffered: buf.slice(0, len),
          hello,
        };
      }
      len += n;
      const hello = parseClientHello(buf.subarray(0, len));
      if (hello.status !== "need_more") {
        return {
          serverName: hello.status === "ok" ? hello.serverName : undefined,
          buffered: buf.slice(0, len),
          hello,
        };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
