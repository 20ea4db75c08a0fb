import assert from "node:assert/strict";
import {
  checkEgressAddress,
  checkEgressName,
  compileEgressPolicy,
  DialError,
  type EgressDenial,
  egressDialer,
  type EgressHostInfo,
  type EgressRules,
  parseEgressRule,
} from "@/proxy/mod.ts";
import { parseIp } from "@/reverse/ip_rules.ts";
import type { ByteConn } from "@/transport/conn.ts";

const NO_HOST: EgressHostInfo = { own: [], localIps: new Set() };
const EMPTY: EgressRules = { allow: [], deny: [] };

Deno.test("parseEgressRule() reads hosts, CIDRs, names, wildcards and ports", () => {
  const cases: [text: string, kind: string, ports: string][] = [
    ["*", "any", "any"],
    ["*:25", "any", "25-25"],
    ["10.0.0.0/8", "cidr", "any"],
    ["10.0.0.0/8:22", "cidr", "22-22"],
    ["127.0.0.1:6379", "cidr", "6379-6379"],
    ["::1", "cidr", "any"],
    ["fe80::/10", "cidr", "any"],
    ["[::1]:8080", "cidr", "8080-8080"],
    ["[fd00::/8]:8000-8999", "cidr", "8000-8999"],
    ["db.example.com", "name", "any"],
    ["DB.Example.COM.:443", "name", "443-443"],
    ["*.internal", "suffix", "any"],
    ["*.internal:1-1024", "suffix", "1-1024"],
    ["localhost", "name", "any"],
  ];
  for (const [text, kind, ports] of cases) {
    const r = parseEgressRule(text);
    assert.equal(r.host.kind, kind, text);
    assert.equal(r.ports ? `${r.ports.from}-${r.ports.to}` : "any", ports, text);
    assert.equal(r.text, text);
  }
  assert.equal(
    (parseEgressRule("DB.Example.COM.") as { host: { name: string } }).host.name,
    "db.example.com",
  );
  for (
    const bad of [
      "",
      "host:",
      "host:0",
      "host:70000",
      "host:9-1",
      "host:x",
      "10.0.0.0/33",
      "[::1",
      "[::1]x",
      "[db.example]:80",
      "a b",
      "*.",
      "*.*.x",
      "ex*ample.com",
      "-bad.example",
    ]
  ) {
    assert.throws(() => parseEgressRule(bad), SyntaxError, JSON.stringify(bad));
  }
});

interface Case {
  what: string;
  rules?: EgressRules;
  token?: EgressRules;
  protect?: boolean;
  host?: EgressHostInfo;
  /** The name asked for; `undefined` = an IP target. */
  name?: string;
  address: string;
  port: number;
  allowed: boolean;
  rule?: string | undefined;
}

const OWN: EgressHostInfo = {
  own: [
    { ip: parseIp("10.1.1.1")!, port: 8091 },
    { ip: "any", port: 8837 },
  ],
  localIps: new Set([parseIp("192.168.7.7")!]),
};

