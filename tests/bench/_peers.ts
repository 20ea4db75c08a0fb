/**
 * Peers and processes for the benchmarks: installing Debian tools, writing
 * their configs into a temp dir, starting them on free loopback ports, waiting
 * for readiness (a port that accepts, or a log line — never a fixed sleep), and
 * stopping exactly the processes started here, by PID.
 *
 * @module
 */
import { V8_FLAGS_ARG } from "../../src/cli/v8_flags.ts";

// ---------------------------------------------------------------------------
// Tools

/** Where each tool's binary may be found and which Debian package provides it. */
export const TOOLS = {
  wrk: { bins: ["wrk"], pkg: "wrk" },
  nginx: { bins: ["nginx"], pkg: "nginx-light" },
  squid: { bins: ["squid"], pkg: "squid" },
  socat: { bins: ["socat"], pkg: "socat" },
  iperf3: { bins: ["iperf3"], pkg: "iperf3" },
  stunnel: { bins: ["stunnel4", "stunnel"], pkg: "stunnel4" },
  haproxy: { bins: ["haproxy"], pkg: "haproxy" },
  danted: { bins: ["danted"], pkg: "dante-server" },
  sshd: { bins: ["sshd"], pkg: "openssh-server" },
  ssh: { bins: ["ssh"], pkg: "openssh-client" },
} as const satisfies Record<string, { bins: readonly string[]; pkg: string }>;

/** A tool the benchmarks know how to install. */
export type ToolName = keyof typeof TOOLS;

/** The outcome of looking for (and maybe installing) the tools. */
export interface ToolSet {
  /** Absolute paths of the tools that are available. */
  paths: Partial<Record<ToolName, string>>;
  /** Why each unavailable tool is missing. */
  missing: Partial<Record<ToolName, string>>;
}

const SEARCH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Returns the absolute path of the first of `bins` found on PATH or in the sbin dirs. */
export async function findBinary(bins: readonly string[]): Promise<string | undefined> {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter(Boolean), ...SEARCH_DIRS];
  for (const bin of bins) {
    for (const dir of dirs) {
      const path = `${dir}/${bin}`;
      try {
        const info = await Deno.stat(path);
        if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return path;
      } catch { /* not here */ }
    }
  }
  return undefined;
}

let aptUpdated = false;

/** Options for {@linkcode ensureTools}. */
export interface EnsureToolsOptions {
  /** Install missing tools with apt-get. @default true */
  install?: boolean;
  /** Progress messages. */
  log?: (message: string) => void;
}

/**
 * Finds each tool, installing the missing ones with apt-get (one
 * `apt-get update` per process, then one `apt-get install` for all of them).
 */
