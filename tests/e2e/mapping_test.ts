/**
 * The second seed flow (DESIGN.md §2): LAN services exposed on the tunnel
 * server's public side, HTTP routed per request by Host, HTTPS by SNI, TCP and
 * UDP by port. Real processes on 127.0.0.1; the LAN services run in the test.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  curl,
  startTunnelClient,
  startTunnelServer,
  startWmproxy,
  tempDir,
  type TunnelServer,
  writeConfig,
} from "./_harness.ts";
import { generateCertificates } from "@/tls/mod.ts";

const TOKEN = "mapping-token-123";

async function server(dir: string, extra: string[] = []): Promise<TunnelServer & { http: string }> {
  const s = await startTunnelServer([
    "--mode",
    "server",
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir,
    "--http",
    "127.0.0.1:0",
    ...extra,
  ]);
  return { ...s, http: await s.proc.listeningAddr("http") };
}

function client(s: TunnelServer, maps: string[], extra: string[] = []) {
  return startTunnelClient(s, TOKEN, [
    ...maps.flatMap((m) => ["--map", m]),
    ...extra,
  ]);
}

/** A LAN HTTP service that names itself and echoes what it saw. */
function lanHttp(name: string) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (req.headers.get("upgrade") === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo:${e.data}`);
      return response;
    }
    const seen = Object.fromEntries(req.headers);
    return Response.json({ name, path: new URL(req.url).pathname, headers: seen });
  });
  return {
    addr: `127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** Sends raw HTTP/1.1 requests on ONE connection and returns the raw responses text. */
async function rawRequests(addr: string, requests: string[]): Promise<string> {
  const port = Number(addr.slice(addr.lastIndexOf(":") + 1));
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(requests.join("")));
  const decoder = new TextDecoder();
  let text = "";
  const buf = new Uint8Array(65536);
  const deadline = setTimeout(() => conn.close(), 10_000);
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      if ((text.match(/HTTP\/1\.1 /g) ?? []).length >= requests.length && /\}\s*$/.test(text)) {
        break;
      }
    }
  } catch {
    // closed by the deadline
  } finally {
    clearTimeout(deadline);
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
  return text;
}

Deno.test("mapping: HTTP routes each request on one keep-alive connection by its own Host, to two clients", async () => {
  await using dir = await tempDir();
  await using lanA = lanHttp("A");
  await using lanB = lanHttp("B");
  const s = await server(dir.path);
  await using _s = s.proc;
  await using a = client(s, [`a=http:${lanA.addr}@a.test`]);
  await using b = client(s, [`b=http:${lanB.addr}@*.b.test`]);
  await a.waitForEvent("mapping_ready", { mapping: "a" });
  await b.waitForEvent("mapping_ready", { mapping: "b" });

  const text = await rawRequests(s.http, [
    "GET /one HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "GET /two HTTP/1.1\r\nHost: x.b.test\r\n\r\n",
  ]);
  const bodies = [...text.matchAll(/\{"name":"(\w)","path":"([^"]+)"/g)].map((m) =>
    `${m[1]}${m[2]}`
  );
  assert.deepEqual(bodies, ["A/one", "B/two"], text);

  const viaCurl = await curl(["-H", "Host: a.test", `http://${s.http}/c`]);
  assert.equal(JSON.parse(viaCurl.stdout).name, "A");
  const unknown = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-H",
    "Host: nope.test",
    `http://${s.http}/`,
  ]);
  assert.equal(unknown.stdout, "404");
  const wildcardRoot = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-H",
    "Host: b.test",
    `http://${s.http}/`,
  ]);
  assert.equal(wildcardRoot.stdout, "404", "*.b.test does not match b.test itself");
});

Deno.test("mapping: a stopped LAN service gives 502 with the reason in the log; an offline client gives 502", async () => {
  await using dir = await tempDir();
  const s = await server(dir.path);
  await using _s = s.proc;
  using dead = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadAddr = `127.0.0.1:${dead.addr.port}`;
  dead.close();
  const c = client(s, [`gone=http:${deadAddr}@gone.test`]);
  await c.waitForEvent("mapping_ready");
  const r = await curl(["-s", "-w", "|%{http_code}", "-H", "Host: gone.test", `http://${s.http}/`]);
  assert.match(r.stdout, /\|502$/);
  const why = await c.waitForEvent("mapping_error");
  assert.match(String(why.error), /Cannot reach the LAN service/);
  await c.stop("SIGTERM");
  await s.proc.waitForEvent("mapping_released");
  const offline = await curl([
    "-s",
    "-w",
    "|%{http_code}",
    "-H",
    "Host: gone.test",
    `http://${s.http}/`,
  ]);
  assert.match(offline.stdout, /offline[\s\S]*\|502$/);
});

