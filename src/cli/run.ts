/**
 * The program: parse the command line, load the config, start the services,
 * stop them on SIGINT/SIGTERM. Returns the exit code (0 ok, 1 error, 2 usage).
 *
 * @module
 */
import { type CliOptions, parseCli, UsageError } from "./args.ts";
import { usageFor } from "./usage.ts";
import { lowPorts, renderSystemdUnit } from "../service/systemd_unit.ts";
import { certificateFingerprint, writeIdentity } from "../tls/mod.ts";
import { DEFAULT_ADMIN_LISTEN, defaultStateDir } from "../config/defaults.ts";
import { VERSION } from "../version.ts";
import {
  type Config,
  ConfigError,
  type ConfigInput,
  formatIssue,
  loadConfig,
  parseConfig,
  Secret,
  validateMappings,
  wsProxyStreamConfig,
} from "../config/mod.ts";
import { fileServerSectionConfig, reverseProxySectionConfig } from "../config/http_section.ts";
import { errorMessage, EVENTS, InternalErrors, Logger } from "../observability/mod.ts";
import type { HostPort } from "../transport/mod.ts";
import { type Program, startProgram } from "./program.ts";
import { V8_FLAGS_ARG } from "./v8_flags.ts";
import { type ReloadResult, startAdminServer } from "../admin/mod.ts";

/** Options for {@link run}. */
export interface RunOptions {
  /** Stops a running program as SIGTERM would. */
  signal?: AbortSignal;
}

const encoder = new TextEncoder();

function print(text: string): void {
  const bytes = encoder.encode(text + "\n");
  try {
    for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err; // e.g. piped into head: the reader is done
  }
}

function printError(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text + "\n"));
}

/** Which sections the command line asks for, besides those in the file. */
function wantedSections(cli: CliOptions): { proxy: boolean; server: boolean; client: boolean } {
  if (cli.mode === "proxy") return { proxy: true, server: false, client: false };
  if (cli.mode === "server") return { proxy: false, server: true, client: false };
  if (cli.mode === "client") return { proxy: false, server: false, client: true };
  if (cli.mode === "reverse") return { proxy: false, server: false, client: false };
  const proxyFlags = cli.bind !== undefined || cli.user !== undefined ||
    cli.protocols !== undefined ||
    cli.allowOpen;
  return {
    proxy: cli.config === undefined || proxyFlags,
    server: false,
    client: false,
  };
}

