import assert from "node:assert/strict";
import { createHttpHandler } from "@/reverse/mod.ts";
import { UpstreamGroup } from "@/upstream/mod.ts";
import {
  connectError,
  fakeFetch,
  hang,
  httpConfig,
  info,
  memoryLog,
  resetError,
  WWW,
} from "./_helpers.ts";

const ok = (body = "ok", init: ResponseInit = {}) => new Response(body, init);

Deno.test("createHttpHandler() routes by Host to virtual servers, with a default server", async () => {
  const handle = createHttpHandler(httpConfig({
    servers: [
      { server_names: ["a.test"], locations: [{ path: "/", static_response: { body: "A" } }] },
      {
        server_names: ["*.b.test"],
        default_server: true,
        locations: [{ path: "/", static_response: { body: "B $host" } }],
      },
      { server_names: ["c.test"], locations: [{ path: "/only/", static_response: { body: "C" } }] },
    ],
  }));
  const get = async (url: string, host?: string) => {
    const res = await handle(new Request(url, host ? { headers: { host } } : {}), info());
    return `${res.status} ${(await res.text()).trim()}`;
  };
  assert.equal(await get("http://a.test/"), "200 A");
  assert.equal(await get("http://A.TEST:8080/"), "200 A");
  assert.equal(await get("http://x.b.test/"), "200 B x.b.test");
  assert.equal(await get("http://unknown.test/"), "200 B unknown.test", "default_server");
  assert.equal(await get("http://c.test/other"), "404 404 Not Found");
  assert.equal(await get("http://a.test/x%2f..%2f..%2fetc/passwd"), "400 400 Bad Request");
});

Deno.test("createHttpHandler() proxies with Host preserved, X-Forwarded-*, hop-by-hop removed", async () => {
  const f = fakeFetch(() =>
    ok("up", {
      headers: {
        "x-up": "1",
        connection: "x-secret, keep-alive",
        "x-secret": "s",
        "keep-alive": "5",
      },
    })
  );
  const handle = createHttpHandler(
    httpConfig({
      servers: [{
        locations: [
          { path: "/api/", proxy_pass: "http://127.0.0.1:9000/v1/" },
          { path: "/raw/", proxy_pass: "http://127.0.0.1:9000", preserve_host: false },
          { path: "= /exact", proxy_pass: "http://127.0.0.1:9000/elsewhere" },
        ],
      }],
    }),
    { fetch: f },
  );
  const res = await handle(
    new Request("http://site.test:8080/api/x/y?q=1", {
      headers: {
        connection: "upgrade, x-hop",
        "x-hop": "1",
        te: "trailers",
        "proxy-authorization": "Basic x",
        "x-forwarded-for": "9.9.9.9",
        "accept-encoding": "gzip, br",
      },
    }),
    info("10.0.0.5", "https"),
  );
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "up");
  assert.equal(res.headers.get("x-up"), "1");
  for (const h of ["connection", "x-secret", "keep-alive"]) {
    assert.equal(res.headers.get(h), null, h);
  }
  const call = f.calls[0]!;
  assert.equal(call.url, "http://127.0.0.1:9000/v1/x/y?q=1");
  assert.equal(call.headers.get("host"), "site.test:8080");
  assert.equal(call.headers.get("x-forwarded-for"), "9.9.9.9, 10.0.0.5");
  assert.equal(call.headers.get("x-forwarded-proto"), "https");
  assert.equal(call.headers.get("x-forwarded-host"), "site.test:8080");
  assert.equal(call.headers.get("accept-encoding"), "gzip, br", "the client's, unchanged");
  for (const h of ["connection", "x-hop", "te", "proxy-authorization"]) {
    assert.equal(call.headers.get(h), null, h);
  }

  await (await handle(new Request("http://site.test/raw/a%20b?x"), info())).body?.cancel();
  assert.equal(f.calls[1]!.url, "http://127.0.0.1:9000/raw/a%20b?x");
  assert.equal(f.calls[1]!.headers.get("host"), "127.0.0.1:9000", "preserve_host: false");
  await (await handle(new Request("http://site.test/exact?k=v"), info())).body?.cancel();
  assert.equal(f.calls[2]!.url, "http://127.0.0.1:9000/elsewhere?k=v");
});