Deno.test("mapping: header rules, host_rewrite, X-Forwarded-* and basic auth from the client's config", async () => {
  await using dir = await tempDir();
  await using lan = lanHttp("L");
  const s = await server(dir.path);
  await using _s = s.proc;
  const config = await writeConfig(
    dir.path,
    "c.yaml",
    `
client:
  server: "${s.addr}"
  token: "${TOKEN}"
  bind: null
  tls: { ca: "${s.caFile}" }
  mappings:
    - name: web
      type: http
      local_addr: "${lan.addr}"
      domains: [rules.test]
      host_rewrite: intranet.lan
      request_headers:
        - { action: set, name: X-Visitor, value: "$remote_addr via $scheme for $host" }
        - { action: remove, name: X-Drop-Me }
      response_headers:
        - { action: add, name: X-Served-By, value: wmproxy-test }
      basic_auth: [{ username: guest, password: "open sesame" }]
`,
  );
  await using c = startWmproxy(["-c", config]);
  await c.waitForEvent("mapping_ready");
  const denied = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-H",
    "Host: rules.test",
    `http://${s.http}/`,
  ]);
  assert.equal(denied.stdout, "401");
  const r = await curl([
    "-s",
    "-i",
    "-u",
    "guest:open sesame",
    "-H",
    "Host: rules.test",
    "-H",
    "X-Drop-Me: 1",
    `http://${s.http}/p`,
  ]);
  const [head, body] = r.stdout.split("\r\n\r\n");
  assert.match(head!, /x-served-by: wmproxy-test/i);
  const seen = JSON.parse(body!).headers;
  assert.equal(seen.host, "intranet.lan");
  assert.equal(seen["x-visitor"], "127.0.0.1 via http for rules.test");
  assert.equal(seen["x-drop-me"], undefined);
  assert.equal(seen["x-forwarded-for"], "127.0.0.1");
  assert.equal(seen["x-forwarded-proto"], "http");
  assert.equal(seen["x-forwarded-host"], "rules.test");
});

Deno.test("mapping: a WebSocket echo passes through an HTTP mapping", async () => {
  await using dir = await tempDir();
  await using lan = lanHttp("W");
  const s = await server(dir.path);
  await using _s = s.proc;
  await using c = client(s, [`ws=http:${lan.addr}@ws.test`]);
  await c.waitForEvent("mapping_ready");
  // By hand, because the WebSocket API sends the URL's host as Host.
  const port = Number(s.http.split(":").pop());
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    "GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  const buf = new Uint8Array(4096);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  assert.match(text, /^HTTP\/1\.1 101 /, text);
  // A masked text frame "ping" (RFC 6455 §5.2), then the unmasked echo back.
  const mask = [1, 2, 3, 4];
  const payload = new TextEncoder().encode("ping").map((b, i) => b ^ mask[i % 4]!);
  await conn.write(new Uint8Array([0x81, 0x80 | payload.length, ...mask, ...payload]));
  const n = await conn.read(buf);
  assert.ok(n !== null && n >= 2);
  assert.equal(buf[0], 0x81, "a text frame");
  assert.equal(new TextDecoder().decode(buf.subarray(2, 2 + buf[1]!)), "echo:ping");
  conn.close();
});

