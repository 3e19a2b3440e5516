import { sql, type Kysely } from 'kysely';
import type { DocumentStatus } from '@spanwise/shared';
import type { Database, NewDocumentRow } from '../../db/types.ts';
import { memberRole } from '../projects/projects.repository.ts';

/** Rooms one query looks for rows of (see roomsWithUpdates). */
export const ROOMS_PER_QUERY = 10_000;

export function documentsRepository(db: Kysely<Database>) {
  return {
    /** A project's documents with the status the user set on each, if any. */
    listForProject(projectId: number, userId: number) {
      return db
        .selectFrom('documents as d')
        .leftJoin('document_status as s', (j) => j.onRef('s.document_id', '=', 'd.id').on('s.user_id', '=', userId))
        .select(['d.id', 'd.title', 'd.text_length', 's.status'])
        .where('d.project_id', '=', projectId)
        .orderBy('d.id')
        .execute();
    },
    /** Which of these sync rooms have anything stored (one index probe per room, not every row). */
    /**
     * Which of `rooms` hold anything: one index probe per room, not a count of its rows; in parts
     * of ROOMS_PER_QUERY, so that no one query takes longer than its deadline on a project of
     * many documents and members.
     */
    async roomsWithUpdates(rooms: readonly string[]): Promise<Set<string>> {
      const found = new Set<string>();
      for (let i = 0; i < rooms.length; i += ROOMS_PER_QUERY) {
        const { rows } = await sql<{ room: string }>`
          select r.room from unnest(${rooms.slice(i, i + ROOMS_PER_QUERY)}::text[]) as r(room)
          where exists (select 1 from sync_updates u where u.room = r.room)`.execute(db);
        for (const r of rows) found.add(r.room);
      }
      return found;
    },
    find(id: number) {
      return db.selectFrom('documents').selectAll().where('id', '=', id).executeTakeFirst();
    },
    /** The project of each existing document, by document id. */
    async projectsOf(ids: number[]): Promise<Map<number, number>> {
      if (ids.length === 0) return new Map();
      const rows = await db.selectFrom('documents').select(['id', 'project_id']).where('id', 'in', ids).execute();
      return new Map(rows.map((r) => [r.id, r.project_id]));
    },
    /** The document's project and the user's role there (undefined for a non-member). */
    projectWithRole(id: number, userId: number) {
      return db
        .selectFrom('documents as d')
        .leftJoin('project_members as m', (j) => j.onRef('m.project_id', '=', 'd.project_id').on('m.user_id', '=', userId))
        .select(['d.project_id', 'm.role'])
        .where('d.id', '=', id)
        .executeTakeFirst();
    },
    async insert(row: NewDocumentRow): Promise<number> {
      const r = await db.insertInto('documents').values(row).returning('id').executeTakeFirstOrThrow();
      return r.id;
    },
    /**
     * Adds a document as `byOwner` — if they are still the project's owner when it is written
     * (the project's row held, as member changes hold it): an upload may take minutes, and its
     * owner be removed meanwhile. Null when they are not.
     */
    async insertAsOwner(row: NewDocumentRow, byOwner: number): Promise<number | null> {
      return db.transaction().execute(async (trx) => {
        await trx.selectFrom('projects').select('id').where('id', '=', row.project_id).forShare().execute();
        if ((await memberRole(trx, row.project_id, byOwner)) !== 'owner') return null;
        const r = await trx.insertInto('documents').values(row).returning('id').executeTakeFirstOrThrow();
        return r.id;
      });
    },
    async setStatus(documentId: number, userId: number, status: DocumentStatus) {
      await db
        .insertInto('document_status')
        .values({ document_id: documentId, user_id: userId, status, updated_at: new Date() })
        .onConflict((oc) => oc.columns(['document_id', 'user_id']).doUpdateSet({ status, updated_at: new Date() }))
        .execute();
    },
  };
}
export type DocumentsRepository = ReturnType<typeof documentsRepository>;
