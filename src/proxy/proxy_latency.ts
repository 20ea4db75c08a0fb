/**
 * The forward proxy's latency histograms: HTTP request time to the upstream
 * response head, and the time to dial a CONNECT or SOCKS5 target.
 *
 * @module
 */
import { Histogram, type HistogramSample } from "../observability/histogram.ts";

const REQUEST_METRIC = "wmproxy_proxy_request_duration_seconds";
const REQUEST_HELP =
  "Forward proxy HTTP requests: seconds from the request head to the upstream response head.";
const CONNECT_METRIC = "wmproxy_proxy_connect_duration_seconds";
const CONNECT_HELP = "Forward proxy tunnels: seconds to connect to the target (successful dials).";

/** See the module doc. One per forward proxy listener. */
export class ProxyLatency {
  /** Absolute-form HTTP: request head read → upstream response head received. */
  readonly request: Histogram = new Histogram();
  /** CONNECT: successful dials to the target. */
  readonly connect: Histogram = new Histogram();
  /** SOCKS5 CONNECT: successful dials to the target. */
  readonly socks5: Histogram = new Histogram();

  /** The three histograms as status samples (`kind` = http, connect, socks5). */
  samples(): HistogramSample[] {
    return [
      {
        metric: REQUEST_METRIC,
        help: REQUEST_HELP,
        labels: { kind: "http" },
        hist: this.request.snapshot(),
      },
      {
        metric: CONNECT_METRIC,
        help: CONNECT_HELP,
        labels: { kind: "connect" },
        hist: this.connect.snapshot(),
      },
      {
        metric: CONNECT_METRIC,
        help: CONNECT_HELP,
        labels: { kind: "socks5" },
        hist: this.socks5.snapshot(),
      },
    ];
  }
}
