import assert from "node:assert/strict";
import {
  type BodyFraming,
  checkTrailerLine,
  type FramingRejection,
  parseChunkSizeLine,
  requestFraming,
  responseFraming,
} from "@/http1/framing.ts";
import { ChunkedScanner } from "@/proxy/chunked_scanner.ts";
import { FramingError } from "@/http1/framing.ts";
import { HttpError, parseRequestHead, parseResponseHead } from "@/proxy/http_head.ts";
import { stripHopByHop } from "@/proxy/http_rewrite.ts";

type H = [string, string][];
type Want = BodyFraming | 400 | 501 | 502;

function check(got: BodyFraming | FramingRejection, want: Want, label: string): void {
  if (typeof want === "number") {
    assert.equal(got.kind, "reject", `${label}: expected ${want}, got ${JSON.stringify(got)}`);
    const r = got as FramingRejection;
    assert.equal(r.status, want, `${label}: ${r.reason}`);
    assert.match(r.reason, /^Cannot /, label);
  } else {
    assert.deepEqual(got, want, label);
  }
}

const host: H = [["Host", "a.test"]];
const len = (length: number): BodyFraming => ({ kind: "length", length });
const NONE: BodyFraming = { kind: "none" };
const CHUNKED: BodyFraming = { kind: "chunked" };
const CLOSE: BodyFraming = { kind: "close" };

/** [label, version, method, headers, expected] */
const REQUESTS: [string, string, string, H, Want][] = [
  ["no body", "HTTP/1.1", "GET", host, NONE],
  ["content-length", "HTTP/1.1", "POST", [...host, ["Content-Length", "10"]], len(10)],
  ["content-length 0", "HTTP/1.1", "POST", [...host, ["content-length", "0"]], NONE],
  ["leading zeros", "HTTP/1.1", "POST", [...host, ["Content-Length", "007"]], len(7)],
  ["chunked", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "chunked"]], CHUNKED],
  ["CHUNKED any case", "HTTP/1.1", "POST", [...host, ["transfer-encoding", "ChUnKeD"]], CHUNKED],
  ["gzip, chunked", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "gzip, chunked"]], CHUNKED],
  ["TE over two fields", "HTTP/1.1", "POST", [...host, ["TE", "x"], [
    "Transfer-Encoding",
    "gzip",
  ], ["Transfer-Encoding", "chunked"]], CHUNKED],
  [
    "tab around chunked",
    "HTTP/1.1",
    "POST",
    [...host, ["Transfer-Encoding", "\tchunked\t"]],
    CHUNKED,
  ],
  ["HTTP/1.0 without Host", "HTTP/1.0", "GET", [], NONE],
  ["CONNECT without Host", "HTTP/1.1", "CONNECT", [], NONE],
  // Host
  ["HTTP/1.1 without Host", "HTTP/1.1", "GET", [], 400],
  ["two Hosts", "HTTP/1.1", "GET", [...host, ["host", "b.test"]], 400],
  ["two Hosts on 1.0", "HTTP/1.0", "GET", [...host, ...host], 400],
  // Content-Length
  ["CL list 5, 5", "HTTP/1.1", "POST", [...host, ["Content-Length", "5, 5"]], 400],
  ["CL list 5,6", "HTTP/1.1", "POST", [...host, ["Content-Length", "5,6"]], 400],
  ["two CL fields, same", "HTTP/1.1", "POST", [...host, ["Content-Length", "5"], [
    "Content-Length",
    "5",
  ]], 400],
  ["two CL fields, differing", "HTTP/1.1", "POST", [...host, ["Content-Length", "5"], [
    "content-length",
    "6",
  ]], 400],
  ["CL +5", "HTTP/1.1", "POST", [...host, ["Content-Length", "+5"]], 400],
  ["CL -1", "HTTP/1.1", "POST", [...host, ["Content-Length", "-1"]], 400],
  ["CL 0x5", "HTTP/1.1", "POST", [...host, ["Content-Length", "0x5"]], 400],
  ["CL 1e3", "HTTP/1.1", "POST", [...host, ["Content-Length", "1e3"]], 400],
  ["CL 5 5", "HTTP/1.1", "POST", [...host, ["Content-Length", "5 5"]], 400],
  ["CL empty", "HTTP/1.1", "POST", [...host, ["Content-Length", ""]], 400],
  ["CL huge", "HTTP/1.1", "POST", [...host, ["Content-Length", "99999999999999999999"]], 400],
  ["CL 1.5", "HTTP/1.1", "POST", [...host, ["Content-Length", "1.5"]], 400],
  // Transfer-Encoding
  ["CL + TE", "HTTP/1.1", "POST", [...host, ["Content-Length", "3"], [
    "Transfer-Encoding",
    "chunked",
  ]], 400],
  ["TE + CL", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "chunked"], [
    "Content-Length",
    "3",
  ]], 400],
  ["TE on HTTP/1.0", "HTTP/1.0", "POST", [["Transfer-Encoding", "chunked"]], 400],
  [
    "chunked, identity",
    "HTTP/1.1",
    "POST",
    [...host, ["Transfer-Encoding", "chunked, identity"]],
    501,
  ],
  ["chunked, gzip", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "chunked, gzip"]], 400],
  ["identity", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "identity"]], 501],
  ["xchunked", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "xchunked"]], 501],
  ["chunked;x=1", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "chunked;x=1"]], 501],
  ["gzip alone", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "gzip"]], 400],
  ["chunked twice", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "chunked, chunked"]], 400],
  ["chunked twice, two fields", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", "chunked"], [
    "Transfer-Encoding",
    "chunked",
  ]], 400],
  ["TE empty", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", ""]], 400],
  ["TE only commas", "HTTP/1.1", "POST", [...host, ["Transfer-Encoding", " , "]], 400],
];

