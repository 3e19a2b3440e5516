import type { Kysely } from 'kysely';
import type { Database } from '../../db/types.ts';

export function usersRepository(db: Kysely<Database>) {
  return {
    findByUsername(username: string) {
      return db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    },
    async insert(username: string, passwordHash: string): Promise<number> {
      const row = await db
        .insertInto('users')
        .values({ username, password_hash: passwordHash })
        .returning('id')
        .executeTakeFirstOrThrow();
      return row.id;
    },
    async count(): Promise<number> {
      const row = await db.selectFrom('users').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}

export type UsersRepository = ReturnType<typeof usersRepository>;

export function sessionsRepository(db: Kysely<Database>) {
  return {
    async insert(id: string, userId: number, expiresAt: Date) {
      await db.insertInto('sessions').values({ id, user_id: userId, expires_at: expiresAt }).execute();
    },
    /** The users of many sessions at once, keyed by session id. */
    async findUsers(ids: string[], now: Date): Promise<Map<string, { id: number; username: string }>> {
      if (ids.length === 0) return new Map();
      const rows = await db
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .select(['sessions.id as sessionId', 'users.id', 'users.username'])
        .where('sessions.id', 'in', ids)
        .where('sessions.expires_at', '>', now)
        .execute();
      return new Map(rows.map((r) => [r.sessionId, { id: r.id, username: r.username }]));
    },
    /** When a live session ends, or null when it is unknown or over. */
    async findExpiry(id: string, now: Date): Promise<Date | null> {
      const row = await db.selectFrom('sessions').select('expires_at').where('id', '=', id).where('expires_at', '>', now).executeTakeFirst();
      return row ? new Date(row.expires_at) : null;
    },
    async delete(id: string) {
      await db.deleteFrom('sessions').where('id', '=', id).execute();
    },
    async deleteExpired(now: Date) {
      await db.deleteFrom('sessions').where('expires_at', '<=', now).execute();
    },
    /**
     * Ends a user's sessions but `newest` and the `keep` − 1 begun last before it (by the
     * database's clock: not by when they end, which a changed session length would reorder).
     */
    async keepNewest(userId: number, newest: string, keep: number) {
      await db
        .deleteFrom('sessions')
        .where('user_id', '=', userId)
        .where('id', '<>', newest)
        .where('id', 'not in', (eb) =>
          eb.selectFrom('sessions').select('id').where('user_id', '=', userId).where('id', '<>', newest).orderBy('created_at', 'desc').orderBy('id').limit(keep - 1),
        )
        .execute();
    },
  };
}
