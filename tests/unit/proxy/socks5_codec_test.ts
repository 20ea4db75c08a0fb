import assert from "node:assert/strict";
import {
  AddressTypeError,
  CMD_CONNECT,
  CMD_UDP_ASSOCIATE,
  encodeAddress,
  encodeGreeting,
  encodeMethodSelection,
  encodeReply,
  encodeRequest,
  encodeUdpDatagram,
  encodeUserPass,
  encodeUserPassReply,
  formatIpv6,
  parseGreeting,
  parseIpv4,
  parseIpv6,
  parseReply,
  parseRequest,
  parseUdpDatagram,
  parseUserPass,
  REPLY,
} from "@/proxy/socks5_codec.ts";

const b = (...xs: number[]) => new Uint8Array(xs);

/** Every strict prefix of a message parses to `null` (incomplete). */
function prefixesIncomplete(msg: Uint8Array, parse: (buf: Uint8Array) => unknown): void {
  for (let i = 0; i < msg.length; i++) assert.equal(parse(msg.subarray(0, i)), null, `prefix ${i}`);
}

Deno.test("parseGreeting() parses methods and waits for truncated greetings", () => {
  const g = b(5, 2, 0, 2);
  assert.deepEqual(parseGreeting(g), { methods: [0, 2], size: 4 });
  assert.deepEqual(parseGreeting(b(5, 1, 0, 0xaa)), { methods: [0], size: 3 });
  prefixesIncomplete(g, parseGreeting);
  assert.deepEqual(encodeGreeting([0, 2]), g);
});

Deno.test("parseGreeting() rejects a wrong version and zero methods", () => {
  assert.throws(() => parseGreeting(b(4, 1, 0)), /version 4 is not 5/);
  assert.throws(() => parseGreeting(b(5, 0)), /no methods/);
  assert.throws(() => encodeGreeting([]), RangeError);
  assert.deepEqual(encodeMethodSelection(0xff), b(5, 0xff));
});

Deno.test("parseUserPass() round-trips RFC 1929 and checks every length", () => {
  const msg = encodeUserPass("alice", "s3cret");
  const r = parseUserPass(msg)!;
  assert.equal(new TextDecoder().decode(r.username), "alice");
  assert.equal(new TextDecoder().decode(r.password), "s3cret");
  assert.equal(r.size, msg.length);
  prefixesIncomplete(msg, parseUserPass);
  assert.deepEqual(parseUserPass(b(1, 1, 0x61, 0))?.password, b());
  assert.throws(() => parseUserPass(b(5, 1, 0x61, 0)), /version 5 is not 1/);
  assert.throws(() => parseUserPass(b(1, 0, 0)), /empty user name/);
  assert.throws(() => encodeUserPass("", "x"), RangeError);
  assert.throws(() => encodeUserPass("a".repeat(256), "x"), RangeError);
  assert.deepEqual(encodeUserPassReply(true), b(1, 0));
  assert.deepEqual(encodeUserPassReply(false), b(1, 1));
});

Deno.test("parseRequest() parses IPv4, IPv6 and domain CONNECT requests", () => {
  const v4 = encodeRequest(CMD_CONNECT, { hostname: "127.0.0.1", port: 8080 });
  assert.deepEqual(v4, b(5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90));
  assert.deepEqual(parseRequest(v4), {
    command: 1,
    address: { type: "ipv4", hostname: "127.0.0.1", port: 8080 },
    size: 10,
  });
  const v6 = encodeRequest(CMD_CONNECT, { hostname: "::1", port: 443 });
  assert.equal(v6.length, 22);
  assert.deepEqual(parseRequest(v6)?.address, { type: "ipv6", hostname: "::1", port: 443 });
  const name = encodeRequest(CMD_UDP_ASSOCIATE, { hostname: "example.com", port: 53 });
  assert.deepEqual(parseRequest(name), {
    command: 3,
    address: { type: "domain", hostname: "example.com", port: 53 },
    size: name.length,
  });
  for (const msg of [v4, v6, name]) prefixesIncomplete(msg, parseRequest);
});

Deno.test("parseRequest() rejects bad version, reserved byte, address type and names", () => {
  assert.throws(() => parseRequest(b(4, 1, 0, 1, 1, 2, 3, 4, 0, 80)), /version/);
  assert.throws(() => parseRequest(b(5, 1, 1, 1, 1, 2, 3, 4, 0, 80)), /reserved/);
  assert.throws(() => parseRequest(b(5, 1, 0, 9, 1, 2, 3, 4, 0, 80)), AddressTypeError);
  assert.throws(() => parseRequest(b(5, 1, 0, 3, 0, 0, 80)), /empty domain/);
  assert.throws(() => parseRequest(b(5, 1, 0, 3, 3, 0x61, 0x00, 0x62, 0, 80)), /invalid character/);
  // A request is only the declared bytes: trailing data is left for the relay.
  assert.equal(parseRequest(b(5, 1, 0, 1, 1, 2, 3, 4, 0, 80, 0xde, 0xad))?.size, 10);
});

