/**
 * The program: parse the command line, load the config, start the services,
 * stop them on SIGINT/SIGTERM. Returns the exit code (0 ok, 1 error, 2 usage).
 *
 * @module
 */
import { type CliOptions, parseCli, UsageError } from "./args.ts";
import { CHECK_USAGE, MAIN_USAGE } from "./usage.ts";
import { VERSION } from "../version.ts";
import {
  type Config,
  ConfigError,
  type ConfigInput,
  loadConfig,
  parseConfig,
  Secret,
} from "../config/mod.ts";
import { errorMessage, EVENTS, Logger } from "../observability/mod.ts";
import { startForwardProxy } from "../proxy/mod.ts";

/** Options for {@link run}. */
export interface RunOptions {
  /** Stops a running program as SIGTERM would. */
  signal?: AbortSignal;
}

const encoder = new TextEncoder();

function print(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}

function printError(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text + "\n"));
}

/** Applies quick flags over the file's (validated) input. */
function applyFlags(cli: CliOptions, input: ConfigInput): ConfigInput {
  const out: ConfigInput = { ...input };
  const proxyFlags = cli.bind !== undefined || cli.user !== undefined ||
    cli.protocols !== undefined ||
    cli.allowOpen;
  const wantProxy = cli.mode === "proxy" || (cli.mode === undefined && cli.config === undefined) ||
    proxyFlags;
  if (wantProxy) {
    const proxy = { ...(input.proxy ?? {}) };
    if (cli.bind !== undefined) proxy.bind = cli.bind;
    if (cli.user !== undefined && cli.pass !== undefined) {
      proxy.users = [{ username: cli.user, password: new Secret(cli.pass) }];
    }
    if (cli.protocols !== undefined) proxy.protocols = cli.protocols;
    if (cli.allowOpen) proxy.allow_open = true;
    out.proxy = proxy;
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
  const override = (input: ConfigInput) => applyFlags(cli, input);
  if (cli.config !== undefined) return await loadConfig(cli.config, { override });
  return parseConfig("", { source: "command line", override });
}

/** Waits for SIGINT, SIGTERM or `signal`, whichever comes first. */
function waitForStop(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    const handlers: [Deno.Signal, () => void][] = [];
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
  if (cli.mode === "client" || cli.mode === "server" || cli.mode === "reverse") {
    printError(`wmproxy: Cannot start mode "${cli.mode}": it is not available in this version yet`);
    return 1;
  }
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
  if (config.proxy === undefined) {
    log.error(EVENTS.fatal, {
      error: `Cannot start: ${
        cli.config ?? "the config"
      } has no section to run; add "proxy:" or pass --mode proxy`,
    });
    return 1;
  }
  log.info(EVENTS.starting, { version: VERSION, pid: Deno.pid, sections: ["proxy"] });
  const stack = new AsyncDisposableStack();
  try {
    const proxy = await startForwardProxy(config.proxy, { log: log.child({ component: "proxy" }) });
    stack.use(proxy);
  } catch (err) {
    log.error(EVENTS.fatal, { error: errorMessage(err) });
    await stack.disposeAsync();
    return 1;
  }
  const why = await waitForStop(options.signal);
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
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      printError(err.message);
      return 1;
    }
    throw err;
  }
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
    print(cli.command === "check" ? CHECK_USAGE : MAIN_USAGE);
    return 0;
  }
  switch (cli.command) {
    case "version":
      print(`wmproxy ${VERSION} (deno ${Deno.version.deno})`);
      return 0;
    case "check":
      return await check(cli);
    case "run":
      return await serve(cli, options);
  }
}