const CASES: Case[] = [
  { what: "no rules: anything", address: "127.0.0.1", port: 80, allowed: true },
  { what: "server: public", protect: true, address: "93.184.216.34", port: 443, allowed: true },
  {
    what: "server: loopback",
    protect: true,
    address: "127.0.0.1",
    port: 80,
    allowed: false,
    rule: "protected: loopback 127.0.0.0/8",
  },
  { what: "server: 127.255.0.9", protect: true, address: "127.255.0.9", port: 80, allowed: false },
  {
    what: "server: ::1",
    protect: true,
    address: "::1",
    port: 80,
    allowed: false,
    rule: "protected: loopback ::1/128",
  },
  {
    what: "server: IPv4-mapped loopback",
    protect: true,
    address: "::ffff:127.0.0.1",
    port: 80,
    allowed: false,
  },
  {
    what: "server: metadata",
    protect: true,
    address: "169.254.169.254",
    port: 80,
    allowed: false,
    rule: "protected: link-local 169.254.0.0/16",
  },
  { what: "server: fe80::", protect: true, address: "fe80::1%eth0", port: 80, allowed: false },
  { what: "server: 0.0.0.0", protect: true, address: "0.0.0.0", port: 80, allowed: false },
  { what: "server: ::", protect: true, address: "::", port: 80, allowed: false },
  { what: "server: LAN is fine", protect: true, address: "10.0.0.5", port: 22, allowed: true },
  {
    what: "server: name resolving to loopback",
    protect: true,
    name: "localhost",
    address: "127.0.0.1",
    port: 80,
    allowed: false,
  },
  {
    what: "allow lifts loopback",
    protect: true,
    rules: { allow: ["127.0.0.0/8"], deny: [] },
    address: "127.0.0.1",
    port: 6379,
    allowed: true,
    rule: "127.0.0.0/8",
  },
  {
    what: "allow by name lifts loopback for that name",
    protect: true,
    rules: { allow: ["localhost"], deny: [] },
    name: "LocalHost.",
    address: "127.0.0.1",
    port: 80,
    allowed: true,
    rule: "localhost",
  },
  {
    what: "allow by name does not cover the IP literal",
    protect: true,
    rules: { allow: ["localhost"], deny: [] },
    address: "127.0.0.1",
    port: 80,
    allowed: false,
  },
  {
    what: "allow with a port: other ports stay protected",
    protect: true,
    rules: { allow: ["127.0.0.1:6379"], deny: [] },
    address: "127.0.0.1",
    port: 6380,
    allowed: false,
  },
  {
    what: "own listener (exact IP)",
    protect: true,
    host: OWN,
    address: "10.1.1.1",
    port: 8091,
    allowed: false,
    rule: "protected: own listener",
  },
  {
    what: "own listener: other port of that IP",
    protect: true,
    host: OWN,
    address: "10.1.1.1",
    port: 8092,
    allowed: true,
  },
  {
    what: "own listener bound to any: interface address",
    protect: true,
    host: OWN,
    address: "192.168.7.7",
    port: 8837,
    allowed: false,
    rule: "protected: own listener",
  },
  {
    what: "own listener bound to any: other host",
    protect: true,
    host: OWN,
    address: "192.168.7.8",
    port: 8837,
    allowed: true,
  },
  {
    what: "own listener: a CIDR allow does not lift it",
    protect: true,
    host: OWN,
    rules: { allow: ["127.0.0.0/8", "10.0.0.0/8"], deny: [] },
    address: "10.1.1.1",
    port: 8091,
    allowed: false,
    rule: "protected: own listener",
  },
  {
    what: "own listener bound to any, on loopback, with loopback allowed",
    protect: true,
    host: OWN,
    rules: { allow: ["127.0.0.0/8"], deny: [] },
    address: "127.0.0.1",
    port: 8837,
    allowed: false,
    rule: "protected: own listener",
  },
  {
    what: "own listener: an allow rule naming the port lifts it",
    protect: true,
    host: OWN,
    rules: { allow: ["10.1.1.1:8091"], deny: [] },
    address: "10.1.1.1",
    port: 8091,
    allowed: true,
  },
  {
    what: "deny beats allow",
    rules: { allow: ["10.0.0.0/8"], deny: ["10.0.0.5"] },
    address: "10.0.0.5",
    port: 22,
    allowed: false,
    rule: "10.0.0.5",
  },
  {
    what: "deny a port everywhere",
    rules: { allow: [], deny: ["*:25"] },
    address: "1.2.3.4",
    port: 25,
    allowed: false,
    rule: "*:25",
  },
  {
    what: "other port passes",
    rules: { allow: [], deny: ["*:25"] },
    address: "1.2.3.4",
    port: 26,
    allowed: true,
  },
  {
    what: "deny a suffix",
    rules: { allow: [], deny: ["*.internal"] },
    name: "db.internal",
    address: "1.2.3.4",
    port: 5432,
    allowed: false,
    rule: "*.internal",
  },
  {
    what: "suffix does not match the bare name",
    rules: { allow: [], deny: ["*.internal"] },
    name: "internal",
    address: "1.2.3.4",
    port: 5432,
    allowed: true,
  },
  {
    what: "suffix does not match a longer label",
    rules: { allow: [], deny: ["*.internal"] },
    name: "db.notinternal",
    address: "1.2.3.4",
    port: 5432,
    allowed: true,
  },
  {
    what: "a deny CIDR catches what a name resolves to",
    rules: { allow: ["*.example.com"], deny: ["10.0.0.0/8"] },
    name: "db.example.com",
    address: "10.9.9.9",
    port: 80,
    allowed: false,
    rule: "10.0.0.0/8",
  },
  {
    what: "IPv4 deny matches an IPv4-mapped address",
    rules: { allow: [], deny: ["192.168.0.0/16"] },
    address: "::ffff:192.168.1.1",
    port: 80,
    allowed: false,
  },
  {
    what: "whitelist: in",
    rules: { allow: ["10.0.0.0/8:443"], deny: [], default: "deny" },
    address: "10.2.3.4",
    port: 443,
    allowed: true,
  },
  {
    what: "whitelist: out",
    rules: { allow: ["10.0.0.0/8:443"], deny: [], default: "deny" },
    address: "10.2.3.4",
    port: 80,
    allowed: false,
    rule: "default: deny",
  },
  {
    what: "token adds an allow",
    protect: true,
    token: { allow: ["127.0.0.1:9000"], deny: [] },
    address: "127.0.0.1",
    port: 9000,
    allowed: true,
  },
  {
    what: "token adds a deny over the server's allow",
    rules: { allow: ["10.0.0.0/8"], deny: [] },
    token: { allow: [], deny: ["10.0.0.0/16"] },
    address: "10.0.1.1",
    port: 80,
    allowed: false,
    rule: "10.0.0.0/16",
  },
  {
    what: "token default wins",
    rules: { allow: [], deny: [], default: "allow" },
    token: { allow: [], deny: [], default: "deny" },
    address: "1.1.1.1",
    port: 80,
    allowed: false,
  },
];

