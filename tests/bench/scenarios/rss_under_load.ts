/**
 * rss_under_load (DESIGN.md §9 "RSS flat (±10%) over 30 s at 1000 req/s"):
 * a paced load of 1,000 req/s over a few keep-alive connections through a
 * wmproxy HTTP mapping (server --http → TLS tunnel → client → nginx's 612-byte
 * page), with the resident memory of the server and of the client sampled
 * every second. Judged: the RSS at the end is within ±10 % of the RSS after
 * the first 5 s (warm-up), on each side. Also reported: start, max, achieved
 * req/s and p50/p99.
 *
 * @module
 */
import { delay, wmproxyProblem } from "../_peers.ts";
import {
  makeRow,
  type Row,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  skipped,
} from "../_scenario.ts";
import type { Summary } from "../_stats.ts";
import { MappingsUnavailable, percentile, startWmproxyTunnel } from "../_tunnels.ts";
import { checkPage, nginxOrigin } from "./forward_http.ts";
import { BENCH_HOST, checkMappedPage } from "./http_mapping.ts";

const RATE = 1000;
const CONNECTIONS = 4;
/** Seconds of warm-up before the reference RSS sample (the short run: 3). */
const WARMUP_SAMPLE = 5;
const TOLERANCE = 10;

/** What a paced load achieved. */
export interface PacedResult {
  /** Responses received (200 with the full body). */
  completed: number;
  /** Connections that failed (each stops its share of the load). */
  errors: string[];
  /** Wall time of the load in seconds. */
  seconds: number;
  /** Per-request latency from the write of the request to the end of the body, ms. */
  latenciesMs: number[];
  /** Requests sent more than 10 ms after their scheduled time (the load fell behind). */
  late: number;
}

/** Options for {@linkcode pacedLoad}. */
export interface PacedOptions {
  /** Requests per second over all connections. */
  rate: number;
  /** Keep-alive connections sharing the rate. */
  connections: number;
  /** Length of the load. */
  durationMs: number;
  signal?: AbortSignal;
}

const HEADER_END = new Uint8Array([13, 10, 13, 10]);

