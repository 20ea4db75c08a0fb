/**
 * serveHttpVisitor driven by real clients (curl, WebSocket, raw TCP) through
 * a real listener, with routes whose streams are TCP connections to LAN
 * services on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { Secret } from "@/config/secret.ts";
import type { HttpRoute, RouteResult } from "@/mapping/mod.ts";
import { relay } from "@/proxy/relay.ts";
import { createPipe } from "@/transport/pipe.ts";
import {
  closeQuietly,
  connect,
  curl,
  failingRoute,
  mappingOptions,
  readAll,
  readUntil,
  send,
  sha256,
  startRawService,
  startService,
  startVhost,
  tcpRoute,
} from "./_helpers.ts";
import { waitFor } from "../../_wait.ts";

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A resolver over a fixed table; records the hosts it was asked for. */
function table(
  routes: Record<string, HttpRoute | "offline">,
): ((host: string) => RouteResult) & { asked: string[] } {
  const asked: string[] = [];
  const resolve = (host: string): RouteResult => {
    asked.push(host);
    const r = routes[host];
    if (r === undefined) return { kind: "unknown" };
    if (r === "offline") return { kind: "offline", mapping: `${host}-mapping` };
    return { kind: "route", route: r };
  };
  return Object.assign(resolve, { asked });
}

