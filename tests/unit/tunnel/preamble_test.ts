import { assertEquals, deepStrictEqual, ok, rejects, throws } from "./_assert.ts";
import {
  decodePreamble,
  encodePreamble,
  ERROR_CODES,
  exchangePreamble,
  ProtocolError,
} from "@/tunnel/mod.ts";
import { createPipe } from "@/transport/pipe.ts";

Deno.test("encodePreamble() is the magic WMPROXY plus the version byte (PROTOCOL.md §4)", () => {
  deepStrictEqual(encodePreamble(), new Uint8Array([0x57, 0x4d, 0x50, 0x52, 0x4f, 0x58, 0x59, 1]));
});

Deno.test("decodePreamble() rejects a wrong magic with PROTOCOL_ERROR (PROTOCOL.md §4)", () => {
  throws(() => decodePreamble(new TextEncoder().encode("GET / HT")), (err: unknown) => {
    ok(err instanceof ProtocolError);
    assertEquals(err.code, ERROR_CODES.PROTOCOL_ERROR);
    ok(/does not speak the wmproxy tunnel protocol/.test(err.message));
    return true;
  });
});

Deno.test("decodePreamble() rejects an unsupported version with VERSION_MISMATCH naming both versions (PROTOCOL.md §4)", () => {
  throws(() => decodePreamble(encodePreamble(2), "server"), (err: unknown) => {
    ok(err instanceof ProtocolError);
    assertEquals(err.code, ERROR_CODES.VERSION_MISMATCH);
    assertEquals(
      err.message,
      "Cannot accept server: protocol version 2 is not supported (supported: 1); upgrade this side",
    );
    return true;
  });
});

Deno.test("exchangePreamble() reads exactly 8 bytes and leaves the frames that follow (PROTOCOL.md §4)", async () => {
  const [a, b] = createPipe();
  try {
    const peer = (async () => {
      const p = new Uint8Array(8);
      let n = 0;
      while (n < 8) n += (await b.read(p.subarray(n)))!;
      const out = new Uint8Array(12);
      out.set(encodePreamble());
      out.set([9, 9, 9, 9], 8);
      await b.write(out);
      return p;
    })();
    assertEquals(await exchangePreamble(a), 1);
    deepStrictEqual(await peer, encodePreamble());
    const rest = new Uint8Array(8);
    assertEquals(await a.read(rest), 4);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("exchangePreamble() fails when the peer closes early", async () => {
  const [a, b] = createPipe();
  try {
    await b.write(new Uint8Array([0x57, 0x4d]));
    await b.closeWrite();
    await rejects(exchangePreamble(a), /closed the connection after 2 bytes/);
  } finally {
    a.close();
    b.close();
  }
});
