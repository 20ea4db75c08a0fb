/**
 * The README works verbatim: every command of its fenced `sh` blocks is
 * either run here, on 127.0.0.1, with the effect the README describes
 * checked, or listed in {@link SKIPPED} with the reason it cannot run here.
 * A command in neither list (a new one, or one whose text changed) fails the
 * first test, so the README and this file stay in step.
 *
 * A command runs as written, its words split like a shell would, with these
 * replacements and no others (each must occur, see {@link replaced}):
 * `wmproxy` is the real program as the harness starts it (JSON logs are
 * added to wait on events), public names (example.com, host.example.com, …)
 * are loopback servers or `localhost`, ports are free ones, `0.0.0.0` is
 * 127.0.0.1, and `$TOKEN` is a token. State (certificates) goes to a temp dir.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import {
  ALLOW_LOOPBACK_EGRESS,
  curl,
  runWmproxy,
  startOrigin,
  tempDir,
  type WmproxyProcess,
  WmproxyProcess as Wmproxy,
} from "./_harness.ts";
import { generateCertificates } from "@/tls/mod.ts";
import { FLAGS } from "@/cli/args.ts";

const README = new URL("../../README.md", import.meta.url);

/** Commands that cannot run here, with the reason. */
const SKIPPED: Record<string, string> = {
  "npx -y deno@2.9.6 task start":
    "downloads Deno through npm; `deno task start` is `wmproxy` without flags, run below",
  "npx -y deno@2.9.6 task test": "the test suite itself (this file is part of it)",
  "deno task test": "the test suite itself (this file is part of it)",
  "deno task ok": "fmt, lint, type check and the test suite itself",
  "deno task bench": "~30 min against peers (squid, haproxy, nginx, …) that are not installed here",
  "deno task bench --quick --json bench.json": "needs the benchmark peers (squid, nginx, …)",
  "deno task bench --only reverse_proxy,file_server": "needs the benchmark peers (nginx, haproxy)",
  "deno task fuzz": "a long fuzz run; its decoders and parsers are fuzzed by unit tests",
  "deno task soak": "a 10-minute reliability run; its planner has unit tests",
  "deno task soak --minutes 10": "a 10-minute reliability run; its planner has unit tests",
  "deno task compile": "downloads the Deno runtime for deno compile",
  "for i in $(seq 10); do deno task test || break; done": "runs the test suite itself ten times",
};

/** The commands each test below runs (exactly as they are in the README). */
const RUN = {
  proxy: [
    "wmproxy",
    "curl -x http://127.0.0.1:8090 http://example.com/",
    "curl -p -x http://127.0.0.1:8090 https://example.com/",
    "curl --socks5-hostname 127.0.0.1:8090 https://example.com/",
  ],
  auth: ["wmproxy --bind 0.0.0.0:8090 --user alice --pass 's3cret'"],
  config: ["wmproxy -c config.yaml --log-format json", "wmproxy check -c config.yaml"],
  genCert: ["wmproxy gen-cert --out ./certs"],
  help: ["wmproxy --help"],
  chained: [
    'wmproxy --mode server --listen 0.0.0.0:8091 --token "$(openssl rand -hex 16)" --names host.example.com',
    'wmproxy --mode client --server host.example.com:8091 --token "$TOKEN" --ca ca.pem',
    "curl -x http://127.0.0.1:8090 https://example.com/",
  ],
  intranet: [
    'wmproxy --mode server --listen 0.0.0.0:8091 --token "$TOKEN" --http 0.0.0.0:80 --https 0.0.0.0:443',
    'wmproxy --mode client --server host.example.com:8091 --token "$TOKEN" --ca ca.pem ' +
    "--map web=http:127.0.0.1:8080@example.com,www.example.com " +
    "--map secure=https:127.0.0.1:8443@secure.example.com --map ssh=tcp:127.0.0.1:22@:2222 " +
    "--map dns=udp:127.0.0.1:53@:5353",
  ],
  fileServer: ["wmproxy file-server --root ./public --listen 127.0.0.1:8080 --browse"],
  reverseProxy: ["wmproxy reverse-proxy --from 127.0.0.1:8080 --to http://127.0.0.1:3000"],
  wsProxy: ["wmproxy ws-proxy --from 127.0.0.1:2222 --to wss://gw.example.com/ssh --mode tcp2wss"],
  reverseMode: ["wmproxy --mode reverse -c site.yaml"],
} as const;

