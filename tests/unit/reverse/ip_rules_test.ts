import assert from "node:assert/strict";
import { cidrContains, compileIpRules, ipAllowed, parseCidr, parseIp } from "@/reverse/ip_rules.ts";

Deno.test("parseIp() reads IPv4, IPv6, brackets and v4-mapped addresses", () => {
  assert.equal(parseIp("1.2.3.4"), parseIp("::ffff:1.2.3.4"));
  assert.equal(parseIp("[::1]"), 1n);
  assert.equal(parseIp("::"), 0n);
  assert.equal(parseIp("2001:db8::1"), (0x20010db8n << 96n) | 1n);
  assert.equal(parseIp("1:2:3:4:5:6:7:8"), 0x00010002000300040005000600070008n);
  for (const bad of ["1.2.3", "256.1.1.1", "1::2::3", "x", "", "1:2:3:4:5:6:7:8:9", "01.2.3.4.5"]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("cidrContains() matches IPv4 and IPv6 prefixes; /0 means any", () => {
  assert.ok(cidrContains(parseCidr("10.0.0.0/8"), "10.255.0.1"));
  assert.ok(!cidrContains(parseCidr("10.0.0.0/8"), "11.0.0.1"));
  assert.ok(cidrContains(parseCidr("10.0.0.0/8"), "::ffff:10.0.0.1"), "v4-mapped");
  assert.ok(cidrContains(parseCidr("2001:db8::/32"), "2001:db8:ffff::1"));
  assert.ok(!cidrContains(parseCidr("2001:db8::/32"), "2001:db9::1"));
  assert.ok(cidrContains(parseCidr("0.0.0.0/0"), "8.8.8.8"));
  assert.ok(!cidrContains(parseCidr("0.0.0.0/0"), "2001:db8::1"), "v4 /0 is IPv4 only");
  assert.ok(cidrContains(parseCidr("::/0"), "2001:db8::1"));
  assert.ok(cidrContains(parseCidr("192.168.1.7"), "192.168.1.7"));
  assert.ok(!cidrContains(parseCidr("192.168.1.7"), "192.168.1.8"));
  assert.throws(() => parseCidr("10.0.0.0/33"), SyntaxError);
  assert.throws(() => parseCidr("::/129"), SyntaxError);
  assert.throws(() => parseCidr("10.0.0.0/x"), SyntaxError);
});

Deno.test("ipAllowed() denies first, then requires allow when allow is set", () => {
  const rules = compileIpRules(["10.0.0.0/8", "::1"], ["10.9.0.0/16"]);
  assert.ok(ipAllowed(rules, "10.1.1.1"));
  assert.ok(ipAllowed(rules, "::1"));
  assert.ok(!ipAllowed(rules, "10.9.1.1"));
  assert.ok(!ipAllowed(rules, "192.168.0.1"));
  assert.ok(!ipAllowed(rules, "not-an-ip"));
  assert.ok(ipAllowed(compileIpRules([], []), "anything"));
  assert.ok(!ipAllowed(compileIpRules([], ["::/0", "0.0.0.0/0"]), "127.0.0.1"));
});
