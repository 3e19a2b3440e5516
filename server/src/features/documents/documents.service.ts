import { createHash } from 'node:crypto';
import { goldRoom, layerRoom, writesGold, type DocumentDetail, type DocumentStatus, type DocumentSummary, type ProjectMode, type Role } from '@spanwise/shared';
import type { DocumentRow, NewDocumentRow } from '../../db/types.ts';
import { notFound } from '../../http/errors.ts';
import type { DocumentsRepository } from './documents.repository.ts';

export const contentHash = (text: string) => 'sha256:' + createHash('sha256').update(text, 'utf8').digest('hex');

export interface NewDocument {
  title: string;
  text: string;
  source?: string | null;
  url?: string | null;
  publishedAt?: string | null;
}

function toDetail(row: DocumentRow): DocumentDetail {
  return {
    id: row.id,
    projectId: row.project_id,
    title: row.title,
    text: row.text,
    length: row.text_length,
    source: row.source,
    url: row.url,
    publishedAt: row.published_at,
    contentHash: row.content_hash,
  };
}

function documentRow(projectId: number, doc: NewDocument): NewDocumentRow {
  return {
    project_id: projectId,
    title: doc.title.trim(),
    text: doc.text,
    text_length: doc.text.length,
    content_hash: contentHash(doc.text),
    source: doc.source ?? null,
    url: doc.url ?? null,
    published_at: doc.publishedAt ?? null,
  };
}

export function documentsService(documents: DocumentsRepository) {
  return {
    /**
     * Stores the text exactly as given (no trimming, no normalisation): offsets depend on it.
     * Null when `byOwner` is no longer the project's owner.
     */
    create(projectId: number, doc: NewDocument, byOwner: number): Promise<number | null> {
      return documents.insertAsOwner(documentRow(projectId, doc), byOwner);
    },
    /** The same, unchecked, for the demo seed (which runs inside its own transaction). */
    seed(projectId: number, doc: NewDocument): Promise<number> {
      return documents.insert(documentRow(projectId, doc));
    },
    async get(id: number): Promise<DocumentDetail> {
      const row = await documents.find(id);
      if (!row) throw notFound(`document ${id}`);
      return toDetail(row);
    },
    /**
     * A project's documents with the user's status: the one they set, else `in_progress` once a
     * layer they work on has any stored update, else `not_started`. They work on their own
     * layer, and on the gold layer in an open project (everyone but viewers, who only look) or
     * as a curator or owner (who adjudicate into it).
     */
    async list(projectId: number, userId: number, as: { mode: ProjectMode; role: Role }): Promise<DocumentSummary[]> {
      const rows = await documents.listForProject(projectId, userId);
      const withGold = writesGold(as.role, as.mode);
      const worked = (docId: number) => [layerRoom(docId, userId), ...(withGold ? [goldRoom(docId)] : [])];
      const touched = await documents.roomsWithUpdates(rows.filter((r) => !r.status).flatMap((r) => worked(r.id)));
      return rows.map((r) => ({
        id: r.id,
        title: r.title,
        length: r.text_length,
        status: r.status ?? (worked(r.id).some((room) => touched.has(room)) ? 'in_progress' : 'not_started'),
      }));
    },
    setStatus(documentId: number, userId: number, status: DocumentStatus) {
      return documents.setStatus(documentId, userId, status);
    },
  };
}
export type DocumentsService = ReturnType<typeof documentsService>;
