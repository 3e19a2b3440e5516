/**
 * Who may do what: project roles for the HTTP API, and room access for sync.
 *
 * Rooms (DESIGN.md): in blind mode an annotator opens only their own layer; curators and owners
 * open every layer and the gold layer; in open mode every member edits the gold layer; every
 * member opens the project's entity catalogue. Viewers open everything read-only.
 */
import { parseRoom, type Role, type Room } from '@spanwise/shared';
import { forbidden, notFound } from '../../http/errors.ts';
import type { DocumentsRepository } from '../documents/documents.repository.ts';
import type { ProjectsRepository } from '../projects/projects.repository.ts';

export type RoomAccess =
  | { ok: true; readOnly: boolean; projectId: number }
  | { ok: false; reason: 'unknown' | 'forbidden' };

const canCurate = (role: Role) => role === 'owner' || role === 'curator';

/** What deciding room access needs to know, fetched in bulk beforehand. */
export interface AccessFacts {
  projectOfDocument: ReadonlyMap<number, number>;
  modes: ReadonlyMap<number, 'blind' | 'open'>;
  role(projectId: number, userId: number): Role | undefined;
}

/** The rules, with no I/O: may `userId` open `room`, and may they write there? */
export function decideRoomAccess(room: Room | null, userId: number, facts: AccessFacts): RoomAccess {
  if (!room) return { ok: false, reason: 'unknown' };
  if (room.kind === 'entities') {
    if (!facts.modes.has(room.projectId)) return { ok: false, reason: 'unknown' };
    const role = facts.role(room.projectId, userId);
    return role ? { ok: true, readOnly: role === 'viewer', projectId: room.projectId } : { ok: false, reason: 'forbidden' };
  }
  const projectId = facts.projectOfDocument.get(room.documentId);
  if (projectId === undefined) return { ok: false, reason: 'unknown' };
  const role = facts.role(projectId, userId);
  if (!role) return { ok: false, reason: 'forbidden' };
  // A layer only exists for a member of the document's project.
  const layerExists = room.kind !== 'layer' || facts.role(projectId, room.userId) !== undefined;
  if (role === 'viewer') return layerExists ? { ok: true, readOnly: true, projectId } : { ok: false, reason: 'unknown' };
  if (room.kind === 'gold') {
    return facts.modes.get(projectId) === 'open' || canCurate(role) ? { ok: true, readOnly: false, projectId } : { ok: false, reason: 'forbidden' };
  }
  if (room.userId === userId) return { ok: true, readOnly: false, projectId };
  if (!canCurate(role)) return { ok: false, reason: 'forbidden' };
  return layerExists ? { ok: true, readOnly: false, projectId } : { ok: false, reason: 'unknown' };
}

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
    changed(userId: number): void {
      for (const l of listeners) l(userId);
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
