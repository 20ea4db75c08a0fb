/**
 * Checks a parsed document against the config schema: unknown keys are errors,
 * every value is checked and converted, and every problem is collected with its
 * path before anything is reported.
 *
 * @module
 */
import { isLoopbackHost, parseHostPort } from "../transport/conn.ts";
import { Secret } from "./secret.ts";
import { parseDuration, parseSize } from "./units.ts";
import type { ConfigIssue } from "./errors.ts";
import type { ConfigInput, LogInput, ProxyInput } from "./input.ts";
import type { Config, ProxyProtocol, ProxyUser } from "./types.ts";

/** A key path as the parser sees it: names and list indexes. */
export type KeyPath = readonly (string | number)[];

/** Finds the 1-based source line of a key path, when the parser knows it. */
export type Locate = (path: KeyPath) => number | undefined;

/** Sections the program knows but this version does not run yet. */
const PLANNED_SECTIONS = ["client", "server", "http", "stream", "admin"] as const;

const PROXY_PROTOCOLS: readonly ProxyProtocol[] = ["http", "https", "socks5"];
const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
const LOG_FORMATS = ["text", "json"] as const;

/** Renders a key path as `proxy.users[1].password`. */
export function formatPath(path: KeyPath): string {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  }
  return out;
}

/** Walks a document, collecting issues instead of throwing. */
class Reader {
  readonly issues: ConfigIssue[] = [];
  readonly #locate: Locate;

  constructor(locate: Locate) {
    this.#locate = locate;
  }

  fail(path: KeyPath, message: string): undefined {
    const line = this.#locate(path);
    this.issues.push({
      path: formatPath(path),
      message,
      ...(line === undefined ? {} : { line }),
    });
    return undefined;
  }

  /** A mapping with only `keys`; unknown keys are reported with the known ones. */
  table(
    value: unknown,
    path: KeyPath,
    keys: readonly string[],
  ): Record<string, unknown> | undefined {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return this.fail(path, `expected a mapping of keys, got ${describe(value)}`);
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!keys.includes(key)) {
        this.fail([...path, key], `unknown key (known keys: ${keys.join(", ")})`);
      }
    }
    return record;
  }

  string(value: unknown, path: KeyPath): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value === "") {
      return this.fail(path, `expected a non-empty string, got ${describe(value)}`);
    }
    return value;
  }

  bool(value: unknown, path: KeyPath): boolean | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") {
      return this.fail(path, `expected true or false, got ${describe(value)}`);
    }
    return value;
  }

  int(value: unknown, path: KeyPath, min: number, max: number): number | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      return this.fail(
        path,
        `expected a whole number from ${min} to ${max}, got ${describe(value)}`,
      );
    }
    return value;
  }

  oneOf<T extends string>(value: unknown, path: KeyPath, allowed: readonly T[]): T | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || !allowed.includes(value as T)) {
      return this.fail(path, `expected one of ${allowed.join(", ")}, got ${describe(value)}`);
    }
    return value as T;
  }

  duration(value: unknown, path: KeyPath, minMs = 1): number | undefined {
    if (value === undefined) return undefined;
    try {
      const ms = parseDuration(value);
      if (ms < minMs) {
        return this.fail(path, `expected at least ${minMs}ms, got ${describe(value)}`);
      }
      return ms;
    } catch (err) {
      return this.fail(path, (err as Error).message);
    }
  }

  size(value: unknown, path: KeyPath, min: number, max: number): number | undefined {
    if (value === undefined) return undefined;
    try {
      const n = parseSize(value);
      if (n < min || n > max) {
        return this.fail(
          path,
          `expected a size from ${min} to ${max} bytes, got ${describe(value)}`,
        );
      }
      return n;
    } catch (err) {
      return this.fail(path, (err as Error).message);
    }
  }

  address(value: unknown, path: KeyPath): string | undefined {
    const text = this.string(value, path);
    if (text === undefined) return undefined;
    try {
      parseHostPort(text);
      return text;
    } catch {
      return this.fail(
        path,
        `expected an address like "127.0.0.1:8090" or "[::1]:8090", got ${describe(value)}`,
      );
    }
  }

  list(value: unknown, path: KeyPath): unknown[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) return this.fail(path, `expected a list, got ${describe(value)}`);
    return value;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