/** Applies quick flags over the file's (validated) input; `--mode` keeps only its section. */
function applyFlags(cli: CliOptions, input: ConfigInput): ConfigInput {
  const want = wantedSections(cli);
  // With --mode only that role runs (plus the control API and logging settings).
  const out: ConfigInput = cli.mode === undefined ? { ...input } : {
    log: input.log,
    admin: input.admin,
    ...(cli.mode === "reverse" ? { http: input.http } : {}),
  };
  if (want.proxy) {
    const proxy = { ...(input.proxy ?? {}) };
    if (cli.bind !== undefined) proxy.bind = cli.bind;
    if (cli.user !== undefined && cli.pass !== undefined) {
      proxy.users = [{ username: cli.user, password: new Secret(cli.pass) }];
    }
    if (cli.protocols !== undefined) proxy.protocols = cli.protocols;
    if (cli.allowOpen) proxy.allow_open = true;
    out.proxy = proxy;
  }
  if (want.server) {
    const server = { ...(input.server ?? {}) };
    if (cli.listen !== undefined) server.listen = cli.listen;
    if (cli.token !== undefined) {
      server.tokens = [{ name: "default", token: new Secret(cli.token) }];
    }
    if (cli.stateDir !== undefined) server.state_dir = cli.stateDir;
    if (cli.names !== undefined) server.tls = { ...(server.tls ?? {}), names: cli.names };
    if (cli.noTls) server.tls = { ...(server.tls ?? {}), enabled: false };
    if (cli.user !== undefined && cli.pass !== undefined) {
      server.proxy = {
        ...(server.proxy ?? {}),
        users: [{ username: cli.user, password: new Secret(cli.pass) }],
      };
    }
    if (cli.protocols !== undefined) {
      server.proxy = { ...(server.proxy ?? {}), protocols: cli.protocols };
    }
    if (cli.http !== undefined) server.http_bind = cli.http;
    if (cli.https !== undefined) server.https_bind = cli.https;
    if (cli.portRange !== undefined) server.port_range = cli.portRange;
    out.server = server;
  }
  if (want.client) {
    const client = { ...(input.client ?? {}) };
    if (cli.server !== undefined) client.server = cli.server;
    if (cli.token !== undefined) client.token = new Secret(cli.token);
    if (cli.bind !== undefined) client.bind = cli.bind;
    if (cli.name !== undefined) client.name = cli.name;
    const tls = { ...(client.tls ?? {}) };
    if (cli.ca !== undefined) tls.ca = cli.ca;
    if (cli.pin !== undefined) tls.pin_sha256 = cli.pin;
    if (cli.insecure) tls.insecure = true;
    if (cli.noTls) tls.enabled = false;
    client.tls = tls;
    if (cli.maps.length > 0) {
      const { mappings, issues } = validateMappings(cli.maps);
      if (issues.length > 0) throw new ConfigError("--map", issues);
      client.mappings = [...(client.mappings ?? []), ...mappings];
    }
    out.client = client;
  }
  if (cli.allowEgress.length > 0 && out.server !== undefined) {
    const egress = out.server.egress ?? {};
    out.server = {
      ...out.server,
      egress: { ...egress, allow: [...(egress.allow ?? []), ...cli.allowEgress] },
    };
  }
  if (cli.admin !== undefined || cli.adminToken !== undefined) {
    out.admin = {
      ...(input.admin ?? {}),
      ...(cli.admin === undefined ? {} : { listen: cli.admin }),
      ...(cli.adminToken === undefined ? {} : { token: new Secret(cli.adminToken) }),
    };
  }
  if (cli.logFormat !== undefined || cli.logLevel !== undefined) {
    out.log = {
      ...(input.log ?? {}),
      ...(cli.logFormat === undefined ? {} : { format: cli.logFormat }),
      ...(cli.logLevel === undefined ? {} : { level: cli.logLevel }),
    };
  }
  return out;
}

async function buildConfig(cli: CliOptions): Promise<Config> {
  if (cli.fileServer !== undefined || cli.reverseProxy !== undefined) {
    const base = parseConfig("", { source: "command line", override: (i) => applyFlags(cli, i) });
    let http;
    try {
      http = cli.fileServer
        ? fileServerSectionConfig({
          root: cli.fileServer.root ?? ".",
          ...(cli.fileServer.listen === undefined ? {} : { listen: cli.fileServer.listen }),
          browse: cli.fileServer.browse,
        })
        : reverseProxySectionConfig({
          from: cli.reverseProxy!.from ?? "",
          to: cli.reverseProxy!.to ?? "",
        });
    } catch (err) {
      if (err instanceof SyntaxError) throw new UsageError(err.message);
      throw err;
    }
    return { ...base, proxy: undefined, http };
  }
  if (cli.wsProxy !== undefined) {
    const base = parseConfig("", { source: "command line", override: (i) => applyFlags(cli, i) });
    const stream = wsProxyStreamConfig({
      from: cli.wsProxy.from ?? "",
      to: cli.wsProxy.to ?? "",
      mode: cli.wsProxy.mode ?? "",
    });
    return { ...base, proxy: undefined, stream };
  }
  const override = (input: ConfigInput) => applyFlags(cli, input);
  if (cli.config !== undefined) return await loadConfig(cli.config, { override });
  return parseConfig("", { source: "command line", override });
}