// ------------------------------------------------------------------ parsing

/** The commands of the README's `sh` blocks: continuation lines joined, comments removed. */
async function readmeCommands(): Promise<string[]> {
  const text = await Deno.readTextFile(README);
  const commands: string[] = [];
  for (const block of text.matchAll(/^```sh\n([\s\S]*?)^```/gm)) {
    const joined = block[1]!.replace(/\\\n\s*/g, " ");
    for (const line of joined.split("\n")) {
      const command = stripComment(line).replace(/\s+/g, " ").trim();
      if (command !== "") commands.push(command);
    }
  }
  return commands;
}

/** `line` without a `# comment` (a `#` after a space, outside quotes). */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== "") {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/** Splits a command into words like a shell (quotes removed; `$…` kept as text). */
function words(command: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote = "";
  for (const c of command) {
    if (quote !== "") {
      if (c === quote) quote = "";
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (/\s/.test(c)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else word = (word ?? "") + c;
  }
  assert.equal(quote, "", `unbalanced quotes in ${command}`);
  if (word !== undefined) out.push(word);
  return out;
}

/** `command`'s words with each `[from, to]` replaced in every word; each `from` must occur. */
function replaced(command: string, pairs: [string, string][]): string[] {
  let argv = words(command);
  for (const [from, to] of pairs) {
    assert.ok(argv.some((w) => w.includes(from)), `"${from}" is no longer in: ${command}`);
    argv = argv.map((w) => w.replaceAll(from, to));
  }
  return argv;
}

// ------------------------------------------------------------------ running

/** Starts a README `wmproxy …` command (argv[0] is "wmproxy") with JSON logs. */
function start(
  argv: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): WmproxyProcess {
  assert.equal(argv[0], "wmproxy");
  const args = argv.slice(1);
  if (!args.includes("--log-format")) args.push("--log-format", "json");
  return new Wmproxy(args, options);
}

/** Runs a README `curl …` command (argv[0] is "curl"). */
function runCurl(argv: string[], extra: string[] = []) {
  assert.equal(argv[0], "curl");
  return curl([...extra, ...argv.slice(1)]);
}

/** A TCP port nobody listens on right now (for `@:PORT` mappings, which need a given port). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** A UDP port nobody uses right now. */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const port = (addr: string) => Number(addr.slice(addr.lastIndexOf(":") + 1));

/** An HTTPS origin on 127.0.0.1 for `names`, answering `name path`; its CA is in `caFile`. */
async function tlsOrigin(dir: string, name: string, names: string[] = ["localhost"]) {
  const g = await generateCertificates({ names });
  const caFile = `${dir}/${name}-ca.pem`;
  await Deno.writeTextFile(caFile, g.ca.cert);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: g.server.cert, key: g.server.key, onListen() {} },
    (req) => new Response(`${name} ${new URL(req.url).pathname}`),
  );
  return {
    port: server.addr.port,
    caFile,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/**
 * Sends a datagram every 200 ms until a reply came (UDP may lose one) or the
 * deadline passed; `replies` wakes the wait as soon as one arrives.
 */
async function untilReply(
  what: string,
  send: () => void,
  replies: { count(): number; wake: () => void },
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (replies.count() === 0) {
    if (Date.now() > deadline) throw new Error(`Cannot see ${what} within ${timeoutMs} ms`);
    send();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 200);
      replies.wake = () => (clearTimeout(timer), resolve());
    });
  }
}

