import assert from "node:assert/strict";
import {
  DEFAULT_ACCESS_LOG_FORMAT,
  fileServerSectionConfig,
  parseLocationPattern,
  parseRate,
  reverseProxySectionConfig,
} from "@/config/http_section.ts";
import { httpConfig, readIssues } from "./_helpers.ts";

const paths = (doc: unknown) => readIssues(doc).map((i) => i.path);

Deno.test("readHttpSection() accepts a full section and completeHttpSection() fills defaults", () => {
  const c = httpConfig({
    upstreams: [{
      name: "app",
      servers: ["127.0.0.1:9001", { addr: "127.0.0.1:9002", backup: true }],
    }],
    limit_req_zones: [{ name: "perip", rate: "30r/m" }],
    matchers: { writes: { methods: ["POST"], client_ips: ["10.0.0.0/8", "2001:db8::/32"] } },
    timeouts: { upstream_read: "5s" },
    request_headers: [{ action: "set", name: "X-Level", value: "http" }],
    servers: [{
      server_names: ["a.example", "*.b.example"],
      timeouts: { upstream_connect: "250ms" },
      request_headers: [{ action: "add", name: "X-Level", value: "server" }],
      locations: [
        { path: "= /exact", static_response: { status: 204 } },
        {
          path: "^~ /api/",
          match: "@writes",
          proxy_pass: "http://app/v1/",
          limit_req: { zone: "perip", burst: 5, nodelay: true },
          timeouts: { upstream_read: "1s" },
          request_headers: [{ action: "remove", name: "Cookie" }],
        },
        { path: "~* \\.(png|jpg)$", file_server: { root: "/srv" } },
        { path: "/", file_server: { root: "/srv", browse: true }, try_files: ["$uri", "@app"] },
        { path: "@app", proxy_pass: "http://app" },
      ],
    }],
  });
  assert.equal(c.upstreams[0]!.name, "app");
  assert.equal(c.limit_req_zones[0]!.rate_per_second, 0.5);
  assert.equal(c.limit_req_zones[0]!.key, "$remote_addr");
  assert.equal(c.access_log.format, DEFAULT_ACCESS_LOG_FORMAT);
  const s = c.servers[0]!;
  assert.deepEqual(s.listen, ["127.0.0.1:8080"]);
  const api = s.locations[1]!;
  assert.equal(api.pattern.kind, "prefix_priority");
  assert.deepEqual(api.match?.methods, ["POST"]);
  assert.equal(api.timeouts.upstream_read_ms, 1000, "location wins");
  assert.equal(api.timeouts.upstream_connect_ms, 250, "server value inherited");
  assert.equal(s.locations[0]!.timeouts.upstream_read_ms, 5000, "http value inherited");
  assert.equal(api.timeouts.client_body_ms, 60_000, "default");
  assert.deepEqual(api.request_headers.map((r) => r.action), ["set", "add", "remove"]);
  assert.deepEqual(api.limit_req, { zone: "perip", burst: 5, nodelay: true, status: 429 });
  assert.equal(api.max_body_size, 1024 * 1024);
  assert.equal(api.preserve_host, true);
  assert.equal(s.locations[3]!.file_server?.browse, true);
  assert.deepEqual(s.locations[3]!.file_server?.index, ["index.html"]);
  assert.deepEqual(s.locations[3]!.try_files?.fallback, { kind: "named", name: "app" });
  assert.equal(s.locations[0]!.static_response?.status, 204);
});

Deno.test("readHttpSection() reports unknown keys and bad values with their paths", () => {
  const got = paths({
    bogus: 1,
    servers: [{
      listen: ["nope"],
      locations: [
        { path: "/", proxy_pass: "ftp://x" },
        { path: "/a", static_response: {}, extra: true },
        { path: "~ ([", static_response: {} },
        { path: "/b", file_server: { root: "/r", alias: "/x" } },
        { path: "/c" },
        { path: "/d", static_response: {}, limit_req: { zone: "missing" } },
        { path: "/e", static_response: {}, allow: ["10.0.0.0/33"], match: "@nope" },
        {
          path: "/f",
          static_response: {},
          request_headers: [{ action: "set", name: "Content-Length", value: "1" }],
        },
      ],
    }],
  });
  for (
    const p of [
      "http.bogus",
      "http.servers[0].listen[0]",
      "http.servers[0].locations[0].proxy_pass",
      "http.servers[0].locations[1].extra",
      "http.servers[0].locations[2].path",
      "http.servers[0].locations[3].file_server.alias",
      "http.servers[0].locations[4]",
      "http.servers[0].locations[5].limit_req.zone",
      "http.servers[0].locations[6].allow[0]",
      "http.servers[0].locations[6].match",
      "http.servers[0].locations[7].request_headers[0].name",
    ]
  ) {
    assert.ok(got.includes(p), `expected an issue at ${p}; got ${JSON.stringify(got)}`);
  }
});

