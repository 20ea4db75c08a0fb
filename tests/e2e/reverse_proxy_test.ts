/**
 * E2E: the `http` section (reverse proxy and web server) in the real
 * process, started with `-c FILE`, and the `file-server` / `reverse-proxy`
 * subcommands. Readiness comes from `listening` events with component "http".
 */
import assert from "node:assert/strict";
import { generateCertificates } from "@/tls/certificates.ts";
import { curl, startOrigin, startWmproxy, tempDir, writeConfig } from "./_harness.ts";
import { HOSTILE_PATHS, traversalFixture, WWW } from "../unit/reverse/_helpers.ts";

const code = (r: { stdout: string }) => r.stdout.slice(r.stdout.lastIndexOf("\n") + 1);

/** An origin answering `name path` that keeps the request headers it saw. */
function recordingOrigin(name: string) {
  const seen: Record<string, string>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    seen.push(Object.fromEntries(req.headers));
    return new Response(`${name} ${new URL(req.url).pathname}`);
  });
  return {
    port: server.addr.port,
    seen,
    stopped: false,
    async [Symbol.asyncDispose]() {
      if (this.stopped) return;
      this.stopped = true;
      await server.shutdown();
    },
  };
}

Deno.test("reverse proxy: routes by location, keeps Host, fails over when an upstream dies", async () => {
  await using dir = await tempDir();
  await using a = recordingOrigin("A");
  await using b = recordingOrigin("B");
  const file = await writeConfig(
    dir.path,
    "rp.yaml",
    `
http:
  upstreams:
    - name: app
      servers:
        - { addr: "127.0.0.1:${a.port}", max_fails: 1, fail_timeout: 30s }
        - "127.0.0.1:${b.port}"
      health_check: { type: tcp, interval: 1s, timeout: 1s, fall: 1, rise: 1 }
  servers:
    - listen: ["127.0.0.1:0"]
      server_names: [site.test]
      locations:
        - path: /
          proxy_pass: http://app
          response_headers: [{ action: set, name: X-Via, value: wmproxy }]
        - path: "= /ping"
          static_response: { body: "pong $remote_addr" }
`,
  );
  await using p = startWmproxy(["-c", file]);
  const addr = await p.listeningAddr("http");
  const ping = await curl([`http://${addr}/ping`]);
  assert.equal(ping.stdout, "pong 127.0.0.1");
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const r = await curl(["-H", "Host: site.test", `http://${addr}/x`]);
    seen.add(r.stdout);
  }
  assert.deepEqual(seen, new Set(["A /x", "B /x"]));
  assert.equal(b.seen.at(-1)?.host, "site.test", "Host preserved");
  assert.equal(b.seen.at(-1)?.["x-forwarded-for"], "127.0.0.1");
  await a[Symbol.asyncDispose](); // killed mid-test
  const deadA = `127.0.0.1:${a.port}`;
  const liveB = `127.0.0.1:${b.port}`;
  // Whichever notices first (a failed request, max_fails 1, or the active
  // check) marks A down; until then a request to A is retried on B. Either
  // way every request succeeds.
  const getB = async (path: string) => {
    const r = await curl(["-i", `http://${addr}${path}`]);
    assert.match(r.stdout, /^HTTP\/1\.1 200/, `${path}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /x-via: wmproxy/i);
    assert.ok(r.stdout.endsWith(`B ${path}`), `${path} answered by B: ${r.stdout}`);
  };
  for (let i = 0; i < 6; i++) await getB(`/y${i}`);
  await p.waitForEvent("upstream_peer_down", { upstream: "app", peer: deadA });
  // Once down, A is no longer chosen: each request goes to B on the first try.
  for (let i = 0; i < 6; i++) {
    await getB(`/z${i}`);
    const e = await p.waitForEvent("http_access", { uri: `/z${i}` });
    assert.equal(e.upstream_addr, liveB, `/z${i} tried only B`);
  }
});

Deno.test("reverse proxy: TLS with two names and two certificates (SNI) and HTTP/2", async () => {
  await using dir = await tempDir();
  const names = ["a.test", "b.test"];
  for (const name of names) {
    const g = await generateCertificates({ names: [name] });
    await Deno.writeTextFile(`${dir.path}/${name}.crt`, g.server.cert);
    await Deno.writeTextFile(`${dir.path}/${name}.key`, g.server.key);
    await Deno.writeTextFile(`${dir.path}/${name}.ca`, g.ca.cert);
  }
  const servers = names.map((name) => `
    - listen_tls: ["127.0.0.1:0"]
      server_names: [${name}]
      tls: { cert: "${dir.path}/${name}.crt", key: "${dir.path}/${name}.key" }
      locations: [{ path: /, static_response: { body: "${name} $scheme" } }]`).join("");
  const file = await writeConfig(dir.path, "tls.yaml", `http:\n  servers:${servers}\n`);
  await using p = startWmproxy(["-c", file]);
  const e = await p.waitForEvent("listening", { component: "http", tls: true });
  const port = String(e.addr).split(":").pop()!;
  for (const name of names) {
    const r = await curl([
      "--http2",
      "--cacert",
      `${dir.path}/${name}.ca`,
      "--resolve",
      `${name}:${port}:127.0.0.1`,
      "-w",
      " %{http_version}",
      `https://${name}:${port}/`,
    ]);
    assert.equal(r.stdout, `${name} https 2`, r.stderr);
  }
});

