/**
 * Runs a `stream` section: its upstream groups (with active health checks)
 * and every server (tcp, udp, ws2tcp, tcp2ws, tcp2wss). A reload
 * ({@link StreamSection.update}) touches only what changed: unchanged servers
 * keep their listener and connections, a changed listener restarts alone,
 * other changes apply to new connections, and unchanged groups keep their
 * health state.
 *
 * @module
 */
import type {
  StreamConfig,
  StreamProtocol,
  StreamServerConfig,
  TcpStreamServerConfig,
  TcpToWsStreamServerConfig,
  UdpStreamServerConfig,
  WsToTcpStreamServerConfig,
} from "../config/stream_section.ts";
import { EVENTS } from "../observability/events.ts";
import { Histogram, type HistogramSample } from "../observability/histogram.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { Dialer } from "../proxy/dial.ts";
import type { HostPort } from "../transport/conn.ts";
import { formatHostPort } from "../transport/conn.ts";
import { UpstreamGroup } from "../upstream/upstream_group.ts";
import { planStreamReload } from "./stream_reload_plan.ts";
import { TcpStreamServer } from "./tcp_stream_server.ts";
import { TcpToWsServer } from "./tcp_to_ws_server.ts";
import { UdpStreamServer } from "./udp_stream_server.ts";
import { WsToTcpServer } from "./ws_to_tcp_server.ts";

const CONNECT_METRIC = "wmproxy_stream_connect_duration_seconds";
const CONNECT_HELP =
  "Stream servers: seconds to connect to an upstream (tcp, ws2tcp) or open the WebSocket (tcp2ws).";

/** Options for {@link startStreamSection}. */
export interface StartStreamSectionOptions {
  log: Logger;
  /** Aborting closes everything. */
  signal?: AbortSignal | undefined;
  /** How TCP upstreams are dialled. @default dialTcpTarget */
  dial?: Dialer | undefined;
}

/** A bound stream server. */
export interface StreamListenerInfo {
  protocol: StreamProtocol;
  /** The real bound address, `host:port`. */
  addr: string;
}

/**
 * What {@link StreamSection.update} did, server by server. A server is named
 * `"<protocol> <host:port>"`: its bound address, or its `listen` when it is
 * not running.
 */
export interface StreamReloadReport {
  /** Unchanged: listener and connections untouched. */
  kept: string[];
  /** Same listener, new settings or a replaced group for new connections. */
  updated: string[];
  /** The listener changed: the old one closed (with its connections), a new one started. */
  restarted: string[];
  started: string[];
  stopped: string[];
  /** Servers that could not start; they stay off until a later reload starts them. */
  failed: { server: string; error: string }[];
}

/** A running `stream` section. */
export interface StreamSection extends AsyncDisposable {
  /** The running servers, in config order. */
  readonly listeners: readonly StreamListenerInfo[];
  /** The named groups of `stream.upstreams`, in config order (for the admin API). */
  readonly upstreams: readonly UpstreamGroup[];
  /** Upstream connect times per listener (tcp, ws2tcp, tcp2ws, tcp2wss). */
  histograms(): HistogramSample[];
  /**
   * Applies a new config in place (reload). Never rejects for a listener that
   * cannot be bound: that server is reported in `failed` and the rest runs on.
   * Rejects only when the section is closed.
   */
  update(next: StreamConfig): Promise<StreamReloadReport>;
  /** Stops every listener, closes every connection and stops health checks. */
  close(): Promise<void>;
}

/** A bound server, whatever its protocol. */
interface RunningServer {
  readonly addr: HostPort;
  /** Same protocol and listener; `group` is undefined for tcp2ws/tcp2wss. */
  update(config: StreamServerConfig, group: UpstreamGroup | undefined): void;
  close(): Promise<void>;
}

/** One `stream.servers` entry and what runs for it. */
interface Entry {
  readonly config: StreamServerConfig;
  /** `undefined` when it could not start. */
  readonly server: RunningServer | undefined;
  /** Its group (tcp, udp, ws2tcp). */
  readonly group: UpstreamGroup | undefined;
  /** Whether `group` belongs to this entry alone (`target:`), to be closed with it. */
  readonly implicit: boolean;
  readonly histogram: Histogram;
}

interface NamedGroup {
  readonly config: StreamConfig["upstreams"][number];
  readonly group: UpstreamGroup;
}

/** A group of one server for `target: host:port`; passive checks never mark it down. */
function targetGroup(target: string): UpstreamGroup {
  return new UpstreamGroup({
    name: `target ${target}`,
    strategy: "round_robin",
    servers: [{ addr: target, weight: 1, max_fails: 0, fail_timeout_ms: 10_000, backup: false }],
    health_check: undefined,
  });
}

