/**
 * `deno task soak`: long-running reliability checks against real processes on
 * 127.0.0.1, with figures and a pass/fail verdict per check (DESIGN.md §10).
 *
 *   deno task soak [--minutes 10] [--json FILE] [--seed N]
 *
 * Checks, in order, sharing the time: (1) 10,000 streams of random sizes
 * (1 B – 4 MiB) through a TCP mapping with SHA-256 verified end to end;
 * (2) reconnect storms: the server is SIGKILLed and restarted every 20 s under
 * traffic, traffic must flow again within 3 s each time, and no session or
 * listener may leak; (3) slowloris: 1,000 connections dribbling bytes on each
 * public listener while normal requests keep their latency within 2× of the
 * baseline; (4) RSS at the end of a steady load within 10 % of after warm-up;
 * (5) a fuzz run of the frame decoder, SOCKS5, HTTP head and SNI parsers.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { startTunnelServer, startWmproxy, tempDir } from "../e2e/_harness.ts";
import { Prng } from "../unit/tunnel/_prng.ts";

interface Check {
  name: string;
  pass: boolean;
  figures: Record<string, unknown>;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    json: { type: "string" },
    seed: { type: "string", default: "20261124" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("Usage: deno task soak [--minutes N] [--json FILE] [--seed N]");
  Deno.exit(0);
}
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new TypeError("Cannot soak: --minutes must be a positive number");
const budgetMs = minutes * 60_000;
const seed = Number(values.seed);
const TOKEN = "soak-token-0123456789";
const checks: Check[] = [];
const t0 = performance.now();

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function report(c: Check) {
  checks.push(c);
  const figures = Object.entries(c.figures).map(([k, v]) =>
    `${k}=${typeof v === "number" ? +v.toFixed(2) : v}`
  ).join(" ");
  console.log(`${c.pass ? "PASS" : "FAIL"} ${c.name}: ${figures}`);
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

/** Sends `size` pseudo-random bytes through `port` and checks the echo by SHA-256. */
async function echoRound(port: number, size: number, rng: Prng): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunk = new Uint8Array(Math.min(size, 256 * 1024));
  for (let i = 0; i < chunk.length; i++) chunk[i] = rng.int(256);
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
    conn.close();
  }
  return total === size && got.digest("hex") === sent.digest("hex");
}

async function tunnelPair(dir: string, echoPort: number, listen = "127.0.0.1:0") {
  const server = await startTunnelServer([
    "--mode",
    "server",
    "--listen",
    listen,
    "--token",
    TOKEN,
    "--state-dir",
    dir,
    "--http",
    "127.0.0.1:0",
    "--log-level",
    "info",
  ]);
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
  const ready = await client.waitForEvent("mapping_ready", { mapping: "echo" }, 30_000);
  return { server, client, mappingPort: Number(String(ready.public_addr).split(":").pop()) };
}

async function streamsCheck(dir: string, deadline: number) {
  const echo = startEcho();
  const { server, client, mappingPort } = await tunnelPair(dir, echo.port);
  const rng = new Prng(seed);
  const target = 10_000;
  let done = 0;
  let bad = 0;
  let bytes = 0;
  const start = performance.now();
  const sizes = Array.from(
    { length: target },
    () => Math.max(1, Math.round(Math.exp(rng.float() * Math.log(4 * 1024 * 1024)))),
  );
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < target && performance.now() < deadline) {
      const size = sizes[next++]!;
      const ok = await echoRound(mappingPort, size, new Prng(seed + next)).catch(() => false);
      done++;
      bytes += size;
      if (!ok) bad++;
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  report({
    name: "10,000 tunnel streams with SHA-256",
    pass: done === target && bad === 0,
    figures: {
      streams: done,
      failed: bad,
      mib: bytes / 1048576,
      seconds,
      mib_per_s: bytes / 1048576 / seconds,
    },
  });
  await client.stop("SIGTERM");
  await server.proc.stop("SIGTERM");
  await echo.close();
}