Deno.test("createHttpHandler() applies request and response header rules with variables", async () => {
  const f = fakeFetch(() => ok("x", { headers: { server: "origin", "x-powered-by": "php" } }));
  const handle = createHttpHandler(
    httpConfig({
      request_headers: [{ action: "set", name: "X-Real-IP", value: "$remote_addr" }],
      response_headers: [{ action: "remove", name: "X-Powered-By" }],
      servers: [{
        response_headers: [{ action: "set", name: "Server", value: "wmproxy" }],
        locations: [{
          path: "/",
          proxy_pass: "http://127.0.0.1:9000",
          request_headers: [
            { action: "add", name: "X-Echo", value: "$http_x_in|$uri|$args" },
            { action: "set_if_absent", name: "X-Default", value: "d" },
            { action: "remove", name: "Cookie" },
          ],
          response_headers: [{
            action: "add",
            name: "X-Route",
            value: "$scheme://$host$request_uri",
          }],
        }],
      }],
    }),
    { fetch: f },
  );
  const res = await handle(
    new Request("http://h.test/p%20q?a=1", {
      headers: { "x-in": "$remote_addr $$", cookie: "c=1", "x-default": "client" },
    }),
    info("192.0.2.1"),
  );
  await res.body?.cancel();
  const h = f.calls[0]!.headers;
  assert.equal(h.get("x-real-ip"), "192.0.2.1");
  assert.equal(h.get("x-echo"), "$remote_addr $$|/p q|a=1", "client text is never expanded");
  assert.equal(h.get("x-default"), "client");
  assert.equal(h.get("cookie"), null);
  assert.equal(res.headers.get("server"), "wmproxy");
  assert.equal(res.headers.get("x-powered-by"), null);
  assert.equal(res.headers.get("x-route"), "http://h.test/p%20q?a=1");
});

function threeServers(extra: Record<string, unknown> = {}) {
  return httpConfig({
    upstreams: [{
      name: "app",
      servers: [
        { addr: "127.0.0.1:9001", max_fails: 1, fail_timeout: "30s" },
        "127.0.0.1:9002",
        "127.0.0.1:9003",
      ],
    }],
    servers: [{
      locations: [{
        path: "/",
        proxy_pass: "http://app",
        timeouts: { upstream_connect: "50ms", upstream_read: "50ms" },
        ...extra,
      }],
    }],
  });
}

Deno.test("proxy: a connect failure moves on to the next server and marks the first down", async () => {
  const config = threeServers();
  await using group = new UpstreamGroup(config.upstreams[0]!);
  const f = fakeFetch((url) => {
    if (url.port === "9001") throw connectError();
    return ok(`from ${url.port}`);
  });
  const { log, events } = memoryLog();
  const handle = createHttpHandler(config, { fetch: f, upstreams: new Map([["app", group]]), log });
  const res = await handle(new Request("http://h.test/", { method: "POST", body: "data" }), info());
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "from 9002");
  assert.deepEqual(f.calls.map((c) => new URL(c.url).port), ["9001", "9002"]);
  assert.equal(f.calls[1]!.body, "data", "the body is replayed");
  const s = group.status().find((p) => p.addr === "127.0.0.1:9001")!;
  assert.equal(s.healthy, false);
  assert.match(s.last_error ?? "", /connect/);
  assert.equal(events("http_upstream_error")[0]!.kind, "connect");
  const access = events("http_access");
  assert.equal(access.length, 1);
  assert.equal(access[0]!.upstream_addr, "127.0.0.1:9001, 127.0.0.1:9002");
  // The next request skips the server that is down.
  await (await handle(new Request("http://h.test/"), info())).text();
  assert.notEqual(new URL(f.calls.at(-1)!.url).port, "9001");
});

Deno.test("proxy: a failure after sending is retried for GET but not for POST", async () => {
  const config = threeServers();
  const f = fakeFetch((url) => {
    if (url.port !== "9003") throw resetError();
    return ok("third");
  });
  await using g1 = new UpstreamGroup(config.upstreams[0]!);
  const handle = createHttpHandler(config, { fetch: f, upstreams: new Map([["app", g1]]) });
  const get = await handle(new Request("http://h.test/"), info());
  assert.equal(get.status, 200);
  assert.equal(await get.text(), "third");
  assert.equal(f.calls.length, 3);

  const f2 = fakeFetch(() => {
    throw resetError();
  });
  await using g2 = new UpstreamGroup(config.upstreams[0]!);
  const handle2 = createHttpHandler(config, { fetch: f2, upstreams: new Map([["app", g2]]) });
  const post = await handle2(new Request("http://h.test/", { method: "POST", body: "x" }), info());
  assert.equal(post.status, 502);
  await post.body?.cancel();
  assert.equal(f2.calls.length, 1, "a POST that may have reached the upstream is not repeated");
});