function describeServer(config: StreamServerConfig, server: RunningServer | undefined): string {
  return `${config.protocol} ${server ? formatHostPort(server.addr) : config.listen}`;
}

const EMPTY: StreamConfig = { upstreams: [], servers: [] };

class RunningStreamSection implements StreamSection {
  readonly #log: Logger;
  readonly #dial: Dialer | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => void this.close();
  #config: StreamConfig = EMPTY;
  #entries: Entry[] = [];
  #named = new Map<string, NamedGroup>();
  /** Updates and the close run one at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(options: StartStreamSectionOptions) {
    this.#log = options.log.child({ component: "stream" });
    this.#dial = options.dial;
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  get listeners(): readonly StreamListenerInfo[] {
    const out: StreamListenerInfo[] = [];
    for (const e of this.#entries) {
      if (e.server) out.push({ protocol: e.config.protocol, addr: formatHostPort(e.server.addr) });
    }
    return out;
  }

  get upstreams(): readonly UpstreamGroup[] {
    return [...this.#named.values()].map((n) => n.group);
  }

  histograms(): HistogramSample[] {
    const out: HistogramSample[] = [];
    for (const e of this.#entries) {
      if (e.server === undefined || e.config.protocol === "udp") continue;
      out.push({
        metric: CONNECT_METRIC,
        help: CONNECT_HELP,
        labels: { listener: formatHostPort(e.server.addr) },
        hist: e.histogram.snapshot(),
      });
    }
    return out;
  }

  update(next: StreamConfig): Promise<StreamReloadReport> {
    const run = this.#queue.then(() => {
      if (this.#closing) throw new Error("Cannot update the stream section: it is closed");
      return this.#apply(next, false);
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** The first start: any listener that cannot be bound rejects (after closing the rest). */
  async start(config: StreamConfig): Promise<void> {
    const run = this.#queue.then(() => this.#apply(config, true));
    this.#queue = run.catch(() => {});
    try {
      await run;
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#queue.then(async () => {
      this.#signal?.removeEventListener("abort", this.#onAbort);
      const entries = this.#entries;
      this.#entries = [];
      await Promise.all(entries.map((e) => this.#stopEntry(e)));
      await Promise.all([...this.#named.values()].map((n) => n.group.close()));
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #stopEntry(e: Entry): Promise<void> {
    if (e.server) {
      await e.server.close();
      this.#log.info(EVENTS.listener_closed, {
        addr: formatHostPort(e.server.addr),
        protocol: e.config.protocol,
      });
    }
    if (e.implicit) await e.group?.close();
  }

  async #apply(next: StreamConfig, strict: boolean): Promise<StreamReloadReport> {
    const log = this.#log;
    const report: StreamReloadReport = {
      kept: [],
      updated: [],
      restarted: [],
      started: [],
      stopped: [],
      failed: [],
    };
    const old = this.#entries;
    const plan = planStreamReload(this.#config, old.map((e) => e.server !== undefined), next);

    const named = new Map<string, NamedGroup>();
    const fresh: UpstreamGroup[] = [];
    for (const config of next.upstreams) {
      const kept = plan.keptGroups.includes(config.name) ? this.#named.get(config.name) : undefined;
      if (kept) {
        named.set(config.name, kept);
      } else {
        const group = new UpstreamGroup(config, { log });
        named.set(config.name, { config, group });
        fresh.push(group);
      }
    }
    const retired = plan.retiredGroups.flatMap((name) => this.#named.get(name)?.group ?? []);

    /** The group for `config`, reusing `previous`'s own group when its target did not change. */
    const groupFor = (
      config: StreamServerConfig,
      index: number,
      previous: Entry | undefined,
    ): { group: UpstreamGroup | undefined; implicit: boolean } => {
      if (!("upstream" in config)) return { group: undefined, implicit: false }; // tcp2ws, tcp2wss
      if (config.upstream !== undefined) {
        const g = named.get(config.upstream);
        if (g === undefined) {
          throw new RangeError(
            `Cannot start stream.servers[${index}]: no upstream group named "${config.upstream}"`,
          );
        }
        return { group: g.group, implicit: false };
      }
      const target = config.target ?? "";
      if (previous?.implicit && previous.config.target === target) {
        return { group: previous.group, implicit: true };
      }
      return { group: targetGroup(target), implicit: true };
    };

    const entries: (Entry | undefined)[] = next.servers.map(() => undefined);
    const stopping: Entry[] = [];
    /** Implicit groups of updated servers that got a new one. */
    const orphaned: UpstreamGroup[] = [];
    const starts: { to: number; restart: boolean }[] = [];
    for (const a of plan.servers) {
      switch (a.action) {
        case "keep": {
          const e = old[a.from]!;
          entries[a.to] = e;
          report.kept.push(describeServer(e.config, e.server));
          break;
        }
        case "update": {
          const e = old[a.from]!;
          const config = next.servers[a.to]!;
          const { group, implicit } = groupFor(config, a.to, e);
          e.server!.update(config, group);
          if (e.implicit && e.group !== undefined && e.group !== group) orphaned.push(e.group);
          entries[a.to] = { ...e, config, group, implicit };
          report.updated.push(describeServer(config, e.server));
          break;
        }
        case "restart":
          stopping.push(old[a.from]!);
          starts.push({ to: a.to, restart: true });
          break;
        case "start":
          starts.push({ to: a.to, restart: false });
          break;
        case "stop": {
          const e = old[a.from]!;
          stopping.push(e);
          report.stopped.push(describeServer(e.config, e.server));
          break;
        }
      }
    }
    // Close first, so that a server may take over an address another one gave up.
    await Promise.all(stopping.map((e) => this.#stopEntry(e)));

    starts.sort((x, y) => x.to - y.to);
    for (const { to, restart } of starts) {
      const config = next.servers[to]!;
      const histogram = new Histogram();
      let group: UpstreamGroup | undefined;
      let implicit = false;
      try {
        ({ group, implicit } = groupFor(config, to, undefined));
        const server = await this.#startServer(config, group, histogram);
        entries[to] = { config, server, group, implicit, histogram };
        const addr = formatHostPort(server.addr);
        log.info(EVENTS.listening, { addr, protocol: config.protocol });
        (restart ? report.restarted : report.started).push(describeServer(config, server));
      } catch (cause) {
        if (implicit) await group?.close();
        const err = new Error(
          `Cannot listen on "${config.listen}" (stream.servers[${to}], ${config.protocol}): ${
            errorMessage(cause)
          }`,
          { cause },
        );
        if (strict) {
          this.#entries = entries.filter((e) => e !== undefined);
          this.#named = named;
          throw err;
        }
        entries[to] = { config, server: undefined, group: undefined, implicit: false, histogram };
        report.failed.push({ server: describeServer(config, undefined), error: err.message });
      }
    }

    this.#config = next;
    this.#entries = entries.map((e) => e!);
    this.#named = named;
    for (const g of fresh) g.start();
    await Promise.all([...retired, ...orphaned].map((g) => g.close()));
    return report;
  }

  async #startServer(
    config: StreamServerConfig,
    group: UpstreamGroup | undefined,
    histogram: Histogram,
  ): Promise<RunningServer> {
    const log = this.#log;
    const dial = this.#dial;
    switch (config.protocol) {
      case "tcp": {
        const s = TcpStreamServer.listen(config, group!, {
          log,
          dial,
          connectHistogram: histogram,
        });
        return {
          addr: s.addr,
          update: (c, g) => s.update(c as TcpStreamServerConfig, g!),
          close: () => s.close(),
        };
      }
      case "udp": {
        const s = await UdpStreamServer.listen(config, group!, { log });
        return {
          addr: s.addr,
          update: (c, g) => s.update(c as UdpStreamServerConfig, g!),
          close: () => s.close(),
        };
      }
      case "ws2tcp": {
        const s = WsToTcpServer.listen(config, group!, { log, dial, connectHistogram: histogram });
        return {
          addr: s.addr,
          update: (c, g) => s.update(c as WsToTcpStreamServerConfig, g!),
          close: () => s.close(),
        };
      }
      case "tcp2ws":
      case "tcp2wss": {
        const caCerts = config.ca_file === undefined
          ? undefined
          : [await Deno.readTextFile(config.ca_file)];
        const s = TcpToWsServer.listen(config, { log, caCerts, connectHistogram: histogram });
        return {
          addr: s.addr,
          update: (c) => s.update(c as TcpToWsStreamServerConfig),
          close: () => s.close(),
        };
      }
    }
  }
}

/**
 * Starts every upstream group and server of `config`. Rejects with
 * `Cannot listen on …` (after closing whatever started) when a listener
 * cannot be bound.
 */
export async function startStreamSection(
  config: StreamConfig,
  options: StartStreamSectionOptions,
): Promise<StreamSection> {
  const section = new RunningStreamSection(options);
  await section.start(config);
  if (options.signal?.aborted) await section.close();
  return section;
}
