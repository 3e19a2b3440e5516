/**
 * Who may do what: project roles for the HTTP API, and room access for sync, by the rule in
 * shared/src/access.ts (decideRoomAccess) with the facts it needs fetched in bulk.
 */
import { decideRoomAccess, parseRoom, type AccessFacts, type Role, type RoomAccess } from '@spanwise/shared';
import { withoutQueueLimits } from '../../db/pglite-dialect.ts';
import { forbidden, notFound } from '../../http/errors.ts';
import type { DocumentsRepository } from '../documents/documents.repository.ts';
import type { ProjectsRepository } from '../projects/projects.repository.ts';

export function accessService(projects: ProjectsRepository, documents: DocumentsRepository) {
  const listeners = new Set<(userId: number) => void>();
  /**
   * Many rooms' access at once, in three queries whatever their number: what the periodic
   * re-check of every open socket uses.
   */
  async function roomAccessMany(requests: ReadonlyArray<{ userId: number; room: string }>): Promise<RoomAccess[]> {
    const parsed = requests.map((r) => ({ userId: r.userId, room: parseRoom(r.room) }));
    const documentIds = new Set<number>();
    for (const { room } of parsed) if (room && room.kind !== 'entities') documentIds.add(room.documentId);
    const projectOfDocument = await documents.projectsOf([...documentIds]);
    const projectIds = new Set(projectOfDocument.values());
    const userIds = new Set<number>();
    for (const { userId, room } of parsed) {
      userIds.add(userId);
      if (room?.kind === 'entities') projectIds.add(room.projectId);
      if (room?.kind === 'layer') userIds.add(room.userId);
    }
    const [modes, roles] = await Promise.all([projects.modes([...projectIds]), projects.roles([...projectIds], [...userIds])]);
    const facts: AccessFacts = { projectOfDocument, modes, role: (p, u) => roles.get(`${p}:${u}`) };
    return parsed.map(({ userId, room }) => decideRoomAccess(room, userId, facts));
  }

  return {
    /** Calls `listener` with a user's id whenever their memberships change on this instance. */
    onChange(listener: (userId: number) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /**
     * Tells the listeners. What they start (closing the user's sockets, a room's compaction)
     * outlives the request that made the change, so it is not held to the request's queue limits.
     */
    changed(userId: number): void {
      withoutQueueLimits(() => {
        for (const l of listeners) l(userId);
      });
    },

    /**
     * The project and the user's role in it, in one query: 404 when there is no such project,
     * 403 for a non-member.
     */
    async projectRole(userId: number, projectId: number) {
      const row = await projects.findWithRole(projectId, userId);
      if (!row) throw notFound(`project ${projectId}`);
      const { role, ...project } = row;
      if (!role) throw forbidden('you are not a member of this project');
      return { project, role };
    },

    /** The project a document belongs to and the user's role there, in one query (404 / 403 as above). */
    async documentRole(userId: number, documentId: number): Promise<{ projectId: number; role: Role }> {
      const doc = await documents.projectWithRole(documentId, userId);
      if (!doc) throw notFound(`document ${documentId}`);
      if (!doc.role) throw forbidden('you are not a member of this document’s project');
      return { projectId: doc.project_id, role: doc.role };
    },

    /** One room's access for one user. */
    async roomAccess(userId: number, name: string): Promise<RoomAccess> {
      return (await roomAccessMany([{ userId, room: name }]))[0]!;
    },

    roomAccessMany,
  };
}
export type AccessService = ReturnType<typeof accessService>;
