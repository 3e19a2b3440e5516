import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { loginBody } from '@spanwise/shared';
import { jsonBody, unauthenticated } from '../../http/errors.ts';
import type { AppEnv } from '../../http/session.ts';
import { SESSION_COOKIE, type AuthService } from './auth.service.ts';

export function authRoutes(auth: AuthService, options: { secureCookies: boolean }) {
  return new Hono<AppEnv>()
    .post('/auth/login', async (c) => {
      const body = await jsonBody(c, loginBody);
      const { user, token, expiresAt } = await auth.login(body.username, body.password);
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
