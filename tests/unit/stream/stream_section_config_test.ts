import assert from "node:assert/strict";
import { parse } from "yaml";
import { ConfigReader } from "@/config/reader.ts";
import { ConfigError } from "@/config/errors.ts";
import {
  completeStreamSection,
  readStreamSection,
  wsProxyStreamConfig,
} from "@/config/stream_section.ts";

function read(yaml: string) {
  const r = new ConfigReader(() => undefined);
  const input = readStreamSection(r, parse(yaml));
  return { input, issues: r.issues.map((i) => `${i.path}: ${i.message}`) };
}

Deno.test("readStreamSection() reads the documented example and fills defaults", () => {
  const { input, issues } = read(`
upstreams:
  - { name: backend, strategy: round_robin, servers: ["127.0.0.1:9001", { addr: "127.0.0.1:9002", backup: true }], health_check: { type: tcp, interval: 2s } }
  - { name: dns, servers: ["127.0.0.1:53"] }
servers:
  - { listen: "127.0.0.1:7000", protocol: tcp, upstream: backend, proxy_protocol: v2, connect_timeout: 5s, idle_timeout: 10m, max_connections: 10000 }
  - { listen: "127.0.0.1:7053", protocol: udp, upstream: dns, idle_timeout: 60s }
  - { listen: "127.0.0.1:7080", protocol: ws2tcp, target: "127.0.0.1:22" }
  - { listen: "127.0.0.1:7022", protocol: tcp2ws, target: "ws://127.0.0.1:7080/" }
  - { listen: "127.0.0.1:7023", protocol: tcp2wss, target: "wss://host/path" }
  - { listen: "127.0.0.1:7000", protocol: udp, target: "[::1]:53" }
`);
  assert.deepEqual(issues, []);
  const config = completeStreamSection(input!);
  assert.equal(config.upstreams.length, 2);
  assert.equal(config.upstreams[0]!.health_check!.interval_ms, 2000);
  assert.deepEqual(config.servers, [
    {
      listen: "127.0.0.1:7000",
      protocol: "tcp",
      idle_timeout_ms: 600_000,
      upstream: "backend",
      target: undefined,
      proxy_protocol: "v2",
      connect_timeout_ms: 5000,
      max_connections: 10000,
    },
    {
      listen: "127.0.0.1:7053",
      protocol: "udp",
      idle_timeout_ms: 60_000,
      upstream: "dns",
      target: undefined,
      max_sessions: 4096,
    },
    {
      listen: "127.0.0.1:7080",
      protocol: "ws2tcp",
      idle_timeout_ms: 600_000,
      upstream: undefined,
      target: "127.0.0.1:22",
      path: undefined,
      proxy_protocol: undefined,
      connect_timeout_ms: 5000,
      max_connections: 10000,
    },
    {
      listen: "127.0.0.1:7022",
      protocol: "tcp2ws",
      idle_timeout_ms: 600_000,
      target: "ws://127.0.0.1:7080/",
      ca_file: undefined,
      connect_timeout_ms: 5000,
      max_connections: 10000,
    },
    {
      listen: "127.0.0.1:7023",
      protocol: "tcp2wss",
      idle_timeout_ms: 600_000,
      target: "wss://host/path",
      ca_file: undefined,
      connect_timeout_ms: 5000,
      max_connections: 10000,
    },
    {
      listen: "127.0.0.1:7000",
      protocol: "udp",
      idle_timeout_ms: 60_000,
      upstream: undefined,
      target: "[::1]:53",
      max_sessions: 4096,
    },
  ]);
});

Deno.test("readStreamSection() accepts an empty section", () => {
  assert.deepEqual(completeStreamSection(read("null").input!), { upstreams: [], servers: [] });
});

