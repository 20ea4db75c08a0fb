/**
 * Command-line parsing into a typed {@link CliOptions}. Anything unexpected is a
 * {@link UsageError} (exit code 2) that says what was expected.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LogFormat, LogLevel } from "../observability/log.ts";
import type { PortRange, ProxyProtocol } from "../config/types.ts";
import { parsePortRange } from "../config/validate.ts";
import { parseHostPort } from "../transport/conn.ts";
import { parseMapFlag } from "../config/map_flag.ts";
import { parseEgressRule } from "../proxy/egress_policy.ts";

/** A bad command line; printed with a hint and exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What to do. */
export type Command =
  | "run"
  | "check"
  | "version"
  | "help"
  | "gen-cert"
  | "install-service"
  | "status"
  | "reload"
  | "stop"
  | "ws-proxy"
  | "file-server"
  | "reverse-proxy";

/** The role(s) to run. */
export type Mode = "proxy" | "client" | "server" | "reverse";

/** The parsed command line. */
export interface CliOptions {
  command: Command;
  mode: Mode | undefined;
  config: string | undefined;
  help: boolean;
  logFormat: LogFormat | undefined;
  logLevel: LogLevel | undefined;
  bind: string | undefined;
  user: string | undefined;
  pass: string | undefined;
  protocols: ProxyProtocol[] | undefined;
  allowOpen: boolean;
  /** Tunnel server: listen address. */
  listen: string | undefined;
  /** Tunnel token (server: accepted; client: presented). */
  token: string | undefined;
  /** Tunnel client: the server, `host:port`. */
  server: string | undefined;
  ca: string | undefined;
  pin: string | undefined;
  insecure: boolean;
  noTls: boolean;
  name: string | undefined;
  stateDir: string | undefined;
  /** Tunnel client: `--map` values, parsed to raw mapping objects. */
  maps: Record<string, unknown>[];
  /** Tunnel server: public HTTP and HTTPS listeners for mappings. */
  http: string | undefined;
  https: string | undefined;
  /** Tunnel server: `--allow-egress` rules, added to `server.egress.allow`. */
  allowEgress: string[];
  /** Tunnel server: `--port-range`, the ports tcp/udp mappings may use. */
  portRange: PortRange | undefined;
  /** gen-cert: output directory. */
  out: string | undefined;
  /** gen-cert: names for the server certificate. */
  names: string[] | undefined;
  /** gen-cert: replace existing files. */
  force: boolean;
  /** file-server: the directory to serve and whether to list directories. */
  fileServer: { root: string | undefined; listen: string | undefined; browse: boolean } | undefined;
  /** reverse-proxy: listen address and upstream URL. */
  reverseProxy: { from: string | undefined; to: string | undefined } | undefined;
  /** ws-proxy: the bridge to run (validated by the stream section). */
  wsProxy:
    | { from: string | undefined; to: string | undefined; mode: string | undefined }
    | undefined;
  /** Control API: listen address (run) or URL (status/reload/stop). */
  admin: string | undefined;
  adminToken: string | undefined;
  /** install-service: run as this user (default: a DynamicUser). */
  serviceUser: string | undefined;
  /** install-service: where to write the unit. */
  output: string | undefined;
  /** install-service: the wmproxy executable to start. */
  bin: string | undefined;
}

/**
 * Where a flag is documented: a section of the main help (a mode, or
 * "common") or a subcommand's own help ("control" = status, reload, stop).
 */
export type HelpScope =
  | "common"
  | "proxy"
  | "server"
  | "client"
  | "reverse"
  | "check"
  | "gen-cert"
  | "install-service"
  | "control"
  | "ws-proxy"
  | "file-server"
  | "reverse-proxy";

/** One scope's help line for a flag: the text, or a placeholder and the text. */
export type FlagHelp = string | { value: string; text: string };

/** One command-line flag: what the parser accepts and what the help says, in one place. */
export interface FlagSpec {
  /** The long name, without `--`. */
  readonly name: string;
  readonly short?: string;
  /** The value's placeholder in the help (`ADDR`); a flag without one is a switch. */
  readonly value?: string;
  /** May be given more than once. */
  readonly multiple?: boolean;
  /** Its help line in each scope where it applies (continuation lines after `\n`). */
  readonly help: Readonly<Partial<Record<HelpScope, FlagHelp>>>;
}

const LOG_FORMAT = 'text (default) or json (one JSON object per line, with an "event" name)';
const LOG_LEVEL = "debug, info (default), warn or error";
const ADMIN = "serve the control API (status, metrics, dashboard) here";
const ADMIN_TOKEN = "require Authorization: Bearer TOKEN on it";

