import type { Kysely } from 'kysely';

// Frozen. A user's sessions, newest first: a sign-in keeps at most so many of them.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('sessions_user_idx').on('sessions').columns(['user_id', 'expires_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('sessions_user_idx').execute();
}
