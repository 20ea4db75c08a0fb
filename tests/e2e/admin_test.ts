/**
 * The control API of a running tunnel server: status rows for a live session,
 * metrics that count what the test just did, a failed reload that keeps the
 * running config, stop through the CLI.
 */
import assert from "node:assert/strict";
import {
  ALLOW_LOOPBACK_EGRESS,
  curl,
  runWmproxy,
  startOrigin,
  startTunnelClient,
  startTunnelServer,
  tempDir,
  writeConfig,
} from "./_harness.ts";

const TOKEN = "admin-test-token-1";

Deno.test("admin: status, metrics, failed reload and stop on a running tunnel server", async () => {
  await using dir = await tempDir();
  await using origin = startOrigin("O");
  const file = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir.path}/state"
  tokens: [{ name: laptop, token: "${TOKEN}" }]
admin:
  listen: "127.0.0.1:0"
  token: "admin-secret-1"
`,
  );
  const s = await startTunnelServer(["-c", file, ...ALLOW_LOOPBACK_EGRESS]);
  await using _s = s.proc;
  const admin = await s.proc.listeningAddr("admin");
  await using c = startTunnelClient(s, TOKEN, [
    "--name",
    "lap1",
  ]);
  const local = await c.listeningAddr("client");
  await c.waitForEvent("tunnel_connected");
  for (let i = 0; i < 3; i++) {
    assert.equal((await curl(["-x", `http://${local}`, `${origin.url}/${i}`])).stdout, `O /${i}`);
  }

  const denied = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    `http://${admin}/api/status`,
  ]);
  assert.equal(denied.stdout, "401");
  const auth = ["-H", "Authorization: Bearer admin-secret-1"];
  const status = JSON.parse((await curl([...auth, `http://${admin}/api/status`])).stdout);
  const session = status.tunnel_server.sessions[0];
  assert.equal(session.client, "lap1");
  assert.equal(session.token, "laptop");
  assert.ok(session.streams_total >= 3, `streams_total ${session.streams_total}`);
  assert.ok(session.bytes_out > 0);
  const text = JSON.stringify(status);
  assert.ok(!text.includes(TOKEN) && !text.includes("admin-secret-1"), "no secret in the status");

  const metrics = (await curl([...auth, `http://${admin}/metrics`])).stdout;
  const streams =
    /^wmproxy_tunnel_streams_total\{session="s1",client="lap1",token="laptop"\} (\d+)$/m.exec(
      metrics,
    );
  assert.ok(streams && Number(streams[1]) >= 3, metrics);
  assert.match(metrics, /^wmproxy_tunnel_sessions 1$/m);

  await Deno.writeTextFile(file, "server:\n  listen: nope\n");
  const reload = await runWmproxy(["reload", "--admin", admin, "--admin-token", "admin-secret-1"]);
  assert.equal(reload.code, 1);
  assert.match(reload.stderr, /HTTP 422[\s\S]*server\.listen/);
  assert.equal(
    (await curl(["-x", `http://${local}`, `${origin.url}/still`])).stdout,
    "O /still",
    "the running config is kept",
  );

  const stop = await runWmproxy(["stop", "--admin", admin, "--admin-token", "admin-secret-1"]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal((await s.proc.exited()).code, 0);
});

Deno.test("admin: answers only its operator: foreign Host 421, cross-site POST 403, form POST 415, same-origin JSON POST works", async () => {
  await using dir = await tempDir();
  const file = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir.path}/state"
  tokens: [{ name: laptop, token: "${TOKEN}" }]
admin:
  listen: "127.0.0.1:0"
`,
  );
  const s = await startTunnelServer(["-c", file]);
  await using _s = s.proc;
  const admin = await s.proc.listeningAddr("admin");
  const port = admin.slice(admin.lastIndexOf(":") + 1);
  const code = async (args: string[]) =>
    (await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", ...args])).stdout;
  const running = async () => {
    assert.equal(await code([`http://${admin}/api/status`]), "200", "still serving");
    assert.equal(s.proc.events.filter((e) => e.event === "stopping").length, 0, "not stopping");
  };

  assert.equal(await code(["-H", "Host: evil.example", `http://${admin}/api/status`]), "421");
  assert.equal(
    await code([
      "--resolve",
      `rebind.evil.example:${port}:127.0.0.1`,
      `http://rebind.evil.example:${port}/api/status`,
    ]),
    "421",
    "DNS rebinding: a name that resolves to the API",
  );
  assert.equal(await code([`http://localhost:${port}/api/status`]), "200");
  const stop = `http://${admin}/api/stop`;
  assert.equal(
    await code(["-X", "POST", "-H", "Origin: http://evil.example", "-d", "x=1", stop]),
    "403",
    "cross-site form POST",
  );
  assert.equal(
    await code([
      "-X",
      "POST",
      "-H",
      "Origin: http://evil.example",
      "-H",
      "Content-Type: application/json",
      "-d",
      "{}",
      stop,
    ]),
    "403",
    "cross-site JSON POST",
  );
  assert.equal(
    await code([
      "-X",
      "POST",
      "-H",
      "Sec-Fetch-Site: cross-site",
      "-H",
      "Content-Type: application/json",
      "-d",
      "{}",
      stop,
    ]),
    "403",
  );
  await running();
  assert.equal(await code(["-X", "POST", "-d", "x=1", stop]), "415", "form POST");
  assert.equal(
    await code(["-X", "POST", "-H", "Content-Type: text/plain", "-d", "{}", stop]),
    "415",
  );
  await running();
  assert.equal(
    await code([
      "-X",
      "POST",
      "-H",
      `Origin: http://${admin}`,
      "-H",
      "Content-Type: application/json",
      "-d",
      "{}",
      `http://${admin}/api/reload`,
    ]),
    "200",
    "same-origin JSON reload",
  );
  await s.proc.waitForEvent("reload", { result: "applied" });
  assert.equal(
    await code(["-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", stop]),
    "200",
  );
  assert.equal((await s.proc.exited()).code, 0);
});
