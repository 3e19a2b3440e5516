/**
 * Sign-in and sessions. The cookie carries a random token; the database keeps only its sha256.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Me } from '@spanwise/shared';
import type { Database } from '../../db/types.ts';
import { AppError } from '../../http/errors.ts';
import { DUMMY_HASH, PasswordChecksBusy, verifyPassword } from './password.ts';
import { sessionsRepository, usersRepository } from './users.repository.ts';

export const SESSION_COOKIE = 'spanwise_session';

/**
 * The session cookie's name: with Secure cookies (SECURE_COOKIES, served over HTTPS), prefixed
 * `__Host-`, which browsers accept only from this very host, Secure, on path `/`: no sibling
 * subdomain can set one (and so sign a member in as someone else, or plant a session).
 */
export function sessionCookieName(secure: boolean): string {
  return secure ? `__Host-${SESSION_COOKIE}` : SESSION_COOKIE;
}

const tokenId = (token: string) => createHash('sha256').update(token).digest('hex');

/** Live sessions one user keeps (browsers signed in); a sign-in past it ends their oldest. */
const MAX_SESSIONS_PER_USER = 100;

export function authService(db: Kysely<Database>, options: { sessionTtlHours: number; maxSessionsPerUser?: number }) {
  const users = usersRepository(db);
  const sessions = sessionsRepository(db);
  /** The users of many session tokens in one query; unknown or expired tokens are absent. */
  async function usersForTokens(tokens: string[]): Promise<Map<string, Me>> {
    const byId = new Map(tokens.filter((t) => t.length <= 200).map((t) => [tokenId(t), t]));
    const found = await sessions.findUsers([...byId.keys()], new Date());
    return new Map([...found].map(([id, user]) => [byId.get(id)!, user]));
  }
  return {
    /** Returns the user and a new session token; a wrong username or password is the same 401. */
    async login(username: string, password: string): Promise<{ user: Me; token: string; expiresAt: Date }> {
      const row = await users.findByUsername(username);
      const ok = await verifyPassword(password, row?.password_hash ?? DUMMY_HASH).catch((err) => {
        throw err instanceof PasswordChecksBusy ? new AppError(503, 'sign_in_busy', 'too many sign-ins at once: try again in a moment') : err;
      });
      if (!row || !ok) throw new AppError(401, 'invalid_credentials', 'wrong username or password');
      const token = randomBytes(32).toString('base64url');
      const expiresAt = new Date(Date.now() + options.sessionTtlHours * 3600_000);
      // Sessions that ran out go when someone signs in: the table does not grow without end.
      await sessions.deleteExpired(new Date());
      const id = tokenId(token);
      await sessions.insert(id, row.id, expiresAt);
      // Nor does it grow by one user signing in again and again.
      await sessions.keepNewest(row.id, id, options.maxSessionsPerUser ?? MAX_SESSIONS_PER_USER);
      return { user: { id: row.id, username: row.username }, token, expiresAt };
    },
    async logout(token: string): Promise<void> {
      await sessions.delete(tokenId(token));
    },
    usersForTokens,
    /** When the session of a token ends, or null when it is unknown or over. */
    async sessionExpiry(token: string | undefined): Promise<Date | null> {
      if (!token || token.length > 200) return null;
      return sessions.findExpiry(tokenId(token), new Date());
    },
    /** The user a session token belongs to, or null when it is unknown or expired. */
    async userForToken(token: string | undefined): Promise<Me | null> {
      if (!token) return null;
      return (await usersForTokens([token])).get(token) ?? null;
    },
  };
}
export type AuthService = ReturnType<typeof authService>;
