import { A, useParams } from '@solidjs/router';
import { createResource, Show } from 'solid-js';
import { api } from '../api/client.ts';
import { ExportPanel } from '../components/ExportPanel.tsx';
import { RowList } from '../components/RowList.tsx';
import { formatLength, ROLE_TEXT, STATUS_TEXT } from '../lib/labels.ts';

export function DocumentList() {
  const params = useParams<{ projectId: string }>();
  const projectId = () => Number(params.projectId);
  const [project] = createResource(projectId, api.project);
  const [documents] = createResource(projectId, api.documents);
  /** The project once loaded; a failed resource throws when read, and its error shows below. */
  const info = () => (project.error ? undefined : project.latest);

  return (
    <section class="page">
      <nav class="crumbs" aria-label="Breadcrumb">
        <A href="/">Projects</A>
      </nav>
      <h1>{info()?.name ?? 'Project'}</h1>
      <Show when={info()}>
        {(p) => (
          <p class="muted">
            You are {ROLE_TEXT[p().role].toLowerCase()} · {p().members.length} members ·{' '}
            {p().mode === 'blind' ? 'blind review: annotators see only their own layer' : 'open: one shared layer'}
          </p>
        )}
      </Show>
      <RowList
        resource={documents}
        empty="No documents yet."
        href={(d) => `/projects/${projectId()}/documents/${d.id}`}
      >
        {(d) => (
          <>
            <span class="row-title">{d.title}</span>
            <span class="row-meta">{formatLength(d.length)}</span>
            <span class={`status-pill status-${d.status}`}>{STATUS_TEXT[d.status]}</span>
          </>
        )}
      </RowList>
      <Show when={info()}>{(p) => <ExportPanel projectId={p().id} role={p().role} mode={p().mode} />}</Show>
    </section>
  );
}
