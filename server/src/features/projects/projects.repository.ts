import type { Kysely } from 'kysely';
import type { Role } from '@spanwise/shared';
import type { Database } from '../../db/types.ts';

/** A user's role in a project (undefined: not a member), read through `db` (a transaction, say). */
export async function memberRole(db: Kysely<Database>, projectId: number, userId: number): Promise<Role | undefined> {
  const row = await db.selectFrom('project_members').select('role').where('project_id', '=', projectId).where('user_id', '=', userId).executeTakeFirst();
  return row?.role;
}

export function projectsRepository(db: Kysely<Database>) {
  /** Adds a member or sets their role (inside `on`'s transaction when given one). */
  async function addMember(projectId: number, userId: number, role: Role, on: Kysely<Database> = db) {
    await on
      .insertInto('project_members')
      .values({ project_id: projectId, user_id: userId, role })
      .onConflict((oc) => oc.columns(['project_id', 'user_id']).doUpdateSet({ role }))
      .execute();
  }
  return {
    listForUser(userId: number) {
      return db
        .selectFrom('projects')
        .innerJoin('project_members as m', 'm.project_id', 'projects.id')
        .select(['projects.id', 'projects.name', 'projects.mode', 'm.role'])
        .where('m.user_id', '=', userId)
        .orderBy('projects.id')
        .execute();
    },
    /** The project with the user's role in it (undefined for a non-member), in one query. */
    findWithRole(id: number, userId: number) {
      return db
        .selectFrom('projects')
        .leftJoin('project_members as m', (j) => j.onRef('m.project_id', '=', 'projects.id').on('m.user_id', '=', userId))
        .selectAll('projects')
        .select('m.role')
        .where('projects.id', '=', id)
        .executeTakeFirst();
    },
    /** Each existing project's mode, by id. */
    async modes(ids: number[]): Promise<Map<number, 'blind' | 'open'>> {
      if (ids.length === 0) return new Map();
      const rows = await db.selectFrom('projects').select(['id', 'mode']).where('id', 'in', ids).execute();
      return new Map(rows.map((r) => [r.id, r.mode]));
    },
    /** Roles of these users in these projects, keyed `${projectId}:${userId}`. */
    async roles(projectIds: number[], userIds: number[]): Promise<Map<string, Role>> {
      if (projectIds.length === 0 || userIds.length === 0) return new Map();
      const rows = await db
        .selectFrom('project_members')
        .select(['project_id', 'user_id', 'role'])
        .where('project_id', 'in', projectIds)
        .where('user_id', 'in', userIds)
        .execute();
      return new Map(rows.map((r) => [`${r.project_id}:${r.user_id}`, r.role]));
    },
    members(projectId: number) {
      return db
        .selectFrom('project_members as m')
        .innerJoin('users', 'users.id', 'm.user_id')
        .select(['users.id', 'users.username', 'm.role'])
        .where('m.project_id', '=', projectId)
        .orderBy('users.id')
        .execute();
    },
    async insert(p: { name: string; mode: 'blind' | 'open'; schema: unknown; guidelines: string; isDemo?: boolean }) {
      const row = await db
        .insertInto('projects')
        .values({ name: p.name, mode: p.mode, schema: JSON.stringify(p.schema), guidelines: p.guidelines, is_demo: p.isDemo ?? false })
        .returning('id')
        .executeTakeFirstOrThrow();
      return row.id;
    },
    addMember,
    /**
     * Sets a member's role, or removes them (`role` null), as the owner `byOwner` asks, unless
     * that would leave the project without an owner. The checks and the write are one transaction
     * holding the project's row lock, so two owners demoting each other at once cannot both
     * succeed, and one demoted or removed since they were let in changes nothing ('forbidden').
     */
    changeMember(projectId: number, userId: number, role: Role | null, byOwner: number): Promise<'done' | 'last_owner' | 'not_member' | 'forbidden'> {
      return db.transaction().execute(async (trx) => {
        await trx.selectFrom('projects').select('id').where('id', '=', projectId).forUpdate().execute();
        if ((await memberRole(trx, projectId, byOwner)) !== 'owner') return 'forbidden';
        const current = await memberRole(trx, projectId, userId);
        if (!current && role === null) return 'not_member';
        if (current === 'owner' && role !== 'owner') {
          const { owners } = await trx
            .selectFrom('project_members')
            .select((eb) => eb.fn.countAll<string>().as('owners'))
            .where('project_id', '=', projectId)
            .where('role', '=', 'owner')
            .executeTakeFirstOrThrow();
          if (Number(owners) <= 1) return 'last_owner';
        }
        if (role === null) {
          await trx.deleteFrom('project_members').where('project_id', '=', projectId).where('user_id', '=', userId).execute();
        } else {
          await addMember(projectId, userId, role, trx);
        }
        return 'done';
      });
    },
  };
}
export type ProjectsRepository = ReturnType<typeof projectsRepository>;
