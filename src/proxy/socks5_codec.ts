/**
 * SOCKS5 (RFC 1928) and user/password auth (RFC 1929) messages, pure.
 * Parsers take the bytes received so far and return `null` while a message is
 * incomplete, or the message with its `size`; they throw `SyntaxError` on
 * malformed input. Every length is checked before it is used.
 *
 * @module
 */
import type { HostPort } from "../transport/conn.ts";

/** Protocol version byte. */
export const SOCKS_VERSION = 0x05;
/** RFC 1929 sub-negotiation version. */
export const USERPASS_VERSION = 0x01;

/** Method: no authentication. */
export const METHOD_NO_AUTH = 0x00;
/** Method: user name and password (RFC 1929). */
export const METHOD_USERPASS = 0x02;
/** Method reply: none of the offered methods is acceptable. */
export const METHOD_NO_ACCEPTABLE = 0xff;

/** Command: CONNECT. */
export const CMD_CONNECT = 0x01;
/** Command: BIND. */
export const CMD_BIND = 0x02;
/** Command: UDP ASSOCIATE. */
export const CMD_UDP_ASSOCIATE = 0x03;

/** Address type: IPv4. */
export const ATYP_IPV4 = 0x01;
/** Address type: domain name. */
export const ATYP_DOMAIN = 0x03;
/** Address type: IPv6. */
export const ATYP_IPV6 = 0x04;

/** Reply codes (RFC 1928 §6). */
export const REPLY = {
  succeeded: 0x00,
  general_failure: 0x01,
  not_allowed: 0x02,
  network_unreachable: 0x03,
  host_unreachable: 0x04,
  connection_refused: 0x05,
  ttl_expired: 0x06,
  command_not_supported: 0x07,
  address_type_not_supported: 0x08,
} as const;

/** One of the {@link REPLY} codes. */
export type ReplyCode = typeof REPLY[keyof typeof REPLY];

/** A SOCKS address: what the client asked for, kept with its type. */
export interface SocksAddress extends HostPort {
  type: "ipv4" | "ipv6" | "domain";
}

/** A parsed method-selection greeting. */
export interface Greeting {
  methods: number[];
  size: number;
}

/** Parsed RFC 1929 credentials (raw bytes, for a constant-time compare). */
export interface UserPassRequest {
  username: Uint8Array;
  password: Uint8Array;
  size: number;
}

/** A parsed SOCKS5 request. */
export interface SocksRequest {
  command: number;
  address: SocksAddress;
  size: number;
}

/** A parsed UDP datagram header and its payload. */
export interface UdpDatagram {
  frag: number;
  address: SocksAddress;
  /** The payload (a view into the input). */
  data: Uint8Array;
}

/**
 * A request whose address type is unknown: answer with
 * {@link REPLY}.address_type_not_supported.
 */
export class AddressTypeError extends SyntaxError {
  constructor(atyp: number) {
    super(
      `Cannot parse SOCKS5 address: address type 0x${
        atyp.toString(16).padStart(2, "0")
      } is unknown`,
    );
    this.name = "AddressTypeError";
  }
}

/**
 * Parses the client greeting `VER NMETHODS METHODS…`.
 *
 * @example
 * ```ts
 * parseGreeting(new Uint8Array([5, 1, 0])); // { methods: [0], size: 3 }
 * ```
 */
export function parseGreeting(buf: Uint8Array): Greeting | null {
  if (buf.length < 1) return null;
  if (buf[0] !== SOCKS_VERSION) {
    throw new SyntaxError(`Cannot parse SOCKS5 greeting: version ${buf[0]} is not 5`);
  }
  if (buf.length < 2) return null;
  const n = buf[1]!;
  if (n === 0) throw new SyntaxError("Cannot parse SOCKS5 greeting: no methods offered");
  if (buf.length < 2 + n) return null;
  return { methods: Array.from(buf.subarray(2, 2 + n)), size: 2 + n };
}

/** Encodes the method selection reply `VER METHOD`. */
export function encodeMethodSelection(method: number): Uint8Array {
  return new Uint8Array([SOCKS_VERSION, method]);
}

/** Encodes a greeting (client side; for tests and clients). */
export function encodeGreeting(methods: readonly number[]): Uint8Array {
  if (methods.length === 0 || methods.length > 255) {
    throw new RangeError(
      `Cannot encode SOCKS5 greeting: ${methods.length} methods (1-255 allowed)`,
    );
  }
  return new Uint8Array([SOCKS_VERSION, methods.length, ...methods]);
}

