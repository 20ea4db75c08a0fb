/**
 * The egress policy through real processes: a tunnel client's traffic may not
 * reach the server host's loopback, link-local addresses or the server's own
 * control API unless configured; tokens differ; the forward proxy applies
 * deny rules. Every refusal is checked three ways: the client's answer (HTTP
 * 403, SOCKS5 reply 0x02), the `egress_denied` event, and a target listener
 * that counts the connections it accepted (none).
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

/** A loopback HTTP server that counts the connections it accepted. */
function startRecorder(): AsyncDisposable & { port: number; accepts: () => number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepts = 0;
  const response = new TextEncoder().encode(
    "HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nrecorded",
  );
  const loop = (async () => {
    for await (const c of listener) {
      accepts++;
      (async () => {
        try {
          const buf = new Uint8Array(16 * 1024);
          let head = "";
          while (!head.includes("\r\n\r\n")) {
            const n = await c.read(buf);
            if (n === null) return;
            head += new TextDecoder().decode(buf.subarray(0, n));
          }
          for (let off = 0; off < response.length;) off += await c.write(response.subarray(off));
        } catch {
          // the client went away
        } finally {
          c.close();
        }
      })();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    accepts: () => accepts,
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop;
    },
  };
}

/** SOCKS5 CONNECT (no auth) through `proxy` to `host:port`; resolves to the reply code. */
async function socks5Reply(proxy: string, host: string, port: number): Promise<number> {
  const [hostname, p] = [
    proxy.slice(0, proxy.lastIndexOf(":")),
    proxy.slice(proxy.lastIndexOf(":") + 1),
  ];
  using conn = await Deno.connect({ hostname, port: Number(p) });
  const readExactly = async (n: number): Promise<Uint8Array> => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n;) {
      const got = await conn.read(out.subarray(off));
      if (got === null) throw new Error(`Cannot read the SOCKS5 reply: closed after ${off} bytes`);
      off += got;
    }
    return out;
  };
  await conn.write(new Uint8Array([5, 1, 0]));
  assert.deepEqual([...await readExactly(2)], [5, 0], "no-auth method chosen");
  const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(host);
  const name = new TextEncoder().encode(host);
  const addr = v4 ? [1, ...host.split(".").map(Number)] : [3, name.length, ...name];
  await conn.write(new Uint8Array([5, 1, 0, ...addr, port >> 8, port & 0xff]));
  const reply = await readExactly(4);
  return reply[1]!;
}

function denials(proc: WmproxyProcess, target: string) {
  return proc.events.filter((e) => e.event === "egress_denied" && e.target === target);
}

async function httpStatus(proxy: string, url: string, extra: string[] = []): Promise<string> {
  const r = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-x",
    `http://${proxy}`,
    ...extra,
    url,
  ]);
  return r.stdout;
}

