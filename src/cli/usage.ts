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
  wmproxy version                            print the version
  wmproxy help                               this text

Modes:
  proxy     HTTP, HTTPS (CONNECT) and SOCKS5 forward proxy on one port (default)
  client    tunnel client   — not available in this version yet
  server    tunnel server   — not available in this version yet
  reverse   reverse proxy   — not available in this version yet
  With -c FILE and no --mode, every section present in the file runs.

Forward proxy flags (--mode proxy):
  --bind ADDR          listen address                  [default: 127.0.0.1:8090]
  --user NAME          require this user (HTTP Basic and SOCKS5 user/password)
  --pass PASSWORD      the user's password (with --user)
  --protocols LIST     comma-separated: http,https,socks5   [default: all three]
  --allow-open         allow a proxy without --user on a non-loopback address

Common flags:
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
  wmproxy -c /etc/wmproxy/config.yaml --log-format json
  wmproxy check -c config.yaml

Exit codes: 0 ok, 1 runtime or config error (the message names the key), 2 usage error.
Config reference: config.example.yaml documents every key with its default.`;

export const CHECK_USAGE = `Usage: wmproxy check -c FILE

Runs the config pipeline (parse, validate, defaults) without starting anything.
Prints "ok" and exits 0, or lists every problem with its key path and line and exits 1.`;