Deno.test("mapping: HTTPS passthrough by SNI reaches the LAN service's own certificate", async () => {
  await using dir = await tempDir();
  const certs = await generateCertificates({ names: ["secure.test"] });
  const caFile = `${dir.path}/lan-ca.pem`;
  await Deno.writeTextFile(caFile, certs.ca.cert);
  const lan = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      cert: certs.server.cert,
      key: certs.server.key,
      onListen() {},
    },
    () => new Response("end-to-end TLS"),
  );
  // Both LAN services sit behind a relay that counts the connections they get:
  // an unknown name must reach neither this client's service nor another's.
  await using mine = countingRelay(lan.addr.port);
  await using theirs = countingRelay(lan.addr.port);
  const s = await server(dir.path, ["--https", "127.0.0.1:0"]);
  await using _s = s.proc;
  const https = await s.proc.listeningAddr("https");
  await using c = client(s, [`tls=https:127.0.0.1:${mine.port}@secure.test`]);
  await c.waitForEvent("mapping_ready");
  await using other = startTunnelClient(s, TOKEN, [
    "--map",
    `victim=https:127.0.0.1:${theirs.port}@victim.test`,
    "--bind",
    "127.0.0.1:0",
  ]);
  await other.waitForEvent("mapping_ready");
  const port = https.slice(https.lastIndexOf(":") + 1);
  const r = await curl([
    "--cacert",
    caFile,
    "--resolve",
    `secure.test:${port}:127.0.0.1`,
    `https://secure.test:${port}/`,
  ]);
  assert.equal(r.stdout, "end-to-end TLS", r.stderr);
  assert.deepEqual([mine.accepted, theirs.accepted], [1, 0]);
  for (const name of ["other.test", "victim.test.evil", "secure.test.x", "xsecure.test"]) {
    const unknown = await curl([
      "--max-time",
      "5",
      "--cacert",
      caFile,
      "--resolve",
      `${name}:${port}:127.0.0.1`,
      `https://${name}:${port}/`,
    ]);
    assert.notEqual(unknown.code, 0, `an unknown SNI ${name} is closed`);
    assert.deepEqual(
      [mine.accepted, theirs.accepted],
      [1, 0],
      `SNI ${name} reached a LAN service`,
    );
  }
  await lan.shutdown();
});

/**
 * A TCP relay on 127.0.0.1:0 in front of `targetPort` that counts the
 * connections it accepts (each is relayed both ways).
 */
function countingRelay(targetPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const relay = { port: (listener.addr as Deno.NetAddr).port, accepted: 0 };
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const conn of listener) {
      relay.accepted++;
      conns.add(conn);
      Deno.connect({ hostname: "127.0.0.1", port: targetPort }).then(async (up) => {
        conns.add(up);
        await Promise.allSettled([
          conn.readable.pipeTo(up.writable),
          up.readable.pipeTo(conn.writable),
        ]);
      }).catch(() => conn.close());
    }
  })();
  return Object.assign(relay, {
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed by its pipe */ }
      }
      await loop.catch(() => {});
    },
  });
}

Deno.test("mapping: HTTPS terminated at the server with a per-domain certificate is then routed as HTTP", async () => {
  await using dir = await tempDir();
  await using lan = lanHttp("T");
  const certs = await generateCertificates({ names: ["term.test"] });
  await Deno.writeTextFile(`${dir.path}/term.pem`, certs.server.cert);
  await Deno.writeTextFile(`${dir.path}/term.key`, certs.server.key);
  await Deno.writeTextFile(`${dir.path}/term-ca.pem`, certs.ca.cert);
  const config = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  https_bind: "127.0.0.1:0"
  state_dir: "${dir.path}/state"
  tokens: [{ name: t, token: "${TOKEN}" }]
  https_certificates:
    - { domains: [term.test], cert: "${dir.path}/term.pem", key: "${dir.path}/term.key" }
`,
  );
  const s = await startTunnelServer(["-c", config]);
  await using _s = s.proc;
  const https = await s.proc.listeningAddr("https");
  const config2 = await writeConfig(
    dir.path,
    "c.yaml",
    `
client:
  server: "${s.addr}"
  token: "${TOKEN}"
  bind: null
  tls: { ca: "${s.caFile}" }
  mappings: [{ name: term, type: http, local_addr: "${lan.addr}", domains: [term.test] }]
`,
  );
  await using c = startWmproxy(["-c", config2]);
  await c.waitForEvent("mapping_ready", { mapping: "term" });
  const port = https.slice(https.lastIndexOf(":") + 1);
  const r = await curl([
    "--cacert",
    `${dir.path}/term-ca.pem`,
    "--resolve",
    `term.test:${port}:127.0.0.1`,
    `https://term.test:${port}/t`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const seen = JSON.parse(r.stdout);
  assert.equal(seen.name, "T");
  assert.equal(seen.headers["x-forwarded-proto"], "https");
  assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
});