Deno.test("encodeReply() encodes codes and bind addresses; parseReply() reads them back", () => {
  assert.deepEqual(encodeReply(REPLY.command_not_supported), b(5, 7, 0, 1, 0, 0, 0, 0, 0, 0));
  const r = parseReply(encodeReply(REPLY.succeeded, { hostname: "::1", port: 1080 }));
  assert.deepEqual(r?.address, { type: "ipv6", hostname: "::1", port: 1080 });
  assert.equal(r?.command, 0);
  assert.throws(() => encodeAddress({ hostname: "a".repeat(256), port: 1 }), RangeError);
  assert.throws(() => encodeAddress({ hostname: "a", port: 70000 }), RangeError);
});

Deno.test("parseUdpDatagram() reads header and payload; encodeUdpDatagram() writes them", () => {
  const payload = new TextEncoder().encode("hello");
  const d = encodeUdpDatagram({ hostname: "10.1.2.3", port: 53 }, payload);
  assert.deepEqual(d.subarray(0, 10), b(0, 0, 0, 1, 10, 1, 2, 3, 0, 53));
  const p = parseUdpDatagram(d);
  assert.equal(p.frag, 0);
  assert.deepEqual(p.address, { type: "ipv4", hostname: "10.1.2.3", port: 53 });
  assert.deepEqual(p.data, payload);
  const six = parseUdpDatagram(encodeUdpDatagram({ hostname: "fe80::1:2", port: 9 }, payload));
  assert.equal(six.address.hostname, "fe80::1:2");
  const frag = d.slice();
  frag[2] = 1;
  assert.equal(parseUdpDatagram(frag).frag, 1);
});

Deno.test("parseUdpDatagram() rejects truncated and malformed datagrams", () => {
  assert.throws(() => parseUdpDatagram(b(0, 0, 0)), /too short/);
  assert.throws(() => parseUdpDatagram(b(0, 1, 0, 1, 1, 2, 3, 4, 0, 53)), /reserved/);
  assert.throws(() => parseUdpDatagram(b(0, 0, 0, 1, 1, 2, 3)), /truncated/);
  assert.throws(() => parseUdpDatagram(b(0, 0, 0, 4, 1, 2, 3)), /truncated/);
  assert.throws(() => parseUdpDatagram(b(0, 0, 0, 3, 10, 0x61)), /truncated/);
  assert.throws(() => parseUdpDatagram(b(0, 0, 0, 7, 1, 2, 3, 4, 0, 1)), AddressTypeError);
});

