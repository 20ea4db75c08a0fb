/**
 * Shared body of the bulk scenarios (connect_bulk, socks5_bulk): one sender
 * program (bulk_client.ts) and one sink process (bulk_sink.ts) for every path,
 * so only the relay in the middle differs: wmproxy with a proxy handshake,
 * `socat -b 262144` forwarding, and the sink direct as the ceiling.
 *
 * @module
 */
import {
  BULK_CLIENT,
  type Server,
  startBulkSink,
  startDante,
  startSocatForward,
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
import type { BulkResult } from "../bulk_client.ts";

/** Runs bulk_client.ts as its own process and returns its result line. */
export async function runBulkClient(
  args: { connect: string; proxy: "none" | "http" | "socks5"; target?: string; mib: number },
  signal: AbortSignal,
): Promise<BulkResult> {
  const argv = ["run", "-A", BULK_CLIENT, "--connect", args.connect, "--proxy", args.proxy];
  if (args.target !== undefined) argv.push("--target", args.target);
  argv.push("--mib", String(args.mib));
  const out = await new Deno.Command(Deno.execPath(), {
    args: argv,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.any([signal, AbortSignal.timeout(180_000)]),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ?? "";
    throw new Error(`Cannot send bulk data: bulk_client exited with code ${out.code}: ${stderr}`);
  }
  return JSON.parse(stdout.split("\n").at(-1)!) as BulkResult;
}

function memDetails(extra: Record<string, Summary>): string {
  const parts: string[] = [];
  if (extra.rssMiB) parts.push(`RSS ${extra.rssMiB.median.toFixed(0)} MiB`);
  if (extra.peakMiB) parts.push(`peak ${extra.peakMiB.median.toFixed(0)} MiB`);
  return parts.join(", ");
}

/** Builds a bulk scenario for one proxy protocol of wmproxy. */
export function bulkScenario(
  name: string,
  protocol: "http" | "socks5",
  description: string,
): Scenario {
  const wmName = protocol === "http" ? "wmproxy CONNECT" : "wmproxy SOCKS5";
  const socatName = "socat -b 262144";
  // The proxy a user would otherwise pick for this protocol (an extra row, no target).
  const other = protocol === "http"
    ? { tool: "squid" as const, name: "squid CONNECT", start: startSquid }
    : { tool: "danted" as const, name: "dante SOCKS5", start: startDante };
  return {
    name,
    description,
    peers: ["socat"],
    optionalPeers: [other.tool],
    async run(ctx: ScenarioContext): Promise<ScenarioResult> {
      const mib = ctx.quick ? 256 : 2048;
      const started: Server[] = [];
      try {
        const sink = await startBulkSink();
        started.push(sink);
        const socat = await startSocatForward(ctx.tool("socat"), sink.addr, 262_144);
        started.push(socat);
        let wmproxy: Server | undefined;
        let wmproxyError = await wmproxyProblem();
        if (wmproxyError !== undefined) wmproxyError = `skipped: ${wmproxyError}`;
        if (wmproxyError === undefined) {
          try {
            wmproxy = await startWmproxy();
            started.push(wmproxy);
          } catch (error) {
            wmproxyError = error instanceof Error ? error.message.split("\n")[0]! : String(error);
          }
        }
        let otherServer: Server | undefined;
        let otherError: string | undefined;
        const otherBin = ctx.optionalTool(other.tool);
        if (ctx.quick) otherError = "skipped: not in the short run (--quick)";
        else if (otherBin === undefined) {
          otherError = `skipped: ${ctx.tools.missing[other.tool]}`;
        } else {
          try {
            otherServer = await other.start(otherBin, `${ctx.dir}/${other.tool}`);
            started.push(otherServer);
          } catch (error) {
            otherError = error instanceof Error ? error.message.split("\n")[0]! : String(error);
          }
        }
        const send = async (connect: string, proxy: "none" | "http" | "socks5") =>
          (await runBulkClient({ connect, proxy, target: sink.addr, mib }, ctx.signal)).mbPerSec;

        // A small transfer first: a broken path fails fast instead of after 2 GiB.
        if (wmproxy !== undefined && !ctx.quick) {
          try {
            await runBulkClient(
              { connect: wmproxy.addr, proxy: protocol, target: sink.addr, mib: 4 },
              ctx.signal,
            );
          } catch (error) {
            wmproxyError = error instanceof Error ? error.message : String(error);
            await stopProcess(wmproxy.process);
            wmproxy = undefined;
          }
        }
        const subjects: Subject<number>[] = [];
        if (wmproxy !== undefined) {
          const addr = wmproxy.addr;
          subjects.push({ name: wmName, run: () => send(addr, protocol) });
        }
        subjects.push({ name: socatName, run: () => send(socat.addr, "none") });
        if (otherServer !== undefined) {
          const addr = otherServer.addr;
          subjects.push({ name: other.name, run: () => send(addr, protocol) });
        }
        // The ceiling row is left out of the short run.
        if (!ctx.quick) subjects.push({ name: "sink direct", run: () => send(sink.addr, "none") });

        const result = await alternate(ctx, name, subjects);
        const rows: Row[] = [];
        for (const s of subjects) {
          const server = s.name === wmName
            ? wmproxy
            : s.name === socatName
            ? socat
            : s.name === other.name
            ? otherServer
            : undefined;
          const extra: Record<string, number[]> = {};
          if (server !== undefined) {
            extra.rssMiB = [(await server.process.rssKiB()) / 1024];
            if (server === wmproxy) extra.peakMiB = [(await server.process.peakRssKiB()) / 1024];
          }
          const error = result.errors.get(s.name);
          rows.push(makeRow(s.name, "MB/s", result.samples.get(s.name) ?? [], {
            extra,
            details: memDetails,
            ...(error === undefined ? {} : { error }),
          }));
        }
        const socatRow = rows.find((r) => r.subject === socatName)!;
        const directRow = rows.find((r) => r.subject === "sink direct");
        const otherRow = rows.find((r) => r.subject === other.name);
        const wmRow = rows.find((r) => r.subject === wmName);
        if (wmRow !== undefined) {
          setRatioTarget(wmRow, socatRow, 0.9);
          if (otherRow !== undefined) addRatio(wmRow, otherRow);
          if (directRow !== undefined) addRatio(wmRow, directRow);
        } else {
          const row = makeRow(wmName, "MB/s", [], { error: wmproxyError ?? "no measurement" });
          row.target = { text: `≥ 0.9× ${socatName}`, met: null };
          rows.unshift(row);
        }
        if (directRow !== undefined) addRatio(socatRow, directRow);
        if (otherRow !== undefined) addRatio(otherRow, socatRow);
        else if (otherError !== undefined) {
          rows.push(makeRow(other.name, "MB/s", [], { error: otherError }));
        }
        return {
          rows,
          notes: [
            `${mib} MiB per run, one connection, 1 MiB writes (bulk_client.ts) into a 1 MiB-read ` +
            `sink (bulk_sink.ts), each its own process; timed from the first byte to the sink's ` +
            `byte count; MB = 10^6 bytes`,
            idleNote(result.idle),
          ],
        };
      } finally {
        for (const server of started.reverse()) await stopProcess(server.process);
      }
    },
  };
}
