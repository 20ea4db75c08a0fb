import assert from "node:assert/strict";
import type {
  BalanceStrategy,
  HealthCheckConfig,
  UpstreamGroupConfig,
  UpstreamServerConfig,
} from "@/config/upstream_section.ts";
import { UpstreamGroup, type UpstreamPeer } from "@/upstream/mod.ts";
import { Logger, MemorySink } from "@/observability/log.ts";

function server(addr: string, over: Partial<UpstreamServerConfig> = {}): UpstreamServerConfig {
  return { addr, weight: 1, max_fails: 1, fail_timeout_ms: 10_000, backup: false, ...over };
}

function group(
  strategy: BalanceStrategy,
  servers: UpstreamServerConfig[],
  health_check?: HealthCheckConfig,
): UpstreamGroupConfig {
  return { name: "g", strategy, servers, health_check };
}

const A = "127.0.0.1:9001";
const B = "127.0.0.1:9002";
const C = "127.0.0.1:9003";

function picks(g: UpstreamGroup, n: number, key = "k"): string[] {
  return Array.from({ length: n }, () => g.pick(key)!.id);
}

function counts(ids: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of ids) out[id] = (out[id] ?? 0) + 1;
  return out;
}

/** A deterministic PRNG (mulberry32) for the random strategy. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("UpstreamGroup.pick() round_robin cycles through primaries in order", async () => {
  await using g = new UpstreamGroup(group("round_robin", [server(A), server(B), server(C)]));
  assert.deepEqual(picks(g, 6), [A, B, C, A, B, C]);
});

Deno.test("UpstreamGroup.pick() weighted 1/3/6 is smooth and exact over many picks", async () => {
  await using g = new UpstreamGroup(
    group("weighted", [
      server(A, { weight: 1 }),
      server(B, { weight: 3 }),
      server(C, { weight: 6 }),
    ]),
  );
  const first = picks(g, 10);
  assert.deepEqual(counts(first), { [A]: 1, [B]: 3, [C]: 6 });
  // smooth: the heaviest peer never gets more than two in a row within a cycle of 10
  let run = 0;
  let maxRun = 0;
  for (let i = 0; i < first.length; i++) {
    run = i > 0 && first[i] === first[i - 1] ? run + 1 : 1;
    maxRun = Math.max(maxRun, run);
  }
  assert.ok(maxRun <= 2, `runs too long in ${first.join(",")}`);
  assert.deepEqual(counts(picks(g, 10_000)), { [A]: 1000, [B]: 3000, [C]: 6000 });
});

Deno.test("UpstreamGroup.pick() weighted with huge weights stays exact (no overflow)", async () => {
  await using g = new UpstreamGroup(
    group("weighted", [server(A, { weight: 100_000 }), server(B, { weight: 1 })]),
  );
  const c = counts(picks(g, 100_001 * 2));
  assert.deepEqual(c, { [A]: 200_000, [B]: 2 });
});

Deno.test("UpstreamGroup.pick() weighted treats a zero weight as 1 (never panics)", async () => {
  await using g = new UpstreamGroup(group("weighted", [server(A, { weight: 0 }), server(B)]));
  assert.deepEqual(counts(picks(g, 4)), { [A]: 2, [B]: 2 });
});

Deno.test("UpstreamGroup.pick() least_conn prefers the fewest in-flight per weight", async () => {
  await using g = new UpstreamGroup(
    group("least_conn", [server(A), server(B), server(C, { weight: 2 })]),
  );
  const a = g.pick("k")!;
  g.acquire(a);
  const b = g.pick("k")!;
  assert.notEqual(b.id, a.id);
  g.acquire(b);
  const c = g.pick("k")!;
  assert.equal(c.id, C);
  g.acquire(c);
  // C has weight 2: one in flight counts as half
  const d = g.pick("k")!;
  assert.equal(d.id, C);
  g.acquire(d);
  assert.equal(d.active, 2);
  g.release(a);
  assert.equal(g.pick("k")!.id, a.id);
  g.release(a); // extra releases never go negative
  assert.equal(a.active, 0);
});

Deno.test("UpstreamGroup.pick() least_conn rotates among equally loaded peers", async () => {
  await using g = new UpstreamGroup(group("least_conn", [server(A), server(B), server(C)]));
  assert.deepEqual(picks(g, 3).sort(), [A, B, C]);
});

Deno.test("UpstreamGroup.pick() ip_hash is stable per key and spreads keys", async () => {
  await using g = new UpstreamGroup(group("ip_hash", [server(A), server(B), server(C)]));
  const keys = Array.from({ length: 300 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  const first = keys.map((k) => g.pick(k)!.id);
  const again = keys.map((k) => g.pick(k)!.id);
  assert.deepEqual(again, first);
  const c = counts(first);
  for (const id of [A, B, C]) assert.ok((c[id] ?? 0) > 60, `skewed: ${JSON.stringify(c)}`);
});

Deno.test("UpstreamGroup.pick() ip_hash moves only the keys of a peer that went down", async () => {
  let now = 1_000;
  await using g = new UpstreamGroup(group("ip_hash", [server(A), server(B), server(C)]), {
    now: () => now,
  });
  const keys = Array.from({ length: 200 }, (_, i) => `192.168.1.${i}`);
  const before = keys.map((k) => g.pick(k)!.id);
  const b = g.peers.find((p) => p.id === B)!;
  g.reportFailure(b, "refused");
  const during = keys.map((k) => g.pick(k)!.id);
  keys.forEach((_, i) => {
    if (before[i] !== B) assert.equal(during[i], before[i]);
    else assert.notEqual(during[i], B);
  });
  now += 10_001;
  assert.deepEqual(keys.map((k) => g.pick(k)!.id), before);
});

Deno.test("UpstreamGroup.pick() random follows weights with the injected source", async () => {
  const seq = [0, 0.09, 0.1, 0.39, 0.4, 0.999999];
  let i = 0;
  await using g = new UpstreamGroup(
    group("random", [server(A, { weight: 1 }), server(B, { weight: 3 }), server(C, { weight: 6 })]),
    { random: () => seq[i++]! },
  );
  assert.deepEqual(picks(g, 6), [A, A, B, B, C, C]);
  await using g2 = new UpstreamGroup(
    group("random", [server(A, { weight: 1 }), server(B, { weight: 3 }), server(C, { weight: 6 })]),
    { random: prng(42) },
  );
  const c = counts(picks(g2, 20_000));
  assert.ok(Math.abs(c[A]! - 2000) < 300, JSON.stringify(c));
  assert.ok(Math.abs(c[B]! - 6000) < 400, JSON.stringify(c));
  assert.ok(Math.abs(c[C]! - 12000) < 500, JSON.stringify(c));
});

Deno.test("UpstreamGroup.pick() uses backups only when every primary is down", async () => {
  let now = 0;
  await using g = new UpstreamGroup(
    group("round_robin", [server(A), server(B), server(C, { backup: true })]),
    { now: () => now },
  );
  assert.deepEqual(picks(g, 4), [A, B, A, B]);
  const [a, b] = g.peers;
  g.reportFailure(a!, "refused");
  assert.deepEqual(picks(g, 2), [B, B]);
  now = 5;
  g.reportFailure(b!, "refused");
  assert.deepEqual(picks(g, 2), [C, C]);
  // everything down: the least recently failed primary
  g.reportFailure(g.peers[2]!, "refused");
  assert.equal(g.pick("k")!.id, A);
  // A back after fail_timeout
  now = 10_001;
  assert.deepEqual(picks(g, 2), [A, A]);
});

Deno.test("UpstreamGroup.pick() skips excluded peers and returns undefined when all are", async () => {
  await using g = new UpstreamGroup(group("round_robin", [server(A), server(B, { backup: true })]));
  assert.equal(g.pick("k", new Set([A]))!.id, B);
  assert.equal(g.pick("k", new Set([A, B])), undefined);
});

Deno.test("UpstreamGroup.reportFailure() needs max_fails within fail_timeout", async () => {
  let now = 0;
  await using g = new UpstreamGroup(
    group("round_robin", [server(A, { max_fails: 3, fail_timeout_ms: 1000 }), server(B)]),
    { now: () => now },
  );
  const a = g.peers[0]!;
  g.reportFailure(a, "e1");
  now = 500;
  g.reportFailure(a, "e2");
  now = 1200; // the first failure left the window
  g.reportFailure(a, "e3");
  assert.equal(g.status()[0]!.healthy, true);
  assert.equal(g.status()[0]!.fails, 2);
  now = 1300;
  g.reportFailure(a, "e4");
  const st = g.status()[0]!;
  assert.equal(st.healthy, false);
  assert.equal(st.last_error, "e4");
  now = 2299;
  assert.equal(g.status()[0]!.healthy, false);
  now = 2300;
  assert.equal(g.status()[0]!.healthy, true);
});

Deno.test("UpstreamGroup.reportSuccess() clears the failure window; max_fails 0 never marks down", async () => {
  let now = 0;
  await using g = new UpstreamGroup(
    group("round_robin", [server(A, { max_fails: 2 }), server(B, { max_fails: 0 })]),
    { now: () => now },
  );
  const [a, b] = g.peers;
  g.reportFailure(a!, "x");
  g.reportSuccess(a!);
  now = 1;
  g.reportFailure(a!, "y");
  assert.equal(g.status()[0]!.healthy, true);
  for (let i = 0; i < 100; i++) g.reportFailure(b!, "z");
  assert.equal(g.status()[1]!.healthy, true);
  assert.equal(g.status()[1]!.last_error, "z");
});

Deno.test("UpstreamGroup.status() reports picks, in-flight uses and health", async () => {
  await using g = new UpstreamGroup(group("round_robin", [server(A), server("[::1]:9004")]));
  const p = g.pick("k")!;
  g.acquire(p);
  g.pick("k");
  g.pick("k");
  assert.deepEqual(g.status(), [
    { addr: A, backup: false, healthy: true, active: 1, fails: 0, total: 2, last_error: undefined },
    {
      addr: "[::1]:9004",
      backup: false,
      healthy: true,
      active: 0,
      fails: 0,
      total: 1,
      last_error: undefined,
    },
  ]);
});

Deno.test("UpstreamGroup.checkNow() applies fall and rise from the probe", async () => {
  const failing = new Set<string>();
  const sink = new MemorySink();
  const check: HealthCheckConfig = {
    type: "tcp",
    interval_ms: 1000,
    timeout_ms: 100,
    rise: 2,
    fall: 3,
    path: "/",
    expect_status: 200,
  };
  await using g = new UpstreamGroup(group("round_robin", [server(A), server(B)], check), {
    log: new Logger({ format: "json", sink }),
    probe: (peer: UpstreamPeer) =>
      failing.has(peer.id) ? Promise.reject(new Error("refused")) : Promise.resolve(),
  });
  const healthy = () => g.status().map((s) => s.healthy);
  failing.add(A);
  await g.checkNow();
  await g.checkNow();
  assert.deepEqual(healthy(), [true, true]);
  await g.checkNow();
  assert.deepEqual(healthy(), [false, true]);
  assert.equal(g.status()[0]!.last_error, "refused");
  assert.deepEqual(picks(g, 2), [B, B]);
  failing.delete(A);
  await g.checkNow();
  assert.deepEqual(healthy(), [false, true]);
  await g.checkNow();
  assert.deepEqual(healthy(), [true, true]);
  const events = sink.lines.map((l) => JSON.parse(l)).map((e) => `${e.event}:${e.peer}`);
  assert.deepEqual(events, [`upstream_peer_down:${A}`, `upstream_peer_up:${A}`]);
});

Deno.test("UpstreamGroup.checkNow() counts a probe that outlives timeout as a failure", async () => {
  const check: HealthCheckConfig = {
    type: "tcp",
    interval_ms: 1000,
    timeout_ms: 20,
    rise: 1,
    fall: 1,
    path: "/",
    expect_status: 200,
  };
  let aborted = 0;
  await using g = new UpstreamGroup(group("round_robin", [server(A)], check), {
    probe: (_peer, _check, signal) =>
      new Promise<void>((_, reject) => {
        signal.addEventListener("abort", () => {
          aborted++;
          reject(signal.reason);
        });
      }),
  });
  await g.checkNow();
  assert.equal(aborted, 1);
  assert.equal(g.status()[0]!.healthy, false);
  assert.match(g.status()[0]!.last_error!, /timed out after 20 ms/);
});

Deno.test("UpstreamGroup.start() probes every interval until disposed", async () => {
  const check: HealthCheckConfig = {
    type: "tcp",
    interval_ms: 10,
    timeout_ms: 10,
    rise: 1,
    fall: 2,
    path: "/",
    expect_status: 200,
  };
  let probes = 0;
  let reached: () => void = () => {};
  const fiveProbes = new Promise<void>((resolve) => reached = resolve);
  const g = new UpstreamGroup(group("round_robin", [server(A)], check), {
    probe: () => {
      if (++probes === 5) reached();
      return Promise.reject(new Error("down"));
    },
  });
  g.start();
  g.start(); // idempotent
  await fiveProbes;
  assert.equal(g.status()[0]!.healthy, false);
  await g[Symbol.asyncDispose]();
  const after = probes;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(probes, after);
});