/** The `mapping_ready` event of `mapping`; fails at once on its `mapping_failed`. */
function mappingReady(p: WmproxyProcess, mapping: string) {
  const failed = p.waitForEvent("mapping_failed", { mapping }).then((e) => {
    throw new Error(`mapping ${mapping} failed: ${e.reason}`);
  });
  failed.catch(() => {});
  return Promise.race([p.waitForEvent("mapping_ready", { mapping }), failed]);
}

// ------------------------------------------------------------------ tests

Deno.test("README: every sh command is run below or skipped with a reason", async () => {
  const commands = await readmeCommands();
  const run = new Set<string>(Object.values(RUN).flat());
  const unknown = commands.filter((c) => !run.has(c) && !(c in SKIPPED));
  assert.deepEqual(
    unknown,
    [],
    "README commands neither run nor skipped by tests/e2e/readme_test.ts:\n" + unknown.join("\n"),
  );
  const present = new Set(commands);
  const stale = [...run, ...Object.keys(SKIPPED)].filter((c) => !present.has(c));
  assert.deepEqual(stale, [], "commands listed here that the README no longer has");
  for (const c of run) assert.ok(!(c in SKIPPED), `${c} is both run and skipped`);
});

Deno.test("README: wmproxy is a forward proxy for HTTP, CONNECT and SOCKS5 (curl -x, -p -x, --socks5-hostname)", async () => {
  await using dir = await tempDir();
  await using origin = startOrigin("example");
  await using tls = await tlsOrigin(dir.path, "secure-example");
  const [wm, plain, connect, socks] = RUN.proxy;
  // "proxy on 127.0.0.1:8090": the same with a free port instead of 8090.
  const args = replaced(wm, []);
  await using p = start([...args, "--bind", "127.0.0.1:0"]);
  const addr = await p.listeningAddr("proxy");
  assert.match(addr, /^127\.0\.0\.1:\d+$/);
  const r1 = await runCurl(
    replaced(plain, [["127.0.0.1:8090", addr], ["example.com", `127.0.0.1:${origin.port}`]]),
  );
  assert.equal(r1.stdout, "example /", r1.stderr);
  const https = [["example.com", `localhost:${tls.port}`]] as [string, string][];
  const r2 = await runCurl(replaced(connect, [["127.0.0.1:8090", addr], ...https]), [
    "--cacert",
    tls.caFile,
  ]);
  assert.equal(r2.stdout, "secure-example /", r2.stderr);
  const r3 = await runCurl(replaced(socks, [["127.0.0.1:8090", addr], ...https]), [
    "--cacert",
    tls.caFile,
  ]);
  assert.equal(r3.stdout, "secure-example /", r3.stderr);
  await p.waitForEvent("connection_closed", { protocol: "socks5" });
});

Deno.test("README: --user/--pass make the proxy ask for a login (407) and accept it", async () => {
  await using origin = startOrigin("example");
  const argv = replaced(RUN.auth[0], [["0.0.0.0:8090", "127.0.0.1:0"]]);
  assert.deepEqual(argv.slice(-4), ["--user", "alice", "--pass", "s3cret"], "quotes removed");
  await using p = start(argv);
  const addr = await p.listeningAddr("proxy");
  const url = `http://127.0.0.1:${origin.port}/`;
  const denied = await curl(["-i", "-x", `http://${addr}`, url]);
  assert.match(denied.stdout, /^HTTP\/1\.1 407/);
  assert.match(denied.stdout, /proxy-authenticate: Basic realm="wmproxy"/i);
  const ok = await curl(["-x", `http://${addr}`, "--proxy-user", "alice:s3cret", url]);
  assert.equal(ok.stdout, "example /", ok.stderr);
});

Deno.test("README: -c config.yaml runs every section of the file with JSON logs, and check validates it", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(
    `${dir.path}/config.yaml`,
    `proxy: { bind: "127.0.0.1:0" }
http:
  servers:
    - listen: ["127.0.0.1:0"]
      locations: [{ path: /, static_response: { body: "from the http section" } }]
`,
  );
  const [runCmd, checkCmd] = RUN.config;
  await using p = start(replaced(runCmd, []), { cwd: dir.path });
  await p.listeningAddr("proxy");
  const http = await p.listeningAddr("http");
  assert.equal((await curl([`http://${http}/`])).stdout, "from the http section");
  const starting = await p.waitForEvent("starting");
  assert.deepEqual(starting.sections, ["proxy", "http"]);
  assert.ok(p.lines.length > 0 && p.lines.every((l) => JSON.parse(l).event), "JSON lines");
  const check = await runWmproxy(replaced(checkCmd, []).slice(1), { cwd: dir.path });
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /^ok: config\.yaml \(sections: proxy, http\)/);
});

