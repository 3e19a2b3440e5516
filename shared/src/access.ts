/**
 * Who may open which room, and whether they may write there: the one rule the server's sync
 * and export follow and the client reads to offer only what the server allows.
 *
 * Rooms (DESIGN.md): in blind mode an annotator opens only their own layer; curators and owners
 * open every layer and the gold layer; in open mode every member edits the gold layer; every
 * member opens the project's entity catalogue. Viewers open everything read-only.
 *
 * @example
 *   exportChoices('annotator', 'blind') // { gold: false, everyLayer: false }
 */
import type { ProjectMode, Role } from './api.ts';
import type { Room } from './rooms.ts';

export type RoomAccess =
  | { ok: true; readOnly: boolean; projectId: number }
  | { ok: false; reason: 'unknown' | 'forbidden' };

const canCurate = (role: Role) => role === 'owner' || role === 'curator';

/** What deciding room access needs to know, fetched in bulk beforehand. */
export interface AccessFacts {
  projectOfDocument: ReadonlyMap<number, number>;
  modes: ReadonlyMap<number, ProjectMode>;
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

// For questions about a role rather than a person: one document of one project, the member,
// and another member (an annotator) whose layer is in question.
const [PROJECT, DOCUMENT, SELF, OTHER] = [1, 1, 1, 2];
const factsFor = (role: Role, mode: ProjectMode): AccessFacts => ({
  projectOfDocument: new Map([[DOCUMENT, PROJECT]]),
  modes: new Map([[PROJECT, mode]]),
  role: (_project, userId) => (userId === SELF ? role : 'annotator'),
});

/** What a member with `role` may export (the gold layer; every layer), as decideRoomAccess allows. */
export function exportChoices(role: Role, mode: ProjectMode): { gold: boolean; everyLayer: boolean } {
  const facts = factsFor(role, mode);
  return {
    gold: decideRoomAccess({ kind: 'gold', documentId: DOCUMENT }, SELF, facts).ok,
    everyLayer: decideRoomAccess({ kind: 'layer', documentId: DOCUMENT, userId: OTHER }, SELF, facts).ok,
  };
}

/** Whether a member with `role` may write the gold layer (curators and owners; everyone but viewers in an open project). */
export function writesGold(role: Role, mode: ProjectMode): boolean {
  const access = decideRoomAccess({ kind: 'gold', documentId: DOCUMENT }, SELF, factsFor(role, mode));
  return access.ok && !access.readOnly;
}

/**
 * The facts about one project as a member sees it (its detail: mode, members and their roles,
 * their own role), for deciding access to its rooms in the client as the server would.
 */
export function memberFacts(
  project: { id: number; mode: ProjectMode; role: Role; members: readonly { id: number; role: Role }[] },
  selfId: number,
  documentId: number,
): AccessFacts {
  const roles = new Map(project.members.map((m) => [m.id, m.role]));
  return {
    projectOfDocument: new Map([[documentId, project.id]]),
    modes: new Map([[project.id, project.mode]]),
    role: (projectId, userId) => (projectId !== project.id ? undefined : userId === selfId ? project.role : roles.get(userId)),
  };
}
