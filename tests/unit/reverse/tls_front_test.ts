/**
 * TLS listeners of the `http` section (src/reverse/tls_front.ts) in process:
 * header, handshake and keep-alive timeouts, the connection cap, HTTP/2.
 */
import assert from "node:assert/strict";
import { startHttpSection } from "@/reverse/mod.ts";
import { generateCertificates } from "@/tls/certificates.ts";
import { httpConfig, memoryLog } from "./_helpers.ts";

interface Tls extends AsyncDisposable {
  cert: string;
  key: string;
  ca: string;
}

/** A certificate for localhost and 127.0.0.1 in a temp dir. */
async function tlsFiles(): Promise<Tls> {
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-tls-front-" });
  const g = await generateCertificates({ names: ["localhost", "127.0.0.1"] });
  await Deno.writeTextFile(`${dir}/c.crt`, g.server.cert);
  await Deno.writeTextFile(`${dir}/c.key`, g.server.key);
  return {
    cert: `${dir}/c.crt`,
    key: `${dir}/c.key`,
    ca: g.ca.cert,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function tlsConfig(t: Tls, extra: Record<string, unknown> = {}) {
  return httpConfig({
    ...extra,
    servers: [{
      listen_tls: ["127.0.0.1:0"],
      tls: { cert: t.cert, key: t.key },
      locations: [{ path: "/", static_response: { body: "$scheme $remote_addr" } }],
    }],
  });
}

function portOf(addr: string): number {
  return Number(addr.split(":").pop());
}

function connectTls(port: number, t: Tls, alpnProtocols?: string[]): Promise<Deno.TlsConn> {
  return Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [t.ca],
    ...(alpnProtocols ? { alpnProtocols } : {}),
  });
}

/**
 * Reads until the peer closes (EOF or reset), ignoring data; rejects after
 * `ms` saying what it waited for.
 */
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

/** Sends one GET and reads its response (Content-Length or chunked). */
async function get(conn: Deno.Conn, path: string): Promise<{ status: number; body: string }> {
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`));
  let text = "";
  const buf = new Uint8Array(16 * 1024);
  while (true) {
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) {
      const head = text.slice(0, end);
      const rest = text.slice(end + 4);
      const status = Number(text.slice(9, 12));
      if (/transfer-encoding: *chunked/i.test(head)) {
        if (rest.endsWith("0\r\n\r\n")) {
          let body = "";
          let at = 0;
          while (true) {
            const nl = rest.indexOf("\r\n", at);
            const size = parseInt(rest.slice(at, nl), 16);
            if (size === 0) break;
            body += rest.slice(nl + 2, nl + 2 + size);
            at = nl + 2 + size + 2;
          }
          return { status, body };
        }
      } else {
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? "0");
        if (rest.length >= length) return { status, body: rest.slice(0, length) };
      }
    }
    const n = await conn.read(buf);
    if (n === null) throw new Error(`Cannot read a response: closed after ${JSON.stringify(text)}`);
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // closed by the server already
    }
  }
}

Deno.test("TLS listener: 60 half-sent requests are all closed after the client header timeout", async () => {
  await using t = await tlsFiles();
  await using section = await startHttpSection(
    tlsConfig(t, { timeouts: { client_header: "300ms", keep_alive: "30s" } }),
    { log: memoryLog().log },
  );
  const port = portOf(section.listeners[0]!.addr);
  const conns: Deno.TlsConn[] = [];
  try {
    for (let i = 0; i < 60; i++) {
      const c = await connectTls(port, t);
      await c.handshake();
      await c.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: local"));
      conns.push(c);
    }
    await Promise.all(conns.map((c, i) => closedWithin(c, 10_000, `half-sent request ${i}`)));
    // The listener still serves a complete request.
    const ok = await connectTls(port, t);
    conns.push(ok);
    assert.deepEqual(await get(ok, "/"), { status: 200, body: "https 127.0.0.1" });
  } finally {
    closeAll(conns);
  }
});

Deno.test("TLS listener: a connection that never finishes its handshake is closed", async () => {
  await using t = await tlsFiles();
  const { log, events } = memoryLog();
  await using section = await startHttpSection(
    tlsConfig(t, { timeouts: { client_header: "300ms" } }),
    { log },
  );
  const port = portOf(section.listeners[0]!.addr);
  const silent = await Deno.connect({ hostname: "127.0.0.1", port });
  const partial = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await partial.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // a ClientHello's start
    await closedWithin(silent, 10_000, "a silent TCP connection");
    await closedWithin(partial, 10_000, "a connection with half a ClientHello");
    assert.ok(
      events("protocol_error").some((e) => /no TLS handshake within 300 ms/.test(String(e.error))),
    );
  } finally {
    closeAll([silent, partial]);
  }
});

Deno.test("TLS listener: max_connections closes the next connection at once while the first are held", async () => {
  await using t = await tlsFiles();
  const { log, events } = memoryLog();
  await using section = await startHttpSection(
    tlsConfig(t, { max_connections: 3, timeouts: { client_header: "30s", keep_alive: "30s" } }),
    { log },
  );
  const port = portOf(section.listeners[0]!.addr);
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const c = await connectTls(port, t);
      assert.equal((await get(c, "/")).status, 200); // kept alive, counted
      held.push(c);
    }
    const extra = await Deno.connect({ hostname: "127.0.0.1", port });
    held.push(extra);
    await closedWithin(extra, 5_000, "the connection over max_connections");
    const [rejected] = events("connection_rejected");
    assert.match(String(rejected?.reason), /max_connections \(3\)/);
    // One held connection goes: a new one is served again (once the server saw the close).
    held.shift()!.close();
    const deadline = Date.now() + 10_000;
    while (true) {
      const c = await connectTls(port, t);
      held.push(c);
      const res = await get(c, "/").catch(() => undefined);
      if (res !== undefined) {
        assert.equal(res.body, "https 127.0.0.1");
        break;
      }
      assert.ok(Date.now() < deadline, "no connection was accepted again within 10 s");
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    closeAll(held);
  }
});

Deno.test("TLS listener: an idle keep-alive connection (HTTP/1.1 and h2) is closed after keep_alive", async () => {
  await using t = await tlsFiles();
  await using section = await startHttpSection(
    tlsConfig(t, { timeouts: { client_header: "30s", keep_alive: "300ms" } }),
    { log: memoryLog().log },
  );
  const port = portOf(section.listeners[0]!.addr);
  const h1 = await connectTls(port, t, ["http/1.1"]);
  const h2 = await connectTls(port, t, ["h2"]);
  try {
    assert.deepEqual(await get(h1, "/"), { status: 200, body: "https 127.0.0.1" });
    assert.equal((await h2.handshake()).alpnProtocol, "h2");
    // The client preface and an empty SETTINGS frame, then silence.
    await h2.write(
      new Uint8Array([
        ...new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        0,
        0,
        0,
        4,
        0,
        0,
        0,
        0,
        0,
      ]),
    );
    await closedWithin(h1, 10_000, "an idle HTTP/1.1 keep-alive connection");
    await closedWithin(h2, 10_000, "an idle h2 connection");
  } finally {
    closeAll([h1, h2]);
  }
});

Deno.test("TLS listener: curl over h2 and HTTP/1.1 sees https and the visitor's address", async () => {
  await using t = await tlsFiles();
  await Deno.writeTextFile(`${t.cert}.ca`, t.ca);
  await using section = await startHttpSection(tlsConfig(t), { log: memoryLog().log });
  const addr = section.listeners[0]!.addr;
  for (const [flag, version] of [["--http2", "2"], ["--http1.1", "1.1"]]) {
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--max-time",
        "10",
        flag!,
        "--cacert",
        `${t.cert}.ca`,
        "-w",
        " %{http_version}",
        `https://${addr}/`,
      ],
    }).output();
    assert.equal(new TextDecoder().decode(out.stdout), `https 127.0.0.1 ${version}`);
  }
});

