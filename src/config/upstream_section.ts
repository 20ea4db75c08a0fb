/**
 * Upstream groups: the named sets of servers that the L4 stream proxy and the
 * reverse proxy balance over. The types here are the one definition; the
 * runtime in `src/upstream/` re-exports them.
 *
 * ```yaml
 * upstreams:
 *   - name: backend                 # required; 1-64 of A-Z a-z 0-9 _ . -
 *     strategy: round_robin         # optional, default round_robin;
 *                                   #   round_robin | weighted | least_conn | ip_hash | random
 *     servers:                      # required, at least one that is not a backup
 *       - "127.0.0.1:9001"          # a plain "host:port" is a server with every default
 *       - addr: "127.0.0.1:9002"    # required; host:port or [v6]:port
 *         weight: 1                 # optional, default 1; 1 to 1000000 (0 is rejected)
 *         max_fails: 1              # optional, default 1; failures within fail_timeout that
 *                                   #   mark the server down for fail_timeout; 0 = never
 *         fail_timeout: 10s         # optional, default 10s
 *         backup: false             # optional, default false; used only when no primary is up
 *     health_check:                 # optional, default none (passive checks only)
 *       type: tcp                   # optional, default tcp; tcp (connect) | http (GET path)
 *       interval: 5s                # optional, default 5s
 *       timeout: 2s                 # optional, default 2s
 *       rise: 2                     # optional, default 2; successes that bring a server up
 *       fall: 3                     # optional, default 3; failures that take it down
 *       path: /                     # optional, default "/"; http only
 *       expect_status: 200          # optional, default 200; http only
 * ```
 *
 * @module
 */
import { compact, type ConfigReader, describe, type KeyPath } from "./reader.ts";

/** How a group chooses the next server. */
export type BalanceStrategy = "round_robin" | "weighted" | "least_conn" | "ip_hash" | "random";

/** Every strategy, in documentation order. */
export const BALANCE_STRATEGIES: readonly BalanceStrategy[] = [
  "round_robin",
  "weighted",
  "least_conn",
  "ip_hash",
  "random",
];

/** One server of a group (complete, defaults filled in). */
export interface UpstreamServerConfig {
  /** `host:port` (names allowed). */
  addr: string;
  /** Relative share for weighted strategies; at least 1. */
  weight: number;
  /** Failures within `fail_timeout_ms` that mark the server down; 0 = passive checks off. */
  max_fails: number;
  /** The failure window and how long a server stays down. */
  fail_timeout_ms: number;
  /** Used only when no primary server is healthy. */
  backup: boolean;
}

/** Active health checking of a group's servers. */
export interface HealthCheckConfig {
  /** `tcp`: a connect succeeds; `http`: `GET path` answers `expect_status`. */
  type: "tcp" | "http";
  interval_ms: number;
  timeout_ms: number;
  /** Consecutive successes that bring a down server up. */
  rise: number;
  /** Consecutive failures that take an up server down. */
  fall: number;
  /** http: the request path. */
  path: string;
  /** http: the status that counts as healthy. */
  expect_status: number;
}

/** A named group of servers (complete). */
export interface UpstreamGroupConfig {
  name: string;
  strategy: BalanceStrategy;
  servers: readonly UpstreamServerConfig[];
  /** `undefined` = passive checks only. */
  health_check: HealthCheckConfig | undefined;
}

/** A server after validation, before defaults (durations in ms). */
export interface UpstreamServerInput {
  addr: string;
  weight?: number | undefined;
  max_fails?: number | undefined;
  fail_timeout?: number | undefined;
  backup?: boolean | undefined;
}

/** A health check after validation, before defaults (durations in ms). */
export interface HealthCheckInput {
  type?: "tcp" | "http" | undefined;
  interval?: number | undefined;
  timeout?: number | undefined;
  rise?: number | undefined;
  fall?: number | undefined;
  path?: string | undefined;
  expect_status?: number | undefined;
}

/** A group after validation, before defaults. */
export interface UpstreamGroupInput {
  name: string;
  strategy?: BalanceStrategy | undefined;
  servers: UpstreamServerInput[];
  health_check?: HealthCheckInput | undefined;
}

