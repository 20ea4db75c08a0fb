import assert from "node:assert/strict";
import { curl, runWmproxy, startOrigin, startWmproxy, tempDir } from "./_harness.ts";
import { VERSION } from "@/version.ts";
import { V8_FLAGS_ARG } from "@/cli/v8_flags.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const INVALID = `${ROOT}tests/testdata/config/invalid/`;

Deno.test("cli: --help teaches the modes, flags and exit codes", async () => {
  const r = await runWmproxy(["--help"]);
  assert.equal(r.code, 0);
  for (const text of ["--mode", "--bind", "--user", "check -c FILE", "Exit codes", "curl -x"]) {
    assert.ok(r.stdout.includes(text), `--help lacks ${text}`);
  }
});

Deno.test("cli: --version and version print the version", async () => {
  for (const args of [["--version"], ["version"], ["-V"]]) {
    const r = await runWmproxy(args);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^wmproxy ${VERSION.replaceAll(".", "\\.")} `));
  }
});

Deno.test("cli: usage errors exit 2 and say what was expected", async () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Cannot use option --bogus: no such option/],
    [["--mode", "tunnel"], /--mode "tunnel": expected one of proxy, client, server, reverse/],
    [["--bind", "nope"], /--bind "nope": expected host:port/],
    [["--user", "a"], /--user without --pass/],
    [["check"], /check: it needs -c FILE/],
    [["frobnicate"], /subcommand "frobnicate"/],
    [["--log-format", "xml"], /expected one of text, json/],
    [["--protocols", "http,gopher"], /--protocols "gopher"/],
  ];
  for (const [args, re] of cases) {
    const r = await runWmproxy(args);
    assert.equal(r.code, 2, `${args.join(" ")} exited ${r.code}`);
    assert.match(r.stderr, re);
    assert.match(r.stderr, /wmproxy --help/);
  }
});

Deno.test("cli: check exits 0 on config.example.yaml and 1 on every invalid fixture", async () => {
  const ok = await runWmproxy(["check", "-c", `${ROOT}config.example.yaml`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(
    ok.stdout,
    /^ok: .*config\.example\.yaml \(sections: proxy, server, client, stream, http, admin\)/,
  );
  const names: string[] = [];
  for await (const e of Deno.readDir(INVALID)) names.push(e.name);
  const results = await Promise.all(names.map((n) => runWmproxy(["check", "-c", INVALID + n])));
  results.forEach((r, i) => {
    assert.equal(r.code, 1, `${names[i]}: exit ${r.code}`);
    assert.match(r.stderr, /Cannot load config/, names[i]);
  });
});

Deno.test("cli: a config error at start exits 1 and names the key", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/bad.yaml`;
  await Deno.writeTextFile(file, "proxy:\n  limits:\n    idle_timeout: soon\n");
  const r = await runWmproxy(["-c", file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /proxy\.limits\.idle_timeout \(line 3\)/);
});

Deno.test("cli: a listen failure exits 1 with the reason", async () => {
  using holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const r = await runWmproxy(["--log-format", "json", "--bind", `127.0.0.1:${holder.addr.port}`]);
  assert.equal(r.code, 1);
  const fatal = r.stderr.split("\n").filter((l) => l.includes('"event":"fatal"'));
  assert.equal(fatal.length, 1, r.stderr);
  assert.match(fatal[0]!, /Cannot listen on/);
});

Deno.test("cli: --mode reverse without an http section says what to add and exits 1", async () => {
  const r = await runWmproxy(["--mode", "reverse", "--log-format", "json"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot start: .*has no section to run/);
});

Deno.test("cli: SIGTERM stops the proxy gracefully with exit 0", async () => {
  await using p = startWmproxy(["--bind", "127.0.0.1:0"]);
  await p.listeningAddr("proxy");
  const status = await p.stop("SIGTERM");
  assert.equal(status.code, 0, p.lines.join("\n"));
  await p.waitForEvent("stopped");
});

Deno.test("cli: the config file runs its sections and flags override it", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/c.yaml`;
  await Deno.writeTextFile(file, "proxy:\n  bind: 127.0.0.1:1\nlog:\n  level: warn\n");
  await using p = startWmproxy(["-c", file, "--bind", "127.0.0.1:0", "--log-level", "info"]);
  const addr = await p.listeningAddr("proxy");
  assert.match(addr, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(addr, "127.0.0.1:1");
});

const port8090Free = (() => {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: 8090 }).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: port8090Free
    ? "cli: no arguments starts the forward proxy on 127.0.0.1:8090"
    : "cli: no arguments starts the forward proxy on 127.0.0.1:8090 (NOT RUN: port 8090 is busy here)",
  ignore: !port8090Free,
  async fn() {
    await using p = startWmproxy([]);
    assert.equal(await p.listeningAddr("proxy"), "127.0.0.1:8090");
  },
});

Deno.test("cli: install-service writes a hardened unit, with CAP_NET_BIND_SERVICE only for ports below 1024", async () => {
  await using dir = await tempDir();
  const high = await runWmproxy([
    "install-service",
    "--mode",
    "server",
    "--listen",
    "127.0.0.1:8091",
    "--token",
    "abcdefghij",
    "--user",
    "wm",
    "--output",
    `${dir.path}/high.service`,
  ]);
  assert.equal(high.code, 0, high.stderr);
  assert.match(
    high.stdout,
    /systemctl daemon-reload && systemctl enable --now wmproxy-server\.service/,
  );
  const unit = await Deno.readTextFile(`${dir.path}/high.service`);
  for (
    const line of [
      "Restart=on-failure",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "User=wm",
      "CapabilityBoundingSet=",
      "WantedBy=multi-user.target",
    ]
  ) assert.ok(unit.split("\n").includes(line), `unit lacks ${line}`);
  assert.ok(!unit.includes("CAP_NET_BIND_SERVICE"));
  assert.match(
    unit,
    /^ExecStart=.* --mode server --listen 127\.0\.0\.1:8091 --token abcdefghij --log-format json$/m,
  );
  if (Deno.env.get("WMPROXY_BIN") === undefined) {
    // A `deno run` install starts with the V8 flags the binary has built in.
    assert.match(unit, new RegExp(`^ExecStart=\\S+ run -A ${V8_FLAGS_ARG} \\S+/main\\.ts `, "m"));
  }
  assert.equal(
    (await Deno.stat(`${dir.path}/high.service`)).mode! & 0o777,
    0o600,
    "a unit holding a token is private",
  );

  const low = await runWmproxy([
    "install-service",
    "--bind",
    "0.0.0.0:80",
    "--allow-open",
    "--output",
    `${dir.path}/low.service`,
  ]);
  assert.equal(low.code, 0, low.stderr);
  const lowUnit = await Deno.readTextFile(`${dir.path}/low.service`);
  assert.ok(lowUnit.includes("AmbientCapabilities=CAP_NET_BIND_SERVICE"));
  assert.ok(lowUnit.includes("DynamicUser=yes"));
});

const hasSystemdAnalyze = (() => {
  try {
    return new Deno.Command("systemd-analyze", { args: ["--version"] }).outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: hasSystemdAnalyze
    ? "cli: systemd-analyze verify accepts the unit install-service writes"
    : "cli: systemd-analyze verify accepts the unit install-service writes (NOT RUN: no systemd-analyze here)",
  ignore: !hasSystemdAnalyze,
  async fn() {
    await using dir = await tempDir();
    const out = await runWmproxy([
      "install-service",
      "--mode",
      "server",
      "--listen",
      "127.0.0.1:8091",
      "--token",
      "abcdefghij",
      "--output",
      `${dir.path}/wm.service`,
    ]);
    assert.equal(out.code, 0, out.stderr);
    const analyze = await new Deno.Command("systemd-analyze", {
      args: ["verify", `${dir.path}/wm.service`],
    }).output();
    // Only problems with the unit itself count: a missing ExecStart binary on this machine is not one.
    const text = new TextDecoder().decode(analyze.stderr);
    assert.ok(!/Unknown (key|section)|Invalid|Failed to parse/i.test(text), text);
  },
});

Deno.test("cli: SIGHUP with an invalid config keeps the running one and names the problem", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/c.yaml`;
  await Deno.writeTextFile(file, "proxy:\n  bind: 127.0.0.1:0\n");
  await using origin = startOrigin("origin");
  await using p = startWmproxy(["-c", file]);
  const addr = await p.listeningAddr("proxy");
  // The bad file would also switch the proxy to user auth: if it were applied
  // even in part, the request after the reload would get 407.
  await Deno.writeTextFile(
    file,
    "proxy:\n  bind: nonsense\n  users:\n    - { username: u, password: 0123456789 }\n",
  );
  p.child.kill("SIGHUP");
  const bad = await p.waitForEvent("reload");
  assert.match(String(bad.result), /invalid, kept the running config/);
  assert.match(String(bad.error), /proxy\.bind/);
  const after = await curl(["-x", `http://${addr}`, `${origin.url}/after-reload`]);
  assert.equal(after.code, 0, after.stderr);
  assert.equal(after.stdout, "origin /after-reload");
  const status = await p.stop("SIGTERM");
  assert.equal(status.code, 0, "still running until SIGTERM");
});