Deno.test("plain proxy front: max_connections closes the next connection at once", async () => {
  const { log, events } = memoryLog();
  await using section = await startHttpSection(
    httpConfig({
      max_connections: 2,
      servers: [{
        listen: ["127.0.0.1:0"],
        timeouts: { client_header: "30s" },
        locations: [{ path: "/", proxy_pass: "http://127.0.0.1:9" }],
      }],
    }),
    { log },
  );
  const port = portOf(section.listeners[0]!.addr);
  const held = [
    await Deno.connect({ hostname: "127.0.0.1", port }),
    await Deno.connect({ hostname: "127.0.0.1", port }),
  ];
  try {
    const extra = await Deno.connect({ hostname: "127.0.0.1", port });
    held.push(extra);
    await closedWithin(extra, 5_000, "the connection over max_connections");
    assert.equal(events("connection_rejected").length, 1);
  } finally {
    closeAll(held);
  }
});

Deno.test("TLS listener: SNI still picks each name's certificate after a reload that keeps the listener", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-tls-front-" });
  try {
    const cas: Record<string, string> = {};
    for (const name of ["a.test", "b.test"]) {
      const g = await generateCertificates({ names: [name] });
      await Deno.writeTextFile(`${dir}/${name}.crt`, g.server.cert);
      await Deno.writeTextFile(`${dir}/${name}.key`, g.server.key);
      cas[name] = g.ca.cert;
    }
    const config = (body: string) =>
      httpConfig({
        servers: ["a.test", "b.test"].map((name) => ({
          listen_tls: ["127.0.0.1:0"],
          server_names: [name],
          tls: { cert: `${dir}/${name}.crt`, key: `${dir}/${name}.key` },
          locations: [{ path: "/", static_response: { body: `${body} ${name}` } }],
        })),
      });
    await using section = await startHttpSection(config("v1"), { log: memoryLog().log });
    const port = portOf(section.listeners[0]!.addr);
    const report = await section.update(config("v2"));
    assert.equal(report.kept.length, 1);
    for (const name of ["a.test", "b.test"]) {
      await Deno.writeTextFile(`${dir}/${name}.ca`, cas[name]!);
      const out = await new Deno.Command("curl", {
        args: [
          "-sS",
          "--max-time",
          "10",
          "--cacert",
          `${dir}/${name}.ca`,
          "--resolve",
          `${name}:${port}:127.0.0.1`,
          `https://${name}:${port}/`,
        ],
      }).output();
      assert.equal(
        new TextDecoder().decode(out.stdout),
        `v2 ${name}`,
        new TextDecoder().decode(out.stderr),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
