/**
 * The help texts against the parser's option list: every flag the parser
 * accepts is listed in the help of each mode and subcommand it applies to,
 * and every flag a help text lists is one the parser accepts.
 */
import assert from "node:assert/strict";
import { type Command, FLAGS, type HelpScope, parseCli, PARSER_OPTIONS } from "@/cli/args.ts";
import { MAIN_USAGE, usageFor } from "@/cli/usage.ts";

/** The headings of the main help's flag sections, by scope. */
const MAIN_SECTIONS: Partial<Record<HelpScope, string>> = {
  proxy: "Forward proxy flags (--mode proxy):",
  server: "Tunnel server flags (--mode server):",
  client: "Tunnel client flags (--mode client):",
  reverse: "Reverse proxy flags (--mode reverse):",
  common: "Common flags:",
};

/** The subcommands with their own help, by scope. */
const SUBCOMMANDS: Partial<Record<HelpScope, Command[]>> = {
  check: ["check"],
  "gen-cert": ["gen-cert"],
  "install-service": ["install-service"],
  control: ["status", "reload", "stop"],
  "ws-proxy": ["ws-proxy"],
  "file-server": ["file-server"],
  "reverse-proxy": ["reverse-proxy"],
};

const ALL_SCOPES = [...Object.keys(MAIN_SECTIONS), ...Object.keys(SUBCOMMANDS)] as HelpScope[];

/** The flags a block of help lists: lines that start with `--name` or `-x, --name`. */
function listedFlags(text: string): string[] {
  const flags: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^ {2}(?:-[A-Za-z], )?--([a-z][a-z0-9-]*)/.exec(line);
    if (m) flags.push(m[1]!);
  }
  return flags;
}

/** The lines of `text` after `heading` up to the next blank line. */
function section(text: string, heading: string): string {
  const lines = text.split("\n");
  const at = lines.indexOf(heading);
  assert.ok(at >= 0, `the main help has no section "${heading}"`);
  const end = lines.indexOf("", at);
  return lines.slice(at + 1, end < 0 ? undefined : end).join("\n");
}

/** The flags of the table that apply in `scope`. */
function tableFlags(scope: HelpScope): string[] {
  return FLAGS.filter((f) => f.help[scope] !== undefined).map((f) => f.name);
}

/** Every help text `wmproxy [SUBCOMMAND] --help` prints, by what prints it. */
function allHelpTexts(): Map<string, string> {
  const texts = new Map<string, string>([["wmproxy --help", MAIN_USAGE]]);
  for (const commands of Object.values(SUBCOMMANDS)) {
    for (const c of commands!) texts.set(`wmproxy ${c} --help`, usageFor(c));
  }
  return texts;
}

Deno.test("help: the parser's options are exactly the flag table", () => {
  assert.deepEqual(Object.keys(PARSER_OPTIONS).sort(), FLAGS.map((f) => f.name).sort());
  for (const f of FLAGS) {
    const o = PARSER_OPTIONS[f.name]!;
    assert.equal(o.type, f.value === undefined ? "boolean" : "string", f.name);
    assert.equal(o.short, f.short, f.name);
  }
});

Deno.test("help: every flag the parser accepts is listed in some help text", () => {
  const listed = new Set<string>();
  for (const text of allHelpTexts().values()) {
    for (const f of listedFlags(text)) listed.add(f);
  }
  const missing = Object.keys(PARSER_OPTIONS).filter((name) => !listed.has(name));
  assert.deepEqual(missing, [], `accepted by the parser but in no --help: ${missing.join(", ")}`);
  for (const f of FLAGS) {
    assert.ok(
      ALL_SCOPES.some((s) => f.help[s] !== undefined),
      `--${f.name} applies to no mode or subcommand`,
    );
  }
});

Deno.test("help: each mode's section of the main help lists exactly its flags", () => {
  for (const [scope, heading] of Object.entries(MAIN_SECTIONS)) {
    const listed = listedFlags(section(MAIN_USAGE, heading));
    assert.deepEqual(listed, tableFlags(scope as HelpScope), heading);
  }
});

Deno.test("help: each subcommand's help lists exactly its flags", () => {
  for (const [scope, commands] of Object.entries(SUBCOMMANDS)) {
    for (const c of commands!) {
      const text = usageFor(c);
      assert.ok(text.startsWith("Usage: wmproxy "), c);
      assert.match(text, new RegExp(`\\b${c}\\b`), `the help of ${c} names it`);
      assert.deepEqual(listedFlags(text), tableFlags(scope as HelpScope), `wmproxy ${c} --help`);
    }
  }
});

Deno.test("help: every flag a help text mentions is accepted by the parser", () => {
  for (const [where, text] of allHelpTexts()) {
    const ours = text.split("\n").filter((line) => !/^\s*curl /.test(line)).join("\n");
    for (const m of ours.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)) {
      assert.ok(m[1]! in PARSER_OPTIONS, `${where} mentions --${m[1]}, which the parser refuses`);
    }
    for (const flag of listedFlags(text)) {
      const f = FLAGS.find((x) => x.name === flag)!;
      const args = f.value === undefined ? [`--${flag}`] : [`--${flag}=${sample(flag)}`];
      // --user and --pass come together
      if (flag === "user") args.push("--pass=x");
      if (flag === "pass") args.push("--user=x");
      assert.doesNotThrow(() => parseCli(args), `${where}: --${flag}`);
    }
  }
});

Deno.test("help: the intranet flags of the README are in the main help", () => {
  const server = section(MAIN_USAGE, MAIN_SECTIONS.server!);
  const client = section(MAIN_USAGE, MAIN_SECTIONS.client!);
  for (const flag of ["--http ADDR", "--https ADDR", "--port-range LO-HI"]) {
    assert.ok(server.includes(flag), `server flags lack ${flag}`);
  }
  assert.ok(client.includes("--map SPEC"), "client flags lack --map");
  assert.ok(client.includes("NAME=tcp:HOST:PORT@:PORT"), "--map shows its forms");
});

Deno.test("help: every help line fits in 100 columns", () => {
  for (const [where, text] of allHelpTexts()) {
    for (const line of text.split("\n")) {
      assert.ok([...line].length <= 100, `${where}: ${line.length} columns: ${line}`);
    }
  }
});

Deno.test("help: --help after a subcommand needs none of its required flags", () => {
  for (const commands of Object.values(SUBCOMMANDS)) {
    for (const c of commands!) {
      const cli = parseCli([c, "--help"]);
      assert.equal(cli.help, true);
      assert.equal(cli.command, c);
    }
  }
});

/** A value each string flag's parser accepts. */
function sample(flag: string): string {
  const values: Record<string, string> = {
    bind: "127.0.0.1:0",
    mode: "proxy",
    "log-format": "json",
    "log-level": "info",
    protocols: "http",
    "port-range": "1024-65535",
    map: "ssh=tcp:127.0.0.1:22@:2222",
  };
  return values[flag] ?? "x";
}
