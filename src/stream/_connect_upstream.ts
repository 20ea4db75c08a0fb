/**
 * Connects to the next server of an upstream group, trying the others in
 * turn when a connect fails, and reporting every outcome to the group.
 *
 * @module
 */
import { type Dialer, dialTarget, dialTcpTarget } from "../proxy/dial.ts";
import { EVENTS } from "../observability/events.ts";
import type { Histogram } from "../observability/histogram.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import type { ByteConn } from "../transport/conn.ts";
import type { UpstreamGroup, UpstreamPeer } from "../upstream/upstream_group.ts";

/** Options for {@link connectUpstream}. */
export interface ConnectUpstreamOptions {
  connectTimeoutMs: number;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  /** @default dialTcpTarget */
  dial?: Dialer | undefined;
  /** Observes the seconds until a connection succeeded (failed tries included). */
  histogram?: Histogram | undefined;
}

/** A connection to a peer; the peer is acquired and must be released. */
export interface UpstreamConnection {
  conn: ByteConn;
  peer: UpstreamPeer;
}

/**
 * Picks a peer for `key` and connects; on failure reports it and tries the
 * next peer until every peer was tried. Rejects with the last error.
 */
export async function connectUpstream(
  group: UpstreamGroup,
  key: string,
  options: ConnectUpstreamOptions,
): Promise<UpstreamConnection> {
  const started = performance.now();
  const tried = new Set<string>();
  let last: unknown;
  while (true) {
    const peer = group.pick(key, tried);
    if (peer === undefined) {
      throw new Error(
        `Cannot connect to upstream "${group.name}": every server failed (last: ${
          errorMessage(last)
        })`,
        { cause: last },
      );
    }
    tried.add(peer.id);
    group.acquire(peer);
    try {
      const conn = await dialTarget(
        options.dial ?? dialTcpTarget,
        peer.addr.hostname,
        peer.addr.port,
        { timeoutMs: options.connectTimeoutMs, signal: options.signal },
      );
      group.reportSuccess(peer);
      options.histogram?.observe((performance.now() - started) / 1000);
      return { conn, peer };
    } catch (err) {
      group.release(peer);
      if (options.signal?.aborted) throw err;
      group.reportFailure(peer, errorMessage(err));
      options.log?.warn(EVENTS.upstream_connect_failed, {
        upstream: group.name,
        peer: peer.id,
        error: errorMessage(err),
      });
      last = err;
    }
  }
}
