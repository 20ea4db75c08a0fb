import assert from "node:assert/strict";
import { DatagramDeframer, frameDatagram, MAX_DATAGRAM } from "@/mapping/datagram_framing.ts";

Deno.test("DatagramDeframer keeps boundaries whatever the chunking (PROTOCOL.md §11.9)", () => {
  const datagrams = [
    new Uint8Array(0),
    new Uint8Array([1, 2, 3]),
    new Uint8Array(70_00).fill(9),
    new Uint8Array([4]),
  ];
  const stream = new Uint8Array(datagrams.reduce((n, d) => n + 2 + d.length, 0));
  let off = 0;
  for (const d of datagrams) {
    stream.set(frameDatagram(d), off);
    off += 2 + d.length;
  }
  for (const chunk of [1, 2, 3, 7, 1000, stream.length]) {
    const deframer = new DatagramDeframer();
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += chunk) {
      out.push(...deframer.push(stream.subarray(i, i + chunk)));
    }
    assert.deepEqual(out, datagrams, `chunk ${chunk}`);
    assert.equal(deframer.buffered, 0);
  }
});

Deno.test("frameDatagram() refuses a datagram above 65535 bytes", () => {
  assert.throws(() => frameDatagram(new Uint8Array(MAX_DATAGRAM + 1)), RangeError);
  assert.equal(frameDatagram(new Uint8Array(MAX_DATAGRAM)).length, MAX_DATAGRAM + 2);
});
