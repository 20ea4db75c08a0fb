import assert from "node:assert/strict";
import {
  adminHostMatcher,
  createAdminHandler,
  renderMetrics,
  type StatusSnapshot,
} from "@/admin/mod.ts";

/** A POST as the CLI sends it. */
const JSON_POST = {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: "{}",
} satisfies RequestInit;

const SNAPSHOT: StatusSnapshot = {
  version: "9.9.9",
  pid: 42,
  started_at: "2026-11-24T00:00:00.000Z",
  uptime_s: 12.5,
  listeners: [{ component: "proxy", addr: "127.0.0.1:8090" }],
  proxy: {
    connections_open: 2,
    connections_total: 7,
    connections_rejected: 1,
    bytes_in: 100,
    bytes_out: 2000,
  },
  tunnel_server: {
    addr: "127.0.0.1:8091",
    sessions: [{
      id: "s1",
      client: 'lap"top',
      token: "laptop",
      peer: "127.0.0.1:5000",
      since: "2026-11-24T00:00:01.000Z",
      rtt_ms: 0.5,
      streams: 3,
      streams_total: 9,
      bytes_in: 10,
      bytes_out: 20,
    }],
    mappings: [{ key: "http:a.test", mapping: "web", session: "s1" }],
  },
  tunnel_client: null,
  upstreams: [{
    group: "g",
    addr: "127.0.0.1:9000",
    backup: false,
    healthy: false,
    active: 0,
    fails: 3,
  }],
  internal_errors: 0,
  histograms: [],
};

function handler(token?: string) {
  const calls = { reload: 0, stop: 0 };
  const h = createAdminHandler({
    token,
    status: () => SNAPSHOT,
    reload: () => {
      calls.reload++;
      return Promise.resolve({ ok: false, message: "invalid", errors: ["proxy.bind: bad"] });
    },
    stop: () => calls.stop++,
  });
  return { h, calls };
}

