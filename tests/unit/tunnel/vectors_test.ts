import { assertEquals, deepStrictEqual, ok } from "./_assert.ts";
import {
  computeClientProof,
  computeServerProof,
  decodeControlMessage,
  decodePreamble,
  encodeControlMessage,
  encodeFrame,
  encodePreamble,
  type Frame,
  FrameDecoder,
  toHex,
  verifyClientProof,
  verifyServerProof,
} from "@/tunnel/mod.ts";
import type { ControlMessage } from "@/tunnel/mod.ts";
import { loadVectors } from "./_vectors.ts";

const vectors = await loadVectors();
const spec = await Deno.readTextFile(new URL("../../../src/tunnel/PROTOCOL.md", import.meta.url));

Deno.test("test vectors exist for every frame type and the preamble (PROTOCOL.md §17)", () => {
  const kinds = new Set(vectors.map((v) => v.expect.kind));
  ok(kinds.has("preamble") && kinds.has("frame") && kinds.has("auth_proof"));
  const types = new Set(vectors.filter((v) => v.expect.kind === "frame").map((v) => v.expect.type));
  deepStrictEqual([...types].sort(), [0, 1, 2, 3, 4]);
});

for (const v of vectors) {
  Deno.test(`vector ${v.name}: appears in PROTOCOL.md §17 byte for byte`, () => {
    ok(spec.includes(`**${v.name}**`), `PROTOCOL.md has no vector named ${v.name}`);
    ok(spec.includes(v.hexText), `PROTOCOL.md does not contain the hex of ${v.name}`);
  });

  Deno.test(`vector ${v.name}: decodes to the expected value and re-encodes byte for byte (PROTOCOL.md §17)`, async () => {
    const e = v.expect;
    if (e.kind === "preamble") {
      assertEquals(decodePreamble(v.bytes), e.version);
      deepStrictEqual(encodePreamble(e.version as number), v.bytes);
      return;
    }
    if (e.kind === "auth_proof") {
      const nonces = {
        server_nonce: e.server_nonce as string,
        client_nonce: e.client_nonce as string,
      };
      assertEquals(await computeClientProof(e.token as string, nonces), toHex(v.bytes));
      assertEquals(await computeServerProof(e.token as string, nonces), e.server_proof);
      ok(await verifyClientProof(e.token as string, nonces, toHex(v.bytes)));
      ok(await verifyServerProof(e.token as string, nonces, e.server_proof as string));
      return;
    }
    const d = new FrameDecoder();
    d.push(v.bytes);
    const f = d.next() as Frame;
    ok(f !== null, "a whole frame");
    d.finish();
    assertEquals(f.type, e.type);
    assertEquals(f.flags, e.flags);
    assertEquals(f.streamId, e.streamId);
    assertEquals(f.length, e.length);
    let payload = f.payload;
    if (e.control !== undefined) {
      const m = decodeControlMessage(f.payload);
      deepStrictEqual(m, e.control);
      payload = encodeControlMessage(e.control as ControlMessage);
    } else if (e.payload_hex !== undefined) {
      assertEquals(toHex(f.payload), e.payload_hex);
    }
    deepStrictEqual(
      encodeFrame({
        type: f.type,
        flags: f.flags,
        streamId: f.streamId,
        length: f.length,
        payload,
      }),
      v.bytes,
    );
  });
}