/** Drops keys whose value is `undefined`, so optional fields stay absent. */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function readProxy(r: Reader, value: unknown): ProxyInput | undefined {
  const path = ["proxy"];
  if (value === null) return {}; // `proxy:` alone means "run it with defaults"
  const t = r.table(value, path, [
    "bind",
    "protocols",
    "users",
    "allow_open",
    "via",
    "x_forwarded_for",
    "udp",
    "limits",
  ]);
  if (t === undefined) return undefined;

  let protocols: ProxyProtocol[] | undefined;
  const protoList = r.list(t.protocols, [...path, "protocols"]);
  if (protoList !== undefined) {
    protocols = [];
    protoList.forEach((p, i) => {
      const v = r.oneOf(p, [...path, "protocols", i], PROXY_PROTOCOLS);
      if (v !== undefined && !protocols!.includes(v)) protocols!.push(v);
    });
    if (protoList.length === 0) r.fail([...path, "protocols"], "expected at least one protocol");
  }

  let users: ProxyUser[] | undefined;
  const userList = r.list(t.users, [...path, "users"]);
  if (userList !== undefined) {
    users = [];
    userList.forEach((u, i) => {
      const up = [...path, "users", i];
      const ut = r.table(u, up, ["username", "password"]);
      if (ut === undefined) return;
      const username = r.string(ut.username, [...up, "username"]);
      const password = r.string(ut.password, [...up, "password"]);
      if (ut.username === undefined) r.fail([...up, "username"], "is required");
      if (ut.password === undefined) r.fail([...up, "password"], "is required");
      if (username !== undefined && username.length > 255) {
        r.fail([...up, "username"], "must be at most 255 bytes (SOCKS5 limit)");
      }
      if (password !== undefined && password.length > 255) {
        r.fail([...up, "password"], "must be at most 255 bytes (SOCKS5 limit)");
      }
      if (username !== undefined && username.includes(":")) {
        r.fail([...up, "username"], 'must not contain ":" (HTTP Basic separator)');
      }
      if (username !== undefined && password !== undefined) {
        if (users!.some((x) => x.username === username)) {
          r.fail([...up, "username"], `duplicate user ${JSON.stringify(username)}`);
        }
        users!.push({ username, password: new Secret(password) });
      }
    });
  }

  let udp: ProxyInput["udp"];
  if (t.udp !== undefined) {
    const up = [...path, "udp"];
    const ut = r.table(t.udp, up, ["enabled", "bind_ip", "idle_timeout"]);
    if (ut !== undefined) {
      udp = compact({
        enabled: r.bool(ut.enabled, [...up, "enabled"]),
        bind_ip: r.string(ut.bind_ip, [...up, "bind_ip"]),
        idle_timeout: r.duration(ut.idle_timeout, [...up, "idle_timeout"]),
      });
    }
  }

  let limits: ProxyInput["limits"];
  if (t.limits !== undefined) {
    const lp = [...path, "limits"];
    const lt = r.table(t.limits, lp, [
      "max_header_bytes",
      "handshake_timeout",
      "connect_timeout",
      "idle_timeout",
      "max_connections",
    ]);
    if (lt !== undefined) {
      limits = compact({
        max_header_bytes: r.size(
          lt.max_header_bytes,
          [...lp, "max_header_bytes"],
          1024,
          16 * 1024 * 1024,
        ),
        handshake_timeout: r.duration(lt.handshake_timeout, [...lp, "handshake_timeout"]),
        connect_timeout: r.duration(lt.connect_timeout, [...lp, "connect_timeout"]),
        idle_timeout: r.duration(lt.idle_timeout, [...lp, "idle_timeout"]),
        max_connections: r.int(lt.max_connections, [...lp, "max_connections"], 1, 1_000_000),
      });
    }
  }

  return compact({
    bind: r.address(t.bind, [...path, "bind"]),
    protocols,
    users,
    allow_open: r.bool(t.allow_open, [...path, "allow_open"]),
    via: r.bool(t.via, [...path, "via"]),
    x_forwarded_for: r.bool(t.x_forwarded_for, [...path, "x_forwarded_for"]),
    udp,
    limits,
  });
}

function readLog(r: Reader, value: unknown): LogInput | undefined {
  if (value === null) return {};
  const t = r.table(value, ["log"], ["level", "format"]);
  if (t === undefined) return undefined;
  return compact({
    level: r.oneOf(t.level, ["log", "level"], LOG_LEVELS),
    format: r.oneOf(t.format, ["log", "format"], LOG_FORMATS),
  });
}

/**
 * Validates a parsed document. Returns the checked input and every issue found;
 * the input is meaningful only when there are no issues.
 */
export function validateConfig(
  doc: unknown,
  locate: Locate = () => undefined,
): { input: ConfigInput; issues: ConfigIssue[] } {
  const r = new Reader(locate);
  if (doc === null || doc === undefined) return { input: {}, issues: [] };
  const known = ["proxy", "log", ...PLANNED_SECTIONS];
  const t = r.table(doc, [], known);
  if (t === undefined) return { input: {}, issues: r.issues };
  for (const section of PLANNED_SECTIONS) {
    if (t[section] !== undefined) {
      r.fail([section], `section "${section}" is not available in this version of wmproxy yet`);
    }
  }
  const input = compact({
    proxy: t.proxy === undefined ? undefined : readProxy(r, t.proxy),
    log: t.log === undefined ? undefined : readLog(r, t.log),
  });
  return { input, issues: r.issues };
}

/** Rules that need defaults filled in (a default bind is loopback, for one). */
export function checkCompleteConfig(
  config: Config,
  locate: Locate = () => undefined,
): ConfigIssue[] {
  const r = new Reader(locate);
  const proxy = config.proxy;
  if (proxy !== undefined) {
    const host = parseHostPort(proxy.bind).hostname;
    if (!isLoopbackHost(host) && proxy.users.length === 0 && !proxy.allow_open) {
      r.fail(
        ["proxy", "bind"],
        `refusing an open proxy on non-loopback address ${JSON.stringify(proxy.bind)}: ` +
          "add proxy.users, or set proxy.allow_open: true if anyone who can reach it may use it",
      );
    }
  }
  return r.issues;
}
