/**
 * `/projects/:projectId/documents/:documentId`: the document, the layer chosen by `?layer=`
 * (the user's own by default, gold in open mode), and the user's status on the document.
 */
import { A, useLocation, useNavigate, useParams, useSearchParams } from '@solidjs/router';
import { createEffect, createMemo, createResource, createSignal, onCleanup, Show } from 'solid-js';
import { api, ApiError, errorMessage } from '../api/client.ts';
import { LayerSelect } from '../components/LayerSelect.tsx';
import { StatusButton } from '../components/StatusButton.tsx';
import { createDocStatus } from '../stores/doc-status.ts';
import { layerOptions, pickLayer, type LayerOption } from '../stores/layer-choice.ts';
import { useMe } from '../stores/session.tsx';
import { LayerWorkspace } from './LayerWorkspace.tsx';

/** How soon the role is asked for again after a failed ask, doubling up to the most. */
const ROLE_RETRY_MIN_MS = 1_000;
const ROLE_RETRY_MAX_MS = 30_000;
/**
 * Times one page opens a layer again that the server refused (4403) while the project, asked
 * again, still lists it: the refusal came from a moment when it was not (a membership taken
 * away and given back). Past it the page says why it stopped, rather than going round.
 */
const MAX_REOPENS_AFTER_REFUSAL = 3;

export function AnnotatePage() {
  const params = useParams<{ projectId: string; documentId: string }>();
  const [search, setSearch] = useSearchParams<{ layer?: string }>();
  const me = useMe();
  const projectId = () => Number(params.projectId);
  const documentId = () => Number(params.documentId);

  const [project, { mutate: setProject }] = createResource(projectId, api.project);
  /**
   * Learns the user's role again (the server says it changed), from the server itself (a kept
   * copy would hold the role as it was). A failure keeps what the page had rather than taking
   * the open layer away, and asks again, sooner at first (the server busy, or away for a
   * moment), until it answers, the server refuses for good (a 4xx), or a newer ask or another
   * page takes over.
   */
  let asking = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  /** The layer the server refused (4403) since the role was last learnt, and how often one was opened again. */
  let refusedRoom: string | undefined;
  let reopened = 0;
  /** Bumped to open the layer again (a fresh socket, a fresh look at the role). */
  const [opening, setOpening] = createSignal(0);
  const learnt = (p: Awaited<ReturnType<typeof api.projectNow>>) => {
    setProject(p);
    const refused = refusedRoom;
    refusedRoom = undefined;
    // Still listed: opened again, to be let in or refused afresh.
    if (refused && layer()?.room === refused && reopened < MAX_REOPENS_AFTER_REFUSAL) {
      reopened++;
      setOpening((n) => n + 1);
    }
  };
  const refreshRole = (refused = false) => {
    if (refused) refusedRoom = layer()?.room;
    const id = projectId();
    const ask = ++asking;
    let delay = ROLE_RETRY_MIN_MS;
    const attempt = () => {
      if (ask !== asking || projectId() !== id) return;
      api.projectNow(id).then(
        (p) => ask === asking && projectId() === id && learnt(p),
        (err: unknown) => {
          if (err instanceof ApiError && err.status >= 400 && err.status < 500) return;
          retry = setTimeout(attempt, delay);
          delay = Math.min(delay * 2, ROLE_RETRY_MAX_MS);
        },
      );
    };
    clearTimeout(retry);
    attempt();
  };
  onCleanup(() => {
    asking++;
    clearTimeout(retry);
  });
  const [doc] = createResource(documentId, api.document);
  /**
   * The document of the address, once loaded: not the one before it, which the resource holds
   * until the next answers (a jump from one document to another keeps this page).
   */
  const current = () => {
    const loaded = doc.error ? undefined : doc.latest;
    return loaded?.id === documentId() ? loaded : undefined;
  };
  // A document of another project than the address names (one the user is a member of too):
  // its own project's address. (A project not there, or not the user's, says so instead.)
  const navigate = useNavigate();
  const location = useLocation();
  createEffect(() => {
    const d = current();
    if (d && info() && d.projectId !== projectId()) navigate(`/projects/${d.projectId}/documents/${d.id}${location.search}`, { replace: true });
  });
  const docStatus = createDocStatus(projectId, documentId);
  /** The project of the address once loaded; a failed resource throws when read, and `failure` shows why. */
  const info = () => {
    const loaded = project.error ? undefined : project.latest;
    return loaded?.id === projectId() ? loaded : undefined;
  };

  const options = createMemo(() => {
    const p = info();
    // (Only for a document of that project: the project's rules are not another's.)
    return p && current()?.projectId === p.id ? layerOptions(p, me, documentId()) : [];
  });
  const layer = createMemo<LayerOption | undefined>(
    () => (options().length > 0 ? pickLayer(options(), search.layer) : undefined),
    undefined,
    { equals: (a, b) => a?.room === b?.room },
  );
  /** The layer to show: a fresh object (so a fresh workspace) when it is to be opened again. */
  const shown = createMemo(() => {
    opening();
    const chosen = layer();
    return chosen && { ...chosen };
  });
  /** The open layer's read-only flag as the project now says (a role may change while open). */
  const readOnly = () => options().find((o) => o.room === layer()?.room)?.readOnly === true;
  const failure = () => project.error ?? doc.error;

  return (
    <section class="page annotate">
      <nav class="crumbs" aria-label="Breadcrumb">
        <A href="/">Projects</A>
        <span aria-hidden="true"> / </span>
        <A href={`/projects/${projectId()}`}>{info()?.name ?? 'Project'}</A>
      </nav>
      <Show when={!failure()} fallback={<p role="alert" class="error">{errorMessage(failure())}</p>}>
        <Show when={current() && info() && layer()} fallback={<p class="muted">Loading…</p>}>
          <header class="doc-header">
            <h1>{current()!.title}</h1>
            <p class="muted doc-meta">
              {[current()!.source, current()!.publishedAt].filter(Boolean).join(' · ')}
              <Show when={/^https?:\/\//i.test(current()!.url ?? '') && current()!.url}>
                {(url) => (
                  <>
                    {' · '}
                    <a href={url()} target="_blank" rel="noreferrer noopener">
                      original
                    </a>
                  </>
                )}
              </Show>
            </p>
            <div class="toolbar">
              <Show when={options().length > 1}>
                <LayerSelect options={options()} value={layer()!.key} onChange={(key) => setSearch({ layer: key })} />
              </Show>
              {/* (A viewer marks no progress: the server refuses it.) */}
              <Show when={info() && info()!.role !== 'viewer'}>
                <StatusButton
                  status={docStatus.status()}
                  saving={docStatus.saving()}
                  error={docStatus.error()}
                  onChange={(s) => void docStatus.set(s)}
                />
              </Show>
            </div>
          </header>
          <Show when={search.layer && search.layer !== layer()!.key}>
            <p role="note" class="banner notice">
              The layer “{search.layer}” is not open to you here; showing {layer()!.name.toLowerCase()} instead.
            </p>
          </Show>
          <Show when={shown()} keyed>
            {(chosen) => (
              <LayerWorkspace
                layer={chosen}
                readOnly={readOnly()}
                onAccessChanged={refreshRole}
                memberName={(id) => info()?.members.find((m) => m.id === id)?.username}
                text={current()!.text}
                schema={info()!.schema}
                docStatus={docStatus}
              />
            )}
          </Show>
        </Show>
      </Show>
    </section>
  );
}
