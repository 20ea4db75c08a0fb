/**
 * The forward proxy's HTTP and CONNECT sides, in process, driven by curl and
 * raw clients against real origins on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { dialTcpTarget, startForwardProxy } from "@/proxy/mod.ts";
import { Logger, MemorySink } from "@/observability/log.ts";
import type { ByteConn } from "@/transport/conn.ts";
import {
  closedPort,
  connect,
  curl,
  readAll,
  readUntil,
  send,
  sha256,
  startOrigin,
  startRawOrigin,
  startTestProxy,
  testConfig,
  user,
} from "./_helpers.ts";
import { waitFor } from "../../_wait.ts";

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A plain request through the proxy still works (the proxy keeps serving). */
async function assertStillServes(proxyAddr: string): Promise<void> {
  await using o = startOrigin("OK");
  const r = await curl(["-x", `http://${proxyAddr}`, `${o.url}/after`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "OK /after");
}

Deno.test("startForwardProxy() logs listening with the real bound address", async () => {
  await using p = await startTestProxy();
  assert.notEqual(p.port, 0);
  const ev = await p.waitForEvent("listening");
  assert.equal(ev.component, "proxy");
  assert.equal(ev.addr, `127.0.0.1:${p.port}`);
});

Deno.test("startForwardProxy() throws Cannot listen on ADDR when the port is taken", async () => {
  await using p = await startTestProxy();
  const log = new Logger({ sink: new MemorySink() });
  await assert.rejects(
    startForwardProxy(testConfig({ bind: p.addr }), { log }),
    { message: `Cannot listen on "${p.addr}": address already in use` },
  );
});

Deno.test("proxy: curl -x sends two keep-alive requests to two origins on one client connection", async () => {
  await using a = startOrigin("A");
  await using b = startOrigin("B");
  await using p = await startTestProxy();
  const r = await curl([
    "-x",
    `http://${p.addr}`,
    `${a.url}/one`,
    `${b.url}/two`,
    "-w",
    "|%{num_connects}\n",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), ["A /one|1", "B /two|0"]);
  assert.equal(a.requests.length, 1);
  assert.equal(b.requests.length, 1);
  const closed = await p.waitForEvent("connection_closed");
  assert.equal(closed.requests, 2);
  assert.equal(p.proxy.stats.connectionsTotal, 1);
  assert.ok(p.proxy.stats.bytesIn > 0 && p.proxy.stats.bytesOut > 0);
});

Deno.test("proxy: keep-alive requests to the same origin reuse one upstream connection", async () => {
  await using o = startRawOrigin();
  await using p = await startTestProxy();
  const r = await curl(["-x", `http://${p.addr}`, `${o.url}/a`, `${o.url}/b`, `${o.url}/c`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "/a/b/c");
  assert.equal(o.connections, 1);
  assert.equal(p.proxy.stats.connectionsTotal, 1);
});

Deno.test("proxy: a stale reused upstream is replaced transparently", async () => {
  // The origin answers with keep-alive but closes after each response.
  await using o = startRawOrigin((head, conn) => {
    const path = head.split(" ")[1] ?? "";
    setTimeout(() => conn.closeWrite().catch(() => {}), 0);
    return `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`;
  });
  await using p = await startTestProxy();
  const conn = await connect(p.port);
  try {
    for (const path of ["/x", "/y"]) {
      await send(conn, `GET ${o.url}${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const text = await readUntil(conn, path);
      assert.ok(text.startsWith("HTTP/1.1 200 OK"), text);
      await new Promise((r) => setTimeout(r, 50)); // let the origin's close arrive
    }
  } finally {
    conn.close();
  }
  assert.equal(o.connections, 2);
});

Deno.test("proxy: hop-by-hop and Proxy-* headers are removed; Via and X-Forwarded-For are added when configured", async () => {
  await using o = startOrigin("H");
  await using p = await startTestProxy(
    testConfig({ via: true, x_forwarded_for: true, users: [user("u", "p")] }),
  );
  const r = await curl([
    "-x",
    `http://${p.addr}`,
    "--proxy-user",
    "u:p",
    "-H",
    "Proxy-Connection: keep-alive",
    "-H",
    "Connection: X-Secret",
    "-H",
    "X-Secret: 1",
    "-H",
    "X-Kept: 2",
    "-D",
    "-",
    `${o.url}/h`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\r\nvia: 1\.1 wmproxy\r\n/i);
  const h = o.requests[0]!.headers;
  assert.equal(h.get("proxy-authorization"), null);
  assert.equal(h.get("proxy-connection"), null);
  assert.equal(h.get("x-secret"), null);
  assert.equal(h.get("x-kept"), "2");
  assert.equal(h.get("via"), "1.1 wmproxy");
  assert.equal(h.get("x-forwarded-for"), "127.0.0.1");
  assert.equal(h.get("host"), `127.0.0.1:${o.port}`);
});

Deno.test("proxy: curl -p -x tunnels through CONNECT", async () => {
  await using a = startOrigin("A");
  await using p = await startTestProxy();
  const r = await curl(["-p", "-x", `http://${p.addr}`, `${a.url}/c`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "A /c");
  const closed = await p.waitForEvent("connection_closed");
  assert.equal(closed.protocol, "https");
  assert.equal(closed.target, `127.0.0.1:${a.port}`);
  assert.ok((closed.bytes_in as number) > 0 && (closed.bytes_out as number) > 0);
});

Deno.test("proxy: --proxy-user right is served, wrong gets 407 with Proxy-Authenticate", async () => {
  await using a = startOrigin("A");
  await using p = await startTestProxy(testConfig({ users: [user("alice", "s3cret")] }));
  const ok = await curl(["-x", `http://${p.addr}`, "--proxy-user", "alice:s3cret", `${a.url}/ok`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, "A /ok");
  const okConnect = await curl([
    "-p",
    "-x",
    `http://${p.addr}`,
    "--proxy-user",
    "alice:s3cret",
    `${a.url}/t`,
  ]);
  assert.equal(okConnect.stdout, "A /t", okConnect.stderr);

  const bad = await curl([
    "-x",
    `http://${p.addr}`,
    "--proxy-user",
    "alice:nope",
    "-i",
    `${a.url}/x`,
  ]);
  assert.equal(bad.code, 0, bad.stderr);
  assert.match(bad.stdout, /^HTTP\/1\.1 407 Proxy Authentication Required\r\n/);
  assert.match(bad.stdout, /\r\nProxy-Authenticate: Basic realm="wmproxy"\r\n/);
  const none = await curl(["-x", `http://${p.addr}`, "-i", `${a.url}/x`]);
  assert.match(none.stdout, /^HTTP\/1\.1 407 /);
  assert.equal(a.requests.length, 2);

  const failed = p.events("auth_failed");
  assert.equal(failed.length, 2);
  assert.equal(failed[0]!.protocol, "http");
  assert.equal(failed[0]!.peer !== undefined, true);
  assert.ok(!JSON.stringify(p.lines()).includes("nope"), "the password never reaches the log");
});

Deno.test("proxy: failed or malformed auth never dials, and the proxy keeps serving", async () => {
  await using a = startOrigin("A");
  const dials: string[] = [];
  const dial = (host: string, port: number, signal: AbortSignal): Promise<ByteConn> => {
    dials.push(`${host}:${port}`);
    return dialTcpTarget(host, port, signal);
  };
  await using p = await startTestProxy(testConfig({ users: [user("u", "pw")] }), { dial });
  const attempts = [
    `GET ${a.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET ${a.url}/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic !!!!\r\n\r\n`,
    `GET ${a.url}/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic a\r\n\r\n`,
    `GET ${a.url}/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic ${btoa("nocolon")}\r\n\r\n`,
    `GET ${a.url}/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic ${btoa("u:wrong")}\r\n\r\n`,
    `CONNECT 127.0.0.1:${a.port} HTTP/1.1\r\nProxy-Authorization: Basic ${btoa("x:pw")}\r\n\r\n`,
  ];
  for (const req of attempts) {
    const conn = await connect(p.port);
    await send(conn, req);
    const text = dec(await readAll(conn));
    conn.close();
    assert.match(text, /^HTTP\/1\.1 407 /, req);
    assert.match(text, /Proxy-Authenticate: Basic realm="wmproxy"/);
  }
  assert.deepEqual(dials, []);
  assert.equal(a.requests.length, 0);
  const ok = await curl(["-x", `http://${p.addr}`, "--proxy-user", "u:pw", `${a.url}/fine`]);
  assert.equal(ok.stdout, "A /fine", ok.stderr);
  assert.deepEqual(dials, [`127.0.0.1:${a.port}`]);
});

Deno.test("proxy: a chunked upload streams through intact", async () => {
  await using o = startOrigin("U");
  await using p = await startTestProxy();
  const body = new Uint8Array(3 * 1024 * 1024 + 7);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
  const r = await curl(
    [
      "-x",
      `http://${p.addr}`,
      "-H",
      "Transfer-Encoding: chunked",
      "--data-binary",
      "@-",
      `${o.url}/up`,
    ],
    body,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `U /up len=${body.length} sha=${await sha256(body)}`);
  assert.equal(o.requests[0]!.headers.get("transfer-encoding"), "chunked");
});

Deno.test("proxy: an 8 MiB download (content-length) and a chunked download arrive intact", async () => {
  const big = new Uint8Array(8 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 13)) & 0xff;
  await using o = startOrigin("D", "127.0.0.1", (req) => {
    if (new URL(req.url).pathname === "/chunked") {
      let sent = 0;
      return new Response(
        new ReadableStream({
          pull(c) {
            if (sent >= big.length) return c.close();
            const part = big.subarray(sent, Math.min(big.length, sent + 100_000));
            sent += part.length;
            c.enqueue(part);
          },
        }),
      );
    }
    return new Response(big);
  });
  await using p = await startTestProxy();
  const want = await sha256(big);
  const r = await curl(["-x", `http://${p.addr}`, `${o.url}/big`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.bytes.length, big.length);
  assert.equal(await sha256(r.bytes), want);
  const c = await curl(["-x", `http://${p.addr}`, "-D", "/dev/stderr", `${o.url}/chunked`]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /transfer-encoding: chunked/i);
  assert.equal(await sha256(c.bytes), want);
});

Deno.test("proxy: Expect: 100-continue gets the origin's 100 before the body is sent", async () => {
  await using o = startRawOrigin(async (head, conn, leftover) => {
    assert.equal(leftover.length, 0, "no body before 100 Continue");
    await send(conn, "HTTP/1.1 100 Continue\r\n\r\n");
    const len = Number(/content-length: (\d+)/i.exec(head)![1]);
    const body = await readUntil(conn, "!", len);
    return `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  });
  await using p = await startTestProxy();
  const conn = await connect(p.port);
  try {
    await send(
      conn,
      `POST ${o.url}/e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n`,
    );
    const interim = await readUntil(conn, "\r\n\r\n");
    assert.equal(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    await send(conn, "hello!");
    const final = await readUntil(conn, "hello!");
    assert.match(final, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhello!$/);
  } finally {
    conn.close();
  }
});

Deno.test("proxy: a client that half-closes after its request still gets the response (HTTP and CONNECT)", async () => {
  await using a = startOrigin("A");
  await using p = await startTestProxy();
  const plain = await connect(p.port);
  await send(plain, `GET ${a.url}/half HTTP/1.1\r\nHost: x\r\n\r\n`);
  await plain.closeWrite();
  const text = dec(await readAll(plain));
  plain.close();
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(text.endsWith("A /half"), text);

  const tunnel = await connect(p.port);
  await send(tunnel, `CONNECT 127.0.0.1:${a.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(await readUntil(tunnel, "\r\n\r\n"), "HTTP/1.1 200 Connection established\r\n\r\n");
  await send(tunnel, `GET /inner HTTP/1.1\r\nHost: x\r\n\r\n`);
  await tunnel.closeWrite();
  const inner = dec(await readAll(tunnel));
  tunnel.close();
  assert.ok(inner.endsWith("A /inner"), inner);
});

Deno.test("proxy: an unreachable target is a 502 and a dial timeout a 504", async () => {
  await using p = await startTestProxy(testConfig({ limits: { connect_timeout_ms: 200 } }));
  const port = closedPort();
  const r = await curl(["-x", `http://${p.addr}`, "-i", `http://127.0.0.1:${port}/`]);
  assert.match(r.stdout, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  assert.ok(
    r.stdout.includes(`Cannot connect to "127.0.0.1:${port}": connection refused`),
    r.stdout,
  );
  const c = await curl(["-p", "-x", `http://${p.addr}`, `http://127.0.0.1:${port}/`]);
  assert.notEqual(c.code, 0);
  assert.match(c.stderr, /502/);

  // A dial that never completes (honouring its signal) times out.
  const hang = (_h: string, _p: number, signal: AbortSignal) =>
    new Promise<ByteConn>((_, reject) =>
      signal.addEventListener("abort", () => reject(signal.reason))
    );
  await using slow = await startTestProxy(
    testConfig({ limits: { connect_timeout_ms: 150 } }),
    { dial: hang },
  );
  const t = await curl(["-x", `http://${slow.addr}`, "-i", "http://10.255.255.1/"]);
  assert.match(t.stdout, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
  assert.match(t.stdout, /timed out/);
  await assertStillServes(p.addr);
});

Deno.test("proxy: bad input gets a clear reply or close, and the proxy keeps serving", async (t) => {
  await using a = startOrigin("A");
  await using p = await startTestProxy(testConfig({ limits: { max_header_bytes: 16 * 1024 } }));
  const exchange = async (data: string | Uint8Array, closeWrite = false) => {
    const conn = await connect(p.port);
    try {
      await send(conn, data).catch(() => {});
      if (closeWrite) await conn.closeWrite().catch(() => {});
      return dec(await readAll(conn));
    } finally {
      conn.close();
    }
  };
  await t.step("garbage first bytes: closed without a reply", async () => {
    const text = await exchange(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0xff]));
    assert.equal(text, "");
    const ev = await p.waitForEvent("protocol_error");
    assert.match(String(ev.error), /first byte 0x16/);
  });
  await t.step("origin-form request: 400 asking for an absolute URL", async () => {
    const text = await exchange("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(text, /absolute URL/);
  });
  await t.step("malformed request line: 400", async () => {
    const text = await exchange("GET  nonsense\r\n\r\n");
    assert.match(text, /^HTTP\/1\.1 400 /);
  });
  await t.step("a 1 MiB header: 431, never a crash", async () => {
    const huge = `GET ${a.url}/ HTTP/1.1\r\nX-Big: ${"x".repeat(1024 * 1024)}\r\n\r\n`;
    const text = await exchange(huge);
    // The linger close (drain before closing) lets the reply arrive despite unread bytes.
    assert.match(text.slice(0, 200), /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  });
  await t.step("a head cut off by the client: closed", async () => {
    const text = await exchange(`GET ${a.url}/ HTTP/1.1\r\nHost: x\r\n`, true);
    assert.equal(text, "");
  });
  await t.step("conflicting Content-Length: 400", async () => {
    const text = await exchange(
      `POST ${a.url}/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
    );
    assert.match(text, /^HTTP\/1\.1 400 /);
  });
  await t.step("a bad chunked body: the connection is closed", async () => {
    const text = await exchange(
      `POST ${a.url}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n`,
      true,
    );
    assert.ok(!text.includes("200 OK"), text);
  });
  await t.step("the proxy still serves", () => assertStillServes(p.addr));
});

Deno.test("proxy: a disabled protocol gets a 403 with a body and a log line", async () => {
  await using a = startOrigin("A");
  await using p = await startTestProxy(testConfig({ protocols: ["socks5"] }));
  const r = await curl(["-x", `http://${p.addr}`, "-i", `${a.url}/`]);
  assert.match(r.stdout, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(r.stdout, /protocol "http" is disabled/);
  const c = await curl(["-p", "-x", `http://${p.addr}`, `${a.url}/`]);
  assert.notEqual(c.code, 0);
  const ev = await p.waitForEvent("protocol_disabled", (l) => l.protocol === "https");
  assert.equal(ev.component, "proxy");
  assert.equal(a.requests.length, 0);
});

Deno.test("proxy: max_connections closes extra connections at once", async () => {
  await using p = await startTestProxy(testConfig({ limits: { max_connections: 1 } }));
  const first = await connect(p.port);
  await send(first, "G"); // occupy the only slot with an incomplete head
  await waitFor(() => p.proxy.stats.connectionsOpen >= 1, "the first connection to be open");
  const second = await connect(p.port);
  const text = await readAll(second);
  second.close();
  assert.equal(text.length, 0);
  assert.equal(p.proxy.stats.connectionsRejected, 1);
  await p.waitForEvent("connection_rejected");
  first.close();
  await waitFor(() => p.proxy.stats.connectionsOpen === 0, "every connection to be closed");
  await assertStillServes(p.addr);
});

Deno.test("proxy: a client that sends nothing is closed after handshake_timeout", async () => {
  await using p = await startTestProxy(testConfig({ limits: { handshake_timeout_ms: 150 } }));
  const conn = await connect(p.port);
  const got = await readAll(conn);
  conn.close();
  assert.equal(got.length, 0);
  const ev = await p.waitForEvent("connection_closed");
  assert.match(String(ev.error), /handshake timeout after 150 ms/);
});

Deno.test("proxy: a silent CONNECT tunnel is closed after idle_timeout", async () => {
  await using o = startRawOrigin();
  await using p = await startTestProxy(testConfig({ limits: { idle_timeout_ms: 200 } }));
  const conn = await connect(p.port);
  await send(conn, `CONNECT 127.0.0.1:${o.port} HTTP/1.1\r\n\r\n`);
  assert.match(await readUntil(conn, "\r\n\r\n"), /^HTTP\/1\.1 200 /);
  const rest = await readAll(conn);
  conn.close();
  assert.equal(rest.length, 0);
  const ev = await p.waitForEvent("connection_closed");
  assert.match(String(ev.error), /idle timeout/);
});

Deno.test("ForwardProxy.close() closes live tunnels and stops accepting", async () => {
  await using o = startRawOrigin();
  const p = await startTestProxy();
  const conn = await connect(p.port);
  await send(conn, `CONNECT 127.0.0.1:${o.port} HTTP/1.1\r\n\r\n`);
  assert.match(await readUntil(conn, "\r\n\r\n"), /^HTTP\/1\.1 200 /);
  await p.proxy.close();
  assert.equal((await readAll(conn)).length, 0);
  conn.close();
  await assert.rejects(connect(p.port));
  await p.proxy.close(); // twice is fine
});

Deno.test("proxy: keep-alive waits reuse one idle timer: busy connections live on, idle ones close after idle_timeout", async () => {
  await using o = startRawOrigin();
  await using p = await startTestProxy(testConfig({ limits: { idle_timeout_ms: 600 } }));
  const conn = await connect(p.port);
  try {
    // Five requests 150 ms apart: 750 ms in all, but no wait is near 600 ms long.
    for (const path of ["/1", "/2", "/3", "/4", "/5"]) {
      await send(conn, `GET ${o.url}${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const text = await readUntil(conn, path);
      assert.ok(text.startsWith("HTTP/1.1 200 OK"), text);
      await new Promise((r) => setTimeout(r, 150));
    }
    const rest = await readAll(conn);
    assert.equal(rest.length, 0);
  } finally {
    conn.close();
  }
  const ev = await p.waitForEvent("connection_closed");
  assert.equal(ev.requests, 5);
  assert.equal(o.connections, 1);
});

Deno.test("proxy: an origin that does not answer within idle_timeout gets a 504", async () => {
  let release = () => {};
  const stalled = new Promise<void>((r) => release = r);
  await using o = startRawOrigin(async (head) => {
    if (head.includes("/slow")) await stalled;
    return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  });
  await using p = await startTestProxy(testConfig({ limits: { idle_timeout_ms: 150 } }));
  const conn = await connect(p.port);
  try {
    await send(conn, `GET ${o.url}/fast HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(await readUntil(conn, "ok"), /^HTTP\/1\.1 200 OK/);
    await send(conn, `GET ${o.url}/slow HTTP/1.1\r\nHost: x\r\n\r\n`);
    const text = dec(await readAll(conn));
    assert.match(text, /^HTTP\/1\.1 504 /);
    assert.match(text, /no response within 150 ms/);
  } finally {
    conn.close();
    release();
  }
});
