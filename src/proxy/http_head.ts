/**
 * A pure HTTP/1.x message head parser and serialiser for the forward proxy:
 * bytes in, values out, every size checked. Header bytes are kept as latin1
 * so that a head re-serialised by {@link serializeHead} is byte-exact.
 *
 * @module
 */

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

/** How a message body is delimited. */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** Response only: the body runs until the server closes the connection. */
  | { kind: "close" };

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
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
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
 * (`\r\n\r\n`, bare `\n` tolerated). Returns -1 while the head is incomplete.
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

/** Decodes bytes as latin1 (one char per byte), so that encoding back is exact. */
export function latin1Decode(bytes: Uint8Array): string {
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
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

function splitLines(head: Uint8Array): string[] {
  const text = latin1Decode(head);
  const lines = text.split("\n");
  // The head ends with an empty line: drop the trailing "" entries.
  while (lines.length > 0 && (lines[lines.length - 1] === "" || lines[lines.length - 1] === "\r")) {
    lines.pop();
  }
  return lines.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
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
    if (line.startsWith(" ") || line.startsWith("\t")) {
      throw new HttpError(status, "Cannot parse message head: folded header lines are not allowed");
    }
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new HttpError(status, `Cannot parse header line "${clip(line)}": no field name`);
    }
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) {
      throw new HttpError(status, `Cannot parse header line "${clip(line)}": invalid field name`);
    }
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
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
  const lines = splitLines(head);
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
  if (!TOKEN.test(method)) {
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
  const lines = splitLines(head);
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
  for (const [n, v] of headers) {
    if (n.length === lower.length && n.toLowerCase() === lower) out.push(v);
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

function bodyFraming(headers: readonly HttpHeader[], status: number): BodyFraming | null {
  const te = headerTokens(headers, "transfer-encoding");
  const cl = headerValues(headers, "content-length");
  if (te.length > 0) {
    if (cl.length > 0) {
      throw new HttpError(
        status,
        "Cannot frame body: both Transfer-Encoding and Content-Length are set",
      );
    }
    if (te[te.length - 1] !== "chunked") {
      if (status === 502) return { kind: "close" };
      throw new HttpError(
        501,
        `Cannot frame body: transfer coding "${te.join(", ")}" is not supported`,
      );
    }
    if (te.indexOf("chunked") !== te.length - 1) {
      throw new HttpError(status, "Cannot frame body: chunked is applied more than once");
    }
    return { kind: "chunked" };
  }
  if (cl.length > 0) {
    const values = new Set(cl.flatMap((v) => v.split(",").map((s) => s.trim())));
    if (values.size !== 1) {
      throw new HttpError(status, `Cannot frame body: conflicting Content-Length values`);
    }
    const [text] = values as unknown as [string];
    if (!/^\d{1,15}$/.test(text)) {
      throw new HttpError(
        status,
        `Cannot frame body: Content-Length "${clip(text)}" is not a number`,
      );
    }
    const length = Number(text);
    return length === 0 ? { kind: "none" } : { kind: "length", length };
  }
  return null;
}

/** How the body of `head` is delimited. Throws {@link HttpError} 400/501. */
export function requestBodyFraming(head: RequestHead): BodyFraming {
  return bodyFraming(head.headers, 400) ?? { kind: "none" };
}

/**
 * How the body of a response to a `requestMethod` request is delimited
 * (RFC 9112 §6.3). Throws {@link HttpError} 502 for conflicting framing.
 */
export function responseBodyFraming(head: ResponseHead, requestMethod: string): BodyFraming {
  if (
    requestMethod === "HEAD" || (head.status >= 100 && head.status < 200) ||
    head.status === 204 || head.status === 304
  ) {
    return { kind: "none" };
  }
  return bodyFraming(head.headers, 502) ?? { kind: "close" };
}

/** Serialises a start line and header fields to a head (with the final empty line). */
export function serializeHead(startLine: string, headers: readonly HttpHeader[]): Uint8Array {
  let text = startLine + "\r\n";
  for (const [name, value] of headers) text += name + ": " + value + "\r\n";
  return latin1Encode(text + "\r\n");
}