Deno.test("readHttpSection() checks TLS, listeners, try_files and duplicates", () => {
  const got = paths({
    servers: [
      { listen_tls: ["127.0.0.1:8443"], locations: [{ path: "/", static_response: {} }] },
      {
        listen: ["127.0.0.1:8443"],
        locations: [
          { path: "/", static_response: {} },
          { path: "/", static_response: {} },
          { path: "/t", static_response: {}, try_files: ["$uri", "=404"] },
          { path: "/w", static_response: {}, websocket: true },
          { path: "/x", file_server: { root: "/r" }, try_files: ["$uri", "@missing"] },
        ],
      },
    ],
  });
  for (
    const p of [
      "http.servers[0].tls",
      "http.servers[1].listen",
      "http.servers[1].locations[1].path",
      "http.servers[1].locations[2].try_files",
      "http.servers[1].locations[3].websocket",
      "http.servers[1].locations[4].try_files",
    ]
  ) {
    assert.ok(got.includes(p), `expected an issue at ${p}; got ${JSON.stringify(got)}`);
  }
  assert.deepEqual(paths({}), ["http.servers"]);
  assert.ok(
    paths({ servers: [{ locations: [{ path: "/", file_server: {} }] }] }).includes(
      "http.servers[0].locations[0].file_server.root",
    ),
  );
});

Deno.test("readHttpSection() reports upstream group problems through readUpstreamGroups", () => {
  const got = paths({
    upstreams: [{ name: "a", servers: [] }, { name: "a", servers: ["127.0.0.1:1"] }],
    servers: [{ locations: [{ path: "/", proxy_pass: "http://a" }] }],
  });
  assert.ok(got.includes("http.upstreams[0].servers"), JSON.stringify(got));
});

Deno.test("parseLocationPattern() knows nginx modifiers", () => {
  assert.deepEqual(parseLocationPattern("= /x"), { kind: "exact", value: "/x" });
  assert.deepEqual(parseLocationPattern("^~ /s/"), { kind: "prefix_priority", value: "/s/" });
  assert.deepEqual(parseLocationPattern("~ \\.php$"), { kind: "regex", value: "\\.php$" });
  assert.deepEqual(parseLocationPattern("~* \\.JPG$"), { kind: "regex_i", value: "\\.JPG$" });
  assert.deepEqual(parseLocationPattern("/a"), { kind: "prefix", value: "/a" });
  assert.deepEqual(parseLocationPattern("@app"), { kind: "named", value: "app" });
  assert.throws(() => parseLocationPattern("a"), SyntaxError);
  assert.throws(() => parseLocationPattern("= x"), SyntaxError);
});

Deno.test("parseRate() reads r/s and r/m", () => {
  assert.equal(parseRate("10r/s"), 10);
  assert.equal(parseRate("30r/m"), 0.5);
  assert.throws(() => parseRate("10/s"), SyntaxError);
  assert.throws(() => parseRate("0r/s"), SyntaxError);
});

Deno.test("fileServerSectionConfig() and reverseProxySectionConfig() build complete sections", () => {
  const f = fileServerSectionConfig({ root: "/srv", listen: "127.0.0.1:0", browse: true });
  assert.deepEqual(f.servers[0]!.listen, ["127.0.0.1:0"]);
  assert.equal(f.servers[0]!.locations[0]!.file_server?.root, "/srv");
  assert.equal(f.servers[0]!.locations[0]!.file_server?.browse, true);
  const p = reverseProxySectionConfig({ from: "127.0.0.1:0", to: "http://127.0.0.1:9000" });
  assert.equal(p.servers[0]!.locations[0]!.proxy_pass, "http://127.0.0.1:9000");
  assert.equal(p.servers[0]!.locations[0]!.websocket, true);
  assert.throws(() => reverseProxySectionConfig({ from: "x", to: "http://a" }), SyntaxError);
  assert.throws(
    () => reverseProxySectionConfig({ from: "127.0.0.1:1", to: "ftp://a" }),
    SyntaxError,
  );
});
