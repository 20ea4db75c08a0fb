/**
 * `deno task soak`: long-running reliability checks against real processes on
 * 127.0.0.1, with figures and a pass/fail verdict per check (DESIGN.md §10).
 *
 *   deno task soak [--minutes 10] [--json FILE] [--seed N] [--phases a,b]
 *
 * The run lasts `--minutes` after a short warm-up (one `wmproxy --version`, so
 * that the module cache is filled before the clock starts). Each phase gets a
 * share of the time left and a deadline (tests/soak/_budget.ts), stops at it,
 * and says so when its share was too small for what it must show. A phase that
 * ends early or late is balanced by re-planning the phases after it, so the
 * run as a whole keeps to `--minutes`:
 * (1) 10,000 streams of random sizes (1 B – 4 MiB) through a TCP mapping with
 * SHA-256 verified end to end; (2) reconnect storm: the server is SIGKILLed
 * and restarted every 20 s under traffic until the phase ends, traffic must
 * flow again within 3 s each time, and no session or listener may leak;
 * (3) slowloris: 1,000 connections dribbling bytes on each public listener
 * while normal requests keep their latency within 2× of the baseline; (4) RSS
 * at the end of a steady load within 10 % of after warm-up; (5) a fuzz run of
 * the frame decoder, SOCKS5, HTTP head and SNI parsers with a fixed seed;
 * (6) hostile: pre-auth floods against the tunnel port from other loopback
 * addresses (idle connections past the per-address cap, wrong proofs, garbage
 * frames) while echo traffic flows through a mapping and new clients keep
 * authenticating: no legitimate session or stream may drop, the server must
 * stay up, and the floods must actually have hit the limits.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import type net from "node:net";
import { runWmproxy, startTunnelServer, startWmproxy, tempDir } from "../e2e/_harness.ts";
import { drain, rawTcp, rawTls, sendWrongProof, tunnelHandshake } from "../e2e/_raw_tunnel.ts";
import { exchangePreamble } from "../../src/tunnel/mod.ts";
import { Prng } from "../unit/tunnel/_prng.ts";
import { raiseOpenFileLimit } from "../bench/_rlimit.ts";
import { type PhasePlan, type PhaseShare, planPhases } from "./_budget.ts";

interface Check {
  name: string;
  pass: boolean;
  figures: Record<string, unknown>;
  /** Set when the phase's time share was too small for what it must show. */
  budgetNote?: string;
}

interface PhaseReport {
  name: string;
  /** The share planned at the start of the run. */
  plannedSeconds: number;
  /** The share given when the phase started (after earlier phases ran short or long). */
  givenSeconds: number;
  actualSeconds: number;
  check: Check;
}

/** Share of the run per phase, in running order. */
const PHASES: readonly PhaseShare[] = [
  { name: "streams", share: 0.25 },
  { name: "storm", share: 0.30 },
  { name: "slowloris", share: 0.15 },
  { name: "rss", share: 0.20 },
  { name: "fuzz", share: 0.10 },
  { name: "hostile", share: 0.15 },
];
/** Streams the first phase must complete. */
const STREAM_TARGET = 10_000;
/** Slowloris connections per public listener. */
const SLOWLORIS_PER_LISTENER = 1000;
/** The reconnect storm's restart period. */
const RESTART_EVERY_MS = 20_000;
/** Time each phase keeps for stopping its processes before its deadline. */
const TEARDOWN_MS = 2500;
const TOKEN = "soak-token-0123456789";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    json: { type: "string" },
    seed: { type: "string", default: "20261124" },
    phases: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "Usage: deno task soak [--minutes N] [--json FILE] [--seed N] [--phases NAME[,NAME]]\n" +
      `phases: ${PHASES.map((p) => p.name).join(", ")} (default: all, sharing the time)`,
  );
  Deno.exit(0);
}
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new TypeError("Cannot soak: --minutes must be a positive number");
const seed = Number(values.seed);
const selected = values.phases === undefined ? PHASES : values.phases.split(",").map((n) => {
  const phase = PHASES.find((p) => p.name === n.trim());
  if (phase === undefined) {
    throw new TypeError(
      `Cannot soak: unknown phase "${n}" (known: ${PHASES.map((p) => p.name).join(", ")})`,
    );
  }
  return phase;
});

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

function left(deadline: number): number {
  return deadline - performance.now();
}

