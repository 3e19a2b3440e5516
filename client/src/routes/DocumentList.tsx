import { A, useParams } from '@solidjs/router';
import { createResource, Show } from 'solid-js';
import { api } from '../api/client.ts';
import { ExportPanel } from '../components/ExportPanel.tsx';
import { RowList } from '../components/RowList.tsx';
import { formatLength, ROLE_TEXT, STATUS_TEXT } from '../lib/labels.ts';
import { useMe } from '../stores/session.tsx';
import { documentsWithUnsavedEdits } from '../sync/unsaved-edits.ts';

export function DocumentList() {
  const params = useParams<{ projectId: string }>();
  const projectId = () => Number(params.projectId);
  const [project] = createResource(projectId, api.project);
  const [documents] = createResource(projectId, api.documents);
  const me = useMe();
  // Edits not saved yet (made offline, say) left in a document: sent only once it is opened again.
  const [unsaved] = createResource(
    // Once the list is in: only its documents' copies are read.
    () => (documents.state === 'ready' ? documents().map((d) => d.id) : false),
    (ids) => documentsWithUnsavedEdits(`u${me.id}`, new Set(ids)),
  );
  const holdsUnsaved = (id: number) => unsaved.state === 'ready' && unsaved().has(id);
  // (A failed resource throws when read: its error shows in the list, as the project's does.)
  const unsavedHere = () => (documents.error ? [] : (documents.latest ?? [])).filter((d) => holdsUnsaved(d.id)).length;
  /** The project once loaded; a failed resource throws when read, and its error shows below. */
  const info = () => (project.error ? undefined : project.latest);

  return (
    <section class="page" data-unsaved-read={unsaved.state === 'ready' ? '' : undefined}>
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
      <Show when={unsavedHere() > 0}>
        <p role="note" class="banner notice">
          {unsavedHere() === 1 ? 'One document holds' : `${unsavedHere()} documents hold`} edits of yours kept in
          this browser and not saved yet: they are sent when you open {unsavedHere() === 1 ? 'it' : 'each'} while
          the server can be reached.
        </p>
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
            <Show when={holdsUnsaved(d.id)}>
              <span class="unsaved-pill">not saved yet</span>
            </Show>
            <span class={`status-pill status-${d.status}`}>{STATUS_TEXT[d.status]}</span>
          </>
        )}
      </RowList>
      <Show when={info()}>{(p) => <ExportPanel projectId={p().id} role={p().role} mode={p().mode} />}</Show>
    </section>
  );
}
