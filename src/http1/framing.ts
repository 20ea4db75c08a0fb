/**
 * The one HTTP/1.x message-framing decision (RFC 9112 §6–7) shared by every
 * HTTP/1 front end of this program (forward proxy, tunnel HTTP mapping port,
 * reverse proxy plain listener) and by the response side of each.
 *
 * Pure: a version and a parsed header list in, a {@link BodyFraming} or a
 * typed {@link FramingRejection} out. Anything a peer could read in two ways
 * is rejected, never repaired: a request gets 400 (501 for a transfer coding
 * we do not know), a response 502, and the caller then closes the connection
 * so that no byte after the bad head is read as a new message.
 *
 * @module
 */

/** A header field as parsed: name as received, value with surrounding spaces removed. */
export type HeaderField = readonly [name: string, value: string];

/** How a message body is delimited. */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** Response only: the body runs until the server closes the connection. */
  | { kind: "close" };

/** Why a message cannot be framed, and the status to answer with. */
export interface FramingRejection {
  kind: "reject";
  /** 400 or 501 for a request, 502 for a response. */
  status: 400 | 501 | 502;
  /** `Cannot …: why`, safe to log and to show. */
  reason: string;
}

/** Thrown by body scanners (e.g. the chunked scanner) for a body that cannot be framed. */
export class FramingError extends Error {
  /** Whether the head this body belongs to had already been sent on when it was found. */
  prefixSent = false;
  constructor(message: string) {
    super(message);
    this.name = "FramingError";
  }
}

/** Largest Content-Length accepted: 15 digits keep the number exact. */
const MAX_LENGTH_DIGITS = 15;
/** Most hex digits in a chunk size (leading zeros included). */
export const MAX_CHUNK_SIZE_DIGITS = 16;
/** Largest chunk size accepted (2^48 bytes; keeps arithmetic exact). */
export const MAX_CHUNK_SIZE = 2 ** 48;

const NONE: BodyFraming = Object.freeze({ kind: "none" });
const CHUNKED: BodyFraming = Object.freeze({ kind: "chunked" });
const CLOSE: BodyFraming = Object.freeze({ kind: "close" });

/** Transfer codings that may precede `chunked` (RFC 9112 §7, IANA registry); passed through. */
const KNOWN_CODINGS = ["gzip", "deflate", "compress", "x-gzip", "x-compress"];

/**
 * Whether `name` equals the lower-case `lower` ignoring ASCII case, like
 * `name.toLowerCase() === lower` but without building a string.
 */
export function sameNameLower(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x80) return name.toLowerCase() === lower; // non-ASCII: exact Unicode rules
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function reject(status: 400 | 501 | 502, reason: string): FramingRejection {
  return { kind: "reject", status, reason };
}

function clip(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 40 ? printable.slice(0, 40) + "…" : printable;
}

/** The framing headers of one message, collected in one pass. */
interface FramingFields {
  hosts: number;
  /** The Content-Length field values (usually zero or one). */
  lengths: string[] | undefined;
  /** The Transfer-Encoding field values. */
  codings: string[] | undefined;
}

function collect(headers: readonly HeaderField[]): FramingFields {
  let hosts = 0;
  let lengths: string[] | undefined;
  let codings: string[] | undefined;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const n = h[0].length;
    if (n === 4) {
      if (sameNameLower(h[0], "host")) hosts++;
    } else if (n === 14) {
      if (sameNameLower(h[0], "content-length")) (lengths ??= []).push(h[1]);
    } else if (n === 17) {
      if (sameNameLower(h[0], "transfer-encoding")) (codings ??= []).push(h[1]);
    }
  }
  return { hosts, lengths, codings };
}

/** Parses the single Content-Length value; a rejection for lists, signs, hex, blanks, huge. */
function parseLength(values: readonly string[], status: 400 | 502): number | FramingRejection {
  if (values.length > 1) {
    return reject(status, "Cannot frame body: more than one Content-Length field");
  }
  const text = values[0]!;
  if (text.length === 0 || text.length > MAX_LENGTH_DIGITS) {
    return reject(status, `Cannot frame body: Content-Length "${clip(text)}" is not a length`);
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) {
      return reject(
        status,
        `Cannot frame body: Content-Length "${clip(text)}" is not a single decimal number`,
      );
    }
  }
  return Number(text);
}

/**
 * Reads the Transfer-Encoding values: `chunked` (exactly once, last), `close`
 * (known codings without chunked: responses only), or a rejection.
 */
function parseCodings(
  values: readonly string[],
  status: 400 | 502,
): "chunked" | "close" | FramingRejection {
  const codings: string[] = [];
  for (const value of values) {
    for (const part of value.split(",")) {
      const coding = part.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase();
      if (coding !== "") codings.push(coding);
    }
  }
  if (codings.length === 0) {
    return reject(status, "Cannot frame body: Transfer-Encoding is empty");
  }
  const unknown = codings.find((c) => c !== "chunked" && !KNOWN_CODINGS.includes(c));
  if (unknown !== undefined) {
    return reject(
      status === 400 ? 501 : 502,
      `Cannot frame body: transfer coding "${clip(unknown)}" is not supported`,
    );
  }
  const chunked = codings.indexOf("chunked");
  if (chunked === -1) {
    if (status === 400) {
      return reject(400, "Cannot frame body: a request's last transfer coding must be chunked");
    }
    return "close";
  }
  if (codings[codings.length - 1] !== "chunked") {
    return reject(status, "Cannot frame body: chunked is not the last transfer coding");
  }
  if (chunked !== codings.length - 1) {
    return reject(status, "Cannot frame body: chunked is applied more than once");
  }
  return "chunked";
}