Deno.test("createAdminHandler() serves status JSON, metrics text and the dashboard", async () => {
  const { h } = handler();
  const status = await h(new Request("http://x/api/status"));
  assert.equal(status.status, 200);
  assert.equal((await status.json()).tunnel_server.sessions[0].id, "s1");
  const metrics = await (await h(new Request("http://x/metrics"))).text();
  assert.match(metrics, /^wmproxy_proxy_bytes_total\{direction="out"\} 2000$/m);
  assert.match(
    metrics,
    /^wmproxy_tunnel_streams\{session="s1",client="lap\\"top",token="laptop"\} 3$/m,
  );
  assert.match(metrics, /^wmproxy_upstream_healthy\{group="g",addr="127\.0\.0\.1:9000"\} 0$/m);
  assert.match(metrics, /^# TYPE wmproxy_tunnel_sessions gauge$/m);
  const page = await h(new Request("http://x/"));
  assert.match(await page.text(), /<title>wmproxy<\/title>/);
  assert.equal((await h(new Request("http://x/nope"))).status, 404);
});

Deno.test("createAdminHandler() checks methods: a GET never stops or reloads", async () => {
  const { h, calls } = handler();
  assert.equal((await h(new Request("http://x/api/stop"))).status, 405);
  assert.equal((await h(new Request("http://x/api/reload"))).status, 405);
  assert.equal((await h(new Request("http://x/api/status", JSON_POST))).status, 405);
  assert.deepEqual(calls, { reload: 0, stop: 0 });
  const failed = await h(new Request("http://x/api/reload", JSON_POST));
  assert.equal(failed.status, 422);
  assert.deepEqual((await failed.json()).errors, ["proxy.bind: bad"]);
  const stop = await h(new Request("http://x/api/stop", JSON_POST));
  assert.equal(stop.status, 200);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(calls, { reload: 1, stop: 1 });
});

Deno.test("createAdminHandler() with a token needs Authorization: Bearer on every path", async () => {
  const { h, calls } = handler("s3cret-token");
  for (const path of ["/", "/api/status", "/metrics"]) {
    const r = await h(new Request(`http://x${path}`));
    assert.equal(r.status, 401, path);
    assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="wmproxy"');
    await r.body?.cancel();
  }
  const wrong = await h(
    new Request("http://x/api/stop", {
      ...JSON_POST,
      headers: { authorization: "Bearer s3cret-tokeN", "content-type": "application/json" },
    }),
  );
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  assert.equal(calls.stop, 0);
  const ok = await h(
    new Request("http://x/api/status", { headers: { authorization: "Bearer s3cret-token" } }),
  );
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
});

Deno.test("adminHostMatcher() accepts the bound address, loopback names and admin.hosts", () => {
  const cases: [bound: string, port: number, extra: string[], host: string | null, ok: boolean][] =
    [
      ["127.0.0.1", 8837, [], "127.0.0.1:8837", true],
      ["127.0.0.1", 8837, [], "localhost:8837", true],
      ["127.0.0.1", 8837, [], "LOCALHOST.:8837", true],
      ["127.0.0.1", 8837, [], "[::1]:8837", true],
      ["127.0.0.1", 8837, [], "localhost:8838", false],
      ["127.0.0.1", 8837, [], "localhost", false],
      ["127.0.0.1", 8837, [], "evil.example", false],
      ["127.0.0.1", 8837, [], "evil.example:8837", false],
      ["127.0.0.1", 8837, [], "127.0.0.1.evil.example:8837", false],
      ["127.0.0.1", 8837, [], "", false],
      ["127.0.0.1", 8837, [], null, false],
      ["::1", 9000, [], "[::1]:9000", true],
      ["0.0.0.0", 9000, [], "0.0.0.0:9000", true],
      ["0.0.0.0", 9000, [], "10.0.0.5:9000", false],
      ["0.0.0.0", 9000, ["10.0.0.5:9000"], "10.0.0.5:9000", true],
      ["0.0.0.0", 9000, ["10.0.0.5:9000"], "10.0.0.5:9001", false],
      ["0.0.0.0", 9000, ["admin.example.com"], "admin.example.com", true],
      ["0.0.0.0", 9000, ["admin.example.com"], "Admin.Example.Com:443", true],
      ["0.0.0.0", 9000, ["admin.example.com"], "x.admin.example.com", false],
      ["127.0.0.1", 80, [], "localhost", true],
    ];
  for (const [bound, port, extra, host, ok] of cases) {
    const m = adminHostMatcher({ hostname: bound, port }, bound, extra);
    assert.equal(m(host), ok, `${bound}:${port} ${JSON.stringify(extra)} Host ${host}`);
  }
  const named = adminHostMatcher({ hostname: "127.0.0.1", port: 7000 }, "admin.lan");
  assert.equal(named("admin.lan:7000"), true, "the configured listen name");
});

Deno.test("createAdminHandler() answers only its operator: Host, Origin, Sec-Fetch-Site, Content-Type", async () => {
  const calls = { stop: 0 };
  const h = createAdminHandler({
    token: undefined,
    acceptHost: adminHostMatcher({ hostname: "127.0.0.1", port: 8837 }, "127.0.0.1"),
    status: () => SNAPSHOT,
    reload: () => Promise.resolve({ ok: true, message: "applied" }),
    stop: () => calls.stop++,
  });
  const req = (host: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    new Request("http://127.0.0.1:8837/api/stop", {
      ...init,
      headers: { host, ...(init.headers ?? {}) },
    });
  const cases: [what: string, request: Request, status: number][] = [
    [
      "foreign Host, GET",
      new Request("http://x/api/status", { headers: { host: "evil.example" } }),
      421,
    ],
    ["foreign Host, JSON POST", req("evil.example:8837", JSON_POST), 421],
    [
      "form POST",
      req("127.0.0.1:8837", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "a=1",
      }),
      415,
    ],
    [
      "text/plain POST",
      req("127.0.0.1:8837", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "{}",
      }),
      415,
    ],
    ["POST without a type", req("127.0.0.1:8837", { method: "POST", body: "{}" }), 415],
    [
      "cross-site Origin",
      req("127.0.0.1:8837", {
        method: "POST",
        headers: { "content-type": "application/json", origin: "http://evil.example" },
        body: "{}",
      }),
      403,
    ],
    [
      "cross-site form with Origin",
      req("127.0.0.1:8837", {
        method: "POST",
        headers: { "content-type": "text/plain", origin: "http://evil.example" },
        body: "x",
      }),
      403,
    ],
    [
      "Origin null",
      req("127.0.0.1:8837", {
        method: "POST",
        headers: { "content-type": "application/json", origin: "null" },
        body: "{}",
      }),
      403,
    ],
    [
      "other port's Origin",
      req("localhost:8837", {
        method: "POST",
        headers: { "content-type": "application/json", origin: "http://localhost:8080" },
        body: "{}",
      }),
      403,
    ],
    [
      "Sec-Fetch-Site cross-site",
      req("127.0.0.1:8837", {
        method: "POST",
        headers: { "content-type": "application/json", "sec-fetch-site": "cross-site" },
        body: "{}",
      }),
      403,
    ],
    [
      "Sec-Fetch-Site same-site",
      req("127.0.0.1:8837", {
        method: "POST",
        headers: { "content-type": "application/json", "sec-fetch-site": "same-site" },
        body: "{}",
      }),
      403,
    ],
  ];
  for (const [what, request, status] of cases) {
    const r = await h(request);
    assert.equal(r.status, status, `${what}: ${await r.text()}`);
  }
  assert.equal(calls.stop, 0, "nothing above stopped the process");
  const sameOrigin = await h(req("localhost:8837", {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=utf-8",
      origin: "http://localhost:8837",
      "sec-fetch-site": "same-origin",
    },
    body: "{}",
  }));
  assert.equal(sameOrigin.status, 200, await sameOrigin.text());
  const cli = await h(req("127.0.0.1:8837", JSON_POST));
  assert.equal(cli.status, 200, await cli.text());
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(calls.stop, 2);
  const page = await h(new Request("http://x/", { headers: { host: "localhost:8837" } }));
  assert.equal(page.status, 200);
  await page.body?.cancel();
});

