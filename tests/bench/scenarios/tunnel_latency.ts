/**
 * tunnel_latency (issue 5): p50/p99 of 1 KB and 20 KB responses through the
 * tunnel, one connection, one request at a time (our own HTTP/1.1 client in
 * the runner, TCP_NODELAY on its socket), through a wmproxy HTTP mapping and
 * the chained proxy, next to `ssh -R` of the same nginx, with nginx direct as
 * the floor. The point: no 40 ms Nagle / delayed-ACK stall on the tunnel.
 * Target: p99 < 20 ms and no request ≥ 30 ms in any run.
 *
 * @module
 */
import { wmproxyProblem } from "../_peers.ts";
import {
  addRatio,
  alternate,
  idleNote,
  makeRow,
  type Row,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  skipped,
  type Subject,
} from "../_scenario.ts";
import type { Summary } from "../_stats.ts";
import {
  MappingsUnavailable,
  percentile,
  sequentialGets,
  startSshd,
  startSshRemote,
  startWmproxyTunnel,
  stoppable,
  stopServers,
  type WmproxyTunnel,
} from "../_tunnels.ts";
import { nginxOrigin } from "./forward_http.ts";
import { BENCH_HOST, checkMappedPage } from "./http_mapping.ts";

/** A request at or above this many ms counts as a stall. */
export const STALL_MS = 30;
/** The p99 a tunnel path must stay below. */
const P99_LIMIT_MS = 20;

/** What one sequential run measured. */
interface LatencySample {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  stalls: number;
  requests: number;
  reqPerSec: number;
}

function details(extra: Record<string, Summary>): string {
  const us = (s: Summary | undefined) =>
    s === undefined
      ? "?"
      : s.median < 1
      ? `${(s.median * 1000).toFixed(0)} µs`
      : `${s.median.toFixed(2)} ms`;
  const parts = [`p50 ${us(extra.p50Ms)}`, `max ${us(extra.maxMs)}`];
  if (extra.stalls) parts.push(`≥ ${STALL_MS} ms: ${extra.stalls.max} (worst run)`);
  if (extra.reqPerSec) parts.push(`${Math.round(extra.reqPerSec.median)} req/s`);
  return parts.join(", ");
}

function toSample(latencies: readonly number[], seconds: number): LatencySample {
  if (latencies.length === 0) throw new Error("Cannot measure: no request completed");
  return {
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: Math.max(...latencies),
    stalls: latencies.filter((x) => x >= STALL_MS).length,
    requests: latencies.length,
    reqPerSec: latencies.length / seconds,
  };
}