async function stormCheck(dir: string, deadline: number) {
  const echo = startEcho();
  let { server, client, mappingPort } = await tunnelPair(dir, echo.port);
  const addr = server.addr;
  let failures = 0;
  let rounds = 0;
  let stop = false;
  const rng = new Prng(seed + 1);
  const load = (async () => {
    while (!stop) {
      const ok = await echoRound(mappingPort, 1024, rng).catch(() => false);
      rounds++;
      if (!ok) {
        failures++;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })();
  const recoveries: number[] = [];
  let restarts = 0;
  while (performance.now() + 25_000 < deadline) {
    await new Promise((r) => setTimeout(r, 20_000));
    await server.proc.stop("SIGKILL");
    const before = client.events.filter((e) => e.event === "mapping_ready").length;
    server = await startTunnelServer([
      "--mode",
      "server",
      "--listen",
      addr,
      "--token",
      TOKEN,
      "--state-dir",
      dir,
      "--http",
      "127.0.0.1:0",
    ]);
    const restartedAt = performance.now();
    restarts++;
    while (client.events.filter((e) => e.event === "mapping_ready").length === before) {
      if (performance.now() - restartedAt > 15_000) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const ready = client.events.filter((e) => e.event === "mapping_ready" && e.mapping === "echo")
      .at(-1);
    mappingPort = Number(String(ready?.public_addr).split(":").pop());
    let flowing = false;
    while (!flowing && performance.now() - restartedAt < 10_000) {
      flowing = await echoRound(mappingPort, 1024, rng).catch(() => false);
    }
    recoveries.push(flowing ? (performance.now() - restartedAt) / 1000 : Infinity);
  }
  stop = true;
  await load;
  const sessions = server.proc.events.filter((e) => e.event === "client_connected").length -
    server.proc.events.filter((e) => e.event === "client_disconnected").length;
  const listeners = server.proc.events.filter((e) => e.event === "mapping_registered").length -
    server.proc.events.filter((e) => e.event === "mapping_released").length;
  const worst = Math.max(0, ...recoveries);
  report({
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
  });
  await client.stop("SIGTERM");
  await server.proc.stop("SIGTERM");
  await echo.close();
}

/** Median time of `count` requests, each on a new connection, routed by Host (raw: fetch cannot set Host). */
async function httpLatency(http: string, count: number): Promise<number> {
  const port = Number(http.split(":").pop());
  const request = new TextEncoder().encode(
    "POST / HTTP/1.1\r\nHost: soak.test\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping",
  );
  const times: number[] = [];
  const buf = new Uint8Array(4096);
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(request);
    let text = "";
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
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

async function slowlorisCheck(dir: string, deadline: number) {
  const echoHttp = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const { server, client } = await tunnelPair(dir, echoHttp.addr.port);
  const http = await server.proc.listeningAddr("http");
  const local = await client.listeningAddr("client");
  const baseline = await httpLatency(http, 200);
  const targets = [http, server.addr, local];
  const conns: Deno.Conn[] = [];
  for (const t of targets) {
    for (let i = 0; i < 1000; i++) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port: Number(t.split(":").pop()) });
        await c.write(new TextEncoder().encode("G"));
        conns.push(c);
      } catch {
        break; // refused: the listener protects itself, which is fine
      }
    }
  }
  const dribble = setInterval(() => {
    for (const c of conns) c.write(new Uint8Array([0x45])).catch(() => {});
  }, 2000);
  const under = await httpLatency(http, 200);
  const hold = Math.min(20_000, Math.max(0, deadline - performance.now()));
  await new Promise((r) => setTimeout(r, hold));
  const later = await httpLatency(http, 100);
  clearInterval(dribble);
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // closed by the server (handshake timeout): good
    }
  }
  const worst = Math.max(under, later);
  report({
    name: "slowloris (1,000 dribbling connections on each public listener)",
    pass: worst <= 2 * Math.max(baseline, 1),
    figures: {
      connections: conns.length,
      baseline_p50_ms: baseline,
      under_attack_p50_ms: under,
      later_p50_ms: later,
    },
  });
  await client.stop("SIGTERM");
  await server.proc.stop("SIGTERM");
  await echoHttp.shutdown();
}

async function rssCheck(dir: string, deadline: number) {
  const echo = startEcho();
  const { server, client, mappingPort } = await tunnelPair(dir, echo.port);
  const rng = new Prng(seed + 2);
  const phase = Math.max(20_000, deadline - performance.now());
  const warmUntil = performance.now() + phase / 3;
  let warm = { server: 0, client: 0 };
  let stop = false;
  const worker = async () => {
    while (!stop) await echoRound(mappingPort, 16 * 1024, rng).catch(() => false);
  };
  const workers = Array.from({ length: 8 }, worker);
  while (performance.now() < warmUntil) await new Promise((r) => setTimeout(r, 500));
  warm = { server: rssKiB(server.proc.child.pid), client: rssKiB(client.child.pid) };
  await new Promise((r) => setTimeout(r, (phase * 2) / 3));
  const end = { server: rssKiB(server.proc.child.pid), client: rssKiB(client.child.pid) };
  stop = true;
  await Promise.all(workers);
  const growth = (a: number, b: number) => (a === 0 ? 0 : (b - a) / a);
  report({
    name: "RSS flat under steady load (end within 10 % of after warm-up)",
    pass: growth(warm.server, end.server) <= 0.10 && growth(warm.client, end.client) <= 0.10,
    figures: {
      server_warm_mib: warm.server / 1024,
      server_end_mib: end.server / 1024,
      client_warm_mib: warm.client / 1024,
      client_end_mib: end.client / 1024,
    },
  });
  await client.stop("SIGTERM");
  await server.proc.stop("SIGTERM");
  await echo.close();
}

async function fuzzCheck(seconds: number) {
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
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  report({
    name: "fuzz (frames, control messages, SOCKS5, HTTP head, chunked, SNI)",
    pass: out.success,
    figures: { seconds, result: text },
  });
}

await using dir = await tempDir();
const share = (fraction: number) => performance.now() + budgetMs * fraction;
console.log(`soak: ${minutes} min, seed ${seed}`);
await streamsCheck(`${dir.path}/a`, share(0.25));
await stormCheck(`${dir.path}/b`, share(0.55));
await slowlorisCheck(`${dir.path}/c`, share(0.65));
await rssCheck(`${dir.path}/d`, share(0.9));
await fuzzCheck(Math.max(5, Math.round((budgetMs - (performance.now() - t0)) / 1000)));
const failed = checks.filter((c) => !c.pass).length;
console.log(
  `soak: ${checks.length - failed} passed, ${failed} failed in ${
    ((performance.now() - t0) / 60_000).toFixed(1)
  } min`,
);
if (values.json) {
  await Deno.writeTextFile(values.json, JSON.stringify({ minutes, seed, checks }, null, 2));
}
Deno.exit(failed === 0 ? 0 : 1);
