/**
 * Routing, pure: virtual server selection by host name (nginx order) and
 * location matching with nginx's priority (exact, longest prefix with `^~`,
 * regexes in order, longest prefix), plus optional matchers on method, host,
 * scheme and client IP.
 *
 * @module
 */
import type { LocationConfig, MatcherConfig, VirtualServerConfig } from "../config/http_section.ts";
import { type Cidr, cidrContains, parseCidr, parseIp } from "./ip_rules.ts";

/** What a matcher looks at besides the path. */
export interface MatchInput {
  method: string;
  /** Host without port, lower-case. */
  host: string;
  scheme: "http" | "https";
  clientIp: string;
}

/** A compiled matcher. */
export interface CompiledMatcher {
  test(input: MatchInput): boolean;
}

/**
 * Whether `host` (lower-case, no port) matches a server-name pattern: exact,
 * `*.example` (any subdomain), `.example` (the name and its subdomains),
 * `www.*`, `~regex` (case-insensitive) or `*` (any).
 */
export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  if (p === "*") return true;
  if (p.startsWith("~")) return new RegExp(pattern.slice(1), "i").test(host);
  if (p.startsWith("*.")) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  if (p.startsWith(".")) return host === p.slice(1) || host.endsWith(p);
  if (p.endsWith(".*")) return host.startsWith(p.slice(0, -1)) && host.length > p.length - 1;
  return host === p;
}

/** Compiles a matcher config; `undefined` matches everything. */
export function compileMatcher(config: MatcherConfig | undefined): CompiledMatcher {
  if (config === undefined) return { test: () => true };
  const cidrs: Cidr[] | undefined = config.client_ips?.map(parseCidr);
  return {
    test(input: MatchInput): boolean {
      if (config.methods !== undefined && !config.methods.includes(input.method)) return false;
      if (config.schemes !== undefined && !config.schemes.includes(input.scheme)) return false;
      if (config.hosts !== undefined && !config.hosts.some((h) => hostMatches(h, input.host))) {
        return false;
      }
      if (cidrs !== undefined) {
        const ip = parseIp(input.clientIp);
        if (ip === undefined || !cidrs.some((c) => cidrContains(c, ip))) return false;
      }
      return true;
    },
  };
}

interface Entry {
  location: LocationConfig;
  matcher: CompiledMatcher;
  regex: RegExp | undefined;
}

/** The result of a location match; `captures` are the regex groups ($1…). */
export interface LocationMatch {
  location: LocationConfig;
  captures: readonly string[];
}

/** Matches request paths to the locations of one server. */
export class LocationRouter {
  readonly #exact = new Map<string, Entry[]>();
  /** Prefix and `^~` entries, longest first. */
  readonly #prefixes: Entry[] = [];
  readonly #regexes: Entry[] = [];
  readonly #named = new Map<string, LocationConfig>();

  constructor(locations: readonly LocationConfig[]) {
    for (const location of locations) {
      const { kind, value } = location.pattern;
      const entry: Entry = {
        location,
        matcher: compileMatcher(location.match),
        regex: kind === "regex" || kind === "regex_i"
          ? new RegExp(value, kind === "regex_i" ? "i" : "")
          : undefined,
      };
      switch (kind) {
        case "exact": {
          const list = this.#exact.get(value) ?? [];
          list.push(entry);
          this.#exact.set(value, list);
          break;
        }
        case "prefix":
        case "prefix_priority":
          this.#prefixes.push(entry);
          break;
        case "regex":
        case "regex_i":
          this.#regexes.push(entry);
          break;
        case "named":
          this.#named.set(value, location);
          break;
      }
    }
    // Stable sort: for equal lengths, config order decides.
    this.#prefixes.sort((a, b) =>
      b.location.pattern.value.length - a.location.pattern.value.length
    );
  }

  /**
   * The location for a decoded, normalised `uri`, in nginx order: an exact
   * match; else the longest matching prefix, taken at once when it is `^~`;
   * else the first matching regex; else that longest prefix. A location whose
   * matcher rejects the request is skipped.
   */
  match(uri: string, input: MatchInput): LocationMatch | undefined {
    for (const e of this.#exact.get(uri) ?? []) {
      if (e.matcher.test(input)) return { location: e.location, captures: [] };
    }
    let prefix: Entry | undefined;
    for (const e of this.#prefixes) {
      if (uri.startsWith(e.location.pattern.value) && e.matcher.test(input)) {
        prefix = e;
        break;
      }
    }
    if (prefix?.location.pattern.kind === "prefix_priority") {
      return { location: prefix.location, captures: [] };
    }
    for (const e of this.#regexes) {
      const m = e.regex!.exec(uri);
      if (m && e.matcher.test(input)) {
        return { location: e.location, captures: m.slice(1).map((c) => c ?? "") };
      }
    }
    return prefix === undefined ? undefined : { location: prefix.location, captures: [] };
  }

  /** A named location (`@name`), for try_files. */
  named(name: string): LocationConfig | undefined {
    return this.#named.get(name);
  }
}

/** Rank of a server-name match, nginx order: exact, `*.x` longest, `x.*` longest, regex. */
function nameRank(pattern: string): [number, number] {
  if (pattern.startsWith("~")) return [3, 0];
  if (pattern.startsWith("*.") || pattern.startsWith(".")) return [1, -pattern.length];
  if (pattern.endsWith(".*")) return [2, -pattern.length];
  if (pattern === "*") return [4, 0];
  return [0, 0];
}

/**
 * Picks the virtual server for `host` among those on one listener: the best
 * server-name match (exact, longest leading wildcard, longest trailing
 * wildcard, first regex), else the listener's default server (the one with
 * `default_server`, else the first).
 */
export function selectServer<
  T extends Pick<VirtualServerConfig, "server_names" | "default_server">,
>(
  candidates: readonly T[],
  host: string,
): T | undefined {
  let best: T | undefined;
  let bestRank: [number, number] = [Infinity, 0];
  if (host !== "") {
    for (const s of candidates) {
      for (const name of s.server_names) {
        if (!hostMatches(name, host)) continue;
        const rank = nameRank(name);
        if (rank[0] < bestRank[0] || (rank[0] === bestRank[0] && rank[1] < bestRank[1])) {
          best = s;
          bestRank = rank;
        }
      }
    }
  }
  return best ?? candidates.find((s) => s.default_server) ?? candidates[0];
}

/**
 * Decodes and normalises a request path for matching and file lookup
 * (nginx's `$uri`): percent-decoding once, then {@link normalizeSegments}.
 * `undefined` (answer 400) for bad encoding, NUL, a backslash, or a `..`
 * that climbs above `/`.
 */
export function normalizePath(rawPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  return normalizeSegments(decoded);
}

/**
 * Normalises an already decoded path: merges slashes and resolves `.` and
 * `..`. `undefined` for NUL, a backslash, no leading `/`, or a `..` above `/`.
 */
export function normalizeSegments(decoded: string): string | undefined {
  if (!decoded.startsWith("/") || decoded.includes("\0") || decoded.includes("\\")) {
    return undefined;
  }
  const out: string[] = [];
  const parts = decoded.split("/");
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    if (p === "" || p === ".") {
      if (i === parts.length - 1) out.push("");
      continue;
    }
    if (p === "..") {
      if (out.length === 0) return undefined;
      out.pop();
      if (i === parts.length - 1) out.push("");
      continue;
    }
    out.push(p);
  }
  return "/" + out.join("/");
}
