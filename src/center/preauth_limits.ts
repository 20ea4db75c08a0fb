/**
 * Limits on tunnel connections that have not authenticated yet ("pre-auth":
 * from accept to `auth_ok`), kept apart from the sessions that have: a total
 * and a per-address count. Pure (no I/O, no timers): the server asks
 * {@link PreauthLimits.admit} at accept and releases the slot when the
 * handshake ends either way. Only addresses with a connection in the
 * handshake are remembered, so the map holds at most `maxTotal` entries.
 *
 * @module
 */

/** Options for {@link PreauthLimits}. */
export interface PreauthLimitsOptions {
  /** Pre-auth connections from all addresses together. */
  maxTotal: number;
  /** Pre-auth connections from one address (see {@link addressKey}). */
  maxPerAddress: number;
}

/** A held slot; `release()` is idempotent. */
export interface PreauthSlot {
  release(): void;
}

/** Why a connection was not admitted: `kind` for aggregation, `reason` for the log. */
export interface PreauthRefusal {
  kind: "max_handshakes" | "max_handshakes_per_ip" | "failing";
  reason: string;
}

/** The answer of {@link PreauthLimits.admit}. */
export type Admission = { ok: true; slot: PreauthSlot } | { ok: false; refusal: PreauthRefusal };

/**
 * The key an address is counted under: IPv4 as is (also when written as an
 * IPv4-mapped IPv6 address), IPv6 by its /64 prefix, since one host usually
 * holds a whole /64 and could otherwise rotate through it.
 */
export function addressKey(hostname: string): string {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) return mapped[1]!;
  if (!h.includes(":")) return h;
  const [head = "", tail = ""] = h.split("::", 2) as [string, string?];
  const left = head === "" ? [] : head.split(":");
  const right = h.includes("::") ? (tail === "" ? [] : tail.split(":")) : [];
  const groups = h.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  const prefix = groups.slice(0, 4).map((g) => (g === "" ? "0" : g).replace(/^0+(?=.)/, ""));
  while (prefix.length < 4) prefix.push("0");
  return `${prefix.join(":")}::/64`;
}

/** Counts pre-auth connections in total and per address. */
export class PreauthLimits {
  #maxTotal: number;
  #maxPerAddress: number;
  #total = 0;
  readonly #byAddress = new Map<string, number>();

  constructor(options: PreauthLimitsOptions) {
    this.#maxTotal = options.maxTotal;
    this.#maxPerAddress = options.maxPerAddress;
  }

  /** Takes new limits (reload); connections already admitted keep their slots. */
  update(options: PreauthLimitsOptions): void {
    this.#maxTotal = options.maxTotal;
    this.#maxPerAddress = options.maxPerAddress;
  }

  /**
   * Admits a connection from `key` (an {@link addressKey}) or says why not.
   * `failingCap`, when given, replaces the per-address limit (a throttled
   * address may hold fewer parallel handshakes).
   */
  admit(key: string, failingCap?: number): Admission {
    const held = this.#byAddress.get(key) ?? 0;
    if (failingCap !== undefined && held >= Math.min(failingCap, this.#maxPerAddress)) {
      return {
        ok: false,
        refusal: {
          kind: "failing",
          reason: `${key} failed to authenticate recently and already has ${held} ` +
            `handshake(s) in progress (at most ${failingCap} while it is throttled)`,
        },
      };
    }
    if (held >= this.#maxPerAddress) {
      return {
        ok: false,
        refusal: {
          kind: "max_handshakes_per_ip",
          reason: `max_handshakes_per_ip (${this.#maxPerAddress}) reached for ${key}`,
        },
      };
    }
    if (this.#total >= this.#maxTotal) {
      return {
        ok: false,
        refusal: {
          kind: "max_handshakes",
          reason: `max_handshakes (${this.#maxTotal}) reached`,
        },
      };
    }
    this.#total++;
    this.#byAddress.set(key, held + 1);
    let released = false;
    return {
      ok: true,
      slot: {
        release: () => {
          if (released) return;
          released = true;
          this.#total--;
          const n = (this.#byAddress.get(key) ?? 1) - 1;
          if (n <= 0) this.#byAddress.delete(key);
          else this.#byAddress.set(key, n);
        },
      },
    };
  }

  /** Pre-auth connections held now. */
  get total(): number {
    return this.#total;
  }

  /** Addresses with a pre-auth connection now. */
  get addresses(): number {
    return this.#byAddress.size;
  }

  /** Pre-auth connections of `key` now. */
  heldBy(key: string): number {
    return this.#byAddress.get(key) ?? 0;
  }
}
