import { describe, expect, it } from 'vitest';
import { databaseKinds, useTestDatabase } from '../../../test/harness.ts';
import { authService } from './auth.service.ts';
import { hashPassword } from './password.ts';
import { usersRepository } from './users.repository.ts';

describe.each(databaseKinds())('sessions (%s)', (kind) => {
  const db = useTestDatabase(kind);

  it('keeps a user’s newest sessions up to the limit: a sign-in past it ends their oldest, and no one else’s', async () => {
    const users = usersRepository(db.current.db);
    const hash = await hashPassword('pw');
    await users.insert('many-sessions', hash);
    await users.insert('bystander', hash);
    const auth = authService(db.current.db, { sessionTtlHours: 1, maxSessionsPerUser: 3 });
    const other = await auth.login('bystander', 'pw');
    const tokens: string[] = [];
    for (let i = 0; i < 5; i++) {
      tokens.push((await auth.login('many-sessions', 'pw')).token);
      await new Promise((r) => setTimeout(r, 5)); // (each begins a little later than the last)
    }
    const live = await auth.usersForTokens([...tokens, other.token]);
    expect(tokens.map((t) => live.has(t))).toEqual([false, false, true, true, true]);
    expect(live.get(other.token)?.username).toBe('bystander');
    // Sessions made shorter since: the new one ends before the others, and is kept all the same.
    const shorter = authService(db.current.db, { sessionTtlHours: 0.5, maxSessionsPerUser: 3 });
    const latest = (await shorter.login('many-sessions', 'pw')).token;
    const after = await auth.usersForTokens([...tokens, latest]);
    expect([...tokens, latest].map((t) => after.has(t))).toEqual([false, false, false, true, true, true]);
  });
});
