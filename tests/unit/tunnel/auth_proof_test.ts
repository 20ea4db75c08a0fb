import { assertEquals, deepStrictEqual, ok, throws } from "./_assert.ts";
import {
  computeClientProof,
  computeServerProof,
  fromHex,
  generateNonce,
  toHex,
  verifyClientProof,
  verifyServerProof,
} from "@/tunnel/mod.ts";

Deno.test("generateNonce() returns 32 fresh random bytes as hex (PROTOCOL.md §11.2)", () => {
  const a = generateNonce();
  ok(/^[0-9a-f]{64}$/.test(a));
  ok(a !== generateNonce());
});

Deno.test("verifyClientProof() accepts the right token and rejects another token, nonce or proof (PROTOCOL.md §11.3)", async () => {
  const nonces = { server_nonce: generateNonce(), client_nonce: generateNonce() };
  const proof = await computeClientProof("s3cret", nonces);
  ok(await verifyClientProof("s3cret", nonces, proof));
  ok(!(await verifyClientProof("s3cret!", nonces, proof)));
  ok(!(await verifyClientProof("s3cret", { ...nonces, server_nonce: generateNonce() }, proof)));
  ok(!(await verifyClientProof("s3cret", nonces, "00".repeat(32))));
  ok(!(await verifyClientProof("s3cret", nonces, "zz")));
  // The proofs of the two directions differ, so one cannot be reflected as the other.
  const serverProof = await computeServerProof("s3cret", nonces);
  ok(serverProof !== proof);
  ok(!(await verifyServerProof("s3cret", nonces, proof)));
  ok(await verifyServerProof("s3cret", nonces, serverProof));
});

Deno.test("fromHex() and toHex() round-trip and reject bad input", () => {
  assertEquals(toHex(fromHex("00ff10")), "00ff10");
  throws(() => fromHex("abc"), SyntaxError);
  throws(() => fromHex("AB"), SyntaxError);
});

Deno.test("toHex() pads every byte to two digits; fromHex() reads every pair", () => {
  assertEquals(toHex(new Uint8Array([0, 1, 0x0a, 0x10, 0xfe])), "00010a10fe");
  assertEquals(toHex(new Uint8Array(0)), "");
  deepStrictEqual(fromHex(""), new Uint8Array(0));
  deepStrictEqual(
    fromHex("0123456789abcdef"),
    new Uint8Array([1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]),
  );
  for (const bad of ["0", "0g", "g0", "zz00", "00zz", " 00", "00 ", "0A", "-1"]) {
    throws(() => fromHex(bad), {
      name: "SyntaxError",
      message: "Cannot parse hex: expected lower-case hex digit pairs",
    }, bad);
  }
});

Deno.test("proofs are bound to the label and to the order of the nonces (PROTOCOL.md §11.3-§11.4)", async () => {
  const nonces = { server_nonce: "11".repeat(32), client_nonce: "22".repeat(32) };
  const swapped = { server_nonce: nonces.client_nonce, client_nonce: nonces.server_nonce };
  const client = await computeClientProof("k", nonces);
  const server = await computeServerProof("k", nonces);
  ok(/^[0-9a-f]{64}$/.test(client) && /^[0-9a-f]{64}$/.test(server));
  ok(!(await verifyClientProof("k", swapped, client)));
  ok(!(await verifyServerProof("k", swapped, server)));
  ok(await verifyServerProof("k", nonces, server));
  ok(!(await verifyClientProof("k", nonces, server)));
  // Another client nonce changes the client proof too.
  ok(!(await verifyClientProof("k", { ...nonces, client_nonce: "33".repeat(32) }, client)));
  ok(!(await verifyServerProof("k", { ...nonces, client_nonce: "33".repeat(32) }, server)));
  ok(!(await verifyServerProof("k", { ...nonces, server_nonce: "33".repeat(32) }, server)));
  ok(!(await verifyServerProof("k2", nonces, server)));
});

Deno.test("verify*Proof() answer false, never throw, for malformed proofs", async () => {
  const nonces = { server_nonce: generateNonce(), client_nonce: generateNonce() };
  const proof = await computeClientProof("t", nonces);
  const server = await computeServerProof("t", nonces);
  for (
    const bad of [
      "",
      proof.slice(0, 62),
      proof + "00",
      proof.toUpperCase(),
      proof.slice(1),
      "zz".repeat(32),
    ]
  ) {
    ok(!(await verifyClientProof("t", nonces, bad)), `client proof ${bad}`);
    ok(!(await verifyServerProof("t", nonces, bad)), `server proof ${bad}`);
  }
  ok(!(await verifyServerProof("t", nonces, server.toUpperCase())));
});
