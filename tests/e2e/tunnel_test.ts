/**
 * The first seed flow (DESIGN.md §2): an application uses the tunnel client's
 * local proxy port, and the tunnel server does the proxying. Real processes on
 * 127.0.0.1, driven by curl.
 */
import assert from "node:assert/strict";
import {
  ALLOW_LOOPBACK_EGRESS,
  curl,
  startBlackholeRelay,
  startOrigin,
  startTunnelClient,
  startTunnelServer,
  startWmproxy,
  tempDir,
  writeConfig,
} from "./_harness.ts";

const TOKEN = "e2e-token-0123456789";

Deno.test("tunnel: curl through client → server for HTTP, CONNECT and SOCKS5 with the server's proxy credentials", async () => {
  await using dir = await tempDir();
  await using origin = startOrigin("O");
  const server = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
    "--user",
    "pu",
    "--pass",
    "pp",
  ]);
  await using _s = server.proc;
  assert.ok(server.caFile, "the server logs the CA file to trust");
  await using client = startTunnelClient(server, TOKEN, [
    "--name",
    "e2e-laptop",
  ]);
  const local = await client.listeningAddr("client");
  await client.waitForEvent("tunnel_connected");
  const connected = await server.proc.waitForEvent("client_connected");
  assert.equal(connected.client, "e2e-laptop");
  assert.equal(connected.token, "default");

  const http = await curl([
    "-x",
    `http://${local}`,
    "--proxy-user",
    "pu:pp",
    `${origin.url}/h1`,
    `${origin.url}/h2`,
  ]);
  assert.equal(http.stdout, "O /h1O /h2", http.stderr);
  const connect = await curl([
    "-p",
    "-x",
    `http://${local}`,
    "--proxy-user",
    "pu:pp",
    `${origin.url}/c`,
  ]);
  assert.equal(connect.stdout, "O /c", connect.stderr);
  const socks = await curl([
    "--socks5-hostname",
    local,
    "--proxy-user",
    "pu:pp",
    `http://localhost:${origin.port}/s`,
  ]);
  assert.equal(socks.stdout, "O /s", socks.stderr);
  const denied = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-x",
    `http://${local}`,
    `${origin.url}/x`,
  ]);
  assert.equal(
    denied.stdout,
    "407",
    "the server's proxy credentials are enforced through the tunnel",
  );
  assert.ok(
    !server.proc.lines.join("\n").includes(TOKEN),
    "the token never appears in the server's logs",
  );
  assert.ok(!client.lines.join("\n").includes(TOKEN), "nor in the client's");
});

Deno.test("tunnel: a three-node relay chain A → B → C carries HTTP and CONNECT with TLS on each hop", async () => {
  await using dir = await tempDir();
  await using origin = startOrigin("O");
  const c = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    "token-of-b-123",
    "--state-dir",
    `${dir.path}/c`,
  ]);
  await using _c = c.proc;
  const bConfig = await writeConfig(
    dir.path,
    "b.yaml",
    `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir.path}/b"
  tokens: [{ name: node-a, token: "token-of-a-123" }]
client:
  server: "${c.addr}"
  token: "token-of-b-123"
  name: node-b
  bind: null
  tls: { ca: "${c.caFile}" }
`,
  );
  const b = await startTunnelServer(["-c", bConfig, ...ALLOW_LOOPBACK_EGRESS]);
  await using _b = b.proc;
  await b.proc.waitForEvent("tunnel_connected");
  await using a = startTunnelClient(b, "token-of-a-123", []);
  const local = await a.listeningAddr("client");
  await a.waitForEvent("tunnel_connected");

  const r = await curl(["-x", `http://${local}`, `${origin.url}/chain`]);
  assert.equal(r.stdout, "O /chain", r.stderr);
  const t = await curl(["-p", "-x", `http://${local}`, `${origin.url}/chain2`]);
  assert.equal(t.stdout, "O /chain2", t.stderr);
  await b.proc.waitForEvent("connection_closed", { component: "relay" });
  const atC = await c.proc.waitForEvent("connection_closed", { component: "proxy" });
  assert.equal(atC.target, `127.0.0.1:${origin.port}`, "C did the egress");
});

Deno.test("tunnel: a wrong token fails on both sides with a message that says what to fix", async () => {
  await using dir = await tempDir();
  const server = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
  ]);
  await using _s = server.proc;
  await using client = startTunnelClient(server, "not-the-token", []);
  const failed = await client.waitForEvent("tunnel_connect_failed");
  assert.match(String(failed.error), /refused the token: .*not valid.*check client\.token/);
  const refused = await server.proc.waitForEvent("auth_failed");
  assert.match(String(refused.error), /AUTH_FAILED/);
  assert.ok(refused.peer);
});

