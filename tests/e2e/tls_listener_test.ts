/**
 * The `http` section's TLS listener in the real program: half-sent requests
 * do not pile up, the connection cap holds, and it still serves h2.
 */
import assert from "node:assert/strict";
import { generateCertificates } from "@/tls/certificates.ts";
import { curl, startWmproxy, tempDir, writeConfig } from "./_harness.ts";

/** Reads until the peer closes (EOF or reset); rejects after `ms` naming `what`. */
function closedWithin(conn: Deno.Conn, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`Cannot see ${what} closed within ${ms} ms`)),
      ms,
    );
    (async () => {
      const buf = new Uint8Array(16 * 1024);
      try {
        while ((await conn.read(buf)) !== null) { /* data before the close */ }
      } catch {
        // a reset is a close too
      }
      clearTimeout(timer);
      resolve();
    })();
  });
}

Deno.test("TLS listener (process): 50 half-sent requests are closed by client_header, the cap holds, h2 still works", async () => {
  await using dir = await tempDir();
  const g = await generateCertificates({ names: ["localhost", "127.0.0.1"] });
  await Deno.writeTextFile(`${dir.path}/c.crt`, g.server.cert);
  await Deno.writeTextFile(`${dir.path}/c.key`, g.server.key);
  await Deno.writeTextFile(`${dir.path}/ca.crt`, g.ca.cert);
  const config = (limits: string) =>
    writeConfig(
      dir.path,
      "tls.yaml",
      `
http:
  ${limits}
  servers:
    - listen_tls: ["127.0.0.1:0"]
      tls: { cert: "${dir.path}/c.crt", key: "${dir.path}/c.key" }
      locations: [{ path: /, static_response: { body: "ok $scheme" } }]
`,
    );
  await using p = startWmproxy(["-c", await config("timeouts: { client_header: 300ms }")]);
  const e = await p.waitForEvent("listening", { component: "http", tls: true });
  const port = Number(String(e.addr).split(":").pop());
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      const c = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [g.ca.cert] });
      await c.handshake();
      await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: "));
      conns.push(c);
    }
    await Promise.all(conns.map((c, i) => closedWithin(c, 15_000, `half-sent request ${i}`)));
    const r = await curl([
      "--http2",
      "--cacert",
      `${dir.path}/ca.crt`,
      "-w",
      " %{http_version}",
      `https://127.0.0.1:${port}/`,
    ]);
    assert.equal(r.stdout, "ok https 2", r.stderr);
    // Another process with a cap of 60 and a long header timeout: 60 silent
    // TCP connections fill the cap; the 61st is closed at once.
    await using capped = startWmproxy([
      "-c",
      await config("max_connections: 60\n  timeouts: { client_header: 60s }"),
    ]);
    const e2 = await capped.waitForEvent("listening", { component: "http", tls: true });
    const port2 = Number(String(e2.addr).split(":").pop());
    for (let i = 0; i < 60; i++) {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: port2 }));
    }
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: port2 });
    conns.push(extra);
    await closedWithin(extra, 5_000, "the 61st connection");
    await capped.waitForEvent("connection_rejected", { component: "http" });
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed by the server
      }
    }
  }
});