Deno.test("egress: by default the tunnel server refuses loopback, link-local, its own control API and names resolving to loopback", async () => {
  await using dir = await tempDir();
  await using target = startRecorder();
  const s = await startTunnelServer([
    "--mode",
    "server",
    "--listen",
    "127.0.0.1:0",
    "--token",
    "egress-token-1",
    "--state-dir",
    `${dir.path}/state`,
    "--admin",
    "127.0.0.1:0",
  ]);
  await using _s = s.proc;
  const admin = await s.proc.listeningAddr("admin");
  await using c = startTunnelClient(s, "egress-token-1");
  const local = await c.listeningAddr("client");
  await c.waitForEvent("tunnel_connected");
  const t = `127.0.0.1:${target.port}`;

  assert.equal(await httpStatus(local, `http://${t}/`), "403", "HTTP forward to loopback");
  const e = await s.proc.waitForEvent("egress_denied", { target: t });
  assert.equal(e.rule, "protected: loopback 127.0.0.0/8");
  assert.equal(e.token, "default");
  assert.equal(e.component, "tunnel");
  const connect = await curl([
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_connect}",
    "-p",
    "-x",
    `http://${local}`,
    `https://${t}/`,
  ]);
  assert.equal(connect.stdout, "403", "CONNECT to loopback");
  assert.equal(await socks5Reply(local, "127.0.0.1", target.port), 2, "SOCKS5 to loopback");
  // Names the server's resolver turns into loopback or unspecified addresses.
  for (const name of ["localhost", "2130706433", "0x7f.0.0.1", "0"]) {
    assert.equal(await socks5Reply(local, name, target.port), 2, `SOCKS5 to ${name}`);
    const e = await s.proc.waitForEvent("egress_denied", { target: `${name}:${target.port}` });
    assert.match(String(e.address), /^(127\.0\.0\.1|::1|0\.0\.0\.0)$/, name);
  }
  const named = `localhost:${target.port}`;
  assert.equal(await httpStatus(local, `http://${named}/`), "403", "a name resolving to loopback");
  const byName = await s.proc.waitForEvent("egress_denied", { target: named });
  assert.match(String(byName.address), /^(127\.0\.0\.1|::1)$/);
  assert.ok(denials(s.proc, t).length >= 3, "HTTP, CONNECT and SOCKS5 each logged");

  assert.equal(await httpStatus(local, "http://169.254.169.254/latest/meta-data/"), "403");
  const meta = await s.proc.waitForEvent("egress_denied", { target: "169.254.169.254:80" });
  assert.equal(meta.rule, "protected: link-local 169.254.0.0/16");

  const status = await curl(["-sS", "-x", `http://${local}`, `http://${admin}/api/status`]);
  assert.match(status.stdout, /not allowed by the egress policy/);
  const reload = await httpStatus(local, `http://${admin}/api/reload`, [
    "-X",
    "POST",
    "-H",
    "content-type: application/json",
    "-d",
    "{}",
  ]);
  assert.equal(reload, "403", "POST /api/reload through the tunnel");
  const own = await s.proc.waitForEvent("egress_denied", { target: admin });
  assert.equal(own.rule, "protected: own listener");
  assert.equal(s.proc.events.filter((e) => e.event === "reload").length, 0, "no reload happened");

  assert.equal(target.accepts(), 0, "no connection reached the target");
});

Deno.test("egress: --allow-egress lifts the loopback protection, not the protection of the server's own ports", async () => {
  await using dir = await tempDir();
  await using target = startRecorder();
  const s = await startTunnelServer([
    "--mode",
    "server",
    "--listen",
    "127.0.0.1:0",
    "--token",
    "egress-token-2",
    "--state-dir",
    `${dir.path}/state`,
    "--admin",
    "127.0.0.1:0",
    "--allow-egress",
    "127.0.0.0/8",
  ]);
  await using _s = s.proc;
  const admin = await s.proc.listeningAddr("admin");
  await using c = startTunnelClient(s, "egress-token-2");
  const local = await c.listeningAddr("client");
  await c.waitForEvent("tunnel_connected");
  const t = `127.0.0.1:${target.port}`;
  const ok = await curl(["-x", `http://${local}`, `http://${t}/`]);
  assert.equal(ok.stdout, "recorded", ok.stderr);
  assert.equal(await socks5Reply(local, "127.0.0.1", target.port), 0, "SOCKS5 succeeded");
  assert.equal(target.accepts(), 2);
  assert.equal(await httpStatus(local, `http://${admin}/api/status`), "403");
  const own = await s.proc.waitForEvent("egress_denied", { target: admin });
  assert.equal(own.rule, "protected: own listener");
  assert.equal(await httpStatus(local, `http://${s.addr}/`), "403", "the tunnel port itself");
  assert.equal(await httpStatus(local, `http://localhost:${target.port}/`), "200", "by name");
  assert.equal(target.accepts(), 3);
});

