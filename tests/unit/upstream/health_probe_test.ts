import assert from "node:assert/strict";
import type { HealthCheckConfig, UpstreamGroupConfig } from "@/config/upstream_section.ts";
import { probeUpstream, UpstreamGroup } from "@/upstream/mod.ts";
import { formatHostPort } from "@/transport/conn.ts";

function check(over: Partial<HealthCheckConfig>): HealthCheckConfig {
  return {
    type: "tcp",
    interval_ms: 20,
    timeout_ms: 500,
    rise: 1,
    fall: 1,
    path: "/",
    expect_status: 200,
    ...over,
  };
}

/** A plain TCP server that accepts and closes at once. */
function tcpServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    for await (const conn of listener) conn.close();
  })().catch(() => {});
  return {
    addr: formatHostPort(listener.addr),
    async stop() {
      listener.close();
      await done;
    },
  };
}

Deno.test("probeUpstream() checks TCP connects and HTTP status with real servers", async () => {
  const ac = new AbortController();
  let status = 200;
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => new Response(new URL(req.url).pathname, { status }),
  );
  const httpAddr = { hostname: "127.0.0.1", port: http.addr.port };
  const tcp = tcpServer();
  const signal = new AbortController().signal;
  try {
    await probeUpstream({ addr: httpAddr }, check({ type: "http", path: "/healthz" }), signal);
    status = 503;
    await assert.rejects(
      probeUpstream({ addr: httpAddr }, check({ type: "http" }), signal),
      /status 503 \(expected 200\)/,
    );
    await probeUpstream(
      { addr: { hostname: "127.0.0.1", port: Number(tcp.addr.split(":")[1]) } },
      check({}),
      signal,
    );
  } finally {
    ac.abort();
    await http.finished;
    await tcp.stop();
  }
});

Deno.test("UpstreamGroup active checks mark real TCP and HTTP servers down when they stop", async () => {
  const ac = new AbortController();
  const http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    () => new Response("ok"),
  );
  const tcp = tcpServer();
  const servers = (addr: string) => [
    { addr, weight: 1, max_fails: 1, fail_timeout_ms: 10_000, backup: false },
  ];
  const tcpGroup: UpstreamGroupConfig = {
    name: "tcp",
    strategy: "round_robin",
    servers: servers(tcp.addr),
    health_check: check({ type: "tcp" }),
  };
  const httpGroup: UpstreamGroupConfig = {
    name: "http",
    strategy: "round_robin",
    servers: servers(`127.0.0.1:${http.addr.port}`),
    health_check: check({ type: "http" }),
  };
  await using tg = new UpstreamGroup(tcpGroup);
  await using hg = new UpstreamGroup(httpGroup);
  await tg.checkNow();
  await hg.checkNow();
  assert.equal(tg.status()[0]!.healthy, true);
  assert.equal(hg.status()[0]!.healthy, true);
  tg.start();
  hg.start();
  await tcp.stop();
  ac.abort();
  await http.finished;
  const until = async (g: UpstreamGroup) => {
    for (let i = 0; i < 200 && g.status()[0]!.healthy; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until(tg);
  await until(hg);
  assert.equal(tg.status()[0]!.healthy, false);
  assert.match(tg.status()[0]!.last_error!, /refused|reset/i);
  assert.equal(hg.status()[0]!.healthy, false);
});
