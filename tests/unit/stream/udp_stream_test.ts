import assert from "node:assert/strict";
import dgram from "node:dgram";
import { completeStreamSection } from "@/config/stream_section.ts";
import { startStreamSection } from "@/stream/mod.ts";
import { hostPort, pattern, startUdpEcho, testLog, until } from "./_helpers.ts";

async function udpClient(host: string) {
  const type = host.includes(":") ? "udp6" : "udp4";
  const sock = dgram.createSocket({ type, ipv6Only: type === "udp6" });
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind({ port: 0, address: host }, () => resolve());
  });
  const inbox: Uint8Array[] = [];
  sock.on("message", (msg: Uint8Array) => inbox.push(new Uint8Array(msg)));
  return {
    inbox,
    send(addr: string, data: Uint8Array): Promise<void> {
      const { hostname, port } = hostPort(addr);
      return new Promise((resolve, reject) =>
        sock.send(data, port, hostname, (err) => err ? reject(err) : resolve())
      );
    },
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

async function hasIpv6Loopback(): Promise<boolean> {
  try {
    const sock = dgram.createSocket({ type: "udp6", ipv6Only: true });
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.bind({ port: 0, address: "::1" }, () => resolve());
    });
    await new Promise<void>((resolve) => sock.close(() => resolve()));
    return true;
  } catch {
    return false;
  }
}

async function roundTrips(host: string) {
  const echo = await startUdpEcho(host);
  const { log, events } = testLog();
  const section = await startStreamSection(
    completeStreamSection({
      upstreams: [{ name: "dns", servers: [{ addr: echo.addr }] }],
      servers: [{
        listen: `${host.includes(":") ? `[${host}]` : host}:0`,
        protocol: "udp",
        upstream: "dns",
      }],
    }),
    { log },
  );
  const client = await udpClient(host);
  try {
    const addr = section.listeners[0]!.addr;
    assert.equal(section.listeners[0]!.protocol, "udp");
    assert.equal(events("listening")[0]!.protocol, "udp");
    // sizes up to a 60000-byte datagram keep their boundaries
    const sizes = [1, 2, 100, 1400, 8192, 9097, 32_000, 60_000];
    for (const [i, size] of sizes.entries()) {
      await client.send(addr, pattern(size, i + 1));
      assert.ok(await until(() => client.inbox.length === i + 1), `reply ${i} missing`);
      assert.deepEqual(client.inbox[i], pattern(size, i + 1));
    }
    // bursts in paced windows of 50
    let expected = sizes.length;
    for (let w = 0; w < 4; w++) {
      for (let j = 0; j < 50; j++) await client.send(addr, pattern(64 + j, 1000 + j));
      expected += 50;
      assert.ok(await until(() => client.inbox.length === expected), `window ${w} lost datagrams`);
    }
    assert.deepEqual(
      client.inbox.slice(sizes.length).map((m) => m.length).sort((x, y) => x - y),
      Array.from({ length: 4 }, () => Array.from({ length: 50 }, (_, j) => 64 + j)).flat()
        .sort((x, y) => x - y),
    );
    assert.ok(client.inbox.every((m) => m.length > 0));
    assert.equal(echo.received.length, expected);
  } finally {
    await client.close();
    await section.close();
    await echo.stop();
  }
}

Deno.test("stream udp: forwards datagrams with their boundaries over IPv4", async () => {
  await roundTrips("127.0.0.1");
});

const v6 = await hasIpv6Loopback();
Deno.test({
  name: v6
    ? "stream udp: forwards datagrams with their boundaries over IPv6 (::1)"
    : "stream udp: forwards datagrams over IPv6 (::1) NOT RUN: no IPv6 loopback",
  ignore: !v6,
  fn: () => roundTrips("::1"),
});

Deno.test("stream udp: a session ends after idle_timeout without sending an empty datagram", async () => {
  const echo = await startUdpEcho();
  const { log, events } = testLog();
  const section = await startStreamSection(
    completeStreamSection({
      servers: [{ listen: "127.0.0.1:0", protocol: "udp", target: echo.addr, idle_timeout: 150 }],
    }),
    { log },
  );
  const a = await udpClient("127.0.0.1");
  const b = await udpClient("127.0.0.1");
  try {
    const addr = section.listeners[0]!.addr;
    await a.send(addr, new Uint8Array([1]));
    await b.send(addr, new Uint8Array([2, 2]));
    assert.ok(await until(() => a.inbox.length === 1 && b.inbox.length === 1));
    assert.ok(await until(() => events("udp_session_closed").length === 2, 3000));
    const closed = events("udp_session_closed");
    assert.deepEqual(closed.map((e) => e.bytes_in).sort(), [1, 2]);
    assert.ok(closed.every((e) => e.datagrams_out === 1 && e.error === undefined));
    // a new datagram opens a new session that works
    await a.send(addr, new Uint8Array([3]));
    assert.ok(await until(() => a.inbox.length === 2));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(a.inbox.map((m) => [...m]), [[1], [3]]);
    assert.deepEqual(b.inbox.map((m) => [...m]), [[2, 2]]);
  } finally {
    await a.close();
    await b.close();
    await section.close();
    await echo.stop();
  }
});

Deno.test("stream udp: max_sessions drops datagrams from further clients", async () => {
  const echo = await startUdpEcho();
  const { log, events } = testLog();
  const section = await startStreamSection(
    completeStreamSection({
      servers: [{ listen: "127.0.0.1:0", protocol: "udp", target: echo.addr, max_sessions: 1 }],
    }),
    { log },
  );
  const a = await udpClient("127.0.0.1");
  const b = await udpClient("127.0.0.1");
  try {
    const addr = section.listeners[0]!.addr;
    await a.send(addr, new Uint8Array([1]));
    assert.ok(await until(() => a.inbox.length === 1));
    await b.send(addr, new Uint8Array([2]));
    assert.ok(await until(() => events("connection_rejected").length === 1));
    await a.send(addr, new Uint8Array([3]));
    assert.ok(await until(() => a.inbox.length === 2));
    assert.equal(b.inbox.length, 0);
    assert.deepEqual(echo.received, [1, 1]);
  } finally {
    await a.close();
    await b.close();
    await section.close();
    await echo.stop();
  }
});
