import { Hono, type Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { loginBody } from '@spanwise/shared';
import { AppError, jsonBody, unauthenticated } from '../../http/errors.ts';
import type { AppEnv } from '../../http/session.ts';
import { SESSION_COOKIE, type AuthService } from './auth.service.ts';
import { SignInThrottle } from './sign-in-throttle.ts';

/** The address the request came from (the proxy's, behind one). */
function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? '';
  } catch {
    return ''; // not served by Node (app.request in tests)
  }
}

export function authRoutes(auth: AuthService, options: { secureCookies: boolean; throttle?: SignInThrottle }) {
  const throttle = options.throttle ?? new SignInThrottle();
  return new Hono<AppEnv>()
    .post('/auth/login', async (c) => {
      const body = await jsonBody(c, loginBody);
      const key = `${body.username.toLowerCase()}\n${clientAddress(c)}`;
      const wait = throttle.waitMs(key);
      if (wait > 0) {
        c.header('Retry-After', String(Math.ceil(wait / 1000)));
        throw new AppError(429, 'too_many_attempts', `too many failed sign-ins: try again in ${Math.ceil(wait / 60_000)} min`);
      }
      let signedIn: Awaited<ReturnType<AuthService['login']>>;
      try {
        signedIn = await auth.login(body.username, body.password);
      } catch (err) {
        if (err instanceof AppError && err.status === 401) throttle.failed(key);
        throw err;
      }
      throttle.succeeded(key);
      const { user, token, expiresAt } = signedIn;
      setCookie(c, SESSION_COOKIE, token, {
        httpOnly: true,
        sameSite: 'Lax',
        secure: options.secureCookies,
        path: '/',
        expires: expiresAt,
      });
      return c.json(user);
    })
    .post('/auth/logout', async (c) => {
      const token = getCookie(c, SESSION_COOKIE);
      if (token) await auth.logout(token);
      deleteCookie(c, SESSION_COOKIE, { path: '/' });
      return c.body(null, 204);
    })
    .get('/me', (c) => {
      const user = c.get('user');
      if (!user) throw unauthenticated();
      return c.json(user);
    });
}
