import assert from "node:assert/strict";
import { parseMapFlag, validateMappings } from "@/config/mod.ts";

Deno.test("parseMapFlag() reads the http, tcp and udp quick forms", () => {
  assert.deepEqual(parseMapFlag("web=http:127.0.0.1:8080@example.com,www.example.com"), {
    name: "web",
    type: "http",
    local_addr: "127.0.0.1:8080",
    domains: ["example.com", "www.example.com"],
  });
  assert.deepEqual(parseMapFlag("ssh=tcp:127.0.0.1:22@:2222"), {
    name: "ssh",
    type: "tcp",
    local_addr: "127.0.0.1:22",
    remote_port: 2222,
  });
  assert.deepEqual(parseMapFlag("dns=udp:[::1]:53"), {
    name: "dns",
    type: "udp",
    local_addr: "[::1]:53",
  });
});

Deno.test("parseMapFlag() explains the expected form", () => {
  assert.throws(() => parseMapFlag("web"), /expected NAME=TYPE:LOCAL_ADDR@DOMAINS/);
  assert.throws(() => parseMapFlag("web=http:127.0.0.1:80"), /needs @DOMAIN/);
  assert.throws(() => parseMapFlag("ssh=tcp:127.0.0.1:22@2222"), /takes @:PORT/);
});

Deno.test("validateMappings() checks flag mappings like config ones", () => {
  const { issues } = validateMappings([
    parseMapFlag("web=http:localhost@bad_domain!"),
    parseMapFlag("api=http:127.0.0.1:80@ok.test"),
    parseMapFlag("api=tcp:127.0.0.1:22@:2"),
    parseMapFlag("web=tcp:127.0.0.1:22@:70000"),
  ]);
  const text = issues.map((i) => `${i.path}: ${i.message}`).join("\n");
  assert.match(text, /--map\[0\]\.local_addr: expected an address/);
  assert.match(text, /--map\[0\]\.domains\[0\]: expected a host name/);
  assert.match(text, /--map\[2\]\.name: duplicate mapping name "api"/);
  assert.match(text, /--map\[3\]\.remote_port: expected a whole number from 0 to 65535/);
});
