/**
 * The pure part of reloading a `stream` section: which upstream groups are
 * kept or replaced, and what happens to each server (kept, updated in place,
 * restarted alone, started, stopped). No I/O: configs in, a plan out.
 *
 * @module
 */
import { configKey } from "../config/compare.ts";
import type { StreamConfig, StreamServerConfig } from "../config/stream_section.ts";

/** What happens to one server. `from` indexes the old servers, `to` the new ones. */
export type StreamServerAction =
  /** Same config, same group: listener and connections untouched. */
  | { action: "keep"; from: number; to: number }
  /** Same listener; the new config (or a replaced group) applies to new connections. */
  | { action: "update"; from: number; to: number }
  /** The listener changed (address, protocol, CA file): the old one closes, a new one starts. */
  | { action: "restart"; from: number; to: number }
  | { action: "start"; to: number }
  | { action: "stop"; from: number };

/** The outcome of {@link planStreamReload}. */
export interface StreamReloadPlan {
  /** Named groups whose config is unchanged: they keep their health state. */
  keptGroups: string[];
  /** Named groups that are new or changed: a new group replaces the old one. */
  newGroups: string[];
  /** Named groups that are gone or changed: the old group is closed. */
  retiredGroups: string[];
  /** One action per old and per new server; every new index appears exactly once. */
  servers: StreamServerAction[];
}

/** What must stay the same for a server to keep its listener. */
export function listenerKey(s: StreamServerConfig): string {
  return configKey({
    protocol: s.protocol,
    listen: s.listen,
    ca_file: s.protocol === "tcp2ws" || s.protocol === "tcp2wss" ? s.ca_file : undefined,
  });
}

/** The named upstream group a server uses, if any. */
export function groupOf(s: StreamServerConfig): string | undefined {
  return "upstream" in s ? s.upstream : undefined;
}

/**
 * Plans the move from `prev` to `next`. `running[i]` tells whether old server
 * `i` is running (one that failed to start is started again, never kept).
 *
 * Servers are matched in three passes: an identical config; then the same
 * listener (updated in place; for a port-0 listen only at the same
 * position); then the same position in the list (the listener changed:
 * restarted alone). Whatever is left starts or stops.
 *
 * @example
 * ```ts
 * import { planStreamReload } from "./stream_reload_plan.ts";
 * const a = { listen: "127.0.0.1:7000", protocol: "tcp", idle_timeout_ms: 1, upstream: undefined,
 *   target: "127.0.0.1:22", proxy_protocol: undefined, connect_timeout_ms: 1, max_connections: 1 } as const;
 * const plan = planStreamReload({ upstreams: [], servers: [a] }, [true], {
 *   upstreams: [],
 *   servers: [a, { ...a, listen: "127.0.0.1:7001" }],
 * });
 * if (plan.servers.length !== 2) throw new Error("unexpected");
 * ```
 */
export function planStreamReload(
  prev: StreamConfig,
  running: readonly boolean[],
  next: StreamConfig,
): StreamReloadPlan {
  const prevGroups = new Map(prev.upstreams.map((g) => [g.name, configKey(g)]));
  const nextGroups = new Map(next.upstreams.map((g) => [g.name, configKey(g)]));
  const keptGroups: string[] = [];
  const newGroups: string[] = [];
  for (const [name, key] of nextGroups) {
    if (prevGroups.get(name) === key) keptGroups.push(name);
    else newGroups.push(name);
  }
  const retiredGroups = [...prevGroups.keys()].filter((name) => !keptGroups.includes(name));
  const kept = new Set(keptGroups);

  /** For each new server: the old one it was matched with, and in which pass. */
  const from: (number | undefined)[] = next.servers.map(() => undefined);
  const pass: number[] = next.servers.map(() => 0);
  const used = new Set<number>();
  const match = (n: number, same: (i: number, j: number) => boolean, onlyRunning: boolean) => {
    for (let j = 0; j < next.servers.length; j++) {
      if (from[j] !== undefined) continue;
      for (let i = 0; i < prev.servers.length; i++) {
        if (used.has(i) || (onlyRunning && !running[i]) || !same(i, j)) continue;
        from[j] = i;
        pass[j] = n;
        used.add(i);
        break;
      }
    }
  };
  const prevKeys = prev.servers.map(configKey);
  const nextKeys = next.servers.map(configKey);
  match(1, (i, j) => prevKeys[i] === nextKeys[j], true);
  const prevListeners = prev.servers.map(listenerKey);
  const nextListeners = next.servers.map(listenerKey);
  // A port-0 listen names no particular socket: it is the same listener only
  // at the same position.
  match(
    2,
    (i, j) =>
      prevListeners[i] === nextListeners[j] && (i === j || !next.servers[j]!.listen.endsWith(":0")),
    true,
  );
  match(3, (i, j) => i === j, false);

  const servers: StreamServerAction[] = [];
  for (let j = 0; j < next.servers.length; j++) {
    const i = from[j];
    const s = next.servers[j]!;
    if (i === undefined) {
      servers.push({ action: "start", to: j });
    } else if (pass[j] === 1) {
      const group = groupOf(s);
      const groupKept = group === undefined || kept.has(group);
      servers.push({ action: groupKept ? "keep" : "update", from: i, to: j });
    } else if (pass[j] === 2) {
      servers.push({ action: "update", from: i, to: j });
    } else if (running[i]) {
      servers.push({ action: "restart", from: i, to: j });
    } else {
      servers.push({ action: "start", to: j });
    }
  }
  for (let i = 0; i < prev.servers.length; i++) {
    if (!used.has(i) && running[i]) servers.push({ action: "stop", from: i });
  }
  return { keptGroups, newGroups, retiredGroups, servers };
}
