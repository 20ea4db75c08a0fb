/**
 * Control messages (PROTOCOL.md §11): typed as a discriminated union on
 * `type`, encoded as canonical JSON (members in spec order), decoded with every
 * member validated. Pure: no `Deno.*`.
 *
 * Members use the JSON names of the spec (snake_case), so a message object is
 * exactly what crosses the wire.
 *
 * @module
 */
import {
  ERROR_CODES,
  MAX_CAPABILITIES,
  MAX_CONTROL_PAYLOAD,
  MAX_DOMAINS_PER_MAPPING,
  MAX_HOSTNAME_LENGTH,
  MAX_MAPPINGS_PER_MESSAGE,
  MAX_MESSAGE_LENGTH,
  MAX_NAME_LENGTH,
  NONCE_SIZE,
} from "./constants.ts";
import { ProtocolError } from "./protocol_error.ts";

/** A network address on the wire (same shape as `HostPort`). */
export interface Address {
  hostname: string;
  port: number;
}

/** §11.1, client → server. */
export interface ClientHelloMessage {
  type: "client_hello";
  /** Highest protocol version the client speaks. */
  version: number;
  /** Optional features the client supports. */
  capabilities: string[];
  /** 32 random bytes as 64 hex digits. */
  client_nonce: string;
  /** The client's name, for logs. */
  name?: string;
}

/** §11.2, server → client. */
export interface ServerHelloMessage {
  type: "server_hello";
  version: number;
  /** The subset of the client's capabilities that is enabled. */
  capabilities: string[];
  /** 32 fresh random bytes as 64 hex digits. */
  server_nonce: string;
  session_id: string;
}

/** §11.3, client → server. */
export interface AuthMessage {
  type: "auth";
  /** HMAC-SHA256 client proof as 64 hex digits (see `computeClientProof`). */
  proof: string;
  /** Which of the server's tokens to check. */
  key_id?: string;
}

/** §11.4, server → client. */
export interface AuthOkMessage {
  type: "auth_ok";
  /** HMAC-SHA256 server proof as 64 hex digits (see `computeServerProof`). */
  server_proof: string;
}

/** §11.5, server → client; the session ends right after. */
export interface AuthFailedMessage {
  type: "auth_failed";
  code: number;
  message: string;
}

/** A TCP or UDP mapping to register (§11.6). */
export interface PortMappingSpec {
  name: string;
  kind: "tcp" | "udp";
  /** Public port; 0 asks for any free port. */
  remote_port: number;
}

/** One header rule of an HTTP mapping (§11.6); `value` may use $remote_addr, $host, $scheme. */
export interface HeaderRuleSpec {
  action: "set" | "add" | "remove" | "set_if_absent";
  name: string;
  value?: string;
}

/** How the server treats requests of an HTTP mapping (§11.6). */
export interface HttpOptionsSpec {
  request_headers: HeaderRuleSpec[];
  response_headers: HeaderRuleSpec[];
  host_rewrite?: string;
  x_forwarded: boolean;
  /** Visitors must log in with one of these (HTTP Basic); empty: no login. */
  basic_auth: { username: string; password: string }[];
}

/** An HTTP or HTTPS mapping to register, routed by Host or SNI (§11.6). */
export interface DomainMappingSpec {
  name: string;
  kind: "http" | "https";
  domains: string[];
  /** HTTP handling options; only for kind "http" (and "https" terminated at the server). */
  http?: HttpOptionsSpec;
}

/** One mapping of a `register` message. */
export type MappingSpec = PortMappingSpec | DomainMappingSpec;

/** §11.6, client → server. */
export interface RegisterMessage {
  type: "register";
  request_id: number;
  mappings: MappingSpec[];
}

/** The outcome for one mapping (§11.7). */
export type MappingResult =
  | { name: string; ok: true; public_addr: string }
  | { name: string; ok: false; code: number; message: string };

/** §11.7, server → client. */
export interface RegisterResultMessage {
  type: "register_result";
  request_id: number;
  results: MappingResult[];
}

/** §11.8, client → server. */
export interface UnregisterMessage {
  type: "unregister";
  request_id: number;
  names: string[];
}

/** §11.9: a stream for the server's proxy handler (or a direct target). */
export interface OpenProxyMessage {
  type: "open";
  kind: "proxy";
  /** The application that connected to the client's local proxy port. */
  visitor?: Address;
  /** Connect straight to this target instead of parsing a proxy request. */
  target?: Address;
}

