import assert from "node:assert/strict";
import {
  ConfigError,
  loadConfig,
  parseConfig,
  parseDuration,
  parseSize,
  Secret,
} from "@/config/mod.ts";

const DATA = new URL("../../testdata/config/", import.meta.url);

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(dir, DATA))) if (e.isFile) out.push(e.name);
  return out.sort();
}

for (const name of await files("valid/")) {
  Deno.test(`loadConfig() accepts testdata valid/${name}`, async () => {
    const config = await loadConfig(new URL(`valid/${name}`, DATA).pathname);
    assert(Object.isFrozen(config));
    assert(
      config.proxy !== undefined || config.server !== undefined || config.client !== undefined,
    );
  });
}

for (const name of await files("invalid/")) {
  Deno.test(`loadConfig() rejects testdata invalid/${name} with its expected message`, async () => {
    const path = new URL(`invalid/${name}`, DATA).pathname;
    const first = (await Deno.readTextFile(path)).split("\n")[0]!;
    const expected = /^# error: (.*)$/.exec(first)?.[1];
    assert(expected, `${name} must start with "# error: <expected substring>"`);
    const err = await loadConfig(path).then(() => undefined, (e) => e);
    assert(err instanceof ConfigError, `${name} was accepted`);
    assert(
      err.message.includes(expected),
      `message of ${name} lacks ${JSON.stringify(expected)}:\n${err.message}`,
    );
  });
}

Deno.test("loadConfig() accepts config.example.yaml and its documented defaults are the real ones", async () => {
  const example = await loadConfig(
    new URL("../../../config.example.yaml", import.meta.url).pathname,
  );
  const defaults = parseConfig(
    "proxy:\nserver:\n  tokens: [{ name: laptop, token: change-me-to-a-long-random-string }]\n" +
      "client: { server: 127.0.0.1:8091, token: change-me-to-a-long-random-string }\n",
  );
  assert.deepEqual(JSON.stringify(example.proxy), JSON.stringify(defaults.proxy));
  assert.deepEqual(JSON.stringify(example.log), JSON.stringify(defaults.log));
  assert.deepEqual(JSON.stringify(example.admin), JSON.stringify(parseConfig("admin:\n").admin));
  // Values the example sets on purpose; everything else must equal the default.
  const { state_dir: _s, ...server } = example.server!;
  const { state_dir: _d, ...serverDefaults } = defaults.server!;
  assert.deepEqual(JSON.stringify(server), JSON.stringify(serverDefaults));
  const { name, bind, tls, mappings, ...client } = example.client!;
  const { name: _n, bind: _b, tls: defaultTls, mappings: _m, ...clientDefaults } = defaults.client!;
  assert.deepEqual(
    JSON.stringify(mappings),
    JSON.stringify(
      parseConfig(
        "client: { server: 127.0.0.1:1, token: abcdefgh, mappings: " +
          '[{ name: web, type: http, local_addr: "127.0.0.1:8080", domains: [example.com, "*.example.com"] }] }',
      ).client!.mappings,
    ),
    "the example mapping shows the defaults of every optional key",
  );
  assert.deepEqual([name, bind, tls.ca], ["laptop", "127.0.0.1:8092", "./wmproxy-state/ca.pem"]);
  assert.deepEqual({ ...tls, ca: undefined }, { ...defaultTls, ca: undefined });
  assert.deepEqual(JSON.stringify(client), JSON.stringify(clientDefaults));
});

Deno.test("loadConfig() names a missing file", async () => {
  const err = await loadConfig("/nonexistent/wmproxy.yaml").catch((e) => e);
  assert(err instanceof ConfigError);
  assert.match(err.message, /Cannot read file: no such file/);
});

Deno.test("parseConfig() reports every problem at once with paths and lines", () => {
  const err = assertThrowsConfig("proxy:\n  via: 1\n  udp: { idle: 3 }\nlog: { format: xml }\n");
  assert.deepEqual(err.issues.map((i) => `${i.path}@${i.line}`), [
    "proxy.via@2",
    "proxy.udp.idle@3",
    "log.format@4",
  ]);
});

Deno.test("parseConfig() never puts a password into messages, JSON or inspect output", () => {
  const config = parseConfig("proxy:\n  users: [{ username: u, password: hunter2 }]\n");
  const user = config.proxy!.users[0]!;
  assert(user.password instanceof Secret);
  assert.deepEqual(user.password.reveal(), "hunter2");
  assert(!JSON.stringify(config).includes("hunter2"));
  assert(!Deno.inspect(config, { depth: 10 }).includes("hunter2"));
  assert(!String(user.password).includes("hunter2"));
});

Deno.test("parseConfig() applies an override after validation and before defaults", () => {
  const config = parseConfig("", { override: (i) => ({ ...i, proxy: { bind: "127.0.0.1:0" } }) });
  assert.deepEqual(config.proxy!.bind, "127.0.0.1:0");
  assert.deepEqual(config.proxy!.limits.max_header_bytes, 64 * 1024);
});

Deno.test("parseConfig() with an empty document runs nothing", () => {
  assert.deepEqual(parseConfig("").proxy, undefined);
});

Deno.test("parseDuration() and parseSize() accept units and reject junk", () => {
  assert.deepEqual(parseDuration("500ms"), 500);
  assert.deepEqual(parseDuration("1.5s"), 1500);
  assert.deepEqual(parseDuration("2m"), 120_000);
  assert.deepEqual(parseDuration(3), 3000);
  assert.throws(() => parseDuration("-1s"), SyntaxError);
  assert.throws(() => parseDuration("10"), SyntaxError);
  assert.deepEqual(parseSize("64KiB"), 65536);
  assert.deepEqual(parseSize("1M"), 1048576);
  assert.deepEqual(parseSize(12), 12);
  assert.throws(() => parseSize("1.5MiB"), SyntaxError);
});

function assertThrowsConfig(text: string): ConfigError {
  try {
    parseConfig(text);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("parseConfig() proxy.udp.replies: sent by default, any on request, nothing else", () => {
  assert.equal(parseConfig("proxy: {}\n").proxy!.udp.replies, "sent");
  assert.equal(parseConfig("proxy:\n  udp: { replies: any }\n").proxy!.udp.replies, "any");
  const err = assertThrowsConfig("proxy:\n  udp: { replies: all }\n");
  assert.deepEqual(err.issues.map((i) => i.path), ["proxy.udp.replies"]);
});
