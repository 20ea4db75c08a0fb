/**
 * IP allow/deny lists with IPv4 and IPv6 CIDR, pure. IPv4-mapped IPv6
 * addresses (`::ffff:1.2.3.4`) match IPv4 rules; `/0` means "any address of
 * that family" (not "exact", as in the Rust model, B30).
 *
 * @module
 */

/** A parsed CIDR block: the address as a 128-bit number (IPv4 mapped) and a prefix. */
export interface Cidr {
  /** Address bits, IPv4 as `::ffff:a.b.c.d`. */
  readonly bits: bigint;
  /** Prefix length on the 128-bit form. */
  readonly prefix: number;
  /** As written in the config. */
  readonly text: string;
}

const V4_MAPPED = 0xffffn << 32n;

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let out = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out = (out << 8n) | BigInt(n);
  }
  return out;
}

function parseIpv6(text: string): bigint | undefined {
  let s = text;
  const zone = s.indexOf("%");
  if (zone !== -1) s = s.slice(0, zone);
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) becomes two hex groups.
  if (s.includes(".")) {
    const lastColon = s.lastIndexOf(":");
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const group = (part: string): bigint[] | undefined => {
    if (part === "") return [];
    const out: bigint[] = [];
    for (const g of part.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(parseInt(g, 16)));
    }
    return out;
  };
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  if (head === undefined || rest === undefined) return undefined;
  const given = head.length + rest.length;
  let groups: bigint[];
  if (halves.length === 2) {
    if (given > 7) return undefined;
    groups = [...head, ...new Array<bigint>(8 - given).fill(0n), ...rest];
  } else {
    if (given !== 8) return undefined;
    groups = head;
  }
  let out = 0n;
  for (const g of groups) out = (out << 16n) | g;
  return out;
}

/**
 * Parses an IP literal (`1.2.3.4`, `::1`, `[::1]`, `::ffff:1.2.3.4`) into its
 * 128-bit form (IPv4 as IPv4-mapped IPv6). `undefined` when it is not an IP.
 */
export function parseIp(text: string): bigint | undefined {
  const t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (t.includes(":")) return parseIpv6(t);
  const v4 = parseIpv4(t);
  return v4 === undefined ? undefined : V4_MAPPED | v4;
}

/**
 * Parses `ip` or `ip/prefix` (IPv4 prefixes 0–32, IPv6 0–128). Throws
 * `SyntaxError` with the expected form.
 *
 * @example
 * ```ts
 * cidrContains(parseCidr("10.0.0.0/8"), "10.1.2.3"); // true
 * cidrContains(parseCidr("10.0.0.0/8"), "::ffff:10.1.2.3"); // true
 * ```
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const bits = parseIp(addrText);
  const isV4 = !addrText.includes(":");
  const max = isV4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (bits === undefined || !(prefix >= 0 && prefix <= max)) {
    throw new SyntaxError(
      `expected an IP address or CIDR like "10.0.0.0/8" or "2001:db8::/32", got ${
        JSON.stringify(text)
      }`,
    );
  }
  const p = isV4 ? prefix + 96 : prefix;
  const mask = p === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - p)) - 1n);
  return { bits: bits & mask, prefix: p, text };
}

/** Whether `ip` (a literal) is inside `cidr`. Non-IP input never matches. */
export function cidrContains(cidr: Cidr, ip: string | bigint): boolean {
  const bits = typeof ip === "bigint" ? ip : parseIp(ip);
  if (bits === undefined) return false;
  const p = cidr.prefix;
  const mask = p === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - p)) - 1n);
  return (bits & mask) === cidr.bits;
}

/** A compiled allow/deny pair. */
export interface IpRules {
  readonly allow: readonly Cidr[];
  readonly deny: readonly Cidr[];
}

/** Compiles allow and deny lists (already validated by the config reader). */
export function compileIpRules(allow: readonly string[], deny: readonly string[]): IpRules {
  return { allow: allow.map(parseCidr), deny: deny.map(parseCidr) };
}

/**
 * Whether a client may pass: denied when it is in `deny`, or when `allow` is
 * not empty and it is not in `allow`. An unparsable client address passes only
 * when both lists are empty.
 */
export function ipAllowed(rules: IpRules, clientIp: string): boolean {
  if (rules.allow.length === 0 && rules.deny.length === 0) return true;
  const bits = parseIp(clientIp);
  if (bits === undefined) return false;
  if (rules.deny.some((c) => cidrContains(c, bits))) return false;
  if (rules.allow.length > 0 && !rules.allow.some((c) => cidrContains(c, bits))) return false;
  return true;
}
