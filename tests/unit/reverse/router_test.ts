import assert from "node:assert/strict";
import {
  hostMatches,
  LocationRouter,
  type MatchInput,
  normalizePath,
  selectServer,
} from "@/reverse/router.ts";
import { httpConfig } from "./_helpers.ts";

const GET: MatchInput = { method: "GET", host: "a.example", scheme: "http", clientIp: "127.0.0.1" };

function router(paths: (string | { path: string; match?: unknown })[]): LocationRouter {
  const c = httpConfig({
    matchers: { posts: { methods: ["POST"] } },
    servers: [{
      locations: paths.map((p) =>
        typeof p === "string"
          ? { path: p, static_response: { body: p } }
          : { ...p, static_response: { body: p.path } }
      ),
    }],
  });
  return new LocationRouter(c.servers[0]!.locations);
}

const which = (r: LocationRouter, uri: string, input = GET) => r.match(uri, input)?.location.path;

Deno.test("LocationRouter.match() follows nginx priority: exact, ^~, regex in order, longest prefix", () => {
  const r = router([
    "/",
    "/images/",
    "^~ /static/",
    "~ \\.(gif|jpg)$",
    "~* \\.PNG$",
    "= /",
    "/images/deep/",
    "~ ^/images/deep/x",
  ]);
  assert.equal(which(r, "/"), "= /", "exact beats everything");
  assert.equal(which(r, "/index.html"), "/");
  assert.equal(which(r, "/static/a.gif"), "^~ /static/", "^~ stops the regex search");
  assert.equal(which(r, "/images/a.gif"), "~ \\.(gif|jpg)$", "regex beats a plain prefix");
  assert.equal(which(r, "/images/a.txt"), "/images/");
  assert.equal(which(r, "/images/deep/a.txt"), "/images/deep/", "longest prefix");
  assert.equal(which(r, "/images/deep/x.jpg"), "~ \\.(gif|jpg)$", "first regex in config order");
  assert.equal(which(r, "/x/Y.png"), "~* \\.PNG$", "case-insensitive regex");
  assert.equal(which(r, "/x/Y.Gif"), "/", "~ is case-sensitive");
});

Deno.test("LocationRouter.match() skips a location whose matcher rejects the request", () => {
  const r = router([
    "/",
    { path: "= /form", match: "@posts" },
    { path: "/api/", match: { methods: ["GET"], hosts: ["*.example"], schemes: ["https"] } },
    { path: "/lan/", match: { client_ips: ["10.0.0.0/8", "fd00::/8"] } },
  ]);
  assert.equal(which(r, "/form"), "/");
  assert.equal(which(r, "/form", { ...GET, method: "POST" }), "= /form");
  assert.equal(which(r, "/api/x"), "/", "scheme http does not match");
  assert.equal(which(r, "/api/x", { ...GET, scheme: "https" }), "/api/");
  assert.equal(which(r, "/api/x", { ...GET, scheme: "https", host: "other.test" }), "/");
  assert.equal(which(r, "/lan/x", { ...GET, clientIp: "10.1.2.3" }), "/lan/");
  assert.equal(which(r, "/lan/x", { ...GET, clientIp: "fd00::1" }), "/lan/");
  assert.equal(which(r, "/lan/x", { ...GET, clientIp: "192.168.1.1" }), "/");
});

Deno.test("LocationRouter.match() returns undefined without a match and finds named locations", () => {
  const r = router(["/api/", "@fallback"]);
  assert.equal(which(r, "/other"), undefined);
  assert.equal(which(r, "/fallback"), undefined, "named locations never match a URI");
  assert.equal(r.named("fallback")?.path, "@fallback");
});

Deno.test("selectServer() picks exact, then longest *., then .*, then regex, else the default", () => {
  const servers = [
    { id: 0, server_names: ["first.example"], default_server: false },
    { id: 1, server_names: ["*.example", "www.*"], default_server: false },
    { id: 2, server_names: ["*.deep.example"], default_server: true },
    { id: 3, server_names: ["~^api\\d+\\.test$"], default_server: false },
    { id: 4, server_names: ["exact.deep.example"], default_server: false },
  ];
  const pick = (host: string) => selectServer(servers, host)?.id;
  assert.equal(pick("first.example"), 0);
  assert.equal(pick("exact.deep.example"), 4);
  assert.equal(pick("x.deep.example"), 2, "longest leading wildcard");
  assert.equal(pick("x.example"), 1);
  assert.equal(pick("www.other"), 1);
  assert.equal(pick("api7.test"), 3);
  assert.equal(pick("unknown.test"), 2, "default_server");
  assert.equal(pick(""), 2);
  assert.equal(selectServer(servers.map((s) => ({ ...s, default_server: false })), "zzz")?.id, 0);
});

Deno.test("hostMatches() handles wildcards", () => {
  assert.ok(hostMatches("*.a.test", "b.a.test"));
  assert.ok(!hostMatches("*.a.test", "a.test"));
  assert.ok(hostMatches(".a.test", "a.test"));
  assert.ok(hostMatches(".a.test", "x.a.test"));
  assert.ok(hostMatches("www.*", "www.z"));
  assert.ok(!hostMatches("www.*", "www."));
  assert.ok(hostMatches("A.Test", "a.test"));
});

Deno.test("normalizePath() decodes once, resolves dots and refuses climbing out", () => {
  assert.equal(normalizePath("/a/./b//c"), "/a/b/c");
  assert.equal(normalizePath("/a/b/../c"), "/a/c");
  assert.equal(normalizePath("/a/"), "/a/");
  assert.equal(normalizePath("/"), "/");
  assert.equal(normalizePath("/a/%2e%2e/b"), "/b");
  assert.equal(normalizePath("/%252e%252e/x"), "/%2e%2e/x", "decoded once only");
  assert.equal(normalizePath("/caf%C3%A9"), "/café");
  for (
    const bad of [
      "/..",
      "/a/../..",
      "/%2e%2e/etc",
      "/..%2fetc",
      "/a%5c..%5cb",
      "/a%00b",
      "/%E0%A4%A",
    ]
  ) {
    assert.equal(normalizePath(bad), undefined, bad);
  }
});
