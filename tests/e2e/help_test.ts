/**
 * `wmproxy [SUBCOMMAND] --help` as a process: each prints its own help (the
 * texts tests/unit/cli/help_test.ts checks against the parser) and exits 0.
 */
import assert from "node:assert/strict";
import { runWmproxy } from "./_harness.ts";
import { MAIN_USAGE, usageFor } from "@/cli/usage.ts";
import type { Command } from "@/cli/args.ts";

Deno.test("help: every subcommand's --help prints its own help and exits 0", async () => {
  const commands: Command[] = [
    "check",
    "gen-cert",
    "install-service",
    "status",
    "reload",
    "stop",
    "ws-proxy",
    "file-server",
    "reverse-proxy",
  ];
  const cases: [string[], string][] = [
    [["--help"], MAIN_USAGE],
    [["help"], MAIN_USAGE],
    [["--mode", "server", "-h"], MAIN_USAGE],
    ...commands.map((c): [string[], string] => [[c, "--help"], usageFor(c)]),
  ];
  const results = await Promise.all(cases.map(([args]) => runWmproxy(args)));
  results.forEach((r, i) => {
    const [args, text] = cases[i]!;
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, `${text}\n`, args.join(" "));
  });
  assert.notEqual(usageFor("file-server"), MAIN_USAGE);
});
