/**
 * The connection preamble (PROTOCOL.md §4 step 2): magic `WMPROXY` plus a
 * version byte, sent by both sides before any frame.
 *
 * @module
 */
import {
  ERROR_CODES,
  PREAMBLE_MAGIC,
  PREAMBLE_SIZE,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
} from "./constants.ts";
import { ProtocolError } from "./protocol_error.ts";

/** The minimal connection shape the preamble exchange needs. */
export interface PreambleConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Encodes our preamble: `57 4d 50 52 4f 58 59 01` for version 1. */
export function encodePreamble(version: number = PROTOCOL_VERSION): Uint8Array {
  if (!Number.isInteger(version) || version < 0 || version > 255) {
    throw new RangeError(`Cannot encode preamble: version ${version} is not a byte`);
  }
  const out = new Uint8Array(PREAMBLE_SIZE);
  out.set(PREAMBLE_MAGIC);
  out[PREAMBLE_SIZE - 1] = version;
  return out;
}

/**
 * Decodes the peer's 8-byte preamble and returns its version. Throws a
 * {@link ProtocolError}: `PROTOCOL_ERROR` for a wrong magic,
 * `VERSION_MISMATCH` for a version we do not speak.
 */
export function decodePreamble(bytes: Uint8Array, peer = "peer"): number {
  if (bytes.length !== PREAMBLE_SIZE) {
    throw new ProtocolError(
      ERROR_CODES.PROTOCOL_ERROR,
      `Cannot decode preamble: ${bytes.length} bytes given, ${PREAMBLE_SIZE} needed`,
    );
  }
  for (let i = 0; i < PREAMBLE_MAGIC.length; i++) {
    if (bytes[i] !== PREAMBLE_MAGIC[i]) {
      throw new ProtocolError(
        ERROR_CODES.PROTOCOL_ERROR,
        `Cannot decode preamble: the ${peer} does not speak the wmproxy tunnel protocol (bad magic)`,
      );
    }
  }
  const version = bytes[PREAMBLE_SIZE - 1]!;
  if (!SUPPORTED_VERSIONS.includes(version)) {
    const advice = version > PROTOCOL_VERSION ? "upgrade this side" : `upgrade the ${peer}`;
    throw new ProtocolError(
      ERROR_CODES.VERSION_MISMATCH,
      `Cannot accept ${peer}: protocol version ${version} is not supported (supported: ${
        SUPPORTED_VERSIONS.join(", ")
      }); ${advice}`,
    );
  }
  return version;
}

/** Options for {@link exchangePreamble}. */
export interface ExchangePreambleOptions {
  /** Aborting closes `conn` so that the pending read ends. */
  signal?: AbortSignal;
  /** Who the other side is, for messages. @default "peer" */
  peer?: string;
  /**
   * Whether this side runs over plain TCP: then a peer that answers with a TLS
   * record, or closes at once, gets a message that says to match TLS settings.
   * @default false
   */
  plain?: boolean;
  /** What to tell the operator to change when the peer speaks TLS and we do not. */
  tlsFix?: string;
}

/** First bytes of TLS records (alert, handshake, …): a TLS peer answering plain bytes. */
const TLS_RECORD_TYPES = new Set([0x14, 0x15, 0x16, 0x17]);

/**
 * Sends our preamble and reads exactly the peer's 8 bytes (never more, so the
 * frames that follow stay in `conn`). Returns the peer's version.
 */
export async function exchangePreamble(
  conn: PreambleConn,
  options: ExchangePreambleOptions = {},
): Promise<number> {
  const { signal } = options;
  signal?.throwIfAborted();
  const onAbort = () => conn.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const ours = encodePreamble();
    let off = 0;
    while (off < ours.length) off += await conn.write(ours.subarray(off));
    const theirs = new Uint8Array(PREAMBLE_SIZE);
    let got = 0;
    while (got < PREAMBLE_SIZE) {
      const n = await conn.read(theirs.subarray(got));
      const peer = options.peer ?? "peer";
      if (n === null) {
        const hint = options.plain ? `; if the ${peer} uses TLS, turn TLS on here too` : "";
        throw new ProtocolError(
          ERROR_CODES.PROTOCOL_ERROR,
          `Cannot read preamble: the ${peer} closed the connection after ${got} bytes${hint}`,
        );
      }
      if (got === 0 && options.plain && TLS_RECORD_TYPES.has(theirs[0]!)) {
        throw new ProtocolError(
          ERROR_CODES.PROTOCOL_ERROR,
          `Cannot read preamble: the ${peer} speaks TLS but this side has TLS off` +
            (options.tlsFix ? ` (${options.tlsFix})` : ""),
        );
      }
      got += n;
    }
    return decodePreamble(theirs, options.peer);
  } catch (err) {
    signal?.throwIfAborted();
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}