const INVALID: [string, string, string[]][] = [
  [
    "an unknown upstream",
    `
upstreams: [{ name: web, servers: ["127.0.0.1:1"] }]
servers: [{ listen: "127.0.0.1:7000", upstream: backend }]`,
    [
      'stream.servers[0].upstream: no upstream group named "backend" in stream.upstreams (known: web)',
    ],
  ],
  [
    "unknown keys",
    `{ servers: [{ listen: "127.0.0.1:1", target: "127.0.0.1:2", colour: red }], extra: 1 }`,
    [
      "stream.extra: unknown key (known keys: upstreams, servers)",
      "stream.servers[0].colour: unknown key (known keys: listen, protocol, idle_timeout, upstream, target, proxy_protocol, connect_timeout, max_connections, max_sessions, path, ca_file)",
    ],
  ],
  [
    "keys of another protocol",
    `
servers:
  - { listen: "127.0.0.1:1", protocol: udp, target: "127.0.0.1:2", proxy_protocol: v1, max_connections: 5 }
  - { listen: "127.0.0.1:2", protocol: tcp2ws, target: "ws://h/", path: /x, upstream: a }`,
    [
      "stream.servers[0].proxy_protocol: is not valid with protocol: udp",
      "stream.servers[0].max_connections: is not valid with protocol: udp",
      "stream.servers[1].path: is not valid with protocol: tcp2ws",
      "stream.servers[1].upstream: is not valid with protocol: tcp2ws",
    ],
  ],
  [
    "bad listen, protocol and destination",
    `
servers:
  - { listen: "localhost", target: "127.0.0.1:2" }
  - { listen: "127.0.0.1:3", protocol: sctp, target: "127.0.0.1:2" }
  - { listen: "127.0.0.1:4" }
  - { listen: "127.0.0.1:5", upstream: a, target: "127.0.0.1:2" }
  - { protocol: tcp2wss, target: "ws://insecure/" }`,
    [
      'stream.servers[0].listen: expected an address like "127.0.0.1:8090" or "[::1]:8090", got "localhost"',
      'stream.servers[1].protocol: expected one of tcp, udp, ws2tcp, tcp2ws, tcp2wss, got "sctp"',
      "stream.servers[2]: expected one of upstream or target",
      "stream.servers[3].target: cannot be combined with upstream",
      'stream.servers[3].upstream: no upstream group named "a" in stream.upstreams (none are defined)',
      "stream.servers[4].listen: is required",
      'stream.servers[4].target: expected a URL like "wss://host:port/path" for protocol: tcp2wss, got "ws://insecure/"',
    ],
  ],
  [
    "a listen address used twice and a bad upstream group",
    `
upstreams: [{ name: a, servers: [{ addr: "127.0.0.1:1", weight: 0 }] }]
servers:
  - { listen: "127.0.0.1:7000", upstream: a }
  - { listen: "127.0.0.1:7000", protocol: ws2tcp, target: "127.0.0.1:2" }`,
    [
      "stream.upstreams[0].servers[0].weight: must be at least 1 (remove the server or mark it backup)",
      "stream.servers[1].listen: 127.0.0.1:7000 is already used by stream.servers[0]",
    ],
  ],
];

for (const [name, yaml, expected] of INVALID) {
  Deno.test(`readStreamSection() rejects ${name}`, () => {
    const { issues } = read(yaml);
    assert.deepEqual([...issues].sort(), [...expected].sort());
  });
}

Deno.test("wsProxyStreamConfig() matches the mode case-insensitively (defect B31)", () => {
  const up = wsProxyStreamConfig({
    from: "127.0.0.1:7022",
    to: "example.com:443",
    mode: "TCP2WSS",
  });
  assert.equal(up.servers[0]!.protocol, "tcp2wss");
  assert.equal(up.servers[0]!.target, "wss://example.com:443/");
  const ws = wsProxyStreamConfig({ from: "127.0.0.1:7022", to: "ws://h:80/x", mode: "Tcp2Ws" });
  assert.equal(ws.servers[0]!.protocol, "tcp2ws");
  assert.equal(ws.servers[0]!.target, "ws://h:80/x");
  const back = wsProxyStreamConfig({ from: "127.0.0.1:7080", to: "127.0.0.1:22", mode: "ws2tcp" });
  assert.deepEqual(back.servers[0], {
    listen: "127.0.0.1:7080",
    protocol: "ws2tcp",
    idle_timeout_ms: 600_000,
    upstream: undefined,
    target: "127.0.0.1:22",
    path: undefined,
    proxy_protocol: undefined,
    connect_timeout_ms: 5000,
    max_connections: 10000,
  });
});

Deno.test("wsProxyStreamConfig() names the bad flag", () => {
  assert.throws(
    () => wsProxyStreamConfig({ from: "127.0.0.1:1", to: "127.0.0.1:2", mode: "tcp" }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.issues[0]!.path === "mode" &&
      /expected one of ws2tcp, tcp2ws, tcp2wss, got "tcp"/.test(err.issues[0]!.message),
  );
  assert.throws(
    () => wsProxyStreamConfig({ from: "nowhere", to: "not an address", mode: "ws2tcp" }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.issues.map((i) => i.path).sort().join(",") === "from,to",
  );
});
