/**
 * Egress policy, pure: which targets a proxy may connect to. Rules are
 * strings (`10.0.0.0/8`, `*.internal`, `host:443`, `127.0.0.1:6379`,
 * `[::1]:8080`, `*:25`); IP and CIDR parsing comes from `src/reverse/ip_rules.ts`.
 *
 * Precedence (first match decides):
 * 1. a `deny` rule matches: refused (deny beats allow);
 * 2. an `allow` rule matches: allowed;
 * 3. protections, when on (the tunnel server): loopback, link-local,
 *    unspecified and wmproxy's own listeners are refused;
 * 4. the `default` (`allow` unless configured).
 *
 * An allow rule lifts a protection, with one exception: an own listener is
 * reachable only through an allow rule that names its port.
 *
 * A name is checked before DNS ({@link checkEgressName}) and every address it
 * resolves to after DNS ({@link checkEgressAddress}), so a name that resolves
 * to 127.0.0.1 meets the loopback protection too.
 *
 * @module
 */
import { type Cidr, cidrContains, parseCidr, parseIp } from "../reverse/ip_rules.ts";

/** What a rule's host part matches. */
export type EgressHost =
  | { readonly kind: "any" }
  | { readonly kind: "cidr"; readonly cidr: Cidr }
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "suffix"; readonly suffix: string };

/** One parsed rule. */
export interface EgressRule {
  /** As written in the config. */
  readonly text: string;
  readonly host: EgressHost;
  /** Inclusive port range; `undefined` = any port. */
  readonly ports: { readonly from: number; readonly to: number } | undefined;
}

/** A compiled policy. */
export interface EgressPolicy {
  readonly allow: readonly EgressRule[];
  readonly deny: readonly EgressRule[];
  /** What happens when no rule and no protection matches. */
  readonly defaultAction: "allow" | "deny";
  /** Refuse loopback, link-local, unspecified and own listeners (step 3). */
  readonly protect: boolean;
}

/** A listener of this process: `ip` `"any"` when bound to 0.0.0.0 or `::`. */
export interface OwnListener {
  readonly ip: bigint | "any";
  readonly port: number;
}

/** What the protections need to know about the host (filled in by the I/O edge). */
export interface EgressHostInfo {
  /** This process's listeners. */
  readonly own: readonly OwnListener[];
  /** Addresses of this host's interfaces (for listeners bound to "any"). */
  readonly localIps: ReadonlySet<bigint>;
}

/** The outcome of a check; `rule` says which rule or protection decided. */
export type EgressDecision =
  | { readonly allowed: true; readonly rule: string | undefined }
  | { readonly allowed: false; readonly rule: string };

const NAME_REGEXP = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** Built-in protections of step 3 (IPv4 rules also match IPv4-mapped IPv6). */
const PROTECTED: readonly { cidr: Cidr; label: string }[] = [
  ["127.0.0.0/8", "loopback"],
  ["::1/128", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["fe80::/10", "link-local"],
  ["0.0.0.0/8", "unspecified"],
  ["::/128", "unspecified"],
].map(([text, label]) => ({ cidr: parseCidr(text!), label: label! }));

/** Lower case, no trailing dot: the form names are compared in. */
export function normalizeHostName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith(".") ? n.slice(0, -1) : n;
}

function parsePorts(text: string, rule: string): EgressRule["ports"] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const from = m ? Number(m[1]) : NaN;
  const to = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(from >= 1 && to <= 65535 && from <= to)) {
    throw new SyntaxError(
      `expected a port or a range like "8000-8999" after the last ":" in ${JSON.stringify(rule)}`,
    );
  }
  return { from, to };
}

function parseHost(text: string, rule: string): EgressHost {
  if (text === "*") return { kind: "any" };
  const addr = text.includes("/") ? text.slice(0, text.indexOf("/")) : text;
  if (parseIp(addr) !== undefined || text.includes("/")) {
    return { kind: "cidr", cidr: parseCidr(text) };
  }
  const wildcard = text.startsWith("*.");
  const name = normalizeHostName(wildcard ? text.slice(2) : text);
  if (!NAME_REGEXP.test(name)) {
    throw new SyntaxError(
      `expected an IP, a CIDR, a host name, "*.suffix" or "*" (optionally ":port"), got ${
        JSON.stringify(rule)
      }`,
    );
  }
  return wildcard ? { kind: "suffix", suffix: name } : { kind: "name", name };
}

/**
 * Parses one rule: `HOST`, `HOST:PORT` or `HOST:FROM-TO`, where HOST is `*`,
 * an IP, a CIDR, a name or `*.suffix` (matching names below `suffix`, not
 * `suffix` itself). IPv6 with a port goes in brackets: `[::1]:6379`,
 * `[fd00::/8]:22`. Throws `SyntaxError` with the expected form.
 */
