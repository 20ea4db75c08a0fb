/**
 * Tunnel subjects and peers for the tunnel benchmarks (chain_*, tcp_mapping,
 * http_mapping, tunnel_latency): a wmproxy server + client pair, a loopback
 * sshd with `ssh -D` / `-L` / `-R` forwards, a stunnel client/server pair and
 * iperf3 — configs from anchors.md B2, all on 127.0.0.1, readiness by port or
 * log line, every process stopped by its PID.
 *
 * @module
 */
import {
  findBinary,
  freePort,
  jsonLineReady,
  type ManagedProcess,
  preparePeerDir,
  type Server,
  startProcess,
  stopProcess,
  WMPROXY_RUN,
} from "./_peers.ts";
import { addRatio, type Row } from "./_scenario.ts";

// ---------------------------------------------------------------------------
// wmproxy tunnel (server + client)

/** Thrown when the client never reports `mapping_ready` for a requested mapping. */
export class MappingsUnavailable extends Error {
  override name = "MappingsUnavailable";
}

/** A running wmproxy tunnel: server, client and what they serve. */
export interface WmproxyTunnel {
  /** `--mode server` process. */
  server: ManagedProcess;
  /** `--mode client` process. */
  client: ManagedProcess;
  /** Further clients (with {@linkcode WmproxyTunnelOptions.moreClients}), in order. */
  moreClients: ManagedProcess[];
  /** The server's tunnel port. */
  tunnelAddr: string;
  /** The server's HTTP mapping port (with `http: true`). */
  httpAddr?: string;
  /** The client's local proxy port (HTTP, CONNECT, SOCKS5 served by the server). */
  proxyAddr: string;
  /** `public_addr` of every mapping of every client, by name, from `mapping_ready`. */
  mappings: Record<string, string>;
  /** Stops the clients, then the server. */
  stop(): Promise<void>;
}

/** Options for {@linkcode startWmproxyTunnel}. */
export interface WmproxyTunnelOptions {
  /** The state dir of the server (CA and certificate are generated there). */
  dir: string;
  /** Give the server an HTTP mapping port (`--http`). */
  http?: boolean;
  /** `--map` values for the client, e.g. `ipf=tcp:127.0.0.1:5201@:0`. */
  maps?: readonly string[];
  /**
   * `--map` values of further clients of the same server, one list per client
   * (mapping names must differ across clients). Each client is one session,
   * which carries at most 4,096 streams. @default []
   */
  moreClients?: readonly (readonly string[])[];
}

const TOKEN = "bench-token-0123456789";

/**
 * Starts `main.ts --mode server` then `--mode client` and waits for the
 * client's `listening`, `tunnel_connected` and one `mapping_ready` per `--map`.
 *
 * The server runs at `--log-level warn`, so it writes no line per request
 * (its HTTP mapping logs every request at info level): its ports are picked
 * here and readiness is the tunnel port accepting. The client runs at info
 * level to report its readiness events; it logs once per connection only.
 */
