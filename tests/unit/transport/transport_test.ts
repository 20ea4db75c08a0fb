import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import type { ByteConn } from "@/transport/conn.ts";
import { writeAll } from "@/transport/conn.ts";
import { createPipe } from "@/transport/pipe.ts";
import { dialTls, listenTls } from "@/transport/tls.ts";
import { type PairFactory, PIPE, TCP, TLS } from "./_pairs.ts";
import { testCerts } from "./_test_certs.ts";

async function readAll(conn: ByteConn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
    parts.push(buf.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

for (const factory of [PIPE, TCP, TLS] satisfies PairFactory[]) {
  Deno.test(`${factory.name}: bytes cross both ways and closeWrite() is end of stream`, async () => {
    const pair = await factory.make();
    try {
      const payload = new Uint8Array(300_000).map((_, i) => i % 251);
      const back = readAll(pair.a);
      const got = (async () => {
        const data = await readAll(pair.b);
        await writeAll(pair.b, new TextEncoder().encode("done"));
        await pair.b.closeWrite();
        return data;
      })();
      await writeAll(pair.a, payload);
      await pair.a.closeWrite();
      deepStrictEqual(await got, payload);
      equal(new TextDecoder().decode(await back), "done");
      ok(pair.a.remoteAddr.port > 0 && pair.b.localAddr.port > 0);
    } finally {
      pair.a.close();
      pair.b.close();
      pair.close();
    }
  });
}

Deno.test("createPipe() bounds buffering: a write waits until the reader makes room", async () => {
  const [a, b] = createPipe({ capacity: 4 });
  try {
    equal(await a.write(new Uint8Array(10)), 4);
    let second = false;
    const w = a.write(new Uint8Array([1, 2])).then((n) => {
      second = true;
      return n;
    });
    await Promise.resolve();
    equal(second, false);
    equal(await b.read(new Uint8Array(3)), 3);
    equal(await w, 2);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("createPipe() close() ends pending operations on both ends", async () => {
  const [a, b] = createPipe({ capacity: 1 });
  await a.write(new Uint8Array([7]));
  const pendingWrite = a.write(new Uint8Array(1));
  const pendingLocalRead = a.read(new Uint8Array(4));
  a.close();
  await rejects(pendingWrite, /closed/);
  equal(await pendingLocalRead, null);
  // The peer still reads what was written before the close, then end of stream.
  const buf = new Uint8Array(4);
  equal(await b.read(buf), 1);
  equal(buf[0], 7);
  equal(await b.read(buf), null);
  await rejects(b.write(new Uint8Array(1)), /peer closed/);
  b.close();
});

Deno.test("dialTls() offers the wmproxy/1 ALPN id and fails against a server without it", async () => {
  const certs = await testCerts();
  const listener = listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: certs.cert,
    key: certs.key,
    alpnProtocols: ["h2"],
  });
  const server = listener.accept().then(async (c) => {
    await c.handshake().catch(() => {});
    return c;
  });
  try {
    await rejects(
      dialTls(listener.addr, { caCerts: [certs.caCert] }),
      /NoApplicationProtocol|ALPN/,
    );
  } finally {
    (await server).close();
    listener.close();
  }
});