Deno.test("reverse proxy: WebSocket through the proxy", async () => {
  await using dir = await tempDir();
  const up = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (m) => socket.send(`echo ${m.data}`);
    return response;
  });
  try {
    const file = await writeConfig(
      dir.path,
      "ws.yaml",
      `
http:
  servers:
    - listen: ["127.0.0.1:0"]
      locations:
        - { path: /, proxy_pass: "http://127.0.0.1:${up.addr.port}", websocket: true }
`,
    );
    await using p = startWmproxy(["-c", file]);
    const addr = await p.listeningAddr("http");
    const ws = new WebSocket(`ws://${addr}/socket`);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send("hello");
      ws.onmessage = (m) => resolve(String(m.data));
      ws.onerror = () => reject(new Error("websocket failed"));
    });
    assert.equal(reply, "echo hello");
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
  } finally {
    await up.shutdown();
  }
});

Deno.test("reverse proxy: limit_req answers 429 to exactly the requests over 1 + burst", async () => {
  await using dir = await tempDir();
  const file = await writeConfig(
    dir.path,
    "limit.yaml",
    `
http:
  limit_req_zones: [{ name: perip, rate: 1r/m }]
  servers:
    - listen: ["127.0.0.1:0"]
      locations:
        - path: /
          static_response: { body: ok }
          limit_req: { zone: perip, burst: 3, nodelay: true }
`,
  );
  await using p = startWmproxy(["-c", file]);
  const addr = await p.listeningAddr("http");
  const args = Array.from({ length: 10 }, () => ["-o", "/dev/null", `http://${addr}/`]).flat();
  const r = await curl(["-w", "%{http_code}\\n", ...args]);
  assert.deepEqual(r.stdout.trim().split("\n"), [
    ..."200 200 200 200".split(" "),
    ..."429 429 429 429 429 429".split(" "),
  ]);
});

