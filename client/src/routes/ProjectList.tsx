import { createResource } from 'solid-js';
import { api } from '../api/client.ts';
import { RowList } from '../components/RowList.tsx';
import { ROLE_TEXT } from '../lib/labels.ts';

export function ProjectList() {
  const [projects] = createResource(api.projects);
  return (
    <section class="page">
      <h1>Projects</h1>
      <RowList resource={projects} empty="You are not a member of any project yet." href={(p) => `/projects/${p.id}`}>
        {(p) => (
          <>
            <span class="row-title">{p.name}</span>
            <span class="row-meta">
              {ROLE_TEXT[p.role]} · {p.mode === 'blind' ? 'blind review' : 'open layer'}
            </span>
          </>
        )}
      </RowList>
    </section>
  );
}