Deno.test("mapping: TCP carries 20 parallel connections of 4 MiB each, SHA-256 equal on return", async () => {
  await using dir = await tempDir();
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const echoing = (async () => {
    for await (const conn of echo) {
      (async () => {
        const buf = new Uint8Array(256 * 1024);
        try {
          for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
            let off = 0;
            while (off < n) off += await conn.write(buf.subarray(off, n));
          }
          await conn.closeWrite();
        } catch {
          // visitor gone
        } finally {
          conn.close();
        }
      })();
    }
  })().catch(() => {});
  const s = await server(dir.path);
  await using _s = s.proc;
  await using c = client(s, [`echo=tcp:127.0.0.1:${echo.addr.port}@:0`]);
  const ready = await c.waitForEvent("mapping_ready");
  const port = Number(String(ready.public_addr).split(":").pop());
  const results = await Promise.all(Array.from({ length: 20 }, async () => {
    const data = new Uint8Array(4 * 1024 * 1024);
    for (let off = 0; off < data.length; off += 65536) {
      crypto.getRandomValues(data.subarray(off, off + 65536));
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const sent = createHash("sha256").update(data).digest("hex");
    const writing = (async () => {
      for (let off = 0; off < data.length;) {
        off += await conn.write(data.subarray(off, off + 262144));
      }
      await conn.closeWrite();
    })();
    const hash = createHash("sha256");
    let total = 0;
    const buf = new Uint8Array(262144);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      hash.update(buf.subarray(0, n));
      total += n;
    }
    await writing;
    conn.close();
    return { sent, got: hash.digest("hex"), total };
  }));
  for (const r of results) {
    assert.equal(r.total, 4 * 1024 * 1024);
    assert.equal(r.got, r.sent);
  }
  echo.close();
  await echoing;
});

Deno.test("mapping: a TCP mapping with proxy_protocol v1 tells the LAN service the visitor's address", async () => {
  await using dir = await tempDir();
  const lan = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const firstLine = (async () => {
    const conn = await lan.accept();
    const buf = new Uint8Array(256);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    await conn.write(new TextEncoder().encode("hello visitor"));
    conn.close();
    return text.split("\r\n")[0];
  })();
  const s = await server(dir.path);
  await using _s = s.proc;
  const config = await writeConfig(
    dir.path,
    "c.yaml",
    `
client:
  server: "${s.addr}"
  token: "${TOKEN}"
  bind: null
  tls: { ca: "${s.caFile}" }
  mappings: [{ name: pp, type: tcp, local_addr: "127.0.0.1:${lan.addr.port}", proxy_protocol: v1 }]
`,
  );
  await using c = startWmproxy(["-c", config]);
  const ready = await c.waitForEvent("mapping_ready");
  const port = Number(String(ready.public_addr).split(":").pop());
  const visitor = await Deno.connect({ hostname: "127.0.0.1", port });
  const reply = new Uint8Array(64);
  const n = await visitor.read(reply);
  assert.equal(new TextDecoder().decode(reply.subarray(0, n ?? 0)), "hello visitor");
  const line = await firstLine;
  const visitorPort = (visitor.localAddr as Deno.NetAddr).port;
  assert.equal(line, `PROXY TCP4 127.0.0.1 127.0.0.1 ${visitorPort} ${lan.addr.port}`);
  visitor.close();
  lan.close();
});

