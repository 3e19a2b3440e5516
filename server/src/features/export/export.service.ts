/**
 * What an export reads: a project's documents in id order, each with the layers asked for,
 * read from the stored update log (which holds everything any peer was ever sent). One
 * document's text and layers are in memory at a time.
 */
import * as Y from 'yjs';
import type { Kysely } from 'kysely';
import { goldRoom, layerRoom, listRelations, listSpans, type ExportDocument, type ExportLayer, type ExportLayerChoice } from '@spanwise/shared';
import type { Database } from '../../db/types.ts';
import type { Logger } from '../../log.ts';
import { errorKind } from '../../sync/error-text.ts';
import { readRoomLog } from '../../sync/adapters/kysely-store.ts';
import { documentsRepository } from '../documents/documents.repository.ts';

export interface ExportMember {
  id: number;
  username: string;
}

/** A layer's state from its stored rows; a row that no longer decodes is skipped (and logged). */
function readLayer(rows: readonly Uint8Array[], onBadRow: (error: unknown) => void): Pick<ExportLayer, 'spans' | 'relations'> {
  const doc = new Y.Doc();
  try {
    for (const data of rows) {
      try {
        Y.applyUpdate(doc, data);
      } catch (err) {
        onBadRow(err);
      }
    }
    return { spans: listSpans(doc), relations: listRelations(doc) };
  } finally {
    doc.destroy();
  }
}

export function exportService(db: Kysely<Database>, log: Logger) {
  const documentRows = documentsRepository(db);
  return {
    async documentCount(projectId: number): Promise<number> {
      const { n } = await db
        .selectFrom('documents')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('project_id', '=', projectId)
        .executeTakeFirstOrThrow();
      return Number(n);
    },

    /** How many of these members' layers of the project's documents hold anything. */
    async layersWithRows(projectId: number, members: readonly ExportMember[]): Promise<number> {
      if (members.length === 0) return 0;
      const docs = await db.selectFrom('documents').select('id').where('project_id', '=', projectId).execute();
      return (await documentRows.roomsWithUpdates(docs.flatMap((d) => members.map((m) => layerRoom(d.id, m.id))))).size;
    },

    /**
     * Each document of the project with its gold layer and, for `all`, every member's layer
     * that holds anything. The gold layer comes first and always (empty when nobody curated).
     */
    async *documents(projectId: number, choice: ExportLayerChoice, members: readonly ExportMember[]): AsyncGenerator<{ doc: ExportDocument; layers: ExportLayer[] }> {
      const ids = await db.selectFrom('documents').select('id').where('project_id', '=', projectId).orderBy('id').execute();
      for (const { id } of ids) {
        const doc = await db.selectFrom('documents').select(['id', 'title', 'text']).where('id', '=', id).executeTakeFirst();
        if (!doc) continue; // gone meanwhile
        const wanted = [
          { room: goldRoom(id), name: 'gold', annotator: null as string | null },
          ...(choice === 'all' ? members.map((m) => ({ room: layerRoom(id, m.id), name: `user:${m.id}`, annotator: m.username })) : []),
        ];
        // One room at a time: an open room's log may hold thousands of rows before compaction.
        const layers: ExportLayer[] = [];
        for (const w of wanted) {
          const rows = await readRoomLog(db, w.room);
          if (rows.length === 0 && w.name !== 'gold') continue;
          const state = readLayer(
            rows.map((r) => r.data),
            (err) => log.warn('export_row_skipped', { room: w.room, error: errorKind(err) }), // (its message may quote the document)
          );
          layers.push({ name: w.name, annotator: w.annotator, ...state });
        }
        yield { doc, layers };
      }
    },
  };
}
export type ExportService = ReturnType<typeof exportService>;