Deno.test("README: gen-cert --out ./certs writes the CA and the server certificate", async () => {
  await using dir = await tempDir();
  const r = await runWmproxy(replaced(RUN.genCert[0], []).slice(1), { cwd: dir.path });
  assert.equal(r.code, 0, r.stderr);
  for (const f of ["ca.pem", "ca.key", "server.pem", "server.key"]) {
    const text = await Deno.readTextFile(`${dir.path}/certs/${f}`);
    assert.match(text, /-----BEGIN /, f);
  }
  assert.match(r.stdout, /CA fingerprint \(SHA-256\)/);
});

Deno.test("README: wmproxy --help lists every flag of every mode", async () => {
  const r = await runWmproxy(replaced(RUN.help[0], []).slice(1));
  assert.equal(r.code, 0);
  const modes = ["common", "proxy", "server", "client", "reverse"] as const;
  // (a subcommand's own flags are in `wmproxy SUBCOMMAND --help`: tests/unit/cli/help_test.ts)
  assert.match(r.stdout, /wmproxy SUBCOMMAND --help/);
  for (const f of FLAGS.filter((f) => modes.some((m) => f.help[m] !== undefined))) {
    assert.match(r.stdout, new RegExp(`^ +(-\\w, )?--${f.name}\\b`, "m"), `--${f.name}`);
  }
});

Deno.test("README: chained proxy: server, client with the server's ca.pem, egress from the server", async () => {
  await using dir = await tempDir();
  await using tls = await tlsOrigin(dir.path, "secure-example");
  const [serverCmd, clientCmd, curlCmd] = RUN.chained;
  const token = crypto.randomUUID().replaceAll("-", "");
  const env = { XDG_STATE_HOME: `${dir.path}/state` };
  await using server = start(
    [
      ...replaced(serverCmd, [
        ["0.0.0.0:8091", "127.0.0.1:0"],
        ["$(openssl rand -hex 16)", token],
        ["host.example.com", "localhost"],
      ]),
      // The origin standing in for example.com is on loopback, which the
      // server's egress refuses by default (the README says so).
      ...ALLOW_LOOPBACK_EGRESS,
    ],
    { env },
  );
  const listen = await server.listeningAddr("tunnel");
  const identity = await server.waitForEvent("tls_identity");
  assert.ok(String(identity.ca_file).startsWith(`${dir.path}/state/wmproxy/`), "the state dir");
  assert.deepEqual(identity.names, ["localhost"]);
  // "Copy ca.pem to the LAN machine"
  const lan = `${dir.path}/lan`;
  await Deno.mkdir(lan);
  await Deno.copyFile(String(identity.ca_file), `${lan}/ca.pem`);
  await using client = start(
    [
      ...replaced(clientCmd, [
        ["host.example.com:8091", `localhost:${port(listen)}`],
        ["$TOKEN", token],
      ]),
      "--bind",
      "127.0.0.1:0",
    ],
    { cwd: lan },
  );
  const local = await client.listeningAddr("client");
  await client.waitForEvent("tunnel_connected");
  const r = await runCurl(
    replaced(curlCmd, [["127.0.0.1:8090", local], ["example.com", `localhost:${tls.port}`]]),
    ["--cacert", tls.caFile],
  );
  assert.equal(r.stdout, "secure-example /", r.stderr);
  // "leaves from the server": the server dialled the origin.
  await server.waitForEvent("connection_closed", { target: `localhost:${tls.port}` });
});

