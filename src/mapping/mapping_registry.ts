/**
 * Who owns which public name and port: the routing table of the tunnel
 * server. Pure (no I/O): domains with `*.` wildcards, ports, and a bounded
 * memory of names whose client went away (so visitors get "offline", not
 * "unknown"). A client that reconnects takes its own names back at once.
 *
 * @module
 */

/** The owner of a claim. */
export interface MappingOwner {
  /** The session that holds the claim. */
  sessionId: string;
  /** The token (client identity) that made the claim; takeovers need the same token. */
  token: string;
  /** The mapping's name. */
  mapping: string;
}

/** The result of a claim. */
export type ClaimResult = { ok: true; replaced: MappingOwner | undefined } | {
  ok: false;
  message: string;
};

/** The result of routing a host name. */
export type HostRoute<T extends MappingOwner> =
  | { kind: "route"; owner: T }
  | { kind: "offline"; mapping: string }
  | { kind: "unknown" };

const MAX_TOMBSTONES = 10_000;

function canTakeOver(old: MappingOwner, claimant: MappingOwner): boolean {
  return old.token === claimant.token && old.mapping === claimant.mapping;
}

/** Domains (per scheme) and ports (per transport) to owners. */
export class MappingRegistry<T extends MappingOwner> {
  readonly #domains = new Map<string, T>();
  readonly #ports = new Map<string, T>();
  readonly #offline = new Map<string, string>();

  /**
   * Claims every domain of `domains` for `owner` under `scheme`, or none:
   * a domain held by another token or mapping is a conflict.
   */
  claimDomains(scheme: "http" | "https", domains: readonly string[], owner: T): ClaimResult {
    for (const d of domains) {
      const held = this.#domains.get(`${scheme}:${d}`);
      if (held && held.sessionId !== owner.sessionId && !canTakeOver(held, owner)) {
        return {
          ok: false,
          message: `domain "${d}" is already held by mapping "${held.mapping}" of another client`,
        };
      }
      if (held && held.sessionId === owner.sessionId && held.mapping !== owner.mapping) {
        return {
          ok: false,
          message: `domain "${d}" is already held by this client's mapping "${held.mapping}"`,
        };
      }
    }
    let replaced: MappingOwner | undefined;
    for (const d of domains) {
      const key = `${scheme}:${d}`;
      const held = this.#domains.get(key);
      if (held && held.sessionId !== owner.sessionId) replaced = held;
      this.#domains.set(key, owner);
      this.#offline.delete(key);
    }
    return { ok: true, replaced };
  }

  /** Claims `port` for `owner` under `transport`. */
  claimPort(transport: "tcp" | "udp", port: number, owner: T): ClaimResult {
    const key = `${transport}:${port}`;
    const held = this.#ports.get(key);
    if (held && !canTakeOver(held, owner)) {
      return {
        ok: false,
        message: `${transport} port ${port} is already held by mapping "${held.mapping}"`,
      };
    }
    this.#ports.set(key, owner);
    return { ok: true, replaced: held && held.sessionId !== owner.sessionId ? held : undefined };
  }

  /** The owner of a port now. */
  portOwner(transport: "tcp" | "udp", port: number): T | undefined {
    return this.#ports.get(`${transport}:${port}`);
  }

  /** Ports held by `transport`, for picking a free one. */
  hasPort(transport: "tcp" | "udp", port: number): boolean {
    return this.#ports.has(`${transport}:${port}`);
  }

  /** Routes a host (lower-case, no port): exact name first, then the longest matching `*.` name. */
  resolveHost(scheme: "http" | "https", host: string): HostRoute<T> {
    const exact = this.#domains.get(`${scheme}:${host}`);
    if (exact) return { kind: "route", owner: exact };
    for (let i = host.indexOf("."); i >= 0; i = host.indexOf(".", i + 1)) {
      const wild = this.#domains.get(`${scheme}:*${host.slice(i)}`);
      if (wild) return { kind: "route", owner: wild };
    }
    const gone = this.#offline.get(`${scheme}:${host}`);
    if (gone !== undefined) return { kind: "offline", mapping: gone };
    for (let i = host.indexOf("."); i >= 0; i = host.indexOf(".", i + 1)) {
      const wildGone = this.#offline.get(`${scheme}:*${host.slice(i)}`);
      if (wildGone !== undefined) return { kind: "offline", mapping: wildGone };
    }
    return { kind: "unknown" };
  }

  /**
   * Drops every claim of `sessionId` whose mapping is in `names` (all when
   * `names` is undefined); its domains are remembered as offline. Returns the
   * dropped claims as `[key, owner]`, key being `http:name`, `tcp:port`, ….
   */
  release(sessionId: string, names?: ReadonlySet<string>): [string, T][] {
    const dropped: [string, T][] = [];
    for (const [key, owner] of this.#domains) {
      if (owner.sessionId !== sessionId || (names && !names.has(owner.mapping))) continue;
      this.#domains.delete(key);
      this.#remember(key, owner.mapping);
      dropped.push([key, owner]);
    }
    for (const [key, owner] of this.#ports) {
      if (owner.sessionId !== sessionId || (names && !names.has(owner.mapping))) continue;
      this.#ports.delete(key);
      dropped.push([key, owner]);
    }
    return dropped;
  }

  #remember(key: string, mapping: string): void {
    this.#offline.delete(key);
    this.#offline.set(key, mapping);
    while (this.#offline.size > MAX_TOMBSTONES) {
      this.#offline.delete(this.#offline.keys().next().value!);
    }
  }

  /** Every live claim, for status pages. */
  entries(): { key: string; owner: T }[] {
    return [...this.#domains, ...this.#ports].map(([key, owner]) => ({ key, owner }));
  }
}
