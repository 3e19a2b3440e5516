import { isIP } from 'node:net';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { getConnInfo } from '@hono/node-server/conninfo';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { loginBody } from '@spanwise/shared';
import { AppError, jsonBody, unauthenticated } from '../../http/errors.ts';
import type { AppEnv } from '../../http/session.ts';
import { sessionCookieName, type AuthService } from './auth.service.ts';
import { addressBlock } from './address-block.ts';
import { SignInThrottle } from './sign-in-throttle.ts';

/**
 * The address the request came from. Behind a proxy the socket's is the proxy's: with
 * `trustProxy`, the last X-Forwarded-For entry is used, the one the proxy itself added — if it
 * is an address: a client that reached the server past the proxy could send anything there.
 */
function clientAddress(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim();
    if (forwarded && isIP(forwarded)) return forwarded;
  }
  try {
    return getConnInfo(c).remote.address ?? '';
  } catch {
    return ''; // not served by Node (app.request in tests)
  }
}

/**
 * `throttle` counts failed sign-ins per username and address; `addressThrottle` (a larger
 * allowance) per address, whatever the username, so that one place cannot try name after name
 * (each try costs a password hash). A success clears the first and does not count in the second.
 */
export function authRoutes(
  auth: AuthService,
  options: { secureCookies: boolean; trustProxy?: boolean; throttle: SignInThrottle; addressThrottle: SignInThrottle },
) {
  const { throttle, addressThrottle } = options;
  const cookieName = sessionCookieName(options.secureCookies);
  const refuse = (c: Context, wait: number): never => {
    c.header('Retry-After', String(Math.ceil(wait / 1000)));
    throw new AppError(429, 'too_many_attempts', `too many failed sign-ins: try again in ${Math.ceil(wait / 60_000)} min`);
  };
  return new Hono<AppEnv>()
    .post('/auth/login', async (c) => {
      const body = await jsonBody(c, loginBody);
      const block = addressBlock(clientAddress(c, options.trustProxy ?? false));
      const key = `${body.username.toLowerCase()}\n${block}`;
      const placeKey = `\n${block}`; // (no username is empty: never a pair's key)
      /** Takes back these attempts: no guesses (or, at the address, a success); best effort. */
      const takeBack = async (...which: Array<'pair' | 'place'>) => {
        if (which.includes('pair')) await throttle.withdrawn(key).catch(() => {});
        if (which.includes('place')) await addressThrottle.withdrawn(placeKey).catch(() => {});
      };
      // An address known to be refused is refused here, before anything is counted (a flood of
      // fresh usernames from it must not reach the database, PGlite's one connection).
      const placeKnown = addressThrottle.refusedFor(placeKey);
      if (placeKnown > 0) refuse(c, placeKnown);
      const wait = await throttle.take(key); // counted, unless refused
      if (wait > 0) refuse(c, wait);
      let placeWait: number;
      try {
        placeWait = await addressThrottle.take(placeKey);
      } catch (err) {
        await takeBack('pair'); // (not a guess: see below)
        throw err;
      }
      if (placeWait > 0) {
        await takeBack('pair');
        refuse(c, placeWait);
      }
      let signedIn: Awaited<ReturnType<AuthService['login']>>;
      try {
        signedIn = await auth.login(body.username, body.password);
      } catch (err) {
        // Not a wrong password (the database busy, say): the attempt is taken back, so that it
        // cannot count toward a lock-out.
        if (!(err instanceof AppError && err.status === 401)) await takeBack('pair', 'place');
        if (err instanceof AppError && err.code === 'sign_in_busy') c.header('Retry-After', '1');
        throw err;
      }
      // (Signed in all the same if these fail: the counts end with their windows.)
      await throttle.succeeded(key).catch(() => {});
      await takeBack('place');
      const { user, token, expiresAt } = signedIn;
      setCookie(c, cookieName, token, {
        httpOnly: true,
        sameSite: 'Lax',
        secure: options.secureCookies,
        path: '/',
        expires: expiresAt,
      });
      return c.json(user);
    })
    .post('/auth/logout', async (c) => {
      // A JSON body ({}), as every write: a form posted from another page cannot sign anyone out.
      await jsonBody(c, z.object({}));
      const token = getCookie(c, cookieName);
      // (It waits its turn however long while the line is not full: see app.ts. Refused as busy,
      // it would leave the session on.)
      if (token) await auth.logout(token);
      deleteCookie(c, cookieName, { path: '/', secure: options.secureCookies, httpOnly: true, sameSite: 'Lax' });
      return c.body(null, 204);
    })
    .get('/me', (c) => {
      const user = c.get('user');
      if (!user) throw unauthenticated();
      return c.json(user);
    })
    // When this session ends: the client keeps copies of what it read for offline use no longer.
    .get('/session', async (c) => {
      const expiresAt = await auth.sessionExpiry(getCookie(c, cookieName));
      if (!expiresAt) throw unauthenticated();
      return c.json({ expiresAt: expiresAt.toISOString() });
    });
}
