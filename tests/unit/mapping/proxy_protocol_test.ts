import assert from "node:assert/strict";
import { encodeProxyHeader, encodeProxyV1, encodeProxyV2 } from "@/mapping/proxy_protocol.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("encodeProxyV1() writes the TCP4, TCP6 and UNKNOWN lines", () => {
  const d = new TextDecoder();
  assert.equal(
    d.decode(
      encodeProxyV1({ hostname: "192.0.2.1", port: 5000 }, { hostname: "10.0.0.2", port: 80 }),
    ),
    "PROXY TCP4 192.0.2.1 10.0.0.2 5000 80\r\n",
  );
  assert.equal(
    d.decode(encodeProxyV1({ hostname: "[2001:db8::1]", port: 1 }, { hostname: "::1", port: 2 })),
    "PROXY TCP6 2001:db8::1 ::1 1 2\r\n",
  );
  assert.equal(
    d.decode(encodeProxyV1({ hostname: "192.0.2.1", port: 1 }, { hostname: "::1", port: 2 })),
    "PROXY UNKNOWN\r\n",
  );
});

Deno.test("encodeProxyV2() writes the binary header for IPv4 and IPv6", () => {
  const v4 = encodeProxyV2({ hostname: "192.0.2.1", port: 5000 }, {
    hostname: "10.0.0.2",
    port: 80,
  });
  assert.equal(
    hex(v4),
    "0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" + "c0000201" + "0a000002" + "1388" + "0050",
  );
  const v6 = encodeProxyV2({ hostname: "2001:db8::1", port: 1 }, {
    hostname: "::ffff:127.0.0.1",
    port: 2,
  });
  assert.equal(v6[13], 0x21);
  assert.equal((v6[14]! << 8) | v6[15]!, 36);
  assert.equal(hex(v6.subarray(16, 32)), "20010db8000000000000000000000001");
  assert.equal(hex(v6.subarray(32, 48)), "00000000000000000000ffff7f000001");
  const local = encodeProxyV2({ hostname: "192.0.2.1", port: 1 }, { hostname: "::1", port: 2 });
  assert.equal(hex(local.subarray(12)), "20000000", "mixed families: LOCAL, no address");
});

Deno.test("encodeProxyHeader() is empty without a version", () => {
  assert.equal(
    encodeProxyHeader(undefined, { hostname: "1.2.3.4", port: 1 }, { hostname: "1.2.3.4", port: 2 })
      .length,
    0,
  );
});
