import assert from "node:assert/strict";
import {
  certificateFingerprint,
  certificateNames,
  generateCertificates,
  loadServerIdentity,
} from "@/tls/mod.ts";

Deno.test("generateCertificates() makes a CA and a server certificate that Deno TLS accepts", async () => {
  const gen = await generateCertificates({ names: ["localhost", "127.0.0.1"] });
  assert.match(gen.caFingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.notEqual(gen.caFingerprint, gen.serverFingerprint);
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: gen.server.cert,
    key: gen.server.key,
  });
  const served = (async () => {
    const conn = await listener.accept();
    await conn.handshake();
    await conn.write(new TextEncoder().encode("ok"));
    conn.close();
  })();
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    caCerts: [gen.ca.cert],
  });
  const buf = new Uint8Array(8);
  const n = await conn.read(buf);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "ok");
  conn.close();
  await served;
  listener.close();
});

Deno.test("generateCertificates() output is rejected by a client that trusts another CA", async () => {
  const a = await generateCertificates();
  const b = await generateCertificates();
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: a.server.cert,
    key: a.server.key,
  });
  const served = listener.accept().then(async (c) => {
    await c.handshake().catch(() => {});
    c.close();
  });
  const err = await Deno.connectTls({
    hostname: "localhost",
    port: listener.addr.port,
    caCerts: [b.ca.cert],
  })
    .then(async (c) => {
      try {
        await c.handshake();
      } finally {
        c.close();
      }
    })
    .then(() => undefined, (e) => e);
  assert.ok(err instanceof Error, "the handshake must fail");
  await served;
  listener.close();
});

Deno.test("loadServerIdentity() creates files once and reuses them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-id-" });
  try {
    const first = await loadServerIdentity({
      certFile: undefined,
      keyFile: undefined,
      stateDir: dir,
    });
    assert.equal(first.created, true);
    assert.equal((await Deno.stat(`${dir}/server.key`)).mode! & 0o777, 0o600);
    const second = await loadServerIdentity({
      certFile: undefined,
      keyFile: undefined,
      stateDir: dir,
    });
    assert.equal(second.created, false);
    assert.equal(second.fingerprint, first.fingerprint);
    assert.equal(second.cert, first.cert);
    assert.equal(
      await certificateFingerprint(await Deno.readTextFile(first.caFile!)),
      first.fingerprint,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("certificateNames() lists the DNS names and IPs a certificate is valid for", async () => {
  const gen = await generateCertificates({ names: ["Tunnel.Example.com", "10.1.2.3"] });
  assert.deepEqual(certificateNames(gen.server.cert), ["tunnel.example.com", "10.1.2.3"]);
});
