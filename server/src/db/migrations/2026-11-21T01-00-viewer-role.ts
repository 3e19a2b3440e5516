import { sql, type Kysely } from 'kysely';

// Frozen. Adds the read-only `viewer` role.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table project_members drop constraint if exists project_members_role_check`.execute(db);
  await sql`alter table project_members add constraint project_members_role_check
    check (role in ('owner', 'curator', 'annotator', 'viewer'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table project_members drop constraint if exists project_members_role_check`.execute(db);
  await sql`alter table project_members add constraint project_members_role_check
    check (role in ('owner', 'curator', 'annotator'))`.execute(db);
}
