/**
 * A pure HTTP/1.x message head parser and serialiser for the forward proxy:
 * bytes in, values out, every size checked. Header bytes are kept as latin1
 * so that a head re-serialised by {@link serializeHead} is byte-exact. Every
 * line must end in CRLF (a bare CR or LF is refused); body framing is decided
 * by `src/http1/framing.ts`.
 *
 * @module
 */
import {
  type BodyFraming,
  type FramingRejection,
  requestFraming,
  responseFraming,
  sameNameLower,
} from "../http1/framing.ts";

export type { BodyFraming } from "../http1/framing.ts";

/** A header field as it appeared on the wire: original name case, value trimmed. */
export type HttpHeader = [name: string, value: string];

/** An HTTP/1.x version this proxy speaks. */
export type HttpVersion = "HTTP/1.0" | "HTTP/1.1";

/** A parsed request head. */
export interface RequestHead {
  method: string;
  /** The request-target as sent (absolute-form, authority-form, origin-form or `*`). */
  target: string;
  version: HttpVersion;
  headers: HttpHeader[];
}

/** A parsed response head. */
export interface ResponseHead {
  version: HttpVersion;
  status: number;
  reason: string;
  headers: HttpHeader[];
}

/** An HTTP error with the status the proxy answers with (400, 431, 501, …). */
export class HttpError extends Error {
  /** The HTTP status to reply with. */
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

/** Most header fields accepted in one head. */
export const MAX_HEADER_COUNT = 256;

const CR = 0x0d;
const LF = 0x0a;
/** tchar (RFC 9110 §5.6.2) lookup for char codes below 128. */
const TCHAR = (() => {
  const table = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
    table[c.charCodeAt(0)] = 1;
  }
  return table;
})();

/** Whether `text` is a non-empty token: `/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/` without a regex. */
function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** Whether every char of `text` is visible ASCII (no space, control or 8-bit). */
function isVisibleAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/** Whether `text` holds a control character other than HTAB (not allowed in field values). */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/**
 * Finds the end of a message head in `buf`: the index just past the empty line
 * (`\r\n\r\n`; a bare `\n` also ends it, so that the parser can refuse it).
 * Returns -1 while the head is incomplete.
 * Throws {@link HttpError} 431 when the head is, or can only become, longer than
 * `maxBytes`. Pass `from` (the previous `buf.length`) to avoid rescanning.
 *
 * @example
 * ```ts
 * const buf = new TextEncoder().encode("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\nrest");
 * findHeadEnd(buf, 65536); // 35
 * ```
 */
export function findHeadEnd(buf: Uint8Array, maxBytes: number, from = 0): number {
  const limit = Math.min(buf.length, maxBytes);
  // A terminator may straddle the previous scan's end; back up three bytes.
  for (let i = Math.max(0, from - 3); i < limit; i++) {
    if (buf[i] !== LF) continue;
    // "\n\n" or "\n\r\n"
    if (i + 1 < buf.length && buf[i + 1] === LF) {
      if (i + 2 > maxBytes) break;
      return i + 2;
    }
    if (i + 2 < buf.length && buf[i + 1] === CR && buf[i + 2] === LF) {
      if (i + 3 > maxBytes) break;
      return i + 3;
    }
  }
  if (buf.length >= maxBytes) {
    throw new HttpError(431, `Cannot read message head: it exceeds ${maxBytes} bytes`);
  }
  return -1;
}

/** UTF-8 decoding is latin1 decoding for bytes below 0x80, and native. */
const ASCII_DECODER = new TextDecoder();
/** UTF-8 encoding is latin1 encoding for chars below 0x80, and native. */
const ASCII_ENCODER = new TextEncoder();

/** Decodes bytes as latin1 (one char per byte), so that encoding back is exact. */
export function latin1Decode(bytes: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return ASCII_DECODER.decode(bytes);
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode.apply(
      null,
      bytes.subarray(i, Math.min(bytes.length, i + 8192)) as unknown as number[],
    );
  }
  return out;
}

