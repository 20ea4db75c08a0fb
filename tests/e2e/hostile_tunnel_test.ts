/**
 * A hostile peer against the real tunnel server: raw sockets from other
 * loopback addresses (127.0.0.0/8 is all local on Linux; `node:net` and
 * `node:tls` can bind a local address, `Deno.connect` cannot) that idle, crawl,
 * send frames before authenticating, guess tokens and hold the pre-auth
 * limits, while a legitimate client from 127.0.0.1 must still get in. Every
 * case ends by checking that the server process is alive and serving. Waits
 * are on log events; the short `handshake_timeout` keeps the suite fast.
 */
import assert from "node:assert/strict";
import type net from "node:net";
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import {
  curl,
  type LogEvent,
  startEchoServer,
  startOrigin,
  startTunnelClient,
  startTunnelServer,
  tempDir,
  type TunnelServer,
  writeConfig,
} from "./_harness.ts";
import { parseHostPort } from "../../src/transport/mod.ts";
import { drain, peerOf, rawTcp, rawTls, sendWrongProof, tunnelHandshake } from "./_raw_tunnel.ts";
import {
  encodeFrame,
  encodePreamble,
  exchangePreamble,
  FLAG_SYN,
  FRAME_TYPE_CONTROL,
  FRAME_TYPE_DATA,
} from "../../src/tunnel/mod.ts";

const TOKEN = "hostile-suite-right-token";
const HANDSHAKE_TIMEOUT_MS = 1000;
const PER_IP = 3;
const TOTAL = 8;

async function startHostileServer(dir: string): Promise<TunnelServer> {
  const path = await writeConfig(
    dir,
    "server.yaml",
    `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir}/state"
  handshake_timeout: "${HANDSHAKE_TIMEOUT_MS}ms"
  max_handshakes: ${TOTAL}
  max_handshakes_per_ip: ${PER_IP}
  max_mappings: 2
  mapping_max_connections: 2
  port_range: "20000-60000"
  http_bind: "127.0.0.1:0"
  tokens:
    - { name: good, token: "${TOKEN}" }
`,
  );
  return await startTunnelServer(["-c", path]);
}

/** A wrong proof from `from`; resolves once the server has logged the failure (its slot is free). */
async function wrongProof(
  server: TunnelServer,
  from: string,
  options: { disconnectBeforeAnswer?: boolean } = {},
): Promise<LogEvent> {
  const peer = await sendWrongProof(server.addr, from, options);
  return await server.proc.waitForEvent("auth_failed", { peer });
}

/**
 * The server process has not exited and a right token from 127.0.0.1 still
 * gets `auth_ok` (refusals while the server frees a flood's slots are retried).
 */