export async function ensureTools(
  names: readonly ToolName[],
  options: EnsureToolsOptions = {},
): Promise<ToolSet> {
  const log = options.log ?? (() => {});
  const set: ToolSet = { paths: {}, missing: {} };
  const absent: ToolName[] = [];
  for (const name of new Set(names)) {
    const path = await findBinary(TOOLS[name].bins);
    if (path === undefined) absent.push(name);
    else set.paths[name] = path;
  }
  if (absent.length === 0) return set;
  const pkgs = [...new Set(absent.map((n) => TOOLS[n].pkg))];
  let why = `not installed (apt package ${pkgs.join(", ")})`;
  if (options.install ?? true) {
    try {
      if (!aptUpdated) {
        log("apt-get update");
        await runQuiet("apt-get", ["update"], 300_000);
        aptUpdated = true;
      }
      log(`apt-get install ${pkgs.join(" ")}`);
      await runQuiet(
        "apt-get",
        ["install", "-y", "--no-install-recommends", ...pkgs],
        900_000,
      );
    } catch (error) {
      why = `cannot be installed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  for (const name of absent) {
    const path = await findBinary(TOOLS[name].bins);
    if (path === undefined) set.missing[name] = `${name} ${why}`;
    else set.paths[name] = path;
  }
  return set;
}

async function runQuiet(cmd: string, args: string[], timeoutMs: number): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" / ");
    throw new Error(`${cmd} ${args[0]} exited with code ${out.code}: ${text}`);
  }
}

// ---------------------------------------------------------------------------
// Ports

/** Returns a loopback port that was free a moment ago (listen on port 0, then close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Splits `"127.0.0.1:8080"` into hostname and port. */
export function splitAddr(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TypeError(`Cannot parse address: ${JSON.stringify(addr)} is not host:port`);
  }
  return { hostname: addr.slice(0, i).replace(/^\[|\]$/g, ""), port };
}

// ---------------------------------------------------------------------------
// Processes

/** Readiness check of a started process. */
export type Readiness =
  /** The process is ready when a TCP connect to `127.0.0.1:port` succeeds. */
  | { port: number }
  /** Ready when `match` returns a value other than `undefined` for an output line. */
  | { line: (line: string, stream: "stdout" | "stderr") => string | undefined };

/** Options for {@linkcode startProcess}. */
export interface StartProcessOptions {
  /** A short name for messages and the table. */
  name: string;
  /** How to tell that the process serves. */
  ready: Readiness;
  /** Give up waiting for readiness after this long. @default 15000 */
  readyTimeoutMs?: number;
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

const TAIL_LINES = 40;

/** A child process started by the benchmarks: it is stopped by its PID only. */
export class ManagedProcess {
  /** A short name for messages. */
  readonly name: string;
  /** The PID of the process started. */
  readonly pid: number;
  /** The value the readiness line matcher returned (e.g. a bound address), if any. */
  readyValue: string | undefined;
  #child: Deno.ChildProcess;
  #tail: string[] = [];
  #exited = false;
  #status: Promise<Deno.CommandStatus>;
  #watchers = new Set<(line: string, stream: "stdout" | "stderr") => void>();
  #pumps: Promise<void>[];

  constructor(name: string, child: Deno.ChildProcess) {
    this.name = name;
    this.#child = child;
    this.pid = child.pid;
    this.#status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
    this.#pumps = [this.#pump(child.stdout, "stdout"), this.#pump(child.stderr, "stderr")];
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** The last lines the process wrote (stdout and stderr interleaved). */
  get tail(): string {
    return this.#tail.join("\n");
  }

  /** Resolves with the exit status. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  async #pump(stream: ReadableStream<Uint8Array>, which: "stdout" | "stderr"): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of stream) {
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          this.#line(pending.slice(0, nl), which);
          pending = pending.slice(nl + 1);
        }
        if (pending.length > 65536) pending = pending.slice(-4096);
      }
    } catch { /* the process went away */ }
    if (pending !== "") this.#line(pending, which);
  }

  #line(line: string, which: "stdout" | "stderr"): void {
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    for (const watch of this.#watchers) watch(line, which);
  }

  /** Calls `fn` for every output line until the returned function is called. */
  watch(fn: (line: string, stream: "stdout" | "stderr") => void): () => void {
    this.#watchers.add(fn);
    return () => this.#watchers.delete(fn);
  }

  /** Resident memory in KiB of this process and its descendants (0 once it has exited). */
  async rssKiB(): Promise<number> {
    if (this.#exited) return 0;
    let sum = 0;
    for (const pid of [this.pid, ...(await descendants(this.pid))]) {
      sum += await readStatusKiB(pid, "VmRSS");
    }
    return sum;
  }

  /** Peak resident memory (VmHWM) in KiB of the process itself. */
  peakRssKiB(): Promise<number> {
    return this.#exited ? Promise.resolve(0) : readStatusKiB(this.pid, "VmHWM");
  }

  /**
   * Stops the process: SIGTERM to it and to its descendants (found through
   * /proc before the signal, so all are ours), SIGKILL after `graceMs`.
   */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.#exited) {
      const kids = await descendants(this.pid);
      trySignal(this.pid, "SIGTERM");
      for (const kid of kids) trySignal(kid, "SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        this.#status.then(() => false),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), graceMs)),
      ]);
      clearTimeout(timer);
      if (timedOut) trySignal(this.pid, "SIGKILL");
      for (const kid of kids) {
        if (await isAlive(kid)) trySignal(kid, "SIGKILL");
      }
      await this.#status;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(this.#pumps),
      new Promise((resolve) => timer = setTimeout(resolve, 2000)),
    ]);
    clearTimeout(timer);
  }

  /** The Deno child handle (for signals other than stop). */
  get child(): Deno.ChildProcess {
    return this.#child;
  }
}

function trySignal(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch { /* already gone */ }
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

/** PIDs of all descendants of `pid`, from /proc. */
export async function descendants(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry.name));
      children.set(ppid, list);
    } catch { /* exited meanwhile */ }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const kid of children.get(queue.shift()!) ?? []) {
      out.push(kid);
      queue.push(kid);
    }
  }
  return out;
}

async function readStatusKiB(pid: number, field: string): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

/** Every process started through {@linkcode startProcess}, so that all can be stopped on exit. */
export const LIVE_PROCESSES: Set<ManagedProcess> = new Set();

/** Stops every live process started here (by PID). */
export async function stopAll(): Promise<void> {
  await Promise.all([...LIVE_PROCESSES].map((p) => stopProcess(p)));
}

/** Stops one process and forgets it. */
export async function stopProcess(process: ManagedProcess): Promise<void> {
  try {
    await process.stop();
  } finally {
    LIVE_PROCESSES.delete(process);
  }
}

/**
 * Starts `cmd` and waits until it is ready. On a readiness failure the process
 * is stopped and the error carries the last lines it printed.
 */
export async function startProcess(
  cmd: string,
  args: readonly string[],
  options: StartProcessOptions,
): Promise<ManagedProcess> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
  }).spawn();
  const process = new ManagedProcess(options.name, child);
  LIVE_PROCESSES.add(process);
  try {
    await waitReady(process, options.ready, options.readyTimeoutMs ?? 15_000);
    return process;
  } catch (error) {
    await stopProcess(process);
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Cannot start ${options.name}: ${why}\n--- last output of ${options.name} ---\n${process.tail}`,
    );
  }
}

