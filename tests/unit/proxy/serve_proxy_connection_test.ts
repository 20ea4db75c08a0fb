/**
 * serveProxyConnection() and relay() on a non-TCP ByteConn (the in-memory
 * pipe), as tunnelled streams will use them.
 */
import assert from "node:assert/strict";
import { Logger, MemorySink } from "@/observability/log.ts";
import { relay, serveProxyConnection } from "@/proxy/mod.ts";
import { CMD_CONNECT, encodeGreeting, encodeRequest, REPLY } from "@/proxy/socks5_codec.ts";
import { createPipe } from "@/transport/pipe.ts";
import type { ByteConn } from "@/transport/conn.ts";
import { readAll, readN, readUntil, send, startOrigin, testConfig } from "./_helpers.ts";

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function context(
  sink: MemorySink,
  dial?: (h: string, p: number, s: AbortSignal) => Promise<ByteConn>,
) {
  return {
    config: testConfig(),
    log: new Logger({ format: "json", sink }),
    id: "t1",
    ...(dial ? { dial } : {}),
  };
}

Deno.test("serveProxyConnection() serves HTTP on a pipe and logs connection_closed", async () => {
  await using a = startOrigin("A");
  const [client, server] = createPipe({ firstAddr: { hostname: "10.9.8.7", port: 5555 } });
  const sink = new MemorySink();
  const served = serveProxyConnection(server, context(sink));
  await send(client, `GET ${a.url}/pipe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const text = dec(await readAll(client));
  await served;
  client.close();
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /Connection: close\r\n/);
  assert.ok(text.endsWith("A /pipe"));
  const closed = sink.lines.map((l) => JSON.parse(l)).find((l) => l.event === "connection_closed");
  assert.equal(closed.conn, "t1");
  assert.equal(closed.peer, "10.9.8.7:5555");
  assert.equal(closed.target, `127.0.0.1:${a.port}`);
  assert.equal(closed.bytes_out, text.length);
  assert.equal(typeof closed.ms, "number");
});

Deno.test("serveProxyConnection() serves SOCKS5 CONNECT on a pipe through an injected dialer", async () => {
  const [client, server] = createPipe();
  const [targetNear, targetFar] = createPipe();
  const dialed: string[] = [];
  const sink = new MemorySink();
  const served = serveProxyConnection(
    server,
    context(sink, (h, p) => {
      dialed.push(`${h}:${p}`);
      return Promise.resolve(targetNear);
    }),
  );
  await send(client, encodeGreeting([0]));
  assert.deepEqual(await readN(client, 2), new Uint8Array([5, 0]));
  await send(client, encodeRequest(CMD_CONNECT, { hostname: "example.com", port: 443 }));
  const reply = await readN(client, 10);
  // A pipe has no IP: BND.ADDR is 0.0.0.0:0.
  assert.deepEqual(reply, new Uint8Array([5, REPLY.succeeded, 0, 1, 0, 0, 0, 0, 0, 0]));
  await send(client, "hello target");
  assert.equal(await readUntil(targetFar, "target"), "hello target");
  await send(targetFar, "hello client");
  await targetFar.closeWrite();
  assert.equal(await readUntil(client, "client"), "hello client");
  await client.closeWrite();
  await served;
  assert.deepEqual(dialed, ["example.com:443"]);
  assert.equal((await readAll(targetFar)).length, 0);
  client.close();
  targetFar.close();
});

Deno.test("relay() copies both ways, propagates half-close and counts bytes", async () => {
  const [a, a2] = createPipe();
  const [b, b2] = createPipe();
  const done = relay(a2, b, { idleTimeoutMs: 5_000 });
  await send(a, "up-bytes");
  await a.closeWrite();
  assert.equal(dec(await readAll(b2)), "up-bytes"); // EOF arrives after the data
  await send(b2, "down");
  await b2.closeWrite();
  assert.equal(dec(await readAll(a)), "down");
  const r = await done;
  assert.deepEqual(r, { bytesUp: 8, bytesDown: 4, idleTimeout: false, error: undefined });
  a.close();
  b2.close();
});

Deno.test("relay() ends on idle timeout and on abort, closing both sides", async () => {
  const [a, a2] = createPipe();
  const [b, b2] = createPipe();
  const r = await relay(a2, b, { idleTimeoutMs: 50 });
  assert.equal(r.idleTimeout, true);
  assert.equal((await readAll(a)).length, 0);
  a.close();
  b2.close();

  const [c, c2] = createPipe();
  const [d, d2] = createPipe();
  const ac = new AbortController();
  const pending = relay(c2, d, { idleTimeoutMs: 5_000, signal: ac.signal });
  ac.abort();
  const r2 = await pending;
  assert.equal(r2.idleTimeout, false);
  assert.equal(r2.error, undefined);
  c.close();
  d2.close();
});