async function assertServing(server: TunnelServer, what: string): Promise<void> {
  const exited = await Promise.race([
    server.proc.child.status.then(() => true),
    Promise.resolve(false),
  ]);
  assert.equal(exited, false, `the server exited during "${what}"`);
  // The attacker's slots are freed as the server notices its sockets closing;
  // until then a full max_handshakes refuses us too: try again for a while.
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      const { session } = await tunnelHandshake(server.addr, "127.0.0.1", TOKEN);
      await session.close();
      return;
    } catch (err) {
      if (Date.now() > until) {
        throw new Error(`Cannot authenticate after "${what}" within 10 s: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 50)); // a new connection's pace, not a wait
    }
  }
}

/** Collects raw TCP sockets and closes them all at the end of a case. */
class Sockets {
  readonly all: net.Socket[] = [];
  async open(server: TunnelServer, from: string): Promise<net.Socket> {
    const s = await rawTcp(server.addr, from);
    this.all.push(s);
    return s;
  }
  closeAll(): void {
    for (const s of this.all) s.destroy();
    this.all.length = 0;
  }
}

interface Case {
  name: string;
  run(server: TunnelServer, dir: string): Promise<void>;
}

const LATE = /did not finish within handshake_timeout/;

const cases: Case[] = [
  {
    name: "idle TCP: no ClientHello; closed at handshake_timeout, the server lives on",
    async run(server) {
      const s = await rawTcp(server.addr, "127.0.0.11");
      const e = await server.proc.waitForEvent("tunnel_handshake_failed", {
        peer: `127.0.0.11:${s.localPort}`,
      });
      assert.match(String(e.error), /the TLS handshake did not finish/);
      s.destroy();
    },
  },
  {
    name: "idle TLS: handshake done, no preamble; closed at handshake_timeout",
    async run(server) {
      const conn = await rawTls(server.addr, "127.0.0.12");
      const e = await server.proc.waitForEvent("tunnel_handshake_failed", { peer: peerOf(conn) });
      assert.match(String(e.error), /the preamble did not finish/);
      await drain(conn); // the server closed it: end of stream
      conn.close();
    },
  },
  {
    name: "slow preamble: one byte at a time past the deadline; closed at handshake_timeout",
    async run(server) {
      const conn = await rawTls(server.addr, "127.0.0.13");
      const peer = peerOf(conn);
      const preamble = encodePreamble();
      const done = server.proc.waitForEvent("tunnel_handshake_failed", { peer });
      let stop = false;
      done.finally(() => stop = true);
      // The attacker's pace, not a wait for a condition: a byte every 150 ms.
      for (let i = 0; i < preamble.length - 1 && !stop; i++) {
        try {
          await conn.write(preamble.subarray(i, i + 1));
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 150));
      }
      assert.match(String((await done).error), LATE);
      conn.close();
    },
  },
  ...([
    [
      "a DATA frame",
      encodeFrame({
        type: FRAME_TYPE_DATA,
        flags: 0,
        streamId: 1,
        length: 0,
        payload: new Uint8Array(8),
      }),
    ],
    [
      "a stream SYN (CONTROL on stream 1)",
      encodeFrame({
        type: FRAME_TYPE_CONTROL,
        flags: FLAG_SYN,
        streamId: 1,
        length: 0,
        payload: new TextEncoder().encode(JSON.stringify({ type: "open", kind: "proxy" })),
      }),
    ],
    ["random bytes", crypto.getRandomValues(new Uint8Array(64))],
  ] as const).map(([what, bytes], i): Case => ({
    name: `frames before auth: ${what} instead of the hello is refused and the connection closed`,
    async run(server) {
      const conn = await rawTls(server.addr, `127.0.0.${20 + i}`);
      await exchangePreamble(conn, { peer: "server" });
      await conn.write(bytes);
      const e = await server.proc.waitForEvent("auth_failed", { peer: peerOf(conn) });
      assert.ok(String(e.error).length > 0);
      await drain(conn); // closed by the server (after its GO_AWAY)
      conn.close();
    },
  })),
  {
    name:
      "disconnect during the throttle delay after wrong proofs; the server survives the deadline",
    async run(server) {
      const from = "127.0.0.30";
      const delays: number[] = [];
      for (let i = 0; i < 3; i++) {
        const e = await wrongProof(server, from);
        delays.push(Number(e.auth_delay_ms ?? 0));
      }
      assert.deepEqual(
        delays,
        [0, 250, 500],
        "each failure doubles the delay, capped at half the deadline",
      );
      const gone = await wrongProof(server, from, { disconnectBeforeAnswer: true });
      assert.equal(gone.auth_delay_ms, 500);
      // An idle sentinel opened now times out after the last attempt's deadline would have.
      const s = await rawTcp(server.addr, "127.0.0.31");
      await server.proc.waitForEvent("tunnel_handshake_failed", {
        peer: `127.0.0.31:${s.localPort}`,
      });
      s.destroy();
    },
  },
  {
    name: "a throttled address gets one handshake at a time, and auth_ok as late as a refusal",
    async run(server) {
      const from = "127.0.0.32";
      await wrongProof(server, from);
      // Two at once from the failing address: the second is closed at once.
      const first = await rawTls(server.addr, from);
      const second = await rawTcp(server.addr, from);
      const refused = await server.proc.waitForEvent("connection_rejected", { ip: from });
      assert.match(String(refused.reason), /failed to authenticate recently/);
      assert.equal(refused.peer, `${from}:${second.localPort}`);
      second.destroy();
      first.close();
      await server.proc.waitForEvent("tunnel_handshake_failed", { peer: peerOf(first) });
      // The right token from the failing address: delayed like a wrong one.
      const { session, authMs } = await tunnelHandshake(server.addr, from, TOKEN);
      const ok = await server.proc.waitForEvent("client_connected", { peer: peerOf(session) });
      assert.equal(ok.auth_delay_ms, 250);
      assert.ok(authMs >= 240, `auth_ok came after ${authMs} ms, before the 250 ms delay`);
      await session.close();
      // A fresh address is not delayed.
      const fresh = await tunnelHandshake(server.addr, "127.0.0.33", TOKEN);
      const fast = await server.proc.waitForEvent("client_connected", {
        peer: peerOf(fresh.session),
      });
      assert.equal(fast.auth_delay_ms, undefined);
      await fresh.session.close();
    },
  },
  {
    name: "max_handshakes_per_ip held by one address: a real client from another address connects",
    async run(server) {
      const from = "127.0.0.40";
      const sockets = new Sockets();
      let attacking = true;
      // The attacker keeps opening idle connections, so it holds its maximum the whole time.
      const attack = (async () => {
        while (attacking) {
          await sockets.open(server, from);
          await new Promise((r) => setTimeout(r, 25)); // the attacker's pace
        }
      })();
      try {
        const refused = await server.proc.waitForEvent("connection_rejected", { ip: from });
        assert.match(String(refused.reason), new RegExp(`max_handshakes_per_ip \\(${PER_IP}\\)`));
        await using client = startTunnelClient(server, TOKEN, ["--name", "legit"]);
        const ok = await server.proc.waitForEvent("client_connected", { client: "legit" });
        assert.match(String(ok.peer), /^127\.0\.0\.1:/);
        await client.waitForEvent("tunnel_connected");
      } finally {
        attacking = false;
        await attack;
        sockets.closeAll();
      }
    },
  },
  {
    name: "max_handshakes: idle connections from three addresses fill the total; more are refused",
    async run(server) {
      const sockets = new Sockets();
      try {
        for (const from of ["127.0.0.50", "127.0.0.51", "127.0.0.52"]) {
          for (let i = 0; i < PER_IP; i++) await sockets.open(server, from);
        }
        const refused = await server.proc.waitForEvent("connection_rejected", {
          reason: `max_handshakes (${TOTAL}) reached`,
        });
        assert.match(String(refused.ip), /^127\.0\.0\.5[0-2]$/);
      } finally {
        sockets.closeAll();
      }
    },
  },
  {
    name: "max_mappings: the third mapping of a client is refused with a reason",
    async run(server) {
      const echo = startEchoServer();
      try {
        const local = `127.0.0.1:${echo.port}`;
        await using client = startTunnelClient(server, TOKEN, [
          "--name",
          "mapper",
          "--map",
          `m1=tcp:${local}@:0`,
          "--map",
          `m2=tcp:${local}@:0`,
          "--map",
          `m3=tcp:${local}@:0`,
        ]);
        const failed = await client.waitForEvent("mapping_failed", { mapping: "m3" });
        assert.equal(failed.code, "RESOURCE_EXHAUSTED");
        assert.match(String(failed.reason), /max_mappings \(2\)/);
        await client.waitForEvent("mapping_ready", { mapping: "m1" });
        await client.waitForEvent("mapping_ready", { mapping: "m2" });
        await server.proc.waitForEvent("mapping_refused", { mapping: "m3" });
      } finally {
        await echo.close();
      }
    },
  },
  {
    name: "mapping_max_connections: a TCP mapping listener closes the visitor over its cap",
    async run(server) {
      const echo = startEchoServer();
      const visitors: Deno.TcpConn[] = [];
      try {
        await using client = startTunnelClient(server, TOKEN, [
          "--name",
          "capped",
          "--map",
          `capped=tcp:127.0.0.1:${echo.port}@:0`,
        ]);
        const ready = await client.waitForEvent("mapping_ready", { mapping: "capped" });
        const addr = parseHostPort(String(ready.public_addr));
        const echoOnce = async (c: Deno.TcpConn) => {
          await c.write(new TextEncoder().encode("ping"));
          const b = new Uint8Array(16);
          return await c.read(b);
        };
        for (let i = 0; i < 2; i++) {
          const c = await Deno.connect(addr);
          visitors.push(c);
          assert.equal(await echoOnce(c), 4, `visitor ${i + 1} is served`);
        }
        const third = await Deno.connect(addr);
        visitors.push(third);
        const e = await server.proc.waitForEvent("connection_rejected", { component: "tcp" });
        assert.match(String(e.reason), /mapping_max_connections \(2\)/);
        assert.equal(await third.read(new Uint8Array(16)).catch(() => null), null);
        visitors.shift()!.close();
        // Once a visitor leaves, a new one is served (the count follows closes).
        let served = false;
        for (let i = 0; i < 50 && !served; i++) {
          const c = await Deno.connect(addr);
          visitors.push(c);
          served = (await echoOnce(c).catch(() => null)) === 4;
        }
        assert.ok(served, "a visitor is served again after one left");
      } finally {
        for (const c of visitors) {
          try {
            c.close();
          } catch {
            // already closed
          }
        }
        await echo.close();
      }
    },
  },
  {
    name: "mapping_max_connections: the HTTP mapping listener closes the visitor over its cap",
    async run(server) {
      await using origin = startOrigin("lan");
      const held: Deno.TcpConn[] = [];
      try {
        await using client = startTunnelClient(server, TOKEN, [
          "--name",
          "web",
          "--map",
          `web=http:127.0.0.1:${origin.port}@cap.test`,
        ]);
        await client.waitForEvent("mapping_ready", { mapping: "web" });
        const http = parseHostPort(await server.proc.listeningAddr("http"));
        const get = async () => {
          const r = await curl([
            "-H",
            "Host: cap.test",
            `http://${http.hostname}:${http.port}/x`,
          ]);
          return r.stdout;
        };
        assert.equal(await get(), "lan /x");
        // Two visitors that send nothing hold the listener's two places.
        for (let i = 0; i < 2; i++) held.push(await Deno.connect(http));
        const third = await Deno.connect(http);
        held.push(third);
        const e = await server.proc.waitForEvent("connection_rejected", { component: "http" });
        assert.match(String(e.reason), /mapping_max_connections \(2\) reached on http listener/);
        assert.equal(await third.read(new Uint8Array(16)).catch(() => null), null);
        for (const c of held.splice(0)) c.close();
        let served = false;
        for (let i = 0; i < 50 && !served; i++) served = (await get()) === "lan /x";
        assert.ok(served, "a visitor is served again once the idle ones left");
      } finally {
        for (const c of held) c.close();
      }
    },
  },
  {
    name: "mapping_max_connections: a UDP mapping drops datagrams of a visitor over its cap",
    async run(server) {
      const lan = dgram.createSocket("udp4");
      lan.on(
        "message",
        (m, r) => lan.send(Buffer.concat([Buffer.from("re:"), m]), r.port, r.address),
      );
      await new Promise<void>((r) => lan.bind(0, "127.0.0.1", r));
      const visitors: dgram.Socket[] = [];
      try {
        await using client = startTunnelClient(server, TOKEN, [
          "--name",
          "dns",
          "--map",
          `dns=udp:127.0.0.1:${lan.address().port}@:0`,
        ]);
        const ready = await client.waitForEvent("mapping_ready", { mapping: "dns" });
        const port = Number(String(ready.public_addr).split(":").pop());
        /** Sends `text` from `v` (again every 200 ms, UDP may drop) until the echo comes back. */
        const ask = async (v: dgram.Socket, text: string) => {
          const answer = new Promise<string>((r) => v.once("message", (m) => r(m.toString())));
          const again = setInterval(() => v.send(text, port, "127.0.0.1"), 200);
          v.send(text, port, "127.0.0.1");
          try {
            return await answer;
          } finally {
            clearInterval(again);
          }
        };
        for (let i = 0; i < 3; i++) {
          const v = dgram.createSocket("udp4");
          await new Promise<void>((r) => v.bind(0, "127.0.0.1", r));
          visitors.push(v);
        }
        assert.equal(await ask(visitors[0]!, "one"), "re:one");
        assert.equal(await ask(visitors[1]!, "two"), "re:two");
        visitors[2]!.send("three", port, "127.0.0.1");
        const e = await server.proc.waitForEvent("connection_rejected", { component: "udp" });
        assert.equal(e.peer, `127.0.0.1:${visitors[2]!.address().port}`);
        assert.match(String(e.reason), /mapping_max_connections \(2\) reached on udp listener/);
      } finally {
        for (const v of visitors) v.close();
        lan.close();
      }
    },
  },
];

Deno.test({
  name: "hostile tunnel: pre-auth floods, slow and wrong peers, and per-client caps",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using dir = await tempDir();
    const server = await startHostileServer(dir.path);
    try {
      await assertServing(server, "start");
      for (const c of cases) {
        await t.step(c.name, async () => {
          await c.run(server, dir.path);
          await assertServing(server, c.name);
        });
      }
    } finally {
      await server.proc.stop();
    }
  },
});
