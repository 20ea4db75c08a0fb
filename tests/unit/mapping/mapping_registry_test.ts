import assert from "node:assert/strict";
import { type MappingOwner, MappingRegistry } from "@/mapping/mapping_registry.ts";

const owner = (sessionId: string, token: string, mapping: string): MappingOwner => ({
  sessionId,
  token,
  mapping,
});

Deno.test("MappingRegistry.resolveHost() prefers an exact name, then the longest wildcard", () => {
  const r = new MappingRegistry<MappingOwner>();
  assert.ok(r.claimDomains("http", ["*.example.com"], owner("s1", "t1", "wild")).ok);
  assert.ok(r.claimDomains("http", ["*.api.example.com"], owner("s2", "t2", "api")).ok);
  assert.ok(r.claimDomains("http", ["www.example.com"], owner("s3", "t3", "www")).ok);
  const route = (h: string) => {
    const x = r.resolveHost("http", h);
    return x.kind === "route" ? x.owner.mapping : x.kind;
  };
  assert.equal(route("www.example.com"), "www");
  assert.equal(route("a.example.com"), "wild");
  assert.equal(route("v1.api.example.com"), "api");
  assert.equal(route("example.com"), "unknown");
  assert.equal(r.resolveHost("https", "www.example.com").kind, "unknown", "schemes are separate");
});

Deno.test("MappingRegistry.claimDomains() refuses another client's name and lets the same token take it back", () => {
  const r = new MappingRegistry<MappingOwner>();
  assert.ok(r.claimDomains("http", ["a.test"], owner("s1", "alice", "web")).ok);
  const clash = r.claimDomains("http", ["b.test", "a.test"], owner("s2", "bob", "web"));
  assert.equal(clash.ok, false);
  assert.equal(r.resolveHost("http", "b.test").kind, "unknown", "all or nothing");
  const back = r.claimDomains("http", ["a.test"], owner("s9", "alice", "web"));
  assert.ok(
    back.ok && back.replaced?.sessionId === "s1",
    "a reconnected client takes its name back",
  );
  const otherMapping = r.claimDomains("http", ["a.test"], owner("s9", "alice", "other"));
  assert.equal(otherMapping.ok, false);
});

Deno.test("MappingRegistry.release() frees names and remembers them as offline until claimed again", () => {
  const r = new MappingRegistry<MappingOwner>();
  r.claimDomains("http", ["a.test", "*.w.test"], owner("s1", "t", "web"));
  r.claimPort("tcp", 2222, owner("s1", "t", "ssh"));
  const dropped = r.release("s1");
  assert.deepEqual(dropped.map(([k]) => k).sort(), ["http:*.w.test", "http:a.test", "tcp:2222"]);
  assert.deepEqual(r.resolveHost("http", "a.test"), { kind: "offline", mapping: "web" });
  assert.deepEqual(r.resolveHost("http", "x.w.test"), { kind: "offline", mapping: "web" });
  assert.equal(r.portOwner("tcp", 2222), undefined);
  r.claimDomains("http", ["a.test"], owner("s2", "u", "new"));
  const now = r.resolveHost("http", "a.test");
  assert.ok(now.kind === "route" && now.owner.mapping === "new");
});

Deno.test("MappingRegistry.release() with names drops only those mappings", () => {
  const r = new MappingRegistry<MappingOwner>();
  r.claimDomains("http", ["a.test"], owner("s1", "t", "a"));
  r.claimDomains("http", ["b.test"], owner("s1", "t", "b"));
  r.release("s1", new Set(["a"]));
  assert.equal(r.resolveHost("http", "a.test").kind, "offline");
  assert.equal(r.resolveHost("http", "b.test").kind, "route");
});

Deno.test("MappingRegistry.claimPort() refuses a port another token holds", () => {
  const r = new MappingRegistry<MappingOwner>();
  assert.ok(r.claimPort("tcp", 8000, owner("s1", "a", "x")).ok);
  assert.equal(r.claimPort("tcp", 8000, owner("s2", "b", "y")).ok, false);
  assert.ok(r.claimPort("udp", 8000, owner("s2", "b", "y")).ok, "tcp and udp ports are separate");
});