/**
 * Every flag the program accepts. The parser's options ({@link PARSER_OPTIONS})
 * and every help text (src/cli/usage.ts) are built from this table, so a flag
 * cannot be added to one without the other (tests/unit/cli/help_test.ts).
 */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: "mode",
    value: "MODE",
    help: {
      common: "proxy, server, client or reverse (see Modes)\n" +
        "[default: every section of -c FILE; without -c: proxy]",
      check: "check only what --mode MODE would run",
      "install-service": "the mode the unit runs        [default: the sections of -c FILE]",
      "ws-proxy": { value: "ws2tcp|tcp2ws|tcp2wss", text: "the direction (see above)" },
    },
  },
  {
    name: "config",
    short: "c",
    value: "FILE",
    help: {
      common: "YAML config (or TOML when the name ends in .toml); flags override it",
      reverse: "the file whose http: section runs (required)",
      check: "the config file to check (required)",
      "install-service": "the config file the unit runs (made absolute)",
      control: "read admin.listen and admin.token from this file",
    },
  },
  {
    name: "listen",
    value: "ADDR",
    help: {
      server: "tunnel listen address           [default: 127.0.0.1:8091]",
      "file-server": "listen address                  [default: 127.0.0.1:8080]",
    },
  },
  { name: "server", value: "HOST:PORT", help: { client: "the tunnel server (required)" } },
  {
    name: "token",
    value: "TOKEN",
    help: {
      server: "the token clients must prove (at least 8 characters)",
      client: "one of the server's tokens (required)",
    },
  },
  {
    name: "bind",
    value: "ADDR",
    help: {
      proxy: "listen address                  [default: 127.0.0.1:8090]",
      client: "local proxy port                [default: 127.0.0.1:8090]",
    },
  },
  {
    name: "ca",
    value: "FILE",
    help: { client: "trust the CA file the server printed at its first start" },
  },
  {
    name: "pin",
    value: "SHA256",
    help: { client: "or: trust only the certificate with this fingerprint" },
  },
  {
    name: "insecure",
    help: { client: "or: do not verify the server at all (warns at every connect)" },
  },
  { name: "name", value: "NAME", help: { client: "this client's name in the server's logs" } },
  {
    name: "map",
    value: "SPEC",
    multiple: true,
    help: {
      client: "expose a LAN service on the server (repeatable); SPEC is one of\n" +
        "NAME=http:HOST:PORT@DOMAIN,…   by Host, on the server's --http port\n" +
        "NAME=https:HOST:PORT@DOMAIN,…  by SNI, on the server's --https port\n" +
        "NAME=tcp:HOST:PORT@:PORT       a public TCP port (:0 = any free one)\n" +
        "NAME=udp:HOST:PORT@:PORT       a public UDP port (:0 = any free one)",
    },
  },
  {
    name: "user",
    value: "NAME",
    help: {
      proxy: "require this user (HTTP Basic and SOCKS5 user/password)",
      server: "require this user of the clients' traffic (with --pass)",
      "install-service": {
        value: "USER",
        text: "run as this user  [default: a transient DynamicUser]",
      },
    },
  },
  {
    name: "pass",
    value: "PASSWORD",
    help: {
      proxy: "the user's password (with --user)",
      server: "the user's password (with --user)",
    },
  },
  {
    name: "protocols",
    value: "LIST",
    help: {
      proxy: "comma-separated: http,https,socks5   [default: all three]",
      server: "what the clients' traffic may use: http,https,socks5  [default: all three]",
    },
  },
  {
    name: "allow-open",
    help: { proxy: "allow a proxy without --user on a non-loopback address" },
  },
  {
    name: "names",
    value: "LIST",
    help: {
      server: "names clients use to reach this server, in a generated certificate\n" +
        "[default: localhost,127.0.0.1,::1]",
      "gen-cert": "comma-separated DNS names and IPs of the server\n" +
        "[default: localhost,127.0.0.1,::1]",
    },
  },
  {
    name: "state-dir",
    value: "DIR",
    help: {
      server: "where the generated CA and certificate live\n" +
        "[default: $XDG_STATE_HOME/wmproxy or ~/.local/state/wmproxy]",
      "gen-cert": "the server state directory to write to (when no --out)",
    },
  },
  {
    name: "http",
    value: "ADDR",
    help: { server: "public HTTP port for http mappings, routed by Host, e.g. 0.0.0.0:80" },
  },
  {
    name: "https",
    value: "ADDR",
    help: { server: "public HTTPS port for https mappings, routed by SNI, e.g. 0.0.0.0:443" },
  },
  {
    name: "port-range",
    value: "LO-HI",
    help: {
      server: "ports tcp/udp mappings may use (server.port_range)\n" +
        "[default: 1024-65535; ports below 1024 need privileges]",
    },
  },
  {
    name: "allow-egress",
    value: "RULE",
    multiple: true,
    help: {
      server: "let clients' traffic reach RULE (repeatable; server.egress.allow), e.g.\n" +
        "127.0.0.0/8, 127.0.0.1:6379, *.internal. Loopback, link-local and\n" +
        "this server's own ports are refused by default",
    },
  },
  {
    name: "no-tls",
    help: {
      server: "plain TCP tunnel (only on trusted networks)",
      client: "plain TCP tunnel (the server must use --no-tls too)",
    },
  },
  {
    name: "out",
    value: "DIR",
    help: {
      "gen-cert": "where to write ca.pem, ca.key, server.pem, server.key\n" +
        "[default: the server state directory]",
    },
  },
  { name: "force", help: { "gen-cert": "replace existing files" } },
  {
    name: "service-user",
    value: "USER",
    help: { "install-service": "the same as --user (which install-service reads as this)" },
  },
  {
    name: "output",
    value: "FILE",
    help: {
      "install-service": "where to write the unit\n" +
        "[default: /etc/systemd/system/wmproxy.service,\n" +
        " or /etc/systemd/system/wmproxy-MODE.service with --mode]",
    },
  },
  {
    name: "bin",
    value: "PATH",
    help: {
      "install-service": "the wmproxy binary   [default: this binary, or deno run -A main.ts]",
    },
  },
  {
    name: "from",
    value: "ADDR",
    help: { "ws-proxy": "listen address (required)", "reverse-proxy": "listen address (required)" },
  },
  {
    name: "to",
    value: "TARGET",
    help: {
      "ws-proxy":
        "ws2tcp: host:port; tcp2ws/tcp2wss: a ws:// or wss:// URL, or host:port\n(required)",
      "reverse-proxy": { value: "URL", text: "the origin, e.g. http://127.0.0.1:3000 (required)" },
    },
  },
  { name: "root", value: "DIR", help: { "file-server": "the directory to serve [default: .]" } },
  { name: "browse", help: { "file-server": "list directories without an index file" } },
  {
    name: "admin",
    value: "ADDR",
    help: {
      common: `${ADMIN}, e.g. 127.0.0.1:8837`,
      control: {
        value: "URL",
        text: "the control API [default: admin.listen of -c FILE, else 127.0.0.1:8837]",
      },
      "ws-proxy": ADMIN,
      "file-server": ADMIN,
      "reverse-proxy": ADMIN,
    },
  },
  {
    name: "admin-token",
    value: "TOKEN",
    help: {
      common: ADMIN_TOKEN,
      control: "send Authorization: Bearer TOKEN   [default: admin.token of -c FILE]",
      "ws-proxy": ADMIN_TOKEN,
      "file-server": ADMIN_TOKEN,
      "reverse-proxy": ADMIN_TOKEN,
    },
  },
  {
    name: "log-format",
    value: "FORMAT",
    help: {
      common: LOG_FORMAT,
      "ws-proxy": LOG_FORMAT,
      "file-server": LOG_FORMAT,
      "reverse-proxy": LOG_FORMAT,
    },
  },
  {
    name: "log-level",
    value: "LEVEL",
    help: {
      common: LOG_LEVEL,
      "ws-proxy": LOG_LEVEL,
      "file-server": LOG_LEVEL,
      "reverse-proxy": LOG_LEVEL,
    },
  },
  { name: "help", short: "h", help: { common: "show help (after a subcommand: its own help)" } },
  { name: "version", short: "V", help: { common: "print the version" } },
];

