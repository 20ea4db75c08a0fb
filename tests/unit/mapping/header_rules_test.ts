/** Header rules: every action, variables, protected names. Pure. */
import assert from "node:assert/strict";
import { applyHeaderRules, expandVariables, type HeaderVariables } from "@/mapping/mod.ts";
import type { HttpHeader } from "@/proxy/http_head.ts";

const VARS: HeaderVariables = {
  remote_addr: "192.0.2.7",
  host: "app.example.com",
  scheme: "https",
};

Deno.test("expandVariables() replaces $remote_addr, $host and $scheme", () => {
  assert.equal(
    expandVariables("$scheme://$host/ from $remote_addr", VARS),
    "https://app.example.com/ from 192.0.2.7",
  );
  assert.equal(expandVariables("$host$host", VARS), "app.example.comapp.example.com");
});

Deno.test("expandVariables() keeps unknown names and longer words, $$ is a dollar", () => {
  assert.equal(expandVariables("$hostname $foo $", VARS), "$hostname $foo $");
  assert.equal(expandVariables("$$host costs $$5", VARS), "$host costs $5");
  assert.equal(expandVariables("no variables", VARS), "no variables");
});

Deno.test("expandVariables() never yields a line break", () => {
  const evil: HeaderVariables = { ...VARS, host: "a\r\nX-Injected: 1" };
  const out = expandVariables("$host", evil);
  assert.ok(!/[\r\n]/.test(out), out);
});

const BASE: HttpHeader[] = [
  ["Accept", "*/*"],
  ["X-Tag", "one"],
  ["User-Agent", "t"],
  ["x-tag", "two"],
];

Deno.test("applyHeaderRules() set replaces every field of that name at the first place", () => {
  const out = applyHeaderRules(BASE, [{ action: "set", name: "X-Tag", value: "$scheme" }], VARS);
  assert.deepEqual(out, [["Accept", "*/*"], ["X-Tag", "https"], ["User-Agent", "t"]]);
  const added = applyHeaderRules(BASE, [{ action: "set", name: "X-New", value: "v" }], VARS);
  assert.deepEqual(added.at(-1), ["X-New", "v"]);
  assert.equal(added.length, BASE.length + 1);
});

Deno.test("applyHeaderRules() add appends even when present", () => {
  const out = applyHeaderRules(BASE, [{ action: "add", name: "X-Tag", value: "$host" }], VARS);
  assert.deepEqual(out, [...BASE, ["X-Tag", "app.example.com"]]);
});

Deno.test("applyHeaderRules() remove drops every field of that name, any case", () => {
  const out = applyHeaderRules(BASE, [{ action: "remove", name: "X-TAG" }], VARS);
  assert.deepEqual(out, [["Accept", "*/*"], ["User-Agent", "t"]]);
});

Deno.test("applyHeaderRules() set_if_absent only adds a missing field", () => {
  const kept = applyHeaderRules(
    BASE,
    [{ action: "set_if_absent", name: "x-TAG", value: "three" }],
    VARS,
  );
  assert.deepEqual(kept, BASE);
  const added = applyHeaderRules(
    BASE,
    [{ action: "set_if_absent", name: "X-Real-IP", value: "$remote_addr" }],
    VARS,
  );
  assert.deepEqual(added.at(-1), ["X-Real-IP", "192.0.2.7"]);
});

Deno.test("applyHeaderRules() applies rules in order and does not change its input", () => {
  const input = BASE.map((h) => [...h] as HttpHeader);
  const out = applyHeaderRules(input, [
    { action: "remove", name: "x-tag" },
    { action: "set_if_absent", name: "X-Tag", value: "fresh" },
    { action: "add", name: "X-Tag", value: "more" },
    { action: "set", name: "Accept", value: "text/html" },
  ], VARS);
  assert.deepEqual(out, [
    ["Accept", "text/html"],
    ["User-Agent", "t"],
    ["X-Tag", "fresh"],
    ["X-Tag", "more"],
  ]);
  assert.deepEqual(input, BASE);
});

Deno.test("applyHeaderRules() never touches framing and hop-by-hop headers", () => {
  const headers: HttpHeader[] = [["Content-Length", "5"], ["Connection", "keep-alive"]];
  const out = applyHeaderRules(headers, [
    { action: "set", name: "content-length", value: "0" },
    { action: "remove", name: "Connection" },
    { action: "add", name: "Transfer-Encoding", value: "chunked" },
    { action: "set", name: "Upgrade", value: "websocket" },
  ], VARS);
  assert.deepEqual(out, headers);
});

Deno.test("applyHeaderRules() treats a missing value as empty", () => {
  const out = applyHeaderRules([], [{ action: "add", name: "X-Empty" }], VARS);
  assert.deepEqual(out, [["X-Empty", ""]]);
});