Deno.test("MappingRegistry.claimDomains() says why a claim is refused", () => {
  const r = new MappingRegistry<MappingOwner>();
  assert.ok(r.claimDomains("http", ["a.test"], owner("s1", "alice", "web")).ok);
  assert.deepEqual(r.claimDomains("http", ["a.test"], owner("s2", "bob", "web")), {
    ok: false,
    message: `domain "a.test" is already held by mapping "web" of another client`,
  });
  assert.deepEqual(r.claimDomains("http", ["a.test"], owner("s1", "alice", "api")), {
    ok: false,
    message: `domain "a.test" is already held by this client's mapping "web"`,
  });
  // The same token with another mapping name, from another session, is no takeover.
  assert.equal(r.claimDomains("http", ["a.test"], owner("s2", "alice", "api")).ok, false);
  // Another token with the same mapping name neither.
  assert.equal(r.claimDomains("http", ["a.test"], owner("s2", "mallory", "web")).ok, false);
  const still = r.resolveHost("http", "a.test");
  assert.ok(still.kind === "route" && still.owner.sessionId === "s1");
  // The same scheme only: https is another table.
  assert.ok(r.claimDomains("https", ["a.test"], owner("s2", "bob", "web")).ok);
});

Deno.test("MappingRegistry.claimDomains() by the same session and mapping replaces nothing", () => {
  const r = new MappingRegistry<MappingOwner>();
  const o = owner("s1", "alice", "web");
  assert.deepEqual(r.claimDomains("http", ["a.test", "b.test"], o), {
    ok: true,
    replaced: undefined,
  });
  const again = owner("s1", "alice", "web");
  assert.deepEqual(r.claimDomains("http", ["a.test"], again), { ok: true, replaced: undefined });
  const now = r.resolveHost("http", "a.test");
  assert.ok(now.kind === "route" && now.owner === again, "the newer owner object is stored");
  // A takeover from another session reports the owner it replaced.
  const back = r.claimDomains("http", ["b.test"], owner("s2", "alice", "web"));
  assert.ok(back.ok);
  assert.equal(back.replaced, o);
});

Deno.test("MappingRegistry.resolveHost() walks wildcards from the longest suffix, live before offline", () => {
  const r = new MappingRegistry<MappingOwner>();
  r.claimDomains("http", ["*.b.c.test"], owner("s1", "t1", "deep"));
  r.claimDomains("http", ["*.c.test"], owner("s2", "t2", "mid"));
  r.claimDomains("http", ["*.test"], owner("s3", "t3", "top"));
  const route = (h: string) => {
    const x = r.resolveHost("http", h);
    return x.kind === "route"
      ? x.owner.mapping
      : x.kind === "offline"
      ? `offline:${x.mapping}`
      : x.kind;
  };
  assert.equal(route("a.b.c.test"), "deep");
  assert.equal(route("b.c.test"), "mid", "a wildcard needs at least one more label");
  assert.equal(route("x.c.test"), "mid");
  assert.equal(route("c.test"), "top");
  assert.equal(route("test"), "unknown");
  assert.equal(route("localhost"), "unknown");
  r.release("s1");
  assert.equal(route("a.b.c.test"), "mid", "a live shorter wildcard beats an offline longer one");
  r.release("s2");
  r.release("s3");
  assert.equal(route("a.b.c.test"), "offline:deep");
  assert.equal(route("x.c.test"), "offline:mid");
  assert.equal(route("c.test"), "offline:top");
  assert.equal(route("test"), "unknown");
  r.claimDomains("http", ["a.b.c.test"], owner("s4", "t4", "exact"));
  r.release("s4");
  assert.equal(
    route("a.b.c.test"),
    "offline:exact",
    "an offline exact name beats offline wildcards",
  );
  assert.equal(r.resolveHost("https", "a.b.c.test").kind, "unknown");
});