/** The `node:util` `parseArgs` options, built from {@link FLAGS}. */
export const PARSER_OPTIONS: Readonly<
  Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>
> = Object.fromEntries(FLAGS.map((f) => [f.name, {
  type: f.value === undefined ? "boolean" : "string",
  ...(f.short === undefined ? {} : { short: f.short }),
  ...(f.multiple ? { multiple: true } : {}),
}]));

const MODES: readonly Mode[] = ["proxy", "client", "server", "reverse"];
const COMMANDS: readonly Command[] = [
  "run",
  "check",
  "version",
  "help",
  "gen-cert",
  "install-service",
  "status",
  "reload",
  "stop",
  "ws-proxy",
  "file-server",
  "reverse-proxy",
];
const PROTOCOLS: readonly ProxyProtocol[] = ["http", "https", "socks5"];

type Values = Record<string, string | boolean | string[] | undefined>;
const str = (values: Values, name: string): string | undefined => {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
};
const bool = (values: Values, name: string): boolean => values[name] === true;
const list = (values: Values, name: string): string[] => {
  const v = values[name];
  return Array.isArray(v) ? v : [];
};

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) {
    throw new UsageError(
      `Cannot use ${flag} ${JSON.stringify(value)}: expected one of ${allowed.join(", ")}`,
    );
  }
  return value as T;
}