Deno.test("requestFraming(): every RFC 9112 §6 rule, table-driven", () => {
  for (const [label, version, method, headers, want] of REQUESTS) {
    check(requestFraming(version, method, headers), want, label);
  }
});

/** [label, version, status, request method, headers, expected] */
const RESPONSES: [string, string, number, string, H, Want][] = [
  ["no framing: until close", "HTTP/1.1", 200, "GET", [], CLOSE],
  ["content-length", "HTTP/1.1", 200, "GET", [["Content-Length", "3"]], len(3)],
  ["chunked", "HTTP/1.1", 200, "GET", [["Transfer-Encoding", "chunked"]], CHUNKED],
  ["gzip: until close", "HTTP/1.1", 200, "GET", [["Transfer-Encoding", "gzip"]], CLOSE],
  ["HEAD", "HTTP/1.1", 200, "HEAD", [["Content-Length", "5"]], NONE],
  ["204", "HTTP/1.1", 204, "GET", [], NONE],
  ["304", "HTTP/1.1", 304, "GET", [["Content-Length", "5"]], NONE],
  ["1xx", "HTTP/1.1", 100, "GET", [], NONE],
  ["HTTP/1.0 CL", "HTTP/1.0", 200, "GET", [["Content-Length", "2"]], len(2)],
  ["no Host needed", "HTTP/1.1", 200, "GET", [["Content-Length", "0"]], NONE],
  ["CL + TE", "HTTP/1.1", 200, "GET", [["Content-Length", "3"], [
    "Transfer-Encoding",
    "chunked",
  ]], 502],
  ["two CLs", "HTTP/1.1", 200, "GET", [["Content-Length", "3"], ["Content-Length", "4"]], 502],
  ["CL list", "HTTP/1.1", 200, "GET", [["Content-Length", "3, 3"]], 502],
  ["CL +3", "HTTP/1.1", 200, "GET", [["Content-Length", "+3"]], 502],
  ["TE on 1.0", "HTTP/1.0", 200, "GET", [["Transfer-Encoding", "chunked"]], 502],
  ["unknown coding", "HTTP/1.1", 200, "GET", [["Transfer-Encoding", "xchunked"]], 502],
  ["chunked not last", "HTTP/1.1", 200, "GET", [["Transfer-Encoding", "chunked, gzip"]], 502],
  ["chunked twice", "HTTP/1.1", 200, "GET", [["Transfer-Encoding", "chunked,chunked"]], 502],
];

Deno.test("responseFraming(): the same rules answer 502, bodies by status and method", () => {
  for (const [label, version, status, method, headers, want] of RESPONSES) {
    check(responseFraming(version, status, method, headers), want, label);
  }
});

/** [line without CRLF, size or null for refused] */
const CHUNK_LINES: [string, number | null][] = [
  ["0", 0],
  ["a", 10],
  ["1F", 31],
  ["000000000000000f", 15],
  ["ffffffffffff", 0xffffffffffff],
  ["10;name=value", 16],
  ["10 ;name", 16],
  ['10\t;name="q v"', 16],
  ["0x10", null],
  ["-1", null],
  [" 10", null],
  ["10 ", null],
  ["", null],
  ["g", null],
  ["+1", null],
  ["00000000000000000010", null], // 20 digits
  ["1000000000001", null], // above 2^48
  ["10;a\rb", null],
  ["10;a\x00", null],
  ["10;a\x7f", null],
  ["10 x", null],
];

