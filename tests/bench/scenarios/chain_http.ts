/**
 * chain_http (issue 4): wrk absolute-form req/s through wmproxy's chained
 * proxy (client local port → TLS tunnel → server → nginx). wrk cannot speak
 * SOCKS, so the SSH peer is squid reached through an `ssh -L` forward (wrk →
 * ssh -L → sshd → squid → nginx): an HTTP forward proxy behind an encrypted
 * tunnel, like the chain. wmproxy's plain forward proxy (no tunnel) and
 * nginx direct are the reference rows. No target is set in DESIGN.md §9 for
 * this path; ratios are reported.
 *
 * @module
 */
import { type Server, startSquid, startWmproxy, stopProcess, wmproxyProblem } from "../_peers.ts";
import {
  addRatio,
  alternate,
  idleNote,
  makeRow,
  type Row,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  type Subject,
} from "../_scenario.ts";
import type { Summary } from "../_stats.ts";
import {
  startSshd,
  startSshLocal,
  startWmproxyTunnel,
  stoppable,
  stopServers,
  type WmproxyTunnel,
} from "../_tunnels.ts";
import { absoluteFormScript, runWrk, wrkProblem, type WrkResult } from "../_wrk.ts";
import { checkPage, nginxOrigin } from "./forward_http.ts";

const WM_CHAIN = "wmproxy chain";
const SQUID_SSH = "squid via ssh -L";
const WM_PROXY = "wmproxy proxy (no tunnel)";
const SQUID = "squid (no tunnel)";
const DIRECT = "nginx direct";

function firstLine(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0]! : String(error);
}

/** p50/p99 text for the details column. */
export function latencyText(extra: Record<string, Summary>): string {
  const ms = (s: Summary) => s.median < 10 ? s.median.toFixed(2) : s.median.toFixed(1);
  const parts: string[] = [];
  if (extra.p50Ms) parts.push(`p50 ${ms(extra.p50Ms)} ms`);
  if (extra.p99Ms) parts.push(`p99 ${ms(extra.p99Ms)} ms`);
  return parts.join(", ");
}

/** The chained-proxy HTTP scenario. */
export const chainHttp: Scenario = {
  name: "chain_http",
  description: "wrk absolute-form req/s through the wmproxy tunnel (client → server) vs squid " +
    "behind ssh -L",
  peers: ["wrk", "nginx", "squid", "sshd", "ssh"],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const durationSec = ctx.quick ? 1 : 8;
    const origin = await nginxOrigin(ctx);
    await checkPage(origin.url);
    const script = `${ctx.dir}/proxy-abs.lua`;
    await Deno.writeTextFile(script, absoluteFormScript(origin.url));
    const stops: { stop(): Promise<void> }[] = [];
    try {
      const squid = await startSquid(ctx.tool("squid"), `${ctx.dir}/squid`);
      stops.push(stoppable(squid));
      const sshd = await startSshd(ctx.tool("sshd"), `${ctx.dir}/ssh`);
      stops.push(stoppable(sshd));
      const sshL = await startSshLocal(ctx.tool("ssh"), sshd, squid.addr);
      stops.push(stoppable(sshL));
      await checkPage(origin.url, sshL.addr);

      let tunnel: WmproxyTunnel | undefined;
      let proxy: Server | undefined;
      let wmError = await wmproxyProblem();
      if (wmError !== undefined) wmError = `skipped: ${wmError}`;
      else {
        try {
          tunnel = await startWmproxyTunnel({ dir: ctx.dir });
          stops.push(tunnel);
          await checkPage(origin.url, tunnel.proxyAddr);
        } catch (error) {
          wmError = firstLine(error);
          tunnel = undefined;
        }
        // The short run leaves out the reference rows (no tunnel, direct).
        try {
          if (!ctx.quick) {
            proxy = await startWmproxy();
            stops.push(stoppable(proxy));
            await checkPage(origin.url, proxy.addr);
          }
        } catch {
          if (proxy !== undefined) await stopProcess(proxy.process);
          proxy = undefined;
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
      if (tunnel !== undefined) {
        const addr = tunnel.proxyAddr;
        subjects.push({ name: WM_CHAIN, run: () => wrk(`http://${addr}`, true) });
      }
      subjects.push({ name: SQUID_SSH, run: () => wrk(`http://${sshL.addr}`, true) });
      if (proxy !== undefined) {
        const addr = proxy.addr;
        subjects.push({ name: WM_PROXY, run: () => wrk(`http://${addr}`, true) });
      }
      if (!ctx.quick) {
        subjects.push({ name: SQUID, run: () => wrk(`http://${squid.addr}`, true) });
        subjects.push({ name: DIRECT, run: () => wrk(origin.url, false) });
      }

      const result = await alternate(ctx, "chain_http", subjects);
      const rows: Row[] = [];
      for (const s of subjects) {
        const samples = result.samples.get(s.name) ?? [];
        const error = result.errors.get(s.name);
        rows.push(makeRow(s.name, "req/s", samples.map((x) => x.requestsPerSec), {
          extra: { p50Ms: samples.map((x) => x.p50Ms), p99Ms: samples.map((x) => x.p99Ms) },
          details: latencyText,
          ...(error === undefined ? {} : { error }),
        }));
      }
      const byName = (n: string) => rows.find((r) => r.subject === n);
      const sshRow = byName(SQUID_SSH)!;
      const directRow = byName(DIRECT);
      const squidRow = byName(SQUID);
      const wmRow = byName(WM_CHAIN);
      const proxyRow = byName(WM_PROXY);
      if (wmRow !== undefined) {
        addRatio(wmRow, sshRow);
        if (proxyRow !== undefined) addRatio(wmRow, proxyRow);
        if (directRow !== undefined) addRatio(wmRow, directRow);
      } else {
        rows.unshift(makeRow(WM_CHAIN, "req/s", [], { error: wmError ?? "no measurement" }));
      }
      if (squidRow !== undefined) addRatio(sshRow, squidRow);
      if (directRow !== undefined) addRatio(sshRow, directRow);
      if (proxyRow !== undefined && squidRow !== undefined) addRatio(proxyRow, squidRow);
      return {
        rows,
        notes: [
          `wrk -t2 -c50 -d${durationSec}s --latency, absolute-form GET of ${origin.url} ` +
          `(612 bytes). wrk cannot speak SOCKS, so ssh -D is not measurable here: the SSH peer ` +
          `is squid behind \`ssh -N -L\` (wrk → ssh → sshd → squid → nginx). "${WM_PROXY}" ` +
          `(wmproxy --mode proxy) and "${SQUID}" show what each tunnel costs; no target for this path in ` +
          `DESIGN.md §9 (issue 4's ≥ 1.2× ssh applies to chain_bulk)`,
          idleNote(result.idle),
        ],
      };
    } finally {
      await stopServers(stops);
    }
  },
};
