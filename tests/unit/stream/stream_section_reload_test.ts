import assert from "node:assert/strict";
import { completeStreamSection, type StreamServerInput } from "@/config/stream_section.ts";
import type { UpstreamGroupInput } from "@/config/upstream_section.ts";
import { startStreamSection } from "@/stream/mod.ts";
import { hostPort, readN, startTcpEcho, testLog, until } from "./_helpers.ts";

function config(servers: StreamServerInput[], upstreams: UpstreamGroupInput[] = []) {
  return completeStreamSection({ upstreams, servers });
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function echoOnce(conn: Deno.Conn, text: string): Promise<string> {
  await conn.write(enc.encode(text));
  return dec.decode(await readN(conn, text.length));
}

Deno.test("StreamSection.update() keeps unchanged servers, updates one in place and reports a failed bind", async () => {
  await using e1 = startTcpEcho();
  await using e2 = startTcpEcho();
  await using e3 = startTcpEcho();
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { log } = testLog();
  const a = { listen: "127.0.0.1:0", target: e1.addr };
  const b = { listen: "127.0.0.1:0", target: e2.addr, idle_timeout: 60_000 };
  await using section = await startStreamSection(config([a, b]), { log });
  const [addrA, addrB] = section.listeners.map((l) => l.addr) as [string, string];
  const viaA = await Deno.connect(hostPort(addrA));
  const viaB = await Deno.connect(hostPort(addrB));
  try {
    assert.equal(await echoOnce(viaA, "a1"), "a1");
    assert.equal(await echoOnce(viaB, "b1"), "b1");

    const report = await section.update(
      config([a, { ...b, target: e3.addr }, {
        listen: `127.0.0.1:${busy.addr.port}`,
        target: e1.addr,
      }]),
    );
    assert.deepEqual(report.kept, [`tcp ${addrA}`]);
    assert.deepEqual(report.updated, [`tcp ${addrB}`]);
    assert.deepEqual([report.restarted, report.started, report.stopped], [[], [], []]);
    assert.equal(report.failed.length, 1);
    assert.match(
      report.failed[0]!.error,
      /^Cannot listen on "127\.0\.0\.1:\d+" \(stream\.servers\[2\], tcp\): /,
    );
    assert.deepEqual(section.listeners.map((l) => l.addr), [addrA, addrB]);

    assert.equal(await echoOnce(viaA, "a2"), "a2", "A's connection lived through the update");
    assert.equal(await echoOnce(viaB, "b2"), "b2", "B's open connection keeps its upstream");
    assert.equal(e3.accepted, 0);
    const fresh = await Deno.connect(hostPort(addrB));
    try {
      assert.equal(await echoOnce(fresh, "b3"), "b3");
    } finally {
      fresh.close();
    }
    assert.equal(e3.accepted, 1, "a new connection through B goes to the new target");

    const samples = section.histograms();
    assert.deepEqual(samples.map((s) => s.labels.listener), [addrA, addrB]);
    assert.equal(samples[0]!.metric, "wmproxy_stream_connect_duration_seconds");
    assert.equal(samples[0]!.hist.count, 1);
    assert.equal(samples[1]!.hist.count, 2, "B's histogram survived the in-place update");

    const second = await section.update(config([a]));
    assert.deepEqual(second.kept, [`tcp ${addrA}`]);
    assert.deepEqual(second.stopped, [`tcp ${addrB}`]);
    assert.deepEqual(second.failed, []);
    assert.equal(await readN(viaB, 1).catch(() => new Uint8Array(0)).then((r) => r.length), 0);
    assert.equal(await echoOnce(viaA, "a3"), "a3");
    assert.deepEqual(section.listeners.map((l) => l.addr), [addrA]);
  } finally {
    viaA.close();
    try {
      viaB.close();
    } catch {
      // closed by the section
    }
  }
  assert.ok(await until(() => e1.accepted === 1));
});

Deno.test("StreamSection.update() replaces a changed upstream group and keeps an unchanged one", async () => {
  await using e1 = startTcpEcho();
  await using e2 = startTcpEcho();
  const { log } = testLog();
  const servers = [
    { listen: "127.0.0.1:0", upstream: "one" },
    { listen: "127.0.0.1:0", upstream: "two" },
  ];
  const groups = (addr: string): UpstreamGroupInput[] => [
    { name: "one", servers: [{ addr: e1.addr }] },
    { name: "two", servers: [{ addr }] },
  ];
  await using section = await startStreamSection(config(servers, groups(e1.addr)), { log });
  const [one, two] = section.upstreams;
  const report = await section.update(config(servers, groups(e2.addr)));
  assert.equal(report.kept.length, 1);
  assert.equal(report.updated.length, 1);
  assert.equal(section.upstreams[0], one, "the unchanged group is the same object");
  assert.notEqual(section.upstreams[1], two, "the changed group was replaced");
  const conn = await Deno.connect(hostPort(section.listeners[1]!.addr));
  try {
    assert.equal(await echoOnce(conn, "x"), "x");
  } finally {
    conn.close();
  }
  assert.equal(e2.accepted, 1, "the server of the changed group uses the new group");
});

Deno.test("StreamSection.update() rejects once the section is closed", async () => {
  const { log } = testLog();
  const section = await startStreamSection(config([]), { log });
  await section.close();
  await assert.rejects(
    section.update(config([])),
    /Cannot update the stream section: it is closed/,
  );
});
