import { sql, type Kysely } from 'kysely';
import type { DocumentStatus } from '@spanwise/shared';
import type { Database, NewDocumentRow } from '../../db/types.ts';

export function documentsRepository(db: Kysely<Database>) {
  return {
    /**
     * A project's documents with the user's status: an explicit status if they set one, else
     * `in_progress` once their layer has any stored update, else `not_started`.
     */
    listForProject(projectId: number, userId: number) {
      return db
        .selectFrom('documents as d')
        .leftJoin('document_status as s', (j) => j.onRef('s.document_id', '=', 'd.id').on('s.user_id', '=', userId))
        .select([
          'd.id',
          'd.title',
          'd.text_length',
          's.status',
          sql<boolean>`exists (select 1 from sync_updates u where u.room = 'doc:' || d.id || ':user:' || ${userId}::int)`.as(
            'touched',
          ),
        ])
        .where('d.project_id', '=', projectId)
        .orderBy('d.id')
        .execute();
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
    projectOf(id: number) {
      return db.selectFrom('documents').select('project_id').where('id', '=', id).executeTakeFirst();
    },
    async insert(row: NewDocumentRow): Promise<number> {
      const r = await db.insertInto('documents').values(row).returning('id').executeTakeFirstOrThrow();
      return r.id;
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
