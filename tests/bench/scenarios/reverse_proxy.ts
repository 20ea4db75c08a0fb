/**
 * reverse_proxy: wrk keep-alive req/s for nginx's 612-byte page through
 * wmproxy `reverse-proxy`, nginx `proxy_pass` (upstream keep-alive pool) and
 * haproxy in http mode (`http-reuse always`), all to the same nginx origin,
 * with nginx direct as the ceiling. Target (DESIGN.md §9): wmproxy ≥ 1.0×
 * haproxy req/s.
 *
 * @module
 */
import { type Server, stopProcess, wmproxyProblem } from "../_peers.ts";
import { startHaproxyHttp, startNginxProxy, startWmproxyReverse } from "../_http_peers.ts";
import {
  addRatio,
  alternate,
  idleNote,
  makeRow,
  type Row,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  setRatioTarget,
  skipped,
  type Subject,
} from "../_scenario.ts";
import type { Summary } from "../_stats.ts";
import { runWrk, wrkProblem, type WrkResult } from "../_wrk.ts";
import { checkPage, nginxOrigin } from "./forward_http.ts";

const WM = "wmproxy reverse-proxy";
const NGINX = "nginx proxy_pass";
const HAPROXY = "haproxy http";
const DIRECT = "nginx direct";

/** p50, p99 and RSS for the details column. */
export function latencyRssText(extra: Record<string, Summary>): string {
  const ms = (s: Summary) => s.median < 10 ? s.median.toFixed(2) : s.median.toFixed(1);
  const parts: string[] = [];
  if (extra.p50Ms) parts.push(`p50 ${ms(extra.p50Ms)} ms`);
  if (extra.p99Ms) parts.push(`p99 ${ms(extra.p99Ms)} ms`);
  if (extra.rssMiB) parts.push(`RSS ${extra.rssMiB.median.toFixed(0)} MiB`);
  if (extra.mbPerSec) parts.push(`${extra.mbPerSec.median.toFixed(0)} MB/s`);
  return parts.join(", ");
}

/** Runs wrk -t2 against `url` and throws when the run has too many errors. */
export async function wrkChecked(
  ctx: ScenarioContext,
  url: string,
  durationSec: number,
  connections = 50,
): Promise<WrkResult> {
  const result = await runWrk(url, {
    bin: ctx.tool("wrk"),
    threads: 2,
    connections,
    durationSec,
    signal: ctx.signal,
  });
  const problem = wrkProblem(result);
  if (problem !== undefined) throw new Error(`Cannot trust the wrk run: ${problem}`);
  return result;
}

/** RSS in MiB of a server's process tree (0 when it has exited). */
export async function rssMiB(server: Server): Promise<number> {
  return (await server.process.rssKiB()) / 1024;
}

/** The reverse-proxy scenario. */
export const reverseProxy: Scenario = {
  name: "reverse_proxy",
  description: "wrk req/s for a 612-byte page through wmproxy reverse-proxy vs nginx proxy_pass " +
    "and haproxy http to one nginx origin (≥ 1.0× haproxy)",
  peers: ["wrk", "nginx", "haproxy"],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const wmProblem = await wmproxyProblem();
    if (wmProblem !== undefined) return skipped(wmProblem);
    const durationSec = ctx.quick ? 1 : 8;
    const origin = await nginxOrigin(ctx);
    await checkPage(origin.url);
    const path = new URL(origin.url).pathname;
    const started: Server[] = [];
    try {
      const wm = await startWmproxyReverse(`http://${origin.addr}`);
      started.push(wm);
      await checkPage(`http://${wm.addr}${path}`);
      const nginx = await startNginxProxy(ctx.tool("nginx"), `${ctx.dir}/nginx-proxy`, origin.addr);
      started.push(nginx);
      await checkPage(`http://${nginx.addr}${path}`);
      const haproxy = await startHaproxyHttp(
        ctx.tool("haproxy"),
        `${ctx.dir}/haproxy`,
        origin.addr,
      );
      started.push(haproxy);
      await checkPage(`http://${haproxy.addr}${path}`);

      const servers: Record<string, Server> = {
        [WM]: wm,
        [NGINX]: nginx,
        [HAPROXY]: haproxy,
        [DIRECT]: origin,
      };
      const subjects: Subject<WrkResult>[] = Object.entries(servers).map(([name, s]) => ({
        name,
        run: () => wrkChecked(ctx, `http://${s.addr}${path}`, durationSec),
      }));
      const result = await alternate(ctx, "reverse_proxy", subjects);
      const rows: Row[] = [];
      for (const s of subjects) {
        const samples = result.samples.get(s.name) ?? [];
        const error = result.errors.get(s.name);
        rows.push(makeRow(s.name, "req/s", samples.map((x) => x.requestsPerSec), {
          extra: {
            p50Ms: samples.map((x) => x.p50Ms),
            p99Ms: samples.map((x) => x.p99Ms),
            rssMiB: [await rssMiB(servers[s.name]!)],
          },
          details: latencyRssText,
          ...(error === undefined ? {} : { error }),
        }));
      }
      const [wmRow, nginxRow, haRow, directRow] = rows as [Row, Row, Row, Row];
      setRatioTarget(wmRow, haRow, 1.0);
      addRatio(wmRow, nginxRow);
      addRatio(wmRow, directRow);
      addRatio(nginxRow, directRow);
      addRatio(haRow, directRow);
      return {
        rows,
        notes: [
          `wrk -t2 -c50 -d${durationSec}s --latency (keep-alive), GET ${path} (612 bytes) of the ` +
          `nginx origin ${origin.addr}: wmproxy \`reverse-proxy --to http://${origin.addr}\` ` +
          `(--log-level warn); nginx proxy_pass with proxy_http_version 1.1, Connection "" and ` +
          `upstream keepalive 64 (2 workers); haproxy 2.6 mode http, http-reuse always ` +
          `(its default threads)`,
          "RSS is read from /proc after the last run (process tree: nginx master + workers)",
          idleNote(result.idle),
        ],
      };
    } finally {
      for (const server of started) await stopProcess(server.process);
    }
  },
};
