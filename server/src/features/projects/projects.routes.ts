import { Hono } from 'hono';
import { labelSchemaSchema, memberBody, newDocumentBody, type Member, type ProjectDetail, type ProjectSummary } from '@spanwise/shared';
import { withLargeBody } from '../../http/body-limits.ts';
import { AppError, forbidden, idParam, jsonBody, notFound, requireJson } from '../../http/errors.ts';
import type { UsersRepository } from '../auth/users.repository.ts';
import { requireUser, type AppEnv } from '../../http/session.ts';
import type { AccessService } from '../access/access.service.ts';
import type { DocumentsService } from '../documents/documents.service.ts';
import type { ProjectsRepository } from './projects.repository.ts';

const notOwner = () => forbidden('only the project owner may change members');

export function projectsRoutes(
  projects: ProjectsRepository,
  access: AccessService,
  documents: DocumentsService,
  users: UsersRepository,
  options: {
    /** A new document's body of which no byte arrives for this long is given up (UPLOAD_STALL_MS). */
    uploadStallMs: number;
  },
) {
  /** The owner's guard for member changes (checked again as the change is made); returns the project id. */
  const asOwner = async (userId: number, param: string | undefined) => {
    const id = idParam(param, 'project');
    if ((await access.projectRole(userId, id)).role !== 'owner') throw notOwner();
    return id;
  };
  return new Hono<AppEnv>()
    .get('/projects', async (c) => {
      const user = requireUser(c.get('user'));
      const rows = await projects.listForUser(user.id);
      return c.json(rows.map((r): ProjectSummary => ({ id: r.id, name: r.name, role: r.role, mode: r.mode })));
    })
    .get('/projects/:id', async (c) => {
      const user = requireUser(c.get('user'));
      const id = idParam(c.req.param('id'), 'project');
      const { project: row, role } = await access.projectRole(user.id, id);
      // In a blind project an annotator works alone: the others' names are not theirs to know
      // (curators and owners, who may open their layer, are).
      const members = (await projects.members(id)).filter((m) => !(row.mode === 'blind' && role === 'annotator' && m.role === 'annotator' && m.id !== user.id));
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
      const { project, role } = await access.projectRole(user.id, id);
      return c.json(await documents.list(id, user.id, { mode: project.mode, role }));
    })
    .put('/projects/:id/members', async (c) => {
      const user = requireUser(c.get('user'));
      const id = await asOwner(user.id, c.req.param('id'));
      const body = await jsonBody(c, memberBody);
      const target = await users.findByUsername(body.username);
      if (!target) throw new AppError(404, 'not_found', `no user ${body.username}`, 'username');
      const outcome = await projects.changeMember(id, target.id, body.role, user.id);
      if (outcome === 'forbidden') throw notOwner();
      if (outcome === 'last_owner') throw new AppError(400, 'last_owner', 'a project keeps at least one owner', 'role');
      access.changed(target.id);
      const member: Member = { id: target.id, username: target.username, role: body.role };
      return c.json(member);
    })
    .delete('/projects/:id/members/:userId', async (c) => {
      const user = requireUser(c.get('user'));
      const id = await asOwner(user.id, c.req.param('id'));
      const targetId = idParam(c.req.param('userId'), 'member');
      const outcome = await projects.changeMember(id, targetId, null, user.id);
      if (outcome === 'forbidden') throw notOwner();
      if (outcome === 'not_member') throw notFound(`member ${targetId}`);
      if (outcome === 'last_owner') throw new AppError(400, 'last_owner', 'a project keeps at least one owner');
      access.changed(targetId);
      return c.body(null, 204);
    })
    .post('/projects/:id/documents', async (c) => {
      const user = requireUser(c.get('user'));
      const id = idParam(c.req.param('id'), 'project');
      const { role } = await access.projectRole(user.id, id);
      if (role !== 'owner') throw forbidden('only the project owner may add documents');
      requireJson(c); // before buffering up to 16 MiB of something else
      return withLargeBody(
        c,
        options.uploadStallMs,
        () => jsonBody(c, newDocumentBody),
        async (body) => {
          // (Checked again as it is written: the upload may have taken minutes.)
          const docId = await documents.create(id, body, user.id);
          if (docId === null) throw forbidden('only the project owner may add documents');
          return c.json({ id: docId }, 201);
        },
      );
    });
}