async function waitReady(process: ManagedProcess, ready: Readiness, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  if ("port" in ready) {
    while (true) {
      if (process.exited) throw new Error(`exited with code ${(await process.status).code}`);
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: ready.port });
        conn.close();
        return;
      } catch { /* not yet */ }
      if (Date.now() > deadline) {
        throw new Error(`port ${ready.port} not open after ${timeoutMs} ms`);
      }
      await delay(50);
    }
  }
  const match = ready.line;
  let unwatch = () => {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      unwatch = process.watch((line, stream) => {
        const value = match(line, stream);
        if (value !== undefined) {
          process.readyValue = value;
          resolve();
        }
      });
      process.status.then((s) => reject(new Error(`exited with code ${s.code}`)));
      timer = setTimeout(
        () => reject(new Error(`no readiness line after ${timeoutMs} ms`)),
        Math.max(0, deadline - Date.now()),
      );
    });
  } finally {
    unwatch();
    clearTimeout(timer);
  }
}

/** Resolves after `ms` milliseconds (pacing for polls, never used as readiness). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Returns a readiness matcher for a JSON-lines log: it matches a line whose
 * object has every field of `fields` and returns the value of `valueField`.
 */
export function jsonLineReady(
  fields: Record<string, string>,
  valueField: string,
): (line: string) => string | undefined {
  return (line) => {
    if (!line.startsWith("{")) return undefined;
    try {
      const obj = JSON.parse(line) as Record<string, unknown>;
      for (const [k, v] of Object.entries(fields)) if (obj[k] !== v) return undefined;
      const value = obj[valueField];
      return typeof value === "string" ? value : undefined;
    } catch {
      return undefined;
    }
  };
}

// ---------------------------------------------------------------------------
// Idle gate

/** CPU idle share (0–100) over `ms` milliseconds, from /proc/stat. */
export async function cpuIdlePercent(ms = 1000): Promise<number> {
  const read = async () => {
    const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0] ?? "";
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { idle, total };
  };
  const a = await read();
  await delay(ms);
  const b = await read();
  const total = b.total - a.total;
  return total <= 0 ? 100 : (100 * (b.idle - a.idle)) / total;
}

/**
 * Waits until the CPU is at least `minIdle` % idle over `windowMs`, for at most
 * `maxSec` seconds, and returns the last idle share measured (the caller
 * records it; a busy machine does not stop the benchmark).
 */
export async function waitIdle(minIdle = 85, maxSec = 20, windowMs = 1000): Promise<number> {
  const deadline = Date.now() + maxSec * 1000;
  let idle = await cpuIdlePercent(windowMs);
  while (idle < minIdle && Date.now() < deadline) idle = await cpuIdlePercent(windowMs);
  return idle;
}

