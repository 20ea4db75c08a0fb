/**
 * Reload keeps connections: long transfers through the forward proxy, the
 * http section (a WebSocket) and the stream section stay open across a
 * reload that changes the proxy's users in place and starts a new section;
 * a client's mappings and a server's tokens change on live sessions.
 */
import assert from "node:assert/strict";
import {
  curl,
  startTunnelClient,
  startTunnelServer,
  startWmproxy,
  tempDir,
  type WmproxyProcess,
  writeConfig,
} from "./_harness.ts";
import { waitFor } from "../_wait.ts";

/** An origin whose /slow answer trickles 64 KiB chunks for ~`ms`, and which echoes WebSocket messages. */
function slowOrigin(ms: number) {
  /** Per /slow response: how many of its chunks went out. */
  const progress: number[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (req.headers.get("upgrade") === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo:${e.data}`);
      return response;
    }
    const chunks = 20;
    let i = 0;
    const slot = progress.push(0) - 1;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        progress[slot] = i;
        if (i++ === chunks) return c.close();
        await new Promise((r) => setTimeout(r, ms / chunks));
        c.enqueue(new Uint8Array(65536).fill(97));
      },
    });
    return new Response(body, { headers: { "content-length": String(chunks * 65536) } });
  });
  return {
    port: server.addr.port,
    /** Whether `n` responses are under way: some chunks sent, not all. */
    midway: (n: number) => progress.filter((p) => p > 0 && p < 20).length >= n,
    close: () => server.shutdown(),
  };
}

/** A TCP service that sends `bytes` slowly after any input. */
function slowTcp(ms: number, bytes: number) {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let sentTotal = 0;
  const loop = (async () => {
    for await (const c of l) {
      (async () => {
        await c.read(new Uint8Array(16));
        for (let sent = 0; sent < bytes; sent += 65536) {
          await new Promise((r) => setTimeout(r, ms / (bytes / 65536)));
          await c.write(new Uint8Array(65536).fill(98));
          sentTotal += 65536;
        }
        c.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: l.addr.port,
    /** Whether a connection got some of its bytes and not all. */
    midway: () => sentTotal > 0 && sentTotal < bytes,
    close: async () => (l.close(), await loop),
  };
}

async function readAll(conn: Deno.Conn): Promise<number> {
  let total = 0;
  const buf = new Uint8Array(65536);
  for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) total += n;
  return total;
}

async function reload(p: WmproxyProcess): Promise<Record<string, unknown>> {
  const before = p.events.filter((e) => e.event === "reload_applied").length;
  p.child.kill("SIGHUP");
  return await p.waitForNth("reload_applied", before + 1, {}, 10_000);
}

Deno.test("reload: downloads through the proxy, a WebSocket through http and a TCP stream survive a reload", async () => {
  await using dir = await tempDir();
  const origin = slowOrigin(2500);
  const tcp = slowTcp(2500, 20 * 65536);
  const body = (users: string, extra = "", location = "") => `
proxy:
  bind: "127.0.0.1:0"
  users: [${users}]
http:
  servers:
    - listen: ["127.0.0.1:0"]
      locations:
        - { path: "/", proxy_pass: "http://127.0.0.1:${origin.port}", websocket: true }
${location}stream:
  servers:
    - { listen: "127.0.0.1:0", protocol: tcp, target: "127.0.0.1:${tcp.port}" }
${extra}`;
  const file = await writeConfig(dir.path, "all.yaml", body(`{ username: u, password: old-pass }`));
  await using p = startWmproxy(["-c", file]);
  const proxyAddr = await p.listeningAddr("proxy");
  const httpAddr = String((await p.waitForEvent("listening", { component: "http" })).addr);
  const streamAddr = String((await p.waitForEvent("listening", { component: "stream" })).addr);

  const download = curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{size_download}",
    "-x",
    `http://${proxyAddr}`,
    "--proxy-user",
    "u:old-pass",
    `http://127.0.0.1:${origin.port}/slow`,
  ]);
  const ws = new WebSocket(`ws://${httpAddr}/ws`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("websocket did not open"));
  });
  // A long download through the http listener (the reverse proxy) as well.
  const httpDownload = curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{size_download}",
    `http://${httpAddr}/slow`,
  ]);
  const tcpConn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(streamAddr.split(":").pop()),
  });
  await tcpConn.write(new Uint8Array([1]));
  const tcpBytes = readAll(tcpConn);
  await waitFor(
    () => origin.midway(2) && tcp.midway(),
    "both downloads and the TCP stream to be mid-transfer",
  );

  await Deno.writeTextFile(
    file,
    body(
      `{ username: u, password: new-pass }`,
      `server: { listen: "127.0.0.1:0", tls: false, tokens: [{ name: t, token: "reload-token-1" }] }\n`,
      `        - { path: "= /new", static_response: { status: 200, body: "new location" } }\n`,
    ),
  );
  const report = await reload(p);
  // http changed its locations: applied in place, its listener kept.
  assert.deepEqual((report.updated as string[]).sort(), ["http", "proxy"]);
  assert.deepEqual(report.kept, ["stream"]);
  assert.deepEqual(report.started, ["server"]);
  const httpReport = report.http as { kept: string[]; restarted: string[] };
  assert.deepEqual(httpReport.kept, ["127.0.0.1:0"]);
  assert.deepEqual(httpReport.restarted, []);
  assert.equal((await curl(["-s", `http://${httpAddr}/new`])).stdout, "new location");
  await p.waitForEvent("listening", { component: "tunnel" });

  const reply = new Promise<string>((r) => ws.onmessage = (e) => r(String(e.data)));
  ws.send("after reload");
  assert.equal(await reply, "echo:after reload", "the WebSocket lived through the reload");
  assert.equal(
    (await download).stdout,
    String(20 * 65536),
    "the download through the proxy completed",
  );
  assert.equal(await tcpBytes, 20 * 65536, "the TCP stream completed");
  assert.equal(
    (await httpDownload).stdout,
    String(20 * 65536),
    "the download through the http listener completed",
  );
  tcpConn.close();
  const closed = new Promise((r) => ws.onclose = r);
  ws.close();
  await closed;

  const oldCreds = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-x",
    `http://${proxyAddr}`,
    "--proxy-user",
    "u:old-pass",
    `http://127.0.0.1:${origin.port}/x`,
  ]);
  assert.equal(oldCreds.stdout, "407", "the new users apply to new connections");
  await origin.close();
  await tcp.close();
});

