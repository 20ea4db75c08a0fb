/**
 * What the control API reports: one snapshot of the running program, built
 * from the components' own counters at request time. Never holds secrets.
 *
 * @module
 */
import type { HistogramSample } from "../observability/histogram.ts";

export type { HistogramSample };

/** One tunnel session as the server sees it. */
export interface SessionStatus {
  id: string;
  client: string | undefined;
  token: string;
  peer: string;
  since: string;
  rtt_ms: number | null;
  streams: number;
  streams_total: number;
  bytes_in: number;
  bytes_out: number;
}

/** The whole snapshot (`GET /api/status`). */
export interface StatusSnapshot {
  version: string;
  pid: number;
  started_at: string;
  uptime_s: number;
  listeners: { component: string; addr: string }[];
  proxy: {
    connections_open: number;
    connections_total: number;
    connections_rejected: number;
    bytes_in: number;
    bytes_out: number;
  } | null;
  tunnel_server: {
    addr: string;
    sessions: SessionStatus[];
    mappings: { key: string; mapping: string; session: string }[];
  } | null;
  tunnel_client: { server: string; connected: boolean } | null;
  upstreams: {
    group: string;
    addr: string;
    backup: boolean;
    healthy: boolean;
    active: number;
    fails: number;
  }[];
  /** Unhandled rejections and uncaught exceptions survived since start. */
  internal_errors: number;
  /** Latency histograms of every running section (`/metrics` renders them as histograms). */
  histograms: HistogramSample[];
}