/** Parses the RFC 1929 request `VER ULEN UNAME PLEN PASSWD`. */
export function parseUserPass(buf: Uint8Array): UserPassRequest | null {
  if (buf.length < 1) return null;
  if (buf[0] !== USERPASS_VERSION) {
    throw new SyntaxError(`Cannot parse SOCKS5 user/password: version ${buf[0]} is not 1`);
  }
  if (buf.length < 2) return null;
  const ulen = buf[1]!;
  if (ulen === 0) throw new SyntaxError("Cannot parse SOCKS5 user/password: empty user name");
  if (buf.length < 2 + ulen + 1) return null;
  const plen = buf[2 + ulen]!;
  const size = 3 + ulen + plen;
  if (buf.length < size) return null;
  return {
    username: buf.slice(2, 2 + ulen),
    password: buf.slice(3 + ulen, size),
    size,
  };
}

/** Encodes an RFC 1929 request (client side). */
export function encodeUserPass(username: string, password: string): Uint8Array {
  const u = new TextEncoder().encode(username);
  const p = new TextEncoder().encode(password);
  if (u.length < 1 || u.length > 255 || p.length > 255) {
    throw new RangeError("Cannot encode SOCKS5 user/password: lengths must be 1-255 and 0-255");
  }
  const out = new Uint8Array(3 + u.length + p.length);
  out[0] = USERPASS_VERSION;
  out[1] = u.length;
  out.set(u, 2);
  out[2 + u.length] = p.length;
  out.set(p, 3 + u.length);
  return out;
}

/** Encodes the RFC 1929 reply: status 0 on success, 1 on failure. */
export function encodeUserPassReply(ok: boolean): Uint8Array {
  return new Uint8Array([USERPASS_VERSION, ok ? 0x00 : 0x01]);
}

/**
 * Parses `ATYP ADDR PORT` at `buf[offset]`; returns the address and the
 * offset after it, or `null` if incomplete.
 */
function parseAddress(
  buf: Uint8Array,
  offset: number,
): { address: SocksAddress; end: number } | null {
  if (buf.length < offset + 1) return null;
  const atyp = buf[offset]!;
  let hostname: string;
  let type: SocksAddress["type"];
  let p = offset + 1;
  if (atyp === ATYP_IPV4) {
    if (buf.length < p + 4 + 2) return null;
    hostname = `${buf[p]}.${buf[p + 1]}.${buf[p + 2]}.${buf[p + 3]}`;
    type = "ipv4";
    p += 4;
  } else if (atyp === ATYP_IPV6) {
    if (buf.length < p + 16 + 2) return null;
    hostname = formatIpv6(buf.subarray(p, p + 16));
    type = "ipv6";
    p += 16;
  } else if (atyp === ATYP_DOMAIN) {
    if (buf.length < p + 1) return null;
    const len = buf[p]!;
    if (len === 0) throw new SyntaxError("Cannot parse SOCKS5 address: empty domain name");
    if (buf.length < p + 1 + len + 2) return null;
    const bytes = buf.subarray(p + 1, p + 1 + len);
    for (const b of bytes) {
      // letters, digits, '-', '.', '_' and ':' (IPv6 literals sent as names)
      const ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
        b === 0x2d || b === 0x2e || b === 0x5f || b === 0x3a;
      if (!ok) {
        throw new SyntaxError("Cannot parse SOCKS5 address: invalid character in domain name");
      }
    }
    hostname = String.fromCharCode(...bytes);
    type = "domain";
    p += 1 + len;
  } else {
    throw new AddressTypeError(atyp);
  }
  const port = (buf[p]! << 8) | buf[p + 1]!;
  return { address: { type, hostname, port }, end: p + 2 };
}

/** Parses a request `VER CMD RSV ATYP DST.ADDR DST.PORT`. */
export function parseRequest(buf: Uint8Array): SocksRequest | null {
  if (buf.length < 1) return null;
  if (buf[0] !== SOCKS_VERSION) {
    throw new SyntaxError(`Cannot parse SOCKS5 request: version ${buf[0]} is not 5`);
  }
  if (buf.length < 3) return null;
  if (buf[2] !== 0x00) throw new SyntaxError("Cannot parse SOCKS5 request: reserved byte is not 0");
  const parsed = parseAddress(buf, 3);
  if (parsed === null) return null;
  return { command: buf[1]!, address: parsed.address, size: parsed.end };
}

