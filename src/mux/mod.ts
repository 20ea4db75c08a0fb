/**
 * The stream multiplexer: a {@link Session} over one `ByteConn` carrying many
 * flow-controlled {@link VirtualStream}s (PROTOCOL.md §5–§15).
 *
 * @module
 */
export { Session } from "./session.ts";
export type { SessionCloseReason, SessionOptions, SessionRole, SessionStats } from "./session.ts";
export { VirtualStream } from "./virtual_stream.ts";
export { StreamError } from "./stream_error.ts";
export { canReceive, canSend, STREAM_TRANSITIONS, transition } from "./stream_state.ts";
export type { StreamEvent, StreamState, StreamTransition } from "./stream_state.ts";