Deno.test("renderMetrics() leaves out sections that do not run", () => {
  const text = renderMetrics({ ...SNAPSHOT, proxy: null, tunnel_server: null, upstreams: [] });
  assert.ok(!text.includes("wmproxy_proxy_"));
  assert.ok(!text.includes("wmproxy_tunnel_sessions"));
  assert.match(text, /wmproxy_uptime_seconds 12\.5/);
  assert.match(text, /\nwmproxy_internal_errors_total 0\n/);
  assert.match(
    renderMetrics({ ...SNAPSHOT, internal_errors: 3 }),
    /\nwmproxy_internal_errors_total 3\n/,
  );
});

Deno.test("renderMetrics() renders histograms with one HELP/TYPE per metric name", () => {
  const text = renderMetrics({
    ...SNAPSHOT,
    proxy: null,
    tunnel_server: null,
    upstreams: [],
    histograms: [
      {
        metric: "wmproxy_x_seconds",
        help: "X latency.",
        labels: { kind: "a" },
        hist: { buckets: [0.1, 1], counts: [1, 2], count: 3, sum: 3.55 },
      },
      {
        metric: "wmproxy_x_seconds",
        help: "X latency.",
        labels: { kind: 'b"' },
        hist: { buckets: [0.1, 1], counts: [0, 0], count: 0, sum: 0 },
      },
      {
        metric: "wmproxy_y_seconds",
        help: "Y latency.",
        labels: {},
        hist: { buckets: [0.5], counts: [1], count: 1, sum: 0.25 },
      },
    ],
  });
  const start = text.indexOf("# HELP wmproxy_x_seconds");
  assert.ok(start > 0, text);
  assert.equal(
    text.slice(start),
    [
      "# HELP wmproxy_x_seconds X latency.",
      "# TYPE wmproxy_x_seconds histogram",
      'wmproxy_x_seconds_bucket{kind="a",le="0.1"} 1',
      'wmproxy_x_seconds_bucket{kind="a",le="1"} 2',
      'wmproxy_x_seconds_bucket{kind="a",le="+Inf"} 3',
      'wmproxy_x_seconds_sum{kind="a"} 3.55',
      'wmproxy_x_seconds_count{kind="a"} 3',
      'wmproxy_x_seconds_bucket{kind="b\\"",le="0.1"} 0',
      'wmproxy_x_seconds_bucket{kind="b\\"",le="1"} 0',
      'wmproxy_x_seconds_bucket{kind="b\\"",le="+Inf"} 0',
      'wmproxy_x_seconds_sum{kind="b\\""} 0',
      'wmproxy_x_seconds_count{kind="b\\""} 0',
      "# HELP wmproxy_y_seconds Y latency.",
      "# TYPE wmproxy_y_seconds histogram",
      'wmproxy_y_seconds_bucket{le="0.5"} 1',
      'wmproxy_y_seconds_bucket{le="+Inf"} 1',
      "wmproxy_y_seconds_sum 0.25",
      "wmproxy_y_seconds_count 1",
      "",
    ].join("\n"),
  );
});
