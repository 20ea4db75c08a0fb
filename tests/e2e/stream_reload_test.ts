/**
 * Reload inside the stream section, per server: an unchanged server keeps
 * its open connection, a server whose listen port changed moves alone, and
 * a new server starts; the reload answer says which did what.
 */
import assert from "node:assert/strict";
import { curl, startEchoServer, startWmproxy, tempDir, writeConfig } from "./_harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function portOf(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(":") + 1));
}

/** Sends `text` on `conn` and reads the tagged echo. */
async function ask(conn: Deno.Conn, tag: string, text: string): Promise<string> {
  await conn.write(enc.encode(text));
  const want = `${tag}:${text}`.length;
  let got = "";
  const b = new Uint8Array(1024);
  while (got.length < want) {
    const n = await conn.read(b);
    if (n === null) break;
    got += dec.decode(b.subarray(0, n));
  }
  return got;
}

/** Connects, sends `text` and reads until the echo of `text` arrives. */
async function roundTrip(addr: string, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: portOf(addr) });
  try {
    await conn.write(enc.encode(text));
    let got = "";
    const b = new Uint8Array(1024);
    while (!got.endsWith(text)) {
      const n = await conn.read(b);
      if (n === null) break;
      got += dec.decode(b.subarray(0, n));
    }
    return got;
  } finally {
    conn.close();
  }
}

/** A port that was free a moment ago (the new listen address is written into a child's config). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

Deno.test("stream reload: A's open connection survives, B moves to a new port alone, C starts", async () => {
  await using dir = await tempDir();
  const a = startEchoServer("a");
  const b = startEchoServer("b");
  const c = startEchoServer("c");
  const yaml = (servers: string) => `
stream:
  servers:
${servers}
admin:
  listen: "127.0.0.1:0"
`;
  const serverA = `    - { listen: "127.0.0.1:0", protocol: tcp, target: "127.0.0.1:${a.port}" }`;
  const file = await writeConfig(
    dir.path,
    "l4.yaml",
    yaml(`${serverA}
    - { listen: "127.0.0.1:0", protocol: tcp, target: "127.0.0.1:${b.port}" }`),
  );
  await using p = startWmproxy(["-c", file]);
  // The admin API starts after every section, so both stream events are in by then.
  const admin = await p.listeningAddr("admin");
  const [addrA, oldB] = p.events
    .filter((e) => e.event === "listening" && e.component === "stream")
    .map((e) => String(e.addr));
  assert.ok(addrA && oldB);

  const held = await Deno.connect({ hostname: "127.0.0.1", port: portOf(addrA) });
  try {
    assert.equal(await ask(held, "a", "before"), "a:before");
    assert.equal(await roundTrip(oldB, "b1"), "b:b1");

    const newB = `127.0.0.1:${freePort()}`;
    await Deno.writeTextFile(
      file,
      yaml(`${serverA}
    - { listen: "${newB}", protocol: tcp, target: "127.0.0.1:${b.port}" }
    - { listen: "127.0.0.1:0", protocol: tcp, target: "127.0.0.1:${c.port}" }`),
    );
    const answer = await curl([
      "-X",
      "POST",
      "-H",
      "content-type: application/json",
      "-d",
      "{}",
      `http://${admin}/api/reload`,
    ]);
    const result = JSON.parse(answer.stdout);
    assert.equal(result.ok, true, answer.stdout);
    assert.deepEqual(result.report.updated, ["stream"]);
    assert.deepEqual(result.report.restarted, []);
    const detail = result.report.stream;
    assert.deepEqual(detail.kept, [`tcp ${addrA}`]);
    assert.deepEqual(detail.restarted, [`tcp ${newB}`]);
    assert.deepEqual(detail.stopped, []);
    assert.equal(detail.started.length, 1);
    const addrC = String(detail.started[0]).replace(/^tcp /, "");

    assert.equal(
      await ask(held, "a", "after"),
      "a:after",
      "A's connection lived through the reload",
    );
    assert.equal(await roundTrip(newB, "b2"), "b:b2", "B answers on its new port");
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port: portOf(oldB) }),
      Deno.errors.ConnectionRefused,
      "B's old port is closed",
    );
    assert.equal(await roundTrip(addrC, "c1"), "c:c1", "C works");
    assert.equal(await ask(held, "a", "end"), "a:end");
  } finally {
    held.close();
  }
  await Promise.all([a.close(), b.close(), c.close()]);
});

Deno.test("stream reload: a listener that cannot be bound is reported and the rest runs on", async () => {
  await using dir = await tempDir();
  const a = startEchoServer("a");
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serverA = `    - { listen: "127.0.0.1:0", protocol: tcp, target: "127.0.0.1:${a.port}" }`;
  const yaml = (servers: string) =>
    `stream:\n  servers:\n${servers}\nadmin:\n  listen: "127.0.0.1:0"\n`;
  const file = await writeConfig(dir.path, "l4.yaml", yaml(serverA));
  await using p = startWmproxy(["-c", file]);
  const admin = await p.listeningAddr("admin");
  const addrA = await p.listeningAddr("stream");

  await Deno.writeTextFile(
    file,
    yaml(`${serverA}
    - { listen: "127.0.0.1:${busy.addr.port}", protocol: tcp, target: "127.0.0.1:${a.port}" }`),
  );
  const answer = await curl([
    "-X",
    "POST",
    "-H",
    "content-type: application/json",
    "-d",
    "{}",
    `http://${admin}/api/reload`,
  ]);
  const result = JSON.parse(answer.stdout);
  assert.equal(result.ok, false, answer.stdout);
  assert.equal(result.errors.length, 1);
  assert.match(
    result.errors[0],
    /^stream: Cannot listen on "127\.0\.0\.1:\d+" \(stream\.servers\[1\], tcp\): /,
  );
  assert.deepEqual(result.report.stream.kept, [`tcp ${addrA}`]);
  const logged = await p.waitForEvent("reload_applied");
  assert.equal(logged.level, "error");
  assert.equal(await roundTrip(addrA, "still"), "a:still", "A keeps serving");
  await a.close();
});
