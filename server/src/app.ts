/**
 * Builds the Hono app from its parts: API routes under /api, the built client for every other
 * path. Nothing here reads the environment or opens a connection.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { sql, type Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import type { Config } from './config.ts';
import type { DbKind } from './db/database.ts';
import type { Database } from './db/types.ts';
import { accessService } from './features/access/access.service.ts';
import { SignInThrottle } from './features/auth/sign-in-throttle.ts';
import { authRoutes } from './features/auth/auth.routes.ts';
import { authService, sessionCookieName } from './features/auth/auth.service.ts';
import { usersRepository } from './features/auth/users.repository.ts';
import { documentsRepository } from './features/documents/documents.repository.ts';
import { documentsRoutes } from './features/documents/documents.routes.ts';
import { documentsService } from './features/documents/documents.service.ts';
import { exportRoutes } from './features/export/export.routes.ts';
import { exportService } from './features/export/export.service.ts';
import { projectsRepository } from './features/projects/projects.repository.ts';
import { projectsRoutes } from './features/projects/projects.routes.ts';
import { hostAllowed, hostRefusal } from './http/allowed-hosts.ts';
import { bodyLimits } from './http/body-limits.ts';
import { AppError, errorHandler } from './http/errors.ts';
import { requestLog } from './http/request-log.ts';
import { httpAnswers } from './features/metrics/http-metrics.ts';
import { sessionMiddleware, type AppEnv } from './http/session.ts';
import type { Logger } from './log.ts';
import { withQueueLimits } from './db/pglite-dialect.ts';

export { MAX_BODY_BYTES, MAX_SMALL_BODY_BYTES } from './http/body-limits.ts';

export interface AppDeps {
  config: Config;
  db: Kysely<Database>;
  dbKind: DbKind;
  log: Logger;
  /** Served as Prometheus text on GET /metrics. */
  metrics?: Registry;
}

export function createServices(deps: AppDeps) {
  const projects = projectsRepository(deps.db);
  const documentsRepo = documentsRepository(deps.db);
  return {
    auth: authService(deps.db, { sessionTtlHours: deps.config.sessionTtlHours }),
    access: accessService(projects, documentsRepo),
    documents: documentsService(documentsRepo),
    exports: exportService(deps.db, deps.log),
    projects,
    users: usersRepository(deps.db),
  };
}
export type Services = ReturnType<typeof createServices>;

function apiApp(deps: AppDeps, services: Services) {
  return new Hono<AppEnv>()
    .get('/health', async (c) => {
      try {
        await sql`select 1`.execute(deps.db);
        return c.json({ ok: true as const, db: deps.dbKind });
      } catch {
        return c.json({ ok: false as const, db: deps.dbKind }, 503);
      }
    })
    .use(bodyLimits())
    .use(sessionMiddleware(services.auth, sessionCookieName(deps.config.secureCookies)))
    .route('/', authRoutes(services.auth, { secureCookies: deps.config.secureCookies, trustProxy: deps.config.trustProxy, throttle: new SignInThrottle(deps.db), addressThrottle: new SignInThrottle(deps.db, deps.config.signInAttemptsPerAddress) }))
    .route('/', projectsRoutes(services.projects, services.access, services.documents, services.users, { uploadStallMs: deps.config.uploadStallMs }))
    .route('/', documentsRoutes(services.access, services.documents))
    .route('/', exportRoutes(services.access, services.projects, services.exports, deps.log, { trustProxy: deps.config.trustProxy, publicUrl: deps.config.publicUrl, stallMs: deps.config.exportStallMs }))
    .all('*', (c) => {
      throw new AppError(404, 'not_found', `no API route ${c.req.method} ${c.req.path}`);
    });
}

const NOT_BUILT = 'the client is not built: run `npm run build`';

/** Serves the built client; unknown paths get index.html so the client's router takes over. */
function clientApp(clientDir: string | null) {
  const app = new Hono();
  if (!clientDir || !existsSync(path.join(clientDir, 'index.html'))) return app.get('*', (c) => c.text(NOT_BUILT, 404));
  // Hashed assets never change; everything else is revalidated.
  const cacheHeaders = (file: string, c: Context) =>
    c.header('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
  return (
    app
      .get('*', serveStatic({ root: clientDir, onFound: cacheHeaders }))
      // An asset of another build (an instance not yet updated, a page older than the last
      // deploy) is missing, not a page: index.html under its name would be kept as that script
      // by the browser's service worker (client/public/sw.js), for good.
      .get('/assets/*', (c) => c.text('no such asset', 404, { 'cache-control': 'no-store' }))
      .get('*', serveStatic({ path: path.join(clientDir, 'index.html'), onFound: cacheHeaders }))
  );
}

export function createApp(deps: AppDeps, services: Services = createServices(deps)) {
  const app = new Hono();
  app.onError(errorHandler(deps.log));
  app.use(requestLog(deps.log, deps.metrics ? httpAnswers(deps.metrics) : undefined));
  // DNS rebinding: a page on another name that now resolves here is not answered (421). Not
  // the probes' and scrapers' paths, which reach an instance by its service name: the health
  // check, and the metrics behind their token (open, they would tell a rebinding page when
  // someone is at work).
  const anyName = new Set(['/api/health', ...(deps.config.metricsToken ? ['/metrics'] : [])]);
  app.use(async (c, next) => {
    const host = c.req.header('host');
    if (!anyName.has(c.req.path) && !hostAllowed(host, deps.config.allowedHosts)) {
      throw new AppError(421, 'host_not_allowed', hostRefusal(host));
    }
    await next();
  });
  // A request's queries wait a bounded time for the embedded database (503 database_busy after);
  // a sign-out's (its session lookup included) as long as it takes, which a busy database must
  // not refuse, but only while the line is not full (a flood of them would grow it without end).
  const signOut = { waitMs: Number.POSITIVE_INFINITY };
  app.use('/api/*', (c, next) => withQueueLimits(next, c.req.method === 'POST' && c.req.path === '/api/auth/logout' ? signOut : {}));
  const metrics = deps.metrics;
  if (metrics) {
    const token = deps.config.metricsToken;
    if (token) app.use('/metrics', bearerAuth({ token }));
    app.get('/metrics', async (c) => c.text(await metrics.metrics(), 200, { 'content-type': metrics.contentType }));
  }
  app.route('/api', apiApp(deps, services));
  app.route('/', clientApp(deps.config.clientDir));
  return app;
}
