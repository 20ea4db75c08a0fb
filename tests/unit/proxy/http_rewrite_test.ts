import assert from "node:assert/strict";
import { HttpError, parseRequestHead, parseResponseHead } from "@/proxy/http_head.ts";
import {
  clientWantsKeepAlive,
  errorResponse,
  parseConnectTarget,
  parseProxyTarget,
  responseHeadPassesThrough,
  rewriteRequestHead,
  rewriteResponseHead,
  rewriteResponseHeadText,
  stripHopByHop,
  upstreamKeepsAlive,
} from "@/proxy/http_rewrite.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("parseProxyTarget() splits absolute-form URLs", () => {
  assert.deepEqual(parseProxyTarget("http://Example.COM/a/../b?q=1#frag"), {
    hostname: "example.com",
    port: 80,
    authority: "example.com",
    path: "/a/../b?q=1",
  });
  assert.deepEqual(parseProxyTarget("http://u:p@127.0.0.1:8080"), {
    hostname: "127.0.0.1",
    port: 8080,
    authority: "127.0.0.1:8080",
    path: "/",
  });
  assert.deepEqual(parseProxyTarget("http://[::1]:81?x"), {
    hostname: "::1",
    port: 81,
    authority: "[::1]:81",
    path: "/?x",
  });
});

Deno.test("parseProxyTarget() answers 400 for origin-form, other schemes and bad hosts", () => {
  for (
    const t of ["/index.html", "*", "https://a/", "http://a:99999/", "http://[zz]/", "http:///x"]
  ) {
    assert.throws(
      () => parseProxyTarget(t),
      (e: unknown) => e instanceof HttpError && e.status === 400,
    );
  }
  assert.throws(() => parseProxyTarget("/x"), /absolute URL/);
});

Deno.test("parseConnectTarget() requires host:port", () => {
  assert.deepEqual(parseConnectTarget("example.com:443"), { hostname: "example.com", port: 443 });
  assert.deepEqual(parseConnectTarget("[::1]:8443"), { hostname: "::1", port: 8443 });
  assert.throws(() => parseConnectTarget("example.com"), HttpError);
  assert.throws(() => parseConnectTarget("example.com:0"), HttpError);
});

Deno.test("rewriteRequestHead() sends origin-form and drops hop-by-hop and Proxy-* headers", () => {
  const head = parseRequestHead(enc(
    "GET http://a.test:8080/p?q HTTP/1.1\r\nHost: wrong\r\nConnection: keep-alive, X-Hop\r\n" +
      "X-Hop: 1\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\n" +
      "Keep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Keep: yes\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
  ));
  const target = parseProxyTarget(head.target);
  const out = dec(rewriteRequestHead(head, target, { via: true, forwardedFor: "127.0.0.1" }));
  assert.equal(
    out,
    "GET /p?q HTTP/1.1\r\nHost: a.test:8080\r\nX-Keep: yes\r\n" +
      "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\nVia: 1.1 wmproxy\r\n\r\n",
  );
  const plain = dec(rewriteRequestHead(head, target, { via: false, forwardedFor: undefined }));
  assert.ok(plain.includes("X-Forwarded-For: 10.0.0.1\r\n"));
  assert.ok(!plain.includes("Via"));
});

Deno.test("rewriteResponseHead() adds our Connection decision and keeps Transfer-Encoding", () => {
  const resp = parseResponseHead(enc(
    "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n",
  ));
  assert.equal(
    dec(rewriteResponseHead(resp, { via: false, close: true, http10Client: false })),
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
  );
  assert.equal(
    dec(rewriteResponseHead(resp, { via: false, close: false, http10Client: true })),
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
  );
});

