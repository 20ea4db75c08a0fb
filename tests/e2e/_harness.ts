/**
 * E2E harness: runs the real program as a child process, reads its JSON log
 * lines from stderr, and lets tests wait on events instead of sleeping.
 *
 * The program under test is `$WMPROXY_BIN` when set (a compiled binary), else
 * `deno run -A --v8-flags=… main.ts` with the V8 flags wmproxy ships with.
 * `E2E_DEBUG=1` echoes every child log line.
 *
 * @module
 */
import { V8_FLAGS_ARG } from "../../src/cli/v8_flags.ts";
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const DEBUG = Deno.env.get("E2E_DEBUG") === "1";

/** One parsed JSON log line. */
export type LogEvent = Record<string, unknown> & { event: string; level: string };

interface Waiter {
  event: string;
  match: Record<string, unknown>;
  resolve: (e: LogEvent) => void;
}

/** A running wmproxy process. */
export class WmproxyProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly events: LogEvent[] = [];
  readonly lines: string[] = [];
  readonly stdout: Promise<string>;
  readonly #waiters = new Set<Waiter>();
  /** `internal_error` events seen (a bug in the program: stop/dispose fails the test). */
  readonly #internalErrors: LogEvent[] = [];
  #internalErrorsReported = false;
  readonly #stderrDone: Promise<void>;
  #status: Promise<Deno.CommandStatus>;

  constructor(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
    const bin = Deno.env.get("WMPROXY_BIN");
    const cmd = bin ?? Deno.execPath();
    const fullArgs = bin ? args : ["run", "-A", V8_FLAGS_ARG, MAIN, ...args];
    this.child = new Deno.Command(cmd, {
      args: fullArgs,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { NO_COLOR: "1", ...(options.env ?? {}) },
    }).spawn();
    this.#status = this.child.status;
    this.stdout = new Response(this.child.stdout).text();
    this.#stderrDone = this.#readStderr();
  }

  async #readStderr(): Promise<void> {
    const decoder = new TextDecoderStream();
    let pending = "";
    for await (const chunk of this.child.stderr.pipeThrough(decoder)) {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        this.#onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    }
    if (pending !== "") this.#onLine(pending);
  }

  #onLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 2000) this.lines.shift();
    // deno-lint-ignore no-console
    if (DEBUG) console.error(`[wmproxy ${this.child.pid}] ${line}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof parsed !== "object" || parsed === null || !("event" in parsed)) return;
    const e = parsed as LogEvent;
    this.events.push(e);
    if (e.event === "internal_error" && this.#internalErrors.length < 10) {
      this.#internalErrors.push(e);
    }
    for (const w of this.#waiters) {
      if (matches(e, w.event, w.match)) {
        this.#waiters.delete(w);
        w.resolve(e);
      }
    }
  }

  /** Resolves with the first event (past or future) named `event` whose fields include `match`. */
  waitForEvent(
    event: string,
    match: Record<string, unknown> = {},
    timeoutMs = 15_000,
  ): Promise<LogEvent> {
    const seen = this.events.find((e) => matches(e, event, match));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(
          new Error(
            `Cannot see event "${event}" ${
              JSON.stringify(match)
            } within ${timeoutMs}ms; last lines:\n` +
              this.lines.slice(-50).join("\n"),
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        event,
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      this.#waiters.add(waiter);
      // The process may exit before the event: fail fast with its output.
      this.#status.then((s) => {
        if (!this.#waiters.has(waiter)) return;
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        this.#stderrDone.then(() =>
          reject(
            new Error(
              `Cannot see event "${event}": wmproxy exited with code ${s.code}; last lines:\n` +
                this.lines.slice(-50).join("\n"),
            ),
          )
        );
      });
    });
  }

  /**
   * Resolves with the `n`-th event (past or future, counting from 1) named
   * `event` whose fields include `match`: e.g. the second `tunnel_connected`,
   * after a reconnect.
   */
  async waitForNth(
    event: string,
    n: number,
    match: Record<string, unknown> = {},
    timeoutMs = 15_000,
  ): Promise<LogEvent> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const seen = this.events.filter((e) => matches(e, event, match));
      if (seen.length >= n) return seen[n - 1]!;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `Cannot see event "${event}" #${n} ${JSON.stringify(match)}: only ${seen.length} ` +
            `within ${timeoutMs}ms; last lines:\n${this.lines.slice(-50).join("\n")}`,
        );
      }
      // The next matching event, whichever it is, then count again.
      await this.#nextEvent(event, match, left);
    }
  }

  #nextEvent(event: string, match: Record<string, unknown>, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        resolve();
      }, timeoutMs);
      const waiter: Waiter = {
        event,
        match,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.add(waiter);
      this.#status.then((s) => {
        if (!this.#waiters.has(waiter)) return;
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`Cannot see event "${event}": wmproxy exited with code ${s.code}`));
      });
    });
  }

  /** The `addr` of the `listening` event of `component`, as `host:port`. */
  async listeningAddr(component: string): Promise<string> {
    const e = await this.waitForEvent("listening", { component });
    return String(e.addr);
  }

  /** Sends `signal` and waits for the exit; resolves to the exit status. */
  async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 10_000): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // already exited
      }
    }, timeoutMs);
    const status = await this.#status;
    clearTimeout(timer);
    await this.#stderrDone;
    await this.stdout;
    this.#throwOnInternalErrors();
    return status;
  }

  /** Fails (once) when the program logged `internal_error`: a stray rejection is a bug. */
  #throwOnInternalErrors(): void {
    if (this.#internalErrors.length === 0 || this.#internalErrorsReported) return;
    this.#internalErrorsReported = true;
    const list = this.#internalErrors.map((e) => `${e.error}\n${e.stack ?? ""}`).join("\n---\n");
    throw new Error(`wmproxy ${this.child.pid} logged internal_error:\n${list}`);
  }

  /** Waits for the process to exit on its own. */
  async exited(): Promise<Deno.CommandStatus> {
    const status = await this.#status;
    await this.#stderrDone;
    await this.stdout;
    this.#throwOnInternalErrors();
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}

