/**
 * Proxy authentication, pure: parsing `Proxy-Authorization: Basic …` and a
 * constant-time check of a user name and password against the configured users.
 *
 * @module
 */
import type { ProxyUser } from "../config/types.ts";

/** A user name and password as the client sent them. */
export interface Credentials {
  username: string;
  password: string;
}

/** The value of `Proxy-Authenticate` in a 407 reply. */
export const PROXY_AUTHENTICATE = 'Basic realm="wmproxy"';

/** Longest credential accepted, in bytes (RFC 1929 allows 255 each). */
export const MAX_CREDENTIAL_BYTES = 1024;

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses a `Proxy-Authorization` value of the Basic scheme. Throws `SyntaxError`
 * naming the problem (wrong scheme, bad base64, no colon, too long); never
 * returns partial credentials.
 *
 * @example
 * ```ts
 * parseBasicCredentials("Basic " + btoa("alice:secret")); // { username: "alice", password: "secret" }
 * ```
 */
export function parseBasicCredentials(value: string): Credentials {
  const m = /^[ \t]*([A-Za-z]+)[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/.exec(value);
  if (!m) {
    throw new SyntaxError('Cannot parse Proxy-Authorization: expected "Basic <base64>"');
  }
  if (m[1]!.toLowerCase() !== "basic") {
    throw new SyntaxError(`Cannot parse Proxy-Authorization: scheme "${m[1]}" is not supported`);
  }
  const b64 = m[2]!;
  if (b64.length > (MAX_CREDENTIAL_BYTES * 4) / 3 + 4) {
    throw new SyntaxError(
      `Cannot parse Proxy-Authorization: credentials exceed ${MAX_CREDENTIAL_BYTES} bytes`,
    );
  }
  let binary: string;
  try {
    binary = atob(b64);
  } catch {
    throw new SyntaxError("Cannot parse Proxy-Authorization: invalid base64");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new SyntaxError("Cannot parse Proxy-Authorization: credentials are not UTF-8");
  }
  const colon = text.indexOf(":");
  if (colon === -1) {
    throw new SyntaxError("Cannot parse Proxy-Authorization: no colon between user and password");
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * Compares two byte strings in time that depends only on their lengths' maximum,
 * never on where they differ.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const n = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * Whether `username`/`password` match one of `users`. Every user is compared
 * (no early exit) with {@link timingSafeEqual}.
 */
export function checkCredentials(
  users: readonly ProxyUser[],
  username: string | Uint8Array,
  password: string | Uint8Array,
): boolean {
  const u = typeof username === "string" ? encoder.encode(username) : username;
  const p = typeof password === "string" ? encoder.encode(password) : password;
  let ok = false;
  for (const user of users) {
    const userOk = timingSafeEqual(u, encoder.encode(user.username));
    const passOk = timingSafeEqual(p, encoder.encode(user.password.reveal()));
    ok = (userOk && passOk) || ok;
  }
  return ok;
}

/** The outcome of {@link authorizeHttp}. */
export type HttpAuthResult =
  | { ok: true; username: string | undefined }
  | { ok: false; reason: "missing" | "malformed" | "wrong"; username: string | undefined };

/**
 * Decides a request's `Proxy-Authorization` values against `users` (an empty
 * list means no authentication).
 */
export function authorizeHttp(
  users: readonly ProxyUser[],
  values: readonly string[],
): HttpAuthResult {
  if (users.length === 0) return { ok: true, username: undefined };
  if (values.length === 0) return { ok: false, reason: "missing", username: undefined };
  if (values.length > 1) return { ok: false, reason: "malformed", username: undefined };
  let creds: Credentials;
  try {
    creds = parseBasicCredentials(values[0]!);
  } catch {
    return { ok: false, reason: "malformed", username: undefined };
  }
  return checkCredentials(users, creds.username, creds.password)
    ? { ok: true, username: creds.username }
    : { ok: false, reason: "wrong", username: creds.username };
}