/** §11.9: a stream for a visitor of a mapping (server → client). */
export interface OpenMappingMessage {
  type: "open";
  kind: "mapping";
  mapping: string;
  visitor: Address;
  /** The HTTP Host or TLS SNI that selected the mapping. */
  host?: string;
}

/** The message carried by the SYN of a stream. */
export type OpenMessage = OpenProxyMessage | OpenMappingMessage;

/** Messages carried on stream 0. */
export type SessionControlMessage =
  | ClientHelloMessage
  | ServerHelloMessage
  | AuthMessage
  | AuthOkMessage
  | AuthFailedMessage
  | RegisterMessage
  | RegisterResultMessage
  | UnregisterMessage;

/** Every control message. */
export type ControlMessage = SessionControlMessage | OpenMessage;

/** Every `type` value, in spec order. */
export const CONTROL_MESSAGE_TYPES = [
  "client_hello",
  "server_hello",
  "auth",
  "auth_ok",
  "auth_failed",
  "register",
  "register_result",
  "unregister",
  "open",
] as const satisfies readonly ControlMessage["type"][];

/** The message types allowed on stream 0 before authentication (§4). */
export const HANDSHAKE_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  "client_hello",
  "server_hello",
  "auth",
  "auth_ok",
  "auth_failed",
]);

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const HEX_RE = /^[0-9a-f]{64}$/;

/** Validates members and builds canonical objects; `verb` names the operation in errors. */
class Reader {
  constructor(readonly verb: string) {}

  fail(path: string, what: string): never {
    throw new ProtocolError(
      ERROR_CODES.INVALID_MESSAGE,
      `Cannot ${this.verb} control message: "${path}" ${what}`,
    );
  }

  object(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.fail(path, "must be an object");
    }
    return v as Record<string, unknown>;
  }

  string(
    o: Record<string, unknown>,
    key: string,
    path: string,
    max: number,
    min = 1,
    fullPath = path + key,
  ): string {
    const v = o[key];
    if (typeof v !== "string") this.fail(fullPath, "must be a string");
    if (v.length < min || v.length > max) {
      this.fail(fullPath, `must have ${min}–${max} characters, has ${v.length}`);
    }
    return v;
  }

  optString(
    o: Record<string, unknown>,
    key: string,
    path: string,
    max: number,
  ): string | undefined {
    return o[key] === undefined ? undefined : this.string(o, key, path, max);
  }

  name(o: Record<string, unknown>, key: string, path: string, fullPath = path + key): string {
    const v = this.string(o, key, path, MAX_NAME_LENGTH, 1, fullPath);
    if (!NAME_RE.test(v)) this.fail(fullPath, "must use only A-Z a-z 0-9 _ . -");
    return v;
  }

  hex(o: Record<string, unknown>, key: string, path: string): string {
    const v = o[key];
    if (typeof v !== "string" || !HEX_RE.test(v)) {
      this.fail(path + key, `must be ${NONCE_SIZE * 2} lower-case hex digits`);
    }
    return v;
  }

  int(o: Record<string, unknown>, key: string, path: string, min: number, max: number): number {
    const v = o[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(path + key, `must be an integer ${min}–${max}`);
    }
    return v;
  }

  array(
    o: Record<string, unknown>,
    key: string,
    path: string,
    min: number,
    max: number,
  ): unknown[] {
    const v = o[key];
    if (!Array.isArray(v)) this.fail(path + key, "must be an array");
    if (v.length < min || v.length > max) {
      this.fail(path + key, `must have ${min}–${max} entries, has ${v.length}`);
    }
    return v;
  }

  names(o: Record<string, unknown>, key: string, path: string, min: number, max: number): string[] {
    return this.array(o, key, path, min, max).map((v, i) =>
      this.name({ v }, "v", "", `${path}${key}[${i}]`)
    );
  }

  address(v: unknown, path: string): Address {
    const o = this.object(v, path);
    return {
      hostname: this.string(o, "hostname", path + ".", MAX_HOSTNAME_LENGTH),
      port: this.int(o, "port", path + ".", 0, 65535),
    };
  }

  bool(o: Record<string, unknown>, key: string, path: string): boolean {
    const v = o[key];
    if (typeof v !== "boolean") this.fail(path + key, "must be true or false");
    return v;
  }
}

/**
 * Validates any value as a control message and returns its canonical form
 * (members in spec order, unknown members dropped). Throws a
 * {@link ProtocolError} with `INVALID_MESSAGE` naming the first bad member.
 */
