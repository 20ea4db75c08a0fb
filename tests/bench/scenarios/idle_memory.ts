/**
 * idle_memory (DESIGN.md §9): resident memory per idle tunnelled connection.
 * N visitor connections are opened through a wmproxy TCP mapping to a LAN
 * service that holds them; the RSS growth of the server and of the client,
 * divided by N, is the cost of one idle connection on each side (after a
 * settle time). Target: ≤ 32 KiB per side at 1,000 and 5,000 connections
 * (5,000 exceeds one session's default 4,096 streams, so the quick run stops
 * at 1,000 and the full run uses 4,000).
 *
 * @module
 */
import {
  makeRow,
  type Row,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
} from "../_scenario.ts";
import { startWmproxyTunnel } from "../_tunnels.ts";

const TARGET_KIB = 32;

async function measure(
  ctx: ScenarioContext,
  count: number,
): Promise<{ server: number; client: number }> {
  const lan = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of lan) held.push(c);
  })().catch(() => {});
  const tunnel = await startWmproxyTunnel({
    dir: ctx.dir,
    maps: [`idle=tcp:127.0.0.1:${lan.addr.port}@:0`],
  });
  const visitors: Deno.Conn[] = [];
  try {
    const port = Number(tunnel.mappings.idle!.split(":").pop());
    await new Promise((r) => setTimeout(r, 1000));
    const before = { server: await tunnel.server.rssKiB(), client: await tunnel.client.rssKiB() };
    while (visitors.length < count) {
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
    const after = { server: await tunnel.server.rssKiB(), client: await tunnel.client.rssKiB() };
    return {
      server: (after.server - before.server) / count,
      client: (after.client - before.client) / count,
    };
  } finally {
    for (const v of visitors) v.close();
    await tunnel.stop();
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
  description: "RSS per idle tunnelled connection (server and client), 1,000 and 4,000 connections",
  peers: [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const rows: Row[] = [];
    for (const count of ctx.quick ? [1000] : [1000, 4000]) {
      const server: number[] = [];
      const client: number[] = [];
      for (let rep = 0; rep < Math.min(ctx.reps, 2); rep++) {
        await ctx.idleGate();
        const m = await measure(ctx, count);
        ctx.log(
          `idle_memory ${count} rep ${rep + 1}: server ${m.server.toFixed(1)} KiB, client ${
            m.client.toFixed(1)
          } KiB`,
        );
        server.push(m.server);
        client.push(m.client);
      }
      for (const [side, values] of [["server", server], ["client", client]] as const) {
        const row = makeRow(`wmproxy ${side}, ${count} conns`, "KiB/conn", values, {
          higherIsBetter: false,
        });
        const median = row.summary?.median;
        row.target = {
          text: `≤ ${TARGET_KIB} KiB/conn`,
          met: median === undefined ? null : median <= TARGET_KIB,
        };
        rows.push(row);
      }
    }
    return {
      rows,
      notes: ["idle_memory: visitors held open through a TCP mapping; RSS growth / connections"],
    };
  },
};
