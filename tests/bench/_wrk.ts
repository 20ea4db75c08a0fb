/**
 * Runs wrk and parses its `--latency` report.
 *
 * @module
 */

/** What one wrk run measured. */
export interface WrkResult {
  /** The `Requests/sec:` figure. */
  requestsPerSec: number;
  /** Latency percentiles from the `Latency Distribution` block, in milliseconds. */
  p50Ms: number;
  p75Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** Total requests completed. */
  requests: number;
  /** Responses with a status outside 2xx/3xx. */
  non2xx: number;
  /** Sum of connect, read, write and timeout socket errors. */
  socketErrors: number;
}

/** Options for {@linkcode runWrk}. */
export interface RunWrkOptions {
  /** Path of the wrk binary. @default "wrk" */
  bin?: string;
  /** Threads (`-t`). @default 2 */
  threads?: number;
  /** Open connections (`-c`). @default 50 */
  connections?: number;
  /** Test length in seconds (`-d`). @default 8 */
  durationSec?: number;
  /** A lua script (`-s`), e.g. one that sets `wrk.path` to an absolute-form URL. */
  script?: string;
  /** Aborts the run (the process is killed by its PID). */
  signal?: AbortSignal;
}

/**
 * Runs `wrk --latency` against `url` and returns the parsed report. The run is
 * bounded: wrk is killed 30 s after its own duration should have ended.
 */
export async function runWrk(url: string, options: RunWrkOptions = {}): Promise<WrkResult> {
  const durationSec = options.durationSec ?? 8;
  const args = [
    `-t${options.threads ?? 2}`,
    `-c${options.connections ?? 50}`,
    `-d${durationSec}s`,
    "--latency",
  ];
  if (options.script !== undefined) args.push("-s", options.script);
  args.push(url);
  const timeout = AbortSignal.timeout((durationSec + 30) * 1000);
  const signal = options.signal === undefined
    ? timeout
    : AbortSignal.any([timeout, options.signal]);
  const child = new Deno.Command(options.bin ?? "wrk", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const onAbort = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const out = await child.output();
    const stdout = new TextDecoder().decode(out.stdout);
    if (options.signal?.aborted) throw new Error("Cannot run wrk: interrupted");
    if (timeout.aborted) throw new Error(`Cannot run wrk: killed after ${durationSec + 30} s`);
    if (!out.success) {
      const stderr = new TextDecoder().decode(out.stderr).trim();
      throw new Error(`Cannot run wrk: exit code ${out.code}: ${stderr || stdout.trim()}`);
    }
    return parseWrkOutput(stdout);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

const TIME_UNITS_MS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Converts a wrk duration such as `"812.00us"`, `"4.62ms"` or `"1.02s"` to milliseconds.
 *
 * @example
 * ```ts
 * parseWrkDuration("812.00us"); // 0.812
 * ```
 */
export function parseWrkDuration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (m === null) throw new SyntaxError(`Cannot parse wrk duration: ${JSON.stringify(text)}`);
  return Number(m[1]) * TIME_UNITS_MS[m[2]!]!;
}

/** Parses the text wrk prints with `--latency`. Throws a `SyntaxError` if a field is missing. */
export function parseWrkOutput(text: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (rps === null) {
    throw new SyntaxError(
      `Cannot parse wrk output: no "Requests/sec:" line in ${JSON.stringify(text)}`,
    );
  }
  const percentile = (p: number): number => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(text);
    if (m === null) {
      throw new SyntaxError(
        `Cannot parse wrk output: no ${p}% latency line (was --latency given?)`,
      );
    }
    return parseWrkDuration(m[1]!);
  };
  const requests = /^\s+(\d+) requests in/m.exec(text);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const sockets = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = sockets === null
    ? 0
    : sockets.slice(1).reduce((sum, n) => sum + Number(n), 0);
  return {
    requestsPerSec: Number(rps[1]),
    p50Ms: percentile(50),
    p75Ms: percentile(75),
    p90Ms: percentile(90),
    p99Ms: percentile(99),
    requests: requests === null ? 0 : Number(requests[1]),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors,
  };
}

/**
 * Returns why a wrk result cannot be trusted as a throughput figure, or
 * `undefined` when it can: error responses or read/write errors above 1 % of
 * the requests mean the subject answered with failures, not with pages.
 */
export function wrkProblem(result: WrkResult): string | undefined {
  if (result.requests === 0) return "no request completed";
  if (result.non2xx > result.requests * 0.01) {
    return `${result.non2xx} of ${result.requests} responses were not 2xx/3xx`;
  }
  if (result.socketErrors > result.requests * 0.01) {
    return `${result.socketErrors} socket errors for ${result.requests} requests`;
  }
  return undefined;
}

/** Lua for wrk that sends absolute-form requests, as a client of a forward proxy does. */
export function absoluteFormScript(targetUrl: string): string {
  const host = new URL(targetUrl).host;
  return `-- generated by tests/bench: absolute-form requests for a forward proxy\n` +
    `wrk.path = ${JSON.stringify(targetUrl)}\n` +
    `wrk.headers["Host"] = ${JSON.stringify(host)}\n`;
}
