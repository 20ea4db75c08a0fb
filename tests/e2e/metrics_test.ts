/**
 * Latency histograms in GET /metrics of a running process: requests through
 * the forward proxy (HTTP, CONNECT, SOCKS5) and through a stream server show
 * up as `_count` and cumulative `_bucket` lines; a tunnel server observes its
 * sessions' heartbeat round trips.
 */
import assert from "node:assert/strict";
import {
  curl,
  startEchoServer,
  startOrigin,
  startTunnelClient,
  startTunnelServer,
  startWmproxy,
  tempDir,
  writeConfig,
} from "./_harness.ts";

function sample(metrics: string, line: string): number {
  const at = metrics.split("\n").find((l) => l.startsWith(`${line} `));
  assert.ok(at, `no line "${line}" in:\n${metrics}`);
  return Number(at.slice(line.length + 1));
}

Deno.test("metrics: proxy and stream latency histograms count what the test did", async () => {
  await using dir = await tempDir();
  await using origin = startOrigin("O");
  const echo = startEchoServer();
  const file = await writeConfig(
    dir.path,
    "m.yaml",
    `
proxy:
  bind: "127.0.0.1:0"
stream:
  servers:
    - { listen: "127.0.0.1:0", protocol: tcp, target: "127.0.0.1:${echo.port}" }
admin:
  listen: "127.0.0.1:0"
`,
  );
  await using p = startWmproxy(["-c", file]);
  const proxy = await p.listeningAddr("proxy");
  const stream = await p.listeningAddr("stream");
  const admin = await p.listeningAddr("admin");

  const metrics = async () => (await curl([`http://${admin}/metrics`])).stdout;
  const before = await metrics();
  assert.match(before, /^# TYPE wmproxy_proxy_request_duration_seconds histogram$/m);
  assert.equal(sample(before, "wmproxy_internal_errors_total"), 0);
  assert.equal(
    before.match(/^# TYPE wmproxy_proxy_connect_duration_seconds histogram$/gm)?.length,
    1,
    "one TYPE line for both kinds",
  );
  assert.equal(sample(before, 'wmproxy_proxy_request_duration_seconds_count{kind="http"}'), 0);

  for (let i = 0; i < 3; i++) {
    assert.equal((await curl(["-x", `http://${proxy}`, `${origin.url}/h${i}`])).stdout, `O /h${i}`);
  }
  const tunnel = await curl(["-p", "-x", `http://${proxy}`, `${origin.url}/c`]);
  assert.equal(tunnel.stdout, "O /c", tunnel.stderr);
  const socks = await curl(["--socks5", proxy, `${origin.url}/s`]);
  assert.equal(socks.stdout, "O /s", socks.stderr);
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(stream.split(":").pop()),
  });
  await conn.write(new Uint8Array([7]));
  assert.equal(await conn.read(new Uint8Array(1)), 1);
  conn.close();

  const after = await metrics();
  const http = 'wmproxy_proxy_request_duration_seconds_count{kind="http"}';
  assert.equal(sample(after, http), 3);
  assert.equal(
    sample(after, 'wmproxy_proxy_request_duration_seconds_bucket{kind="http",le="+Inf"}'),
    3,
  );
  assert.equal(
    sample(after, 'wmproxy_proxy_request_duration_seconds_bucket{kind="http",le="10"}'),
    3,
    "cumulative: every request is under 10 s",
  );
  assert.ok(sample(after, 'wmproxy_proxy_request_duration_seconds_sum{kind="http"}') > 0);
  assert.equal(sample(after, 'wmproxy_proxy_connect_duration_seconds_count{kind="connect"}'), 1);
  assert.equal(sample(after, 'wmproxy_proxy_connect_duration_seconds_count{kind="socks5"}'), 1);
  assert.equal(
    sample(after, `wmproxy_stream_connect_duration_seconds_count{listener="${stream}"}`),
    1,
  );
  const status = JSON.parse((await curl([`http://${admin}/api/status`])).stdout);
  const h = status.histograms.find((x: { labels: { kind?: string } }) => x.labels.kind === "http");
  assert.equal(h.hist.count, 3, "the status JSON carries the same snapshot");
  await echo.close();
});

Deno.test("metrics: a tunnel server observes the heartbeat round trips of its sessions", async () => {
  await using dir = await tempDir();
  const token = "metrics-token-1";
  const file = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir.path}/state"
  tokens: [{ name: t, token: "${token}" }]
  heartbeat_interval: 200ms
  heartbeat_timeout: 2s
admin:
  listen: "127.0.0.1:0"
`,
  );
  const s = await startTunnelServer(["-c", file]);
  await using _s = s.proc;
  const admin = await s.proc.listeningAddr("admin");
  await using c = startTunnelClient(s, token, []);
  await c.waitForEvent("tunnel_connected");
  await s.proc.waitForEvent("client_connected");
  // Heartbeats go every 200 ms and are sampled every second: poll the metric.
  const line = "wmproxy_tunnel_heartbeat_rtt_seconds_count";
  let count = 0;
  for (const deadline = Date.now() + 10_000; count < 2 && Date.now() < deadline;) {
    const text = (await curl([`http://${admin}/metrics`])).stdout;
    count = Number(text.split("\n").find((l) => l.startsWith(`${line} `))?.split(" ")[1] ?? 0);
    if (count < 2) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(count >= 2, `heartbeat round trips observed: ${count}`);
});