Deno.test("parseIpv6() and formatIpv6() follow RFC 4291 / RFC 5952", () => {
  const cases: [string, string][] = [
    ["::1", "::1"],
    ["::", "::"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:DB8::", "2001:db8::"],
    ["::ffff:1.2.3.4", "::ffff:102:304"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8"],
  ];
  for (const [input, formatted] of cases) {
    const bytes = parseIpv6(input);
    assert.ok(bytes, input);
    assert.equal(formatIpv6(bytes), formatted, input);
  }
  for (
    const bad of [
      "1:2:3",
      "1::2::3",
      "12345::",
      "1:2:3:4:5:6:7:8:9",
      "::g",
      "1.2.3.4",
      "::1.2.3.999",
    ]
  ) {
    assert.equal(parseIpv6(bad), null, bad);
  }
});

Deno.test("parsers reject a wrong version from the first byte, before waiting for more", () => {
  assert.throws(() => parseGreeting(b(4)), /version 4 is not 5/);
  assert.throws(() => parseUserPass(b(5)), /version 5 is not 1/);
  assert.throws(() => parseRequest(b(4)), /version 4 is not 5/);
  // The next byte that can be judged is judged as soon as it is there.
  assert.throws(() => parseUserPass(b(1, 0)), /empty user name/);
  assert.throws(() => parseRequest(b(5, 1, 1)), /reserved byte/);
  assert.throws(() => parseRequest(b(5, 1, 0, 9)), AddressTypeError);
  assert.throws(() => parseRequest(b(5, 1, 0, 3, 0)), /empty domain/);
  assert.equal(parseGreeting(b(5)), null);
  assert.equal(parseUserPass(b(1)), null);
  assert.equal(parseRequest(b(5, 1)), null);
  assert.equal(parseRequest(b(5, 1, 0)), null);
  assert.equal(parseRequest(b(5, 1, 0, 3)), null);
});

Deno.test("AddressTypeError names the unknown type in two hex digits", () => {
  let err: unknown;
  try {
    parseRequest(b(5, 1, 0, 9, 1, 2, 3, 4, 0, 80));
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof AddressTypeError);
  assert.ok(err instanceof SyntaxError);
  assert.equal(err.name, "AddressTypeError");
  assert.equal(err.message, "Cannot parse SOCKS5 address: address type 0x09 is unknown");
  assert.equal(
    new AddressTypeError(0xab).message,
    "Cannot parse SOCKS5 address: address type 0xab is unknown",
  );
});

Deno.test("encoders accept lengths and ports exactly up to their limits", () => {
  assert.equal(encodeGreeting(new Array(255).fill(0)).length, 257);
  assert.throws(() => encodeGreeting(new Array(256).fill(0)), {
    name: "RangeError",
    message: "Cannot encode SOCKS5 greeting: 256 methods (1-255 allowed)",
  });
  assert.deepEqual(encodeUserPass("a", ""), b(1, 1, 0x61, 0));
  assert.equal(encodeUserPass("u".repeat(255), "p".repeat(255)).length, 3 + 255 + 255);
  assert.throws(() => encodeUserPass("u", "p".repeat(256)), {
    name: "RangeError",
    message: "Cannot encode SOCKS5 user/password: lengths must be 1-255 and 0-255",
  });
  assert.deepEqual(encodeAddress({ hostname: "a", port: 65535 }), b(3, 1, 0x61, 0xff, 0xff));
  assert.deepEqual(encodeAddress({ hostname: "1.2.3.4", port: 0 }), b(1, 1, 2, 3, 4, 0, 0));
  assert.equal(encodeAddress({ hostname: "n".repeat(255), port: 1 }).length, 1 + 1 + 255 + 2);
  assert.throws(() => encodeAddress({ hostname: "a", port: 65536 }), {
    name: "RangeError",
    message: "Cannot encode SOCKS5 address: port 65536 is out of range",
  });
  assert.throws(() => encodeAddress({ hostname: "a", port: -1 }), RangeError);
  assert.throws(() => encodeAddress({ hostname: "a", port: 1.5 }), RangeError);
  assert.throws(() => encodeAddress({ hostname: "", port: 1 }), {
    name: "RangeError",
    message: "Cannot encode SOCKS5 address: domain name length 0 is not 1-255",
  });
});

Deno.test("parseRequest() accepts exactly letters, digits and -._: in a domain name", () => {
  const name = "AZaz09-._:";
  const req = encodeRequest(CMD_CONNECT, { hostname: name, port: 1 });
  assert.equal(parseRequest(req)?.address.hostname, name);
  for (const c of ["M", "m", "5"]) {
    assert.equal(
      parseRequest(encodeRequest(CMD_CONNECT, { hostname: c, port: 1 }))?.address.hostname,
      c,
    );
  }
  // The neighbours of every allowed range, and a few usual suspects.
  for (const bad of [0x2f, 0x3b, 0x40, 0x5b, 0x60, 0x7b, 0x20, 0x2c, 0x5e, 0x00, 0xff]) {
    assert.throws(
      () => parseRequest(b(5, 1, 0, 3, 3, 0x61, bad, 0x62, 0, 80)),
      /invalid character/,
      `byte 0x${bad.toString(16)}`,
    );
  }
});

Deno.test("parseUdpDatagram() checks both reserved bytes and reports a 4-byte header as truncated", () => {
  assert.throws(() => parseUdpDatagram(b(1, 0, 0, 1, 1, 2, 3, 4, 0, 53)), /reserved bytes/);
  assert.throws(() => parseUdpDatagram(b(0, 0, 0, 1)), /truncated address/);
  assert.throws(() => parseUdpDatagram(b(0, 0, 0)), /3 bytes is too short/);
  assert.deepEqual(parseUdpDatagram(b(0, 0, 0, 1, 1, 2, 3, 4, 0, 53)).data, b());
});

Deno.test("parseIpv4() takes exactly four decimal octets of 0-255", () => {
  assert.deepEqual(parseIpv4("10.200.30.255"), b(10, 200, 30, 255));
  assert.deepEqual(parseIpv4("255.255.255.255"), b(255, 255, 255, 255));
  assert.deepEqual(parseIpv4("1.22.3.44"), b(1, 22, 3, 44));
  for (
    const bad of [
      "256.1.1.1",
      "1.1.1.256",
      "x1.2.3.4",
      "1.2.3.4x",
      "1.2.3",
      "1.2.3.4.5",
      "1.2.3.1000",
    ]
  ) {
    assert.equal(parseIpv4(bad), null, bad);
  }
  assert.deepEqual(encodeAddress({ hostname: "1.2.3.4x", port: 1 }).subarray(0, 2), b(3, 8));
});

Deno.test("parseIpv6() counts the groups a :: stands for", () => {
  const ok: [string, string][] = [
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["0000:0000:0000:0000:0000:ffff:255.255.255.255", "::ffff:ffff:ffff"],
    ["1::", "1::"],
  ];
  for (const [input, formatted] of ok) {
    const bytes = parseIpv6(input);
    assert.ok(bytes, input);
    assert.equal(formatIpv6(bytes), formatted, input);
  }
  for (
    const bad of [
      "1:2:3:4::5:6:7:8",
      "1:2:3:4::5:6:7:8::",
      "::1::",
      "1:2:3:4:5:6:7:8::",
      // Two `::` where the first half alone has 8 groups.
      "1:2:3:4:5:6:7:8::9::",
    ]
  ) {
    assert.equal(parseIpv6(bad), null, bad);
  }
});