Deno.test("tunnel: a client that trusts another CA fails with advice, and the server logs the handshake failure", async () => {
  await using dir = await tempDir();
  const other = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../main.ts", import.meta.url).pathname,
      "gen-cert",
      "--out",
      `${dir.path}/other`,
    ],
  }).output();
  assert.equal(other.code, 0);
  const server = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    `${dir.path}/srv`,
  ]);
  await using _s = server.proc;
  await using client = startWmproxy([
    "--mode",
    "client",
    "--server",
    server.addr,
    "--token",
    TOKEN,
    "--ca",
    `${dir.path}/other/ca.pem`,
    "--bind",
    "127.0.0.1:0",
  ]);
  const failed = await client.waitForEvent("tunnel_connect_failed");
  assert.match(
    String(failed.error),
    /Cannot verify the server's certificate .*is not the CA that signed/,
  );
  const seen = await server.proc.waitForEvent("tunnel_handshake_failed");
  assert.ok(seen.peer);
});

Deno.test("tunnel: a plain client against a TLS server fails on both sides with what to fix", async () => {
  await using dir = await tempDir();
  const server = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
  ]);
  await using _s = server.proc;
  await using client = startWmproxy([
    "--mode",
    "client",
    "--server",
    server.addr,
    "--token",
    TOKEN,
    "--no-tls",
    "--bind",
    "127.0.0.1:0",
  ]);
  const failed = await client.waitForEvent("tunnel_connect_failed");
  assert.match(String(failed.error), /TLS/);
  const seen = await server.proc.waitForEvent("tunnel_handshake_failed");
  assert.match(String(seen.error), /TLS off/);
});

Deno.test("tunnel: pinned certificate and insecure mode connect; a wrong pin is refused", async () => {
  await using dir = await tempDir();
  await using origin = startOrigin("O");
  const server = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
  ]);
  await using _s = server.proc;
  await using pinned = startWmproxy([
    "--mode",
    "client",
    "--server",
    server.addr,
    "--token",
    TOKEN,
    "--pin",
    server.pin!,
    "--bind",
    "127.0.0.1:0",
  ]);
  const local = await pinned.listeningAddr("client");
  await pinned.waitForEvent("tunnel_connected");
  assert.equal((await curl(["-x", `http://${local}`, `${origin.url}/pin`])).stdout, "O /pin");

  await using insecure = startWmproxy([
    "--mode",
    "client",
    "--server",
    server.addr,
    "--token",
    TOKEN,
    "--insecure",
    "--bind",
    "127.0.0.1:0",
  ]);
  await insecure.waitForEvent("tls_insecure");
  await insecure.waitForEvent("tunnel_connected");

  await using wrong = startWmproxy([
    "--mode",
    "client",
    "--server",
    server.addr,
    "--token",
    TOKEN,
    "--pin",
    "00".repeat(32),
    "--bind",
    "127.0.0.1:0",
  ]);
  const failed = await wrong.waitForEvent("tunnel_connect_failed");
  assert.match(String(failed.error), /does not match client\.tls\.pin_sha256/);
});

Deno.test("tunnel: after the server is killed (SIGKILL) and restarted, the client reconnects by itself and traffic flows", async () => {
  await using dir = await tempDir();
  await using origin = startOrigin("O");
  const first = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
  ]);
  await using client = startTunnelClient(first, TOKEN, []);
  const local = await client.listeningAddr("client");
  await client.waitForEvent("tunnel_connected");
  assert.equal((await curl(["-x", `http://${local}`, `${origin.url}/before`])).stdout, "O /before");

  await first.proc.stop("SIGKILL");
  await client.waitForEvent("tunnel_disconnected");
  const again = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    first.addr,
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
  ]);
  await using _again = again.proc;
  assert.equal(again.caFile, first.caFile, "the generated CA is reused");
  // Recovery time is measured by `deno task soak` (storm phase), not asserted here.
  await client.waitForNth("tunnel_connected", 2);
  const after = await curl(["-x", `http://${local}`, `${origin.url}/after`]);
  assert.equal(after.stdout, "O /after", after.stderr);
});