export function parseEgressRule(text: string): EgressRule {
  const t = text.trim();
  if (t === "") throw new SyntaxError('expected a rule like "10.0.0.0/8", got ""');
  if (t.startsWith("[")) {
    const close = t.indexOf("]");
    const rest = close === -1 ? "" : t.slice(close + 1);
    if (close === -1 || (rest !== "" && !rest.startsWith(":"))) {
      throw new SyntaxError(`expected "[IPv6]" or "[IPv6]:port", got ${JSON.stringify(text)}`);
    }
    const host = parseHost(t.slice(1, close), text);
    if (host.kind !== "cidr") {
      throw new SyntaxError(`expected an IPv6 address inside [ ], got ${JSON.stringify(text)}`);
    }
    return { text, host, ports: rest === "" ? undefined : parsePorts(rest.slice(1), text) };
  }
  const colons = t.split(":").length - 1;
  if (colons >= 2) return { text, host: parseHost(t, text), ports: undefined };
  if (colons === 1) {
    const i = t.indexOf(":");
    return { text, host: parseHost(t.slice(0, i), text), ports: parsePorts(t.slice(i + 1), text) };
  }
  return { text, host: parseHost(t, text), ports: undefined };
}

/** The config shape of a policy (`proxy.egress`, `server.egress`, a token's `egress`). */
export interface EgressRules {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly default?: "allow" | "deny" | undefined;
}

/**
 * Compiles a policy from the section's rules and, for the tunnel server, the
 * token's: their `allow` and `deny` lists add up, the token's `default` wins
 * when it sets one. Rules are validated by the config reader.
 */
export function compileEgressPolicy(
  base: EgressRules,
  options: { protect: boolean; token?: EgressRules | undefined },
): EgressPolicy {
  const token = options.token;
  return {
    allow: [...base.allow, ...(token?.allow ?? [])].map(parseEgressRule),
    deny: [...base.deny, ...(token?.deny ?? [])].map(parseEgressRule),
    defaultAction: token?.default ?? base.default ?? "allow",
    protect: options.protect,
  };
}

/** Whether the policy lets everything through without looking (no DNS step needed). */
export function egressAllowsAll(policy: EgressPolicy): boolean {
  return !policy.protect && policy.deny.length === 0 && policy.defaultAction === "allow";
}

function portMatches(rule: EgressRule, port: number): boolean {
  return rule.ports === undefined || (port >= rule.ports.from && port <= rule.ports.to);
}

function nameMatches(host: EgressHost, name: string | undefined): boolean {
  if (name === undefined) return false;
  if (host.kind === "name") return name === host.name;
  if (host.kind === "suffix") return name.endsWith("." + host.suffix);
  return false;
}

function ruleMatches(
  rule: EgressRule,
  name: string | undefined,
  ip: bigint | undefined,
  port: number,
): boolean {
  if (!portMatches(rule, port)) return false;
  const h = rule.host;
  if (h.kind === "any") return true;
  if (h.kind === "cidr") return ip !== undefined && cidrContains(h.cidr, ip);
  return nameMatches(h, name);
}

/**
 * Before DNS: refuses a name that a deny rule matches, or (with default
 * `deny`) one no allow rule could match whatever it resolves to. `undefined`
 * means "resolve it and check every address".
 */
export function checkEgressName(
  policy: EgressPolicy,
  name: string,
  port: number,
): EgressDecision | undefined {
  const n = normalizeHostName(name);
  const deny = policy.deny.find((r) => ruleMatches(r, n, undefined, port));
  if (deny) return { allowed: false, rule: deny.text };
  if (policy.defaultAction === "deny") {
    const possible = policy.allow.some((r) =>
      portMatches(r, port) && (r.host.kind === "any" || r.host.kind === "cidr" ||
        nameMatches(r.host, n))
    );
    if (!possible) return { allowed: false, rule: "default: deny" };
  }
  return undefined;
}

function ownListener(info: EgressHostInfo, ip: bigint, port: number): boolean {
  return info.own.some((l) =>
    l.port === port &&
    (l.ip === "any"
      ? info.localIps.has(ip) ||
        PROTECTED.some((p) => p.label === "loopback" && cidrContains(p.cidr, ip))
      : l.ip === ip)
  );
}

/**
 * After DNS (or for an IP target): decides one address. `name` is the name the
 * client asked for (name rules match it), `undefined` for an IP target.
 */
export function checkEgressAddress(
  policy: EgressPolicy,
  info: EgressHostInfo,
  name: string | undefined,
  address: string | bigint,
  port: number,
): EgressDecision {
  const ip = typeof address === "bigint" ? address : parseIp(address);
  const n = name === undefined ? undefined : normalizeHostName(name);
  const deny = policy.deny.find((r) => ruleMatches(r, n, ip, port));
  if (deny) return { allowed: false, rule: deny.text };
  const own = policy.protect && ip !== undefined && ownListener(info, ip, port);
  const allow = policy.allow.find((r) => ruleMatches(r, n, ip, port) && (!own || r.ports));
  if (allow) return { allowed: true, rule: allow.text };
  if (own) return { allowed: false, rule: "protected: own listener" };
  if (policy.protect && ip !== undefined) {
    const p = PROTECTED.find((p) => cidrContains(p.cidr, ip));
    if (p) return { allowed: false, rule: `protected: ${p.label} ${p.cidr.text}` };
  }
  return policy.defaultAction === "allow"
    ? { allowed: true, rule: undefined }
    : { allowed: false, rule: "default: deny" };
}
