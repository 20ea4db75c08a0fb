/**
 * file_server: wrk keep-alive req/s for the same static files served by
 * wmproxy `file-server` and by nginx from the same root: the 612-byte page
 * and a 1 MiB file (also as MB/s). No DESIGN.md target: the ratio to nginx is
 * reported.
 *
 * @module
 */
import { type Server, startNginxOrigin, stopProcess, wmproxyProblem } from "../_peers.ts";
import { startWmproxyFileServer } from "../_http_peers.ts";
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
import type { WrkResult } from "../_wrk.ts";
import { latencyRssText, rssMiB, wrkChecked } from "./reverse_proxy.ts";

const MIB = 1 << 20;

/** Fetches `url` and checks for a 200 with `bytes` bytes. */
async function checkSize(url: string, bytes: number): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = await res.bytes();
  if (res.status !== 200 || body.length !== bytes) {
    throw new Error(
      `Cannot fetch ${url}: status ${res.status}, ${body.length} bytes instead of 200 with ${bytes}`,
    );
  }
}

/** The static file scenario. */
export const fileServer: Scenario = {
  name: "file_server",
  description: "wrk req/s for a 612-byte and a 1 MiB file from wmproxy file-server vs nginx " +
    "(same root; ratio only)",
  peers: ["wrk", "nginx"],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const wmProblem = await wmproxyProblem();
    if (wmProblem !== undefined) return skipped(wmProblem);
    const durationSec = ctx.quick ? 1 : 8;
    const started: Server[] = [];
    try {
      // nginx with the origin config (2 workers, default sendfile off) on its own root.
      const nginx = await startNginxOrigin(ctx.tool("nginx"), `${ctx.dir}/nginx`);
      started.push(nginx);
      const root = `${ctx.dir}/nginx/www`;
      const big = new Uint8Array(MIB);
      for (let i = 0; i < big.length; i += 65536) {
        crypto.getRandomValues(big.subarray(i, i + 65536));
      }
      await Deno.writeFile(`${root}/1m.bin`, big, { mode: 0o644 });
      const wm = await startWmproxyFileServer(root);
      started.push(wm);
      const files = [
        { path: "/612.html", bytes: 612, label: "612 B", connections: 50 },
        { path: "/1m.bin", bytes: MIB, label: "1 MiB", connections: 16 },
      ];
      for (const f of files) {
        await checkSize(`http://${nginx.addr}${f.path}`, f.bytes);
        await checkSize(`http://${wm.addr}${f.path}`, f.bytes);
      }
      const servers: [string, Server][] = [["wmproxy file-server", wm], ["nginx", nginx]];
      const rows: Row[] = [];
      const idle: number[] = [];
      for (const f of files) {
        const subjects: Subject<WrkResult>[] = servers.map(([name, s]) => ({
          name: `${name}, ${f.label}`,
          run: () => wrkChecked(ctx, `http://${s.addr}${f.path}`, durationSec, f.connections),
        }));
        const result = await alternate(ctx, `file_server ${f.label}`, subjects);
        idle.push(...result.idle);
        const pair: Row[] = [];
        for (const [i, s] of subjects.entries()) {
          const samples = result.samples.get(s.name) ?? [];
          const error = result.errors.get(s.name);
          const extra: Record<string, number[]> = {
            p50Ms: samples.map((x) => x.p50Ms),
            p99Ms: samples.map((x) => x.p99Ms),
            rssMiB: [await rssMiB(servers[i]![1])],
          };
          if (f.bytes >= MIB) extra.mbPerSec = samples.map((x) => x.requestsPerSec * f.bytes / 1e6);
          pair.push(makeRow(s.name, "req/s", samples.map((x) => x.requestsPerSec), {
            extra,
            details: latencyRssText,
            ...(error === undefined ? {} : { error }),
          }));
        }
        addRatio(pair[0]!, pair[1]!);
        rows.push(...pair);
      }
      return {
        rows,
        notes: [
          `wrk -t2 -d${durationSec}s --latency (keep-alive): -c50 for /612.html, -c16 for ` +
          `/1m.bin (1 MiB of random bytes; MB/s = req/s × 1,048,576 / 10^6). Both serve ` +
          `${root}; nginx: 2 workers, anchors.md B2 origin config (sendfile off by default)`,
          "RSS is read from /proc after the last run of each file",
          idleNote(idle),
        ],
      };
    } finally {
      for (const server of started) await stopProcess(server.process);
    }
  },
};
