/**
 * chain_bulk (issue 4): one-connection bulk throughput through wmproxy's
 * chained proxy — bulk_client → wmproxy client's local port (CONNECT, and
 * SOCKS5 as an extra row) → TLS tunnel → wmproxy server → sink — next to
 * `ssh -N -D` (SOCKS5 over SSH to a loopback sshd) and a stunnel
 * client → stunnel server pair, all to the same bulk_sink. Target: the
 * CONNECT chain ≥ 1.2× ssh -D.
 *
 * @module
 */
import { startBulkSink, wmproxyProblem } from "../_peers.ts";
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
import {
  startSshd,
  startSshDynamic,
  startStunnelPair,
  startWmproxyTunnel,
  stoppable,
  stopServers,
  type WmproxyTunnel,
} from "../_tunnels.ts";
import { runBulkClient } from "./_bulk.ts";

const WM_CONNECT = "wmproxy chain CONNECT";
const WM_SOCKS = "wmproxy chain SOCKS5";
const SSH_D = "ssh -D SOCKS5";
const STUNNEL = "stunnel pair";
const DIRECT = "sink direct";

function firstLine(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0]! : String(error);
}

/** The chained-proxy bulk scenario. */
export const chainBulk: Scenario = {
  name: "chain_bulk",
  description:
    "bulk MB/s through the wmproxy tunnel (client CONNECT → server) vs ssh -D, stunnel " +
    "(≥ 1.2× ssh -D)",
  peers: ["sshd", "ssh", "stunnel"],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const mib = ctx.quick ? 128 : 2048;
    const stops: { stop(): Promise<void> }[] = [];
    try {
      const sink = await startBulkSink();
      stops.push(stoppable(sink));
      const sshd = await startSshd(ctx.tool("sshd"), `${ctx.dir}/ssh`);
      stops.push(stoppable(sshd));
      const sshD = await startSshDynamic(ctx.tool("ssh"), sshd);
      stops.push(stoppable(sshD));
      const stunnel = await startStunnelPair(ctx.tool("stunnel"), `${ctx.dir}/stunnel`, sink.addr);
      stops.push(stunnel);

      let tunnel: WmproxyTunnel | undefined;
      let wmError = await wmproxyProblem();
      if (wmError !== undefined) wmError = `skipped: ${wmError}`;
      else {
        try {
          tunnel = await startWmproxyTunnel({ dir: ctx.dir });
          stops.push(tunnel);
        } catch (error) {
          wmError = firstLine(error);
        }
      }
      const send = async (connect: string, proxy: "none" | "http" | "socks5", n = mib) =>
        (await runBulkClient({ connect, proxy, target: sink.addr, mib: n }, ctx.signal)).mbPerSec;

      const candidates: { name: string; connect: string; proxy: "none" | "http" | "socks5" }[] = [];
      // The short run leaves out the SOCKS5 variant and the ceiling row.
      if (tunnel !== undefined) {
        candidates.push({ name: WM_CONNECT, connect: tunnel.proxyAddr, proxy: "http" });
        if (!ctx.quick) {
          candidates.push({ name: WM_SOCKS, connect: tunnel.proxyAddr, proxy: "socks5" });
        }
      }
      candidates.push({ name: SSH_D, connect: sshD.addr, proxy: "socks5" });
      candidates.push({ name: STUNNEL, connect: stunnel.addr, proxy: "none" });
      if (!ctx.quick) candidates.push({ name: DIRECT, connect: sink.addr, proxy: "none" });

      // A small transfer first on every path: a broken path fails fast, not after 2 GiB
      // (the short run skips it: a failing run is reported as the row's error anyway).
      const broken = new Map<string, string>();
      const subjects: Subject<number>[] = [];
      for (const c of candidates) {
        try {
          if (!ctx.quick) await send(c.connect, c.proxy, 4);
          subjects.push({ name: c.name, run: () => send(c.connect, c.proxy) });
        } catch (error) {
          broken.set(c.name, firstLine(error));
        }
      }

      const result = await alternate(ctx, "chain_bulk", subjects);
      const rss: Record<string, { rssKiB(): Promise<number> }[]> = {
        [WM_CONNECT]: tunnel === undefined ? [] : [tunnel.client, tunnel.server],
        [SSH_D]: [sshD.process, sshd.process],
        [STUNNEL]: [stunnel.client, stunnel.server],
      };
      const rows: Row[] = [];
      for (const c of candidates) {
        const extra: Record<string, number[]> = {};
        const procs = rss[c.name];
        if (procs !== undefined && !broken.has(c.name)) {
          let kib = 0;
          for (const p of procs) kib += await p.rssKiB();
          extra.rssMiB = [kib / 1024];
        }
        const error = broken.get(c.name) ?? result.errors.get(c.name);
        rows.push(makeRow(c.name, "MB/s", result.samples.get(c.name) ?? [], {
          extra,
          details: (e) => e.rssMiB ? `RSS ${e.rssMiB.median.toFixed(0)} MiB (both ends)` : "",
          ...(error === undefined ? {} : { error }),
        }));
      }
      const byName = (n: string) => rows.find((r) => r.subject === n);
      const sshRow = byName(SSH_D)!;
      const stunnelRow = byName(STUNNEL)!;
      const directRow = byName(DIRECT);
      const wmRow = byName(WM_CONNECT);
      if (wmRow !== undefined) {
        setRatioTarget(wmRow, sshRow, 1.2);
        addRatio(wmRow, stunnelRow);
        if (directRow !== undefined) addRatio(wmRow, directRow);
        const socksRow = byName(WM_SOCKS);
        if (socksRow !== undefined) addRatio(socksRow, sshRow);
      } else {
        const row = makeRow(WM_CONNECT, "MB/s", [], { error: wmError ?? "no measurement" });
        row.target = { text: `≥ 1.2× ${SSH_D}`, met: null };
        rows.unshift(row);
      }
      if (directRow !== undefined) {
        addRatio(sshRow, directRow);
        addRatio(stunnelRow, directRow);
      }
      return {
        rows,
        notes: [
          `${mib} MiB per run, one connection, 1 MiB writes (bulk_client.ts) into bulk_sink.ts; ` +
          `MB = 10^6 bytes. wmproxy: client (--bind) → TLS tunnel → server → sink, the client's ` +
          `local port spoken to with CONNECT (target row) or SOCKS5; ssh -D: \`ssh -N -D\` to a ` +
          `loopback sshd (OpenSSH defaults, key auth), SOCKS5; stunnel: client → server ` +
          `(TLS 1.3, anchors.md B2) → sink, no proxy handshake`,
          "RSS after the last run, summed over both ends (wmproxy client + server, ssh + sshd " +
          "tree, both stunnels); the wmproxy server logs at warn level, the client at info",
          idleNote(result.idle),
        ],
      };
    } finally {
      await stopServers(stops);
    }
  },
};