Deno.test("proxy: every server failing to connect gives 502; an upstream timeout gives 504", async () => {
  const config = threeServers();
  await using g1 = new UpstreamGroup(config.upstreams[0]!);
  const refused = createHttpHandler(config, {
    fetch: fakeFetch(() => {
      throw connectError();
    }),
    upstreams: new Map([["app", g1]]),
  });
  const r1 = await refused(new Request("http://h.test/"), info());
  assert.equal(r1.status, 502);
  await r1.body?.cancel();

  await using g2 = new UpstreamGroup(config.upstreams[0]!);
  const f = fakeFetch((_u, _c, signal) => hang(signal));
  const slow = createHttpHandler(config, { fetch: f, upstreams: new Map([["app", g2]]) });
  const r2 = await slow(new Request("http://h.test/", { method: "POST", body: "p" }), info());
  assert.equal(r2.status, 504);
  await r2.body?.cancel();
  assert.equal(f.calls.length, 1, "POST is not retried after a timeout");
});

Deno.test("proxy: 5xx answers are passed on and counted against the server", async () => {
  const config = threeServers();
  await using group = new UpstreamGroup(config.upstreams[0]!);
  const handle = createHttpHandler(config, {
    fetch: fakeFetch(() => ok("boom", { status: 503 })),
    upstreams: new Map([["app", group]]),
  });
  const res = await handle(new Request("http://h.test/"), info());
  assert.equal(res.status, 503);
  assert.equal(await res.text(), "boom");
  assert.equal(group.status()[0]!.healthy, false, "max_fails 1 reached by a 503");
});

Deno.test("proxy: request bodies above max_body_size get 413 before any upstream call", async () => {
  const f = fakeFetch(() => ok());
  const handle = createHttpHandler(
    httpConfig({
      servers: [{
        locations: [{ path: "/", proxy_pass: "http://127.0.0.1:9000", max_body_size: "10B" }],
      }],
    }),
    { fetch: f },
  );
  const res = await handle(
    new Request("http://h.test/", { method: "POST", body: "01234567890123" }),
    info(),
  );
  assert.equal(res.status, 413);
  await res.body?.cancel();
  const chunked = await handle(
    new Request("http://h.test/", {
      method: "POST",
      body: ReadableStream.from([new TextEncoder().encode("0123456789ABCDEF")]),
    }),
    info(),
  );
  assert.equal(chunked.status, 413);
  await chunked.body?.cancel();
});

Deno.test("createHttpHandler() answers static responses with status, headers and a template", async () => {
  const handle = createHttpHandler(httpConfig({
    servers: [{
      locations: [
        {
          path: "= /health",
          static_response: {
            status: 201,
            headers: { "X-Client": "$remote_addr" },
            body: "ok $request_method $uri from $remote_addr <$http_x_name>",
            content_type: "text/html",
          },
        },
        { path: "/gone", static_response: { status: 410 } },
      ],
    }],
  }));
  const res = await handle(
    new Request("http://h.test/health", { headers: { "x-name": "n" } }),
    info("::1"),
  );
  assert.equal(res.status, 201);
  assert.equal(res.headers.get("x-client"), "::1");
  assert.equal(res.headers.get("content-type"), "text/html");
  assert.equal(await res.text(), "ok GET /health from ::1 <n>");
  const head = await handle(new Request("http://h.test/health", { method: "HEAD" }), info());
  assert.equal(head.body, null);
  const gone = await handle(new Request("http://h.test/gone/x"), info());
  assert.equal(gone.status, 410);
  assert.equal(await gone.text(), "");
});

Deno.test("createHttpHandler() enforces allow/deny with 403, IPv4 and IPv6", async () => {
  const handle = createHttpHandler(httpConfig({
    deny: ["10.0.0.13"],
    servers: [{
      locations: [
        { path: "/", static_response: { body: "open" } },
        { path: "/lan/", static_response: { body: "lan" }, allow: ["10.0.0.0/8", "fd00::/8"] },
      ],
    }],
  }));
  const status = async (path: string, ip: string) => {
    const res = await handle(new Request(`http://h.test${path}`), info(ip));
    await res.body?.cancel();
    return res.status;
  };
  assert.equal(await status("/", "192.0.2.1"), 200);
  assert.equal(await status("/", "10.0.0.13"), 403, "http-level deny inherited");
  assert.equal(await status("/lan/x", "10.1.1.1"), 200);
  assert.equal(await status("/lan/x", "fd00::5"), 200);
  assert.equal(await status("/lan/x", "::ffff:10.2.2.2"), 200);
  assert.equal(await status("/lan/x", "192.0.2.1"), 403);
  assert.equal(await status("/lan/x", "2001:db8::1"), 403);
});