function fmt(v: unknown): string {
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? v.toLocaleString("en-US") : String(+v.toFixed(2));
}

function figuresText(c: Check): string {
  return Object.entries(c.figures).map(([k, v]) => `${k}=${fmt(v)}`).join(" ");
}

/** A TCP echo service (the LAN side). */
function startEcho() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const loop = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(256 * 1024);
        try {
          for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
            for (let off = 0; off < n;) off += await conn.write(buf.subarray(off, n));
          }
          await conn.closeWrite();
        } catch {
          // visitor went away
        } finally {
          try {
            conn.close();
          } catch {
            // closed
          }
        }
      })();
    }
  })().catch(() => {});
  return { port: listener.addr.port, close: async () => (listener.close(), await loop) };
}

/** `n` pseudo-random bytes, four per PRNG step. */
function randomChunk(n: number, rng: Prng): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = rng.u32();
  return new Uint8Array(words.buffer, 0, n);
}

/**
 * Sends `size` pseudo-random bytes through `port` and checks the echo by
 * SHA-256. The connection is closed when `signal` aborts (the round then
 * fails; callers tell a cut-off from a failure by the signal).
 */
async function echoRound(
  port: number,
  size: number,
  rng: Prng,
  signal: AbortSignal,
): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const onAbort = () => {
    try {
      conn.close();
    } catch {
      // closed
    }
  };
  signal.addEventListener("abort", onAbort, { once: true });
  const chunk = randomChunk(Math.min(size, 256 * 1024), rng);
  const sent = createHash("sha256");
  const writing = (async () => {
    for (let off = 0; off < size;) {
      const n = Math.min(chunk.length, size - off);
      sent.update(chunk.subarray(0, n));
      for (let w = 0; w < n;) w += await conn.write(chunk.subarray(w, n));
      off += n;
    }
    await conn.closeWrite();
  })();
  const got = createHash("sha256");
  let total = 0;
  const buf = new Uint8Array(256 * 1024);
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      got.update(buf.subarray(0, n));
      total += n;
    }
    await writing;
  } finally {
    signal.removeEventListener("abort", onAbort);
    writing.catch(() => {});
    onAbort();
  }
  return total === size && got.digest("hex") === sent.digest("hex");
}

function serverArgs(dir: string, listen: string, logLevel: string): string[] {
  return [
    "--mode",
    "server",
    "--listen",
    listen,
    "--token",
    TOKEN,
    "--state-dir",
    dir,
    // The echo and origin servers are on loopback, which the server refuses by default.
    "--allow-egress",
    "127.0.0.0/8",
    "--http",
    "127.0.0.1:0",
    "--log-level",
    logLevel,
  ];
}

async function tunnelPair(dir: string, echoPort: number) {
  const server = await startTunnelServer(serverArgs(dir, "127.0.0.1:0", "info"));
  const client = startWmproxy([
    "--mode",
    "client",
    "--server",
    server.addr,
    "--token",
    TOKEN,
    "--ca",
    server.caFile!,
    "--bind",
    "127.0.0.1:0",
    "--map",
    `echo=tcp:127.0.0.1:${echoPort}@:0`,
    "--map",
    `web=http:127.0.0.1:${echoPort}@soak.test`,
  ]);
  try {
    const ready = await client.waitForEvent("mapping_ready", { mapping: "echo" }, 30_000);
    return { server, client, mappingPort: Number(String(ready.public_addr).split(":").pop()) };
  } catch (error) {
    await client.stop("SIGKILL");
    await server.proc.stop("SIGKILL");
    throw error;
  }
}

type Pair = Awaited<ReturnType<typeof tunnelPair>>;

/** Stops the client and the server together (SIGKILL after 2 s), by their PIDs. */
async function stopPair(pair: Pair): Promise<void> {
  await Promise.all([pair.client.stop("SIGTERM", 2000), pair.server.proc.stop("SIGTERM", 2000)]);
}

