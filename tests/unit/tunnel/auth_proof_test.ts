import { assertEquals, ok, throws } from "./_assert.ts";
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