/** Encodes a latin1 string (every char ≤ 0xff) to bytes. */
export function latin1Encode(text: string): Uint8Array {
  // Every char ≥ 0x80 takes two or more UTF-8 bytes: equal lengths mean ASCII.
  const utf8 = ASCII_ENCODER.encode(text);
  if (utf8.length === text.length) return utf8;
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/**
 * Writes `text` as latin1 (like {@link latin1Encode}) into `out` at `offset`;
 * `out` must have room for `text.length` bytes there. Returns the end offset.
 * May write scratch bytes past the end; callers fill what follows afterwards.
 */
export function latin1EncodeInto(text: string, out: Uint8Array, offset: number): number {
  const end = offset + text.length;
  const r = ASCII_ENCODER.encodeInto(text, offset === 0 ? out : out.subarray(offset));
  if (r.read !== text.length || r.written !== text.length) {
    // Some char is not ASCII: UTF-8 differs from latin1, redo byte by byte.
    for (let i = 0; i < text.length; i++) out[offset + i] = text.charCodeAt(i) & 0xff;
  }
  return end;
}

/**
 * The lines of a head (split at CRLF), without the final empty ones. Throws
 * {@link HttpError} `status` for a bare LF; a bare CR stays in its line for
 * the line's own checks to refuse.
 */
function splitLines(head: Uint8Array, status: number): string[] {
  const text = latin1Decode(head);
  const lines: string[] = [];
  let pos = 0;
  while (true) {
    const nl = text.indexOf("\n", pos);
    const stop = nl === -1 ? text.length : nl;
    if (nl !== -1 && (stop === 0 || text.charCodeAt(stop - 1) !== CR)) {
      throw new HttpError(status, "Cannot parse message head: a line ends in a bare LF");
    }
    const end = nl === -1 ? stop : stop - 1;
    lines.push(text.slice(pos, end));
    if (nl === -1) break;
    pos = nl + 1;
  }
  // The head ends with an empty line: drop the trailing "" entries.
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function isSpaceOrTab(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function parseHeaders(lines: string[], status: number): HttpHeader[] {
  if (lines.length > MAX_HEADER_COUNT) {
    throw new HttpError(
      431,
      `Cannot parse message head: more than ${MAX_HEADER_COUNT} header fields`,
    );
  }
  const headers: HttpHeader[] = [];
  for (const line of lines) {
    if (isSpaceOrTab(line.charCodeAt(0))) {
      throw new HttpError(status, "Cannot parse message head: folded header lines are not allowed");
    }
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new HttpError(status, `Cannot parse header line "${clip(line)}": no field name`);
    }
    const name = line.slice(0, colon);
    if (!isToken(name)) {
      throw new HttpError(status, `Cannot parse header line "${clip(line)}": invalid field name`);
    }
    let from = colon + 1;
    let to = line.length;
    while (from < to && isSpaceOrTab(line.charCodeAt(from))) from++;
    while (to > from && isSpaceOrTab(line.charCodeAt(to - 1))) to--;
    const value = line.slice(from, to);
    if (hasControl(value)) {
      throw new HttpError(status, `Cannot parse header "${name}": control character in value`);
    }
    headers.push([name, value]);
  }
  return headers;
}

function parseVersion(text: string, status: number): HttpVersion {
  if (text === "HTTP/1.1" || text === "HTTP/1.0") return text;
  if (/^HTTP\/\d\.\d$/.test(text)) {
    throw new HttpError(505, `Cannot parse message head: version "${clip(text)}" is not supported`);
  }
  throw new HttpError(status, `Cannot parse message head: "${clip(text)}" is not an HTTP version`);
}

function clip(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 60 ? printable.slice(0, 60) + "…" : printable;
}

/**
 * Parses a complete request head (as delimited by {@link findHeadEnd}).
 * Throws {@link HttpError} 400 for malformed input, 431 for too many fields,
 * 505 for an unsupported version.
 *
 * @example
 * ```ts
 * const head = parseRequestHead(new TextEncoder().encode("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"));
 * head.method; // "GET"
 * ```
 */
export function parseRequestHead(head: Uint8Array): RequestHead {
  const lines = splitLines(head, 400);
  // RFC 9112 §2.2: ignore at least one empty line before the request line.
  while (lines.length > 0 && lines[0] === "") lines.shift();
  const first = lines.shift();
  if (first === undefined) throw new HttpError(400, "Cannot parse request: empty request head");
  const parts = first.split(" ");
  if (parts.length !== 3) {
    throw new HttpError(
      400,
      `Cannot parse request line "${clip(first)}": expected METHOD TARGET VERSION`,
    );
  }
  const [method, target, versionText] = parts as [string, string, string];
  if (!isToken(method)) {
    throw new HttpError(400, `Cannot parse request line "${clip(first)}": invalid method`);
  }
  if (target === "" || !isVisibleAscii(target)) {
    throw new HttpError(400, `Cannot parse request line "${clip(first)}": invalid request target`);
  }
  const version = parseVersion(versionText, 400);
  return { method, target, version, headers: parseHeaders(lines, 400) };
}

/**
 * Parses a complete response head. Throws {@link HttpError} 502 when the
 * upstream sent something that is not an HTTP/1.x response head.
 */
export function parseResponseHead(head: Uint8Array): ResponseHead {
  const lines = splitLines(head, 502);
  const first = lines.shift();
  if (first === undefined) throw new HttpError(502, "Cannot parse response: empty response head");
  const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(first);
  if (!m) {
    throw new HttpError(
      502,
      `Cannot parse status line "${clip(first)}": expected VERSION STATUS REASON`,
    );
  }
  const version = parseVersion(m[1]!, 502);
  const reason = m[3] ?? "";
  if (hasControl(reason)) {
    throw new HttpError(502, "Cannot parse status line: control character in reason");
  }
  return { version, status: Number(m[2]), reason, headers: parseHeaders(lines, 502) };
}

/** The values of every header named `name` (case-insensitive), in order. */
export function headerValues(headers: readonly HttpHeader[], name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    if (sameNameLower(h[0], lower)) out.push(h[1]);
  }
  return out;
}

/** The comma-separated tokens of every header named `name`, lower-cased. */
export function headerTokens(headers: readonly HttpHeader[], name: string): string[] {
  const out: string[] = [];
  for (const v of headerValues(headers, name)) {
    for (const t of v.split(",")) {
      const token = t.trim().toLowerCase();
      if (token !== "") out.push(token);
    }
  }
  return out;
}

function framingOrThrow(f: BodyFraming | FramingRejection): BodyFraming {
  if (f.kind === "reject") throw new HttpError(f.status, f.reason);
  return f;
}

/**
 * How the body of `head` is delimited, by `requestFraming` of
 * `src/http1/framing.ts`. Throws {@link HttpError} 400/501 for a request
 * that cannot be framed in exactly one way (or lacks its one Host).
 */
export function requestBodyFraming(head: RequestHead): BodyFraming {
  return framingOrThrow(requestFraming(head.version, head.method, head.headers));
}

/**
 * How the body of a response to a `requestMethod` request is delimited
 * (RFC 9112 §6.3). Throws {@link HttpError} 502 for ambiguous framing.
 */
export function responseBodyFraming(head: ResponseHead, requestMethod: string): BodyFraming {
  return framingOrThrow(responseFraming(head.version, head.status, requestMethod, head.headers));
}

/** Serialises a start line and header fields to a head (with the final empty line). */
export function serializeHead(startLine: string, headers: readonly HttpHeader[]): Uint8Array {
  return latin1Encode(serializeHeadText(startLine, headers));
}

/** {@link serializeHead} as a latin1 string (encode it with {@link latin1EncodeInto}). */
export function serializeHeadText(startLine: string, headers: readonly HttpHeader[]): string {
  let text = startLine + "\r\n";
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    text += h[0] + ": " + h[1] + "\r\n";
  }
  return text + "\r\n";
}