async function streamsPhase(dir: string, deadline: number): Promise<Check> {
  const echo = startEcho();
  const pair = await tunnelPair(dir, echo.port).catch(async (error) => {
    await echo.close();
    throw error;
  });
  const stopStarting = deadline - TEARDOWN_MS - 1000;
  const cutOff = new AbortController();
  const cutTimer = setTimeout(() => cutOff.abort(), Math.max(0, left(deadline - TEARDOWN_MS)));
  const rng = new Prng(seed);
  const sizes = Array.from(
    { length: STREAM_TARGET },
    () => Math.max(1, Math.round(Math.exp(rng.float() * Math.log(4 * 1024 * 1024)))),
  );
  let next = 0;
  let done = 0;
  let bad = 0;
  let cut = 0;
  let bytes = 0;
  const start = performance.now();
  let end = start;
  try {
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < STREAM_TARGET && performance.now() < stopStarting) {
        const i = next++;
        const size = sizes[i]!;
        const signal = AbortSignal.any([cutOff.signal, AbortSignal.timeout(60_000)]);
        const ok = await echoRound(pair.mappingPort, size, new Prng(seed + i + 1), signal)
          .catch(() => false);
        if (ok) {
          done++;
          bytes += size;
        } else if (cutOff.signal.aborted) cut++;
        else bad++;
      }
    }));
    end = performance.now();
  } finally {
    clearTimeout(cutTimer);
    await stopPair(pair);
    await echo.close();
  }
  const seconds = (end - start) / 1000;
  const check: Check = {
    name: "10,000 tunnel streams with SHA-256",
    pass: done === STREAM_TARGET && bad === 0,
    figures: {
      completed: done,
      failed: bad,
      cut_at_deadline: cut,
      not_started: STREAM_TARGET - next,
      mib: bytes / 1048576,
      seconds,
      mib_per_s: bytes / 1048576 / seconds,
    },
  };
  if (done + bad < STREAM_TARGET) {
    check.budgetNote = `budget too small: ${done + bad} of ${STREAM_TARGET} streams finished ` +
      `in ${seconds.toFixed(0)} s`;
  }
  return check;
}

function live(proc: Pair["client"], up: string, down: string): number {
  return proc.events.filter((e) => e.event === up).length -
    proc.events.filter((e) => e.event === down).length;
}

async function stormPhase(dir: string, deadline: number): Promise<Check> {
  const echo = startEcho();
  let pair: Pair;
  try {
    pair = await tunnelPair(dir, echo.port);
  } catch (error) {
    await echo.close();
    throw error;
  }
  const addr = pair.server.addr;
  const client = pair.client;
  let failures = 0;
  let rounds = 0;
  const stopLoad = new AbortController();
  const rng = new Prng(seed + 1);
  const load = (async () => {
    while (!stopLoad.signal.aborted) {
      const signal = AbortSignal.any([stopLoad.signal, AbortSignal.timeout(10_000)]);
      const ok = await echoRound(pair.mappingPort, 1024, rng, signal).catch(() => false);
      if (stopLoad.signal.aborted) break;
      rounds++;
      if (!ok) {
        failures++;
        await sleep(50);
      }
    }
  })();
  const recoveries: number[] = [];
  let restarts = 0;
  let sessions = NaN;
  let listeners = NaN;
  // Each cycle: kill at lastStart + 20 s, restart, wait for traffic (≤ 10 s).
  const cycleTail = 12_000 + TEARDOWN_MS;
  let lastStart = performance.now();
  try {
    while (lastStart + RESTART_EVERY_MS + cycleTail < deadline) {
      await sleep(lastStart + RESTART_EVERY_MS - performance.now());
      await pair.server.proc.stop("SIGKILL");
      const before = client.events.filter((e) => e.event === "mapping_ready").length;
      pair.server = await startTunnelServer(serverArgs(dir, addr, "info"));
      const restartedAt = performance.now();
      lastStart = restartedAt;
      restarts++;
      while (client.events.filter((e) => e.event === "mapping_ready").length === before) {
        if (performance.now() - restartedAt > 10_000) break;
        await sleep(20);
      }
      const ready = client.events.filter((e) => e.event === "mapping_ready" && e.mapping === "echo")
        .at(-1);
      pair.mappingPort = Number(String(ready?.public_addr).split(":").pop());
      let flowing = false;
      while (!flowing && performance.now() - restartedAt < 10_000) {
        flowing = await echoRound(pair.mappingPort, 1024, rng, AbortSignal.timeout(5000))
          .catch(() => false);
      }
      recoveries.push(flowing ? (performance.now() - restartedAt) / 1000 : Infinity);
    }
    // Traffic keeps flowing until the phase's end; then the server is checked for leaks.
    await sleep(left(deadline - TEARDOWN_MS));
    sessions = live(pair.server.proc, "client_connected", "client_disconnected");
    listeners = live(pair.server.proc, "mapping_registered", "mapping_released");
  } finally {
    stopLoad.abort();
    await load;
    await stopPair(pair);
    await echo.close();
  }
  const worst = Math.max(0, ...recoveries);
  const check: Check = {
    name: "reconnect storm (server SIGKILLed every 20 s)",
    pass: restarts > 0 && worst < 3 && sessions === 1 && listeners === 2,
    figures: {
      restarts,
      worst_recovery_s: worst,
      live_sessions: sessions,
      live_mappings: listeners,
      rounds,
      failed_rounds: failures,
    },
  };
  if (restarts === 0) {
    check.budgetNote = `budget too small: a restart needs ${
      (RESTART_EVERY_MS + cycleTail) / 1000
    } s after the tunnel is up`;
  }
  return check;
}