export const DEFAULT_UPSTREAM_STRATEGY: BalanceStrategy = "round_robin";
export const DEFAULT_UPSTREAM_WEIGHT = 1;
export const DEFAULT_UPSTREAM_MAX_FAILS = 1;
export const DEFAULT_UPSTREAM_FAIL_TIMEOUT_MS = 10_000;
export const DEFAULT_HEALTH_CHECK_TYPE = "tcp";
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 5_000;
export const DEFAULT_HEALTH_CHECK_TIMEOUT_MS = 2_000;
export const DEFAULT_HEALTH_CHECK_RISE = 2;
export const DEFAULT_HEALTH_CHECK_FALL = 3;
export const DEFAULT_HEALTH_CHECK_PATH = "/";
export const DEFAULT_HEALTH_CHECK_EXPECT_STATUS = 200;

/** Largest accepted weight; keeps every sum far below 2^53. */
export const MAX_UPSTREAM_WEIGHT = 1_000_000;
/** Most servers in one group. */
export const MAX_UPSTREAM_SERVERS = 1024;

const NAME_REGEXP = /^[A-Za-z0-9_.-]{1,64}$/;
const SERVER_KEYS = ["addr", "weight", "max_fails", "fail_timeout", "backup"];
const GROUP_KEYS = ["name", "strategy", "servers", "health_check"];
const HEALTH_KEYS = ["type", "interval", "timeout", "rise", "fall", "path", "expect_status"];

function readServer(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): UpstreamServerInput | undefined {
  if (typeof value === "string") {
    const addr = r.address(value, path);
    return addr === undefined ? undefined : { addr };
  }
  const t = r.table(value, path, SERVER_KEYS);
  if (t === undefined) return undefined;
  if (t.addr === undefined) return r.fail([...path, "addr"], "is required");
  const addr = r.address(t.addr, [...path, "addr"]);
  let weight: number | undefined;
  if (t.weight === 0) {
    r.fail([...path, "weight"], "must be at least 1 (remove the server or mark it backup)");
  } else {
    weight = r.int(t.weight, [...path, "weight"], 1, MAX_UPSTREAM_WEIGHT);
  }
  const server = compact({
    addr: addr ?? "",
    weight,
    max_fails: r.int(t.max_fails, [...path, "max_fails"], 0, 1000),
    fail_timeout: r.duration(t.fail_timeout, [...path, "fail_timeout"]),
    backup: r.bool(t.backup, [...path, "backup"]),
  });
  return addr === undefined ? undefined : server;
}

function readHealthCheck(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): HealthCheckInput | undefined {
  const t = r.table(value, path, HEALTH_KEYS);
  if (t === undefined) return undefined;
  const type = r.oneOf(t.type, [...path, "type"], ["tcp", "http"] as const);
  const path_ = r.string(t.path, [...path, "path"]);
  if (path_ !== undefined && !path_.startsWith("/")) {
    r.fail([...path, "path"], `expected a path starting with "/", got ${describe(path_)}`);
  }
  const expect = r.int(t.expect_status, [...path, "expect_status"], 100, 599);
  if ((type ?? DEFAULT_HEALTH_CHECK_TYPE) !== "http") {
    if (t.path !== undefined) r.fail([...path, "path"], "is only valid with type: http");
    if (t.expect_status !== undefined) {
      r.fail([...path, "expect_status"], "is only valid with type: http");
    }
  }
  const interval = r.duration(t.interval, [...path, "interval"], 10);
  const timeout = r.duration(t.timeout, [...path, "timeout"], 10);
  if (
    timeout !== undefined &&
    timeout > (interval ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS)
  ) {
    r.fail([...path, "timeout"], "must not be longer than interval");
  }
  return compact({
    type,
    interval,
    timeout,
    rise: r.int(t.rise, [...path, "rise"], 1, 100),
    fall: r.int(t.fall, [...path, "fall"], 1, 100),
    path: path_,
    expect_status: expect,
  });
}

/**
 * Reads one upstream group at `path`, reporting every problem to `r`.
 * Returns `undefined` when the group is unusable (its issues are in `r`).
 */
