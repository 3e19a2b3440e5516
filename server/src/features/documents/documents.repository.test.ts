import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { databaseKinds, useTestDatabase, waitFor } from '../../../test/harness.ts';
import { usersRepository } from '../auth/users.repository.ts';
import { projectsRepository } from '../projects/projects.repository.ts';
import { documentsRepository } from './documents.repository.ts';

describe.each(databaseKinds())('adding a document (%s)', (kind) => {
  const db = useTestDatabase(kind);
  const row = (project: number, title: string) => ({ project_id: project, title, text: 'x', text_length: 1, content_hash: 'sha256:x', source: null, url: null, published_at: null });

  it('writes it only while the one adding it is still the project’s owner (an upload may outlast their role)', async () => {
    const projects = projectsRepository(db.current.db);
    const users = usersRepository(db.current.db);
    const documents = documentsRepository(db.current.db);
    const project = await projects.insert({ name: 'uploads', mode: 'blind', schema: { spans: [], relations: [] }, guidelines: '' });
    const [a, b] = [await users.insert('uploads-a', 'x'), await users.insert('uploads-b', 'x')];
    await projects.addMember(project, a, 'owner');
    await projects.addMember(project, b, 'owner');
    expect(await documents.insertAsOwner(row(project, 'while owner'), a)).toEqual(expect.any(Number));
    expect(await projects.changeMember(project, a, 'annotator', b)).toBe('done');
    expect(await documents.insertAsOwner(row(project, 'demoted meanwhile'), a)).toBeNull();
    expect(await projects.changeMember(project, a, null, b)).toBe('done');
    expect(await documents.insertAsOwner(row(project, 'removed meanwhile'), a)).toBeNull();
    const titles = await db.current.db.selectFrom('documents').select('title').where('project_id', '=', project).execute();
    expect(titles.map((t) => t.title)).toEqual(['while owner']);
  });

  // PGlite is one session: nothing else runs while a transaction holds it.
  if (kind !== 'pglite') it('waits for a member change under way, and goes by its outcome', async () => {
    const projects = projectsRepository(db.current.db);
    const users = usersRepository(db.current.db);
    const documents = documentsRepository(db.current.db);
    const project = await projects.insert({ name: 'racing', mode: 'blind', schema: { spans: [], relations: [] }, guidelines: '' });
    const owner = await users.insert('racing-owner', 'x');
    await projects.addMember(project, owner, 'owner');
    // Another request's member change, holding the project's row as changeMember does.
    const change = await db.current.db.startTransaction().execute();
    try {
      await change.selectFrom('projects').select('id').where('id', '=', project).forUpdate().execute();
      const adding = documents.insertAsOwner(row(project, 'meanwhile'), owner);
      // Until it waits on the row (not merely has yet to ask for it).
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ilike '%for share%'`.execute(db.current.db);
        return rows[0]!.n > 0;
      }, 'the insert waiting on the project’s row');
      await change.updateTable('project_members').set({ role: 'annotator' }).where('project_id', '=', project).where('user_id', '=', owner).execute();
      await change.commit().execute();
      expect(await adding).toBeNull();
    } catch (err) {
      await change.rollback().execute().catch(() => {});
      throw err;
    }
    expect(await db.current.db.selectFrom('documents').select('id').where('project_id', '=', project).execute()).toEqual([]);
  });
});
