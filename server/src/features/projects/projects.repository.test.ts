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
    expect(await projects.changeMember(id, owner, 'curator', owner)).toBe('last_owner');
    expect(await projects.changeMember(id, owner, null, owner)).toBe('last_owner');
    const other = await usersRepository(db.current.db).insert('keep-other', 'x');
    expect(await projects.changeMember(id, other, null, owner)).toBe('not_member');
    expect(await projects.changeMember(id, other, 'owner', owner)).toBe('done');
    expect(await projects.changeMember(id, owner, 'annotator', owner)).toBe('done');
    // No longer an owner: nothing they ask changes anything, themselves included.
    expect(await projects.changeMember(id, owner, 'owner', owner)).toBe('forbidden');
    expect(await projects.changeMember(id, other, null, owner)).toBe('forbidden');
    expect(await projects.members(id)).toEqual([
      { id: owner, username: 'keep-owner-0', role: 'annotator' },
      { id: other, username: 'keep-other', role: 'owner' },
    ]);
  });

  it('lets only one of two owners demoting each other at once succeed', async () => {
    // Checked and written separately, both changes see two owners and both go through.
    for (let round = 0; round < 8; round++) {
      const { projects, id, owners } = await projectWithOwners(`race-${round}`, 2);
      const [a, b] = owners as [number, number];
      const outcomes = await Promise.all([
        projects.changeMember(id, a, 'annotator', b),
        round % 2 ? projects.changeMember(id, b, null, a) : projects.changeMember(id, b, 'viewer', a),
      ]);
      // The second to get the lock is no owner any more.
      expect(outcomes.sort()).toEqual(['done', 'forbidden']);
      expect(await ownersOf(id)).toBe(1);
    }
  });

  it('lets only one of two owners each demoting themselves at once succeed', async () => {
    for (let round = 0; round < 4; round++) {
      const { projects, id, owners } = await projectWithOwners(`self-${round}`, 2);
      const [a, b] = owners as [number, number];
      const outcomes = await Promise.all([projects.changeMember(id, a, 'annotator', a), projects.changeMember(id, b, 'curator', b)]);
      expect(outcomes.sort()).toEqual(['done', 'last_owner']);
      expect(await ownersOf(id)).toBe(1);
    }
  });
});