function indexOfHeadEnd(buf: Uint8Array, end: number): number {
  outer: for (let i = 0; i + 4 <= end; i++) {
    for (let j = 0; j < 4; j++) if (buf[i + j] !== HEADER_END[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Sends `GET path` with `Host: host` to `addr` at a fixed rate over a few
 * keep-alive HTTP/1.1 connections (one request in flight per connection;
 * connection c sends request k at t0 + (k·connections + c) / rate). Bounded:
 * it stops at `durationMs` and after `rate × durationMs / 1000` requests, and
 * a connection that makes no progress for 10 s is closed.
 */
export async function pacedLoad(
  addr: string,
  path: string,
  host: string,
  options: PacedOptions,
): Promise<PacedResult> {
  const { rate, connections, durationMs } = options;
  const total = Math.floor((rate * durationMs) / 1000);
  const request = new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: wmproxy-bench\r\n\r\n`,
  );
  const i = addr.lastIndexOf(":");
  const target = { hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
  const result: PacedResult = { completed: 0, errors: [], seconds: 0, latenciesMs: [], late: 0 };
  const t0 = performance.now() + 50;
  const worker = async (c: number) => {
    const conn = await Deno.connect(target);
    conn.setNoDelay(true);
    const buf = new Uint8Array(64 * 1024);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        try {
          conn.close();
        } catch { /* closed */ }
      }, 10_000);
    };
    try {
      for (let k = 0;; k++) {
        const index = k * connections + c;
        if (index >= total) break;
        const at = t0 + (index * 1000) / rate;
        if (at - t0 >= durationMs) break;
        if (options.signal?.aborted) throw new Error("Cannot continue: interrupted");
        const wait = at - performance.now();
        if (wait > 0) await delay(wait);
        const start = performance.now();
        if (start - at > 10) result.late++;
        arm();
        let off = 0;
        while (off < request.length) off += await conn.write(request.subarray(off));
        let have = 0;
        let headEnd = -1;
        while (headEnd < 0) {
          const n = await conn.read(buf.subarray(have));
          if (n === null) throw new Error("connection closed before a response");
          have += n;
          headEnd = indexOfHeadEnd(buf, have);
          if (headEnd < 0 && have === buf.length) throw new Error("response head too big");
        }
        const head = new TextDecoder().decode(buf.subarray(0, headEnd));
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
        if (status !== "200" || length === undefined) {
          throw new Error(`unusable response: ${head.split("\r\n")[0]}`);
        }
        let remaining = headEnd + 4 + Number(length) - have;
        while (remaining > 0) {
          const n = await conn.read(buf);
          if (n === null) throw new Error("connection closed in a body");
          remaining -= n;
        }
        if (remaining < 0) throw new Error("more bytes than Content-Length");
        result.latenciesMs.push(performance.now() - start);
        result.completed++;
      }
    } catch (error) {
      result.errors.push(`connection ${c}: ${error instanceof Error ? error.message : error}`);
    } finally {
      clearTimeout(timer);
      try {
        conn.close();
      } catch { /* closed by the watchdog */ }
    }
  };
  await Promise.all(Array.from({ length: connections }, (_, c) => worker(c)));
  result.seconds = Math.max(0, (performance.now() - t0) / 1000);
  return result;
}

/** RSS figures of one side over one run, in MiB. */
interface RssTrace {
  start: number;
  warm: number;
  max: number;
  end: number;
  /** (end − warm) / warm, in %. */
  driftPct: number;
}

function trace(samplesKiB: readonly number[], warmSample: number): RssTrace {
  const mib = samplesKiB.map((k) => k / 1024);
  const start = mib[0] ?? 0;
  const warm = mib[Math.min(warmSample, mib.length - 1)] ?? 0;
  const end = mib[mib.length - 1] ?? 0;
  return {
    start,
    warm,
    max: Math.max(...mib),
    end,
    driftPct: warm > 0 ? ((end - warm) / warm) * 100 : 0,
  };
}

function rssText(extra: Record<string, Summary>, warmSample: number): string {
  const f = (k: string) => extra[k]?.median.toFixed(1) ?? "?";
  return `start ${f("start")}, after ${warmSample} s ${f("warm")}, max ${f("max")}, end ${
    f("end")
  } MiB`;
}

function loadText(extra: Record<string, Summary>): string {
  const ms = (s: Summary | undefined) =>
    s === undefined ? "?" : s.median < 10 ? s.median.toFixed(2) : s.median.toFixed(1);
  const parts = [`p50 ${ms(extra.p50Ms)} ms`, `p99 ${ms(extra.p99Ms)} ms`];
  if (extra.late && extra.late.max > 0) parts.push(`late sends ${extra.late.median.toFixed(0)}`);
  if (extra.errors && extra.errors.max > 0) {
    parts.push(`failed connections ${extra.errors.max.toFixed(0)}`);
  }
  return parts.join(", ");
}

/** The RSS-under-load scenario. */
export const rssUnderLoad: Scenario = {
  name: "rss_under_load",
  description: "wmproxy server + client RSS every second under a paced 1,000 req/s through an " +
    "HTTP mapping (flat within ±10 %)",
  peers: ["nginx"],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const wmProblem = await wmproxyProblem();
    if (wmProblem !== undefined) return skipped(wmProblem);
    const durationSec = ctx.quick ? 8 : 30;
    const warmSample = ctx.quick ? 3 : WARMUP_SAMPLE;
    const runs = ctx.quick ? 1 : Math.min(ctx.reps, 2);
    const origin = await nginxOrigin(ctx);
    await checkPage(origin.url);
    const path = new URL(origin.url).pathname;
    const server: RssTrace[] = [];
    const client: RssTrace[] = [];
    const loads: PacedResult[] = [];
    const idle: number[] = [];
    for (let run = 0; run < runs; run++) {
      idle.push(await ctx.idleGate());
      let tunnel;
      try {
        tunnel = await startWmproxyTunnel({
          dir: `${ctx.dir}/run${run}`,
          http: true,
          maps: [`web=http:${origin.addr}@${BENCH_HOST}`],
        });
      } catch (error) {
        if (error instanceof MappingsUnavailable) {
          return skipped("wmproxy mappings not available (no mapping_ready event)");
        }
        throw error;
      }
      try {
        const httpAddr = tunnel.httpAddr!;
        await checkMappedPage(httpAddr, path, BENCH_HOST, 612);
        const serverKiB: number[] = [];
        const clientKiB: number[] = [];
        const sample = async () => {
          serverKiB.push(await tunnel.server.rssKiB());
          clientKiB.push(await tunnel.client.rssKiB());
        };
        await sample();
        let done = false;
        const load = pacedLoad(httpAddr, path, BENCH_HOST, {
          rate: RATE,
          connections: CONNECTIONS,
          durationMs: durationSec * 1000,
          signal: ctx.signal,
        }).finally(() => done = true);
        // One sample per second while the load runs (bounded by its duration + 15 s).
        const t0 = performance.now();
        for (let s = 1; s <= durationSec + 15 && !done; s++) {
          const wait = t0 + s * 1000 - performance.now();
          if (wait > 0) await Promise.race([delay(wait), load.catch(() => {})]);
          if (done) break;
          await sample();
        }
        const r = await load;
        await sample();
        const st = trace(serverKiB, warmSample);
        const ct = trace(clientKiB, warmSample);
        server.push(st);
        client.push(ct);
        loads.push(r);
        ctx.log(
          `rss_under_load run ${run + 1}/${runs}: ${(r.completed / r.seconds).toFixed(0)} req/s, ` +
            `server ${st.warm.toFixed(1)}→${st.end.toFixed(1)} MiB (${
              st.driftPct.toFixed(1)
            } %), ` +
            `client ${ct.warm.toFixed(1)}→${ct.end.toFixed(1)} MiB (${ct.driftPct.toFixed(1)} %)` +
            (r.errors.length > 0 ? `, errors: ${r.errors.join("; ")}` : ""),
        );
      } finally {
        await tunnel.stop();
      }
    }
    const rows: Row[] = [];
    for (const [side, traces] of [["server", server], ["client", client]] as const) {
      const row = makeRow(
        `wmproxy ${side} RSS drift`,
        "%",
        traces.map((t) => t.driftPct),
        {
          higherIsBetter: false,
          extra: {
            start: traces.map((t) => t.start),
            warm: traces.map((t) => t.warm),
            max: traces.map((t) => t.max),
            end: traces.map((t) => t.end),
          },
          details: (extra) => rssText(extra, warmSample),
        },
      );
      row.target = {
        text: `end within ±${TOLERANCE} % of ${warmSample} s`,
        met: traces.length === 0 ? null : traces.every((t) => Math.abs(t.driftPct) <= TOLERANCE),
      };
      rows.push(row);
    }
    const loadRow = makeRow(
      "paced load achieved",
      "req/s",
      loads.map((r) => r.completed / r.seconds),
      {
        extra: {
          p50Ms: loads.map((r) => percentile(r.latenciesMs, 50)),
          p99Ms: loads.map((r) => percentile(r.latenciesMs, 99)),
          late: loads.map((r) => r.late),
          errors: loads.map((r) => r.errors.length),
        },
        details: loadText,
      },
    );
    rows.push(loadRow);
    const errors = loads.flatMap((r) => r.errors);
    return {
      rows,
      notes: [
        `${runs} run(s) of ${durationSec} s, each on a fresh tunnel: ${RATE} req/s paced over ` +
        `${CONNECTIONS} keep-alive connections (one request in flight each) to the server's ` +
        `--http port, Host: ${BENCH_HOST} → TLS tunnel → client → nginx ${path} (612 bytes). ` +
        `RSS of each process tree sampled every second from /proc: drift = (end − after ` +
        `${warmSample} s) / after ${warmSample} s; latency from the request write to the end of the body`,
        ...(errors.length > 0 ? [`load errors: ${errors.join("; ")}`] : []),
        `CPU idle before runs: ${idle.map((x) => x.toFixed(0)).join(", ")} %`,
      ],
    };
  },
};
