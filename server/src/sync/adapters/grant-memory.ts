/**
 * Grants remembered by room and session token ("this session may open this room"), so that a
 * client whose socket drops while the database is away can open its room again. Each is as old
 * as the database's last word on it: the re-check confirms or forgets every one (ws-upgrade.ts),
 * as does any refusal. At most `max` are kept, the least recently confirmed dropped first.
 *
 * @example
 *   const grants = new GrantMemory(10_000);
 *   const since = grants.version;
 *   // ... ask the database ...
 *   grants.remember('doc:1:gold', token, { ok: true, userId: 2, userName: 'alice', readOnly: false }, since);
 *   grants.recall('doc:1:gold', token, 15 * 60_000); // the grant, if confirmed in the last 15 min
 */

/** What the database said: this user may open the room (read-only or not). */
export type Grant = { ok: true; userId: number; userName: string; readOnly: boolean };

export interface Remembered {
  token: string;
  room: string;
  grant: Grant;
  /** When the database last said so. */
  at: number;
}

export class GrantMemory {
  readonly #grants = new Map<string, Remembered>();
  #version = 0;

  constructor(private readonly max: number) {}

  /** Moves on whenever a grant is forgotten or members change: see remember(). */
  get version(): number {
    return this.#version;
  }

  /** Members changed: answers begun before now may grant what was just withdrawn. */
  changed(): void {
    this.#version++;
  }

  /** Keeps a grant, unless something was forgotten or changed since `since` (a version). */
  remember(room: string, token: string, grant: Grant, since: number): void {
    if (this.#version !== since) return;
    const key = keyOf(room, token);
    this.#grants.delete(key); // re-inserted last: the least recently confirmed go first
    this.#grants.set(key, { token, room, grant, at: performance.now() });
    if (this.#grants.size > this.max) this.#grants.delete(this.#grants.keys().next().value!);
  }

  /** The grant, if the database confirmed it within `maxAgeMs`. */
  recall(room: string, token: string, maxAgeMs: number): Remembered | undefined {
    const r = this.#grants.get(keyOf(room, token));
    return r && performance.now() - r.at <= maxAgeMs ? r : undefined;
  }

  forget(r: { room: string; token: string }): void {
    if (this.#grants.delete(keyOf(r.room, r.token))) this.#version++;
  }

  /** The database said so again at `at`: the grant is as old as that (if it is still kept). */
  confirm(r: Remembered, at: number): void {
    if (this.#grants.get(keyOf(r.room, r.token)) === r) r.at = at;
  }

  /** Every grant kept, or one user's. */
  of(userId?: number): Remembered[] {
    return [...this.#grants.values()].filter((r) => userId === undefined || r.grant.userId === userId);
  }
}

const keyOf = (room: string, token: string) => `${room}\n${token}`;