export function parseControlMessage(value: unknown, verb = "decode"): ControlMessage {
  const r = new Reader(verb);
  const o = r.object(value, "message");
  const type = o.type;
  switch (type) {
    case "client_hello": {
      const m: ClientHelloMessage = {
        type,
        version: r.int(o, "version", "", 1, 255),
        capabilities: r.names(o, "capabilities", "", 0, MAX_CAPABILITIES),
        client_nonce: r.hex(o, "client_nonce", ""),
      };
      if (o.name !== undefined) m.name = r.name(o, "name", "");
      return m;
    }
    case "server_hello":
      return {
        type,
        version: r.int(o, "version", "", 1, 255),
        capabilities: r.names(o, "capabilities", "", 0, MAX_CAPABILITIES),
        server_nonce: r.hex(o, "server_nonce", ""),
        session_id: r.name(o, "session_id", ""),
      };
    case "auth": {
      const m: AuthMessage = { type, proof: r.hex(o, "proof", "") };
      if (o.key_id !== undefined) m.key_id = r.name(o, "key_id", "");
      return m;
    }
    case "auth_ok":
      return { type, server_proof: r.hex(o, "server_proof", "") };
    case "auth_failed":
      return {
        type,
        code: r.int(o, "code", "", 0, 0xffffffff),
        message: r.string(o, "message", "", MAX_MESSAGE_LENGTH, 0),
      };
    case "register":
      return {
        type,
        request_id: r.int(o, "request_id", "", 0, 0xffffffff),
        mappings: r.array(o, "mappings", "", 1, MAX_MAPPINGS_PER_MESSAGE).map((v, i) =>
          parseMapping(r, v, `mappings[${i}].`)
        ),
      };
    case "register_result":
      return {
        type,
        request_id: r.int(o, "request_id", "", 0, 0xffffffff),
        results: r.array(o, "results", "", 0, MAX_MAPPINGS_PER_MESSAGE).map((v, i) =>
          parseResult(r, v, `results[${i}].`)
        ),
      };
    case "unregister":
      return {
        type,
        request_id: r.int(o, "request_id", "", 0, 0xffffffff),
        names: r.names(o, "names", "", 1, MAX_MAPPINGS_PER_MESSAGE),
      };
    case "open": {
      const kind = o.kind;
      if (kind === "proxy") {
        const m: OpenProxyMessage = { type, kind };
        if (o.visitor !== undefined) m.visitor = r.address(o.visitor, "visitor");
        if (o.target !== undefined) m.target = r.address(o.target, "target");
        return m;
      }
      if (kind === "mapping") {
        const m: OpenMappingMessage = {
          type,
          kind,
          mapping: r.name(o, "mapping", ""),
          visitor: r.address(o.visitor, "visitor"),
        };
        const host = r.optString(o, "host", "", MAX_HOSTNAME_LENGTH);
        if (host !== undefined) m.host = host;
        return m;
      }
      return r.fail("kind", `must be "proxy" or "mapping"`);
    }
    default:
      return r.fail(
        "type",
        typeof type === "string"
          ? `is unknown: ${JSON.stringify(type.slice(0, 40))}`
          : "must be a string",
      );
  }
}

function parseMapping(r: Reader, v: unknown, path: string): MappingSpec {
  const o = r.object(v, path.slice(0, -1));
  const name = r.name(o, "name", path);
  const kind = o.kind;
  if (kind === "tcp" || kind === "udp") {
    return { name, kind, remote_port: r.int(o, "remote_port", path, 0, 65535) };
  }
  if (kind === "http" || kind === "https") {
    const domains = r.array(o, "domains", path, 1, MAX_DOMAINS_PER_MAPPING).map((v, i) =>
      r.string({ v }, "v", "", MAX_HOSTNAME_LENGTH, 1, `${path}domains[${i}]`)
    );
    if (o.http === undefined) return { name, kind, domains };
    return { name, kind, domains, http: parseHttpOptions(r, o.http, `${path}http.`) };
  }
  return r.fail(path + "kind", `must be "tcp", "udp", "http" or "https"`);
}

const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const RULE_ACTIONS = ["set", "add", "remove", "set_if_absent"] as const;
const MAX_RULES = 32;
const MAX_RULE_VALUE = 1024;
const MAX_LOGINS = 16;