export function readUpstreamGroup(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): UpstreamGroupInput | undefined {
  const t = r.table(value, path, GROUP_KEYS);
  if (t === undefined) return undefined;
  const before = r.issues.length;
  if (t.name === undefined) r.fail([...path, "name"], "is required");
  const name = r.string(t.name, [...path, "name"]);
  if (name !== undefined && !NAME_REGEXP.test(name)) {
    r.fail([...path, "name"], "expected 1-64 characters from A-Z a-z 0-9 _ . -");
  }
  const strategy = r.oneOf(t.strategy, [...path, "strategy"], BALANCE_STRATEGIES);
  const servers: UpstreamServerInput[] = [];
  if (t.servers === undefined) r.fail([...path, "servers"], "is required");
  const list = r.list(t.servers, [...path, "servers"]);
  if (list !== undefined) {
    if (list.length === 0) r.fail([...path, "servers"], "expected at least one server");
    if (list.length > MAX_UPSTREAM_SERVERS) {
      r.fail([...path, "servers"], `expected at most ${MAX_UPSTREAM_SERVERS} servers`);
    }
    list.forEach((item, i) => {
      const server = readServer(r, item, [...path, "servers", i]);
      if (server === undefined) return;
      if (servers.some((s) => s.addr === server.addr)) {
        r.fail([...path, "servers", i], `duplicate server ${JSON.stringify(server.addr)}`);
        return;
      }
      servers.push(server);
    });
    if (servers.length > 0 && servers.every((s) => s.backup === true)) {
      r.fail([...path, "servers"], "expected at least one server that is not a backup");
    }
  }
  const health_check = t.health_check === undefined
    ? undefined
    : readHealthCheck(r, t.health_check, [...path, "health_check"]);
  if (r.issues.length > before || name === undefined) return undefined;
  return compact({ name, strategy, servers, health_check });
}

/**
 * Reads a list of groups at `path`; names must be unique. Returns the valid
 * groups (problems are in `r`).
 */
export function readUpstreamGroups(
  r: ConfigReader,
  value: unknown,
  path: KeyPath,
): UpstreamGroupInput[] {
  const groups: UpstreamGroupInput[] = [];
  const list = r.list(value, path);
  if (list === undefined) return groups;
  const seen = new Set<string>();
  list.forEach((item, i) => {
    const name = (item as { name?: unknown } | null)?.name;
    if (typeof name === "string" && seen.has(name)) {
      r.fail([...path, i, "name"], `duplicate upstream name ${JSON.stringify(name)}`);
      return;
    }
    if (typeof name === "string") seen.add(name);
    const group = readUpstreamGroup(r, item, [...path, i]);
    if (group !== undefined) groups.push(group);
  });
  return groups;
}

/** Fills in the defaults of one group. */
export function completeUpstreamGroup(input: UpstreamGroupInput): UpstreamGroupConfig {
  const hc = input.health_check;
  return {
    name: input.name,
    strategy: input.strategy ?? DEFAULT_UPSTREAM_STRATEGY,
    servers: input.servers.map((s) => ({
      addr: s.addr,
      weight: s.weight ?? DEFAULT_UPSTREAM_WEIGHT,
      max_fails: s.max_fails ?? DEFAULT_UPSTREAM_MAX_FAILS,
      fail_timeout_ms: s.fail_timeout ?? DEFAULT_UPSTREAM_FAIL_TIMEOUT_MS,
      backup: s.backup ?? false,
    })),
    health_check: hc === undefined ? undefined : {
      type: hc.type ?? DEFAULT_HEALTH_CHECK_TYPE,
      interval_ms: hc.interval ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS,
      timeout_ms: hc.timeout ?? DEFAULT_HEALTH_CHECK_TIMEOUT_MS,
      rise: hc.rise ?? DEFAULT_HEALTH_CHECK_RISE,
      fall: hc.fall ?? DEFAULT_HEALTH_CHECK_FALL,
      path: hc.path ?? DEFAULT_HEALTH_CHECK_PATH,
      expect_status: hc.expect_status ?? DEFAULT_HEALTH_CHECK_EXPECT_STATUS,
    },
  };
}
