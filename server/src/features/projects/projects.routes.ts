import { Hono } from 'hono';
import { labelSchemaSchema, newDocumentBody, type ProjectDetail, type ProjectSummary } from '@spanwise/shared';
import { forbidden, idParam, jsonBody, notFound } from '../../http/errors.ts';
import { requireUser, type AppEnv } from '../../http/session.ts';
import type { AccessService } from '../access/access.service.ts';
import type { DocumentsService } from '../documents/documents.service.ts';
import type { ProjectsRepository } from './projects.repository.ts';

export function projectsRoutes(projects: ProjectsRepository, access: AccessService, documents: DocumentsService) {
  return new Hono<AppEnv>()
    .get('/projects', async (c) => {
      const user = requireUser(c.get('user'));
      const rows = await projects.listForUser(user.id);
      return c.json(rows.map((r): ProjectSummary => ({ id: r.id, name: r.name, role: r.role, mode: r.mode })));
    })
    .get('/projects/:id', async (c) => {
      const user = requireUser(c.get('user'));
      const id = idParam(c.req.param('id'), 'project');
      const role = await access.projectRole(user.id, id);
      const [row, members] = await Promise.all([projects.find(id), projects.members(id)]);
      if (!row) throw notFound(`project ${id}`);
      const detail: ProjectDetail = {
        id: row.id,
        name: row.name,
        role,
        mode: row.mode,
        schema: labelSchemaSchema.parse(row.schema),
        guidelines: row.guidelines,
        members: members.map((m) => ({ id: m.id, username: m.username, role: m.role })),
      };
      return c.json(detail);
    })
    .get('/projects/:id/documents', async (c) => {
      const user = requireUser(c.get('user'));
      const id = idParam(c.req.param('id'), 'project');
      await access.projectRole(user.id, id);
      return c.json(await documents.list(id, user.id));
    })
    .post('/projects/:id/documents', async (c) => {
      const user = requireUser(c.get('user'));
      const id = idParam(c.req.param('id'), 'project');
      const role = await access.projectRole(user.id, id);
      if (role !== 'owner') throw forbidden('only the project owner may add documents');
      const body = await jsonBody(c, newDocumentBody);
      const docId = await documents.create(id, body);
      return c.json({ id: docId }, 201);
    });
}
