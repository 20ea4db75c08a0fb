/**
 * A named group of upstream servers: balancing (round robin, smooth weighted
 * round robin, least connections, rendezvous ip hash, weighted random),
 * passive health (max_fails within fail_timeout) and active health checks
 * (rise/fall). The clock, the random source and the probe are injectable, so
 * the whole policy is testable without sockets.
 *
 * @module
 */
import type {
  BalanceStrategy,
  HealthCheckConfig,
  UpstreamGroupConfig,
} from "../config/upstream_section.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort, parseHostPort } from "../transport/conn.ts";
import { probeUpstream } from "./health_probe.ts";

/** One server of a group, as callers of {@link UpstreamGroup.pick} see it. */
export interface UpstreamPeer {
  /** Unique within the group: the server's `host:port`. */
  readonly id: string;
  readonly addr: HostPort;
  readonly backup: boolean;
  /** In-flight uses (between acquire and release). */
  readonly active: number;
}

/** A server's state for the admin API. */
export interface UpstreamPeerStatus {
  addr: string;
  backup: boolean;
  /** Up for both passive and active checks. */
  healthy: boolean;
  /** In-flight uses. */
  active: number;
  /** Failures counted toward max_fails in the current window. */
  fails: number;
  /** Times this server was picked. */
  total: number;
  /** The most recent failure reason (passive or active). */
  last_error: string | undefined;
}

/** Checks one server; resolves when healthy, rejects with the reason otherwise. */
export type UpstreamProbe = (
  peer: UpstreamPeer,
  check: HealthCheckConfig,
  signal: AbortSignal,
) => Promise<void>;

/** Options for {@link UpstreamGroup}. */
export interface UpstreamGroupOptions {
  /** Where state changes are logged. @default no logging */
  log?: Logger | undefined;
  /** Milliseconds clock. @default Date.now */
  now?: (() => number) | undefined;
  /** Uniform [0, 1) source for the random strategy. @default Math.random */
  random?: (() => number) | undefined;
  /** Active health probe. @default probeUpstream (TCP connect or HTTP GET) */
  probe?: UpstreamProbe | undefined;
}

class Peer implements UpstreamPeer {
  readonly id: string;
  readonly addr: HostPort;
  readonly backup: boolean;
  readonly weight: number;
  readonly maxFails: number;
  readonly failTimeoutMs: number;
  active = 0;
  total = 0;
  /** Smooth weighted round robin state. */
  current = 0;
  /** Failure times in the current window (at most maxFails entries). */
  failTimes: number[] = [];
  downUntil = -Infinity;
  lastFailAt = -Infinity;
  lastError: string | undefined;
  /** Active checks: up until `fall` failures in a row, then down until `rise` successes. */
  activeUp = true;
  okStreak = 0;
  failStreak = 0;

  constructor(id: string, addr: HostPort, server: UpstreamGroupConfig["servers"][number]) {
    this.id = id;
    this.addr = addr;
    this.backup = server.backup;
    this.weight = Math.max(1, Math.floor(server.weight));
    this.maxFails = server.max_fails;
    this.failTimeoutMs = server.fail_timeout_ms;
  }

  healthy(now: number): boolean {
    return this.activeUp && now >= this.downUntil;
  }
}

/** FNV-1a, 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final avalanche (murmur3 fmix32) so that similar keys spread
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A group of upstream servers.
 *
 * @example
 * ```ts
 * const group = new UpstreamGroup({
 *   name: "backend",
 *   strategy: "round_robin",
 *   servers: [{ addr: "127.0.0.1:9001", weight: 1, max_fails: 1, fail_timeout_ms: 10_000, backup: false }],
 *   health_check: undefined,
 * });
 * const peer = group.pick("127.0.0.1");
 * ```
 */
export class UpstreamGroup implements AsyncDisposable {
  /** The group's name from the config. */
  readonly name: string;
  /** The strategy from the config. */
  readonly strategy: BalanceStrategy;
  readonly #peers: Peer[];
  readonly #check: HealthCheckConfig | undefined;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #probe: UpstreamProbe;
  #cursor = 0;
  #checks: Promise<void> | undefined;
  readonly #stop = new AbortController();

