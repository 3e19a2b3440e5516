import { describe, expect, it } from 'vitest';
import { databaseKinds, useTestDatabase } from '../../../test/harness.ts';
import { usersRepository } from '../auth/users.repository.ts';
import { projectsRepository } from './projects.repository.ts';

describe.each(databaseKinds())('project members (%s)', (kind) => {
  const db = useTestDatabase(kind);

  async function projectWithOwners(name: string, owners: number) {
    const projects = projectsRepository(db.current.db);
    const users = usersRepository(db.current.db);
    const id = await projects.insert({ name, mode: 'blind', schema: { spans: [], relations: [] }, guidelines: '' });
    const ids: number[] = [];
    for (let i = 0; i < owners; i++) {
      const userId = await users.insert(`${name}-owner-${i}`, 'x');
      await projects.addMember(id, userId, 'owner');
      ids.push(userId);
    }
    return { projects, id, owners: ids };
  }
  const ownersOf = async (projectId: number) =>
    (await projectsRepository(db.current.db).members(projectId)).filter((m) => m.role === 'owner').length;

  it('keeps one owner, and says why a change was refused', async () => {
    const { projects, id, owners } = await projectWithOwners('keep', 1);
    const [owner] = owners as [number];
    expect(await projects.changeMember(id, owner, 'curator')).toBe('last_owner');
    expect(await projects.changeMember(id, owner, null)).toBe('last_owner');
    const other = await usersRepository(db.current.db).insert('keep-other', 'x');
    expect(await projects.changeMember(id, other, null)).toBe('not_member');
    expect(await projects.changeMember(id, other, 'owner')).toBe('done');
    expect(await projects.changeMember(id, owner, 'annotator')).toBe('done');
    expect(await projects.members(id)).toEqual([
      { id: owner, username: 'keep-owner-0', role: 'annotator' },
      { id: other, username: 'keep-other', role: 'owner' },
    ]);
  });

  it('lets only one of two owners demoting each other at once succeed', async () => {
    // Checked and written separately, both changes see two owners and both go through.
    for (let round = 0; round < 8; round++) {
      const { projects, id, owners } = await projectWithOwners(`race-${round}`, 2);
      const outcomes = await Promise.all([
        projects.changeMember(id, owners[0]!, 'annotator'),
        round % 2 ? projects.changeMember(id, owners[1]!, null) : projects.changeMember(id, owners[1]!, 'viewer'),
      ]);
      expect(outcomes.sort()).toEqual(['done', 'last_owner']);
      expect(await ownersOf(id)).toBe(1);
    }
  });
});
