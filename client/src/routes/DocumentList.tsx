import { A, useParams } from '@solidjs/router';
import { createResource, createSignal, onCleanup, Show } from 'solid-js';
import type { ProjectDetail } from '@spanwise/shared/api';
import { decideRoomAccess, memberFacts } from '@spanwise/shared/access';
import { api, errorMessage } from '../api/client.ts';
import { ExportPanel } from '../components/ExportPanel.tsx';
import { RowList } from '../components/RowList.tsx';
import { formatLength, ROLE_TEXT, STATUS_TEXT } from '../lib/labels.ts';
import { useMe } from '../stores/session.tsx';
import { discardCopies, onMarksChanged, storagePrefixOf, unsavedCopies, type UnsavedCopy } from '../sync/unsaved-edits.ts';

/** What a person is asked before edits that can no longer be saved are deleted from the browser. */
const DISCARD_QUESTION =
  'Delete the edits of yours that this browser keeps and that can no longer be saved? They cannot be brought back.';

export function DocumentList() {
  const params = useParams<{ projectId: string }>();
  const projectId = () => Number(params.projectId);
  const [project, { mutate: setProject }] = createResource(projectId, api.project);
  const [documents] = createResource(projectId, api.documents);
  const me = useMe();
  /** The project once loaded; a failed resource throws when read, and its error shows below. */
  const info = () => (project.error ? undefined : project.latest);
  // Edits not saved yet (made offline, say) left in a document's layers: sent only once the
  // layer is opened again, and only if this user may still write it.
  const [copies, { refetch: readMarksAgain }] = createResource(
    // Once the list is in: only its documents' copies are read.
    () => (documents.state === 'ready' ? documents().map((d) => d.id) : false),
    (ids) => unsavedCopies(storagePrefixOf(me.id), new Set(ids)),
  );
  // Read again when a page of this browser makes such edits, saves them, or discards them.
  onCleanup(onMarksChanged(() => void readMarksAgain()));
  /** Whether the user may no longer write the copy's layer, as `p` says (the server's rule). */
  const strandedIn = (p: ProjectDetail, c: UnsavedCopy): boolean => {
    const access = decideRoomAccess(c.room, me.id, memberFacts(p, me.id, c.room.documentId));
    return !access.ok || access.readOnly;
  };
  const stranded = (c: UnsavedCopy): boolean => {
    const p = info();
    return p !== undefined && strandedIn(p, c);
  };
  // (Told apart only once the project is known: until then neither is said.)
  const toSend = () => (info() ? (copies.latest ?? []).filter((c) => !stranded(c)) : []);
  const notSendable = () => (info() ? (copies.latest ?? []).filter(stranded) : []);
  /** How many documents of `list` the copies are of. */
  const documentCount = (list: UnsavedCopy[]) => new Set(list.map((c) => c.room.documentId)).size;
  const [discarding, setDiscarding] = createSignal(false);
  const [discardFailed, setDiscardFailed] = createSignal<string | null>(null);
  const discard = async () => {
    if (!window.confirm(DISCARD_QUESTION)) return;
    setDiscarding(true);
    setDiscardFailed(null);
    try {
      // Judged again on what the server says now (what the page holds may be a kept copy, or
      // older than a role given back): only what cannot be saved is deleted.
      let now: ProjectDetail;
      try {
        now = await api.projectNow(projectId());
      } catch (err) {
        setDiscardFailed(`Nothing was discarded: ${errorMessage(err)}`);
        return;
      }
      setProject(now);
      await discardCopies(notSendable().filter((c) => strandedIn(now, c)).map((c) => c.name));
    } catch (err) {
      setDiscardFailed(`They could not all be discarded: ${errorMessage(err)}`);
    } finally {
      setDiscarding(false);
    }
  };

  return (
    <section class="page" data-unsaved-read={copies.state === 'ready' ? '' : undefined}>
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
      <Show when={documentCount(toSend())}>
        {(count) => (
          <p role="note" class="banner notice">
            {count() === 1 ? 'One document holds' : `${count()} documents hold`} edits of yours kept in this browser and
            not saved yet: they are sent when you open {count() === 1 ? 'it' : 'each'} while the server can be reached.
          </p>
        )}
      </Show>
      <Show when={documentCount(notSendable())}>
        {(count) => (
          <p role="alert" class="error banner" data-stranded>
            {count() === 1 ? 'One document holds' : `${count()} documents hold`} edits of yours kept in this browser
            that cannot be saved: you may no longer edit the layers they were made in.{' '}
            <button type="button" disabled={discarding()} onClick={() => void discard()}>
              Discard them
            </button>
            <Show when={discardFailed()}> {discardFailed()}</Show>
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
            <Show when={toSend().some((c) => c.room.documentId === d.id)}>
              <span class="unsaved-pill">not saved yet</span>
            </Show>
            <Show when={notSendable().some((c) => c.room.documentId === d.id)}>
              <span class="unsaved-pill">cannot be saved</span>
            </Show>
            <span class={`status-pill status-${d.status}`}>{STATUS_TEXT[d.status]}</span>
          </>
        )}
      </RowList>
      <Show when={info()}>{(p) => <ExportPanel projectId={p().id} role={p().role} mode={p().mode} labels={p().schema.spans.map((l) => l.name)} />}</Show>
    </section>
  );
}
