/**
 * HMAC-SHA256 challenge–response (PROTOCOL.md §11.3–§11.4) on WebCrypto. The
 * token never crosses the wire: the client proves it knows the token by an HMAC
 * over the server's fresh nonce, and the server proves it back.
 *
 * @module
 */
import { NONCE_SIZE } from "./constants.ts";

const encoder = new TextEncoder();
const CLIENT_LABEL = encoder.encode("wmproxy/1 client proof\0");
const SERVER_LABEL = encoder.encode("wmproxy/1 server proof\0");
const HEX_RE = /^[0-9a-f]*$/;

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Bytes of an even-length lower-case hex string; throws `SyntaxError` otherwise. */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || !HEX_RE.test(hex)) {
    throw new SyntaxError(`Cannot parse hex: expected lower-case hex digit pairs`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A fresh 32-byte nonce as 64 hex digits. */
export function generateNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(NONCE_SIZE)));
}

function importKey(token: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    encoder.encode(token),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

function message(label: Uint8Array, first: string, second: string): Uint8Array<ArrayBuffer> {
  const a = fromHex(first);
  const b = fromHex(second);
  const out = new Uint8Array(label.length + a.length + b.length);
  out.set(label);
  out.set(a, label.length);
  out.set(b, label.length + a.length);
  return out;
}

/**
 * The client's proof: HMAC-SHA256(token, "wmproxy/1 client proof" || 00 ||
 * server_nonce || client_nonce), as 64 hex digits.
 */
export async function computeClientProof(
  token: string,
  nonces: { server_nonce: string; client_nonce: string },
): Promise<string> {
  const key = await importKey(token);
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    message(CLIENT_LABEL, nonces.server_nonce, nonces.client_nonce),
  );
  return toHex(new Uint8Array(mac));
}

/**
 * The server's proof: HMAC-SHA256(token, "wmproxy/1 server proof" || 00 ||
 * client_nonce || server_nonce), as 64 hex digits.
 */
export async function computeServerProof(
  token: string,
  nonces: { server_nonce: string; client_nonce: string },
): Promise<string> {
  const key = await importKey(token);
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    message(SERVER_LABEL, nonces.client_nonce, nonces.server_nonce),
  );
  return toHex(new Uint8Array(mac));
}

async function verify(
  token: string,
  label: Uint8Array,
  first: string,
  second: string,
  proof: string,
): Promise<boolean> {
  let mac: Uint8Array<ArrayBuffer>;
  try {
    mac = fromHex(proof);
  } catch {
    return false;
  }
  if (mac.length !== 32) return false;
  const key = await importKey(token);
  // WebCrypto's verify compares in constant time.
  return crypto.subtle.verify("HMAC", key, mac, message(label, first, second));
}

/** Checks a client proof in constant time. */
export function verifyClientProof(
  token: string,
  nonces: { server_nonce: string; client_nonce: string },
  proof: string,
): Promise<boolean> {
  return verify(token, CLIENT_LABEL, nonces.server_nonce, nonces.client_nonce, proof);
}

/** Checks a server proof in constant time. */
export function verifyServerProof(
  token: string,
  nonces: { server_nonce: string; client_nonce: string },
  proof: string,
): Promise<boolean> {
  return verify(token, SERVER_LABEL, nonces.client_nonce, nonces.server_nonce, proof);
}
