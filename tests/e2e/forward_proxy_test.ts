/**
 * The forward proxy as a real process, driven by curl (the first seed flow's
 * last hop). Finer cases live in tests/unit/proxy.
 */
import assert from "node:assert/strict";
import { curl, hasIpv6Loopback, startOrigin, startWmproxy, tempDir } from "./_harness.ts";

Deno.test("proxy e2e: curl -x sends two keep-alive requests to two origins on one connection", async () => {
  await using a = startOrigin("A");
  await using b = startOrigin("B");
  await using p = startWmproxy(["--bind", "127.0.0.1:0"]);
  const proxy = await p.listeningAddr("proxy");
  const r = await curl([
    "-x",
    `http://${proxy}`,
    `${a.url}/one`,
    `${b.url}/two`,
    "-w",
    "|%{num_connects}\n",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [first, second] = r.stdout.trim().split("\n");
  assert.equal(first, "A /one|1");
  assert.equal(second, "B /two|0"); // curl reused its proxy connection
  // One client connection carried both requests, and its close was logged with them.
  const closed = await p.waitForEvent("connection_closed", { component: "proxy" });
  assert.equal(closed.protocol, "http");
  assert.equal(closed.requests, 2);
  assert.ok((closed.bytes_out as number) > "A /oneB /two".length, "responses counted");
});

Deno.test("proxy e2e: curl -p -x tunnels through CONNECT", async () => {
  await using a = startOrigin("A");
  await using p = startWmproxy(["--bind", "127.0.0.1:0"]);
  const proxy = await p.listeningAddr("proxy");
  const r = await curl(["-p", "-x", `http://${proxy}`, `${a.url}/c`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "A /c");
});

Deno.test("proxy e2e: curl --socks5-hostname and --socks5 reach the origin", async () => {
  await using a = startOrigin("A");
  await using p = startWmproxy(["--bind", "127.0.0.1:0"]);
  const proxy = await p.listeningAddr("proxy");
  const named = await curl(["--socks5-hostname", proxy, `http://localhost:${a.port}/n`]);
  assert.equal(named.code, 0, named.stderr);
  assert.equal(named.stdout, "A /n");
  const v4 = await curl(["--socks5", proxy, `${a.url}/v4`]);
  assert.equal(v4.code, 0, v4.stderr);
  assert.equal(v4.stdout, "A /v4");
});

const ipv6 = hasIpv6Loopback();
Deno.test({
  name: ipv6
    ? "proxy e2e: curl --socks5 reaches an IPv6 origin on [::1]"
    : "proxy e2e: curl --socks5 reaches an IPv6 origin on [::1] (NOT RUN: no IPv6 loopback here)",
  ignore: !ipv6,
  async fn() {
    await using six = startOrigin("SIX", "::1");
    await using p = startWmproxy(["--bind", "127.0.0.1:0"]);
    const proxy = await p.listeningAddr("proxy");
    const r = await curl(["--socks5", proxy, `${six.url}/v6`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "SIX /v6");
  },
});

Deno.test("proxy e2e: --proxy-user right passes, wrong gets 407 with Proxy-Authenticate and SOCKS5 refusal", async () => {
  await using a = startOrigin("A");
  await using p = startWmproxy([
    "--bind",
    "127.0.0.1:0",
    "--user",
    "alice",
    "--pass",
    "s3cret word",
  ]);
  const proxy = await p.listeningAddr("proxy");

  const good = await curl([
    "-x",
    `http://${proxy}`,
    "--proxy-user",
    "alice:s3cret word",
    `${a.url}/ok`,
  ]);
  assert.equal(good.stdout, "A /ok", good.stderr);

  const bad = await curl([
    "-i",
    "-x",
    `http://${proxy}`,
    "--proxy-user",
    "alice:nope",
    `${a.url}/no`,
  ]);
  assert.match(bad.stdout, /^HTTP\/1\.1 407 /);
  assert.match(bad.stdout, /proxy-authenticate: Basic realm="wmproxy"/i);
  const none = await curl(["-i", "-x", `http://${proxy}`, `${a.url}/no`]);
  assert.match(none.stdout, /^HTTP\/1\.1 407 /);

  const socksGood = await curl([
    "--socks5-hostname",
    proxy,
    "--proxy-user",
    "alice:s3cret word",
    `${a.url}/s`,
  ]);
  assert.equal(socksGood.stdout, "A /s", socksGood.stderr);
  const socksBad = await curl([
    "--socks5-hostname",
    proxy,
    "--proxy-user",
    "alice:wrong",
    `${a.url}/s`,
  ]);
  assert.notEqual(socksBad.code, 0);
  assert.equal(
    a.requests.filter((r) => new URL(r.url).pathname === "/no").length,
    0,
    "origin never dialled",
  );

  const failed = await p.waitForEvent("auth_failed");
  assert.ok(!JSON.stringify(p.events).includes("s3cret"), "password never logged");
  assert.ok(!JSON.stringify(p.events).includes("nope"), "wrong password never logged");
  assert.ok(failed.peer, "auth_failed names the peer");
});

Deno.test("proxy e2e: a config file with users and limits is honoured", async () => {
  await using dir = await tempDir();
  await using a = startOrigin("A");
  const file = `${dir.path}/proxy.yaml`;
  await Deno.writeTextFile(
    file,
    `proxy:\n  bind: 127.0.0.1:0\n  protocols: [socks5, http]\n` +
      `  users: [{ username: u, password: p }]\n  limits: { max_header_bytes: 2KiB }\n`,
  );
  await using p = startWmproxy(["-c", file]);
  const proxy = await p.listeningAddr("proxy");
  const socks = await curl(["--socks5-hostname", proxy, "--proxy-user", "u:p", `${a.url}/s`]);
  assert.equal(socks.stdout, "A /s", socks.stderr);
  const code = async (args: string[]) =>
    (await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", `http://${proxy}`, ...args]))
      .stdout;
  assert.equal(await code(["--proxy-user", "u:p", `${a.url}/h`]), "200");
  assert.equal(await code([`${a.url}/h`]), "407", "users: a request without credentials");
  assert.equal(
    await code(["--proxy-user", "u:p", "-H", `X-Big: ${"x".repeat(3000)}`, `${a.url}/h`]),
    "431",
    "limits.max_header_bytes: 2KiB",
  );
  const connect = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_connect}",
    "-p",
    "-x",
    `http://${proxy}`,
    "--proxy-user",
    "u:p",
    `${a.url}/c`,
  ]);
  assert.equal(connect.stdout, "403", "CONNECT is disabled by protocols: [socks5, http]");
  assert.equal(a.requests.map((r) => new URL(r.url).pathname).join(","), "/s,/h");
});

Deno.test("proxy e2e: garbage and a half-closing client do not stop the proxy", async () => {
  await using a = startOrigin("A");
  await using p = startWmproxy(["--bind", "127.0.0.1:0"]);
  const proxy = await p.listeningAddr("proxy");
  const [host, port] = [
    proxy.slice(0, proxy.lastIndexOf(":")),
    Number(proxy.slice(proxy.lastIndexOf(":") + 1)),
  ];

  // Garbage: the proxy answers or closes, never hangs, and keeps serving.
  {
    using c = await Deno.connect({ hostname: host, port });
    await c.write(new TextEncoder().encode("\x16\x03\x01garbage\r\n\r\n"));
    const buf = new Uint8Array(4096);
    const n = await c.read(buf);
    if (n !== null) assert.match(new TextDecoder().decode(buf.subarray(0, n)), /^HTTP\/1\.1 400 /);
  }
  // Half-close after the request: the response still arrives.
  {
    using c = await Deno.connect({ hostname: host, port });
    await c.write(
      new TextEncoder().encode(
        `GET ${a.url}/half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      ),
    );
    await c.closeWrite();
    const body = await readToEnd(c);
    assert.match(body, /^HTTP\/1\.1 200 /);
    assert.ok(body.endsWith("A /half"), body);
  }
  const r = await curl(["-x", `http://${proxy}`, `${a.url}/after`]);
  assert.equal(r.stdout, "A /after");
});

async function readToEnd(c: Deno.Conn): Promise<string> {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(65536);
  let text = "";
  for (let n = await c.read(buf); n !== null; n = await c.read(buf)) {
    text += decoder.decode(buf.subarray(0, n), { stream: true });
  }
  return text + decoder.decode();
}
