/**
 * UDP datagrams over a byte stream (PROTOCOL.md §11.9): each datagram is a
 * 2-byte big-endian length followed by that many bytes, so boundaries survive.
 *
 * @module
 */

/** Largest datagram payload a frame can carry. */
export const MAX_DATAGRAM = 65535;

/** Prefixes `datagram` with its length. Throws `RangeError` above {@link MAX_DATAGRAM}. */
export function frameDatagram(datagram: Uint8Array): Uint8Array {
  if (datagram.length > MAX_DATAGRAM) {
    throw new RangeError(
      `Cannot frame datagram: ${datagram.length} bytes exceed limit ${MAX_DATAGRAM}`,
    );
  }
  const out = new Uint8Array(2 + datagram.length);
  out[0] = datagram.length >> 8;
  out[1] = datagram.length & 0xff;
  out.set(datagram, 2);
  return out;
}

/**
 * Splits a byte stream back into datagrams, whatever the chunking. Holds at
 * most one partial datagram (≤ 65537 bytes).
 */
export class DatagramDeframer {
  #pending = new Uint8Array(0);

  /** Feeds bytes; returns the datagrams they complete (copies, safe to keep). */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf = chunk;
    if (this.#pending.length > 0) {
      buf = new Uint8Array(this.#pending.length + chunk.length);
      buf.set(this.#pending);
      buf.set(chunk, this.#pending.length);
    }
    const out: Uint8Array[] = [];
    let off = 0;
    while (buf.length - off >= 2) {
      const len = (buf[off]! << 8) | buf[off + 1]!;
      if (buf.length - off - 2 < len) break;
      out.push(buf.slice(off + 2, off + 2 + len));
      off += 2 + len;
    }
    this.#pending = buf.slice(off);
    return out;
  }

  /** Bytes of an unfinished datagram held now. */
  get buffered(): number {
    return this.#pending.length;
  }
}