Deno.test("README: intranet penetration: http by Host, https by SNI, tcp and udp ports (default port_range)", async () => {
  await using dir = await tempDir();
  const token = "readme-token-0123456789";
  const env = { XDG_STATE_HOME: `${dir.path}/state` };
  const [serverCmd, clientCmd] = RUN.intranet;
  await using server = start(
    replaced(serverCmd, [
      ["0.0.0.0:8091", "127.0.0.1:0"],
      ["$TOKEN", token],
      ["0.0.0.0:80", "127.0.0.1:0"],
      ["0.0.0.0:443", "127.0.0.1:0"],
    ]),
    { env },
  );
  const listen = await server.listeningAddr("tunnel");
  const identity = await server.waitForEvent("tls_identity");
  const httpPort = port(await server.listeningAddr("http"));
  const httpsPort = port(await server.listeningAddr("https"));

  // The LAN services: web, a TLS service with its own certificate, TCP echo, UDP echo.
  await using web = startOrigin("web");
  await using secure = await tlsOrigin(dir.path, "secure", ["secure.example.com"]);
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const echoing = (async () => {
    for await (const c of echo) {
      (async () => {
        try {
          await c.readable.pipeTo(c.writable);
        } catch {
          // visitor gone
        }
      })();
    }
  })().catch(() => {});
  const udp = dgram.createSocket("udp4");
  udp.on("message", (m, r) => udp.send(Buffer.concat([Buffer.from("re:"), m]), r.port, r.address));
  await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
  const visitor = dgram.createSocket("udp4");
  try {
    const lan = `${dir.path}/lan`;
    await Deno.mkdir(lan);
    await Deno.copyFile(String(identity.ca_file), `${lan}/ca.pem`);
    const sshPort = freePort();
    const dnsPort = await freeUdpPort();
    await using client = start(
      [
        ...replaced(clientCmd, [
          ["host.example.com:8091", `localhost:${port(listen)}`],
          ["$TOKEN", token],
          ["127.0.0.1:8080", `127.0.0.1:${web.port}`],
          ["127.0.0.1:8443", `127.0.0.1:${secure.port}`],
          ["127.0.0.1:22@:2222", `127.0.0.1:${echo.addr.port}@:${sshPort}`],
          ["127.0.0.1:53@:5353", `127.0.0.1:${udp.address().port}@:${dnsPort}`],
        ]),
        "--bind",
        "127.0.0.1:0",
      ],
      { cwd: lan },
    );
    // "logs: mapping_ready mapping=ssh public_addr=127.0.0.1:2222"
    for (const [mapping, addr] of [["ssh", sshPort], ["dns", dnsPort]] as const) {
      const ready = await mappingReady(client, mapping);
      assert.equal(ready.public_addr, `127.0.0.1:${addr}`, mapping);
    }
    await mappingReady(client, "web");
    await mappingReady(client, "secure");
    assert.equal(client.events.filter((e) => e.event === "mapping_failed").length, 0);

    for (const host of ["example.com", "www.example.com"]) {
      const r = await curl(["-H", `Host: ${host}`, `http://127.0.0.1:${httpPort}/page`]);
      assert.equal(r.stdout, "web /page", `${host}: ${r.stderr}`);
    }
    const s = await curl([
      "--cacert",
      secure.caFile,
      "--resolve",
      `secure.example.com:${httpsPort}:127.0.0.1`,
      `https://secure.example.com:${httpsPort}/tls`,
    ]);
    assert.equal(s.stdout, "secure /tls", s.stderr);

    const conn = await Deno.connect({ hostname: "127.0.0.1", port: sshPort });
    try {
      await conn.write(new TextEncoder().encode("SSH-2.0-readme"));
      const buf = new Uint8Array(64);
      let got = "";
      while (got.length < 14) {
        const n = await conn.read(buf);
        if (n === null) break;
        got += new TextDecoder().decode(buf.subarray(0, n));
      }
      assert.equal(got, "SSH-2.0-readme");
    } finally {
      conn.close();
    }

    const replies: string[] = [];
    const waiter = { count: () => replies.length, wake: () => {} };
    visitor.on("message", (m) => {
      replies.push(m.toString());
      waiter.wake();
    });
    await new Promise<void>((r) => visitor.bind(0, "127.0.0.1", r));
    await untilReply(
      "a UDP reply through the dns mapping",
      () => visitor.send("query example.com A", dnsPort, "127.0.0.1"),
      waiter,
    );
    assert.equal(replies[0], "re:query example.com A");
  } finally {
    visitor.close();
    udp.close();
    echo.close();
    await echoing;
  }
});

