/**
 * The preamble exchange of PROTOCOL.md §4 with messages that say what to fix
 * when the other side speaks TLS and we do not (or the reverse).
 *
 * @module
 */
import {
  decodePreamble,
  encodePreamble,
  ERROR_CODES,
  PREAMBLE_SIZE,
  ProtocolError,
} from "../tunnel/mod.ts";
import type { ByteConn } from "../transport/mod.ts";

const TLS_RECORD_TYPES = new Set([0x14, 0x15, 0x16, 0x17]);

/**
 * Sends our preamble, reads exactly the peer's, and returns its version.
 * `peer` is "server" or "client"; `tls` is whether this side uses TLS.
 */
export async function exchangeCheckedPreamble(
  conn: ByteConn,
  peer: "server" | "client",
  tls: boolean,
): Promise<number> {
  const ours = encodePreamble();
  let off = 0;
  while (off < ours.length) off += await conn.write(ours.subarray(off));
  const theirs = new Uint8Array(PREAMBLE_SIZE);
  let got = 0;
  while (got < PREAMBLE_SIZE) {
    const n = await conn.read(theirs.subarray(got));
    if (n === null) {
      const hint = tls ? "" : `; if the ${peer} uses TLS, turn TLS on here too`;
      throw new ProtocolError(
        ERROR_CODES.PROTOCOL_ERROR,
        `Cannot start the session: the ${peer} closed the connection before its preamble${hint}`,
      );
    }
    if (got === 0 && !tls && TLS_RECORD_TYPES.has(theirs[0]!)) {
      const fix = peer === "server"
        ? "set client.tls.enabled: true"
        : "the client must not use TLS here";
      throw new ProtocolError(
        ERROR_CODES.PROTOCOL_ERROR,
        `Cannot start the session: the ${peer} speaks TLS but this side has TLS off (${fix})`,
      );
    }
    got += n;
  }
  return decodePreamble(theirs, peer);
}