/** The tunnel latency scenario. */
export const tunnelLatency: Scenario = {
  name: "tunnel_latency",
  description: "p50/p99 of sequential 1 KB / 20 KB GETs on one connection through the wmproxy " +
    "tunnel vs ssh -R (no 40 ms stall)",
  peers: ["nginx", "sshd", "ssh"],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const wmProblem = await wmproxyProblem();
    if (wmProblem !== undefined) return skipped(wmProblem);
    const durationMs = ctx.quick ? 500 : 4000;
    const origin = await nginxOrigin(ctx);
    const sizes = [{ label: "1 KB", bytes: 1024 }, { label: "20 KB", bytes: 20 * 1024 }];
    for (const s of sizes) {
      await Deno.writeTextFile(`${ctx.rootDir}/origin/www/${s.bytes}.bin`, "y".repeat(s.bytes), {
        mode: 0o644,
      });
    }
    const stops: { stop(): Promise<void> }[] = [];
    try {
      let tunnel: WmproxyTunnel;
      try {
        tunnel = await startWmproxyTunnel({
          dir: ctx.dir,
          http: true,
          maps: [`web=http:${origin.addr}@${BENCH_HOST}`],
        });
      } catch (error) {
        if (error instanceof MappingsUnavailable) {
          return skipped("wmproxy mappings not available (no mapping_ready event)");
        }
        throw error;
      }
      stops.push(tunnel);
      const sshd = await startSshd(ctx.tool("sshd"), `${ctx.dir}/ssh`);
      stops.push(stoppable(sshd));
      const sshR = await startSshRemote(ctx.tool("ssh"), sshd, origin.addr);
      stops.push(stoppable(sshR));

      const paths = [
        { label: "wmproxy HTTP mapping", addr: tunnel.httpAddr!, host: BENCH_HOST, abs: false },
        { label: "wmproxy chain", addr: tunnel.proxyAddr, host: origin.addr, abs: true },
        { label: "ssh -R", addr: sshR.addr, host: origin.addr, abs: false },
      ];
      // The floor row is left out of the short run.
      if (!ctx.quick) {
        paths.push({ label: "nginx direct", addr: origin.addr, host: origin.addr, abs: false });
      }
      const subjects: Subject<LatencySample>[] = [];
      for (const size of sizes) {
        for (const p of paths) {
          const path = p.abs ? `http://${origin.addr}/${size.bytes}.bin` : `/${size.bytes}.bin`;
          await checkMappedPage(p.addr, path, p.host, size.bytes);
          subjects.push({
            name: `${p.label} ${size.label}`,
            run: async () => {
              const r = await sequentialGets(p.addr, path, p.host, {
                durationMs,
                maxRequests: 500_000,
                signal: ctx.signal,
              });
              if (r.bodyBytes !== size.bytes) {
                throw new Error(`Cannot trust the run: ${r.bodyBytes} bytes, not ${size.bytes}`);
              }
              return toSample(r.latenciesMs, r.seconds);
            },
          });
        }
      }
      const result = await alternate(ctx, "tunnel_latency", subjects);
      const rows: Row[] = subjects.map((s) => {
        const samples = result.samples.get(s.name) ?? [];
        const error = result.errors.get(s.name);
        return makeRow(s.name, "p99 ms", samples.map((x) => x.p99Ms), {
          higherIsBetter: false,
          extra: {
            p50Ms: samples.map((x) => x.p50Ms),
            maxMs: samples.map((x) => x.maxMs),
            stalls: samples.map((x) => x.stalls),
            reqPerSec: samples.map((x) => x.reqPerSec),
          },
          details,
          ...(error === undefined ? {} : { error }),
        });
      });
      const byName = (n: string) => rows.find((r) => r.subject === n)!;
      for (const size of sizes) {
        const ssh = byName(`ssh -R ${size.label}`);
        const direct = rows.find((r) => r.subject === `nginx direct ${size.label}`);
        for (const label of ["wmproxy HTTP mapping", "wmproxy chain"]) {
          const row = byName(`${label} ${size.label}`);
          addRatio(row, ssh);
          if (direct !== undefined) addRatio(row, direct);
          row.target = {
            text: `p99 < ${P99_LIMIT_MS} ms, none ≥ ${STALL_MS} ms`,
            met: row.summary === undefined
              ? null
              : row.summary.median < P99_LIMIT_MS && (row.extra.stalls?.max ?? 0) === 0,
          };
        }
        if (direct !== undefined) addRatio(ssh, direct);
      }
      return {
        rows,
        notes: [
          `one TCP connection per run, sequential GET /1024.bin and /20480.bin for ` +
          `${durationMs / 1000} s (keep-alive; the client in the bench runner sets TCP_NODELAY); ` +
          `main figure = p99 latency in ms (lower is better, so ratios < 1 favour the row); ` +
          `"≥ ${STALL_MS} ms" counts requests that hit a Nagle/delayed-ACK-sized stall`,
          `paths: wmproxy HTTP mapping (server --http port, Host: ${BENCH_HOST} → tunnel → ` +
          `client → nginx), wmproxy chain (absolute-form GET to the client's local port → ` +
          `tunnel → server → nginx), ssh -R of the nginx port (OpenSSH defaults), nginx direct`,
          idleNote(result.idle),
        ],
      };
    } finally {
      await stopServers(stops);
    }
  },
};