export async function startWmproxyTunnel(options: WmproxyTunnelOptions): Promise<WmproxyTunnel> {
  const stateDir = `${options.dir}/wmproxy-state`;
  await Deno.mkdir(stateDir, { recursive: true });
  const tunnelPort = freePort();
  const httpPort = options.http ? freePort() : undefined;
  const serverArgs = [
    ...WMPROXY_RUN,
    "--mode",
    "server",
    "--listen",
    `127.0.0.1:${tunnelPort}`,
    "--token",
    TOKEN,
    "--state-dir",
    stateDir,
    // The origins are on loopback, which the server refuses by default.
    "--allow-egress",
    "127.0.0.0/8",
    "--log-format",
    "json",
    "--log-level",
    "warn",
  ];
  if (httpPort !== undefined) serverArgs.push("--http", `127.0.0.1:${httpPort}`);
  const server = await startProcess(Deno.execPath(), serverArgs, {
    name: "wmproxy server",
    ready: { port: httpPort ?? tunnelPort },
    readyTimeoutMs: 60_000,
    env: { NO_COLOR: "1" },
  });
  const clients: ManagedProcess[] = [];
  const stopAllOf = async () => {
    for (const c of [...clients].reverse()) await stopProcess(c);
    await stopProcess(server);
  };
  try {
    if (httpPort !== undefined) await waitPort(tunnelPort, 15_000);
    const ca = `${stateDir}/ca.pem`;
    await waitFile(ca, 15_000);
    const first = await startClient(tunnelPort, ca, options.maps ?? []);
    clients.push(first.client);
    const mappings = { ...first.mappings };
    for (const [i, maps] of (options.moreClients ?? []).entries()) {
      const more = await startClient(tunnelPort, ca, maps, ` ${i + 2}`);
      clients.push(more.client);
      Object.assign(mappings, more.mappings);
    }
    const tunnel: WmproxyTunnel = {
      server,
      client: first.client,
      moreClients: clients.slice(1),
      tunnelAddr: `127.0.0.1:${tunnelPort}`,
      proxyAddr: first.addr,
      mappings,
      stop: stopAllOf,
    };
    if (httpPort !== undefined) tunnel.httpAddr = `127.0.0.1:${httpPort}`;
    return tunnel;
  } catch (error) {
    await stopAllOf();
    throw error;
  }
}

/** Starts one `--mode client` with `maps` and waits for its readiness events. */
async function startClient(
  tunnelPort: number,
  ca: string,
  maps: readonly string[],
  suffix = "",
): Promise<{ client: ManagedProcess; addr: string; mappings: Record<string, string> }> {
  const names = maps.map((m) => m.slice(0, m.indexOf("=")));
  const clientArgs = [
    ...WMPROXY_RUN,
    "--mode",
    "client",
    "--server",
    `127.0.0.1:${tunnelPort}`,
    "--token",
    TOKEN,
    "--ca",
    ca,
    "--bind",
    "127.0.0.1:0",
    "--log-format",
    "json",
    ...maps.flatMap((m) => ["--map", m]),
  ];
  const state = { addr: "", connected: false, mappings: {} as Record<string, string> };
  const listening = jsonLineReady({ event: "listening", component: "client" }, "addr");
  let client: ManagedProcess;
  try {
    client = await startProcess(Deno.execPath(), clientArgs, {
      name: `wmproxy client${suffix}`,
      readyTimeoutMs: 60_000,
      env: { NO_COLOR: "1" },
      ready: {
        line(line) {
          const addr = listening(line);
          if (addr !== undefined) state.addr = addr;
          const event = jsonEvent(line);
          if (event?.event === "tunnel_connected") state.connected = true;
          if (event?.event === "mapping_ready" && typeof event.mapping === "string") {
            state.mappings[event.mapping] = String(event.public_addr ?? "");
          }
          if (event?.event === "mapping_failed") {
            return `failed: ${line}`;
          }
          const done = state.addr !== "" && state.connected &&
            names.every((n) => state.mappings[n] !== undefined);
          return done ? "ready" : undefined;
        },
      },
    });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (names.length > 0 && state.connected) {
      const missing = names.filter((n) => state.mappings[n] === undefined);
      throw new MappingsUnavailable(
        `wmproxy mappings not available (no mapping_ready event for ${missing.join(", ")}): ` +
          why.split("\n")[0],
      );
    }
    if (names.length > 0 && /--map|Unknown option|unknown/i.test(why)) {
      throw new MappingsUnavailable(
        `wmproxy mappings not available (no mapping_ready event): ${why.split("\n")[0]}`,
      );
    }
    throw error;
  }
  if (client.readyValue?.startsWith("failed")) {
    await stopProcess(client);
    throw new MappingsUnavailable(
      `wmproxy mappings not available (mapping_failed instead of mapping_ready): ` +
        client.readyValue.slice(0, 300),
    );
  }
  return { client, addr: state.addr, mappings: state.mappings };
}

