import type { MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Me } from '@spanwise/shared';
import type { AuthService } from '../features/auth/auth.service.ts';
import { unauthenticated } from './errors.ts';

export interface AppEnv {
  Variables: { user: Me | null };
}

/** Resolves the session cookie (named `cookieName`: see sessionCookieName) to a user (or null) for every /api request. */
export function sessionMiddleware(auth: AuthService, cookieName: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set('user', await auth.userForToken(getCookie(c, cookieName)));
    await next();
  };
}

/** The signed-in user, or a 401. */
export function requireUser(user: Me | null): Me {
  if (!user) throw unauthenticated();
  return user;
}