/** Encodes `ATYP ADDR PORT` for `addr` (IP literal or name). */
export function encodeAddress(addr: HostPort): Uint8Array {
  const { hostname, port } = addr;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Cannot encode SOCKS5 address: port ${port} is out of range`);
  }
  let out: Uint8Array;
  const v4 = parseIpv4(hostname);
  const v6 = v4 === null ? parseIpv6(hostname) : null;
  if (v4 !== null) {
    out = new Uint8Array(1 + 4 + 2);
    out[0] = ATYP_IPV4;
    out.set(v4, 1);
  } else if (v6 !== null) {
    out = new Uint8Array(1 + 16 + 2);
    out[0] = ATYP_IPV6;
    out.set(v6, 1);
  } else {
    const name = new TextEncoder().encode(hostname);
    if (name.length < 1 || name.length > 255) {
      throw new RangeError(
        `Cannot encode SOCKS5 address: domain name length ${name.length} is not 1-255`,
      );
    }
    out = new Uint8Array(1 + 1 + name.length + 2);
    out[0] = ATYP_DOMAIN;
    out[1] = name.length;
    out.set(name, 2);
  }
  out[out.length - 2] = port >> 8;
  out[out.length - 1] = port & 0xff;
  return out;
}

/** Encodes a request (client side). */
export function encodeRequest(command: number, addr: HostPort): Uint8Array {
  const a = encodeAddress(addr);
  const out = new Uint8Array(3 + a.length);
  out.set([SOCKS_VERSION, command, 0x00]);
  out.set(a, 3);
  return out;
}

/** Encodes a reply `VER REP RSV ATYP BND.ADDR BND.PORT`. */
export function encodeReply(
  code: number,
  bind: HostPort = { hostname: "0.0.0.0", port: 0 },
): Uint8Array {
  const a = encodeAddress(bind);
  const out = new Uint8Array(3 + a.length);
  out.set([SOCKS_VERSION, code, 0x00]);
  out.set(a, 3);
  return out;
}

/** Parses a reply (client side); same shape as a request, `command` holds REP. */
export function parseReply(buf: Uint8Array): SocksRequest | null {
  return parseRequest(buf);
}

/**
 * Parses a whole UDP datagram `RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA`.
 * Throws `SyntaxError` when it is truncated or malformed.
 */
export function parseUdpDatagram(buf: Uint8Array): UdpDatagram {
  if (buf.length < 4) {
    throw new SyntaxError(`Cannot parse SOCKS5 UDP header: ${buf.length} bytes is too short`);
  }
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new SyntaxError("Cannot parse SOCKS5 UDP header: reserved bytes are not 0");
  }
  const parsed = parseAddress(buf, 3);
  if (parsed === null) throw new SyntaxError("Cannot parse SOCKS5 UDP header: truncated address");
  return { frag: buf[2]!, address: parsed.address, data: buf.subarray(parsed.end) };
}

/** Encodes a UDP datagram: header for `addr` (FRAG 0) followed by `data`. */
export function encodeUdpDatagram(addr: HostPort, data: Uint8Array): Uint8Array {
  const a = encodeAddress(addr);
  const out = new Uint8Array(3 + a.length + data.length);
  out.set(a, 3);
  out.set(data, 3 + a.length);
  return out;
}

/** Parses a dotted-quad IPv4 literal to 4 bytes, or `null`. */
export function parseIpv4(text: string): Uint8Array | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const n = Number(m[i + 1]);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** Parses an IPv6 literal (with `::` and a trailing dotted quad; no zone) to 16 bytes, or `null`. */
export function parseIpv6(text: string): Uint8Array | null {
  if (!text.includes(":") || text.length > 45) return null;
  let head = text;
  let tail4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tail4 = parseIpv4(text.slice(lastColon + 1));
    if (tail4 === null) return null;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = parseGroups(halves[0]!);
  const right = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (left === null || right === null) return null;
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [
    ...left,
    ...new Array<number>(halves.length === 2 ? missing : 0).fill(0),
    ...right,
  ];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (tail4 !== null) out.set(tail4, 12);
  return out;
}

/** Formats 16 bytes as a compressed IPv6 literal (RFC 5952). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  return hex.slice(0, bestStart).join(":") + "::" + hex.slice(bestStart + bestLen).join(":");
}