Deno.test("checkEgressAddress(): deny rule > allow rule > protections > default", () => {
  for (const c of CASES) {
    const policy = compileEgressPolicy(c.rules ?? EMPTY, {
      protect: c.protect ?? false,
      token: c.token,
    });
    const d = checkEgressAddress(policy, c.host ?? NO_HOST, c.name, c.address, c.port);
    assert.equal(d.allowed, c.allowed, c.what);
    if ("rule" in c) assert.equal(d.rule, c.rule, c.what);
  }
});

Deno.test("checkEgressName(): refuses before DNS only what no address could rescue", () => {
  const cases: [rules: EgressRules, name: string, port: number, refusedBy: string | undefined][] = [
    [EMPTY, "example.com", 80, undefined],
    [{ allow: [], deny: ["*.internal"] }, "DB.Internal.", 80, "*.internal"],
    [{ allow: [], deny: ["evil.example:443"] }, "evil.example", 443, "evil.example:443"],
    [{ allow: [], deny: ["evil.example:443"] }, "evil.example", 80, undefined],
    [{ allow: [], deny: ["*:25"] }, "mail.example", 25, "*:25"],
    [{ allow: [], deny: ["10.0.0.0/8"] }, "x.example", 80, undefined],
    [{ allow: ["*.corp"], deny: [], default: "deny" }, "x.example", 80, "default: deny"],
    [{ allow: ["*.corp"], deny: [], default: "deny" }, "a.corp", 80, undefined],
    [{ allow: ["10.0.0.0/8"], deny: [], default: "deny" }, "x.example", 80, undefined],
    [{ allow: ["10.0.0.0/8:22"], deny: [], default: "deny" }, "x.example", 80, "default: deny"],
  ];
  for (const [rules, name, port, refusedBy] of cases) {
    const d = checkEgressName(compileEgressPolicy(rules, { protect: true }), name, port);
    assert.equal(d?.rule, refusedBy, `${JSON.stringify(rules)} ${name}:${port}`);
    if (d) assert.equal(d.allowed, false);
  }
});