// ---------------------------------------------------------------------------
// Peers: config writers and starters

/** A peer or subject serving on a loopback address. */
export interface Server {
  /** The process (stop it with {@linkcode stopProcess}). */
  process: ManagedProcess;
  /** `127.0.0.1:PORT`. */
  addr: string;
}

/** An nginx origin serving `/612.html` (612 bytes, like nginx's default page). */
export interface NginxOrigin extends Server {
  /** `http://127.0.0.1:PORT/612.html`. */
  url: string;
  /** The h2c (prior knowledge) address of the same site. */
  h2cAddr: string;
}

/**
 * Creates the peers' working dir layout under `dir` (www, logs, tmp) with
 * modes that let workers that drop root (nginx, squid) read and write.
 */
export async function preparePeerDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.chmod(dir, 0o755);
  for (const sub of ["www", "logs", "tmp"]) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
  }
  await Deno.chmod(`${dir}/www`, 0o755);
  await Deno.chmod(`${dir}/logs`, 0o777);
  await Deno.chmod(`${dir}/tmp`, 0o777);
  await Deno.writeTextFile(`${dir}/www/612.html`, "x".repeat(612), { mode: 0o644 });
}

/** Returns the nginx origin config of anchors.md B2 with the given ports, all paths under `dir`. */
export function nginxOriginConfig(dir: string, port: number, h2cPort: number): string {
  const tmp = `${dir}/tmp`;
  return `# generated by tests/bench (anchors.md B2 origin)
daemon off;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  client_body_temp_path ${tmp}; proxy_temp_path ${tmp};
  fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  server { listen 127.0.0.1:${h2cPort} http2; root ${dir}/www; }
  server { listen 127.0.0.1:${port}; root ${dir}/www; }
}
`;
}

/** Writes the origin config into `dir` and starts nginx in the foreground. */
export async function startNginxOrigin(bin: string, dir: string): Promise<NginxOrigin> {
  await preparePeerDir(dir);
  const port = freePort();
  const h2cPort = freePort();
  const conf = `${dir}/nginx.conf`;
  await Deno.writeTextFile(conf, nginxOriginConfig(dir, port, h2cPort));
  const process = await startProcess(
    bin,
    ["-p", dir, "-e", `${dir}/logs/nginx-error.log`, "-c", conf],
    { name: "nginx", ready: { port } },
  );
  const addr = `127.0.0.1:${port}`;
  return { process, addr, url: `http://${addr}/612.html`, h2cAddr: `127.0.0.1:${h2cPort}` };
}

/** Returns the squid config of anchors.md B2 for `port`, all paths under `dir`. */
export function squidConfig(dir: string, port: number): string {
  return `# generated by tests/bench (anchors.md B2)
http_port 127.0.0.1:${port}
acl localnet src 127.0.0.0/8
acl loopdst dst 127.0.0.0/8
http_access deny !loopdst
http_access allow localnet
http_access deny all
cache deny all
cache_mem 8 MB
pid_filename ${dir}/logs/squid.pid
access_log none
cache_log ${dir}/logs/squid-cache.log
coredump_dir ${dir}/logs
dns_nameservers 127.0.0.1
shutdown_lifetime 1 seconds
`;
}

/** Writes a squid config into `dir` (already prepared) and starts squid in the foreground. */
export async function startSquid(bin: string, dir: string): Promise<Server> {
  await preparePeerDir(dir);
  const port = freePort();
  const conf = `${dir}/squid.conf`;
  await Deno.writeTextFile(conf, squidConfig(dir, port));
  const process = await startProcess(bin, ["-f", conf, "-N"], {
    name: "squid",
    ready: { port },
    readyTimeoutMs: 30_000,
  });
  return { process, addr: `127.0.0.1:${port}` };
}

/** Starts a socat TCP forwarder from a free port to `target` with a `bufferBytes` buffer. */
export async function startSocatForward(
  bin: string,
  target: string,
  bufferBytes = 262_144,
): Promise<Server> {
  const port = freePort();
  const process = await startProcess(
    bin,
    [
      "-b",
      String(bufferBytes),
      `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`,
      `TCP:${target}`,
    ],
    { name: "socat", ready: { port } },
  );
  return { process, addr: `127.0.0.1:${port}` };
}

