/**
 * The forward proxy's SOCKS5 side, in process: curl for CONNECT, a small raw
 * client for auth, replies and UDP ASSOCIATE.
 */
import assert from "node:assert/strict";
import type dgram from "node:dgram";
import { DialError, dialTcpTarget } from "@/proxy/mod.ts";
import {
  CMD_BIND,
  CMD_CONNECT,
  CMD_UDP_ASSOCIATE,
  encodeGreeting,
  encodeRequest,
  encodeUdpDatagram,
  encodeUserPass,
  parseReply,
  parseUdpDatagram,
  REPLY,
} from "@/proxy/socks5_codec.ts";
import { SentPeers } from "@/proxy/socks5_udp.ts";
import type { ByteConn, HostPort } from "@/transport/conn.ts";
import {
  bindUdp,
  closedPort,
  closeUdp,
  connect,
  curl,
  hasIpv6Loopback,
  nextDatagram,
  readAll,
  readN,
  readUntil,
  send,
  startOrigin,
  startTestProxy,
  startUdpEcho,
  testConfig,
  user,
} from "./_helpers.ts";

const IPV6 = hasIpv6Loopback();
const NO_V6 = " (NOT RUN: this machine has no IPv6 loopback)";

/** Reads one SOCKS5 reply (any address type). */
async function readReply(conn: ByteConn) {
  let buf = new Uint8Array(0);
  while (true) {
    const r = parseReply(buf);
    if (r) return r;
    const more = await readN(conn, 1);
    if (more.length === 0) return null;
    const next = new Uint8Array(buf.length + 1);
    next.set(buf);
    next.set(more, buf.length);
    buf = next;
  }
}

/** Greets with no auth and sends one request; returns the connection and the reply. */
async function socksRequest(port: number, command: number, target: HostPort, host = "127.0.0.1") {
  const conn = await connect({ hostname: host, port });
  await send(conn, encodeGreeting([0x00]));
  assert.deepEqual(await readN(conn, 2), new Uint8Array([5, 0]));
  await send(conn, encodeRequest(command, target));
  return { conn, reply: await readReply(conn) };
}

async function assertSocksStillServes(proxyAddr: string): Promise<void> {
  await using o = startOrigin("OK");
  const r = await curl(["--socks5", proxyAddr, `${o.url}/after`]);
  assert.equal(r.stdout, "OK /after", r.stderr);
}

Deno.test("socks5: curl --socks5-hostname and --socks5 (IPv4) reach the origin", async () => {
  await using a = startOrigin("A");
  await using p = await startTestProxy();
  const named = await curl(["--socks5-hostname", p.addr, `http://localhost:${a.port}/n`]);
  assert.equal(named.code, 0, named.stderr);
  assert.equal(named.stdout, "A /n");
  const v4 = await curl(["--socks5", p.addr, `${a.url}/v4`]);
  assert.equal(v4.stdout, "A /v4", v4.stderr);
  const closed = await p.waitForEvent(
    "connection_closed",
    (l) => l.target === `localhost:${a.port}`,
  );
  assert.equal(closed.protocol, "socks5");
});

