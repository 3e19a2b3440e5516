/**
 * Sign-in attempts that did not succeed, counted per username and client address in the
 * database, so that every instance of a scaled-out deployment counts the same attempts: past
 * `max` within `windowMs`, that pair must wait until the window's first is `windowMs` old.
 * Each attempt is counted as it starts (`take`), in one statement that also refuses it when the
 * count is full, so that many sent at once, to one instance or several, cannot all pass before
 * the first fails; a success clears the count, and an attempt that failed for another reason
 * than the credentials (the database away) is taken back (`withdrawn`). Per pair, so that
 * guessing at one account from one place is slowed while its owner, elsewhere, can still sign
 * in. Pairs whose window has passed are deleted now and then, and at most `maxKeys` are kept
 * (the oldest go first), so a flood of made-up names cannot fill the table.
 *
 * The sign-in route keeps a second one, with a larger `max`, keyed by the address alone
 * (whatever the username): there a success is taken back (`withdrawn`) rather than clearing
 * the count. "Pair" below means whatever key a throttle counts by.
 *
 * @example
 *   const throttle = new SignInThrottle(db);
 *   const wait = await throttle.take(key);
 *   if (wait > 0) refuse(wait);
 */
import { sql, type Kysely } from 'kysely';
import { withoutQueueLimits } from '../../db/pglite-dialect.ts';
import type { Database } from '../../db/types.ts';

/** How often (at most) one instance deletes pairs whose window has passed. */
export const SWEEP_EVERY_MS = 60_000;
/** Pairs this instance remembers as refused, answered without asking the database again. */
const MAX_REMEMBERED_REFUSALS = 10_000;

export class SignInThrottle {
  #sweptAt = -Infinity;
  /** The latest sweep (for tests to wait on). */
  swept: Promise<void> = Promise.resolve();
  /**
   * Keys refused, with when their window ends: until then they are refused here at once (a
   * refused key stays refused everywhere until its window ends, as nothing but a sign-in,
   * which it may not make, clears it — or, for an address's count, an attempt taken back, which
   * forgets the refusal here), so a flood of refused attempts does not reach the database,
   * which on PGlite is the one connection documents are saved through.
   */
  readonly #refusedUntil = new Map<string, number>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly max = 10,
    private readonly windowMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  /** How long a pair this instance has seen refused must still wait (0: none known), without asking the database. */
  refusedFor(key: string): number {
    const until = this.#refusedUntil.get(key);
    return until !== undefined && until > this.now() ? until - this.now() : 0;
  }

  /** Counts an attempt of this pair; or, past `max` in its window, refuses it: how long to wait. */
  async take(key: string): Promise<number> {
    const now = this.now();
    const until = this.#refusedUntil.get(key);
    if (until !== undefined && until > now) return until - now;
    this.#refusedUntil.delete(key);
    // Off the request's path: a sweep that fails is tried again at the next one.
    if (now - this.#sweptAt >= SWEEP_EVERY_MS) {
      this.#sweptAt = now;
      // (However long it waits its turn: a request started it, and nobody waits on it.)
      this.swept = withoutQueueLimits(() => this.#sweep(now)).catch(() => {});
    }
    // Counted, or refused; a pair gone between the two statements (a sweep, a sign-in) is
    // counted afresh by the next round.
    for (let round = 0; round < 3; round++) {
      const wait = await this.#count(key, now);
      if (wait !== null) return wait;
    }
    return 1; // (it kept vanishing: refused, for now)
  }

  /** 0 when counted; how long to wait when refused; null when the pair vanished meanwhile. */
  async #count(key: string, now: number): Promise<number | null> {
    const expired = now - this.windowMs;
    const counted = await sql<{ count: number }>`
      insert into sign_in_attempts as a (key, count, since_ms) values (${key}, 1, ${now})
      on conflict (key) do update set
        count = case when a.since_ms <= ${expired} then 1 else a.count + 1 end,
        since_ms = case when a.since_ms <= ${expired} then ${now} else a.since_ms end
      where a.since_ms <= ${expired} or a.count < ${this.max}
      returning count`.execute(this.db);
    if (counted.rows.length > 0) return 0;
    const row = await this.db.selectFrom('sign_in_attempts').select('since_ms').where('key', '=', key).executeTakeFirst();
    if (!row) return null;
    const until = Number(row.since_ms) + this.windowMs;
    if (this.#refusedUntil.size >= MAX_REMEMBERED_REFUSALS) this.#refusedUntil.delete(this.#refusedUntil.keys().next().value!);
    this.#refusedUntil.set(key, until);
    return Math.max(1, until - now);
  }

  /**
   * The pair signed in: its count ends. Waits its turn for the database however long (never
   * refused as busy): a count left standing would lock out someone who got the password right.
   */
  async succeeded(key: string): Promise<void> {
    await withoutQueueLimits(() => this.db.deleteFrom('sign_in_attempts').where('key', '=', key).execute());
  }

  /** An attempt that was no guess (the database failed it, say) is taken back; as `succeeded`, never refused as busy. */
  async withdrawn(key: string): Promise<void> {
    // A refusal this instance remembers for the key may no longer hold: the database decides.
    this.#refusedUntil.delete(key);
    await withoutQueueLimits(() =>
      this.db
        .updateTable('sign_in_attempts')
        .set({ count: sql<number>`greatest(count - 1, 0)` })
        .where('key', '=', key)
        .execute(),
    );
  }

  /** Now and then: pairs whose window has passed go, and the oldest past `maxKeys`. */
  async #sweep(now: number): Promise<void> {
    await this.db.deleteFrom('sign_in_attempts').where('since_ms', '<=', now - this.windowMs).execute();
    await sql`delete from sign_in_attempts where key in
      (select key from sign_in_attempts order by since_ms desc offset ${this.maxKeys})`.execute(this.db);
  }
}
