/**
 * Listener tests: the `http` section started in-process with
 * startHttpSection() on 127.0.0.1, driven by curl, openssl, fetch and
 * WebSocket clients.
 */
import assert from "node:assert/strict";
import { startHttpSection } from "@/reverse/mod.ts";
import { generateCertificates } from "@/tls/certificates.ts";
import { HOSTILE_PATHS, httpConfig, memoryLog, traversalFixture, WWW } from "./_helpers.ts";

async function run(cmd: string, args: string[], stdin?: string) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const curl = (args: string[]) => run("curl", ["-sS", "--max-time", "10", ...args]);

/** An origin on 127.0.0.1:0 answering `name path`. */
function origin(name: string, handler?: (req: Request) => Response | Promise<Response>) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    handler ?? ((req) => new Response(`${name} ${new URL(req.url).pathname}`)),
  );
  return {
    addr: `127.0.0.1:${server.addr.port}`,
    stopped: false,
    async stop() {
      if (this.stopped) return;
      this.stopped = true;
      await server.shutdown();
    },
    async [Symbol.asyncDispose]() {
      await this.stop();
    },
  };
}

Deno.test("startHttpSection() logs listening with the bound address and proxies through it", async () => {
  await using up = origin("up");
  const { log, events } = memoryLog();
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [
          { path: "/", proxy_pass: `http://${up.addr}` },
          { path: "/files/", file_server: { alias: WWW } },
        ],
      }],
    }),
    { log },
  );
  const addr = section.listeners[0]!.addr;
  const listening = events("listening");
  assert.equal(listening.length, 1);
  assert.equal(listening[0]!.component, "http");
  assert.equal(listening[0]!.addr, addr);
  assert.equal(listening[0]!.tls, false);
  const res = await curl([`http://${addr}/a/b`, `http://${addr}/c`]);
  assert.equal(res.stdout, "up /a/bup /c");
  const range = await curl(["-i", "-H", "Range: bytes=-7", `http://${addr}/files/range.txt`]);
  assert.match(range.stdout, /^HTTP\/1\.1 206/);
  assert.match(range.stdout, /content-range: bytes 30-36\/37/i);
  assert.ok(range.stdout.endsWith("uvwxyz\n"));
  const etag = /etag: (\S+)/i.exec(range.stdout)![1]!;
  const cond = await curl([
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-H",
    `If-None-Match: ${etag}`,
    `http://${addr}/files/range.txt`,
  ]);
  assert.equal(cond.stdout, "304");
  const gz = await curl(["--compressed", "-D", "-", `http://${addr}/files/big.txt`]);
  assert.match(gz.stdout, /content-encoding: gzip/i);
  assert.ok(gz.stdout.endsWith(await Deno.readTextFile(`${WWW}/big.txt`)));
});

Deno.test("startHttpSection(): failover when an upstream dies, passive and active health state", async () => {
  await using a = origin("A");
  await using b = origin("B");
  await using section = await startHttpSection(
    httpConfig({
      upstreams: [{
        name: "app",
        servers: [{ addr: a.addr, max_fails: 1, fail_timeout: "30s" }, b.addr],
        health_check: { type: "tcp", interval: "100ms", timeout: "100ms", fall: 1, rise: 1 },
      }],
      servers: [{ listen: ["127.0.0.1:0"], locations: [{ path: "/", proxy_pass: "http://app" }] }],
    }),
    { log: memoryLog().log },
  );
  const addr = section.listeners[0]!.addr;
  const client = Deno.createHttpClient({});
  try {
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) {
      bodies.push(await (await fetch(`http://${addr}/x`, { client })).text());
    }
    assert.deepEqual(new Set(bodies), new Set(["A /x", "B /x"]), "round robin uses both");
    await a.stop();
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`http://${addr}/y`, { client });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "B /y");
    }
    const group = section.upstreams.get("app")!;
    const deadline = Date.now() + 5000;
    while (group.status().find((s) => s.addr === a.addr)!.healthy && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const state = group.status().find((s) => s.addr === a.addr)!;
    assert.equal(state.healthy, false);
    assert.ok(state.last_error !== undefined);
    assert.equal(group.status().find((s) => s.addr === b.addr)!.healthy, true);
  } finally {
    client.close();
  }
});

