/**
 * The systemd unit `wmproxy install-service` writes: restart on failure,
 * reload by SIGHUP, and a hardened sandbox (no new privileges, read-only
 * system, private /tmp, only the socket families a proxy needs). The one
 * capability it may keep, CAP_NET_BIND_SERVICE, is granted only when a
 * configured port is below 1024.
 *
 * @module
 */

/** Options for {@link renderSystemdUnit}. */
export interface SystemdUnitOptions {
  /** The command line that starts wmproxy (absolute paths). */
  execStart: string[];
  /** What the unit runs, for its description (e.g. "server"). */
  description: string;
  /** Run as this user; `undefined` = a transient DynamicUser. */
  user: string | undefined;
  /** Grant CAP_NET_BIND_SERVICE (a configured port is below 1024). */
  bindsLowPorts: boolean;
  /** Extra read-write paths (e.g. a config file's directory for generated state). */
  readWritePaths: readonly string[];
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg)
    ? arg
    : `"${arg.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** Renders the unit file text. */
export function renderSystemdUnit(options: SystemdUnitOptions): string {
  const lines = [
    "[Unit]",
    `Description=wmproxy ${options.description}`,
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${options.execStart.map(quote).join(" ")}`,
    "ExecReload=/bin/kill -HUP $MAINPID",
    "Restart=on-failure",
    "RestartSec=2s",
    "TimeoutStopSec=30s",
    ...(options.user === undefined ? ["DynamicUser=yes"] : [`User=${options.user}`]),
    "StateDirectory=wmproxy",
    "Environment=WMPROXY_STATE_DIR=/var/lib/wmproxy",
    "Environment=DENO_DIR=/var/lib/wmproxy/deno",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallArchitectures=native",
    ...(options.bindsLowPorts
      ? ["CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE"]
      : ["CapabilityBoundingSet="]),
    ...options.readWritePaths.map((p) => `ReadWritePaths=${quote(p)}`),
    "LimitNOFILE=65536",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ];
  return lines.join("\n");
}

/** Every port in `host:port` values below 1024. */
export function lowPorts(addresses: readonly (string | undefined)[]): number[] {
  const out: number[] = [];
  for (const a of addresses) {
    if (a === undefined) continue;
    const port = Number(a.slice(a.lastIndexOf(":") + 1));
    if (Number.isInteger(port) && port > 0 && port < 1024) out.push(port);
  }
  return out;
}