Deno.test("parseChunkSizeLine(): plain hex only, bounded, extensions without controls", () => {
  for (const [line, want] of CHUNK_LINES) {
    const got = parseChunkSizeLine(line);
    if (want === null) {
      assert.equal(typeof got, "string", JSON.stringify(line));
      assert.match(got as string, /^Cannot parse chunked body: /);
    } else {
      assert.equal(got, want, JSON.stringify(line));
    }
  }
});

Deno.test("checkTrailerLine(): a field line, no folding, no controls", () => {
  assert.equal(checkTrailerLine("X-T: v"), undefined);
  assert.equal(checkTrailerLine("X-T:"), undefined);
  for (const bad of [" folded", ":v", "no colon", "X T: v", "X-T: a\rb", "X-T: \x00"]) {
    assert.equal(typeof checkTrailerLine(bad), "string", JSON.stringify(bad));
  }
});

/** Chunked bodies the scanner must refuse: [label, body]. */
const BAD_BODIES: [string, string][] = [
  ["bare LF after size", "5\nhello\r\n0\r\n\r\n"],
  ["bare CR after size", "5\rhello\r\n0\r\n\r\n"],
  ["bare CR in extension", "5;a\rb\r\nhello\r\n0\r\n\r\n"],
  ["bare LF after data", "5\r\nhello\n0\r\n\r\n"],
  ["no CRLF after data", "5\r\nhelloX0\r\n\r\n"],
  ["data longer than size", "3\r\nhello\r\n0\r\n\r\n"],
  ["bare LF ending the last chunk", "0\n\r\n"],
  ["bare LF ending the trailers", "0\r\n\n"],
  ["bare LF in a trailer", "0\r\nX: v\n\r\n"],
  ["folded trailer", "0\r\nX: v\r\n folded\r\n\r\n"],
  ["0x size", "0x5\r\nhello\r\n0\r\n\r\n"],
  ["huge size", "ffffffffffffffffffff\r\n"],
];

Deno.test("ChunkedScanner refuses every malformed body, whole or byte by byte", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  for (const [label, body] of BAD_BODIES) {
    assert.throws(() => new ChunkedScanner(1024).scan(enc(body)), FramingError, label);
    const s = new ChunkedScanner(1024);
    assert.throws(
      () => {
        for (const b of enc(body)) s.scan(new Uint8Array([b]));
      },
      FramingError,
      `${label} (byte by byte)`,
    );
  }
  const good = "5;e=1\r\nhello\r\n0\r\nX-T: v\r\n\r\n";
  assert.deepEqual(new ChunkedScanner(1024).scan(enc(good + "NEXT")), {
    consumed: good.length,
    done: true,
  });
});

/** Heads the parser must refuse: [label, head, status]. */
const BAD_HEADS: [string, string, number][] = [
  ["bare LF ending the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400],
  ["bare LF ending a field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400],
  ["bare LF LF", "GET / HTTP/1.1\nHost: a\n\n", 400],
  ["bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400],
  ["bare CR in the request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400],
  ["space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
  ["NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400],
  ["invalid method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ["HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
  ["whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400],
];

Deno.test("parseRequestHead() refuses bare CR/LF, folding and bad names (and responses get 502)", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  for (const [label, head, status] of BAD_HEADS) {
    assert.throws(() => parseRequestHead(enc(head)), (err: unknown) => {
      assert.ok(err instanceof HttpError, label);
      assert.equal(err.status, status, `${label}: ${err.message}`);
      return true;
    });
  }
  for (
    const head of [
      "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
    ]
  ) {
    assert.throws(() => parseResponseHead(enc(head)), (err: unknown) => {
      assert.ok(err instanceof HttpError);
      assert.equal(err.status, 502);
      return true;
    });
  }
});

Deno.test("stripHopByHop(): Connection never removes Content-Length, Transfer-Encoding or Host", () => {
  const out = stripHopByHop([
    ["Host", "a"],
    ["Connection", "content-length, transfer-encoding, host, x-hop"],
    ["Content-Length", "5"],
    ["Transfer-Encoding", "chunked"],
    ["X-Hop", "1"],
    ["Keep-Alive", "5"],
  ]);
  assert.deepEqual(out, [["Host", "a"], ["Content-Length", "5"], ["Transfer-Encoding", "chunked"]]);
});