Deno.test("reload: a client's mappings and a server's tokens change on live sessions", async () => {
  await using dir = await tempDir();
  const lan = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (r) => new Response(`lan ${new URL(r.url).pathname}`),
  );
  const serverFile = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  http_bind: "127.0.0.1:0"
  state_dir: "${dir.path}/state"
  tokens: [{ name: one, token: "token-one-123" }]
`,
  );
  const s = await startTunnelServer(["-c", serverFile]);
  await using _s = s.proc;
  const http = await s.proc.listeningAddr("http");
  const clientYaml = (maps: string) => `
client:
  server: "${s.addr}"
  token: "token-one-123"
  bind: null
  tls: { ca: "${s.caFile}" }
  mappings: [${maps}]
`;
  const clientFile = await writeConfig(
    dir.path,
    "c.yaml",
    clientYaml(
      `{ name: a, type: http, local_addr: "127.0.0.1:${lan.addr.port}", domains: [a.test] }`,
    ),
  );
  await using c = startWmproxy(["-c", clientFile]);
  await c.waitForEvent("mapping_ready", { mapping: "a" });

  await Deno.writeTextFile(
    clientFile,
    clientYaml(
      `{ name: b, type: http, local_addr: "127.0.0.1:${lan.addr.port}", domains: [b.test] }`,
    ),
  );
  const report = await reload(c);
  assert.deepEqual(report.updated, ["client"]);
  await c.waitForEvent("mapping_ready", { mapping: "b" });
  await c.waitForEvent("mapping_removed", { mapping: "a" });
  const get = async (host: string) =>
    (await curl(["-s", "-w", "|%{http_code}", "-H", `Host: ${host}`, `http://${http}/p`])).stdout;
  assert.equal(await get("b.test"), "lan /p|200");
  assert.match(await get("a.test"), /\|502$/, "a is gone (offline)");
  assert.equal(
    c.events.filter((e) => e.event === "tunnel_disconnected").length,
    0,
    "the session was kept",
  );

  await Deno.writeTextFile(
    serverFile,
    (await Deno.readTextFile(serverFile)).replace(
      `tokens: [{ name: one, token: "token-one-123" }]`,
      `tokens: [{ name: one, token: "token-one-123" }, { name: two, token: "token-two-456" }]`,
    ),
  );
  const serverReport = await reload(s.proc);
  assert.deepEqual(serverReport.updated, ["server"]);
  await using c2 = startTunnelClient(s, "token-two-456", []);
  await c2.waitForEvent("tunnel_connected");
  assert.equal(
    c.events.filter((e) => e.event === "tunnel_disconnected").length,
    0,
    "client one kept its session",
  );

  await lan.shutdown();
});