Deno.test("clientWantsKeepAlive() and upstreamKeepsAlive() follow version and Connection", () => {
  const req = (s: string) => parseRequestHead(enc(s + "\r\n"));
  assert.equal(clientWantsKeepAlive(req("GET http://a/ HTTP/1.1\r\n")), true);
  assert.equal(clientWantsKeepAlive(req("GET http://a/ HTTP/1.1\r\nConnection: close\r\n")), false);
  assert.equal(clientWantsKeepAlive(req("GET http://a/ HTTP/1.0\r\n")), false);
  assert.equal(
    clientWantsKeepAlive(req("GET http://a/ HTTP/1.0\r\nProxy-Connection: keep-alive\r\n")),
    true,
  );
  const resp = (s: string) => parseResponseHead(enc(s + "\r\n"));
  assert.equal(upstreamKeepsAlive(resp("HTTP/1.1 200 OK\r\n")), true);
  assert.equal(upstreamKeepsAlive(resp("HTTP/1.1 200 OK\r\nConnection: close\r\n")), false);
  assert.equal(upstreamKeepsAlive(resp("HTTP/1.0 200 OK\r\n")), false);
});

Deno.test("errorResponse() builds a complete reply with a body and Content-Length", () => {
  const text = dec(errorResponse(502, 'Cannot connect to "x:1": connection refused'));
  const [head, body] = text.split("\r\n\r\n") as [string, string];
  assert.ok(head.startsWith("HTTP/1.1 502 Bad Gateway\r\n"));
  assert.ok(head.includes("Connection: close"));
  assert.equal(body, '502 Bad Gateway: Cannot connect to "x:1": connection refused\n');
  assert.ok(head.includes(`Content-Length: ${body.length}`));
});

Deno.test("stripHopByHop() drops hop-by-hop, Connection-named and Proxy-* fields in any case", () => {
  const headers: [string, string][] = [
    ["Host", "a"],
    ["CONNECTION", "Keep-Alive, X-Drop"],
    ["keep-alive", "timeout=5"],
    ["X-DROP", "1"],
    ["x-dropped", "kept"],
    ["TE", "trailers"],
    ["Trailer", "X"],
    ["Upgrade", "h2c"],
    ["Proxy-Authorization", "Basic x"],
    ["proxy-", "empty suffix"],
    ["Proxy", "kept: no dash"],
    ["Proxy-Connection", "X-Also"],
    ["x-also", "1"],
    ["Content-Length", "3"],
    ["\u212Aeep-Alive", "kelvin sign lower-cases to keep-alive"],
    ["\xc9t\xe9", "kept"],
  ];
  assert.deepEqual(stripHopByHop(headers).map(([n]) => n), [
    "Host",
    "x-dropped",
    "Proxy",
    "Content-Length",
    "\xc9t\xe9",
  ]);
});

Deno.test("rewriteResponseHeadText() is rewriteResponseHead() as latin1 text", () => {
  const resp = parseResponseHead(
    enc("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\nVia: 1.1 a\r\n\r\n"),
  );
  const options = { via: true, close: true, http10Client: false };
  const text = rewriteResponseHeadText(resp, options);
  assert.equal(
    text,
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nVia: 1.1 a, 1.1 wmproxy\r\nConnection: close\r\n\r\n",
  );
  assert.equal(dec(rewriteResponseHead(resp, options)), text);
});

Deno.test("responseHeadPassesThrough() only for HTTP/1.1 heads with nothing hop-by-hop but Connection: keep-alive", () => {
  const head = (text: string) => parseResponseHead(new TextEncoder().encode(text + "\r\n\r\n"));
  assert.equal(responseHeadPassesThrough(head("HTTP/1.1 200 OK\r\nContent-Length: 1")), true);
  assert.equal(
    responseHeadPassesThrough(
      head("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1"),
    ),
    true,
  );
  // Chunked framing is end to end here: it passes.
  assert.equal(
    responseHeadPassesThrough(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")),
    true,
  );
  for (
    const text of [
      "HTTP/1.0 200 OK\r\nContent-Length: 1",
      "HTTP/1.1 200 OK\r\nConnection: close",
      "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5",
      "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1",
      "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: keep-alive",
      "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 1",
      "HTTP/1.1 200 OK\r\nProxy-Connection: keep-alive",
    ]
  ) {
    assert.equal(responseHeadPassesThrough(head(text)), false, text);
  }
});
