/**
 * Deadlines on PostgreSQL's queries (kept by `watchedPool` in database.ts), and their defaults,
 * which config.ts reads too.
 *
 * @example
 *   await withDeadline(DEFAULT_STORE_WRITE_DEADLINE_MS, () => db.insertInto(...).execute());
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** How long any query may go unanswered, outside a scope of withDeadline's (DATABASE_QUERY_DEADLINE_MS). */
export const DEFAULT_QUERY_DEADLINE_MS = 60_000;
/** How long a sync store's write may go unanswered (STORE_WRITE_DEADLINE_MS). */
export const DEFAULT_STORE_WRITE_DEADLINE_MS = 15_000;

/** The deadline of the queries run in a scope (see withDeadline). */
const deadlines = new AsyncLocalStorage<number>();

/**
 * Runs `work` with a deadline on each PostgreSQL query it makes: a query not answered within
 * `ms` is cancelled on the server (a backend stalled on a lock would otherwise run it later,
 * alone), and fails then (57014). One that does not end soon after (its connection gone
 * silent) is abandoned together with its connection, which is closed (and, as likely cut off
 * from the database the same way, every idle one), so that the next query gets a fresh one.
 * Without it, a query in flight when the database's host vanished without a word (a failover
 * to another address, say) waits for TCP to give up: about 15 minutes, while every write
 * queued behind it waits too. No effect on PGlite, which is in the process.
 * Outside any such scope a query has the database's default deadline (DatabaseOptions'
 * queryDeadlineMs); `Infinity`, none (a migration's may take long).
 */
export function withDeadline<T>(ms: number, work: () => Promise<T>): Promise<T> {
  return deadlines.run(ms, work);
}

/** The deadline of the scope this runs in, if any. */
export function deadlineHere(): number | undefined {
  return deadlines.getStore();
}