/**
 * Waits for SIGINT, SIGTERM or `signal`, whichever comes first. SIGHUP calls
 * `onHangup` (systemctl reload) and keeps waiting.
 */
function waitForStop(signal: AbortSignal | undefined, onHangup: () => void): Promise<string> {
  return new Promise((resolve) => {
    const handlers: [Deno.Signal, () => void][] = [];
    try {
      Deno.addSignalListener("SIGHUP", onHangup);
      handlers.push(["SIGHUP", onHangup]);
    } catch {
      // no SIGHUP on Windows
    }
    const done = (why: string) => {
      for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
      signal?.removeEventListener("abort", onAbort);
      resolve(why);
    };
    const onAbort = () => done("abort");
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const h = () => done(sig);
      try {
        Deno.addSignalListener(sig, h);
        handlers.push([sig, h]);
      } catch {
        // SIGTERM cannot be listened to on Windows; SIGINT (Ctrl-C) still works.
      }
    }
    if (signal?.aborted) done("abort");
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function serve(cli: CliOptions, options: RunOptions): Promise<number> {
  let config: Config;
  try {
    config = await buildConfig(cli);
  } catch (err) {
    if (err instanceof ConfigError) {
      printError(`wmproxy: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const log = new Logger({ level: config.log.level, format: config.log.format });
  // First of all: a stray rejection or exception is logged and counted, never fatal.
  const internalErrors = new InternalErrors(log);
  using _lastResort = internalErrors.install();
  const sections = (["proxy", "server", "client", "stream", "http"] as const).filter((s) =>
    config[s] !== undefined
  );
  if (sections.length === 0) {
    log.error(EVENTS.fatal, {
      error:
        `Cannot start: ${
          cli.config ?? "the config"
        } has no section to run; add one of "proxy:", "server:", "client:", "stream:" ` +
        `or "http:" (--mode reverse runs the "http:" section of -c FILE)`,
    });
    return 1;
  }
  log.info(EVENTS.starting, { version: VERSION, pid: Deno.pid, sections });
  await using stack = new AsyncDisposableStack();
  const stopper = new AbortController();
  options.signal?.addEventListener("abort", () => stopper.abort(), { once: true });
  // Reload (SIGHUP, POST /api/reload): re-read and validate; on success apply
  // it section by section, keeping what did not change. One reload at a time.
  let program: Program | undefined;
  let reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, message: "" });
  const reloadOnce = async (): Promise<ReloadResult> => {
    let next: Config;
    try {
      next = await buildConfig(cli);
    } catch (err) {
      log.error(EVENTS.reload, {
        result: "invalid, kept the running config",
        error: errorMessage(err),
      });
      const errors = err instanceof ConfigError ? err.issues.map(formatIssue) : [errorMessage(err)];
      return { ok: false, message: "the config is invalid; the running config is kept", errors };
    }
    if (program === undefined) {
      return { ok: false, message: "the program is still starting; try again" };
    }
    const report = await program.reload(next);
    const ok = report.failed.length === 0;
    log.info(EVENTS.reload, { result: ok ? "applied" : "applied with failures" });
    return {
      ok,
      message: ok ? "applied" : "applied, but some sections could not start",
      ...(ok ? {} : { errors: report.failed.map((f) => `${f.section}: ${f.error}`) }),
      report,
    };
  };
  const recheck = (): Promise<ReloadResult> => reloading = reloading.then(reloadOnce, reloadOnce);
  // Signal handlers go in before any listener exists, so a signal that comes
  // right after a "listening" event never meets the default (fatal) action.
  const stopped = waitForStop(stopper.signal, () => void recheck());
  try {
    let adminAddr: HostPort | undefined;
    const started = stack.use(
      await startProgram(config, log, {
        extraListeners: () => adminAddr ? [adminAddr] : [],
        internalErrors: () => internalErrors.count,
      }),
    );
    program = started;
    if (config.admin !== undefined) {
      adminAddr = stack.use(startAdminServer(config.admin.listen, {
        log,
        token: config.admin.token?.reveal(),
        hosts: config.admin.hosts,
        status: () => started.status(),
        reload: recheck,
        stop: () => stopper.abort(),
      })).addr;
    }
  } catch (err) {
    log.error(EVENTS.fatal, { error: errorMessage(err) });
    stopper.abort();
    await stopped;
    return 1;
  }
  const why = await stopped;
  log.info(EVENTS.stopping, { reason: why });
  await stack.disposeAsync();
  log.info(EVENTS.stopped, {});
  return 0;
}

async function check(cli: CliOptions): Promise<number> {
  try {
    const config = await buildConfig(cli);
    const sections = Object.entries(config).filter(([k, v]) => k !== "log" && v !== undefined)
      .map(([k]) => k);
    print(`ok: ${cli.config} (sections: ${sections.length === 0 ? "none" : sections.join(", ")})`);
    if (config.proxy) print(`  proxy listens on ${config.proxy.bind}`);
    if (config.server) print(`  tunnel server listens on ${config.server.listen}`);
    if (config.client) {
      print(
        `  tunnel client connects to ${config.client.server}` +
          (config.client.bind ? `, local proxy port ${config.client.bind}` : ""),
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      printError(err.message);
      return 1;
    }
    throw err;
  }
}

/** The command-line words to repeat in the unit: all but install-service's own. */
function serviceArgs(argv: readonly string[]): string[] {
  const own = new Set(["--output", "--bin", "--service-user", "--user"]);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "install-service") continue;
    const name = a.split("=")[0]!;
    if (own.has(name)) {
      if (!a.includes("=")) i++;
      continue;
    }
    if (a === "-c" || a === "--config") {
      const file = argv[++i] ?? "";
      out.push(a, file.startsWith("/") ? file : `${Deno.cwd()}/${file}`);
      continue;
    }
    out.push(a);
  }
  if (!out.includes("--log-format")) out.push("--log-format", "json");
  return out;
}

async function installService(cli: CliOptions, argv: readonly string[]): Promise<number> {
  let config: Config;
  try {
    config = await buildConfig(cli);
  } catch (err) {
    if (err instanceof ConfigError) {
      printError(`wmproxy: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const absolute = (p: string) => (p.startsWith("/") ? p : `${Deno.cwd()}/${p}`);
  const self = Deno.execPath();
  const compiled = !/(^|\/)deno(\.exe)?$/.test(self);
  const exec = cli.bin !== undefined
    ? [absolute(cli.bin)]
    : compiled
    ? [self]
    : [self, "run", "-A", V8_FLAGS_ARG, new URL("../../main.ts", import.meta.url).pathname];
  const args = serviceArgs(argv);
  const secretInArgs = args.some((a) =>
    a === "--token" || a === "--pass" || a.startsWith("--token=") || a.startsWith("--pass=")
  );
  const ports = lowPorts([
    config.proxy?.bind,
    config.server?.listen,
    config.server?.http_bind,
    config.server?.https_bind,
    config.client?.bind,
  ]);
  const unit = renderSystemdUnit({
    execStart: [...exec, ...args],
    description: cli.mode ?? "proxy",
    user: cli.serviceUser,
    bindsLowPorts: ports.length > 0,
    readWritePaths: [],
  });
  const name = cli.mode ? `wmproxy-${cli.mode}` : "wmproxy";
  const output = cli.output ?? `/etc/systemd/system/${name}.service`;
  try {
    await Deno.writeTextFile(output, unit, { mode: secretInArgs ? 0o600 : 0o644 });
  } catch (err) {
    printError(
      `wmproxy: Cannot write "${output}": ${
        errorMessage(err)
      } (run as root, or pass --output FILE)`,
    );
    return 1;
  }
  print(
    `wrote ${output}${
      ports.length > 0 ? ` (CAP_NET_BIND_SERVICE for port ${ports.join(", ")})` : ""
    }`,
  );
  if (secretInArgs) {
    print(
      "note:   the unit holds a secret from the command line (mode 0600); a config file (-c) keeps it out of ps",
    );
  }
  print(`next:   systemctl daemon-reload && systemctl enable --now ${name}.service`);
  print(`logs:   journalctl -u ${name} -f`);
  print(`reload: systemctl reload ${name}   (SIGHUP)`);
  return 0;
}

async function genCert(cli: CliOptions): Promise<number> {
  const dir = cli.out ?? cli.stateDir ?? defaultStateDir();
  try {
    const id = await writeIdentity(dir, {
      ...(cli.names ? { names: cli.names } : {}),
      overwrite: cli.force,
    });
    print(`created ${dir}/ca.pem, ca.key, server.pem, server.key`);
    print(`CA fingerprint (SHA-256):     ${id.fingerprint}`);
    print(`server certificate (SHA-256): ${await certificateFingerprint(id.cert)}`);
    print(`server:  server.tls.cert: "${dir}/server.pem"  server.tls.key: "${dir}/server.key"`);
    print(`         (or server.state_dir: "${dir}", where it finds them by itself)`);
    print(`clients: client.tls.ca: "${dir}/ca.pem"  (or --ca ${dir}/ca.pem)`);
    return 0;
  } catch (err) {
    printError(`wmproxy: ${errorMessage(err)}`);
    return 1;
  }
}

/** `wmproxy status|reload|stop`: talks to a running instance's control API. */
async function control(cli: CliOptions): Promise<number> {
  let base = cli.admin;
  let token = cli.adminToken;
  if (cli.config !== undefined) {
    try {
      const config = await loadConfig(cli.config);
      base ??= config.admin?.listen;
      token ??= config.admin?.token?.reveal();
    } catch (err) {
      printError(`wmproxy: ${errorMessage(err)}`);
      return 1;
    }
  }
  base ??= DEFAULT_ADMIN_LISTEN;
  const url = new URL(/^https?:\/\//.test(base) ? base : `http://${base}`);
  url.pathname = cli.command === "status" ? "/api/status" : `/api/${cli.command}`;
  let res: Response;
  try {
    const post = cli.command !== "status";
    res = await fetch(url, {
      method: post ? "POST" : "GET",
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        // The control API takes only JSON POSTs (a web page cannot send those cross-site).
        ...(post ? { "content-type": "application/json" } : {}),
      },
      ...(post ? { body: "{}" } : {}),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    printError(
      `wmproxy: Cannot reach the control API at ${url.origin}: ${errorMessage(err)} ` +
        "(is wmproxy running with an admin section or --admin ADDR?)",
    );
    return 1;
  }
  const body = await res.text();
  if (!res.ok) {
    printError(`wmproxy: ${cli.command} failed with HTTP ${res.status}: ${body.trim()}`);
    return 1;
  }
  print(body.trimEnd());
  return 0;
}

/** Runs the program with `argv` (without the program name); resolves to the exit code. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<number> {
  let cli: CliOptions;
  try {
    cli = parseCli(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      printError(`wmproxy: ${err.message}\nRun "wmproxy --help" for usage.`);
      return 2;
    }
    throw err;
  }
  if (cli.help || cli.command === "help") {
    print(usageFor(cli.command));
    return 0;
  }
  switch (cli.command) {
    case "version":
      print(`wmproxy ${VERSION} (deno ${Deno.version.deno})`);
      return 0;
    case "check":
      return await check(cli);
    case "gen-cert":
      return await genCert(cli);
    case "install-service":
      return await installService(cli, argv);
    case "status":
    case "reload":
    case "stop":
      return await control(cli);
    case "run":
    case "ws-proxy":
    case "file-server":
    case "reverse-proxy":
      return await serve(cli, options);
  }
}
