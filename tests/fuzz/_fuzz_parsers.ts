/**
 * Fuzz cores for the edge parsers that see untrusted bytes first: the SOCKS5
 * codec, the HTTP head parser, the chunked-body scanner and the TLS
 * ClientHello (SNI) parser. Property: random and mutated inputs end in a
 * value or in the parser's own documented error, never in anything else.
 */
import {
  AddressTypeError,
  parseGreeting,
  parseRequest,
  parseUdpDatagram,
  parseUserPass,
} from "../../src/proxy/socks5_codec.ts";
import { HttpError, parseRequestHead, parseResponseHead } from "../../src/proxy/http_head.ts";
import { ChunkedScanner } from "../../src/proxy/chunked_scanner.ts";
import { FramingError } from "../../src/http1/framing.ts";
import { parseClientHello } from "../../src/mapping/sni.ts";
import { Prng } from "../unit/tunnel/_prng.ts";
import type { FuzzStats } from "./_fuzz_decoders.ts";

const enc = new TextEncoder();
const SEEDS: Uint8Array[] = [
  new Uint8Array([5, 2, 0, 2]),
  new Uint8Array([1, 3, 97, 98, 99, 2, 120, 121]),
  new Uint8Array([5, 1, 0, 3, 11, ...enc.encode("example.com"), 0, 80]),
  new Uint8Array([5, 3, 0, 4, ...new Array(16).fill(0), 1, 187]),
  new Uint8Array([0, 0, 0, 1, 127, 0, 0, 1, 0, 53, 1, 2, 3]),
  enc.encode("GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\n"),
  enc.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
  enc.encode("5\r\nhello\r\n0\r\nX: y\r\n\r\n"),
  new Uint8Array([0x16, 3, 1, 0, 40, 1, 0, 0, 36, 3, 3, ...new Array(34).fill(7)]),
];

function mutate(rng: Prng, base: Uint8Array): Uint8Array {
  const out = Array.from(base);
  const edits = 1 + rng.int(6);
  for (let i = 0; i < edits; i++) {
    const at = rng.int(out.length + 1);
    switch (rng.int(4)) {
      case 0:
        out[at] = rng.int(256);
        break;
      case 1:
        out.splice(at, 0, rng.int(256));
        break;
      case 2:
        out.splice(at, 1 + rng.int(4));
        break;
      default:
        out.splice(at, 0, ...new Array(rng.int(300)).fill(rng.int(256)));
    }
  }
  return new Uint8Array(out);
}

/**
 * Whether `err` is a parser's own documented rejection: one of the error
 * classes the parsers throw, with the `Cannot …` message every rejection of
 * theirs carries. An engine error of the same class (an out-of-bounds
 * `DataView` read, an invalid array length, a stack overflow) is not one.
 */
export function isParserRejection(err: unknown): boolean {
  const known = err instanceof SyntaxError || err instanceof RangeError ||
    err instanceof HttpError || err instanceof AddressTypeError || err instanceof FramingError;
  return known && (err as Error).message.startsWith("Cannot ");
}

const TARGETS: [string, (b: Uint8Array) => unknown][] = [
  ["socks5 greeting", parseGreeting],
  ["socks5 user/pass", parseUserPass],
  ["socks5 request", parseRequest],
  ["socks5 udp", parseUdpDatagram],
  ["http request head", parseRequestHead],
  ["http response head", parseResponseHead],
  ["chunked body", (b) => new ChunkedScanner(4096).scan(b)],
  ["tls client hello", parseClientHello],
];

/** Runs `cases` random and mutated inputs through every edge parser. */
export function fuzzEdgeParsers(seed: number, cases: number): FuzzStats {
  const rng = new Prng(seed);
  const stats: FuzzStats = { cases: 0, accepted: 0, rejected: 0 };
  for (let i = 0; i < cases; i++) {
    const input = rng.int(4) === 0
      ? Uint8Array.from({ length: rng.int(600) }, () => rng.int(256))
      : mutate(rng, SEEDS[rng.int(SEEDS.length)]!);
    for (const [name, parse] of TARGETS) {
      stats.cases++;
      try {
        parse(input);
        stats.accepted++;
      } catch (err) {
        if (!isParserRejection(err)) {
          throw new Error(
            `${name} threw ${
              err instanceof Error ? err.name : typeof err
            } at seed ${seed} case ${i}: ${err}`,
          );
        }
        stats.rejected++;
      }
    }
  }
  return stats;
}