/**
 * Median time of up to `count` requests (stopping at `until`), each on a new
 * connection, routed by Host (raw: fetch cannot set Host).
 */
async function httpLatency(http: string, count: number, until: number): Promise<number> {
  const port = Number(http.split(":").pop());
  const request = new TextEncoder().encode(
    "POST / HTTP/1.1\r\nHost: soak.test\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping",
  );
  const times: number[] = [];
  const buf = new Uint8Array(4096);
  for (let i = 0; i < count && (i < 10 || performance.now() < until); i++) {
    const t = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const timer = setTimeout(() => conn.close(), 10_000);
    let text = "";
    try {
      await conn.write(request);
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
    } finally {
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // closed by the timer
      }
    }
    if (!text.startsWith("HTTP/1.1 200") || !text.endsWith("ok")) {
      throw new Error(
        `Cannot measure latency: the mapping answered ${JSON.stringify(text.slice(0, 80))}`,
      );
    }
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function slowlorisPhase(dir: string, deadline: number): Promise<Check> {
  const need = SLOWLORIS_PER_LISTENER * 4;
  const lan = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    return new Response("ok");
  });
  const pair = await tunnelPair(dir, lan.addr.port).catch(async (error) => {
    await lan.shutdown();
    throw error;
  });
  const conns: Deno.Conn[] = [];
  const opened: Record<string, number> = {};
  const refused: Record<string, number> = {};
  let dribble: ReturnType<typeof setInterval> | undefined;
  try {
    const http = await pair.server.proc.listeningAddr("http");
    const local = await pair.client.listeningAddr("client");
    // Time for the measurements: ~1/8 of the phase each, at most 200 requests.
    const slice = Math.max(1000, left(deadline) / 8);
    const baseline = await httpLatency(http, 200, performance.now() + slice);
    const listeners: Record<string, string> = {
      http_vhost: http,
      tunnel: pair.server.addr,
      tcp_mapping: `127.0.0.1:${pair.mappingPort}`,
      client_local: local,
    };
    const openUntil = deadline - TEARDOWN_MS - 2 * slice;
    const first = new TextEncoder().encode("G");
    for (const [name, addr] of Object.entries(listeners)) {
      opened[name] = 0;
      refused[name] = 0;
      const port = Number(addr.split(":").pop());
      for (let i = 0; i < SLOWLORIS_PER_LISTENER && performance.now() < openUntil; i++) {
        try {
          const c = await Deno.connect({ hostname: "127.0.0.1", port });
          conns.push(c);
          opened[name]++;
          await c.write(first);
        } catch {
          refused[name]++; // refused or reset: the listener protects itself, which is fine
        }
      }
    }
    dribble = setInterval(() => {
      for (const c of conns) c.write(new Uint8Array([0x45])).catch(() => {});
    }, 2000);
    const under = await httpLatency(http, 200, performance.now() + slice);
    // Hold until the last measurement (at most 100 requests, ~3 s on a slow machine).
    await sleep(left(deadline - TEARDOWN_MS - Math.min(slice, 3000)));
    const later = await httpLatency(http, 100, deadline - TEARDOWN_MS);
    const attempted = Object.keys(listeners).every((n) =>
      opened[n]! + refused[n]! === SLOWLORIS_PER_LISTENER
    );
    const worst = Math.max(under, later);
    const check: Check = {
      name: "slowloris (1,000 dribbling connections on each public listener)",
      pass: attempted && worst <= 2 * Math.max(baseline, 1),
      figures: {
        ...Object.fromEntries(
          Object.keys(listeners).map((n) => [n, `${opened[n]} open/${refused[n]} refused`]),
        ),
        baseline_p50_ms: baseline,
        under_attack_p50_ms: under,
        later_p50_ms: later,
        nofile_soft: openFiles.soft ?? "?",
      },
    };
    if (!attempted) {
      const total = Object.values(opened).reduce((a, b) => a + b, 0) +
        Object.values(refused).reduce((a, b) => a + b, 0);
      check.budgetNote = `budget too small: ${total} of ${need} connections attempted in time`;
    }
    if (openFiles.problem !== undefined) check.figures.nofile_problem = openFiles.problem;
    return check;
  } finally {
    clearInterval(dribble);
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed by the server (handshake timeout): good
      }
    }
    await stopPair(pair);
    await lan.shutdown();
  }
}

