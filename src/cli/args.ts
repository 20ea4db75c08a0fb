/**
 * Command-line parsing into a typed {@link CliOptions}. Anything unexpected is a
 * {@link UsageError} (exit code 2) that says what was expected.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LogFormat, LogLevel } from "../observability/log.ts";
import type { ProxyProtocol } from "../config/types.ts";
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
  /** Tunnel server: `--allow-egress` rules, added to `server.egress.allow`. */
  allowEgress: string[];
  /** Tunnel client: `--map` values, parsed to raw mapping objects. */
  maps: Record<string, unknown>[];
  /** Tunnel server: public HTTP and HTTPS listeners for mappings. */
  http: string | undefined;
  https: string | undefined;
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

/** Parses `argv` (without the program name). Throws {@link UsageError}. */
export function parseCli(argv: readonly string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
        mode: { type: "string" },
        config: { type: "string", short: "c" },
        "log-format": { type: "string" },
        "log-level": { type: "string" },
        bind: { type: "string" },
        user: { type: "string" },
        pass: { type: "string" },
        protocols: { type: "string" },
        "allow-open": { type: "boolean" },
        listen: { type: "string" },
        token: { type: "string" },
        server: { type: "string" },
        ca: { type: "string" },
        pin: { type: "string" },
        insecure: { type: "boolean" },
        "no-tls": { type: "boolean" },
        name: { type: "string" },
        "state-dir": { type: "string" },
        out: { type: "string" },
        map: { type: "string", multiple: true },
        "allow-egress": { type: "string", multiple: true },
        http: { type: "string" },
        https: { type: "string" },
        names: { type: "string" },
        force: { type: "boolean" },
        "service-user": { type: "string" },
        admin: { type: "string" },
        from: { type: "string" },
        root: { type: "string" },
        browse: { type: "boolean" },
        to: { type: "string" },
        "admin-token": { type: "string" },
        output: { type: "string" },
        bin: { type: "string" },
      },
    });
  } catch (err) {
    const message = (err as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) throw new UsageError(`Cannot use option ${unknown[1]}: no such option`);
    const missing = /Option '([^']+)' argument missing/.exec(message);
    if (missing) throw new UsageError(`Cannot use option ${missing[1]}: it needs a value`);
    throw new UsageError(`Cannot parse the command line: ${message.split(". ")[0]}`);
  }
  const { values, positionals } = parsed;
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
  if (values.version) command = "version";

  const bind = values.bind;
  if (bind !== undefined) {
    try {
      parseHostPort(bind);
    } catch {
      throw new UsageError(
        `Cannot use --bind ${JSON.stringify(bind)}: expected host:port, e.g. 127.0.0.1:8090`,
      );
    }
  }
  if (sub !== "install-service" && (values.user === undefined) !== (values.pass === undefined)) {
    throw new UsageError("Cannot use --user without --pass (or --pass without --user): give both");
  }
  let protocols: ProxyProtocol[] | undefined;
  if (values.protocols !== undefined) {
    protocols = values.protocols.split(",").map((p) => oneOf("--protocols", p.trim(), PROTOCOLS)!);
  }
  if (command === "check" && values.config === undefined) {
    throw new UsageError("Cannot run check: it needs -c FILE");
  }
  return {
    command,
    mode: command === "ws-proxy" ? undefined : oneOf("--mode", values.mode, MODES),
    wsProxy: command === "ws-proxy"
      ? { from: values.from, to: values.to, mode: values.mode }
      : undefined,
    fileServer: command === "file-server"
      ? { root: values.root, listen: values.listen, browse: values.browse ?? false }
      : undefined,
    reverseProxy: command === "reverse-proxy" ? { from: values.from, to: values.to } : undefined,
    config: values.config,
    help: values.help ?? false,
    logFormat: oneOf("--log-format", values["log-format"], ["text", "json"] as const),
    logLevel: oneOf(
      "--log-level",
      values["log-level"],
      ["debug", "info", "warn", "error"] as const,
    ),
    bind,
    user: values.user,
    pass: values.pass,
    protocols,
    allowOpen: values["allow-open"] ?? false,
    listen: values.listen,
    token: values.token,
    server: values.server,
    ca: values.ca,
    pin: values.pin,
    insecure: values.insecure ?? false,
    noTls: values["no-tls"] ?? false,
    name: values.name,
    stateDir: values["state-dir"],
    out: values.out,
    maps: (values.map ?? []).map((m) => {
      try {
        return parseMapFlag(m);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }),
    allowEgress: (values["allow-egress"] ?? []).map((rule) => {
      try {
        parseEgressRule(rule);
      } catch (err) {
        throw new UsageError(
          `Cannot use --allow-egress ${JSON.stringify(rule)}: ${(err as Error).message}`,
        );
      }
      return rule;
    }),
    http: values.http,
    https: values.https,
    names: values.names?.split(",").map((n) => n.trim()).filter((n) => n !== ""),
    force: values.force ?? false,
    serviceUser: values["service-user"] ??
      (command === "install-service" ? values.user : undefined),
    output: values.output,
    admin: values.admin,
    adminToken: values["admin-token"],
    bin: values.bin,
  };
}
