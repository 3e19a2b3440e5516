/**
 * Every migration, by its date-prefixed name. Listed statically (not read from the folder) so
 * it works the same under tsx, Vitest and a bundler. Add new ones at the end; never edit one.
 */
import type { Migration } from 'kysely';
import * as initial from './2026-11-21T00-00-initial.ts';
import * as viewerRole from './2026-11-21T01-00-viewer-role.ts';
import * as signInAttempts from './2026-12-02T00-00-sign-in-attempts.ts';
import * as sessionsByUser from './2026-12-06T00-00-sessions-by-user.ts';

export const migrations: Record<string, Migration> = {
  '2026-11-21T00-00-initial': initial,
  '2026-11-21T01-00-viewer-role': viewerRole,
  '2026-12-02T00-00-sign-in-attempts': signInAttempts,
  '2026-12-06T00-00-sessions-by-user': sessionsByUser,
};
