import assert from "node:assert/strict";
import { parse } from "yaml";
import { ConfigReader } from "@/config/reader.ts";
import {
  completeUpstreamGroup,
  readUpstreamGroup,
  readUpstreamGroups,
} from "@/config/upstream_section.ts";

function read(yaml: string) {
  const r = new ConfigReader(() => undefined);
  const input = readUpstreamGroup(r, parse(yaml), ["upstreams", 0]);
  return { input, issues: r.issues.map((i) => `${i.path}: ${i.message}`) };
}

Deno.test("readUpstreamGroup() accepts plain and detailed servers and fills defaults", () => {
  const { input, issues } = read(`
name: backend
servers:
  - "127.0.0.1:9001"
  - { addr: "[::1]:9002", weight: 5, max_fails: 0, fail_timeout: 3s, backup: true }
`);
  assert.deepEqual(issues, []);
  assert.deepEqual(completeUpstreamGroup(input!), {
    name: "backend",
    strategy: "round_robin",
    servers: [
      { addr: "127.0.0.1:9001", weight: 1, max_fails: 1, fail_timeout_ms: 10_000, backup: false },
      { addr: "[::1]:9002", weight: 5, max_fails: 0, fail_timeout_ms: 3000, backup: true },
    ],
    health_check: undefined,
  });
});

Deno.test("readUpstreamGroup() reads a health check with defaults", () => {
  const tcp = read(`{ name: a, strategy: least_conn, servers: ["127.0.0.1:1"], health_check: {} }`);
  assert.deepEqual(tcp.issues, []);
  assert.deepEqual(completeUpstreamGroup(tcp.input!).health_check, {
    type: "tcp",
    interval_ms: 5000,
    timeout_ms: 2000,
    rise: 2,
    fall: 3,
    path: "/",
    expect_status: 200,
  });
  const http = read(`
name: a
servers: ["127.0.0.1:1"]
health_check: { type: http, interval: 1s, timeout: 500ms, rise: 1, fall: 1, path: /healthz, expect_status: 204 }
`);
  assert.deepEqual(http.issues, []);
  assert.deepEqual(completeUpstreamGroup(http.input!).health_check, {
    type: "http",
    interval_ms: 1000,
    timeout_ms: 500,
    rise: 1,
    fall: 1,
    path: "/healthz",
    expect_status: 204,
  });
});

const INVALID: [string, string, string[]][] = [
  ["no name, no servers", `{ strategy: weighted }`, [
    "upstreams[0].name: is required",
    "upstreams[0].servers: is required",
  ]],
  ["unknown keys", `{ name: a, servers: [{ addr: "127.0.0.1:1", wieght: 2 }], color: red }`, [
    "upstreams[0].color: unknown key (known keys: name, strategy, servers, health_check)",
    "upstreams[0].servers[0].wieght: unknown key (known keys: addr, weight, max_fails, fail_timeout, backup)",
  ]],
  ["weight 0", `{ name: a, servers: [{ addr: "127.0.0.1:1", weight: 0 }] }`, [
    "upstreams[0].servers[0].weight: must be at least 1 (remove the server or mark it backup)",
  ]],
  ["bad strategy and address", `{ name: a, strategy: fastest, servers: ["nope"] }`, [
    'upstreams[0].strategy: expected one of round_robin, weighted, least_conn, ip_hash, random, got "fastest"',
    'upstreams[0].servers[0]: expected an address like "127.0.0.1:8090" or "[::1]:8090", got "nope"',
  ]],
  [
    "duplicates and only backups",
    `
name: a
servers: [{ addr: "127.0.0.1:1", backup: true }, { addr: "127.0.0.1:1", backup: true }]`,
    [
      'upstreams[0].servers[1]: duplicate server "127.0.0.1:1"',
      "upstreams[0].servers: expected at least one server that is not a backup",
    ],
  ],
  ["empty list and bad name", `{ name: "a b", servers: [] }`, [
    "upstreams[0].name: expected 1-64 characters from A-Z a-z 0-9 _ . -",
    "upstreams[0].servers: expected at least one server",
  ]],
  [
    "http keys on a tcp check",
    `
name: a
servers: ["127.0.0.1:1"]
health_check: { path: /x, expect_status: 204, rise: 0, interval: 1s, timeout: 2s }`,
    [
      "upstreams[0].health_check.path: is only valid with type: http",
      "upstreams[0].health_check.expect_status: is only valid with type: http",
      "upstreams[0].health_check.timeout: must not be longer than interval",
      "upstreams[0].health_check.rise: expected a whole number from 1 to 100, got 0",
    ],
  ],
  [
    "bad http path",
    `{ name: a, servers: ["127.0.0.1:1"], health_check: { type: http, path: x } }`,
    [
      'upstreams[0].health_check.path: expected a path starting with "/", got "x"',
    ],
  ],
];

for (const [name, yaml, expected] of INVALID) {
  Deno.test(`readUpstreamGroup() rejects ${name}`, () => {
    const { input, issues } = read(yaml);
    assert.equal(input, undefined);
    assert.deepEqual(issues.sort(), [...expected].sort());
  });
}

Deno.test("readUpstreamGroups() rejects duplicate group names", () => {
  const r = new ConfigReader(() => undefined);
  const groups = readUpstreamGroups(
    r,
    parse(`[{ name: a, servers: ["127.0.0.1:1"] }, { name: a, servers: ["127.0.0.1:2"] }]`),
    ["stream", "upstreams"],
  );
  assert.equal(groups.length, 1);
  assert.deepEqual(r.issues.map((i) => `${i.path}: ${i.message}`), [
    'stream.upstreams[1].name: duplicate upstream name "a"',
  ]);
});
