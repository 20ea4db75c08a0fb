/**
 * Help texts. Each one teaches by example; the flag lines are generated from
 * the flag table in args.ts, so every flag the parser accepts is listed where
 * it applies (tests/unit/cli/help_test.ts checks it).
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { type Command, FLAGS, type HelpScope } from "./args.ts";

const FLAG_COLUMN = 23;

/** The help lines of every flag that applies in `scope`, in table order. */
export function flagLines(scope: HelpScope): string {
  const lines: string[] = [];
  const indent = " ".repeat(FLAG_COLUMN);
  for (const f of FLAGS) {
    const help = f.help[scope];
    if (help === undefined) continue;
    const value = typeof help === "string" ? f.value : help.value;
    const text = (typeof help === "string" ? help : help.text).split("\n");
    const flag = `  ${f.short === undefined ? "" : `-${f.short}, `}--${f.name}${
      value === undefined ? "" : ` ${value}`
    }`;
    if (flag.length < FLAG_COLUMN - 1) lines.push(flag.padEnd(FLAG_COLUMN) + text[0]);
    else lines.push(flag, indent + text[0]);
    for (const more of text.slice(1)) lines.push(indent + more);
  }
  return lines.join("\n");
}

export const MAIN_USAGE =
  `wmproxy ${VERSION} — forward proxy, encrypted reverse tunnel and reverse proxy in one program

Usage:
  wmproxy [--mode MODE] [-c FILE] [flags]    run (no arguments: forward proxy on 127.0.0.1:8090)
  wmproxy check -c FILE                      validate a config file and exit 0 (ok) or 1 (problems)
  wmproxy gen-cert [--out DIR]               create a tunnel CA and server certificate
  wmproxy install-service [--mode M] [-c FILE] [--user U]   write a hardened systemd unit
  wmproxy status|reload|stop [--admin URL]   talk to a running instance's control API
  wmproxy ws-proxy --from ADDR --to TARGET --mode ws2tcp|tcp2ws|tcp2wss   a TCP<->WebSocket bridge
  wmproxy file-server --root DIR [--listen ADDR] [--browse]   serve a directory
  wmproxy reverse-proxy --from ADDR --to URL                 proxy one origin
  wmproxy version                            print the version
  wmproxy help                               this text
  wmproxy SUBCOMMAND --help                  a subcommand's own flags

Modes:
  proxy     HTTP, HTTPS (CONNECT) and SOCKS5 forward proxy on one port (default)
  server    tunnel server: accepts tunnel clients (TLS, token auth), proxies their traffic and
            owns the public listeners of their mappings
  client    tunnel client: a local proxy port whose connections go through the tunnel, and
            the mappings (--map) that expose LAN services on the server
  reverse   reverse proxy and web server: the http section of the config file
  With -c FILE and no --mode, every section present in the file runs.

Forward proxy flags (--mode proxy):
${flagLines("proxy")}

Tunnel server flags (--mode server):
${flagLines("server")}

Tunnel client flags (--mode client):
${flagLines("client")}

Reverse proxy flags (--mode reverse):
${flagLines("reverse")}

Common flags:
${flagLines("common")}

Examples:
  wmproxy                                      # proxy on 127.0.0.1:8090, no auth
  curl -x http://127.0.0.1:8090 http://example.com/
  curl --socks5-hostname 127.0.0.1:8090 https://example.com/
  wmproxy --bind 0.0.0.0:8090 --user alice --pass s3cret
  wmproxy --mode server --listen 0.0.0.0:8091 --token "$TOKEN"          # on the public host
  wmproxy --mode client --server host:8091 --token "$TOKEN" --ca ca.pem  # in the LAN
  curl -x http://127.0.0.1:8090 http://example.com/                     # egress via the server
  wmproxy --mode server --token "$TOKEN" --http 0.0.0.0:80              # public HTTP for mappings
  wmproxy --mode client --server host:8091 --token "$TOKEN" --ca ca.pem \\
    --map web=http:127.0.0.1:8080@example.com --map ssh=tcp:127.0.0.1:22@:2222
  wmproxy -c /etc/wmproxy/config.yaml --log-format json
  wmproxy check -c config.yaml

Exit codes: 0 ok, 1 runtime or config error (the message names the key), 2 usage error.
Config reference: config.example.yaml documents every key with its default.`;