async function rssPhase(dir: string, deadline: number): Promise<Check> {
  const echo = startEcho();
  const pair = await tunnelPair(dir, echo.port).catch(async (error) => {
    await echo.close();
    throw error;
  });
  const rng = new Prng(seed + 2);
  const phaseMs = left(deadline - TEARDOWN_MS);
  const warmUntil = performance.now() + phaseMs / 3;
  const stop = new AbortController();
  const worker = async () => {
    while (!stop.signal.aborted) {
      await echoRound(pair.mappingPort, 16 * 1024, rng, stop.signal).catch(() => false);
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  let warm = { server: 0, client: 0 };
  let end = { server: 0, client: 0 };
  try {
    await sleep(warmUntil - performance.now());
    warm = { server: rssKiB(pair.server.proc.child.pid), client: rssKiB(pair.client.child.pid) };
    await sleep(left(deadline - TEARDOWN_MS));
    end = { server: rssKiB(pair.server.proc.child.pid), client: rssKiB(pair.client.child.pid) };
  } finally {
    stop.abort();
    await Promise.all(workers);
    await stopPair(pair);
    await echo.close();
  }
  const growth = (a: number, b: number) => (a === 0 ? 0 : (b - a) / a);
  const check: Check = {
    name: "RSS flat under steady load (end within 10 % of after warm-up)",
    pass: warm.server > 0 && growth(warm.server, end.server) <= 0.10 &&
      growth(warm.client, end.client) <= 0.10,
    figures: {
      warm_up_s: phaseMs / 3000,
      measured_s: (phaseMs * 2) / 3000,
      server_warm_mib: warm.server / 1024,
      server_end_mib: end.server / 1024,
      client_warm_mib: warm.client / 1024,
      client_end_mib: end.client / 1024,
    },
  };
  if (phaseMs < 60_000) {
    check.budgetNote = `budget short: ${
      (phaseMs / 1000).toFixed(0)
    } s of load (under 60 s); the warm-up may not have settled`;
  }
  return check;
}

async function fuzzPhase(deadline: number): Promise<Check> {
  // Deno needs about a second to start the fuzz program; it stops on its own clock.
  const seconds = Math.max(1, Math.floor(left(deadline) / 1000 - 1.5));
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../fuzz/main.ts", import.meta.url).pathname,
      "--seconds",
      String(seconds),
      "--seed",
      String(seed),
    ],
    stdin: "null",
    signal: AbortSignal.timeout(seconds * 1000 + 30_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  return {
    name: "fuzz (frames, control messages, SOCKS5, HTTP head, chunked, SNI)",
    pass: out.success,
    figures: { seconds, result: text },
  };
}

/** The first line of an error and, for a process that exited, its last output line. */
function errorText(error: unknown): string {
  const lines = (error instanceof Error ? error.message : String(error)).split("\n")
    .filter((l) => l.trim() !== "");
  return lines.length > 1 ? `${lines[0]} ${lines.at(-1)!.slice(0, 300)}` : lines[0] ?? "";
}

/** Loopback addresses the hostile phase's idle floods come from (one task each). */
const HOSTILE_IDLE_FROM = ["127.0.0.101", "127.0.0.102", "127.0.0.103", "127.0.0.104"];
/** Idle sockets each flooding task keeps open at most (the server's per-address cap is 8). */
const HOSTILE_IDLE_KEEP = 24;

async function hostilePhase(dir: string, deadline: number): Promise<Check> {
  const echo = startEcho();
  const pair = await tunnelPair(dir, echo.port).catch(async (error) => {
    await echo.close();
    throw error;
  });
  const addr = pair.server.addr;
  const stop = new AbortController();
  // Guesses wait out the throttle (up to half the 10 s handshake deadline): stop them early.
  const attackUntil = deadline - TEARDOWN_MS - 6000;
  const trafficUntil = deadline - TEARDOWN_MS - 500;
  const clientDropsBefore = pair.client.events.filter((e) => e.event === "tunnel_disconnected")
    .length;
  let rounds = 0;
  let failedRounds = 0;
  let idleOpened = 0;
  let guesses = 0;
  let garbage = 0;
  let probes = 0;
  let failedProbes = 0;
  const attacking = () => performance.now() < attackUntil && !stop.signal.aborted;
  const traffic = Array.from({ length: 4 }, async (_, k) => {
    const rng = new Prng(seed + 100 + k);
    while (performance.now() < trafficUntil) {
      const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(10_000)]);
      const ok = await echoRound(pair.mappingPort, 16 * 1024, rng, signal).catch(() => false);
      if (stop.signal.aborted) break;
      rounds++;
      if (!ok) failedRounds++;
    }
  });
  const idle = HOSTILE_IDLE_FROM.map(async (from) => {
    const mine: net.Socket[] = [];
    while (attacking()) {
      try {
        mine.push(await rawTcp(addr, from));
        idleOpened++;
      } catch {
        // refused at once: what the limit is for
      }
      while (mine.length > HOSTILE_IDLE_KEEP) mine.shift()!.destroy();
      await sleep(20); // the attacker's pace
    }
    for (const s of mine) s.destroy();
  });
  const guesser = (async () => {
    while (attacking()) {
      await sendWrongProof(addr, "127.0.0.110").then(() => guesses++, () => sleep(50));
    }
  })();
  const garbler = (async () => {
    const rng = new Prng(seed + 200);
    while (attacking()) {
      try {
        const conn = await rawTls(addr, "127.0.0.111");
        await exchangePreamble(conn, { peer: "server" });
        await conn.write(randomChunk(64, rng));
        await drain(conn);
        conn.close();
        garbage++;
      } catch {
        await sleep(50);
      }
    }
  })();
  // A new legitimate client every 2 s must get in during the floods.
  const prober = (async () => {
    while (attacking()) {
      try {
        const { session } = await tunnelHandshake(addr, "127.0.0.1", TOKEN);
        await session.close();
        probes++;
      } catch {
        failedProbes++;
      }
      await sleep(2000);
    }
  })();
  let alive = false;
  let sessions = NaN;
  try {
    await Promise.all([...idle, guesser, garbler, prober]);
    await Promise.all(traffic);
    alive = await Promise.race([
      pair.server.proc.child.status.then(() => false),
      Promise.resolve(true),
    ]);
    sessions = live(pair.server.proc, "client_connected", "client_disconnected");
  } finally {
    stop.abort();
    await Promise.all(traffic);
    await stopPair(pair);
    await echo.close();
  }
  const rejectedLines = pair.server.proc.events.filter((e) => e.event === "connection_rejected");
  const refusals = rejectedLines.reduce((a, e) => a + 1 + Number(e.suppressed ?? 0), 0);
  const clientDrops = pair.client.events.filter((e) => e.event === "tunnel_disconnected").length -
    clientDropsBefore;
  const check: Check = {
    name: "hostile pre-auth floods under traffic",
    pass: alive && rounds > 0 && failedRounds === 0 && clientDrops === 0 && sessions === 1 &&
      probes > 0 && failedProbes === 0 && refusals > 0 && guesses > 0 && garbage > 0,
    figures: {
      server_alive: alive,
      rounds,
      failed_rounds: failedRounds,
      client_drops: clientDrops,
      live_sessions: sessions,
      new_clients_ok: probes,
      new_clients_failed: failedProbes,
      idle_opened: idleOpened,
      refused: refusals,
      refusal_log_lines: rejectedLines.length,
      wrong_proofs: guesses,
      garbage_conns: garbage,
    },
  };
  if (probes === 0 || guesses === 0) {
    check.budgetNote = "budget too small: the phase needs about 15 s to show every attack";
  }
  return check;
}