function jsonEvent(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Waits (bounded) until a TCP connect to `127.0.0.1:port` succeeds. */
export async function waitPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`port ${port} not open after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      if ((await Deno.stat(path)).size > 0) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${path} not written after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stops the servers in reverse order of start (ignoring ones already stopped). */
export async function stopServers(servers: readonly { stop(): Promise<void> }[]): Promise<void> {
  for (const s of [...servers].reverse()) {
    try {
      await s.stop();
    } catch { /* already gone */ }
  }
}

/** Wraps a {@linkcode Server} so it can go into a stop list. */
export function stoppable(server: Server): { stop(): Promise<void> } {
  return { stop: () => stopProcess(server.process) };
}

// ---------------------------------------------------------------------------
// OpenSSH: sshd on a loopback port for root with keys, and ssh forwards

/** A loopback sshd accepting root with the generated client key. */
export interface Sshd extends Server {
  port: number;
  /** The client's private key. */
  clientKey: string;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-2).join(" / ");
    throw new Error(`Cannot run ${cmd}: exit code ${out.code}: ${err}`);
  }
}

/** Returns the sshd_config of anchors.md B2 for `port`, all paths under `dir`. */
export function sshdConfig(dir: string, port: number): string {
  return `# generated by tests/bench (anchors.md B2)
ListenAddress 127.0.0.1
Port ${port}
HostKey ${dir}/host_ed25519
PidFile ${dir}/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AuthorizedKeysFile ${dir}/authorized_keys
AllowTcpForwarding yes
GatewayPorts no
PermitOpen 127.0.0.1:*
PermitListen 127.0.0.1:*
`;
}

/** Generates keys and a config in `dir` and starts `sshd -D -e` on a free loopback port. */
export async function startSshd(bin: string, dir: string): Promise<Sshd> {
  const keygen = await findBinary(["ssh-keygen"]);
  if (keygen === undefined) throw new Error("Cannot start sshd: ssh-keygen not found");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.chmod(dir, 0o700);
  // Privilege separation dir that sshd checks for at start.
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  await run(keygen, ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/host_ed25519`]);
  await run(keygen, ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/client_key`]);
  await Deno.copyFile(`${dir}/client_key.pub`, `${dir}/authorized_keys`);
  const port = freePort();
  const conf = `${dir}/sshd_config`;
  await Deno.writeTextFile(conf, sshdConfig(dir, port));
  const process = await startProcess(bin, ["-D", "-e", "-f", conf], {
    name: "sshd",
    ready: { port },
  });
  return { process, addr: `127.0.0.1:${port}`, port, clientKey: `${dir}/client_key` };
}

/**
 * Starts `ssh -N` with one forward (`["-D", "127.0.0.1:P"]`, `["-L", …]`,
 * `["-R", …]`) to `sshd` with OpenSSH's default ciphers, ready when
 * `readyPort` accepts (the forward's listening side).
 */
export async function startSshForward(
  bin: string,
  sshd: Sshd,
  forward: readonly string[],
  readyPort: number,
  name: string,
): Promise<Server> {
  const process = await startProcess(
    bin,
    [
      "-N",
      "-i",
      sshd.clientKey,
      "-p",
      String(sshd.port),
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "ExitOnForwardFailure=yes",
      "-o",
      "LogLevel=ERROR",
      ...forward,
      "root@127.0.0.1",
    ],
    { name, ready: { port: readyPort }, readyTimeoutMs: 20_000 },
  );
  return { process, addr: `127.0.0.1:${readyPort}` };
}

/** `ssh -D`: a SOCKS5 port over SSH. */
export function startSshDynamic(bin: string, sshd: Sshd): Promise<Server> {
  const port = freePort();
  return startSshForward(bin, sshd, ["-D", `127.0.0.1:${port}`], port, "ssh -D");
}

/** `ssh -L`: a local port forwarded over SSH to `target`. */
export function startSshLocal(bin: string, sshd: Sshd, target: string): Promise<Server> {
  const port = freePort();
  return startSshForward(bin, sshd, ["-L", `127.0.0.1:${port}:${target}`], port, "ssh -L");
}

/** `ssh -R`: a port on the sshd side forwarded back over SSH to `target`. */
export function startSshRemote(bin: string, sshd: Sshd, target: string): Promise<Server> {
  const port = freePort();
  return startSshForward(bin, sshd, ["-R", `127.0.0.1:${port}:${target}`], port, "ssh -R");
}

// ---------------------------------------------------------------------------
// stunnel pair

/** A stunnel client → stunnel server pair in front of a target. */
export interface StunnelPair {
  /** The client stunnel's plain port (connect here). */
  addr: string;
  client: ManagedProcess;
  server: ManagedProcess;
  stop(): Promise<void>;
}

/** Creates a self-signed `localhost` certificate (anchors.md B2) in `dir`. */
async function makeCert(dir: string): Promise<{ pem: string; crt: string }> {
  const openssl = await findBinary(["openssl"]);
  if (openssl === undefined) throw new Error("Cannot make a certificate: openssl not found");
  const key = `${dir}/tls.key`;
  const crt = `${dir}/tls.crt`;
  await run(openssl, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    crt,
    "-days",
    "30",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);
  const pem = `${dir}/tls.pem`;
  await Deno.writeTextFile(pem, (await Deno.readTextFile(key)) + (await Deno.readTextFile(crt)));
  return { pem, crt };
}

/** Starts a stunnel server in front of `target` and a stunnel client in front of it (TLS 1.3). */
export async function startStunnelPair(
  bin: string,
  dir: string,
  target: string,
): Promise<StunnelPair> {
  await preparePeerDir(dir);
  const { pem, crt } = await makeCert(dir);
  const serverPort = freePort();
  const clientPort = freePort();
  const serverConf = `${dir}/stunnel-server.conf`;
  const clientConf = `${dir}/stunnel-client.conf`;
  await Deno.writeTextFile(
    serverConf,
    `; generated by tests/bench (anchors.md B2)\nforeground = yes\npid = ${dir}/stunnel-server.pid\n` +
      `[tunnel]\naccept = 127.0.0.1:${serverPort}\nconnect = ${target}\ncert = ${pem}\n`,
  );
  await Deno.writeTextFile(
    clientConf,
    `; generated by tests/bench (anchors.md B2)\nforeground = yes\npid = ${dir}/stunnel-client.pid\n` +
      `[tunnel]\nclient = yes\naccept = 127.0.0.1:${clientPort}\n` +
      `connect = 127.0.0.1:${serverPort}\nverifyPeer = yes\nCAfile = ${crt}\ncheckHost = localhost\n`,
  );
  const server = await startProcess(bin, [serverConf], {
    name: "stunnel server",
    ready: { port: serverPort },
  });
  let client: ManagedProcess;
  try {
    client = await startProcess(bin, [clientConf], {
      name: "stunnel client",
      ready: { port: clientPort },
    });
  } catch (error) {
    await stopProcess(server);
    throw error;
  }
  return {
    addr: `127.0.0.1:${clientPort}`,
    client,
    server,
    async stop() {
      await stopProcess(client);
      await stopProcess(server);
    },
  };
}

// ---------------------------------------------------------------------------
// iperf3

/** An `iperf3 -s` that tells when it is free for the next test. */
export interface IperfServer extends Server {
  /**
   * Waits (bounded) until the server has printed "Server listening" since the
   * last test started, i.e. it finished the previous test and takes a new one.
   */
  acquire(timeoutMs?: number): Promise<void>;
}

/**
 * Starts `iperf3 -s` on `port` (default: a free one), ready on its "Server
 * listening" line. iperf3 serves one test at a time, so start it after the
 * relays in front of it: their readiness probes then reach a closed port
 * instead of occupying the server with an empty test.
 */
export async function startIperfServer(bin: string, port = freePort()): Promise<IperfServer> {
  const listeningLine = /Server listening on/;
  const process = await startProcess(
    bin,
    ["-s", "-B", "127.0.0.1", "-p", String(port), "--forceflush"],
    {
      name: "iperf3 -s",
      ready: { line: (l) => listeningLine.test(l) ? "ok" : undefined },
    },
  );
  let listens = 1;
  let used = 0;
  let wake = () => {};
  process.watch((line) => {
    if (listeningLine.test(line)) {
      listens++;
      wake();
    }
  });
  return {
    process,
    addr: `127.0.0.1:${port}`,
    async acquire(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (listens <= used) {
        if (process.exited) throw new Error("Cannot run iperf3: iperf3 -s exited");
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new Error(`Cannot run iperf3: iperf3 -s still busy after ${timeoutMs} ms`);
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, Math.min(left, 1000));
        });
        clearTimeout(timer);
      }
      used = listens;
    },
  };
}

/** One iperf3 client run. */
export interface IperfResult {
  /** Receiver throughput of all streams, Gbit/s (10^9 bit/s). */
  gbps: number;
  /** Receiver throughput of each stream, Gbit/s. */
  streams: number[];
}

/** Parses `iperf3 -J` output (receiver figures). Throws when the run reports an error. */
export function parseIperfJson(text: string): IperfResult {
  let obj: {
    error?: string;
    end?: {
      sum_received?: { bits_per_second?: number };
      streams?: { receiver?: { bits_per_second?: number } }[];
    };
  };
  try {
    obj = JSON.parse(text);
  } catch {
    throw new SyntaxError(`Cannot parse iperf3 -J output: ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (typeof obj.error === "string") throw new Error(`iperf3 reported: ${obj.error}`);
  const bps = obj.end?.sum_received?.bits_per_second;
  if (typeof bps !== "number" || !(bps > 0)) {
    throw new Error("Cannot parse iperf3 -J output: no end.sum_received.bits_per_second");
  }
  const streams = (obj.end?.streams ?? []).map((s) => (s.receiver?.bits_per_second ?? 0) / 1e9);
  return { gbps: bps / 1e9, streams };
}