Deno.test("tunnel: a black-holed link ends the session by heartbeat timeout on both sides, and its streams end", async () => {
  await using dir = await tempDir();
  const serverConfig = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir.path}"
  tokens: [{ name: t, token: "${TOKEN}" }]
  heartbeat_interval: 200ms
  heartbeat_timeout: 1s
`,
  );
  const server = await startTunnelServer(["-c", serverConfig, ...ALLOW_LOOPBACK_EGRESS]);
  await using _s = server.proc;
  await using link = startBlackholeRelay(server.addr);
  const clientConfig = await writeConfig(
    dir.path,
    "c.yaml",
    `
client:
  server: "${link.addr}"
  token: "${TOKEN}"
  bind: "127.0.0.1:0"
  tls: { ca: "${server.caFile}", server_name: "127.0.0.1" }
  heartbeat_interval: 200ms
  heartbeat_timeout: 1s
  reconnect: { initial_delay: 5s, max_delay: 10s }
`,
  );
  await using client = startWmproxy(["-c", clientConfig]);
  const local = await client.listeningAddr("client");
  await client.waitForEvent("tunnel_connected");
  // A stream that stays open: CONNECT to a TCP service that never answers.
  using silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held = curl([
    "--max-time",
    "15",
    "-p",
    "-x",
    `http://${local}`,
    `http://127.0.0.1:${silent.addr.port}/`,
  ]);
  await server.proc.waitForEvent("client_connected");
  const accepted = await silent.accept();
  link.blackhole();
  // Both sides end the session for the heartbeat (the relay keeps the TCP
  // connections open, so nothing else could end it).
  const lost = await client.waitForEvent("tunnel_disconnected");
  const gone = await server.proc.waitForEvent("client_disconnected");
  assert.equal(lost.code, "HEARTBEAT_TIMEOUT");
  assert.equal(gone.code, "HEARTBEAT_TIMEOUT");
  const r = await held;
  assert.notEqual(r.code, 0, "the stream through the dead link ended with an error");
  assert.notEqual(r.code, 28, "and did not hang until curl's own timeout (exit 28)");
  accepted.close();
});

Deno.test("tunnel: two clients with different tokens use one server at the same time", async () => {
  await using dir = await tempDir();
  await using origin = startOrigin("O");
  const config = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir.path}"
  tokens:
    - { name: alpha, token: "alpha-token-123" }
    - { name: beta, token: "beta-token-4567" }
`,
  );
  const server = await startTunnelServer(["-c", config, ...ALLOW_LOOPBACK_EGRESS]);
  await using _s = server.proc;
  const clients = ["alpha-token-123", "beta-token-4567"].map((token) =>
    startTunnelClient(server, token, [])
  );
  await using _a = clients[0]!;
  await using _b = clients[1]!;
  const locals = await Promise.all(clients.map((c) => c.listeningAddr("client")));
  await Promise.all(clients.map((c) => c.waitForEvent("tunnel_connected")));
  const bodies = await Promise.all(
    locals.map((l, i) => curl(["-x", `http://${l}`, `${origin.url}/${i}`])),
  );
  assert.deepEqual(bodies.map((b) => b.stdout), ["O /0", "O /1"]);
  await server.proc.waitForEvent("client_connected", { token: "alpha" });
  await server.proc.waitForEvent("client_connected", { token: "beta" });
});

Deno.test("tunnel: SIGTERM stops server and client gracefully with exit 0", async () => {
  await using dir = await tempDir();
  const server = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
  ]);
  await using client = startTunnelClient(server, TOKEN, []);
  await client.waitForEvent("tunnel_connected");
  assert.equal((await server.proc.stop("SIGTERM")).code, 0, server.proc.lines.join("\n"));
  const lost = await client.waitForEvent("tunnel_disconnected");
  assert.equal(lost.code, "NORMAL", `the server went away cleanly: ${JSON.stringify(lost)}`);
  assert.equal((await client.stop("SIGTERM")).code, 0, client.lines.join("\n"));
});

Deno.test("tunnel: --names goes into the generated certificate, and a later mismatch is warned about", async () => {
  await using dir = await tempDir();
  const first = await startTunnelServer([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
    "--names",
    "tunnel.test,127.0.0.1",
  ]);
  const identity = await first.proc.waitForEvent("tls_identity");
  assert.deepEqual(identity.names, ["tunnel.test", "127.0.0.1"]);
  await first.proc.stop("SIGTERM");
  await using again = startWmproxy([
    "--mode",
    "server",
    ...ALLOW_LOOPBACK_EGRESS,
    "--listen",
    "127.0.0.1:0",
    "--token",
    TOKEN,
    "--state-dir",
    dir.path,
    "--names",
    "other.test",
  ]);
  const warning = await again.waitForEvent("config_warning");
  assert.match(String(warning.warning), /does not cover other\.test[\s\S]*gen-cert --force/);
});