Deno.test("README: file-server --root ./public --browse serves and lists the directory", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/public/docs`, { recursive: true });
  await Deno.writeTextFile(`${dir.path}/public/index.html`, "<h1>home</h1>");
  await Deno.writeTextFile(`${dir.path}/public/docs/notes.txt`, "notes");
  await using p = start(replaced(RUN.fileServer[0], [["127.0.0.1:8080", "127.0.0.1:0"]]), {
    cwd: dir.path,
  });
  const listen = await p.listeningAddr("http");
  assert.equal((await curl([`http://${listen}/`])).stdout, "<h1>home</h1>");
  assert.match((await curl([`http://${listen}/docs/`])).stdout, /notes\.txt/);
  assert.equal((await curl([`http://${listen}/docs/notes.txt`])).stdout, "notes");
});

Deno.test("README: reverse-proxy --from --to proxies one origin", async () => {
  await using origin = startOrigin("app");
  await using p = start(
    replaced(RUN.reverseProxy[0], [
      ["127.0.0.1:8080", "127.0.0.1:0"],
      ["127.0.0.1:3000", `127.0.0.1:${origin.port}`],
    ]),
  );
  const from = await p.listeningAddr("http");
  assert.equal((await curl([`http://${from}/some/path`])).stdout, "app /some/path");
});

Deno.test("README: ws-proxy tcp2wss bridges TCP to a wss:// WebSocket", async () => {
  await using dir = await tempDir();
  const g = await generateCertificates({ names: ["localhost"] });
  await Deno.writeTextFile(`${dir.path}/ca.pem`, g.ca.cert);
  const paths: string[] = [];
  const gw = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: g.server.cert, key: g.server.key, onListen() {} },
    (req) => {
      paths.push(new URL(req.url).pathname);
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.binaryType = "arraybuffer";
      socket.onmessage = (m) => socket.send(m.data);
      return response;
    },
  );
  try {
    await using p = start(
      replaced(RUN.wsProxy[0], [
        ["127.0.0.1:2222", "127.0.0.1:0"],
        ["gw.example.com", `localhost:${gw.addr.port}`],
      ]),
      { env: { DENO_CERT: `${dir.path}/ca.pem` } },
    );
    const from = String((await p.waitForEvent("listening")).addr);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: port(from) });
    try {
      await conn.write(new TextEncoder().encode("SSH-2.0-over-wss"));
      const buf = new Uint8Array(64);
      let got = "";
      while (got.length < 16) {
        const n = await conn.read(buf);
        if (n === null) break;
        got += new TextDecoder().decode(buf.subarray(0, n));
      }
      assert.equal(got, "SSH-2.0-over-wss");
    } finally {
      conn.close();
    }
    assert.deepEqual(paths, ["/ssh"]);
  } finally {
    await gw.shutdown();
  }
});

Deno.test("README: --mode reverse -c site.yaml runs only the http section of the file", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(
    `${dir.path}/site.yaml`,
    `proxy: { bind: "127.0.0.1:0" }
http:
  servers:
    - listen: ["127.0.0.1:0"]
      locations: [{ path: /, static_response: { body: "site" } }]
`,
  );
  await using p = start(replaced(RUN.reverseMode[0], []), { cwd: dir.path });
  const addr = await p.listeningAddr("http");
  assert.equal((await curl([`http://${addr}/`])).stdout, "site");
  const starting = await p.waitForEvent("starting");
  assert.deepEqual(starting.sections, ["http"], "the proxy section of the file does not run");
});