/** `--port-range LO-HI` (or one port) as a range within 1-65535. */
function portRange(text: string | undefined): PortRange | undefined {
  if (text === undefined) return undefined;
  const range = parsePortRange(text);
  if (range === undefined) {
    throw new UsageError(
      `Cannot use --port-range ${
        JSON.stringify(text)
      }: expected LO-HI within 1-65535, e.g. 1024-65535`,
    );
  }
  return range;
}

/** Parses `argv` (without the program name). Throws {@link UsageError}. */
export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: PARSER_OPTIONS,
    });
  } catch (err) {
    const message = (err as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) throw new UsageError(`Cannot use option ${unknown[1]}: no such option`);
    const missing = /Option '([^']+)' argument missing/.exec(message);
    if (missing) throw new UsageError(`Cannot use option ${missing[1]}: it needs a value`);
    throw new UsageError(`Cannot parse the command line: ${message.split(". ")[0]}`);
  }
  const { positionals } = parsed;
  const values = parsed.values as Values;
  if (positionals.length > 1) {
    throw new UsageError(
      `Cannot use argument ${JSON.stringify(positionals[1])}: only one subcommand is allowed`,
    );
  }
  const sub = positionals[0];
  let command: Command = "run";
  if (sub !== undefined) {
    if (!COMMANDS.includes(sub as Command) || sub === "run") {
      throw new UsageError(
        `Cannot run subcommand ${JSON.stringify(sub)}: expected one of ${
          COMMANDS.filter((c) => c !== "run").join(", ")
        } (or none)`,
      );
    }
    command = sub as Command;
  }
  if (bool(values, "version")) command = "version";

  const bind = str(values, "bind");
  if (bind !== undefined) {
    try {
      parseHostPort(bind);
    } catch {
      throw new UsageError(
        `Cannot use --bind ${JSON.stringify(bind)}: expected host:port, e.g. 127.0.0.1:8090`,
      );
    }
  }
  const user = str(values, "user");
  const pass = str(values, "pass");
  if (sub !== "install-service" && (user === undefined) !== (pass === undefined)) {
    throw new UsageError("Cannot use --user without --pass (or --pass without --user): give both");
  }
  let protocols: ProxyProtocol[] | undefined;
  const protocolList = str(values, "protocols");
  if (protocolList !== undefined) {
    protocols = protocolList.split(",").map((p) => oneOf("--protocols", p.trim(), PROTOCOLS)!);
  }
  const config = str(values, "config");
  if (command === "check" && config === undefined && !bool(values, "help")) {
    throw new UsageError("Cannot run check: it needs -c FILE");
  }
  const mode = str(values, "mode");
  const from = str(values, "from");
  const to = str(values, "to");
  const listen = str(values, "listen");
  return {
    command,
    mode: command === "ws-proxy" ? undefined : oneOf("--mode", mode, MODES),
    wsProxy: command === "ws-proxy" ? { from, to, mode } : undefined,
    fileServer: command === "file-server"
      ? { root: str(values, "root"), listen, browse: bool(values, "browse") }
      : undefined,
    reverseProxy: command === "reverse-proxy" ? { from, to } : undefined,
    config,
    help: bool(values, "help"),
    logFormat: oneOf("--log-format", str(values, "log-format"), ["text", "json"] as const),
    logLevel: oneOf(
      "--log-level",
      str(values, "log-level"),
      ["debug", "info", "warn", "error"] as const,
    ),
    bind,
    user,
    pass,
    protocols,
    allowOpen: bool(values, "allow-open"),
    listen,
    token: str(values, "token"),
    server: str(values, "server"),
    ca: str(values, "ca"),
    pin: str(values, "pin"),
    insecure: bool(values, "insecure"),
    noTls: bool(values, "no-tls"),
    name: str(values, "name"),
    stateDir: str(values, "state-dir"),
    out: str(values, "out"),
    maps: list(values, "map").map((m) => {
      try {
        return parseMapFlag(m);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }),
    http: str(values, "http"),
    https: str(values, "https"),
    portRange: portRange(str(values, "port-range")),
    allowEgress: list(values, "allow-egress").map((rule) => {
      try {
        parseEgressRule(rule);
      } catch (err) {
        throw new UsageError(
          `Cannot use --allow-egress ${JSON.stringify(rule)}: ${(err as Error).message}`,
        );
      }
      return rule;
    }),
    names: str(values, "names")?.split(",").map((n) => n.trim()).filter((n) => n !== ""),
    force: bool(values, "force"),
    serviceUser: str(values, "service-user") ?? (command === "install-service" ? user : undefined),
    output: str(values, "output"),
    admin: str(values, "admin"),
    adminToken: str(values, "admin-token"),
    bin: str(values, "bin"),
  };
}