Deno.test("limit_req: a burst gets 429 for exactly the requests over 1 + burst", async () => {
  const handle = createHttpHandler(
    httpConfig({
      limit_req_zones: [
        { name: "perip", rate: "1r/m" },
        { name: "byheader", key: "$http_x_key", rate: "1r/m" },
      ],
      servers: [{
        locations: [
          { path: "/", static_response: {}, limit_req: { zone: "perip", burst: 3, nodelay: true } },
          {
            path: "/k/",
            static_response: {},
            limit_req: { zone: "byheader", burst: 0, nodelay: true, status: 503 },
          },
        ],
      }],
    }),
    { now: () => 1_000_000 },
  );
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) {
    const res = await handle(new Request("http://h.test/"), info("192.0.2.7"));
    await res.body?.cancel();
    statuses.push(res.status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
  const other = await handle(new Request("http://h.test/"), info("192.0.2.8"));
  assert.equal(other.status, 200, "another client has its own bucket");
  const k = async (key: string) => {
    const res = await handle(
      new Request("http://h.test/k/", { headers: { "x-key": key } }),
      info(),
    );
    await res.body?.cancel();
    return res.status;
  };
  assert.deepEqual([await k("a"), await k("a"), await k("b")], [200, 503, 200]);
});

Deno.test("limit_req without nodelay delays the excess", async () => {
  const sleeps: number[] = [];
  const handle = createHttpHandler(
    httpConfig({
      limit_req_zones: [{ name: "z", rate: "10r/s" }],
      servers: [{
        locations: [{ path: "/", static_response: {}, limit_req: { zone: "z", burst: 2 } }],
      }],
    }),
    {
      now: () => 0,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
    },
  );
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await handle(new Request("http://h.test/"), info());
    await res.body?.cancel();
    statuses.push(res.status);
  }
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  assert.deepEqual(sleeps, [100, 200]);
});

Deno.test("try_files: candidates with variables, then a named location, a URI or a status", async () => {
  const handle = createHttpHandler(httpConfig({
    servers: [{
      root: WWW,
      locations: [
        { path: "/", file_server: {}, try_files: ["$uri", "$uri.html", "@app"] },
        { path: "/spa/", file_server: {}, try_files: ["$uri", "/fallback.html"] },
        { path: "/strict/", file_server: {}, try_files: ["$uri", "=418"] },
        { path: "/loop/", file_server: {}, try_files: ["$uri", "/loop/again"] },
        { path: "@app", static_response: { body: "app for $uri" } },
        { path: "= /fallback.html", static_response: { body: "fallback location" } },
      ],
    }],
  }));
  const get = async (path: string) => {
    const res = await handle(new Request(`http://h.test${path}`), info());
    return `${res.status} ${(await res.text()).trim()}`;
  };
  assert.equal(await get("/range.txt"), "200 0123456789abcdefghijklmnopqrstuvwxyz");
  assert.equal(await get("/fallback"), "200 fallback page", "$uri.html");
  assert.equal(await get("/nothing/here"), "200 app for /nothing/here");
  assert.equal(await get("/spa/deep/link"), "200 fallback location", "URI fallback re-matches");
  assert.equal(await get("/strict/missing"), "418 418 try_files");
  assert.equal(await get("/loop/x"), "500 500 Internal Server Error");
});

Deno.test("access log: one line after the body, with status, bytes and the configured format", async () => {
  const { log, events } = memoryLog();
  const handle = createHttpHandler(
    httpConfig({
      access_log: {
        format: "$remote_addr $request_method $uri $status $bytes_sent [$http_user_agent]",
      },
      servers: [{ locations: [{ path: "/", static_response: { body: "12345" } }] }],
    }),
    { log },
  );
  const res = await handle(
    new Request("http://h.test/a?b", { headers: { "user-agent": "t/1" } }),
    info("192.0.2.9"),
  );
  assert.equal(events("http_access").length, 0, "not before the body is sent");
  assert.equal(await res.text(), "12345");
  const [e] = events("http_access");
  assert.equal(e!.status, 200);
  assert.equal(e!.bytes, 5);
  assert.equal(e!.line, "192.0.2.9 GET /a 200 5 [t/1]");
  const miss = await handle(new Request("http://h.test/%zz"), info());
  await miss.text();
  assert.equal(events("http_access")[1]!.status, 400, "errors are logged too");
});

Deno.test("proxy: bodies above the replay buffer are streamed (and not retried)", async () => {
  const size = 3 * 1024 * 1024;
  const f = fakeFetch((_u, call) => ok(`got ${call.body?.length}`));
  const handle = createHttpHandler(
    httpConfig({
      servers: [{
        locations: [{ path: "/", proxy_pass: "http://127.0.0.1:9000", max_body_size: "8MiB" }],
      }],
    }),
    { fetch: f },
  );
  const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
  const body = ReadableStream.from(Array.from({ length: size / chunk.length }, () => chunk));
  const res = await handle(new Request("http://h.test/", { method: "PUT", body }), info());
  assert.equal(res.status, 200);
  assert.equal(await res.text(), `got ${size}`);
});
