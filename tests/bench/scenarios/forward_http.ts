/**
 * forward_http: wrk absolute-form requests through wmproxy and through squid to
 * the same nginx origin (a 612-byte page), with nginx direct as the ceiling.
 * Target (DESIGN.md §9): wmproxy ≥ 2.0× squid req/s.
 *
 * @module
 */
import {
  type NginxOrigin,
  type Server,
  startNginxOrigin,
  startSquid,
  startWmproxy,
  stopProcess,
  wmproxyProblem,
} from "../_peers.ts";
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
  type Subject,
} from "../_scenario.ts";
import type { Summary } from "../_stats.ts";
import { absoluteFormScript, runWrk, wrkProblem, type WrkResult } from "../_wrk.ts";

/** The shared nginx origin (also for later reverse-proxy and tunnel scenarios). */
export function nginxOrigin(ctx: ScenarioContext): Promise<NginxOrigin> {
  return ctx.shared(
    "nginx_origin",
    () => startNginxOrigin(ctx.tool("nginx"), `${ctx.rootDir}/origin`),
  );
}

/** Fetches `url` once through `proxyAddr` (or directly) and checks for a 200 with 612 bytes. */
export async function checkPage(url: string, proxyAddr?: string): Promise<void> {
  const client = proxyAddr === undefined
    ? undefined
    : Deno.createHttpClient({ proxy: { url: `http://${proxyAddr}` } });
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(10_000),
      ...(client === undefined ? {} : { client }),
    });
    const body = await res.bytes();
    if (res.status !== 200 || body.length !== 612) {
      throw new Error(
        `Cannot fetch ${url}${proxyAddr === undefined ? "" : ` through ${proxyAddr}`}: ` +
          `status ${res.status}, ${body.length} bytes instead of 200 with 612`,
      );
    }
  } finally {
    client?.close();
  }
}

function latencyDetails(extra: Record<string, Summary>): string {
  const parts: string[] = [];
  const ms = (s: Summary) => s.median < 10 ? s.median.toFixed(2) : s.median.toFixed(1);
  if (extra.p50Ms) parts.push(`p50 ${ms(extra.p50Ms)} ms`);
  if (extra.p99Ms) parts.push(`p99 ${ms(extra.p99Ms)} ms`);
  if (extra.rssMiB) parts.push(`RSS ${extra.rssMiB.median.toFixed(0)} MiB`);
  if (extra.peakMiB) parts.push(`peak ${extra.peakMiB.median.toFixed(0)} MiB`);
  return parts.join(", ");
}

async function rssMiB(server: Server): Promise<number> {
  return (await server.process.rssKiB()) / 1024;
}

/** The forward HTTP proxy scenario. */
export const forwardHttp: Scenario = {
  name: "forward_http",
  description:
    "wrk absolute-form req/s through wmproxy vs squid to one nginx origin (≥ 2.0× squid)",
  peers: ["wrk", "nginx", "squid"],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const notes: string[] = [];
    const durationSec = ctx.quick ? 1 : 8;
    const origin = await nginxOrigin(ctx);
    await checkPage(origin.url);
    const script = `${ctx.dir}/proxy-abs.lua`;
    await Deno.writeTextFile(script, absoluteFormScript(origin.url));

    const started: Server[] = [];
    try {
      const squid = await startSquid(ctx.tool("squid"), `${ctx.dir}/squid`);
      started.push(squid);
      await checkPage(origin.url, squid.addr);

      let wmproxy: Server | undefined;
      let wmproxyError = await wmproxyProblem();
      if (wmproxyError !== undefined) wmproxyError = `skipped: ${wmproxyError}`;
      if (wmproxyError === undefined) {
        try {
          wmproxy = await startWmproxy();
          started.push(wmproxy);
          await checkPage(origin.url, wmproxy.addr);
        } catch (error) {
          wmproxyError = error instanceof Error ? error.message.split("\n")[0]! : String(error);
        }
      }

      const wrk = async (url: string, withScript: boolean): Promise<WrkResult> => {
        const result = await runWrk(url, {
          bin: ctx.tool("wrk"),
          threads: 2,
          connections: 50,
          durationSec,
          signal: ctx.signal,
          ...(withScript ? { script } : {}),
        });
        const problem = wrkProblem(result);
        if (problem !== undefined) throw new Error(`Cannot trust the wrk run: ${problem}`);
        return result;
      };
      const subjects: Subject<WrkResult>[] = [];
      if (wmproxy !== undefined) {
        const addr = wmproxy.addr;
        subjects.push({ name: "wmproxy", run: () => wrk(`http://${addr}`, true) });
      }
      subjects.push({ name: "squid", run: () => wrk(`http://${squid.addr}`, true) });
      // The ceiling row is left out of the short run.
      if (!ctx.quick) subjects.push({ name: "nginx direct", run: () => wrk(origin.url, false) });

      const result = await alternate(ctx, "forward_http", subjects);
      const rss: Record<string, Server[]> = {
        wmproxy: wmproxy === undefined ? [] : [wmproxy],
        squid: [squid],
        "nginx direct": [origin],
      };
      const rows: Row[] = [];
      for (const s of subjects) {
        const samples = result.samples.get(s.name) ?? [];
        const mem: number[] = [];
        const peak: number[] = [];
        for (const server of rss[s.name] ?? []) {
          mem.push(await rssMiB(server));
          if (s.name === "wmproxy") peak.push((await server.process.peakRssKiB()) / 1024);
        }
        const error = result.errors.get(s.name);
        rows.push(makeRow(s.name, "req/s", samples.map((x) => x.requestsPerSec), {
          extra: {
            p50Ms: samples.map((x) => x.p50Ms),
            p99Ms: samples.map((x) => x.p99Ms),
            rssMiB: mem,
            peakMiB: peak,
          },
          details: latencyDetails,
          ...(error === undefined ? {} : { error }),
        }));
      }
      const byName = (n: string) => rows.find((r) => r.subject === n);
      const squidRow = byName("squid")!;
      const directRow = byName("nginx direct");
      const wmRow = byName("wmproxy");
      if (wmRow !== undefined) {
        setRatioTarget(wmRow, squidRow, 2.0);
        if (directRow !== undefined) addRatio(wmRow, directRow);
      } else {
        const row = makeRow("wmproxy", "req/s", [], { error: wmproxyError ?? "no measurement" });
        row.target = { text: "≥ 2.0× squid", met: null };
        rows.unshift(row);
      }
      if (directRow !== undefined) addRatio(squidRow, directRow);
      notes.push(
        `wrk -t2 -c50 -d${durationSec}s --latency, absolute-form GET of ${origin.url} (612 bytes)` +
          ` through each proxy; "nginx direct" is the same page without a proxy`,
        "RSS is read from /proc after the last run (process tree: squid, nginx master + workers)",
        idleNote(result.idle),
      );
      return { rows, notes };
    } finally {
      for (const server of started) await stopProcess(server.process);
    }
  },
};
