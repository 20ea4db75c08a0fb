/**
 * Prometheus text exposition (version 0.0.4) of a {@link StatusSnapshot}.
 * Pure: the numbers come from the snapshot, so `/metrics` and `/api/status`
 * never disagree.
 *
 * @module
 */
import type { HistogramSample, StatusSnapshot } from "./status.ts";

function label(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function helpText(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`).join(",");
}

function num(value: number): number {
  return Number.isFinite(value) ? value : 0;
}

class Writer {
  readonly lines: string[] = [];
  metric(
    name: string,
    type: "counter" | "gauge",
    help: string,
    samples: [Record<string, string>, number][],
  ) {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = labelText(labels);
      this.lines.push(`${name}${l ? `{${l}}` : ""} ${num(value)}`);
    }
  }

  /**
   * Histograms: one `# HELP`/`# TYPE` per metric name (the first sample's
   * help), then every label set of that name with cumulative `_bucket`
   * lines, `+Inf`, `_sum` and `_count`.
   */
  histograms(samples: readonly HistogramSample[]) {
    const byName = new Map<string, HistogramSample[]>();
    for (const s of samples) {
      const list = byName.get(s.metric);
      if (list === undefined) byName.set(s.metric, [s]);
      else list.push(s);
    }
    for (const [name, list] of byName) {
      this.lines.push(`# HELP ${name} ${helpText(list[0]!.help)}`, `# TYPE ${name} histogram`);
      for (const { labels, hist } of list) {
        const l = labelText(labels);
        const prefix = l ? `${l},` : "";
        hist.buckets.forEach((le, i) => {
          this.lines.push(`${name}_bucket{${prefix}le="${le}"} ${num(hist.counts[i] ?? 0)}`);
        });
        this.lines.push(`${name}_bucket{${prefix}le="+Inf"} ${num(hist.count)}`);
        const braces = l ? `{${l}}` : "";
        this.lines.push(`${name}_sum${braces} ${num(hist.sum)}`);
        this.lines.push(`${name}_count${braces} ${num(hist.count)}`);
      }
    }
  }
}

/** Renders the metrics text for `s`. */
export function renderMetrics(s: StatusSnapshot): string {
  const w = new Writer();
  w.metric("wmproxy_uptime_seconds", "gauge", "Seconds since the process started.", [[
    {},
    s.uptime_s,
  ]]);
  w.metric("wmproxy_info", "gauge", "Version of the running program.", [[
    { version: s.version },
    1,
  ]]);
  w.metric(
    "wmproxy_internal_errors_total",
    "counter",
    "Unhandled rejections and uncaught exceptions (logged as internal_error) the process survived.",
    [[{}, s.internal_errors]],
  );
  if (s.proxy) {
    const p = s.proxy;
    w.metric(
      "wmproxy_proxy_connections_open",
      "gauge",
      "Forward proxy client connections open now.",
      [[{}, p.connections_open]],
    );
    w.metric(
      "wmproxy_proxy_connections_total",
      "counter",
      "Forward proxy client connections accepted.",
      [[{}, p.connections_total]],
    );
    w.metric(
      "wmproxy_proxy_connections_rejected_total",
      "counter",
      "Connections closed at once by max_connections.",
      [[{}, p.connections_rejected]],
    );
    w.metric(
      "wmproxy_proxy_bytes_total",
      "counter",
      "Forward proxy bytes by direction (in: from clients).",
      [
        [{ direction: "in" }, p.bytes_in],
        [{ direction: "out" }, p.bytes_out],
      ],
    );
  }
  if (s.tunnel_server) {
    const sessions = s.tunnel_server.sessions;
    w.metric("wmproxy_tunnel_sessions", "gauge", "Authenticated tunnel client sessions.", [[
      {},
      sessions.length,
    ]]);
    const per = (f: (x: (typeof sessions)[number]) => number) =>
      sessions.map((
        x,
      ): [Record<string, string>, number] => [{
        session: x.id,
        client: x.client ?? "",
        token: x.token,
      }, f(x)]);
    w.metric("wmproxy_tunnel_streams", "gauge", "Open streams per session.", per((x) => x.streams));
    w.metric(
      "wmproxy_tunnel_streams_total",
      "counter",
      "Streams opened per session.",
      per((x) => x.streams_total),
    );
    w.metric(
      "wmproxy_tunnel_bytes_in_total",
      "counter",
      "Tunnel bytes received per session.",
      per((x) => x.bytes_in),
    );
    w.metric(
      "wmproxy_tunnel_bytes_out_total",
      "counter",
      "Tunnel bytes sent per session.",
      per((x) => x.bytes_out),
    );
    w.metric(
      "wmproxy_tunnel_rtt_seconds",
      "gauge",
      "Last heartbeat round trip per session.",
      per((x) => (x.rtt_ms ?? NaN) / 1000),
    );
    w.metric("wmproxy_mappings", "gauge", "Registered mapping claims (domains and ports).", [[
      {},
      s.tunnel_server.mappings.length,
    ]]);
  }
  if (s.tunnel_client) {
    w.metric(
      "wmproxy_tunnel_client_connected",
      "gauge",
      "1 while the client's session to its server is up.",
      [
        [{ server: s.tunnel_client.server }, s.tunnel_client.connected ? 1 : 0],
      ],
    );
  }
  if (s.upstreams.length > 0) {
    w.metric(
      "wmproxy_upstream_healthy",
      "gauge",
      "1 when an upstream server is considered healthy.",
      s.upstreams.map((u) => [{ group: u.group, addr: u.addr }, u.healthy ? 1 : 0]),
    );
    w.metric(
      "wmproxy_upstream_active",
      "gauge",
      "In-flight uses of an upstream server.",
      s.upstreams.map((u) => [{ group: u.group, addr: u.addr }, u.active]),
    );
  }
  w.histograms(s.histograms);
  return w.lines.join("\n") + "\n";
}