/** An egressDialer whose DNS and connects are recorded instead of done. */
function fakeDialer(rules: EgressRules, dns: Record<string, string[]>) {
  const dialled: string[] = [];
  const resolved: string[] = [];
  const denied: EgressDenial[] = [];
  const dial = egressDialer({
    policy: compileEgressPolicy(rules, { protect: true }),
    hostInfo: () => NO_HOST,
    onDenied: (d) => denied.push(d),
    resolve: (name) => {
      resolved.push(name);
      return Promise.resolve(dns[name] ?? []);
    },
    dial: (host, port) => {
      dialled.push(`${host}:${port}`);
      return Promise.resolve({} as ByteConn);
    },
  });
  return { dial, dialled, resolved, denied };
}

Deno.test("egressDialer() resolves once, checks every address and dials only those that pass", async () => {
  const dns = {
    "localhost": ["127.0.0.1", "::1"],
    "mixed.example": ["127.0.0.1", "93.184.216.34"],
    "public.example": ["93.184.216.34"],
  };
  const signal = new AbortController().signal;
  {
    const f = fakeDialer(EMPTY, dns);
    const err = await f.dial("localhost", 80, signal).then(() => null, (e) => e);
    assert.ok(err instanceof DialError && err.reason === "not_allowed", String(err));
    assert.match(err.message, /Cannot connect to "localhost:80": not allowed by the egress policy/);
    assert.deepEqual(f.dialled, []);
    assert.deepEqual(f.denied, [{
      target: "localhost:80",
      address: "127.0.0.1",
      rule: "protected: loopback 127.0.0.0/8",
    }]);
  }
  {
    const f = fakeDialer(EMPTY, dns);
    await f.dial("mixed.example", 80, signal);
    assert.deepEqual(f.dialled, ["93.184.216.34:80"], "the loopback address is skipped");
    assert.deepEqual(f.resolved, ["mixed.example"], "resolved once, dialled by address");
    assert.deepEqual(f.denied, []);
  }
  {
    const f = fakeDialer(EMPTY, dns);
    const err = await f.dial("169.254.169.254", 80, signal).then(() => null, (e) => e);
    assert.ok(err instanceof DialError && err.reason === "not_allowed");
    assert.deepEqual(f.resolved, [], "an IP is not resolved");
    assert.deepEqual(f.dialled, []);
    assert.equal(f.denied[0]?.address, "169.254.169.254");
  }
  {
    const f = fakeDialer({ allow: [], deny: ["*.example"] }, dns);
    const err = await f.dial("public.example", 443, signal).then(() => null, (e) => e);
    assert.ok(err instanceof DialError && err.reason === "not_allowed");
    assert.deepEqual(f.resolved, [], "refused before DNS");
    assert.deepEqual(f.denied, [{
      target: "public.example:443",
      address: undefined,
      rule: "*.example",
    }]);
  }
  {
    const f = fakeDialer({ allow: ["localhost"], deny: [] }, dns);
    await f.dial("localhost", 8080, signal);
    assert.deepEqual(
      f.dialled,
      ["127.0.0.1:8080"],
      "allowed by name: the first address is dialled",
    );
  }
  {
    const f = fakeDialer(EMPTY, dns);
    const err = await f.dial("nowhere.example", 80, signal).then(() => null, (e) => e);
    assert.ok(err instanceof DialError && err.reason === "not_found", String(err));
  }
});
