/**
 * The live, authenticated client sessions of a tunnel server: what routing
 * (mappings), the admin API and shutdown look up.
 *
 * @module
 */
import type { Session } from "../mux/mod.ts";
import type { TokenPolicy } from "../config/types.ts";

/** One authenticated client. */
export interface ClientSession {
  /** Server-assigned id, also sent to the client as `session_id`. */
  id: string;
  /** The token it proved, with its policy (a reload may update the policy). */
  token: TokenPolicy;
  /** The name from its hello, if any. */
  name: string | undefined;
  /** `host:port` it connected from. */
  peer: string;
  since: Date;
  session: Session;
}

/** Live client sessions by id. */
export class SessionRegistry {
  readonly #sessions = new Map<string, ClientSession>();

  add(client: ClientSession): void {
    this.#sessions.set(client.id, client);
  }

  remove(id: string): void {
    this.#sessions.delete(id);
  }

  get(id: string): ClientSession | undefined {
    return this.#sessions.get(id);
  }

  /** Every live session, oldest first. */
  list(): ClientSession[] {
    return [...this.#sessions.values()];
  }

  get size(): number {
    return this.#sessions.size;
  }
}
