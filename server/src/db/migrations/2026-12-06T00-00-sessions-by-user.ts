import type { Kysely } from 'kysely';

// Frozen. A user's sessions, latest first (a sign-in keeps at most so many of them); and those
// that have ended, which every sign-in deletes.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('sessions_user_idx').on('sessions').columns(['user_id', 'created_at']).execute();
  await db.schema.createIndex('sessions_expires_idx').on('sessions').column('expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('sessions_expires_idx').execute();
  await db.schema.dropIndex('sessions_user_idx').execute();
}
