import { assertEquals, deepStrictEqual, ok, throws } from "./_assert.ts";
import {
  type ControlMessage,
  decodeControlMessage,
  encodeControlMessage,
  ERROR_CODES,
  MAX_CONTROL_PAYLOAD,
  parseControlMessage,
  ProtocolError,
} from "@/tunnel/mod.ts";

const enc = new TextEncoder();
const NONCE = "0123456789abcdef".repeat(4);

const samples: ControlMessage[] = [
  { type: "client_hello", version: 1, capabilities: [], client_nonce: NONCE },
  {
    type: "client_hello",
    version: 1,
    capabilities: ["udp", "x.y"],
    client_nonce: NONCE,
    name: "c1",
  },
  {
    type: "server_hello",
    version: 1,
    capabilities: ["udp"],
    server_nonce: NONCE,
    session_id: "s-1",
  },
  { type: "auth", proof: NONCE },
  { type: "auth", proof: NONCE, key_id: "team-a" },
  { type: "auth_ok", server_proof: NONCE },
  { type: "auth_failed", code: ERROR_CODES.AUTH_FAILED, message: "bad proof" },
  {
    type: "register",
    request_id: 1,
    mappings: [
      { name: "a", kind: "tcp", remote_port: 0 },
      { name: "b", kind: "udp", remote_port: 5353 },
      { name: "c", kind: "http", domains: ["a.example", "b.example"] },
      { name: "d", kind: "https", domains: ["c.example"] },
    ],
  },
  {
    type: "register_result",
    request_id: 1,
    results: [
      { name: "a", ok: true, public_addr: "0.0.0.0:4000" },
      { name: "b", ok: false, code: ERROR_CODES.CONFLICT, message: "port 5353 is in use" },
    ],
  },
  { type: "unregister", request_id: 2, names: ["a", "b"] },
  { type: "open", kind: "proxy" },
  {
    type: "open",
    kind: "proxy",
    visitor: { hostname: "127.0.0.1", port: 5000 },
    target: { hostname: "example.com", port: 443 },
  },
  { type: "open", kind: "mapping", mapping: "web", visitor: { hostname: "::1", port: 1 } },
  {
    type: "open",
    kind: "mapping",
    mapping: "web",
    visitor: { hostname: "::1", port: 1 },
    host: "example.com",
  },
];

function invalid(value: unknown, pattern: RegExp, code: number = ERROR_CODES.INVALID_MESSAGE) {
  throws(() => decodeControlMessage(enc.encode(JSON.stringify(value))), (err: unknown) => {
    ok(err instanceof ProtocolError, String(err));
    assertEquals(err.code, code);
    ok(pattern.test(err.message), `"${err.message}" does not match ${pattern}`);
    return true;
  });
}

Deno.test("encodeControlMessage() and decodeControlMessage() round-trip every message type (PROTOCOL.md §11)", () => {
  const types = new Set<string>();
  for (const m of samples) {
    const bytes = encodeControlMessage(m);
    deepStrictEqual(decodeControlMessage(bytes), m);
    deepStrictEqual(encodeControlMessage(decodeControlMessage(bytes)), bytes);
    types.add(m.type);
  }
  assertEquals(types.size, 9);
});

Deno.test("encodeControlMessage() writes members in spec order whatever the object order (PROTOCOL.md §11)", () => {
  const a = encodeControlMessage({ server_proof: NONCE, type: "auth_ok" } as ControlMessage);
  assertEquals(new TextDecoder().decode(a), `{"type":"auth_ok","server_proof":"${NONCE}"}`);
});

Deno.test("decodeControlMessage() ignores unknown members (PROTOCOL.md §16)", () => {
  const m = decodeControlMessage(
    enc.encode(JSON.stringify({ type: "open", kind: "proxy", future: 1 })),
  );
  deepStrictEqual(m, { type: "open", kind: "proxy" });
});

Deno.test("decodeControlMessage() rejects an unknown type with INVALID_MESSAGE (PROTOCOL.md §11)", () => {
  invalid({ type: "teleport" }, /"type" is unknown/);
  invalid({ kind: "proxy" }, /"type" must be a string/);
  invalid([1, 2], /must be an object/);
  invalid("open", /must be an object/);
});

Deno.test("decodeControlMessage() rejects mistyped and out-of-range members (PROTOCOL.md §11)", () => {
  invalid(
    { type: "client_hello", version: 1, capabilities: [], client_nonce: "xyz" },
    /"client_nonce" must be 64 lower-case hex digits/,
  );
  invalid(
    { type: "client_hello", version: 0, capabilities: [], client_nonce: NONCE },
    /"version" must be an integer 1–255/,
  );
  invalid(
    { type: "client_hello", version: 1, capabilities: ["bad name"], client_nonce: NONCE },
    /"capabilities\[0\]"/,
  );
  invalid({ type: "register", request_id: 1, mappings: [] }, /"mappings" must have 1–256 entries/);
  invalid({
    type: "register",
    request_id: 1,
    mappings: [{ name: "a", kind: "tcp", remote_port: 70000 }],
  }, /"mappings\[0\]\.remote_port" must be an integer 0–65535/);
  invalid(
    { type: "register", request_id: 1, mappings: [{ name: "a", kind: "ftp" }] },
    /"mappings\[0\]\.kind"/,
  );
  invalid({
    type: "register",
    request_id: 1,
    mappings: [{ name: "a", kind: "http", domains: ["x".repeat(254)] }],
  }, /"mappings\[0\]\.domains\[0\]" must have 1–253 characters/);
  invalid({
    type: "register",
    request_id: -1,
    mappings: [{ name: "a", kind: "tcp", remote_port: 1 }],
  }, /"request_id"/);
  invalid({ type: "open", kind: "mapping", mapping: "web" }, /"visitor" must be an object/);
  invalid(
    { type: "open", kind: "mapping", mapping: "web", visitor: { hostname: "", port: 1 } },
    /"visitor\.hostname"/,
  );
  invalid({ type: "open", kind: "teleport" }, /"kind"/);
  invalid(
    { type: "auth_failed", code: 12, message: "x".repeat(513) },
    /"message" must have 0–512 characters/,
  );
  invalid(
    { type: "register_result", request_id: 1, results: [{ name: "a", ok: "yes" }] },
    /"results\[0\]\.ok" must be true or false/,
  );
});

Deno.test("decodeControlMessage() rejects a payload above MAX_CONTROL_PAYLOAD (PROTOCOL.md §14)", () => {
  throws(
    () => decodeControlMessage(new Uint8Array(MAX_CONTROL_PAYLOAD + 1)),
    (err: unknown) => err instanceof ProtocolError && err.code === ERROR_CODES.FRAME_SIZE_ERROR,
  );
});

Deno.test("decodeControlMessage() rejects bytes that are not UTF-8 JSON (PROTOCOL.md §11)", () => {
  for (const bytes of [new Uint8Array([0xff, 0xfe]), enc.encode("{"), enc.encode("[[[[[[")]) {
    throws(
      () => decodeControlMessage(bytes),
      (err: unknown) => err instanceof ProtocolError && err.code === ERROR_CODES.INVALID_MESSAGE,
    );
  }
});

Deno.test("encodeControlMessage() refuses an invalid message instead of sending it", () => {
  throws(() => encodeControlMessage({ type: "auth", proof: "short" }), ProtocolError);
  throws(
    () => parseControlMessage({ type: "unregister", request_id: 1, names: [] }, "encode"),
    /Cannot encode control message/,
  );
});
