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