Deno.test("egress: per-token rules: one token reaches localhost, the other does not", async () => {
  await using dir = await tempDir();
  await using target = startRecorder();
  const file = await writeConfig(
    dir.path,
    "s.yaml",
    `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir.path}/state"
  egress:
    deny: ["*:25"]
  tokens:
    - { name: ops, token: "egress-ops-token", egress: { allow: ["localhost:${target.port}"] } }
    - { name: guest, token: "egress-guest-token" }
`,
  );
  const s = await startTunnelServer(["-c", file]);
  await using _s = s.proc;
  await using ops = startTunnelClient(s, "egress-ops-token", ["--name", "ops1"]);
  await using guest = startTunnelClient(s, "egress-guest-token", ["--name", "guest1"]);
  const opsLocal = await ops.listeningAddr("client");
  const guestLocal = await guest.listeningAddr("client");
  await ops.waitForEvent("tunnel_connected");
  await guest.waitForEvent("tunnel_connected");
  const url = `http://localhost:${target.port}/`;

  assert.equal(await httpStatus(guestLocal, url), "403");
  const e = await s.proc.waitForEvent("egress_denied", { token: "guest" });
  assert.equal(e.client, "guest1");
  assert.equal(target.accepts(), 0);

  assert.equal((await curl(["-x", `http://${opsLocal}`, url])).stdout, "recorded");
  assert.equal(target.accepts(), 1);
  assert.equal(
    await httpStatus(opsLocal, `http://127.0.0.1:${target.port}/`),
    "403",
    "the token's rule names localhost, not the IP",
  );
  assert.equal(
    await socks5Reply(opsLocal, "127.0.0.1", 25),
    2,
    "the server's deny applies to both",
  );
  const smtp = await s.proc.waitForEvent("egress_denied", { target: "127.0.0.1:25", token: "ops" });
  assert.equal(smtp.rule, "*:25");
  assert.equal(target.accepts(), 1);
});

Deno.test("egress: the forward proxy allows everything by default and applies a deny rule", async () => {
  await using dir = await tempDir();
  await using denied = startRecorder();
  await using allowed = startRecorder();
  const file = await writeConfig(
    dir.path,
    "p.yaml",
    `
proxy:
  bind: "127.0.0.1:0"
  egress:
    deny: ["127.0.0.1:${denied.port}"]
`,
  );
  await using p = startWmproxy(["-c", file]);
  const proxy = await p.listeningAddr("proxy");
  const t = `127.0.0.1:${denied.port}`;
  assert.equal(await httpStatus(proxy, `http://${t}/`), "403");
  assert.equal(await socks5Reply(proxy, "127.0.0.1", denied.port), 2);
  const e = await p.waitForEvent("egress_denied", { target: t });
  assert.equal(e.rule, t);
  assert.equal(e.component, "proxy");
  assert.match(String(e.peer), /^127\.0\.0\.1:\d+$/);
  assert.equal(denied.accepts(), 0, "no connection reached the denied target");
  const ok = await curl(["-x", `http://${proxy}`, `http://127.0.0.1:${allowed.port}/`]);
  assert.equal(ok.stdout, "recorded", "loopback is not protected on the forward proxy");
  assert.equal(allowed.accepts(), 1);
});

Deno.test("egress: a reload changes server.egress in place for the live session", async () => {
  await using dir = await tempDir();
  await using target = startRecorder();
  const yaml = (egress: string) => `
server:
  listen: "127.0.0.1:0"
  state_dir: "${dir.path}/state"
  tokens: [{ name: t, token: "egress-reload-token" }]
${egress}`;
  const file = await writeConfig(dir.path, "s.yaml", yaml(""));
  const s = await startTunnelServer(["-c", file]);
  await using _s = s.proc;
  await using c = startTunnelClient(s, "egress-reload-token");
  const local = await c.listeningAddr("client");
  await c.waitForEvent("tunnel_connected");
  const url = `http://127.0.0.1:${target.port}/`;
  assert.equal(await httpStatus(local, url), "403");
  assert.equal(target.accepts(), 0);

  await Deno.writeTextFile(file, yaml(`  egress: { allow: ["127.0.0.1:${target.port}"] }\n`));
  s.proc.child.kill("SIGHUP");
  const applied = await s.proc.waitForEvent("reload_applied");
  assert.deepEqual(applied.updated, ["server"], "in place, no restart");
  assert.equal((await curl(["-x", `http://${local}`, url])).stdout, "recorded");
  assert.equal(target.accepts(), 1);
  assert.equal(c.events.filter((e) => e.event === "tunnel_connected").length, 1, "same session");
});