Deno.test("MappingRegistry remembers at most 10 000 offline names, dropping the oldest", () => {
  const r = new MappingRegistry<MappingOwner>();
  const names = Array.from({ length: 10_000 }, (_, i) => `n${i}.test`);
  r.claimDomains("http", names, owner("s1", "t", "many"));
  r.release("s1");
  assert.equal(r.resolveHost("http", "n0.test").kind, "offline");
  // Claiming a name again removes its tombstone, so one more release evicts nothing.
  r.claimDomains("http", ["n5.test"], owner("s2", "t2", "five"));
  r.claimDomains("http", ["extra.test"], owner("s3", "t3", "extra"));
  r.release("s3");
  assert.equal(r.resolveHost("http", "n0.test").kind, "offline");
  assert.equal(r.resolveHost("http", "extra.test").kind, "offline");
  // Now full: the next released name pushes out the oldest one.
  r.claimDomains("http", ["more.test"], owner("s4", "t4", "more"));
  r.release("s4");
  assert.equal(r.resolveHost("http", "n0.test").kind, "unknown");
  assert.equal(r.resolveHost("http", "n1.test").kind, "offline");
  assert.equal(r.resolveHost("http", "more.test").kind, "offline");
  // Releasing a name again refreshes its place: n1 is now the newest, n2 goes next.
  r.claimDomains("http", ["n1.test"], owner("s5", "t5", "one"));
  r.release("s5");
  r.claimDomains("http", ["last.test"], owner("s6", "t6", "last"));
  r.release("s6");
  assert.equal(r.resolveHost("http", "n1.test").kind, "offline");
  assert.equal(r.resolveHost("http", "n2.test").kind, "unknown");
});

Deno.test("MappingRegistry.claimPort() lets the same token and mapping take a port back", () => {
  const r = new MappingRegistry<MappingOwner>();
  const first = owner("s1", "a", "x");
  assert.deepEqual(r.claimPort("tcp", 8000, first), { ok: true, replaced: undefined });
  assert.equal(r.portOwner("tcp", 8000), first);
  assert.equal(r.hasPort("tcp", 8000), true);
  assert.equal(r.hasPort("udp", 8000), false);
  assert.equal(r.portOwner("udp", 8000), undefined);
  assert.deepEqual(r.claimPort("tcp", 8000, owner("s2", "b", "x")), {
    ok: false,
    message: `tcp port 8000 is already held by mapping "x"`,
  });
  assert.equal(r.claimPort("tcp", 8000, owner("s2", "a", "other")).ok, false);
  // Same session again: nothing replaced.
  assert.deepEqual(r.claimPort("tcp", 8000, owner("s1", "a", "x")), {
    ok: true,
    replaced: undefined,
  });
  const back = owner("s2", "a", "x");
  assert.deepEqual(r.claimPort("tcp", 8000, back), { ok: true, replaced: owner("s1", "a", "x") });
  assert.equal(r.portOwner("tcp", 8000), back);
});

Deno.test("MappingRegistry.release() drops only the session's claims, filtered by mapping name", () => {
  const r = new MappingRegistry<MappingOwner>();
  r.claimDomains("http", ["a.test"], owner("s1", "t", "a"));
  r.claimPort("tcp", 1, owner("s1", "t", "a"));
  r.claimPort("udp", 2, owner("s1", "t", "b"));
  r.claimPort("tcp", 3, owner("s2", "u", "a"));
  r.claimDomains("https", ["c.test"], owner("s2", "u", "a"));
  const dropped = r.release("s1", new Set(["b"]));
  assert.deepEqual(dropped.map(([k]) => k), ["udp:2"]);
  assert.equal(r.hasPort("udp", 2), false);
  assert.equal(r.hasPort("tcp", 1), true);
  assert.deepEqual(
    r.entries().map((e) => `${e.key}=${e.owner.sessionId}`).sort(),
    ["http:a.test=s1", "https:c.test=s2", "tcp:1=s1", "tcp:3=s2"],
  );
  assert.deepEqual(r.release("s1").map(([k]) => k).sort(), ["http:a.test", "tcp:1"]);
  assert.equal(r.hasPort("tcp", 3), true);
  assert.equal(r.resolveHost("https", "c.test").kind, "route");
  assert.deepEqual(r.release("nobody"), []);
});

Deno.test("MappingRegistry.resolveHost() treats only `*.` names as wildcards", () => {
  const r = new MappingRegistry<MappingOwner>();
  r.claimDomains("http", ["*x.test", "*.y.test"], owner("s1", "t", "odd"));
  assert.equal(r.resolveHost("http", "x.test").kind, "unknown");
  assert.equal(r.resolveHost("http", "ax.test").kind, "unknown");
  assert.equal(r.resolveHost("http", "y.test").kind, "unknown");
  assert.equal(r.resolveHost("http", "a.y.test").kind, "route");
  r.release("s1");
  assert.equal(r.resolveHost("http", "x.test").kind, "unknown");
  assert.equal(r.resolveHost("http", "a.y.test").kind, "offline");
});