async function runPhase(plan: PhasePlan, dir: string): Promise<Check> {
  switch (plan.name) {
    case "streams":
      return await streamsPhase(`${dir}/a`, plan.deadlineMs);
    case "storm":
      return await stormPhase(`${dir}/b`, plan.deadlineMs);
    case "slowloris":
      return await slowlorisPhase(`${dir}/c`, plan.deadlineMs);
    case "rss":
      return await rssPhase(`${dir}/d`, plan.deadlineMs);
    case "fuzz":
      return await fuzzPhase(plan.deadlineMs);
    case "hostile":
      return await hostilePhase(`${dir}/e`, plan.deadlineMs);
  }
  throw new TypeError(`Cannot run phase "${plan.name}": unknown`);
}

function table(reports: readonly PhaseReport[]): string {
  const rows = reports.map((r) => [
    r.name,
    r.plannedSeconds.toFixed(0),
    r.givenSeconds.toFixed(0),
    r.actualSeconds.toFixed(0),
    r.check.pass ? "PASS" : "FAIL",
    r.check.name,
  ]);
  const head = ["phase", "planned s", "given s", "actual s", "verdict", "check"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  const out = [line(head), line(widths.map((w) => "-".repeat(w)))];
  for (const [i, r] of rows.entries()) {
    out.push(line(r));
    const c = reports[i]!.check;
    out.push(`    ${figuresText(c)}`);
    if (c.budgetNote !== undefined) out.push(`    ${c.budgetNote}`);
  }
  return out.join("\n");
}

async function main(): Promise<number> {
  const t0 = performance.now();
  await using dir = await tempDir();
  // Warm-up (not counted in --minutes): one wmproxy start fills Deno's module cache.
  const warm = await runWmproxy(["--version"]);
  if (warm.code !== 0) {
    throw new Error(`Cannot start wmproxy: ${warm.stderr.trim().split("\n")[0]}`);
  }
  const setupSeconds = (performance.now() - t0) / 1000;
  const runStart = performance.now();
  const totalMs = minutes * 60_000;
  const runEnd = runStart + totalMs;
  const plans = planPhases(runStart, totalMs, selected);
  console.log(
    `soak: ${minutes} min, seed ${seed}, warm-up ${setupSeconds.toFixed(1)} s, open files ` +
      `${openFiles.soft ?? "?"}; planned: ` +
      plans.map((p) => `${p.name} ${(p.budgetMs / 1000).toFixed(0)} s`).join(", "),
  );
  const reports: PhaseReport[] = [];
  for (const [i, planned] of plans.entries()) {
    const started = performance.now();
    // The phases still to run share the time left by their shares.
    const plan = planPhases(started, Math.max(1, runEnd - started), selected.slice(i))[0]!;
    let check: Check;
    try {
      check = await runPhase(plan, dir.path);
    } catch (error) {
      check = {
        name: plan.name,
        pass: false,
        figures: { error: errorText(error) },
      };
    }
    const actualSeconds = (performance.now() - started) / 1000;
    const plannedSeconds = planned.budgetMs / 1000;
    const givenSeconds = plan.budgetMs / 1000;
    reports.push({ name: plan.name, plannedSeconds, givenSeconds, actualSeconds, check });
    console.log(
      `${check.pass ? "PASS" : "FAIL"} ${plan.name} (${actualSeconds.toFixed(0)} s of ` +
        `${givenSeconds.toFixed(0)} given): ${check.name}: ${figuresText(check)}` +
        (check.budgetNote === undefined ? "" : ` — ${check.budgetNote}`),
    );
  }
  const failed = reports.filter((r) => !r.check.pass).length;
  const runSeconds = (performance.now() - runStart) / 1000;
  console.log("");
  console.log(table(reports));
  console.log(
    `soak: ${reports.length - failed} passed, ${failed} failed; ran ${
      (runSeconds / 60).toFixed(2)
    } min for ${minutes} planned (${
      ((runSeconds / (minutes * 60) - 1) * 100).toFixed(1)
    } %), plus warm-up ${setupSeconds.toFixed(1)} s`,
  );
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify({ minutes, seed, setupSeconds, runSeconds, phases: reports }, null, 2),
    );
  }
  return failed === 0 ? 0 : 1;
}

// Slowloris holds ~5,000 sockets here and thousands in each child: raise the
// soft limit before any child starts, so that they inherit it.
const openFiles = raiseOpenFileLimit(16_384);
Deno.exit(await main());