function matches(e: LogEvent, event: string, match: Record<string, unknown>): boolean {
  if (e.event !== event) return false;
  return Object.entries(match).every(([k, v]) => e[k] === v);
}

/** Starts wmproxy with JSON logs. */
export function startWmproxy(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): WmproxyProcess {
  return new WmproxyProcess(["--log-format", "json", ...args], options);
}

/** Runs wmproxy to completion (for `check`, `--help`, usage errors). */
export async function runWmproxy(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = Deno.env.get("WMPROXY_BIN");
  const out = await new Deno.Command(bin ?? Deno.execPath(), {
    args: bin ? args : ["run", "-A", V8_FLAGS_ARG, MAIN, ...args],
    stdin: "null",
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: { NO_COLOR: "1", ...(options.env ?? {}) },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A temp dir removed on dispose. */
export async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "wmproxy-e2e-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Runs curl with a time bound; returns exit code, body and stderr. */
export async function curl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "--max-time", "20", ...args],
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** An HTTP origin on 127.0.0.1:0 that answers `name path` for every request. */
export function startOrigin(
  name: string,
  hostname = "127.0.0.1",
): AsyncDisposable & { url: string; port: number; requests: Request[] } {
  const requests: Request[] = [];
  const server = Deno.serve(
    { hostname, port: 0, onListen: () => {} },
    (req) => {
      requests.push(req);
      return new Response(`${name} ${new URL(req.url).pathname}`);
    },
  );
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host}:${server.addr.port}`,
    port: server.addr.port,
    requests,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** Whether this machine has IPv6 loopback. */
export function hasIpv6Loopback(): boolean {
  try {
    const l = Deno.listen({ hostname: "::1", port: 0 });
    l.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * A TCP echo server on a free loopback port. With `tag`, every answer is the
 * received chunk prefixed with `tag:` (one write), so a test can tell which
 * of several servers answered.
 */
export function startEchoServer(tag?: string): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const prefix = new TextEncoder().encode(tag === undefined ? "" : `${tag}:`);
  const loop = (async () => {
    for await (const c of listener) {
      (async () => {
        const b = new Uint8Array(prefix.length + 65536);
        b.set(prefix);
        const room = b.subarray(prefix.length);
        try {
          for (let n = await c.read(room); n !== null; n = await c.read(room)) {
            let off = 0;
            while (off < prefix.length + n) {
              off += await c.write(b.subarray(off, prefix.length + n));
            }
          }
        } catch {
          // client gone
        } finally {
          c.close();
        }
      })();
    }
  })().catch(() => {});
  return { port: listener.addr.port, close: async () => (listener.close(), await loop) };
}

/**
 * Tunnel server flags that let clients' proxy traffic reach loopback origins
 * (the server refuses loopback by default: `src/proxy/egress_policy.ts`).
 */
export const ALLOW_LOOPBACK_EGRESS: readonly string[] = [
  "--allow-egress",
  "127.0.0.0/8",
  "--allow-egress",
  "::1",
];

/** A tunnel server started for a test, with what clients need to reach it. */
export interface TunnelServer {
  proc: WmproxyProcess;
  addr: string;
  caFile: string | undefined;
  pin: string | undefined;
}

/** Starts `wmproxy --mode server` (or with a config file) and waits for its listener. */
export async function startTunnelServer(args: string[]): Promise<TunnelServer> {
  const proc = startWmproxy(args);
  const addr = await proc.listeningAddr("tunnel");
  const identity = proc.events.find((e) => e.event === "tls_identity") ??
    (args.includes("--no-tls") ? undefined : await proc.waitForEvent("tls_identity"));
  return {
    proc,
    addr,
    caFile: identity?.ca_file as string | undefined,
    pin: identity?.pin_sha256 as string | undefined,
  };
}

/**
 * Starts `wmproxy --mode client` connected to `server` with `token`, trusting
 * its CA, with its local proxy on a free loopback port; `args` follow.
 */
export function startTunnelClient(
  server: TunnelServer,
  token: string,
  args: string[] = [],
  options: { cwd?: string; env?: Record<string, string> } = {},
): WmproxyProcess {
  return startWmproxy([
    "--mode",
    "client",
    "--server",
    server.addr,
    "--token",
    token,
    "--ca",
    server.caFile!,
    "--bind",
    "127.0.0.1:0",
    ...args,
  ], options);
}

/**
 * A TCP relay between a client and a server that can be told to stop
 * forwarding while keeping both connections open (a black-holed link).
 */
export function startBlackholeRelay(
  target: string,
): AsyncDisposable & { addr: string; blackhole(): void } {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(":")),
    Number(target.slice(target.lastIndexOf(":") + 1)),
  ];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let holed = false;
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(65536);
    try {
      for (let n = await from.read(buf); n !== null; n = await from.read(buf)) {
        if (!holed) await to.write(buf.subarray(0, n)); // black-holed: read and drop
      }
    } catch {
      // closed
    }
  };
  const loop = (async () => {
    for await (const a of listener) {
      const b = await Deno.connect({ hostname: host, port });
      conns.add(a).add(b);
      pump(a, b);
      pump(b, a);
    }
  })().catch(() => {});
  return {
    addr: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    blackhole() {
      holed = true;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await loop;
    },
  };
}

/** Writes a YAML config file into `dir` and returns its path. */
export async function writeConfig(dir: string, name: string, yaml: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, yaml);
  return path;
}
