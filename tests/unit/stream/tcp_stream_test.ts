import assert from "node:assert/strict";
import { completeStreamSection, type StreamServerInput } from "@/config/stream_section.ts";
import type { UpstreamGroupInput } from "@/config/upstream_section.ts";
import { startStreamSection } from "@/stream/mod.ts";
import {
  hostPort,
  pattern,
  readN,
  startTcpEcho,
  tcpRoundTrip,
  testLog,
  until,
} from "./_helpers.ts";

function config(servers: StreamServerInput[], upstreams: UpstreamGroupInput[] = []) {
  return completeStreamSection({ upstreams, servers });
}

Deno.test("stream tcp: serves 200 concurrent connections with every byte intact", async () => {
  await using a = startTcpEcho();
  await using b = startTcpEcho();
  const { log, events } = testLog();
  await using section = await startStreamSection(
    config(
      [{ listen: "127.0.0.1:0", upstream: "echo" }],
      [{ name: "echo", servers: [{ addr: a.addr }, { addr: b.addr }] }],
    ),
    { log },
  );
  const addr = section.listeners[0]!.addr;
  assert.equal(section.listeners[0]!.protocol, "tcp");
  const listening = events("listening")[0]!;
  assert.equal(listening.component, "stream");
  assert.equal(listening.addr, addr);
  assert.equal(listening.protocol, "tcp");

  // Every connection stays open until all 200 are established: a proxy that
  // served connections one at a time (defect B13) would deadlock here.
  const N = 200;
  const conns = await Promise.all(
    Array.from({ length: N }, () => Deno.connect({ ...hostPort(addr), transport: "tcp" })),
  );
  try {
    await Promise.all(conns.map(async (conn, i) => {
      const data = pattern(16 * 1024 + i, i + 1);
      const reading = readN(conn, data.length);
      let off = 0;
      while (off < data.length) off += await conn.write(data.subarray(off));
      assert.deepEqual(await reading, data);
    }));
  } finally {
    for (const c of conns) c.close();
  }
  assert.equal(a.accepted + b.accepted, N);
  assert.equal(a.accepted, N / 2); // round robin
  assert.ok(await until(() => events("connection_closed").length === N));
  const closed = events("connection_closed");
  assert.ok(closed.every((e) => e.component === "stream" && e.error === undefined));
  const total = closed.reduce((s, e) => s + (e.bytes_in as number), 0);
  assert.equal(total, Array.from({ length: N }, (_, i) => 16 * 1024 + i).reduce((x, y) => x + y));
});

Deno.test("stream tcp: new connections fail over when an upstream stops", async () => {
  const a = startTcpEcho();
  await using b = startTcpEcho();
  const { log, events } = testLog();
  await using section = await startStreamSection(
    config(
      [{ listen: "127.0.0.1:0", upstream: "echo" }],
      [{ name: "echo", servers: [{ addr: a.addr, fail_timeout: 60_000 }, { addr: b.addr }] }],
    ),
    { log },
  );
  const addr = section.listeners[0]!.addr;
  const hello = new TextEncoder().encode("hello");
  for (let i = 0; i < 4; i++) assert.deepEqual(await tcpRoundTrip(addr, hello), hello);
  assert.equal(a.accepted, 2);
  assert.equal(b.accepted, 2);
  await a.stop();
  for (let i = 0; i < 6; i++) assert.deepEqual(await tcpRoundTrip(addr, hello), hello);
  assert.equal(b.accepted, 8);
  // one failed connect, then A is down and skipped
  const failed = events("upstream_connect_failed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.peer, a.addr);
  const [sa, sb] = section.upstreams[0]!.status();
  assert.equal(sa!.healthy, false);
  assert.match(sa!.last_error!, /refused/);
  assert.equal(sb!.healthy, true);
  assert.equal(events("upstream_peer_down")[0]!.peer, a.addr);
});

Deno.test("stream tcp: a client is closed with an error log when every upstream fails", async () => {
  const dead = startTcpEcho();
  await dead.stop();
  const { log, events } = testLog();
  await using section = await startStreamSection(
    config([{ listen: "127.0.0.1:0", target: dead.addr, connect_timeout: 2000 }]),
    { log },
  );
  const got = await tcpRoundTrip(section.listeners[0]!.addr, new Uint8Array([1, 2, 3]))
    .catch(() => new Uint8Array(0));
  assert.equal(got.length, 0);
  assert.ok(await until(() => events("connection_closed").length === 1));
  assert.match(String(events("connection_closed")[0]!.error), /every server failed/);
});

Deno.test("stream tcp: sends a PROXY v2 header with the client address to the upstream", async () => {
  await using echo = startTcpEcho();
  const { log } = testLog();
  await using section = await startStreamSection(
    config([{ listen: "127.0.0.1:0", target: echo.addr, proxy_protocol: "v2" }]),
    { log },
  );
  const addr = section.listeners[0]!.addr;
  const conn = await Deno.connect({ ...hostPort(addr), transport: "tcp" });
  try {
    await conn.write(new TextEncoder().encode("x"));
    // the echo sends the header back first: 16 + 12 bytes, then "x"
    const got = await readN(conn, 29);
    const sig = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
    assert.deepEqual([...got.subarray(0, 12)], sig);
    assert.equal(got[12], 0x21); // v2, PROXY
    assert.equal(got[13], 0x11); // TCP over IPv4
    assert.equal((got[14]! << 8) | got[15]!, 12);
    assert.deepEqual([...got.subarray(16, 20)], [127, 0, 0, 1]);
    const srcPort = (got[24]! << 8) | got[25]!;
    const dstPort = (got[26]! << 8) | got[27]!;
    assert.equal(srcPort, (conn.localAddr as Deno.NetAddr).port);
    assert.equal(dstPort, hostPort(addr).port);
    assert.equal(got[28], "x".charCodeAt(0));
  } finally {
    conn.close();
  }
});

Deno.test("stream tcp: max_connections closes extra connections and idle_timeout ends idle ones", async () => {
  await using echo = startTcpEcho();
  const { log, events } = testLog();
  await using section = await startStreamSection(
    config([{ listen: "127.0.0.1:0", target: echo.addr, max_connections: 1, idle_timeout: 300 }]),
    { log },
  );
  const addr = section.listeners[0]!.addr;
  const first = await Deno.connect({ ...hostPort(addr), transport: "tcp" });
  try {
    await first.write(new Uint8Array([7]));
    assert.deepEqual(await readN(first, 1), new Uint8Array([7]));
    const second = await Deno.connect({ ...hostPort(addr), transport: "tcp" });
    try {
      assert.equal(await second.read(new Uint8Array(1)).catch(() => null), null);
    } finally {
      second.close();
    }
    assert.equal(events("connection_rejected").length, 1);
    // no traffic: the idle timeout closes the first connection
    assert.equal(await first.read(new Uint8Array(1)).catch(() => null), null);
  } finally {
    first.close();
  }
  assert.ok(await until(() => events("connection_closed").length === 1));
  assert.equal(events("connection_closed")[0]!.idle_timeout, true);
});

Deno.test("startStreamSection() rejects a busy listen address and closes what it started", async () => {
  await using echo = startTcpEcho();
  const { log } = testLog();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      startStreamSection(
        config([
          { listen: "127.0.0.1:0", target: echo.addr },
          { listen: `127.0.0.1:${busy.addr.port}`, target: echo.addr },
        ]),
        { log },
      ),
      /Cannot listen on "127\.0\.0\.1:\d+" \(stream\.servers\[1\], tcp\)/,
    );
  } finally {
    busy.close();
  }
});
