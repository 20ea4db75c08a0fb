/**
 * Raw tunnel peers for hostile tests (tests/e2e/hostile_tunnel_test.ts and the
 * soak's hostile phase): TCP and TLS connections from a chosen loopback
 * address (`node:net` / `node:tls` can bind one, `Deno.connect` cannot), and
 * hand-driven handshakes with the right token, a wrong one, or a disconnect
 * while the server is still deciding.
 *
 * @module
 */
import assert from "node:assert/strict";
import net from "node:net";
import { type ByteConn, dialNodeTls, parseHostPort, TUNNEL_ALPN } from "../../src/transport/mod.ts";
import { exchangePreamble, generateNonce, PROTOCOL_VERSION } from "../../src/tunnel/mod.ts";
import { Session } from "../../src/mux/mod.ts";
import { clientHandshake, HandshakeError } from "../../src/center/handshake.ts";

/** A raw TCP connection to `addr` from `from` (a loopback address); resolves once connected. */
export function rawTcp(addr: string, from: string): Promise<net.Socket> {
  const { hostname, port } = parseHostPort(addr);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: hostname, port, localAddress: from });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
    s.on("error", () => {}); // later resets are expected
  });
}

/** A TLS connection to `addr` from `from`, handshake done, nothing else sent. */
export function rawTls(addr: string, from: string): Promise<ByteConn> {
  return dialNodeTls(parseHostPort(addr), {
    serverName: "localhost",
    alpnProtocols: [TUNNEL_ALPN],
    verify: () => undefined, // the test knows whom it talks to
    localAddress: from,
  });
}

/** `host:port` of our side, as the server logs it as `peer`. */
export const peerOf = (c: { localAddr: { hostname: string; port: number } }): string =>
  `${c.localAddr.hostname}:${c.localAddr.port}`;

/** Reads until end of stream or error; resolves to the bytes read. */
export async function drain(conn: ByteConn): Promise<number> {
  const buf = new Uint8Array(4096);
  let total = 0;
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) total += n;
  } catch {
    // reset: closed as well
  }
  return total;
}

/** TLS + preamble + hello + proof from `from`; resolves to the session or rejects. */
export async function tunnelHandshake(
  addr: string,
  from: string,
  token: string,
): Promise<{ session: Session; conn: ByteConn; authMs: number }> {
  const conn = await rawTls(addr, from);
  await exchangePreamble(conn, { peer: "server" });
  const session = new Session(conn, { role: "client", requireAuth: true, heartbeatIntervalMs: 0 });
  const t0 = performance.now();
  try {
    await clientHandshake(session, { token });
  } catch (err) {
    await session.close();
    throw err;
  }
  return { session, conn, authMs: performance.now() - t0 };
}

/**
 * A wrong proof from `from`; resolves to our `peer` once the server refused it
 * (or, with `disconnectBeforeAnswer`, once we left without waiting).
 */
export async function sendWrongProof(
  addr: string,
  from: string,
  options: { disconnectBeforeAnswer?: boolean } = {},
): Promise<string> {
  const conn = await rawTls(addr, from);
  await exchangePreamble(conn, { peer: "server" });
  const session = new Session(conn, { role: "client", requireAuth: true, heartbeatIntervalMs: 0 });
  const peer = peerOf(conn);
  if (options.disconnectBeforeAnswer) {
    session.sendControl({
      type: "client_hello",
      version: PROTOCOL_VERSION,
      capabilities: [],
      client_nonce: generateNonce(),
    });
    const hello = await session.receiveControl();
    assert.equal(hello?.type, "server_hello");
    session.sendControl({ type: "auth", proof: "00".repeat(32) });
    await session.close(); // gone while the server waits out the throttle delay
  } else {
    await assert.rejects(
      clientHandshake(session, { token: "not-the-right-token" }),
      (err) => err instanceof HandshakeError,
    );
    await session.close();
  }
  return peer;
}
