/**
 * The demo project (DESIGN.md, "demo"): created once, on the first start against an empty
 * database, with the seed articles and the users admin, alice, bob, carol and dana.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { DEFAULT_SCHEMA, type Role } from '@spanwise/shared';
import type { Database } from '../../db/types.ts';
import { hashPassword } from '../auth/password.ts';
import { usersRepository } from '../auth/users.repository.ts';
import { documentsRepository } from '../documents/documents.repository.ts';
import { documentsService } from '../documents/documents.service.ts';
import { deriveTitle } from '../documents/title.ts';
import { projectsRepository } from '../projects/projects.repository.ts';

export const DEMO_USERS: ReadonlyArray<{ username: string; role: Role }> = [
  { username: 'admin', role: 'owner' },
  { username: 'alice', role: 'annotator' },
  { username: 'bob', role: 'annotator' },
  { username: 'carol', role: 'annotator' },
  { username: 'dana', role: 'curator' },
];

export const DEMO_PROJECT_NAME = 'Iran–Russia missile reports';

const GUIDELINES = `Mark every mention of a person, organisation, place (GPE), weapon system and named event.
Mark each checkable claim as CLAIM and set its stance: asserts, denies or uncertain.
Link a claim to its subject, object and source mentions.`;

// Any constant: it only has to be the same for every instance that might seed at once.
const SEED_LOCK = 727_001;

export interface SeedArticle {
  file: string;
  text: string;
}

export async function readSeeds(seedsDir: string): Promise<SeedArticle[]> {
  const files = (await fs.readdir(seedsDir)).filter((f) => f.endsWith('.txt')).sort();
  return Promise.all(files.map(async (file) => ({ file, text: await fs.readFile(path.join(seedsDir, file), 'utf8') })));
}

/** Seeds the demo data if the database has no users yet; returns whether it did. */
export async function seedDemo(db: Kysely<Database>, options: { seedsDir: string; password: string }): Promise<boolean> {
  if ((await usersRepository(db).count()) > 0) return false;
  const [articles, passwordHash] = await Promise.all([readSeeds(options.seedsDir), hashPassword(options.password)]);
  return db.transaction().execute(async (trx) => {
    // Two instances starting together against one Postgres: only the first seeds.
    await sql`select pg_advisory_xact_lock(${SEED_LOCK})`.execute(trx);
    const users = usersRepository(trx);
    if ((await users.count()) > 0) return false;
    const projects = projectsRepository(trx);
    const documents = documentsService(documentsRepository(trx));
    const projectId = await projects.insert({ name: DEMO_PROJECT_NAME, mode: 'blind', schema: DEFAULT_SCHEMA, guidelines: GUIDELINES, isDemo: true });
    for (const u of DEMO_USERS) {
      // One hash for all: the demo users share a password by definition.
      await projects.addMember(projectId, await users.insert(u.username, passwordHash), u.role);
    }
    for (const a of articles) {
      await documents.seed(projectId, { title: deriveTitle(a.text), text: a.text, source: a.file });
    }
    return true;
  });
}