/**
 * How the body of a request is delimited (RFC 9112 §6.1–6.3), or why the
 * request must be refused: Content-Length together with Transfer-Encoding, a
 * Content-Length that is not one plain decimal number (lists such as `5, 5`
 * and repeated fields included), a transfer coding that is unknown (501),
 * repeated or not followed by `chunked`, Transfer-Encoding on HTTP/1.0, and a
 * missing or repeated Host on HTTP/1.1 (RFC 9112 §3.2; a CONNECT without Host
 * is let through, its authority is the target).
 *
 * @example
 * ```ts
 * requestFraming("HTTP/1.1", "POST", [["Host", "a"], ["Content-Length", "3"]]);
 * // { kind: "length", length: 3 }
 * requestFraming("HTTP/1.1", "POST", [["Host", "a"], ["Content-Length", "3, 3"]]).kind; // "reject"
 * ```
 */
export function requestFraming(
  version: string,
  method: string,
  headers: readonly HeaderField[],
): BodyFraming | FramingRejection {
  const f = collect(headers);
  if (f.hosts > 1) return reject(400, "Cannot route request: more than one Host field");
  if (f.hosts === 0 && version === "HTTP/1.1" && method !== "CONNECT") {
    return reject(400, "Cannot route request: HTTP/1.1 requires a Host field");
  }
  return framing(version, f, 400);
}

/**
 * How the body of a response to a `requestMethod` request is delimited
 * (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304; else by the same rules as
 * {@link requestFraming} (each failure a 502), except that known codings
 * without `chunked` mean the body runs until close, as does a response
 * without either field.
 */
export function responseFraming(
  version: string,
  status: number,
  requestMethod: string,
  headers: readonly HeaderField[],
): BodyFraming | FramingRejection {
  if (
    requestMethod === "HEAD" || (status >= 100 && status < 200) || status === 204 ||
    status === 304
  ) {
    return NONE;
  }
  return framing(version, collect(headers), 502);
}

function framing(
  version: string,
  f: FramingFields,
  status: 400 | 502,
): BodyFraming | FramingRejection {
  if (f.codings !== undefined) {
    if (f.lengths !== undefined) {
      return reject(status, "Cannot frame body: both Transfer-Encoding and Content-Length are set");
    }
    if (version !== "HTTP/1.1") {
      return reject(status, `Cannot frame body: Transfer-Encoding is not allowed in ${version}`);
    }
    const coding = parseCodings(f.codings, status);
    if (typeof coding !== "string") return coding;
    return coding === "chunked" ? CHUNKED : CLOSE;
  }
  if (f.lengths !== undefined) {
    const length = parseLength(f.lengths, status);
    if (typeof length !== "number") return length;
    return length === 0 ? NONE : { kind: "length", length };
  }
  return status === 400 ? NONE : CLOSE;
}

/**
 * Parses one chunk-size line (RFC 9112 §7.1) without its CRLF: `1*HEXDIG`
 * (at most {@link MAX_CHUNK_SIZE_DIGITS} digits, at most
 * {@link MAX_CHUNK_SIZE}), then optionally spaces or tabs and `;` extensions
 * without control characters (HTAB aside). Returns the size, or why the line
 * is refused.
 *
 * @example
 * ```ts
 * parseChunkSizeLine("1a;name=v"); // 26
 * parseChunkSizeLine("0x10"); // "Cannot parse chunked body: …"
 * ```
 */
export function parseChunkSizeLine(line: string): number | string {
  let i = 0;
  let size = 0;
  while (i < line.length) {
    const c = line.charCodeAt(i);
    const digit = c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : -1;
    if (digit === -1) break;
    size = size * 16 + digit;
    i++;
  }
  if (i === 0 || i > MAX_CHUNK_SIZE_DIGITS) {
    return `Cannot parse chunked body: "${clip(line)}" is not a chunk size`;
  }
  if (size > MAX_CHUNK_SIZE) {
    return `Cannot parse chunked body: chunk size ${size} is above ${MAX_CHUNK_SIZE}`;
  }
  if (i === line.length) return size;
  let j = i;
  while (j < line.length && (line.charCodeAt(j) === 0x20 || line.charCodeAt(j) === 0x09)) j++;
  if (j === line.length || line.charCodeAt(j) !== 0x3b) {
    return `Cannot parse chunked body: "${clip(line)}" is not a chunk size`;
  }
  for (; j < line.length; j++) {
    const c = line.charCodeAt(j);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
      return "Cannot parse chunked body: control character in a chunk extension";
    }
  }
  return size;
}

/**
 * Checks one trailer line of a chunked body without its CRLF: a field line
 * (`name:` then a value without control characters), never folded.
 * Returns `undefined` when it is acceptable, else why not.
 */
export function checkTrailerLine(line: string): string | undefined {
  const colon = line.indexOf(":");
  if (colon <= 0) return "Cannot parse chunked body: a trailer line is not a field";
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (i < colon ? c <= 0x20 || c >= 0x7f : (c < 0x20 && c !== 0x09) || c === 0x7f) {
      return "Cannot parse chunked body: invalid character in a trailer field";
    }
  }
  return undefined;
}
