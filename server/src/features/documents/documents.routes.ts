import { Hono } from 'hono';
import { statusBody } from '@spanwise/shared';
import { forbidden, idParam, jsonBody } from '../../http/errors.ts';
import { requireUser, type AppEnv } from '../../http/session.ts';
import type { AccessService } from '../access/access.service.ts';
import type { DocumentsService } from './documents.service.ts';

export function documentsRoutes(access: AccessService, documents: DocumentsService) {
  return new Hono<AppEnv>()
    .get('/documents/:id', async (c) => {
      const user = requireUser(c.get('user'));
      const id = idParam(c.req.param('id'), 'document');
      await access.documentRole(user.id, id);
      return c.json(await documents.get(id));
    })
    .put('/documents/:id/status', async (c) => {
      const user = requireUser(c.get('user'));
      const id = idParam(c.req.param('id'), 'document');
      // A viewer looks and writes nothing, a status included (as sync drops their edits).
      if ((await access.documentRole(user.id, id)).role === 'viewer') throw forbidden('a viewer may not mark a document’s progress');
      const { status } = await jsonBody(c, statusBody);
      await documents.setStatus(id, user.id, status);
      return c.json({ status });
    });
}
