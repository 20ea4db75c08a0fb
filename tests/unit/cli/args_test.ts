import assert from "node:assert/strict";
import { parseCli, UsageError } from "@/cli/mod.ts";

Deno.test("parseCli() with no arguments runs with every option unset", () => {
  const cli = parseCli([]);
  assert.equal(cli.command, "run");
  assert.equal(cli.mode, undefined);
  assert.equal(cli.config, undefined);
  assert.equal(cli.allowOpen, false);
});

Deno.test("parseCli() reads quick proxy flags", () => {
  const cli = parseCli([
    "--mode",
    "proxy",
    "--bind",
    "[::1]:0",
    "--user",
    "u",
    "--pass",
    "p",
    "--protocols",
    "http, socks5",
    "--allow-open",
  ]);
  assert.equal(cli.mode, "proxy");
  assert.equal(cli.bind, "[::1]:0");
  assert.deepEqual(cli.protocols, ["http", "socks5"]);
  assert.equal(cli.allowOpen, true);
});

Deno.test("parseCli() turns bad input into a UsageError naming the flag", () => {
  for (
    const [args, re] of [
      [["--nope"], /--nope/],
      [["-c"], /-c/],
      [["check"], /-c FILE/],
      [["a", "b"], /only one subcommand/],
      [["--pass", "x"], /--user/],
      [["--mode", "relay"], /--mode/],
    ] as const
  ) {
    assert.throws(
      () => parseCli(args),
      (err: unknown) => err instanceof UsageError && re.test(err.message),
    );
  }
});

Deno.test("parseCli() treats --version as the version command", () => {
  assert.equal(parseCli(["--version"]).command, "version");
  assert.equal(parseCli(["check", "-c", "x.yaml"]).command, "check");
});

Deno.test("parseCli() reads --port-range as a range and refuses a bad one", () => {
  assert.deepEqual(parseCli(["--mode", "server", "--port-range", "2000-3000"]).portRange, {
    from: 2000,
    to: 3000,
  });
  assert.deepEqual(parseCli(["--port-range=2222"]).portRange, { from: 2222, to: 2222 });
  assert.equal(parseCli([]).portRange, undefined);
  for (const bad of ["3000-2000", "0-10", "1-70000", "ports", "1024-"]) {
    assert.throws(
      () => parseCli(["--port-range", bad]),
      (err: unknown) => err instanceof UsageError && /--port-range .*LO-HI/.test(err.message),
      bad,
    );
  }
});

Deno.test("parseCli() --help after check needs no -c", () => {
  assert.equal(parseCli(["check", "--help"]).help, true);
});
