/**
 * The L4 section and the ws-proxy subcommand as real processes.
 */
import assert from "node:assert/strict";
import { startEchoServer, startWmproxy, tempDir, writeConfig } from "./_harness.ts";

async function roundTrip(port: number, text: string): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(new TextEncoder().encode(text));
    let got = "";
    const b = new Uint8Array(1024);
    while (!got.endsWith(text)) {
      const n = await c.read(b);
      if (n === null) break;
      got += new TextDecoder().decode(b.subarray(0, n));
    }
    return got;
  } finally {
    c.close();
  }
}

Deno.test("stream e2e: TCP forwarding balances over an upstream group and fails over when one stops", async () => {
  await using dir = await tempDir();
  const a = startEchoServer("a");
  const b = startEchoServer("b");
  const file = await writeConfig(
    dir.path,
    "l4.yaml",
    `
stream:
  upstreams:
    - { name: pool, strategy: round_robin, servers: ["127.0.0.1:${a.port}", "127.0.0.1:${b.port}"] }
  servers:
    - { listen: "127.0.0.1:0", protocol: tcp, upstream: pool }
`,
  );
  await using p = startWmproxy(["-c", file]);
  const addr = (await p.waitForEvent("listening", { component: "stream", protocol: "tcp" }))
    .addr as string;
  const port = Number(addr.split(":").pop());
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add((await roundTrip(port, `x${i}`)).split(":")[0]!);
  assert.deepEqual([...seen].sort(), ["a", "b"], "round robin reaches both");
  await a.close();
  for (let i = 0; i < 4; i++) {
    assert.equal(await roundTrip(port, `y${i}`), `b:y${i}`, "failover to b");
  }
  await b.close();
});

Deno.test("stream e2e: ws-proxy tcp2ws → ws2tcp carries bytes to a TCP service", async () => {
  const echo = startEchoServer("e");
  await using server = startWmproxy([
    "ws-proxy",
    "--from",
    "127.0.0.1:0",
    "--to",
    `127.0.0.1:${echo.port}`,
    "--mode",
    "WS2TCP",
  ]);
  const wsAddr = (await server.waitForEvent("listening", { component: "stream" })).addr as string;
  await using client = startWmproxy([
    "ws-proxy",
    "--from",
    "127.0.0.1:0",
    "--to",
    `ws://${wsAddr}/`,
    "--mode",
    "tcp2ws",
  ]);
  const tcpAddr = (await client.waitForEvent("listening", { component: "stream" })).addr as string;
  assert.equal(await roundTrip(Number(tcpAddr.split(":").pop()), "bridged"), "e:bridged");
  await echo.close();
});