Deno.test("mapping: UDP keeps datagram boundaries: a DNS-like exchange and 1,000 datagrams in order", async () => {
  await using dir = await tempDir();
  const lan = dgram.createSocket("udp4");
  lan.on("message", (m, r) => lan.send(Buffer.concat([Buffer.from("re:"), m]), r.port, r.address));
  await new Promise<void>((r) => lan.bind(0, "127.0.0.1", r));
  const s = await server(dir.path);
  await using _s = s.proc;
  await using c = client(s, [`dns=udp:127.0.0.1:${lan.address().port}@:0`]);
  const ready = await c.waitForEvent("mapping_ready");
  const port = Number(String(ready.public_addr).split(":").pop());
  const visitor = dgram.createSocket("udp4");
  const got: string[] = [];
  let wake = () => {};
  visitor.on("message", (m) => {
    got.push(m.toString());
    wake();
  });
  await new Promise<void>((r) => visitor.bind(0, "127.0.0.1", r));
  const send = (text: string) =>
    new Promise<void>((r) => visitor.send(text, port, "127.0.0.1", () => r()));
  const until = async (n: number) => {
    const deadline = Date.now() + 10_000;
    while (got.length < n && Date.now() < deadline) {
      await new Promise<void>((r) => (wake = r, setTimeout(r, 100)));
    }
  };
  await send("query example.test A");
  await until(1);
  assert.equal(got[0], "re:query example.test A");
  // In windows of 50: a loopback socket buffer holds only ~256 tiny datagrams,
  // so an unpaced burst would measure the kernel's drops, not ours.
  for (let i = 0; i < 1000; i += 50) {
    for (let j = i; j < i + 50; j++) await send(`d${j}`);
    await until(1 + i + 50);
  }
  assert.equal(got.length, 1001, `${got.length - 1} of 1000 datagrams came back`);
  assert.deepEqual(
    got.slice(1),
    Array.from({ length: 1000 }, (_, i) => `re:d${i}`),
    "boundaries and order kept",
  );
  visitor.close();
  lan.close();
});

Deno.test("mapping: conflicts and policy refusals are reported to the client", async () => {
  await using dir = await tempDir();
  await using lan = lanHttp("L");
  const config = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  http_bind: "127.0.0.1:0"
  state_dir: "${dir.path}"
  port_range: "20000-29999"
  tokens:
    - { name: first, token: "${TOKEN}" }
    - { name: limited, token: "limited-token-1", allow_domains: ["*.mine.test"], allow_ports: ["21000-21010"] }
`,
  );
  const s = await startTunnelServer(["-c", config]);
  await using _s = s.proc;
  await using first = client(s, [`site=http:${lan.addr}@taken.test`]);
  await first.waitForEvent("mapping_ready");
  await using second = startTunnelClient(s, "limited-token-1", [
    "--map",
    `dup=http:${lan.addr}@taken.test`,
    "--map",
    `other=http:${lan.addr}@www.other.test`,
    "--map",
    `ok=http:${lan.addr}@a.mine.test`,
    "--map",
    "port=tcp:127.0.0.1:9@:22000",
  ]);
  const dup = await second.waitForEvent("mapping_failed", { mapping: "dup" });
  assert.equal(dup.code, "FORBIDDEN", "taken.test is outside *.mine.test");
  const other = await second.waitForEvent("mapping_failed", { mapping: "other" });
  assert.match(String(other.reason), /outside token "limited"'s allow_domains/);
  await second.waitForEvent("mapping_ready", { mapping: "ok" });
  const port = await second.waitForEvent("mapping_failed", { mapping: "port" });
  assert.equal(port.code, "FORBIDDEN");
  await using third = client(s, [`clash=http:${lan.addr}@taken.test`]);
  const clash = await third.waitForEvent("mapping_failed", { mapping: "clash" });
  assert.equal(clash.code, "CONFLICT");
  assert.match(String(clash.reason), /already held by mapping "site"/);
});

Deno.test("mapping: client restart and server restart restore the mappings without operator action", async () => {
  await using dir = await tempDir();
  await using lan = lanHttp("R");
  const first = await server(dir.path);
  const get = async (http: string) =>
    (await curl(["-s", "--max-time", "2", "-H", "Host: r.test", `http://${http}/`])).stdout;
  let c = client(first, [`r=http:${lan.addr}@r.test`]);
  await c.waitForEvent("mapping_ready");
  assert.match(await get(first.http), /"name":"R"/);
  await c.stop("SIGKILL");
  c = client(first, [`r=http:${lan.addr}@r.test`]);
  await c.waitForEvent("mapping_ready");
  assert.match(
    await get(first.http),
    /"name":"R"/,
    "a restarted client takes its host back at once",
  );
  await first.proc.stop("SIGKILL");
  const again = await startTunnelServer([
    "--mode",
    "server",
    "--listen",
    first.addr,
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
    "--http",
    first.http,
  ]);
  await using _again = again.proc;
  // The client reconnects by itself and registers its mapping again.
  await c.waitForNth("mapping_ready", 2);
  assert.match(await get(first.http), /"name":"R"/, "the server restart restored the mapping");
  await c.stop("SIGTERM");
});