/** Runs `iperf3 -c` against `addr` (bounded: killed 30 s after its own time). */
export async function runIperf(
  bin: string,
  addr: string,
  options: { seconds: number; omit: number; parallel: number; signal: AbortSignal },
): Promise<IperfResult> {
  const [host, port] = [
    addr.slice(0, addr.lastIndexOf(":")),
    addr.slice(addr.lastIndexOf(":") + 1),
  ];
  const args = ["-c", host, "-p", port, "-t", String(options.seconds), "-J"];
  if (options.omit > 0) args.push("-O", String(options.omit));
  if (options.parallel > 1) args.push("-P", String(options.parallel));
  const out = await new Deno.Command(bin, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.any([
      options.signal,
      AbortSignal.timeout((options.seconds + options.omit + 30) * 1000),
    ]),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    let why = new TextDecoder().decode(out.stderr).trim();
    try {
      why = (JSON.parse(stdout) as { error?: string }).error ?? why;
    } catch { /* not JSON */ }
    throw new Error(`Cannot run iperf3 -c ${addr}: exit code ${out.code}: ${why.slice(0, 200)}`);
  }
  return parseIperfJson(stdout);
}

// ---------------------------------------------------------------------------
// Targets over several peers

/**
 * Judges `row` by minimum ratios to several peers at once (all must hold),
 * adding the ratios that are not there yet.
 */
