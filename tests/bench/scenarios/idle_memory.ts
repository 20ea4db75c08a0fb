/**
 * idle_memory (DESIGN.md §9): resident memory per idle tunnelled connection.
 * N visitor connections are opened through wmproxy TCP mappings to a LAN
 * service that holds them; the RSS growth of the server and of the client(s),
 * divided by N, is the cost of one idle connection on each side (after a
 * settle time). Target: ≤ 32 KiB per side at 1,000 and 5,000 connections.
 *
 * One session carries at most 4,096 streams (DEFAULT_MAX_STREAMS, and the
 * client has no setting for it), so 5,000 connections are spread over two
 * clients of the same server, 2,500 each; the client figure is the growth of
 * both clients together per connection. The short run (`--quick`) measures
 * 1,000 only. The runner and its children hold 2 × N + N sockets, so the soft
 * open-file limit is raised first (children inherit it).
 *
 * @module
 */
import { raiseOpenFileLimit } from "../_rlimit.ts";
import {
  makeRow,
  type Row,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from "../_scenario.ts";
import { startWmproxyTunnel } from "../_tunnels.ts";

const TARGET_KIB = 32;
/** Streams per client session, below the 4,096 a session accepts. */
const PER_SESSION = 4000;

async function measure(
  ctx: ScenarioContext,
  count: number,
): Promise<{ server: number; client: number; sessions: number }> {
  const limit = raiseOpenFileLimit(2 * count + 1024);
  if (limit.problem !== undefined && (limit.soft ?? 0) < 2 * count + 256) {
    throw new Error(`Cannot hold ${count} connections: ${limit.problem}`);
  }
  const sessions = Math.ceil(count / PER_SESSION);
  const lan = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of lan) held.push(c);
  })().catch(() => {});
  const maps = Array.from(
    { length: sessions },
    (_, i) => [`idle${i + 1}=tcp:127.0.0.1:${lan.addr.port}@:0`],
  );
  const visitors: Deno.Conn[] = [];
  let tunnel;
  try {
    tunnel = await startWmproxyTunnel({
      dir: ctx.dir,
      maps: maps[0]!,
      moreClients: maps.slice(1),
    });
    const clients = [tunnel.client, ...tunnel.moreClients];
    const ports = maps.map((_, i) => Number(tunnel!.mappings[`idle${i + 1}`]!.split(":").pop()));
    const clientKiB = async () => {
      let kib = 0;
      for (const c of clients) kib += await c.rssKiB();
      return kib;
    };
    await new Promise((r) => setTimeout(r, 1000));
    const before = { server: await tunnel.server.rssKiB(), client: await clientKiB() };
    while (visitors.length < count) {
      const port = ports[visitors.length % ports.length]!;
      visitors.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    const deadline = Date.now() + 30_000;
    while (held.length < count && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (held.length < count) {
      throw new Error(`Cannot measure: only ${held.length} of ${count} connections arrived`);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const after = { server: await tunnel.server.rssKiB(), client: await clientKiB() };
    return {
      server: (after.server - before.server) / count,
      client: (after.client - before.client) / count,
      sessions,
    };
  } finally {
    for (const v of visitors) v.close();
    await tunnel?.stop();
    lan.close();
    await accepting;
    for (const h of held) {
      try {
        h.close();
      } catch {
        // closed by the tunnel going away
      }
    }
  }
}

/** The idle-memory scenario. */
export const idleMemory: Scenario = {
  name: "idle_memory",
  description: "RSS per idle tunnelled connection (server and client), 1,000 and 5,000 connections",
  peers: [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const rows: Row[] = [];
    const notes: string[] = [];
    for (const count of ctx.quick ? [1000] : [1000, 5000]) {
      const server: number[] = [];
      const client: number[] = [];
      let sessions = 1;
      let error: string | undefined;
      for (let rep = 0; rep < Math.min(ctx.reps, 2) && error === undefined; rep++) {
        await ctx.idleGate();
        try {
          const m = await measure(ctx, count);
          sessions = m.sessions;
          ctx.log(
            `idle_memory ${count} rep ${rep + 1}: server ${m.server.toFixed(1)} KiB, client ${
              m.client.toFixed(1)
            } KiB (${m.sessions} session${m.sessions === 1 ? "" : "s"})`,
          );
          server.push(m.server);
          client.push(m.client);
        } catch (e) {
          error = e instanceof Error ? e.message.split("\n")[0]! : String(e);
          ctx.log(`idle_memory ${count}: ${error}`);
        }
      }
      const conns = count.toLocaleString("en-US");
      for (const [side, values] of [["server", server], ["client", client]] as const) {
        const subject = side === "client" && sessions > 1
          ? `wmproxy ${sessions} clients, ${conns} conns`
          : `wmproxy ${side}, ${conns} conns`;
        const row = makeRow(subject, "KiB/conn", values, {
          higherIsBetter: false,
          ...(error === undefined ? {} : { error }),
        });
        const median = row.summary?.median;
        row.target = {
          text: `≤ ${TARGET_KIB} KiB/conn`,
          met: median === undefined ? null : median <= TARGET_KIB,
        };
        rows.push(row);
      }
      if (sessions > 1) {
        notes.push(
          `${conns} conns: spread over ${sessions} clients (sessions) of one server, since a ` +
            `session accepts at most 4,096 streams; the client row sums both clients' growth`,
        );
      }
    }
    const limit = raiseOpenFileLimit(0);
    notes.unshift(
      "visitors held open through TCP mappings; RSS growth (after 1.5 s settle) / connections; " +
        `open-file soft limit ${limit.soft ?? "unknown"} (raised by the runner when needed)`,
    );
    return { rows, notes };
  },
};