Deno.test("startHttpSection(): all upstreams down gives 502, a silent upstream 504", async () => {
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) held.push(c);
  })().catch(() => {});
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = closed.addr.port;
  closed.close();
  try {
    await using section = await startHttpSection(
      httpConfig({
        servers: [{
          listen: ["127.0.0.1:0"],
          timeouts: { upstream_connect: "100ms", upstream_read: "200ms" },
          locations: [
            { path: "/dead", proxy_pass: `http://127.0.0.1:${deadPort}` },
            { path: "/silent", proxy_pass: `http://127.0.0.1:${silent.addr.port}` },
          ],
        }],
      }),
      { log: memoryLog().log },
    );
    const addr = section.listeners[0]!.addr;
    const dead = await curl(["-o", "/dev/null", "-w", "%{http_code}", `http://${addr}/dead`]);
    assert.equal(dead.stdout, "502");
    const t0 = Date.now();
    const slow = await curl(["-o", "/dev/null", "-w", "%{http_code}", `http://${addr}/silent`]);
    assert.equal(slow.stdout, "504");
    assert.ok(Date.now() - t0 < 3000);
  } finally {
    silent.close();
    await accepting;
    for (const c of held) c.close();
  }
});

Deno.test("startHttpSection(): TLS with two names and two certificates by SNI, HTTP/2 by ALPN", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-tls-" });
  try {
    const certs: Record<string, { cert: string; key: string; ca: string }> = {};
    for (const name of ["a.test", "b.test"]) {
      const g = await generateCertificates({ names: [name] });
      await Deno.writeTextFile(`${dir}/${name}.crt`, g.server.cert);
      await Deno.writeTextFile(`${dir}/${name}.key`, g.server.key);
      await Deno.writeTextFile(`${dir}/${name}.ca`, g.ca.cert);
      certs[name] = {
        cert: `${dir}/${name}.crt`,
        key: `${dir}/${name}.key`,
        ca: `${dir}/${name}.ca`,
      };
    }
    await using section = await startHttpSection(
      sniConfig(certs),
      { log: memoryLog().log },
    );
    const tls = section.listeners.filter((l) => l.tls);
    assert.equal(tls.length, 1);
    const port = tls[0]!.addr.split(":").pop()!;
    for (const name of ["a.test", "b.test"]) {
      const res = await curl([
        "--http2",
        "--cacert",
        certs[name]!.ca,
        "--resolve",
        `${name}:${port}:127.0.0.1`,
        "-w",
        " %{http_version}",
        `https://${name}:${port}/`,
      ]);
      assert.equal(res.stdout, `${name} https 127.0.0.1 2`, res.stderr);
      const other = name === "a.test" ? "b.test" : "a.test";
      const wrong = await curl([
        "--cacert",
        certs[other]!.ca,
        "--resolve",
        `${name}:${port}:127.0.0.1`,
        `https://${name}:${port}/`,
      ]);
      assert.notEqual(wrong.code, 0, "the other name's CA does not verify this certificate");
    }
    const http1 = await curl([
      "--http1.1",
      "--cacert",
      certs["a.test"]!.ca,
      "--resolve",
      `a.test:${port}:127.0.0.1`,
      "-w",
      " %{http_version}",
      `https://a.test:${port}/`,
    ]);
    assert.equal(http1.stdout, "a.test https 127.0.0.1 1.1");
    // No SNI: the default server's certificate.
    const s = await run(
      "openssl",
      ["s_client", "-connect", `127.0.0.1:${port}`, "-noservername"],
      "",
    );
    const subject = await run("openssl", ["x509", "-noout", "-subject"], s.stdout);
    assert.match(subject.stdout, /CN\s*=\s*b\.test/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function sniConfig(certs: Record<string, { cert: string; key: string }>) {
  return httpConfig({
    servers: ["a.test", "b.test"].map((name, i) => ({
      listen_tls: ["127.0.0.1:0"],
      server_names: [name],
      default_server: i === 1,
      tls: { cert: certs[name]!.cert, key: certs[name]!.key },
      locations: [{ path: "/", static_response: { body: `${name} $scheme $remote_addr` } }],
    })),
  });
}

Deno.test("startHttpSection(): one certificate is served directly with HTTP/2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-tls-" });
  try {
    const g = await generateCertificates({ names: ["localhost", "127.0.0.1"] });
    await Deno.writeTextFile(`${dir}/c.crt`, g.server.cert);
    await Deno.writeTextFile(`${dir}/c.key`, g.server.key);
    await Deno.writeTextFile(`${dir}/ca.crt`, g.ca.cert);
    await using up = origin("up");
    await using section = await startHttpSection(
      httpConfig({
        servers: [{
          listen_tls: ["127.0.0.1:0"],
          tls: { cert: `${dir}/c.crt`, key: `${dir}/c.key` },
          locations: [{ path: "/", proxy_pass: `http://${up.addr}` }],
        }],
      }),
      { log: memoryLog().log },
    );
    const addr = section.listeners[0]!.addr;
    const res = await curl([
      "--http2",
      "--cacert",
      `${dir}/ca.crt`,
      "-w",
      " %{http_version}",
      `https://${addr}/h2`,
    ]);
    assert.equal(res.stdout, "up /h2 2", res.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startHttpSection(): WebSocket proxying upgrades only after the upstream accepted", async () => {
  const order: string[] = [];
  await using up = origin("ws", async (req) => {
    if (new URL(req.url).pathname === "/refuse") return new Response("no", { status: 403 });
    await new Promise((r) => setTimeout(r, 200));
    const xff = req.headers.get("x-forwarded-for");
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: "chat" });
    order.push("upstream accepted");
    socket.onmessage = (e) => socket.send(`echo:${e.data} xff=${xff}`);
    return response;
  });
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [
          { path: "/", proxy_pass: `http://${up.addr}`, websocket: true },
          {
            path: "/denied/",
            proxy_pass: `http://${up.addr}`,
            websocket: true,
            deny: ["127.0.0.1"],
          },
        ],
      }],
    }),
    { log: memoryLog().log },
  );
  const addr = section.listeners[0]!.addr;
  const ws = new WebSocket(`ws://${addr}/chat`, ["chat"]);
  const reply = await new Promise<string>((resolve, reject) => {
    ws.onopen = () => {
      order.push("client open");
      ws.send("hi");
    };
    ws.onmessage = (e) => resolve(String(e.data));
    ws.onerror = () => reject(new Error("client websocket failed"));
  });
  assert.equal(reply, "echo:hi xff=127.0.0.1");
  assert.equal(ws.protocol, "chat");
  assert.deepEqual(order, ["upstream accepted", "client open"]);
  const closed = new Promise((r) => (ws.onclose = r));
  ws.close();
  await closed;

  for (const path of ["/refuse", "/denied/x"]) {
    const failed = new WebSocket(`ws://${addr}${path}`);
    const outcome = await new Promise<string>((resolve) => {
      failed.onopen = () => resolve("open");
      failed.onerror = () => resolve("error");
    });
    assert.equal(outcome, "error", path);
    if (failed.readyState !== WebSocket.CLOSED) await new Promise((r) => (failed.onclose = r));
  }
  const raw = await curl([
    "-i",
    "-H",
    "Connection: Upgrade",
    "-H",
    "Upgrade: websocket",
    "-H",
    "Sec-WebSocket-Version: 13",
    "-H",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    `http://${addr}/refuse`,
  ]);
  assert.match(raw.stdout, /^HTTP\/1\.1 502/, "the client gets a 502, not a dead WebSocket");
});

