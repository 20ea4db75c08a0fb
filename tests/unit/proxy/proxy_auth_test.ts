import assert from "node:assert/strict";
import {
  authorizeHttp,
  checkCredentials,
  parseBasicCredentials,
  timingSafeEqual,
} from "@/proxy/proxy_auth.ts";
import { user } from "./_helpers.ts";

const users = [user("alice", "secret"), user("bob", "pa:ss")];

Deno.test("parseBasicCredentials() decodes user and password (password may hold colons)", () => {
  assert.deepEqual(parseBasicCredentials("Basic " + btoa("alice:secret")), {
    username: "alice",
    password: "secret",
  });
  assert.deepEqual(parseBasicCredentials("basic " + btoa("bob:pa:ss")), {
    username: "bob",
    password: "pa:ss",
  });
});

Deno.test("parseBasicCredentials() rejects bad base64, a missing colon and other schemes", () => {
  assert.throws(() => parseBasicCredentials("Basic !!!notbase64"), SyntaxError);
  assert.throws(() => parseBasicCredentials("Basic a"), /invalid base64/);
  assert.throws(() => parseBasicCredentials("Basic " + btoa("nocolon")), /no colon/);
  assert.throws(() => parseBasicCredentials("Bearer " + btoa("a:b")), /scheme "Bearer"/);
  assert.throws(() => parseBasicCredentials(""), SyntaxError);
  assert.throws(() => parseBasicCredentials("Basic " + btoa("\xff\xfe:x")), /UTF-8/);
  assert.throws(() => parseBasicCredentials("Basic " + "QUFB".repeat(2000)), /exceed/);
});

Deno.test("timingSafeEqual() compares contents and lengths", () => {
  const e = (s: string) => new TextEncoder().encode(s);
  assert.equal(timingSafeEqual(e("abc"), e("abc")), true);
  assert.equal(timingSafeEqual(e("abc"), e("abd")), false);
  assert.equal(timingSafeEqual(e("abc"), e("abcd")), false);
  assert.equal(timingSafeEqual(e(""), e("")), true);
});

Deno.test("checkCredentials() accepts only a matching pair", () => {
  assert.equal(checkCredentials(users, "alice", "secret"), true);
  assert.equal(checkCredentials(users, "bob", "pa:ss"), true);
  assert.equal(checkCredentials(users, "alice", "pa:ss"), false);
  assert.equal(checkCredentials(users, "carol", "secret"), false);
  assert.equal(checkCredentials(users, "alice", ""), false);
  assert.equal(checkCredentials([], "alice", "secret"), false);
});

Deno.test("authorizeHttp() tells missing, malformed and wrong apart", () => {
  assert.deepEqual(authorizeHttp([], []), { ok: true, username: undefined });
  assert.equal(authorizeHttp(users, []).ok, false);
  assert.deepEqual(authorizeHttp(users, []), { ok: false, reason: "missing", username: undefined });
  assert.deepEqual(authorizeHttp(users, ["Basic %%%"]), {
    ok: false,
    reason: "malformed",
    username: undefined,
  });
  assert.deepEqual(authorizeHttp(users, ["Basic " + btoa("alice:nope")]), {
    ok: false,
    reason: "wrong",
    username: "alice",
  });
  assert.deepEqual(authorizeHttp(users, ["Basic " + btoa("alice:secret")]), {
    ok: true,
    username: "alice",
  });
  const two = ["Basic " + btoa("alice:secret"), "Basic " + btoa("alice:secret")];
  assert.equal(authorizeHttp(users, two).ok, false);
});