/** The wmproxy entry point, resolved relative to this file. */
export const WMPROXY_MAIN: string = new URL("../../main.ts", import.meta.url).pathname;

/** `deno run` arguments that start wmproxy as shipped (with its V8 flags), before its own. */
export const WMPROXY_RUN: readonly string[] = ["run", "-A", V8_FLAGS_ARG, WMPROXY_MAIN];

let wmproxyChecked: Promise<string | undefined> | undefined;

/**
 * Why wmproxy cannot run yet, or `undefined` when `main.ts --help` works.
 * Checked once per run (each check costs a Deno start).
 */
export function wmproxyProblem(): Promise<string | undefined> {
  wmproxyChecked ??= checkWmproxy();
  return wmproxyChecked;
}

async function checkWmproxy(): Promise<string | undefined> {
  try {
    await Deno.stat(WMPROXY_MAIN);
  } catch {
    return `${WMPROXY_MAIN} does not exist yet`;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...WMPROXY_RUN, "--help"],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ?? "";
    return `main.ts --help exited with code ${out.code}: ${err}`;
  }
  return undefined;
}

/** Options for {@linkcode startWmproxy}. */
export interface StartWmproxyOptions {
  /** `--mode`. @default "proxy" */
  mode?: string;
  /** The component whose `listening` event means ready. @default "proxy" */
  component?: string;
  /** More command-line flags. */
  args?: readonly string[];
}

/**
 * Starts `deno run -A main.ts --mode proxy --bind 127.0.0.1:0 --log-format json`
 * and waits for its `{"event":"listening","component":"proxy","addr":…}` line.
 */
export async function startWmproxy(options: StartWmproxyOptions = {}): Promise<Server> {
  const component = options.component ?? "proxy";
  const process = await startProcess(
    Deno.execPath(),
    [
      ...WMPROXY_RUN,
      "--mode",
      options.mode ?? "proxy",
      "--bind",
      "127.0.0.1:0",
      "--log-format",
      "json",
      ...(options.args ?? []),
    ],
    {
      name: "wmproxy",
      ready: { line: jsonLineReady({ event: "listening", component }, "addr") },
      readyTimeoutMs: 60_000,
      env: { NO_COLOR: "1" },
    },
  );
  return { process, addr: process.readyValue! };
}

/** The bulk sink (tests/bench/bulk_sink.ts) of the bulk scenarios. */
export const BULK_SINK: string = new URL("./bulk_sink.ts", import.meta.url).pathname;
/** The bulk sender (tests/bench/bulk_client.ts) of the bulk scenarios. */
export const BULK_CLIENT: string = new URL("./bulk_client.ts", import.meta.url).pathname;

/** Starts the bulk sink on a port it picks and reports (`{"event":"listening","addr":…}`). */
export async function startBulkSink(): Promise<Server> {
  const process = await startProcess(Deno.execPath(), ["run", "-A", BULK_SINK], {
    name: "bulk_sink",
    env: { NO_COLOR: "1" },
    ready: { line: jsonLineReady({ event: "listening" }, "addr") },
    readyTimeoutMs: 60_000,
  });
  return { process, addr: process.readyValue! };
}

/** Returns the dante config of anchors.md B2 for `port` (SOCKS5, loopback destinations only). */
export function danteConfig(dir: string, port: number): string {
  return `# generated by tests/bench (anchors.md B2)
logoutput: ${dir}/logs/danted.log
internal: 127.0.0.1 port = ${port}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect udpassociate bindreply udpreply }
socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 }
`;
}

/** Writes a dante config into `dir` and starts danted in the foreground (one process set). */
export async function startDante(bin: string, dir: string): Promise<Server> {
  await preparePeerDir(dir);
  const port = freePort();
  const conf = `${dir}/danted.conf`;
  await Deno.writeTextFile(conf, danteConfig(dir, port));
  const process = await startProcess(bin, ["-f", conf, "-N", "1", "-p", `${dir}/logs/danted.pid`], {
    name: "danted",
    ready: { port },
  });
  return { process, addr: `127.0.0.1:${port}` };
}
