/**
 * The byte relay between a client and a target: one read/write loop per
 * direction with a large reused buffer (allocated only while the relay runs,
 * and only once a read fills the small starting buffer),
 * half-close propagation, an idle timeout and byte counters.
 *
 * @module
 */
import type { ByteConn } from "../transport/conn.ts";
import { writeAll } from "../transport/conn.ts";
import { closeQuietly } from "./_counted_conn.ts";
import { IdleTimer } from "./_deadline.ts";

/** Buffer per direction. 256 KiB: see reference/deno-perf.md §2a. */
export const RELAY_BUFFER_BYTES = 256 * 1024;

/** Buffer per direction until the first read fills it (then {@link RELAY_BUFFER_BYTES}). */
export const RELAY_INITIAL_BUFFER_BYTES = 2 * 1024;

/** Options for {@link relay}. */
export interface RelayOptions {
  /** Close both sides after this long with no bytes either way. */
  idleTimeoutMs: number;
  /** Bytes per direction. @default RELAY_BUFFER_BYTES */
  bufferSize?: number;
  /** Aborting closes both sides and ends the relay. */
  signal?: AbortSignal | undefined;
}

/** What a finished relay did. */
export interface RelayResult {
  /** Bytes copied from `client` to `target`. */
  bytesUp: number;
  /** Bytes copied from `target` to `client`. */
  bytesDown: number;
  /** The relay ended because of the idle timeout. */
  idleTimeout: boolean;
  /** The first error of either direction (not set for a clean end or an abort). */
  error: Error | undefined;
}

/**
 * Copies bytes both ways until both directions reached end of stream (each
 * end is propagated with `closeWrite`), an error occurs, the idle timeout
 * passes or `signal` aborts. Takes ownership: both connections are closed when
 * it resolves. Never rejects.
 */
export async function relay(
  client: ByteConn,
  target: ByteConn,
  options: RelayOptions,
): Promise<RelayResult> {
  const size = options.bufferSize ?? RELAY_BUFFER_BYTES;
  let stopped = false;
  let firstError: Error | undefined;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    closeQuietly(client);
    closeQuietly(target);
  };
  const idle = new IdleTimer(options.idleTimeoutMs, stop);
  const signal = options.signal;
  const onAbort = () => stop();
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", onAbort, { once: true });

  const pump = async (src: ByteConn, dst: ByteConn): Promise<number> => {
    // Start small so that idle and chatty tunnels stay cheap; the first read
    // that fills the buffer switches to the large bulk buffer.
    let buf = new Uint8Array(Math.min(size, RELAY_INITIAL_BUFFER_BYTES));
    let total = 0;
    try {
      while (true) {
        const n = await src.read(buf);
        if (n === null) break;
        idle.touch();
        await writeAll(dst, n === buf.length ? buf : buf.subarray(0, n));
        total += n;
        if (n === buf.length && buf.length < size) buf = new Uint8Array(size);
      }
      try {
        await dst.closeWrite();
      } catch {
        // the peer is gone already; the other direction will notice
      }
    } catch (err) {
      if (!stopped) {
        firstError ??= err instanceof Error ? err : new Error(String(err));
        stop();
      }
    }
    return total;
  };

  const [bytesUp, bytesDown] = await Promise.all([pump(client, target), pump(target, client)]);
  idle.cancel();
  signal?.removeEventListener("abort", onAbort);
  const idleTimeout = idle.fired;
  stop();
  return { bytesUp, bytesDown, idleTimeout, error: firstError };
}
