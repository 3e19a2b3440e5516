import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { databaseKinds, useTestDatabase } from '../../../test/harness.ts';
import { testConfig } from '../../config.ts';
import { verifyPassword } from '../auth/password.ts';
import { readSeeds, seedDemo } from './demo.seed.ts';

const seedsDir = testConfig().seedsDir;

describe.each(databaseKinds())('demo seed (%s)', (kind) => {
  const db = useTestDatabase(kind);

  it('creates the project, the five users with their roles and the five articles', async () => {
    expect(await seedDemo(db.current.db, { seedsDir, password: 'pw' })).toBe(true);
    const members = await db.current.db
      .selectFrom('project_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['u.username', 'm.role', 'u.password_hash'])
      .orderBy('u.id')
      .execute();
    expect(members.map((m) => `${m.username}:${m.role}`)).toEqual(['admin:owner', 'alice:annotator', 'bob:annotator', 'carol:annotator', 'dana:curator']);
    expect(await verifyPassword('pw', members[0]!.password_hash)).toBe(true);
    const docs = await db.current.db.selectFrom('documents').selectAll().orderBy('id').execute();
    expect(docs).toHaveLength(5);
  });

  it('stores each article byte for byte with its sha256', async () => {
    const seeds = await readSeeds(seedsDir);
    const docs = await db.current.db.selectFrom('documents').selectAll().orderBy('id').execute();
    for (const [i, seed] of seeds.entries()) {
      const bytes = await readFile(path.join(seedsDir, seed.file));
      expect(Buffer.from(docs[i]!.text, 'utf8').equals(bytes)).toBe(true);
      expect(docs[i]!.content_hash).toBe('sha256:' + createHash('sha256').update(bytes).digest('hex'));
      expect(docs[i]!.text_length).toBe(docs[i]!.text.length);
      expect(docs[i]!.title.length).toBeGreaterThan(10);
    }
  });

  it('adds nothing the second time', async () => {
    expect(await seedDemo(db.current.db, { seedsDir, password: 'pw' })).toBe(false);
    const users = await db.current.db.selectFrom('users').select('id').execute();
    const docs = await db.current.db.selectFrom('documents').select('id').execute();
    expect([users.length, docs.length]).toEqual([5, 5]);
  });
});