function parseRules(
  r: Reader,
  o: Record<string, unknown>,
  key: string,
  path: string,
): HeaderRuleSpec[] {
  return r.array(o, key, path, 0, MAX_RULES).map((v, i) => {
    const p = `${path}${key}[${i}].`;
    const ro = r.object(v, p.slice(0, -1));
    const action = ro.action;
    if (!RULE_ACTIONS.includes(action as HeaderRuleSpec["action"])) {
      r.fail(`${p}action`, `must be one of ${RULE_ACTIONS.join(", ")}`);
    }
    const name = r.string(ro, "name", p, 128);
    if (!HEADER_NAME_RE.test(name)) r.fail(`${p}name`, "must be an HTTP header name");
    if (action === "remove") return { action: "remove", name };
    const value = r.string(ro, "value", p, MAX_RULE_VALUE, 0);
    if (/[\r\n\0]/.test(value)) r.fail(`${p}value`, "must not contain CR, LF or NUL");
    return { action: action as HeaderRuleSpec["action"], name, value };
  });
}

function parseHttpOptions(r: Reader, v: unknown, path: string): HttpOptionsSpec {
  const o = r.object(v, path.slice(0, -1));
  const hostRewrite = r.optString(o, "host_rewrite", path, MAX_HOSTNAME_LENGTH);
  const out: HttpOptionsSpec = {
    request_headers: parseRules(r, o, "request_headers", path),
    response_headers: parseRules(r, o, "response_headers", path),
    x_forwarded: r.bool(o, "x_forwarded", path),
    basic_auth: r.array(o, "basic_auth", path, 0, MAX_LOGINS).map((u, i) => {
      const p = `${path}basic_auth[${i}].`;
      const uo = r.object(u, p.slice(0, -1));
      const username = r.string(uo, "username", p, 255);
      if (username.includes(":")) r.fail(`${p}username`, 'must not contain ":"');
      return { username, password: r.string(uo, "password", p, 255) };
    }),
  };
  // Canonical member order: request_headers, response_headers, host_rewrite, x_forwarded, basic_auth.
  return hostRewrite === undefined ? out : {
    request_headers: out.request_headers,
    response_headers: out.response_headers,
    host_rewrite: hostRewrite,
    x_forwarded: out.x_forwarded,
    basic_auth: out.basic_auth,
  };
}

function parseResult(r: Reader, v: unknown, path: string): MappingResult {
  const o = r.object(v, path.slice(0, -1));
  const name = r.name(o, "name", path);
  if (r.bool(o, "ok", path)) {
    return { name, ok: true, public_addr: r.string(o, "public_addr", path, 300, 0) };
  }
  return {
    name,
    ok: false,
    code: r.int(o, "code", path, 0, 0xffffffff),
    message: r.string(o, "message", path, MAX_MESSAGE_LENGTH, 0),
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a control message as canonical JSON bytes, after validating it as a
 * receiver would (so we never send what a peer must reject).
 *
 * @example
 * ```ts
 * import { encodeControlMessage } from "@/tunnel/mod.ts";
 * const bytes = encodeControlMessage({ type: "open", kind: "proxy" });
 * new TextDecoder().decode(bytes); // '{"type":"open","kind":"proxy"}'
 * ```
 */
export function encodeControlMessage(message: ControlMessage): Uint8Array {
  const canonical = parseControlMessage(message, "encode");
  const bytes = encoder.encode(JSON.stringify(canonical));
  if (bytes.length > MAX_CONTROL_PAYLOAD) {
    throw new ProtocolError(
      ERROR_CODES.FRAME_SIZE_ERROR,
      `Cannot encode control message: ${bytes.length} bytes exceed limit ${MAX_CONTROL_PAYLOAD}`,
    );
  }
  return bytes;
}

/**
 * Decodes a CONTROL payload: size cap, strict UTF-8, JSON, then
 * {@link parseControlMessage}. Throws a {@link ProtocolError}.
 */
export function decodeControlMessage(payload: Uint8Array): ControlMessage {
  if (payload.length > MAX_CONTROL_PAYLOAD) {
    throw new ProtocolError(
      ERROR_CODES.FRAME_SIZE_ERROR,
      `Cannot decode control message: ${payload.length} bytes exceed limit ${MAX_CONTROL_PAYLOAD}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch (err) {
    throw new ProtocolError(
      ERROR_CODES.INVALID_MESSAGE,
      `Cannot decode control message: not UTF-8 JSON (${err instanceof Error ? err.message : err})`,
    );
  }
  return parseControlMessage(value, "decode");
}
