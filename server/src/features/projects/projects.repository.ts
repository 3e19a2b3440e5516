import type { Kysely } from 'kysely';
import type { Role } from '@spanwise/shared';
import type { Database } from '../../db/types.ts';

export function projectsRepository(db: Kysely<Database>) {
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
    find(id: number) {
      return db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async role(projectId: number, userId: number): Promise<Role | undefined> {
      const row = await db
        .selectFrom('project_members')
        .select('role')
        .where('project_id', '=', projectId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row?.role;
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
    async addMember(projectId: number, userId: number, role: Role) {
      await db
        .insertInto('project_members')
        .values({ project_id: projectId, user_id: userId, role })
        .onConflict((oc) => oc.columns(['project_id', 'user_id']).doUpdateSet({ role }))
        .execute();
    },
    async removeMember(projectId: number, userId: number) {
      await db.deleteFrom('project_members').where('project_id', '=', projectId).where('user_id', '=', userId).execute();
    },
  };
}
export type ProjectsRepository = ReturnType<typeof projectsRepository>;
