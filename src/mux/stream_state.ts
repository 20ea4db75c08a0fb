/**
 * The stream lifecycle of PROTOCOL.md §9 as a pure table.
 *
 * @module
 */

/** One side's view of a stream (§9). */
export type StreamState = "open" | "local_closed" | "remote_closed" | "closed" | "reset";

/** What can happen to a stream. */
export type StreamEvent = "send_fin" | "recv_fin" | "recv_data" | "send_rst" | "recv_rst";

/**
 * The outcome of an event: the next state, `"peer_error"` when the peer broke
 * §9 (the session ends with `STREAM_CLOSED`), or `"local_error"` when the
 * application misused the stream (its call fails, nothing is sent).
 */
export type StreamTransition = StreamState | "peer_error" | "local_error";

/** §9's state table, exactly. Events in `closed` and `reset` are ignored. */
export const STREAM_TRANSITIONS: Readonly<
  Record<StreamState, Readonly<Record<StreamEvent, StreamTransition>>>
> = {
  open: {
    send_fin: "local_closed",
    recv_fin: "remote_closed",
    recv_data: "open",
    send_rst: "reset",
    recv_rst: "reset",
  },
  local_closed: {
    send_fin: "local_error",
    recv_fin: "closed",
    recv_data: "local_closed",
    send_rst: "reset",
    recv_rst: "reset",
  },
  remote_closed: {
    send_fin: "closed",
    recv_fin: "peer_error",
    recv_data: "peer_error",
    send_rst: "reset",
    recv_rst: "reset",
  },
  closed: {
    send_fin: "local_error",
    recv_fin: "closed",
    recv_data: "closed",
    send_rst: "closed",
    recv_rst: "closed",
  },
  reset: {
    send_fin: "local_error",
    recv_fin: "reset",
    recv_data: "reset",
    send_rst: "reset",
    recv_rst: "reset",
  },
};

/**
 * The next state for `event` in `state`.
 *
 * @example
 * ```ts
 * import { transition } from "@/mux/mod.ts";
 * transition("open", "send_fin"); // "local_closed"
 * transition("remote_closed", "recv_data"); // "peer_error"
 * ```
 */
export function transition(state: StreamState, event: StreamEvent): StreamTransition {
  return STREAM_TRANSITIONS[state][event];
}

/** Whether we may still send DATA in `state`. */
export function canSend(state: StreamState): boolean {
  return state === "open" || state === "remote_closed";
}

/** Whether the peer may still send DATA in `state`. */
export function canReceive(state: StreamState): boolean {
  return state === "open" || state === "local_closed";
}
