/**
 * Every wire constant of the tunnel protocol, in the order of `PROTOCOL.md`.
 *
 * @module
 */

// §1 Purpose and status

/** The protocol version carried in the ALPN id, the preamble and every frame header. */
export const PROTOCOL_VERSION = 1;
/** The versions this implementation speaks. */
export const SUPPORTED_VERSIONS: readonly number[] = [PROTOCOL_VERSION];
/** Our own ALPN protocol id (PROTOCOL.md §4). */
export const ALPN_PROTOCOL = "wmproxy/1";

// §4 Connection setup

/** The 7-byte preamble magic, ASCII `WMPROXY`. */
export const PREAMBLE_MAGIC: Uint8Array = new Uint8Array([
  0x57,
  0x4d,
  0x50,
  0x52,
  0x4f,
  0x58,
  0x59,
]);
/** Preamble size: magic plus one version byte. */
export const PREAMBLE_SIZE = 8;

// §5 Framing

/** Size of a frame header: version u8, type u8, flags u16, stream id u32, length u32. */
export const FRAME_HEADER_SIZE = 12;
/** Largest DATA payload. */
export const MAX_PAYLOAD = 65536;
/** Largest CONTROL payload (one JSON control message). */
export const MAX_CONTROL_PAYLOAD = 65536;

// §6 Frame types

export const FRAME_TYPE_DATA = 0x00;
export const FRAME_TYPE_WINDOW_UPDATE = 0x01;
export const FRAME_TYPE_PING = 0x02;
export const FRAME_TYPE_GO_AWAY = 0x03;
export const FRAME_TYPE_CONTROL = 0x04;

/** Frame type names by code, for messages and tests. */
export const FRAME_TYPE_NAMES = {
  [FRAME_TYPE_DATA]: "DATA",
  [FRAME_TYPE_WINDOW_UPDATE]: "WINDOW_UPDATE",
  [FRAME_TYPE_PING]: "PING",
  [FRAME_TYPE_GO_AWAY]: "GO_AWAY",
  [FRAME_TYPE_CONTROL]: "CONTROL",
} as const;

/** A known frame type code. */
export type FrameType = keyof typeof FRAME_TYPE_NAMES;
/** A known frame type name. */
export type FrameTypeName = typeof FRAME_TYPE_NAMES[FrameType];

// §7 Flags

export const FLAG_SYN = 0x0001;
export const FLAG_ACK = 0x0002;
export const FLAG_FIN = 0x0004;
export const FLAG_RST = 0x0008;
/** Every defined flag bit. */
export const FLAGS_ALL = FLAG_SYN | FLAG_ACK | FLAG_FIN | FLAG_RST;

// §8 Stream ids

/** The session's own stream id. */
export const SESSION_STREAM_ID = 0;
/** First stream id a client opens (odd ids). */
export const FIRST_CLIENT_STREAM_ID = 1;
/** First stream id a server opens (even ids). */
export const FIRST_SERVER_STREAM_ID = 2;
/** Largest stream id. */
export const MAX_STREAM_ID = 0xffffffff;

// §10 Flow control

/** Credit each direction of a new stream starts with. */
export const INITIAL_WINDOW = 262144;
/** Largest credit a stream may hold. */
export const MAX_WINDOW = 16777216;
/** The receive window wmproxy grants by default (above INITIAL_WINDOW, §10). */
export const DEFAULT_RECEIVE_WINDOW = 1048576;

// §12 Ping and heartbeat

/** Milliseconds between heartbeat pings. */
export const HEARTBEAT_INTERVAL_MS = 15_000;
/** Milliseconds of silence after which a session is dead. */
export const HEARTBEAT_TIMEOUT_MS = 45_000;

// §14 Limits

/** Concurrent streams per session, by default. */
export const DEFAULT_MAX_STREAMS = 4096;
/** Milliseconds for TLS + preamble + hello + auth. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Bytes of queued outgoing frames after which the session ends. */
export const MAX_OUTGOING_BUFFER = 8 * 1048576;
/** Received control messages the application has not read yet. */
export const MAX_PENDING_CONTROL = 256;
/** Longest name (client, mapping, key id, capability). */
export const MAX_NAME_LENGTH = 64;
/** Longest host name. */
export const MAX_HOSTNAME_LENGTH = 253;
/** Most capabilities in a hello. */
export const MAX_CAPABILITIES = 32;
/** Most mappings in one register, names in one unregister. */
export const MAX_MAPPINGS_PER_MESSAGE = 256;
/** Most domains of one HTTP(S) mapping. */
export const MAX_DOMAINS_PER_MAPPING = 32;
/** Longest human-readable message in a control message. */
export const MAX_MESSAGE_LENGTH = 512;
/** Bytes of a nonce. */
export const NONCE_SIZE = 32;

// §15 Error codes

/** Error codes of GO_AWAY, RST, auth_failed and register_result. */
export const ERROR_CODES = {
  NORMAL: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_ID_ERROR: 4,
  FRAME_SIZE_ERROR: 5,
  STREAM_CLOSED: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  HEARTBEAT_TIMEOUT: 9,
  HANDSHAKE_TIMEOUT: 10,
  VERSION_MISMATCH: 11,
  AUTH_FAILED: 12,
  INVALID_MESSAGE: 13,
  RESOURCE_EXHAUSTED: 14,
  STREAM_IDS_EXHAUSTED: 15,
  NOT_FOUND: 16,
  FORBIDDEN: 17,
  CONFLICT: 18,
  CONNECT_FAILED: 19,
  TRANSPORT_CLOSED: 20,
} as const;

/** An error code name. */
export type ErrorCodeName = keyof typeof ERROR_CODES;
/** An error code number; peers may send numbers this version does not know. */
export type ErrorCode = number;

const ERROR_NAMES: ReadonlyMap<number, ErrorCodeName> = new Map(
  (Object.entries(ERROR_CODES) as [ErrorCodeName, number][]).map(([k, v]) => [v, k]),
);

/** The name of an error code, or `UNKNOWN(n)` for a code this version does not define. */
export function errorCodeName(code: number): string {
  return ERROR_NAMES.get(code) ?? `UNKNOWN(${code})`;
}