export const CHECK_USAGE = `Usage: wmproxy check -c FILE [--mode MODE] [flags]

Runs the config pipeline (parse, validate, defaults) without starting anything.
Prints "ok" and exits 0, or lists every problem with its key path and line and exits 1.
The flags of a run (wmproxy --help) apply on top of the file, as they would at a run.

${flagLines("check")}`;

export const GEN_CERT_USAGE = `Usage: wmproxy gen-cert [--out DIR] [--names LIST] [--force]

Creates a private CA and a server certificate signed by it (ECDSA P-256) for
the tunnel server, and prints the CA file and fingerprint clients must trust.
A server with no server.tls.cert does the same by itself at its first start.

${flagLines("gen-cert")}`;

export const INSTALL_SERVICE_USAGE =
  `Usage: wmproxy install-service [--mode MODE] [-c FILE] [--user USER] [--output FILE] [flags]

Writes a systemd unit that runs wmproxy with the same --mode and -c, restarts it
on failure, reloads it with SIGHUP (systemctl reload), and sandboxes it
(NoNewPrivileges, ProtectSystem=strict, private /tmp, no capabilities except
CAP_NET_BIND_SERVICE when a configured port is below 1024). Then prints the
systemctl commands to start it. The other flags of a run (wmproxy --help) are
written into the unit's command line.

${flagLines("install-service")}`;

export const CONTROL_USAGE =
  `Usage: wmproxy status|reload|stop [--admin URL] [--admin-token TOKEN] [-c FILE]

Talks to a running wmproxy's control API (its admin section, or --admin ADDR):
  status   print the status as JSON (listeners, tunnel sessions, mappings, upstreams)
  reload   re-read the config file and apply it, keeping unchanged sections and their connections
  stop     stop gracefully (like SIGTERM)

${flagLines("control")}`;

export const WS_PROXY_USAGE =
  `Usage: wmproxy ws-proxy --from ADDR --to TARGET --mode ws2tcp|tcp2ws|tcp2wss

  ws2tcp    accept WebSocket connections on ADDR, relay binary messages to TCP host:port TARGET
  tcp2ws    accept TCP on ADDR, relay it over a WebSocket to ws://TARGET
  tcp2wss   the same over TLS, to wss://TARGET
Example: wmproxy ws-proxy --from 127.0.0.1:2222 --to wss://gw.example.com/ssh --mode tcp2wss

${flagLines("ws-proxy")}`;

export const FILE_SERVER_USAGE = `Usage: wmproxy file-server --root DIR [--listen ADDR] [--browse]

Serves a directory (index.html, ETag/Last-Modified, Range, gzip; never outside
the root). Directory listings are off unless --browse.
Example: wmproxy file-server --root ./public --listen 127.0.0.1:8080 --browse

${flagLines("file-server")}`;

export const REVERSE_PROXY_USAGE = `Usage: wmproxy reverse-proxy --from ADDR --to URL

Proxies every request on ADDR to one origin, with X-Forwarded-For/-Proto/-Host.
For routes, several upstreams, TLS and files, use the http section of a config
file (wmproxy --mode reverse -c FILE).
Example: wmproxy reverse-proxy --from 127.0.0.1:8080 --to http://127.0.0.1:3000

${flagLines("reverse-proxy")}`;

/** The help text `wmproxy COMMAND --help` prints. */
export function usageFor(command: Command): string {
  switch (command) {
    case "check":
      return CHECK_USAGE;
    case "gen-cert":
      return GEN_CERT_USAGE;
    case "install-service":
      return INSTALL_SERVICE_USAGE;
    case "status":
    case "reload":
    case "stop":
      return CONTROL_USAGE;
    case "ws-proxy":
      return WS_PROXY_USAGE;
    case "file-server":
      return FILE_SERVER_USAGE;
    case "reverse-proxy":
      return REVERSE_PROXY_USAGE;
    case "run":
    case "help":
    case "version":
      return MAIN_USAGE;
  }
}
