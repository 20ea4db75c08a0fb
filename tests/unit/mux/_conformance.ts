/**
 * The stream conformance suite (yamux `testConnTypes` style): the same cases
 * over any transport. Call {@link registerConformance} once per transport.
 */
import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { ERROR_CODES } from "@/tunnel/mod.ts";
import { StreamError, type VirtualStream } from "@/mux/mod.ts";
import type { PairFactory } from "../transport/_pairs.ts";
import {
  barrier,
  readAll,
  receivePattern,
  sendPattern,
  sessionPair,
  str,
  text,
} from "./_helpers.ts";

function isReset(code: number) {
  return (err: unknown) => err instanceof StreamError && err.code === code && err.remote;
}

/** Registers the conformance cases for streams over `factory`'s transport. */
export function registerConformance(factory: PairFactory): void {
  const on = `over ${factory.name}`;

  Deno.test(`VirtualStream echoes bytes and reports the visitor address ${on} (PROTOCOL.md §9)`, async () => {
    await using pair = await sessionPair(factory);
    const visitor = { hostname: "198.51.100.7", port: 40000 };
    const echo = (async () => {
      const s = (await pair.client.accept())!;
      deepStrictEqual(s.remoteAddr, visitor);
      deepStrictEqual(s.info, { type: "open", kind: "mapping", mapping: "web", visitor });
      const buf = new Uint8Array(1024);
      for (let n = await s.read(buf); n !== null; n = await s.read(buf)) {
        await s.write(buf.subarray(0, n));
      }
      await s.closeWrite();
    })();
    const s = await pair.server.open({ type: "open", kind: "mapping", mapping: "web", visitor });
    equal(s.id % 2, 0, "the server opens even ids");
    await s.write(text("hello, "));
    await s.write(text("tunnel"));
    await s.closeWrite();
    equal(str(await readAll(s)), "hello, tunnel");
    await echo;
  });

  Deno.test(`VirtualStream carries a 64 MiB payload intact ${on} (PROTOCOL.md §10)`, async () => {
    await using pair = await sessionPair(factory);
    const total = 64 * 1024 * 1024;
    const s = await pair.client.open({ type: "open", kind: "proxy" });
    const sending = sendPattern(s, total, 100_000);
    const t = (await pair.server.accept())!;
    equal(await receivePattern(t), total);
    await sending;
    t.close();
    s.close();
  });

  Deno.test(`VirtualStream readable and writable carry bytes as Web Streams ${on}`, async () => {
    await using pair = await sessionPair(factory);
    const s = await pair.client.open({ type: "open", kind: "proxy" });
    const total = 4 * 1024 * 1024;
    const writer = (async () => {
      const w = s.writable.getWriter();
      for (let off = 0; off < total; off += 50_000) {
        await w.write(new Uint8Array(Math.min(50_000, total - off)).fill(off & 0xff));
      }
      await w.close();
    })();
    const t = (await pair.server.accept())!;
    let got = 0;
    for await (const chunk of t.readable) got += chunk.length;
    equal(got, total);
    await writer;
    // BYOB reads work too.
    const u = await pair.server.open({ type: "open", kind: "proxy" });
    await u.write(text("byob"));
    await u.closeWrite();
    const v = (await pair.client.accept())!;
    const reader = v.readable.getReader({ mode: "byob" });
    const r = await reader.read(new Uint8Array(16));
    equal(str(r.value!), "byob");
    ok((await reader.read(new Uint8Array(16))).done);
  });

  Deno.test(`VirtualStream half-closes each direction separately and forgets finished streams ${on} (PROTOCOL.md §9)`, async () => {
    await using pair = await sessionPair(factory);
    const s = await pair.client.open({ type: "open", kind: "proxy" });
    await s.write(text("ping"));
    await s.closeWrite();
    const t = (await pair.server.accept())!;
    equal(str(await readAll(t)), "ping");
    equal(t.state, "remote_closed");
    // The server still writes after the client's FIN.
    await t.write(text("pong"));
    await t.closeWrite();
    equal(str(await readAll(s)), "pong");
    await barrier(pair);
    equal(s.state, "closed");
    equal(t.state, "closed");
    equal(pair.client.stats().streams, 0);
    equal(pair.server.stats().streams, 0);
    await rejects(s.write(text("x")), StreamError);
  });

  Deno.test(`VirtualStream abort and cancel reach the peer as RST CANCEL ${on} (PROTOCOL.md §9)`, async () => {
    await using pair = await sessionPair(factory);
    // Writer aborts: the peer reads the bytes sent before, then the reset.
    const s = await pair.client.open({ type: "open", kind: "proxy" });
    const w = s.writable.getWriter();
    await w.write(text("partial"));
    await w.abort(new Error("producer failed"));
    const t = (await pair.server.accept())!;
    const buf = new Uint8Array(64);
    equal(await t.read(buf), 7);
    await rejects(t.read(buf), isReset(ERROR_CODES.CANCEL));
    await rejects(t.write(text("x")), isReset(ERROR_CODES.CANCEL));
    // Reader cancels: the peer's writes fail.
    const u = await pair.client.open({ type: "open", kind: "proxy" });
    const v = (await pair.server.accept())!;
    await v.readable.cancel(new Error("not interested"));
    const big = new Uint8Array(8 * 1024 * 1024);
    await rejects(u.write(big), isReset(ERROR_CODES.CANCEL));
    await barrier(pair);
    equal(pair.client.stats().streams, 0);
    equal(pair.server.stats().streams, 0);
  });

  Deno.test(`VirtualStream close() while the peer is reading delivers everything, then end of stream ${on} (PROTOCOL.md §9)`, async () => {
    await using pair = await sessionPair(factory);
    const s = await pair.client.open({ type: "open", kind: "proxy" });
    const t = (await pair.server.accept().then((x) => x!)) as VirtualStream;
    const reading = readAll(t);
    await s.write(text("last words"));
    s.close();
    equal(str(await reading), "last words");
    // The closer does not read any more, so the peer's writes fail.
    await rejects(t.write(new Uint8Array(4 * 1024 * 1024)), isReset(ERROR_CODES.CANCEL));
    equal(await s.read(new Uint8Array(4)), null);
  });
}