Deno.test("serveHttpVisitor() routes each keep-alive request by its own Host", async () => {
  await using a = startService("A");
  await using b = startService("B");
  const ra = tcpRoute("map-a", a.port);
  const rb = tcpRoute("map-b", b.port);
  const resolve = table({ "a.example": ra, "b.example": rb });
  await using vh = startVhost(resolve);
  const fmt = ["-w", "\\n%{http_code} %{num_connects}\\n"];
  const r = await curl([
    ...fmt,
    "-H",
    "Host: A.Example:8080",
    `${vh.url}/one`,
    "--next",
    ...fmt,
    "-H",
    "Host: b.example",
    `${vh.url}/two`,
    "--next",
    ...fmt,
    "-H",
    "Host: b.example",
    `${vh.url}/three`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "A /one\n200 1\nB /two\n200 0\nB /three\n200 0\n");
  assert.deepEqual(resolve.asked, ["a.example", "b.example", "b.example"]);
  // The stream to B was reused for the third request; A's was closed when B came.
  assert.equal(ra.opens, 1);
  assert.equal(rb.opens, 1);
  assert.equal(a.requests[0]!.headers.get("host"), "A.Example:8080");
  const logs = vh.events("mapping_request");
  assert.equal(logs.length, 3);
  assert.deepEqual(logs.map((l) => [l.conn, l.mapping, l.host, l.method, l.path, l.status]), [
    ["v1", "map-a", "a.example", "GET", "/one", 200],
    ["v1", "map-b", "b.example", "GET", "/two", 200],
    ["v1", "map-b", "b.example", "GET", "/three", 200],
  ]);
  assert.ok((logs[0]!.bytes as number) > 6);
});

Deno.test("serveHttpVisitor() switches streams on pipelined requests A, B, A", async () => {
  await using a = startService("A");
  await using b = startService("B");
  const ra = tcpRoute("map-a", a.port);
  const rb = tcpRoute("map-b", b.port);
  await using vh = startVhost(table({ "a.example": ra, "b.example": rb }));
  const conn = await connect(vh.port);
  try {
    await send(
      conn,
      "GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n" +
        "GET /2 HTTP/1.1\r\nHost: b.example\r\n\r\n" +
        "GET /3 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    );
    const text = dec(await readAll(conn));
    const bodies = [...text.matchAll(/\r\n\r\n([AB] \/\d)/g)].map((m) => m[1]);
    assert.deepEqual(bodies, ["A /1", "B /2", "A /3"]);
    assert.equal(ra.opens, 2);
    assert.equal(rb.opens, 1);
  } finally {
    closeQuietly(conn);
  }
});

Deno.test("serveHttpVisitor() answers 404 for an unknown host (400 for a bad one), keeping the connection", async () => {
  await using a = startService("A");
  await using vh = startVhost(table({ "a.example": tcpRoute("map-a", a.port) }));
  const r = await curl([
    "-w",
    "\\n%{http_code} %{num_connects} %{content_type}\\n",
    "-H",
    "Host: <nobody>.example",
    `${vh.url}/x`,
    "--next",
    "-w",
    "\\n%{http_code} %{num_connects}\\n",
    "-H",
    "Host: a.example",
    `${vh.url}/y`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  // "<nobody>.example" is not a host name: 400. Then a plain unknown host below.
  assert.match(r.stdout, /400 1 text\/html; charset=utf-8\n/);
  const r2 = await curl([
    "-w",
    "\\n%{http_code} %{num_connects} %{content_type}\\n",
    "-H",
    "Host: nobody.example",
    `${vh.url}/x`,
    "--next",
    "-w",
    "\\n%{http_code} %{num_connects}\\n",
    "-H",
    "Host: a.example",
    `${vh.url}/y`,
  ]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.match(r2.stdout, /<h1>404 Not Found<\/h1>/);
  assert.match(r2.stdout, /no mapping serves host &#34;nobody.example&#34;/);
  assert.match(r2.stdout, /404 1 text\/html; charset=utf-8\nA \/y\n200 0\n$/);
});

Deno.test("serveHttpVisitor() answers 400 without Host on HTTP/1.1 and to garbage", async () => {
  await using vh = startVhost(table({}));
  for (
    const raw of [
      "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
      "this is not http\r\n\r\n",
      "\x16\x03\x01\x00\x05hello",
    ]
  ) {
    const conn = await connect(vh.port);
    try {
      await send(conn, raw);
      const text = dec(await readAll(conn));
      assert.match(text, /^HTTP\/1.1 400 Bad Request\r\n/, JSON.stringify(raw));
      assert.match(text, /Connection: close\r\n/);
    } finally {
      closeQuietly(conn);
    }
  }
});

Deno.test("serveHttpVisitor() answers 431 to a 1 MiB header and keeps serving", async () => {
  await using a = startService("A");
  await using vh = startVhost(table({ "a.example": tcpRoute("map-a", a.port) }));
  const conn = await connect(vh.port);
  try {
    const sending = send(
      conn,
      "GET / HTTP/1.1\r\nHost: a.example\r\nX-Big: " + "x".repeat(1024 * 1024) + "\r\n\r\n",
    ).catch(() => {}); // the server may close before all is written
    const text = dec(await readAll(conn));
    await sending;
    assert.match(text, /^HTTP\/1.1 431 Request Header Fields Too Large\r\n/);
  } finally {
    closeQuietly(conn);
  }
  const r = await curl(["-H", "Host: a.example", `${vh.url}/after`]);
  assert.equal(r.stdout, "A /after");
  assert.equal(vh.events("mapping_request").find((l) => l.status === 431)?.status, 431);
});

Deno.test("serveHttpVisitor() answers 502 for an offline client and a failing open()", async () => {
  const resolve = table({
    "off.example": "offline",
    "gone.example": failingRoute("map-gone", "the tunnel session of client-1 is closed"),
  });
  await using vh = startVhost(resolve);
  const off = await curl(["-w", "\\n%{http_code}", "-H", "Host: off.example", `${vh.url}/`]);
  assert.match(off.stdout, /the tunnel client serving this host is offline/);
  assert.match(off.stdout, /\n502$/);
  const gone = await curl(["-w", "\\n%{http_code}", "-H", "Host: gone.example", `${vh.url}/`]);
  assert.match(gone.stdout, /\n502$/);
  assert.ok(!gone.stdout.includes("client-1"), "the page must not show internal reasons");
  const err = await vh.waitForEvent("mapping_error", (l) => l.mapping === "map-gone");
  assert.equal(err.host, "gone.example");
  assert.match(err.error as string, /the tunnel session of client-1 is closed/);
  await vh.waitForEvent("mapping_error", (l) => l.mapping === "off.example-mapping");
});

Deno.test("serveHttpVisitor() answers 502 when the service closes without a response", async () => {
  await using svc = startRawService(async (conn) => {
    await readUntil(conn, "\r\n\r\n");
    conn.close();
  });
  await using vh = startVhost(table({ "a.example": tcpRoute("map-a", svc.port) }));
  const r = await curl(["-w", "\\n%{http_code}", "-H", "Host: a.example", `${vh.url}/`]);
  assert.match(r.stdout, /\n502$/);
  const err = await vh.waitForEvent("mapping_error");
  assert.match(err.error as string, /closed before a response|stream failed/);
});

Deno.test("serveHttpVisitor() answers 504 when no response head comes in time", async () => {
  await using svc = startRawService(async (conn) => {
    await readUntil(conn, "\r\n\r\n");
    await readAll(conn); // never answers
  });
  await using vh = startVhost(table({ "a.example": tcpRoute("map-a", svc.port) }), {
    idle_timeout_ms: 300,
  });
  const r = await curl(["-w", "\\n%{http_code}", "-H", "Host: a.example", `${vh.url}/`]);
  assert.match(r.stdout, /<h1>504 Gateway Timeout<\/h1>/);
  assert.match(r.stdout, /\n504$/);
});

Deno.test("serveHttpVisitor() retries a request once when a kept stream went stale", async () => {
  // Answers one request per connection with keep-alive, then closes silently.
  await using svc = startRawService(async (conn) => {
    const head = await readUntil(conn, "\r\n\r\n");
    const path = head.split(" ")[1]!;
    await send(conn, `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
  });
  const route = tcpRoute("map-a", svc.port);
  await using vh = startVhost(table({ "a.example": route }));
  const conn = await connect(vh.port);
  try {
    await send(conn, "GET /first HTTP/1.1\r\nHost: a.example\r\n\r\n");
    assert.match(await readUntil(conn, "/first"), /200 OK/);
    await send(conn, "GET /second HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n");
    const text = dec(await readAll(conn));
    assert.match(text, /^HTTP\/1.1 200 OK\r\n[^]*\/second$/);
    assert.equal(route.opens, 2);
  } finally {
    closeQuietly(conn);
  }
});

Deno.test("serveHttpVisitor() applies header rules, X-Forwarded-* and host_rewrite", async () => {
  await using svc = startService("S", () =>
    new Response("ok", {
      headers: { "X-Powered-By": "lan", "X-Keep": "1", "X-Scheme": "x" },
    }));
  const route = tcpRoute(
    "map-s",
    svc.port,
    mappingOptions({
      x_forwarded: true,
      host_rewrite: "internal.lan:8080",
      request_headers: [
        { action: "set", name: "X-Real-IP", value: "$remote_addr" },
        { action: "add", name: "X-Seen-Host", value: "$host via $scheme" },
        { action: "remove", name: "X-Secret" },
        { action: "set_if_absent", name: "X-Default", value: "d" },
        { action: "set_if_absent", name: "X-Present", value: "no" },
      ],
      response_headers: [
        { action: "remove", name: "X-Powered-By" },
        { action: "set", name: "X-Scheme", value: "$scheme" },
        { action: "add", name: "X-Via-Mapping", value: "map-s" },
      ],
    }),
  );
  await using vh = startVhost(table({ "app.example": route }));
  const r = await curl([
    "-D",
    "-",
    "-H",
    "Host: APP.example",
    "-H",
    "X-Forwarded-For: 203.0.113.9",
    "-H",
    "X-Forwarded-Proto: gopher",
    "-H",
    "X-Secret: s",
    "-H",
    "X-Present: yes",
    `${vh.url}/p?q=1`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const seen = svc.requests[0]!;
  assert.equal(new URL(seen.url).pathname + new URL(seen.url).search, "/p?q=1");
  assert.equal(seen.headers.get("host"), "internal.lan:8080");
  assert.equal(seen.headers.get("x-forwarded-for"), "203.0.113.9, 127.0.0.1");
  assert.equal(seen.headers.get("x-forwarded-proto"), "http");
  assert.equal(seen.headers.get("x-forwarded-host"), "APP.example");
  assert.equal(seen.headers.get("x-real-ip"), "127.0.0.1");
  assert.equal(seen.headers.get("x-seen-host"), "app.example via http");
  assert.equal(seen.headers.get("x-secret"), null);
  assert.equal(seen.headers.get("x-default"), "d");
  assert.equal(seen.headers.get("x-present"), "yes");
  const head = r.stdout.toLowerCase();
  assert.ok(!head.includes("x-powered-by"), r.stdout);
  assert.match(head, /\r\nx-scheme: http\r\n/);
  assert.match(head, /\r\nx-via-mapping: map-s\r\n/);
  assert.match(head, /\r\nx-keep: 1\r\n/);
  assert.equal(route.visitors[0]!.hostname, "127.0.0.1");
});

Deno.test("serveHttpVisitor() without host_rewrite or x_forwarded passes Host as sent", async () => {
  await using svc = startService("S");
  await using vh = startVhost(table({ "app.example": tcpRoute("map-s", svc.port) }));
  const r = await curl(["-H", "Host: app.example:81", "-H", "X-Forwarded-For: 1.2.3.4", vh.url]);
  assert.equal(r.stdout, "S /");
  assert.equal(svc.requests[0]!.headers.get("host"), "app.example:81");
  assert.equal(svc.requests[0]!.headers.get("x-forwarded-for"), "1.2.3.4");
  assert.equal(svc.requests[0]!.headers.get("x-forwarded-proto"), null);
});

Deno.test("serveHttpVisitor() asks for Basic credentials and lets the right ones pass", async () => {
  await using svc = startService("S");
  const route = tcpRoute(
    "private",
    svc.port,
    mappingOptions({ basic_auth: [{ username: "ann", password: new Secret("s3cret") }] }),
  );
  await using vh = startVhost(table({ "p.example": route }));
  const none = await curl(["-D", "-", "-H", "Host: p.example", vh.url]);
  assert.match(none.stdout, /^HTTP\/1.1 401 Unauthorized\r\n/);
  assert.match(none.stdout, /WWW-Authenticate: Basic realm="private"\r\n/);
  const wrong = await curl([
    "-w",
    "%{http_code}",
    "-o",
    "/dev/null",
    "-u",
    "ann:nope",
    "-H",
    "Host: p.example",
    vh.url,
  ]);
  assert.equal(wrong.stdout, "401");
  assert.equal(route.opens, 0, "no stream may be opened before authentication");
  const right = await curl(["-u", "ann:s3cret", "-H", "Host: p.example", vh.url]);
  assert.equal(right.stdout, "S /");
  assert.equal(route.opens, 1);
  assert.equal(svc.requests[0]!.headers.get("authorization"), null);
});

Deno.test("serveHttpVisitor() streams a chunked upload and an 8 MiB download", async () => {
  const big = new Uint8Array(8 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) crypto.getRandomValues(big.subarray(i, i + 4096));
  const bigSha = await sha256(big);
  await using svc = startService("S", async (req) => {
    if (req.method === "POST") {
      const body = new Uint8Array(await req.arrayBuffer());
      return new Response(`len=${body.length} sha=${await sha256(body)}`);
    }
    return new Response(big);
  });
  await using vh = startVhost(table({ "f.example": tcpRoute("files", svc.port) }));
  const upload = new Uint8Array(3 * 1024 * 1024 + 17);
  for (let i = 0; i < upload.length; i += 4096) {
    crypto.getRandomValues(upload.subarray(i, Math.min(upload.length, i + 4096)));
  }
  const up = await curl([
    "-H",
    "Host: f.example",
    "-H",
    "Transfer-Encoding: chunked",
    "-H",
    "Expect: 100-continue",
    "--data-binary",
    "@-",
    `${vh.url}/up`,
  ], upload);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(up.stdout, `len=${upload.length} sha=${await sha256(upload)}`);
  const down = await curl(["-H", "Host: f.example", `${vh.url}/big`]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(down.bytes.length, big.length);
  assert.equal(await sha256(down.bytes), bigSha);
  const log = await vh.waitForEvent("mapping_request", (l) => l.path === "/big");
  assert.ok((log.bytes as number) > big.length);
});

Deno.test("serveHttpVisitor() passes a HEAD request and a 204 without bodies", async () => {
  await using svc = startService(
    "S",
    (req) =>
      new URL(req.url).pathname === "/empty"
        ? new Response(null, { status: 204 })
        : new Response("body!"),
  );
  await using vh = startVhost(table({ "a.example": tcpRoute("m", svc.port) }));
  const conn = await connect(vh.port);
  try {
    await send(
      conn,
      "HEAD /h HTTP/1.1\r\nHost: a.example\r\n\r\n" +
        "GET /empty HTTP/1.1\r\nHost: a.example\r\n\r\n" +
        "GET /last HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    );
    const text = dec(await readAll(conn));
    const statuses = [...text.matchAll(/HTTP\/1.1 (\d{3})/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ["200", "204", "200"]);
    assert.ok(text.endsWith("\r\n\r\nbody!"), text);
    assert.equal(text.split("body!").length, 2, "only the last response has a body");
  } finally {
    closeQuietly(conn);
  }
});

/** A LAN service echoing WebSocket text messages as `echo:<text>`. */
function startWsEcho() {
  return startService("WS", (req) => {
    if (req.headers.get("upgrade") !== "websocket") {
      return new Response("no upgrade", { status: 400 });
    }
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo:${e.data}`);
    return response;
  });
}

Deno.test("serveHttpVisitor() passes a WebSocket upgrade and relays both ways", async () => {
  await using svc = startWsEcho();
  // Deno's WebSocket always sends the URL's host as Host, so route that host.
  await using vh = startVhost(table({ "127.0.0.1": tcpRoute("ws", svc.port) }));
  const ws = new WebSocket(`ws://127.0.0.1:${vh.port}/chat`);
  const received: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ws.onopen = () => {
      ws.send("hello");
      ws.send("x".repeat(200_000));
    };
    ws.onmessage = (e) => {
      received.push(String(e.data));
      if (received.length === 2) ws.close();
    };
    ws.onerror = (e) => reject(new Error(`WebSocket error: ${(e as ErrorEvent).message}`));
    ws.onclose = () => resolve();
  });
  await done;
  assert.deepEqual(received, ["echo:hello", "echo:" + "x".repeat(200_000)]);
  const log = await vh.waitForEvent("mapping_request", (l) => l.status === 101);
  assert.equal(log.mapping, "ws");
});

Deno.test("serveHttpVisitor() routes a hand-made upgrade by Host and forwards early bytes", async () => {
  await using svc = startWsEcho();
  await using other = startService("OTHER");
  await using vh = startVhost(table({
    "ws.example": tcpRoute("ws", svc.port),
    "127.0.0.1": tcpRoute("other", other.port),
  }));
  const conn = await connect(vh.port);
  try {
    const payload = new TextEncoder().encode("hi");
    const mask = [1, 2, 3, 4];
    const frame = new Uint8Array([
      0x81,
      0x80 | payload.length,
      ...mask,
      ...payload.map((b, i) => b ^ mask[i % 4]!),
    ]);
    // The first frame goes out right behind the request, before the 101.
    const head = new TextEncoder().encode(
      "GET /chat HTTP/1.1\r\nHost: ws.example\r\nConnection: Upgrade\r\n" +
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    const both = new Uint8Array(head.length + frame.length);
    both.set(head);
    both.set(frame, head.length);
    await send(conn, both);
    const buf = new Uint8Array(4096);
    let got = new Uint8Array(0);
    const want = "echo:hi";
    while (!dec(got).includes(want)) {
      const n = await conn.read(buf);
      if (n === null) break;
      const next = new Uint8Array(got.length + n);
      next.set(got);
      next.set(buf.subarray(0, n), got.length);
      got = next;
    }
    const text = dec(got);
    assert.match(text, /^HTTP\/1.1 101 Switching Protocols\r\n/);
    assert.match(text, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
    assert.match(text, /\r\nupgrade: websocket\r\n/i);
    assert.ok(text.endsWith(want), JSON.stringify(text));
    // Close frame from the client; the service answers and both sides end.
    await send(conn, new Uint8Array([0x88, 0x80, 0, 0, 0, 0]));
    await readAll(conn);
  } finally {
    closeQuietly(conn);
  }
  assert.equal(other.requests.length, 0);
});

Deno.test("serveHttpVisitor() closes the stream and the visitor on abort", async () => {
  await using svc = startRawService(async (conn) => {
    await readUntil(conn, "\r\n\r\n");
    await readAll(conn);
  });
  await using vh = startVhost(table({ "a.example": tcpRoute("m", svc.port) }));
  const conn = await connect(vh.port);
  try {
    await send(conn, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
    // Wait until the service got the request, then dispose the vhost (aborts).
    await waitFor(() => svc.connections > 0, "the service to get the request");
  } finally {
    await vh[Symbol.asyncDispose]();
    const rest = await readAll(conn);
    closeQuietly(conn);
    assert.equal(rest.length, 0);
  }
});

Deno.test("serveHttpVisitor() works over in-memory streams (like tunnel streams)", async () => {
  await using svc = startService("S");
  const relays: Promise<unknown>[] = [];
  const route: HttpRoute = {
    mapping: "piped",
    client: "client-1",
    options: mappingOptions({ x_forwarded: true }),
    async open(visitor) {
      // The far end of the pipe plays the tunnel client: it dials the service.
      const [near, far] = createPipe({ firstAddr: visitor, secondAddr: visitor });
      const tcp = await connect(svc.port);
      relays.push(relay(far, tcp, { idleTimeoutMs: 10_000 }));
      return near;
    },
  };
  await using vh = startVhost(table({ "p.example": route }));
  const r = await curl([
    "-w",
    " %{num_connects}\\n",
    "-H",
    "Host: p.example",
    `${vh.url}/a`,
    `${vh.url}/b`,
  ]);
  assert.equal(r.stdout, "S /a 1\nS /b 0\n");
  assert.equal(relays.length, 1, "one stream for both requests");
  assert.equal(svc.requests[1]!.headers.get("x-forwarded-for"), "127.0.0.1");
  await vh[Symbol.asyncDispose]();
  await Promise.all(relays);
});

Deno.test("serveHttpVisitor() routes an absolute-form request by its authority, not its Host", async () => {
  await using a = startService("A");
  await using b = startService("B");
  const resolve = table({
    "a.example": tcpRoute("map-a", a.port),
    "b.example": tcpRoute("map-b", b.port),
  });
  await using vh = startVhost(resolve);
  const conn = await connect(vh.port);
  try {
    await send(
      conn,
      "GET http://a.example/abs HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    );
    const text = dec(await readAll(conn));
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.ok(text.endsWith("A /abs"), text);
    assert.deepEqual(resolve.asked, ["a.example"]);
    assert.equal(b.requests.length, 0);
  } finally {
    closeQuietly(conn);
  }
});

Deno.test("serveHttpVisitor() routes a Host with a trailing dot like the name without it", async () => {
  await using a = startService("A");
  const resolve = table({ "a.example": tcpRoute("map-a", a.port) });
  await using vh = startVhost(resolve);
  const r = await curl(["-H", "Host: A.example.:80", `${vh.url}/dot`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "A /dot");
  assert.deepEqual(resolve.asked, ["a.example"]);
});
