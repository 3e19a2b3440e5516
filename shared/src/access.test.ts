import { describe, expect, it } from 'vitest';
import { decideRoomAccess, exportChoices, writesGold, type AccessFacts } from './access.ts';
import type { ProjectMode, Role } from './api.ts';
import { parseRoom } from './rooms.ts';

// Project 1 (blind) holds document 10; project 2 (open) holds document 20. Users: 1 owner,
// 2 curator, 3 and 4 annotators, 5 viewer of both projects; user 9 belongs to neither.
const roles = new Map<number, Role>([
  [1, 'owner'],
  [2, 'curator'],
  [3, 'annotator'],
  [4, 'annotator'],
  [5, 'viewer'],
]);
const facts: AccessFacts = {
  projectOfDocument: new Map([
    [10, 1],
    [20, 2],
  ]),
  modes: new Map<number, ProjectMode>([
    [1, 'blind'],
    [2, 'open'],
  ]),
  role: (_project, userId) => roles.get(userId),
};
const decide = (room: string, userId: number) => decideRoomAccess(parseRoom(room), userId, facts);

describe('decideRoomAccess', () => {
  it('lets an annotator of a blind project write their own layer and nothing else', () => {
    expect(decide('doc:10:user:3', 3)).toEqual({ ok: true, readOnly: false, projectId: 1 });
    expect(decide('doc:10:user:4', 3)).toEqual({ ok: false, reason: 'forbidden' });
    expect(decide('doc:10:gold', 3)).toEqual({ ok: false, reason: 'forbidden' });
  });

  it('lets every member write the gold layer of an open project', () => {
    expect(decide('doc:20:gold', 3)).toEqual({ ok: true, readOnly: false, projectId: 2 });
  });

  it('lets curators and owners write every layer and the gold layer', () => {
    for (const user of [1, 2]) {
      expect(decide('doc:10:user:3', user)).toMatchObject({ ok: true, readOnly: false });
      expect(decide('doc:10:gold', user)).toMatchObject({ ok: true, readOnly: false });
    }
  });

  it('lets a viewer open everything read-only', () => {
    for (const room of ['doc:10:user:3', 'doc:10:gold', 'project:1:entities']) {
      expect(decide(room, 5)).toMatchObject({ ok: true, readOnly: true });
    }
  });

  it('lets every member, and nobody else, open the entity catalogue', () => {
    expect(decide('project:1:entities', 3)).toEqual({ ok: true, readOnly: false, projectId: 1 });
    expect(decide('project:1:entities', 9)).toEqual({ ok: false, reason: 'forbidden' });
  });

  it('tells unknown rooms from forbidden ones', () => {
    expect(decide('doc:99:gold', 1)).toEqual({ ok: false, reason: 'unknown' });
    expect(decide('project:99:entities', 1)).toEqual({ ok: false, reason: 'unknown' });
    expect(decide('doc:10:user:9', 1)).toEqual({ ok: false, reason: 'unknown' }); // not a member: no layer
    expect(decide('doc:10:user:9', 5)).toEqual({ ok: false, reason: 'unknown' });
    expect(decide('not a room', 1)).toEqual({ ok: false, reason: 'unknown' });
    expect(decide('doc:10:gold', 9)).toEqual({ ok: false, reason: 'forbidden' });
  });
});

describe('exportChoices', () => {
  it('follows the room rule for each role and mode', () => {
    const table = (mode: ProjectMode) => Object.fromEntries((['owner', 'curator', 'annotator', 'viewer'] as const).map((r) => [r, exportChoices(r, mode)]));
    expect(table('blind')).toEqual({
      owner: { gold: true, everyLayer: true },
      curator: { gold: true, everyLayer: true },
      annotator: { gold: false, everyLayer: false },
      viewer: { gold: true, everyLayer: true },
    });
    expect(table('open').annotator).toEqual({ gold: true, everyLayer: false });
  });
});

describe('writesGold', () => {
  it('is curators and owners, and every member but viewers in an open project', () => {
    const roles = ['owner', 'curator', 'annotator', 'viewer'] as const;
    expect(roles.map((r) => writesGold(r, 'blind'))).toEqual([true, true, false, false]);
    expect(roles.map((r) => writesGold(r, 'open'))).toEqual([true, true, true, false]);
  });
});
