/**
 * PROXY protocol headers (HAProxy's spec, v1 text and v2 binary) that tell a
 * LAN service the visitor's address when the tunnel client connects to it.
 *
 * @module
 */
import type { HostPort } from "../transport/conn.ts";

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function ipv4Bytes(ip: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
}

function ipv6Bytes(ip: string): number[] | undefined {
  let text = ip.replace(/^\[|\]$/g, "");
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  if (!text.includes(":")) return undefined;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipv4Bytes(v4[1]!);
    if (!b) return undefined;
    text = text.slice(0, -v4[1]!.length) +
      `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  const out: number[] = [];
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const n = parseInt(g, 16);
    out.push(n >> 8, n & 0xff);
  }
  return out;
}

/** `PROXY TCP4|TCP6 src dst sport dport\r\n` (v1), or `PROXY UNKNOWN\r\n` for mixed families. */
export function encodeProxyV1(source: HostPort, destination: HostPort): Uint8Array {
  const s4 = ipv4Bytes(source.hostname);
  const d4 = ipv4Bytes(destination.hostname);
  const s6 = s4 ? undefined : ipv6Bytes(source.hostname);
  const d6 = d4 ? undefined : ipv6Bytes(destination.hostname);
  let line: string;
  if (s4 && d4) {
    line =
      `PROXY TCP4 ${source.hostname} ${destination.hostname} ${source.port} ${destination.port}\r\n`;
  } else if (s6 && d6) {
    const strip = (h: string) => h.replace(/^\[|\]$/g, "");
    line = `PROXY TCP6 ${strip(source.hostname)} ${
      strip(destination.hostname)
    } ${source.port} ${destination.port}\r\n`;
  } else {
    line = "PROXY UNKNOWN\r\n";
  }
  return new TextEncoder().encode(line);
}

/** The binary v2 header (command PROXY, transport STREAM); LOCAL when the families differ. */
export function encodeProxyV2(source: HostPort, destination: HostPort): Uint8Array {
  const s4 = ipv4Bytes(source.hostname);
  const d4 = ipv4Bytes(destination.hostname);
  const s6 = s4 ? undefined : ipv6Bytes(source.hostname);
  const d6 = d4 ? undefined : ipv6Bytes(destination.hostname);
  let family = 0x00;
  let addr: number[] = [];
  if (s4 && d4) {
    family = 0x11; // AF_INET, STREAM
    addr = [...s4, ...d4];
  } else if (s6 && d6) {
    family = 0x21; // AF_INET6, STREAM
    addr = [...s6, ...d6];
  }
  if (family !== 0x00) {
    addr.push(source.port >> 8, source.port & 0xff, destination.port >> 8, destination.port & 0xff);
  }
  const command = family === 0x00 ? 0x20 : 0x21; // version 2; LOCAL or PROXY
  return new Uint8Array([
    ...V2_SIGNATURE,
    command,
    family,
    addr.length >> 8,
    addr.length & 0xff,
    ...addr,
  ]);
}

/** The header for `version`, or an empty array when `version` is undefined. */
export function encodeProxyHeader(
  version: "v1" | "v2" | undefined,
  source: HostPort,
  destination: HostPort,
): Uint8Array {
  if (version === "v1") return encodeProxyV1(source, destination);
  if (version === "v2") return encodeProxyV2(source, destination);
  return new Uint8Array(0);
}