Deno.test("file server: Range, conditional GET and a traversal suite against the real process", async () => {
  const { base, root } = await traversalFixture();
  try {
    const file = await writeConfig(
      base,
      "files.yaml",
      `
http:
  servers:
    - listen: ["127.0.0.1:0"]
      locations:
        - { path: /, file_server: { root: "${root}", browse: true } }
        - { path: /www/, file_server: { alias: "${WWW}" } }
`,
    );
    await using p = startWmproxy(["-c", file]);
    const addr = await p.listeningAddr("http");
    const range = await curl(["-i", "-H", "Range: bytes=0-9", `http://${addr}/www/range.txt`]);
    assert.match(range.stdout, /^HTTP\/1\.1 206/);
    assert.ok(range.stdout.endsWith("\r\n\r\n0123456789"));
    const suffix = await curl(["-H", "Range: bytes=-4", `http://${addr}/www/range.txt`]);
    assert.equal(suffix.stdout, "xyz\n");
    const bad = await curl([
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-H",
      "Range: bytes=99-",
      `http://${addr}/www/range.txt`,
    ]);
    assert.equal(bad.stdout, "416");
    const head = await curl(["-I", `http://${addr}/www/range.txt`]);
    const etag = /etag: (\S+)/i.exec(head.stdout)![1]!;
    const lm = /last-modified: ([^\r\n]+)/i.exec(head.stdout)![1]!;
    for (const h of [`If-None-Match: ${etag}`, `If-Modified-Since: ${lm}`]) {
      const c = await curl([
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        h,
        `http://${addr}/www/range.txt`,
      ]);
      assert.equal(c.stdout, "304", h);
    }
    for (const path of [...HOSTILE_PATHS, "/../../../../etc/passwd", "/..\\secret.txt"]) {
      const r = await curl(["--path-as-is", "-w", "\n%{http_code}", `http://${addr}${path}`]);
      assert.ok(["400", "403", "404"].includes(code(r)), `${path} -> ${code(r)}`);
      assert.ok(!r.stdout.includes("TOP-SECRET") && !r.stdout.includes("root:"), `${path} leaked`);
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("cli: wmproxy file-server and reverse-proxy subcommands", async () => {
  await using fs = startWmproxy([
    "file-server",
    "--root",
    WWW,
    "--listen",
    "127.0.0.1:0",
    "--browse",
  ]);
  const fsAddr = await fs.listeningAddr("http");
  assert.equal(
    (await curl([`http://${fsAddr}/range.txt`])).stdout,
    "0123456789abcdefghijklmnopqrstuvwxyz\n",
  );
  assert.match((await curl([`http://${fsAddr}/sub/`])).stdout, /file\.txt/);
  await using origin = startOrigin("O");
  await using rp = startWmproxy(["reverse-proxy", "--from", "127.0.0.1:0", "--to", origin.url]);
  const rpAddr = await rp.listeningAddr("http");
  assert.equal((await curl([`http://${rpAddr}/q`])).stdout, "O /q");
});

Deno.test("reverse proxy: the origin sees the client's headers and the client the origin's bytes on the slow path", async () => {
  await using dir = await tempDir();
  const gzip = new Uint8Array(
    await new Response(
      new Blob(["compressed hello"]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const seen: { headers: [string, string][]; body: string }[] = [];
  const origin = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    seen.push({ headers: [...req.headers], body: await req.text() });
    return new Response(gzip, { headers: { "content-encoding": "gzip" } });
  });
  try {
    const file = await writeConfig(
      dir.path,
      "slow.yaml",
      `
http:
  servers:
    - listen: ["127.0.0.1:0"]
      locations: [{ path: /, proxy_pass: "http://127.0.0.1:${origin.addr.port}" }]
`,
    );
    await using p = startWmproxy(["-c", file]);
    const addr = await p.listeningAddr("http");
    // A chunked body takes the full handler (the slow path). No Accept and no
    // User-Agent from the client; an Accept-Encoding of its own.
    const out = `${dir.path}/body`;
    const r = await curl([
      "-v",
      "-o",
      out,
      "-H",
      "User-Agent:",
      "-H",
      "Accept:",
      "-H",
      "Accept-Encoding: gzip, br",
      "-H",
      "X-Client: 1",
      "-H",
      "Transfer-Encoding: chunked",
      "--data-binary",
      "hello origin",
      `http://${addr}/echo?a=1`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await Deno.readFile(out), gzip, "the origin's compressed bytes, unchanged");
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.body, "hello origin");
    // What curl sent ("> name: value" lines of -v), and what the origin saw.
    const framing = new Set(["content-length", "transfer-encoding"]);
    const sent = r.stderr.split(/\r?\n/).filter((l) => /^> [^:\s]+: /.test(l)).map((l) => {
      const at = l.indexOf(": ");
      return [l.slice(2, at).toLowerCase(), l.slice(at + 2)] as [string, string];
    }).filter(([name]) => !framing.has(name));
    const got = seen[0]!.headers.filter(([name]) => !framing.has(name));
    const forwarded = got.filter(([name]) => name.startsWith("x-forwarded-"));
    assert.deepEqual(
      Object.fromEntries(forwarded),
      { "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": addr },
    );
    assert.deepEqual(
      got.filter(([name]) => !name.startsWith("x-forwarded-")).sort(),
      sent.sort(),
      "the origin sees exactly the client's headers (besides framing and X-Forwarded-*)",
    );
  } finally {
    await origin.shutdown();
  }
});