Deno.test({
  name: "socks5: curl --socks5 reaches an IPv6 origin on [::1]" + (IPV6 ? "" : NO_V6),
  ignore: !IPV6,
  async fn() {
    await using six = startOrigin("SIX", "::1");
    await using p = await startTestProxy();
    const r = await curl(["--socks5", p.addr, `${six.url}/v6`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "SIX /v6");
    await p.waitForEvent("connection_closed", (l) => l.target === `[::1]:${six.port}`);
  },
});

Deno.test("socks5: --proxy-user right is served; wrong gets RFC 1929 status 0x01 and a close", async () => {
  await using a = startOrigin("A");
  await using p = await startTestProxy(testConfig({ users: [user("alice", "s3cret")] }));
  const ok = await curl(["--socks5", p.addr, "--proxy-user", "alice:s3cret", `${a.url}/ok`]);
  assert.equal(ok.stdout, "A /ok", ok.stderr);
  const bad = await curl(["--socks5", p.addr, "--proxy-user", "alice:pw-NOT-IN-LOG", `${a.url}/x`]);
  assert.notEqual(bad.code, 0);

  const conn = await connect(p.port);
  await send(conn, encodeGreeting([0x00, 0x02]));
  assert.deepEqual(await readN(conn, 2), new Uint8Array([5, 2]));
  await send(conn, encodeUserPass("alice", "pw-NOT-IN-LOG"));
  assert.deepEqual(await readN(conn, 2), new Uint8Array([1, 1]));
  assert.equal((await readAll(conn)).length, 0, "closed after a failed auth");
  conn.close();

  const noAuth = await connect(p.port);
  await send(noAuth, encodeGreeting([0x00]));
  assert.deepEqual(await readN(noAuth, 2), new Uint8Array([5, 0xff]));
  assert.equal((await readAll(noAuth)).length, 0);
  noAuth.close();

  const failed = p.events("auth_failed");
  assert.ok(failed.length >= 3, JSON.stringify(failed));
  assert.ok(failed.every((l) => l.protocol === "socks5" && typeof l.peer === "string"));
  assert.ok(!JSON.stringify(p.lines()).includes("NOT-IN-LOG"), "no password in the log");
  assert.equal(a.requests.length, 1);
});

Deno.test("socks5: a failed auth never dials", async () => {
  const dials: string[] = [];
  const dial = (host: string, port: number, signal: AbortSignal): Promise<ByteConn> => {
    dials.push(`${host}:${port}`);
    return dialTcpTarget(host, port, signal);
  };
  await using p = await startTestProxy(testConfig({ users: [user("u", "pw")] }), { dial });
  const conn = await connect(p.port);
  // A client that ignores the auth failure and sends its request anyway.
  await send(conn, encodeGreeting([0x02]));
  await send(conn, encodeUserPass("u", "bad"));
  await send(conn, encodeRequest(CMD_CONNECT, { hostname: "127.0.0.1", port: 9 }));
  const all = await readAll(conn);
  conn.close();
  assert.deepEqual(all, new Uint8Array([5, 2, 1, 1]));
  assert.deepEqual(dials, []);
});

Deno.test("socks5: BIND and unknown commands get 0x07, unknown address types 0x08", async () => {
  await using p = await startTestProxy();
  for (const cmd of [CMD_BIND, 0x09]) {
    const { conn, reply } = await socksRequest(p.port, cmd, { hostname: "127.0.0.1", port: 80 });
    assert.equal(reply?.command, REPLY.command_not_supported);
    assert.equal((await readAll(conn)).length, 0);
    conn.close();
  }
  const conn = await connect(p.port);
  await send(conn, encodeGreeting([0]));
  await readN(conn, 2);
  await send(conn, new Uint8Array([5, 1, 0, 0x07, 1, 2, 3, 4, 0, 80]));
  assert.equal((await readReply(conn))?.command, REPLY.address_type_not_supported);
  conn.close();
  await assertSocksStillServes(p.addr);
});

Deno.test("socks5: connect failures map to reply codes (refused 0x05, unresolved 0x04, timeout 0x06)", async () => {
  await using p = await startTestProxy();
  const port = closedPort();
  const refused = await socksRequest(p.port, CMD_CONNECT, { hostname: "127.0.0.1", port });
  assert.equal(refused.reply?.command, REPLY.connection_refused);
  refused.conn.close();
  const ev = await p.waitForEvent("connection_closed");
  assert.equal(ev.error, `Cannot connect to "127.0.0.1:${port}": connection refused`);

  const failing = (_h: string, _p: number, signal: AbortSignal): Promise<ByteConn> => {
    if (_h === "nowhere.invalid") {
      return Promise.reject(
        new Error("failed to lookup address information: Name or service not known"),
      );
    }
    if (_h === "unreach.test") {
      return Promise.reject(new Deno.errors.NetworkUnreachable("unreachable"));
    }
    return new Promise((_, reject) =>
      signal.addEventListener("abort", () => reject(signal.reason))
    );
  };
  await using q = await startTestProxy(testConfig({ limits: { connect_timeout_ms: 100 } }), {
    dial: failing,
  });
  const cases: [string, number][] = [
    ["nowhere.invalid", REPLY.host_unreachable],
    ["unreach.test", REPLY.network_unreachable],
    ["slow.test", REPLY.ttl_expired],
  ];
  for (const [hostname, code] of cases) {
    const r = await socksRequest(q.port, CMD_CONNECT, { hostname, port: 80 });
    assert.equal(r.reply?.command, code, hostname);
    r.conn.close();
  }
  assert.ok(new DialError("a:1", "timeout").message === 'Cannot connect to "a:1": timed out');
});

Deno.test("socks5: truncated and bad greetings are closed, and the proxy keeps serving", async () => {
  await using p = await startTestProxy(testConfig({ limits: { handshake_timeout_ms: 300 } }));
  const cases: Uint8Array[] = [
    new Uint8Array([5]),
    new Uint8Array([5, 3, 0]),
    new Uint8Array([5, 0]),
    new Uint8Array([5, 1, 0, 5, 1]), // greeting, then a truncated request
    new Uint8Array([5, 1, 0, 4, 1, 0, 1]), // request with version 4
  ];
  for (const bytes of cases) {
    const conn = await connect(p.port);
    await send(conn, bytes);
    await conn.closeWrite();
    const got = await readAll(conn);
    conn.close();
    assert.ok(got.length <= 12, `at most a method selection and a failure reply: ${got}`);
  }
  // A greeting that stalls: closed by the handshake timeout.
  const stall = await connect(p.port);
  await send(stall, new Uint8Array([5, 2, 0]));
  assert.equal((await readAll(stall)).length, 0);
  stall.close();
  await p.waitForEvent("connection_closed", (l) => /handshake timeout/.test(String(l.error)));
  await assertSocksStillServes(p.addr);
});

Deno.test("socks5: a client that half-closes after its request still gets the response", async () => {
  await using a = startOrigin("A");
  await using p = await startTestProxy();
  const { conn, reply } = await socksRequest(p.port, CMD_CONNECT, {
    hostname: "127.0.0.1",
    port: a.port,
  });
  assert.equal(reply?.command, REPLY.succeeded);
  assert.equal(reply?.address.hostname, "127.0.0.1");
  await send(conn, "GET /half HTTP/1.1\r\nHost: x\r\n\r\n");
  await conn.closeWrite();
  const text = await readUntil(conn, "A /half");
  conn.close();
  assert.ok(text.endsWith("A /half"), text);
});

/** Sets up a UDP association; returns the TCP control connection and the relay address. */
async function udpAssociate(proxyPort: number, from: HostPort, host = "127.0.0.1") {
  const { conn, reply } = await socksRequest(proxyPort, CMD_UDP_ASSOCIATE, from, host);
  assert.equal(reply?.command, REPLY.succeeded);
  return { conn, relay: reply!.address as HostPort };
}

async function roundTrip(
  sock: dgram.Socket,
  relay: HostPort,
  target: HostPort,
  text: string,
  waitMs = 2000,
): Promise<{ from: HostPort; text: string } | null> {
  const wait = nextDatagram(sock, waitMs);
  sock.send(encodeUdpDatagram(target, new TextEncoder().encode(text)), relay.port, relay.hostname);
  const got = await wait;
  if (got === null) return null;
  const d = parseUdpDatagram(got);
  return {
    from: { hostname: d.address.hostname, port: d.address.port },
    text: new TextDecoder().decode(d.data),
  };
}

/** Sends one datagram and waits until the kernel took it. */
function sendTo(sock: dgram.Socket, data: Uint8Array, to: HostPort): Promise<void> {
  return new Promise((resolve, reject) =>
    sock.send(data, to.port, to.hostname, (err) => err ? reject(err) : resolve())
  );
}

Deno.test("socks5 UDP: round trip to an IPv4 echo; foreign and fragmented datagrams are dropped", async () => {
  await using echo = await startUdpEcho("127.0.0.1");
  await using p = await startTestProxy();
  const client = await bindUdp("127.0.0.1");
  // Another IP (loopback /8 is local on Linux): the client's port is not
  // known yet (associated with port 0), so only the IP check can drop it.
  const foreign = await bindUdp("127.0.0.2");
  const sameIp = await bindUdp("127.0.0.1");
  try {
    const { conn, relay } = await udpAssociate(p.port, { hostname: "0.0.0.0", port: 0 });
    assert.equal(relay.hostname, "127.0.0.1");
    const target = { hostname: "127.0.0.1", port: echo.port };
    // A datagram from a foreign IP first: dropped, never relayed (the echo
    // counts only what the client sends below).
    await sendTo(foreign, encodeUdpDatagram(target, new TextEncoder().encode("hijack")), relay);
    assert.deepEqual(await roundTrip(client, relay, target, "ping"), {
      from: target,
      text: "ping",
    });
    assert.equal(echo.received, 1);
    // Once the client's port is known, another port of its IP is foreign too.
    assert.equal(await roundTrip(sameIp, relay, target, "hijack", 300), null);
    // A fragment: dropped without tearing the association down.
    const frag = encodeUdpDatagram(target, new TextEncoder().encode("frag"));
    frag[2] = 1;
    const none = nextDatagram(client, 300);
    client.send(frag, relay.port, relay.hostname);
    assert.equal(await none, null);
    assert.equal(echo.received, 1);
    assert.deepEqual(await roundTrip(client, relay, target, "again"), {
      from: target,
      text: "again",
    });
    assert.equal(echo.received, 2);

    conn.close(); // the association ends with its TCP connection
    const ev = await p.waitForEvent("udp_associate_closed");
    assert.equal(ev.datagrams, 4);
    assert.ok((ev.dropped as number) >= 3);
  } finally {
    await closeUdp(client);
    await closeUdp(foreign);
    await closeUdp(sameIp);
  }
});

/**
 * A target that records where the relay's datagram came from (the egress
 * address), for third parties to aim at.
 */
async function egressAddressVia(
  client: dgram.Socket,
  relay: HostPort,
  target: dgram.Socket,
): Promise<HostPort> {
  const got = new Promise<HostPort>((resolve) =>
    target.once("message", (_m, rinfo) => resolve({ hostname: rinfo.address, port: rinfo.port }))
  );
  const to = { hostname: "127.0.0.1", port: target.address().port };
  await sendTo(client, encodeUdpDatagram(to, new TextEncoder().encode("hello")), relay);
  return await got;
}

Deno.test("socks5 UDP: replies come only from destinations the client sent to (replies: sent)", async () => {
  await using p = await startTestProxy();
  const client = await bindUdp("127.0.0.1");
  const target = await bindUdp("127.0.0.1");
  const stranger = await bindUdp("127.0.0.1");
  try {
    const { conn, relay } = await udpAssociate(p.port, { hostname: "0.0.0.0", port: 0 });
    const egress = await egressAddressVia(client, relay, target);
    // The stranger (never sent to) aims at the egress port first, then the
    // target answers: the client's next datagram is the target's.
    const next = nextDatagram(client, 5_000);
    await sendTo(stranger, new TextEncoder().encode("injected"), egress);
    await sendTo(target, new TextEncoder().encode("reply"), egress);
    const got = await next;
    assert.ok(got !== null, "no datagram reached the client within 5 s");
    const d = parseUdpDatagram(got);
    assert.equal(new TextDecoder().decode(d.data), "reply");
    assert.deepEqual({ hostname: d.address.hostname, port: d.address.port }, {
      hostname: "127.0.0.1",
      port: target.address().port,
    });
    conn.close();
    const ev = await p.waitForEvent("udp_associate_closed");
    assert.equal(ev.datagrams, 2);
    assert.equal(ev.dropped, 1);
  } finally {
    await closeUdp(client);
    await closeUdp(target);
    await closeUdp(stranger);
  }
});

Deno.test("socks5 UDP: replies: any relays a third party's datagram", async () => {
  await using p = await startTestProxy(
    testConfig({
      udp: { enabled: true, bind_ip: undefined, idle_timeout_ms: 5_000, replies: "any" },
    }),
  );
  const client = await bindUdp("127.0.0.1");
  const target = await bindUdp("127.0.0.1");
  const stranger = await bindUdp("127.0.0.1");
  try {
    const { conn, relay } = await udpAssociate(p.port, { hostname: "0.0.0.0", port: 0 });
    const egress = await egressAddressVia(client, relay, target);
    const next = nextDatagram(client, 5_000);
    await sendTo(stranger, new TextEncoder().encode("full cone"), egress);
    const got = await next;
    assert.ok(got !== null, "the stranger's datagram did not reach the client within 5 s");
    const d = parseUdpDatagram(got);
    assert.equal(new TextDecoder().decode(d.data), "full cone");
    assert.equal(d.address.port, stranger.address().port);
    conn.close();
  } finally {
    await closeUdp(client);
    await closeUdp(target);
    await closeUdp(stranger);
  }
});

Deno.test("socks5 UDP: a name target is resolved and its replies are accepted", async () => {
  await using echo = await startUdpEcho("127.0.0.1");
  await using p = await startTestProxy();
  const client = await bindUdp("127.0.0.1");
  try {
    const { conn, relay } = await udpAssociate(p.port, { hostname: "0.0.0.0", port: 0 });
    const r = await roundTrip(client, relay, { hostname: "localhost", port: echo.port }, "named");
    assert.equal(r?.text, "named");
    assert.deepEqual(r?.from, { hostname: "127.0.0.1", port: echo.port });
    conn.close();
  } finally {
    await closeUdp(client);
  }
});

Deno.test("socks5 UDP: traffic keeps an association alive past its idle timeout", async () => {
  await using p = await startTestProxy(
    testConfig({
      udp: { enabled: true, bind_ip: undefined, idle_timeout_ms: 300, replies: "sent" },
    }),
  );
  const client = await bindUdp("127.0.0.1");
  const sink = await bindUdp("127.0.0.1"); // never answers: only the client's traffic counts
  try {
    const { conn, relay } = await udpAssociate(p.port, { hostname: "0.0.0.0", port: 0 });
    const target = { hostname: "127.0.0.1", port: sink.address().port };
    const start = Date.now();
    // A datagram every ~100 ms for three idle timeouts: never idle that long.
    let i = 0;
    while (Date.now() - start < 900) {
      const arrived = nextDatagram(sink, 5_000);
      await sendTo(client, encodeUdpDatagram(target, new TextEncoder().encode(`keep ${i}`)), relay);
      const got = await arrived;
      assert.equal(got && new TextDecoder().decode(got), `keep ${i}`, `datagram ${i} not relayed`);
      i++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(p.events("udp_associate_closed").length, 0);
    // Then silence: it ends by the idle timeout.
    const ev = await p.waitForEvent("connection_closed");
    assert.match(String(ev.error), /UDP idle timeout after 300 ms/);
    conn.close();
  } finally {
    await closeUdp(client);
    await closeUdp(sink);
  }
});

Deno.test({
  name: "socks5 UDP: round trip to an IPv6 echo on [::1], and a relay on [::1]" +
    (IPV6 ? "" : NO_V6),
  ignore: !IPV6,
  async fn() {
    await using echo = await startUdpEcho("::1");
    const target = { hostname: "::1", port: echo.port };
    // IPv4 client, IPv6 target.
    await using p = await startTestProxy();
    const client = await bindUdp("127.0.0.1");
    try {
      const { conn, relay } = await udpAssociate(p.port, { hostname: "0.0.0.0", port: 0 });
      assert.deepEqual(await roundTrip(client, relay, target, "six"), {
        from: target,
        text: "six",
      });
      conn.close();
    } finally {
      await closeUdp(client);
    }
    // IPv6 client on a proxy bound to [::1]: the relay is on ::1 too.
    await using p6 = await startTestProxy(testConfig({ bind: "[::1]:0" }));
    const client6 = await bindUdp("::1");
    try {
      const { conn, relay } = await udpAssociate(p6.port, { hostname: "::", port: 0 }, "::1");
      assert.equal(relay.hostname, "::1");
      assert.deepEqual(await roundTrip(client6, relay, target, "v6"), { from: target, text: "v6" });
      conn.close();
    } finally {
      await closeUdp(client6);
    }
  },
});

Deno.test("socks5 UDP: an idle association ends and closes its TCP connection", async () => {
  await using p = await startTestProxy(
    testConfig({
      udp: { enabled: true, bind_ip: undefined, idle_timeout_ms: 200, replies: "sent" },
    }),
  );
  const { conn } = await udpAssociate(p.port, { hostname: "0.0.0.0", port: 0 });
  assert.equal((await readAll(conn)).length, 0);
  conn.close();
  const ev = await p.waitForEvent("connection_closed");
  assert.match(String(ev.error), /UDP idle timeout after 200 ms/);
});

Deno.test("socks5 UDP: UDP ASSOCIATE is refused with 0x02 when udp is disabled", async () => {
  await using p = await startTestProxy(
    testConfig({
      udp: { enabled: false, bind_ip: undefined, idle_timeout_ms: 200, replies: "sent" },
    }),
  );
  const { conn, reply } = await socksRequest(p.port, CMD_UDP_ASSOCIATE, {
    hostname: "0.0.0.0",
    port: 0,
  });
  assert.equal(reply?.command, REPLY.not_allowed);
  conn.close();
});

Deno.test("socks5 egress: a denied target gets 0x02 and no dial; UDP ASSOCIATE is refused while rules are set", async () => {
  await using origin = startOrigin("A");
  const dialled: string[] = [];
  await using p = await startTestProxy(
    testConfig({ egress: { allow: [], deny: [`127.0.0.1:${origin.port}`], default: "allow" } }),
    {
      dial: (host, port, signal) => {
        dialled.push(`${host}:${port}`);
        return dialTcpTarget(host, port, signal);
      },
    },
  );
  const target = { hostname: "127.0.0.1", port: origin.port };
  const denied = await socksRequest(p.port, CMD_CONNECT, target);
  assert.equal(denied.reply?.command, REPLY.not_allowed);
  denied.conn.close();
  const e = await p.waitForEvent("egress_denied");
  assert.equal(e.target, `127.0.0.1:${origin.port}`);
  assert.equal(e.rule, `127.0.0.1:${origin.port}`);
  assert.deepEqual(dialled, [], "nothing was dialled");
  assert.equal(origin.requests.length, 0);
  const udp = await socksRequest(p.port, CMD_UDP_ASSOCIATE, { hostname: "0.0.0.0", port: 0 });
  assert.equal(udp.reply?.command, REPLY.not_allowed);
  udp.conn.close();
  await p.waitForEvent("egress_denied", (l) => String(l.rule).startsWith("udp associate"));
  const other = await socksRequest(p.port, CMD_CONNECT, { hostname: "localhost", port: 1 });
  assert.equal(other.reply?.command, REPLY.connection_refused, "allowed, dialled, refused");
  other.conn.close();
  assert.ok(dialled.length > 0, "an allowed target is dialled");
  for (const d of dialled) {
    assert.match(d, /^(127\.0\.0\.1|::1):1$/, "the resolved address is dialled, not the name");
  }
});

Deno.test("socks5: a disabled protocol gets method 0xFF, a close and a log line", async () => {
  await using p = await startTestProxy(testConfig({ protocols: ["http", "https"] }));
  const conn = await connect(p.port);
  await send(conn, encodeGreeting([0]));
  assert.deepEqual(await readAll(conn), new Uint8Array([5, 0xff]));
  conn.close();
  await p.waitForEvent("protocol_disabled", (l) => l.protocol === "socks5");
});

Deno.test("SentPeers remembers the last destinations by IP and port, oldest forgotten first", () => {
  const peers = new SentPeers(2);
  peers.add("127.0.0.1", 53);
  peers.add("::FFFF:10.0.0.1", 53);
  assert.ok(peers.has("::ffff:127.0.0.1", 53));
  assert.ok(peers.has("10.0.0.1", 53));
  assert.ok(!peers.has("127.0.0.1", 54));
  peers.add("127.0.0.1", 53); // refreshed: now the newest
  peers.add("10.0.0.2", 1);
  assert.equal(peers.size, 2);
  assert.ok(!peers.has("10.0.0.1", 53));
  assert.ok(peers.has("127.0.0.1", 53));
});
