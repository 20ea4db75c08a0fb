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
