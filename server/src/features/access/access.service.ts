/**
 * Who may do what: project roles for the HTTP API, and room access for sync.
 *
 * Rooms (DESIGN.md): in blind mode an annotator opens only their own layer; curators and owners
 * open every layer and the gold layer; in open mode every member edits the gold layer; every
 * member opens the project's entity catalogue. Viewers open everything read-only.
 */
import { parseRoom, type Role } from '@spanwise/shared';
import { forbidden, notFound } from '../../http/errors.ts';
import type { DocumentsRepository } from '../documents/documents.repository.ts';
import type { ProjectsRepository } from '../projects/projects.repository.ts';

export type RoomAccess =
  | { ok: true; readOnly: boolean; projectId: number }
  | { ok: false; reason: 'unknown' | 'forbidden' };

const canCurate = (role: Role) => role === 'owner' || role === 'curator';

export function accessService(projects: ProjectsRepository, documents: DocumentsRepository) {
  const listeners = new Set<(userId: number) => void>();
  return {
    /** Calls `listener` with a user's id whenever their memberships change on this instance. */
    onChange(listener: (userId: number) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    changed(userId: number): void {
      for (const l of listeners) l(userId);
    },

    /** The user's role in the project: 404 when there is no such project, 403 for a non-member. */
    async projectRole(userId: number, projectId: number): Promise<Role> {
      const project = await projects.find(projectId);
      if (!project) throw notFound(`project ${projectId}`);
      const role = await projects.role(projectId, userId);
      if (!role) throw forbidden('you are not a member of this project');
      return role;
    },

    /** The project a document belongs to and the user's role there (404 / 403 as above). */
    async documentRole(userId: number, documentId: number): Promise<{ projectId: number; role: Role }> {
      const doc = await documents.projectOf(documentId);
      if (!doc) throw notFound(`document ${documentId}`);
      const role = await projects.role(doc.project_id, userId);
      if (!role) throw forbidden('you are not a member of this document’s project');
      return { projectId: doc.project_id, role };
    },

    async roomAccess(userId: number, name: string): Promise<RoomAccess> {
      const room = parseRoom(name);
      if (!room) return { ok: false, reason: 'unknown' };
      if (room.kind === 'entities') {
        if (!(await projects.find(room.projectId))) return { ok: false, reason: 'unknown' };
        const role = await projects.role(room.projectId, userId);
        return role ? { ok: true, readOnly: role === 'viewer', projectId: room.projectId } : { ok: false, reason: 'forbidden' };
      }
      const doc = await documents.projectOf(room.documentId);
      if (!doc) return { ok: false, reason: 'unknown' };
      const projectId = doc.project_id;
      const [role, project] = await Promise.all([projects.role(projectId, userId), projects.find(projectId)]);
      if (!role || !project) return { ok: false, reason: 'forbidden' };
      if (role === 'viewer') {
        if (room.kind === 'layer' && !(await projects.role(projectId, room.userId))) return { ok: false, reason: 'unknown' };
        return { ok: true, readOnly: true, projectId };
      }
      if (room.kind === 'gold') {
        return project.mode === 'open' || canCurate(role)
          ? { ok: true, readOnly: false, projectId }
          : { ok: false, reason: 'forbidden' };
      }
      if (room.userId === userId) return { ok: true, readOnly: false, projectId };
      if (!canCurate(role)) return { ok: false, reason: 'forbidden' };
      // A layer only exists for a member of the document's project.
      if (!(await projects.role(projectId, room.userId))) return { ok: false, reason: 'unknown' };
      return { ok: true, readOnly: false, projectId };
    },
  };
}
export type AccessService = ReturnType<typeof accessService>;
