/**
 * Help texts. Each one teaches by example; keep them true to the flags in args.ts.
 *
 * @module
 */
import { VERSION } from "../version.ts";

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

Modes:
  proxy     HTTP, HTTPS (CONNECT) and SOCKS5 forward proxy on one port (default)
  server    tunnel server: accepts tunnel clients (TLS, token auth) and proxies their traffic
  client    tunnel client: a local proxy port whose connections go through the tunnel
  reverse   reverse proxy and web server: the http section of the config file
  With -c FILE and no --mode, every section present in the file runs.

Forward proxy flags (--mode proxy):
  --bind ADDR          listen address                  [default: 127.0.0.1:8090]
  --user NAME          require this user (HTTP Basic and SOCKS5 user/password)
  --pass PASSWORD      the user's password (with --user)
  --protocols LIST     comma-separated: http,https,socks5   [default: all three]
  --allow-open         allow a proxy without --user on a non-loopback address

Tunnel server flags (--mode server):
  --listen ADDR        tunnel listen address           [default: 127.0.0.1:8091]
  --token TOKEN        the token clients must prove (at least 8 characters)
  --names LIST         names clients use to reach this server, in a generated certificate
                       [default: localhost,127.0.0.1,::1]
  --state-dir DIR      where the generated CA and certificate live
                       [default: $XDG_STATE_HOME/wmproxy or ~/.local/state/wmproxy]
  --user, --pass, --protocols   proxy settings for the clients' traffic (as above)
  --allow-egress RULE  let clients' traffic reach RULE (repeatable; server.egress.allow), e.g.
                       127.0.0.0/8, 127.0.0.1:6379, *.internal. Loopback, link-local and
                       this server's own ports are refused by default
  --no-tls             plain TCP tunnel (only on trusted networks)

Tunnel client flags (--mode client):
  --server HOST:PORT   the tunnel server (required)
  --token TOKEN        one of the server's tokens (required)
  --bind ADDR          local proxy port                [default: 127.0.0.1:8090]
  --ca FILE            trust the CA file the server printed at its first start
  --pin SHA256         or: trust only the certificate with this fingerprint
  --insecure           or: do not verify the server at all (warns at every connect)
  --name NAME          this client's name in the server's logs
  --no-tls             plain TCP tunnel (the server must use --no-tls too)

Common flags:
  --admin ADDR         serve the control API (status, metrics, dashboard) here, e.g. 127.0.0.1:8837
  --admin-token TOKEN  require Authorization: Bearer TOKEN on it
  -c, --config FILE    YAML config (or TOML when the name ends in .toml); flags override it
  --log-format FORMAT  text (default) or json (one JSON object per line, with an "event" name)
  --log-level LEVEL    debug, info (default), warn or error
  -h, --help           show help
  -V, --version        print the version

Examples:
  wmproxy                                      # proxy on 127.0.0.1:8090, no auth
  curl -x http://127.0.0.1:8090 http://example.com/
  curl --socks5-hostname 127.0.0.1:8090 https://example.com/
  wmproxy --bind 0.0.0.0:8090 --user alice --pass s3cret
  wmproxy --mode server --listen 0.0.0.0:8091 --token "$TOKEN"          # on the public host
  wmproxy --mode client --server host:8091 --token "$TOKEN" --ca ca.pem  # in the LAN
  curl -x http://127.0.0.1:8090 http://example.com/                     # egress via the server
  wmproxy -c /etc/wmproxy/config.yaml --log-format json
  wmproxy check -c config.yaml

Exit codes: 0 ok, 1 runtime or config error (the message names the key), 2 usage error.
Config reference: config.example.yaml documents every key with its default.`;

export const CHECK_USAGE = `Usage: wmproxy check -c FILE

Runs the config pipeline (parse, validate, defaults) without starting anything.
Prints "ok" and exits 0, or lists every problem with its key path and line and exits 1.`;

export const GEN_CERT_USAGE = `Usage: wmproxy gen-cert [--out DIR] [--names LIST] [--force]

Creates a private CA and a server certificate signed by it (ECDSA P-256) for
the tunnel server, and prints the CA file and fingerprint clients must trust.
A server with no server.tls.cert does the same by itself at its first start.

  --out DIR       where to write ca.pem, ca.key, server.pem, server.key
                  [default: the server state directory]
  --names LIST    comma-separated DNS names and IPs of the server
                  [default: localhost,127.0.0.1,::1]
  --force         replace existing files`;

export const INSTALL_SERVICE_USAGE =
  `Usage: wmproxy install-service [--mode MODE] [-c FILE] [--user USER] [--output FILE] [--bin PATH]

Writes a systemd unit that runs wmproxy with the same --mode and -c, restarts it
on failure, reloads it with SIGHUP (systemctl reload), and sandboxes it
(NoNewPrivileges, ProtectSystem=strict, private /tmp, no capabilities except
CAP_NET_BIND_SERVICE when a configured port is below 1024). Then prints the
systemctl commands to start it.

  --user USER     run as this user          [default: a transient DynamicUser]
  --output FILE   where to write the unit   [default: /etc/systemd/system/wmproxy.service,
                                             or wmproxy-MODE.service with --mode]
  --bin PATH      the wmproxy binary        [default: this binary, or deno run -A main.ts]`;

export const CONTROL_USAGE =
  `Usage: wmproxy status|reload|stop [--admin URL] [--admin-token TOKEN] [-c FILE]

Talks to a running wmproxy's control API (its admin section, or --admin ADDR):
  status   print the status as JSON (listeners, tunnel sessions, mappings, upstreams)
  reload   re-read the config file and apply it, keeping unchanged sections and their connections
  stop     stop gracefully (like SIGTERM)
The address comes from --admin, else from admin.listen in -c FILE, else 127.0.0.1:8837.`;

export const WS_PROXY_USAGE =
  `Usage: wmproxy ws-proxy --from ADDR --to TARGET --mode ws2tcp|tcp2ws|tcp2wss

  ws2tcp    accept WebSocket connections on ADDR, relay binary messages to TCP host:port TARGET
  tcp2ws    accept TCP on ADDR, relay it over a WebSocket to ws://TARGET
  tcp2wss   the same over TLS, to wss://TARGET
Example: wmproxy ws-proxy --from 127.0.0.1:2222 --to wss://gw.example.com/ssh --mode tcp2wss`;