Deno.test("startHttpSection(): limit_req refuses exactly the requests over 1 + burst", async () => {
  await using section = await startHttpSection(
    httpConfig({
      limit_req_zones: [{ name: "z", rate: "1r/m" }],
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [{
          path: "/",
          static_response: { body: "ok" },
          limit_req: { zone: "z", burst: 4, nodelay: true },
        }],
      }],
    }),
    { log: memoryLog().log },
  );
  const addr = section.listeners[0]!.addr;
  const urls = Array.from({ length: 12 }, () => ["-o", "/dev/null", `http://${addr}/`]).flat();
  const res = await curl(["-w", "%{http_code}\\n", ...urls]);
  const codes = res.stdout.trim().split("\n");
  assert.equal(codes.filter((c) => c === "200").length, 5);
  assert.equal(codes.filter((c) => c === "429").length, 7);
  assert.deepEqual(codes.slice(0, 5), ["200", "200", "200", "200", "200"]);
});

Deno.test("startHttpSection(): raw traversal targets never reach a file outside the root", async () => {
  const { base, root } = await traversalFixture();
  try {
    await using section = await startHttpSection(
      httpConfig({
        servers: [{
          listen: ["127.0.0.1:0"],
          locations: [{ path: "/", file_server: { root, browse: true } }],
        }],
      }),
      { log: memoryLog().log },
    );
    const addr = section.listeners[0]!.addr;
    for (
      const path of [
        ...HOSTILE_PATHS,
        "/../../../../etc/passwd",
        "/..\\secret.txt",
        "/sub/..\\..\\secret.txt",
      ]
    ) {
      const res = await curl(["--path-as-is", "-w", "\n%{http_code}", `http://${addr}${path}`]);
      const code = res.stdout.slice(res.stdout.lastIndexOf("\n") + 1);
      assert.ok(["400", "403", "404"].includes(code), `${path} -> ${code}`);
      assert.ok(
        !res.stdout.includes("TOP-SECRET") && !res.stdout.includes("root:"),
        `${path} leaked`,
      );
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