export function setRatiosTarget(
  row: Row,
  peers: readonly { row: Row; min: number }[],
  extra?: { text: string; met: boolean | null },
): void {
  const parts: string[] = [];
  let met: boolean | null = true;
  for (const p of peers) {
    const ratio = row.ratios.find((r) => r.peer === p.row.subject) ?? addRatio(row, p.row);
    parts.push(`≥ ${p.min.toFixed(1)}× ${p.row.subject}`);
    if (ratio === undefined) met = null;
    else if (met !== null) met = met && ratio.median >= p.min;
  }
  if (extra !== undefined) {
    parts.push(extra.text);
    if (extra.met === null) met = null;
    else if (met !== null) met = met && extra.met;
  }
  row.target = { text: parts.join(", "), met: row.summary === undefined ? null : met };
}

// ---------------------------------------------------------------------------
// A sequential HTTP/1.1 client on one keep-alive connection

/** Latencies of sequential GETs on one connection. */
export interface SequentialResult {
  /** Per-request latency in milliseconds, in order. */
  latenciesMs: number[];
  /** Wall time of the loop in seconds. */
  seconds: number;
  /** Body bytes of the last response. */
  bodyBytes: number;
}

const HEADER_END = new Uint8Array([13, 10, 13, 10]);

function indexOfSeq(buf: Uint8Array, end: number, seq: Uint8Array): number {
  outer: for (let i = 0; i + seq.length <= end; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Sends `GET path` with `Host: host` to `addr` over ONE TCP connection
 * (TCP_NODELAY on our side), one request at a time, until `durationMs` has
 * passed or `maxRequests` were answered; every response must be a 200 with a
 * Content-Length body. Bounded: the socket read gives up after 10 s.
 */
export async function sequentialGets(
  addr: string,
  path: string,
  host: string,
  options: { durationMs: number; maxRequests: number; signal?: AbortSignal },
): Promise<SequentialResult> {
  const i = addr.lastIndexOf(":");
  const conn = await Deno.connect({ hostname: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
  conn.setNoDelay(true);
  const request = new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: wmproxy-bench\r\n\r\n`,
  );
  const buf = new Uint8Array(1 << 20);
  const latenciesMs: number[] = [];
  let bodyBytes = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const armWatchdog = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      try {
        conn.close();
      } catch { /* closed */ }
    }, 10_000);
  };
  const t0 = performance.now();
  try {
    while (latenciesMs.length < options.maxRequests) {
      if (options.signal?.aborted) throw new Error("Cannot continue: interrupted");
      const start = performance.now();
      if (start - t0 > options.durationMs) break;
      armWatchdog();
      let off = 0;
      while (off < request.length) off += await conn.write(request.subarray(off));
      // Read the head.
      let have = 0;
      let headEnd = -1;
      while (headEnd < 0) {
        const n = await conn.read(buf.subarray(have));
        if (n === null) throw new Error(`Cannot read a response from ${addr}: connection closed`);
        have += n;
        headEnd = indexOfSeq(buf, have, HEADER_END);
        if (headEnd < 0 && have === buf.length) {
          throw new Error("Cannot read a response: head too big");
        }
      }
      const head = new TextDecoder().decode(buf.subarray(0, headEnd));
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
      if (status !== "200" || length === undefined) {
        throw new Error(
          `Cannot use the response of ${addr}${path} (Host ${host}): ` +
            `${head.split("\r\n")[0]}${length === undefined ? ", no Content-Length" : ""}`,
        );
      }
      const total = headEnd + 4 + Number(length);
      if (total > buf.length) throw new Error(`Cannot read a ${length}-byte body: too big`);
      while (have < total) {
        const n = await conn.read(buf.subarray(have));
        if (n === null) throw new Error(`Cannot read a body from ${addr}: connection closed`);
        have += n;
      }
      if (have !== total) throw new Error(`Cannot parse the response: ${have - total} extra bytes`);
      latenciesMs.push(performance.now() - start);
      bodyBytes = Number(length);
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the watchdog */ }
  }
  return { latenciesMs, seconds: (performance.now() - t0) / 1000, bodyBytes };
}

/** The `p`-th percentile (0–100, nearest rank) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