  constructor(config: UpstreamGroupConfig, options: UpstreamGroupOptions = {}) {
    if (config.servers.length === 0) {
      throw new RangeError(`Cannot create upstream group "${config.name}": it has no servers`);
    }
    this.name = config.name;
    this.strategy = config.strategy;
    this.#check = config.health_check;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#probe = options.probe ?? probeUpstream;
    const ids = new Set<string>();
    this.#peers = config.servers.map((server, i) => {
      const addr = parseHostPort(server.addr);
      let id = formatHostPort(addr);
      if (ids.has(id)) id = `${id}#${i}`;
      ids.add(id);
      return new Peer(id, addr, server);
    });
  }

  /** Every server, primaries and backups, in config order. */
  get peers(): readonly UpstreamPeer[] {
    return this.#peers;
  }

  /**
   * The next peer by the strategy among healthy primaries (then healthy
   * backups; when none is healthy, the least recently failed primary),
   * skipping `exclude` (peer ids); `undefined` only when every peer is
   * excluded. `key` is e.g. the client IP for ip_hash.
   */
  pick(key: string, exclude?: ReadonlySet<string>): UpstreamPeer | undefined {
    const now = this.#now();
    const open = exclude === undefined || exclude.size === 0
      ? this.#peers
      : this.#peers.filter((p) => !exclude.has(p.id));
    if (open.length === 0) return undefined;
    let candidates = open.filter((p) => !p.backup && p.healthy(now));
    if (candidates.length === 0) candidates = open.filter((p) => p.backup && p.healthy(now));
    let chosen: Peer;
    if (candidates.length === 0) {
      // Nothing is up: try the server that failed longest ago (primaries first).
      const primaries = open.filter((p) => !p.backup);
      const pool = primaries.length > 0 ? primaries : open;
      chosen = pool.reduce((a, b) => (b.lastFailAt < a.lastFailAt ? b : a));
    } else {
      chosen = this.#choose(candidates, key);
    }
    chosen.total++;
    return chosen;
  }

  #choose(candidates: Peer[], key: string): Peer {
    if (candidates.length === 1) return candidates[0]!;
    switch (this.strategy) {
      case "round_robin":
        return this.#roundRobin(candidates);
      case "weighted":
        return smoothWeighted(candidates);
      case "least_conn":
        return this.#leastConn(candidates);
      case "ip_hash":
        return rendezvous(candidates, key);
      case "random":
        return weightedRandom(candidates, this.#random());
    }
  }

  /** The first candidate at or after the cursor, in config order. */
  #roundRobin(candidates: Peer[]): Peer {
    const n = this.#peers.length;
    for (let step = 0; step < n; step++) {
      const peer = this.#peers[(this.#cursor + step) % n]!;
      if (candidates.includes(peer)) {
        this.#cursor = (this.#cursor + step + 1) % n;
        return peer;
      }
    }
    return candidates[0]!;
  }

  /** Fewest active per weight; ties go round robin. */
  #leastConn(candidates: Peer[]): Peer {
    let best: Peer[] = [];
    for (const p of candidates) {
      const first = best[0];
      if (first === undefined) {
        best = [p];
        continue;
      }
      // p.active / p.weight vs first.active / first.weight, without division
      const cmp = p.active * first.weight - first.active * p.weight;
      if (cmp < 0) best = [p];
      else if (cmp === 0) best.push(p);
    }
    return best.length === 1 ? best[0]! : this.#roundRobin(best);
  }

  /** Counts an in-flight use (least_conn); call release when done. */
  acquire(peer: UpstreamPeer): void {
    const p = this.#own(peer);
    if (p) p.active++;
  }

  /** Ends an in-flight use started by {@link acquire}. */
  release(peer: UpstreamPeer): void {
    const p = this.#own(peer);
    if (p && p.active > 0) p.active--;
  }

  /** A use of `peer` worked: its failure window is cleared. */
  reportSuccess(peer: UpstreamPeer): void {
    const p = this.#own(peer);
    if (p) p.failTimes = [];
  }

  /**
   * Passive health: max_fails failures within fail_timeout mark the peer down
   * for fail_timeout.
   */
  reportFailure(peer: UpstreamPeer, reason: string): void {
    const p = this.#own(peer);
    if (!p) return;
    const now = this.#now();
    p.lastFailAt = now;
    p.lastError = reason;
    if (p.maxFails === 0) return;
    const windowStart = now - p.failTimeoutMs;
    p.failTimes = p.failTimes.filter((t) => t > windowStart);
    p.failTimes.push(now);
    if (p.failTimes.length >= p.maxFails) {
      const wasHealthy = p.healthy(now);
      p.downUntil = now + p.failTimeoutMs;
      p.failTimes = [];
      if (wasHealthy) {
        this.#log?.warn(EVENTS.upstream_peer_down, {
          upstream: this.name,
          peer: p.id,
          reason: "passive",
          error: reason,
          down_ms: p.failTimeoutMs,
        });
      }
    }
  }

  #own(peer: UpstreamPeer): Peer | undefined {
    return peer instanceof Peer && this.#peers.includes(peer) ? peer : undefined;
  }

  /**
   * Starts active checks (interval, rise/fall) when health_check is set;
   * default probe = TCP connect or an HTTP GET of path expecting
   * expect_status. Stops on dispose. Calling it twice does nothing.
   */
  start(): void {
    const check = this.#check;
    if (check === undefined || this.#checks !== undefined || this.#stop.signal.aborted) return;
    this.#checks = this.#runChecks(check);
  }

  async #runChecks(check: HealthCheckConfig): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      await this.checkNow();
      if (signal.aborted) break;
      await sleep(check.interval_ms, signal);
    }
  }

  /**
   * Runs one round of active checks on every server now (what {@link start}
   * repeats every interval). Resolves when all probes finished or timed out.
   */
  async checkNow(): Promise<void> {
    const check = this.#check;
    if (check === undefined) return;
    await Promise.all(this.#peers.map((p) => this.#checkOne(p, check)));
  }

  async #checkOne(peer: Peer, check: HealthCheckConfig): Promise<void> {
    const stop = this.#stop.signal;
    if (stop.aborted) return;
    const ac = new AbortController();
    const onStop = () => ac.abort(stop.reason);
    stop.addEventListener("abort", onStop, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`timed out after ${check.timeout_ms} ms`);
        ac.abort(err);
        reject(err);
      }, check.timeout_ms);
    });
    timeout.catch(() => {});
    let error: string | undefined;
    try {
      await Promise.race([this.#probe(peer, check, ac.signal), timeout]);
    } catch (err) {
      error = errorMessage(err);
    } finally {
      clearTimeout(timer);
      stop.removeEventListener("abort", onStop);
    }
    if (stop.aborted) return;
    this.#recordProbe(peer, check, error);
  }

  #recordProbe(peer: Peer, check: HealthCheckConfig, error: string | undefined): void {
    if (error === undefined) {
      peer.failStreak = 0;
      peer.okStreak = Math.min(peer.okStreak + 1, check.rise);
      if (!peer.activeUp && peer.okStreak >= check.rise) {
        peer.activeUp = true;
        // A server that passes active checks is given a fresh passive window.
        peer.downUntil = -Infinity;
        peer.failTimes = [];
        this.#log?.info(EVENTS.upstream_peer_up, {
          upstream: this.name,
          peer: peer.id,
          reason: "active",
        });
      }
      return;
    }
    peer.okStreak = 0;
    peer.failStreak = Math.min(peer.failStreak + 1, check.fall);
    peer.lastError = error;
    peer.lastFailAt = this.#now();
    if (peer.activeUp && peer.failStreak >= check.fall) {
      peer.activeUp = false;
      this.#log?.warn(EVENTS.upstream_peer_down, {
        upstream: this.name,
        peer: peer.id,
        reason: "active",
        error,
      });
    }
  }

  /** Every server's state, in config order. */
  status(): UpstreamPeerStatus[] {
    const now = this.#now();
    return this.#peers.map((p) => {
      const windowStart = now - p.failTimeoutMs;
      return {
        addr: p.id,
        backup: p.backup,
        healthy: p.healthy(now),
        active: p.active,
        fails: p.failTimes.filter((t) => t > windowStart).length,
        total: p.total,
        last_error: p.lastError,
      };
    });
  }

  /** Stops active checks and waits for running probes to end. */
  async close(): Promise<void> {
    this.#stop.abort(new Error(`Upstream group "${this.name}" closed`));
    await this.#checks;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** nginx's smooth weighted round robin; `current` stays within ±(sum of weights). */
function smoothWeighted(candidates: Peer[]): Peer {
  let total = 0;
  let best: Peer | undefined;
  for (const p of candidates) {
    p.current += p.weight;
    total += p.weight;
    if (best === undefined || p.current > best.current) best = p;
  }
  best!.current -= total;
  return best!;
}

/** Highest random weight: a key keeps its peer while the candidate set is unchanged. */
function rendezvous(candidates: Peer[], key: string): Peer {
  let best = candidates[0]!;
  let bestScore = -Infinity;
  for (const p of candidates) {
    // (h + 1) / 2^32 is in (0, 1]; -ln of it is > 0 except at exactly 1.
    const u = (fnv1a(`${key}\u0000${p.id}`) + 1) / 4294967297;
    const score = p.weight / -Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = p;
    }
  }
  return best;
}

function weightedRandom(candidates: Peer[], r: number): Peer {
  let total = 0;
  for (const p of candidates) total += p.weight;
  let point = Math.min(Math.max(r, 0), 1) * total;
  for (const p of candidates) {
    if (point < p.weight) return p;
    point -= p.weight;
  }
  return candidates[candidates.length - 1]!;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
