/**
 * One open layer of one document: the article with its spans, the label palette and its
 * shortcut keys, the popover over clicked spans, the annotation list, presence and the
 * connection state. Mounted per layer; unmounting closes the layer.
 */
import { useBeforeLeave } from '@solidjs/router';
import { createEffect, createMemo, createSelector, createSignal, onCleanup, onMount, Show } from 'solid-js';
import type { LabelSchema } from '@spanwise/shared/schema';
import { CloseCode, FINAL_CLOSE_CODES } from '@spanwise/shared/protocol';
import { errorMessage } from '../api/client.ts';
import { AnnotationList } from '../components/AnnotationList.tsx';
import { ArticleText, type ArticleView } from '../components/ArticleText.tsx';
import { ConnectionStatus } from '../components/ConnectionStatus.tsx';
import { LabelPalette } from '../components/LabelPalette.tsx';
import { PresenceList } from '../components/PresenceList.tsx';
import { SpanPopover } from '../components/SpanPopover.tsx';
import { isTypingTarget, keepingSelection, selectionOffsets, trimOffsets } from '../lib/text-selection.ts';
import type { DocStatus } from '../stores/doc-status.ts';
import type { LayerOption } from '../stores/layer-choice.ts';
import { createLayerSpans } from '../stores/layer-spans.ts';
import { createUndo } from '../stores/undo.ts';
import { snapToWords } from '../lib/word-snap.ts';
import { trackDraggedSelection } from '../lib/drag-selection.ts';
import { offsetMapper } from '@spanwise/shared/offsets';
import { useMe, useSession } from '../stores/session.tsx';
import { createSpanTree } from '../stores/span-tree.ts';
import { closedBanner } from '../sync/closed-text.ts';
import { openLayer, RETRY_BY_HAND_CODES } from '../sync/open-layer.ts';
import { userColor, type Peer } from '../sync/presence.ts';
import { showPeerSelections } from '../sync/peer-highlights.ts';
import { storagePrefixOf } from '../sync/unsaved-edits.ts';

/** Why this user cannot change the layer now, in a few words for a hint; null when they can. */
function lockedHint(readOnly: boolean, writesRefused: boolean, closed: boolean, reopening = false): string | null {
  if (reopening) return 'This layer opens again in a moment.';
  if (readOnly) return 'This layer is read-only for you.';
  if (writesRefused) return 'The server does not save your changes to this layer: you may only view it.';
  if (closed) return 'This layer is closed: changes cannot be saved.';
  return null;
}

/** What a person leaving the layer with edits not yet saved is asked. */
function leaveQuestion(keptLocally: boolean): string {
  return keptLocally
    ? 'Some of your edits are not saved yet. They are kept in this browser and sent the next time you open this layer while the server can be reached. Leave anyway?'
    : 'Some of your edits are not saved yet, and this browser cannot keep them: they are lost if you leave. Leave anyway?';
}

/**
 * What a person is asked before the changes the server could not take (too large, or unreadable)
 * are deleted, with the rest of what it has not saved since.
 */
const DISCARD_UNSENDABLE_QUESTION =
  'Delete your changes to this layer that the server could not take, and those made since? Nothing of them was saved and they cannot be brought back; the layer opens again as the server holds it.';

/** What a person is asked before the edits this browser holds and the server refused are deleted. */
const DISCARD_QUESTION =
  'Delete the edits of yours to this layer that this browser keeps and the server did not save? They cannot be brought back.';

interface LayerWorkspaceProps {
  layer: LayerOption;
  /** Whether the user may only view the layer, as the project now says (it may change while open). */
  readOnly: boolean;
  text: string;
  schema: LabelSchema;
  docStatus: DocStatus;
  /**
   * The server says this user's access to the layer changed: learn the new role. `refused`: it
   * closed the layer (4403); opened again should the role still allow it.
   */
  onAccessChanged?: (refused?: boolean) => void;
  /** A member's name by id: peers are shown by who the server let in, not by what they say. */
  memberName?: (id: number) => string | undefined;
}

export function LayerWorkspace(props: LayerWorkspaceProps) {
  // Opened afresh once the browser's copy of the layer is deleted (its unsaved edits discarded).
  const [opening, setOpening] = createSignal({});
  const [discardFailed, setDiscardFailed] = createSignal<string | null>(null);
  const reopen = (failure: string | null) => {
    setDiscardFailed(failure);
    setOpening({});
  };
  return (
    <Show when={opening()} keyed>
      {(_) => <OpenedLayerWorkspace {...props} discardFailed={discardFailed()} onReopen={reopen} />}
    </Show>
  );
}

function OpenedLayerWorkspace(
  props: LayerWorkspaceProps & {
    /** Why the last attempt to discard this layer's copy failed, if it did. */
    discardFailed: string | null;
    /** The layer closed to discard its copy: open it again (the copy kept if `failure`). */
    onReopen: (failure: string | null) => void;
  },
) {
  const me = useMe();
  const session = useSession();
  /** Another tab is deleting this layer's copy: the layer has let go, and opens again once it is done. */
  const [reopening, setReopening] = createSignal(false);
  const layer = openLayer({
    room: props.layer.room,
    user: { id: me.id, name: me.username, color: userColor(me.id) },
    storagePrefix: storagePrefixOf(me.id),
    // Leave the provider's event handler before the session change unmounts this layer.
    onClosed: (code) => {
      if (code === CloseCode.unauthenticated) queueMicrotask(session.expire);
      // Signed in as someone else in another tab: this one learns who (the session is sound,
      // and so are the copies kept for it).
      if (code === CloseCode.otherUser) queueMicrotask(session.retry);
      // The role may have changed so that this layer is no longer open to the user: the page
      // learns the new role and may move to a layer that is.
      // Opened again should the role still allow it, unless that would lose edits only this page
      // holds (its copy in the browser did not open).
      if (code === CloseCode.forbidden) props.onAccessChanged?.(!(layer.unsaved() && layer.localCopy() !== 'open'));
    },
    onAccessChanged: () => props.onAccessChanged?.(),
    // Another tab is deleting this layer's copy: opened again once it is done.
    onCopyDiscarded: (done) => {
      setReopening(true);
      void done.then(() => props.onReopen(null));
    },
  });
  onCleanup(layer.close);

  // Edits the server has yet to store are kept in this browser and sent the next time the layer
  // is open while the server can be reached: leaving is allowed, but not without being asked (a
  // tab closed or reloaded — browsers ask only once the person has used the page — or another
  // page of the app). Not when they will never be sent: the layer is read-only to this user, the
  // server refuses their edits, or the layer is closed for good (the page says so).
  const askBeforeLeaving = () =>
    layer.unsaved() && !props.readOnly && !layer.writesRefused() && !reopening() && !FINAL_CLOSE_CODES.has(layer.closedCode() ?? 0);
  const onBeforeUnload = (e: BeforeUnloadEvent) => {
    if (!askBeforeLeaving()) return;
    e.preventDefault();
    e.returnValue = ''; // (older browsers ask only when it is set)
  };
  window.addEventListener('beforeunload', onBeforeUnload);
  onCleanup(() => window.removeEventListener('beforeunload', onBeforeUnload));
  let asking = false;
  useBeforeLeave((e) => {
    if (e.defaultPrevented || !askBeforeLeaving()) return;
    e.preventDefault();
    if (asking) return; // (clicked again before the question came up)
    asking = true;
    // Asked once the router is done with this navigation (back and forward too), as its
    // documentation does: then a retry goes where the person meant to.
    setTimeout(() => {
      asking = false;
      if (window.confirm(leaveQuestion(layer.localCopy() === 'open'))) e.retry(true);
    }, 100);
  });

  // A peer's presence says who they are; the server checks its id, and the name and colour
  // shown come from that id (the name from the project's members).
  // (Each kept while its peer is, so that the list of who is here re-renders only who moved.)
  const shown = new WeakMap<Peer, Peer>();
  const peers = createMemo(() =>
    layer.peers().map((p) => {
      const name = props.memberName?.(p.user.id) ?? p.user.name;
      const kept = shown.get(p);
      if (kept?.user.name === name) return kept;
      const peer = { ...p, user: { id: p.user.id, name, color: userColor(p.user.id) } };
      shown.set(p, peer);
      return peer;
    }),
  );
  // A peer's edit re-renders part of the article: a selection being made here survives it.
  // (Not one of this page's own: a label clears the selection it was made on, and putting one
  // back makes the browser lay out the whole article, ~0.2 s on a long one.)
  const spans = createLayerSpans(layer.doc, (apply, local) => (local ? apply() : keepingSelection(article, apply)));
  const history = createUndo(layer.doc);
  // Offsets shown as the exports count them: in code points (an emoji is one, not two).
  const offsets = createMemo(() => offsetMapper(props.text));
  /** A span's offset in code points; one past the text, or inside a surrogate pair (a span some other client wrote so), at the nearest before. */
  const codePointOffset = (i: number) => {
    const at = Math.min(props.text.length, i); // (a whole number from 0 up: see readAnnotation)
    const high = props.text.charCodeAt(at - 1);
    const low = props.text.charCodeAt(at);
    return offsets().toCodePointOffset(high >= 0xd800 && high <= 0xdbff && low >= 0xdc00 && low <= 0xdfff ? at - 1 : at);
  };
  const blocks = createSpanTree(spans.spans, () => props.text);
  const colors = createMemo(() => new Map(props.schema.spans.map((l) => [l.name, l.color])));
  const colorOf = (label: string) => colors().get(label) ?? '#9e9e9e';

  const [focused, setFocused] = createSignal<string | null>(null);
  const view: ArticleView = {
    get text() {
      return props.text;
    },
    labelOf: spans.labelOf,
    colorOf,
    isFocused: createSelector(focused),
  };

  let article!: HTMLDivElement;
  /** The bar of labels and status, which stays at the top of the window over the article. */
  let bar!: HTMLDivElement;
  // What scrolls into view (a span shown, the article focused from the keyboard) does so below
  // the bar, not under it.
  const barSize = new ResizeObserver(() => (document.documentElement.style.scrollPaddingTop = `${bar.offsetHeight + 8}px`));
  onMount(() => barSize.observe(bar));
  onCleanup(() => {
    barSize.disconnect();
    document.documentElement.style.scrollPaddingTop = '';
  });
  let flashTimer: ReturnType<typeof setTimeout> | undefined;
  const flash = (id: string) => {
    setFocused(id);
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => setFocused(null), 1600);
  };
  onCleanup(() => clearTimeout(flashTimer));

  // Edits made here that the server will not store while this user may not change the layer
  // (made offline before they lost the right, say): said once the socket open now has synced,
  // on the server's word (it refused what the socket's sync sent) or the role the page learnt
  // then (a sync that only deletes is not refused, nor stored), and the browser's copy can be
  // deleted to see the layer as it is saved. (Said on while the copy is being deleted.)
  // Likewise edits the server could not take (1009, 4400): *Try again* would send the same.
  const [discarding, setDiscarding] = createSignal<'stranded' | 'unsendable' | null>(null);
  const strandedEdits = () => discarding() === 'stranded' || (layer.unsaved() && layer.synced() && (layer.writesRefused() || props.readOnly));
  const unsendableEdits = () => RETRY_BY_HAND_CODES.has(layer.closedCode() ?? 0);
  const discard = async (which: 'stranded' | 'unsendable') => {
    if (!window.confirm(which === 'stranded' ? DISCARD_QUESTION : DISCARD_UNSENDABLE_QUESTION)) return;
    // What came meanwhile (the role given back, say, and its reconnect) is heard first.
    await new Promise((r) => setTimeout(r));
    // (Not while this copy is being deleted already, here or in another tab.)
    if (goingAway() || !(which === 'stranded' ? strandedEdits() : unsendableEdits())) return;
    setDiscarding(which);
    layer.discardLocalCopy().then(
      () => props.onReopen(null),
      (err: unknown) => props.onReopen(`Your edits to this layer could not be discarded: ${errorMessage(err)}.`),
    );
  };
  /** The layer has let go of its doc to open again (its copy deleted here or in another tab). */
  const goingAway = () => discarding() !== null || reopening();

  const [hint, setHint] = createSignal<string | null>(null);
  const locked = () => lockedHint(props.readOnly, layer.writesRefused(), layer.closedCode() !== null, goingAway());
  /** What the page says of a close after which the layer stopped (nothing on signing out). */
  const closedNotice = () => {
    const code = layer.closedCode();
    const text = code === null ? null : closedBanner(code, layer.localCopy() === 'open');
    return code !== null && text !== null ? { code, text } : null;
  };
  /**
   * Edits are refused up front on a layer this user may not change (read-only, refused by the
   * server, or closed), so the local copy never drifts from what is saved.
   */
  const editing = <A extends unknown[]>(edit: (...args: A) => unknown) => (...args: A) => {
    const why = locked();
    if (why) setHint(why);
    else edit(...args);
  };
  const drags = trackDraggedSelection(() => article);
  /** `exact`: the selection as it is, even one dragged (Alt with a label button). */
  const applyLabel = (label: string, exact = false) => {
    const why = locked();
    if (why) {
      setHint(why);
      return;
    }
    const raw = selectionOffsets(article);
    const trimmed = raw && trimOffsets(props.text, raw.start, raw.end);
    const range = trimmed && !exact && drags.isDragged(raw) ? snapToWords(props.text, trimmed.start, trimmed.end) : trimmed;
    if (!range) {
      setHint('Select some text in the article first.');
      return;
    }
    // The same text with the same label already, of this user's: shown, not made twice (it
    // would count twice in every export and in agreement). (Another's, on a layer two people
    // write, is theirs: both stand.)
    const twin = spans.spans().find((s) => s.start === range.start && s.end === range.end && s.label === label && s.author === me.id);
    if (twin) {
      window.getSelection()?.removeAllRanges();
      showSpan(twin.id);
      setHint(`That text is labelled ${label} already.`);
      return;
    }
    setHint(null);
    const id = spans.add({
      label,
      start: range.start,
      end: range.end,
      quote: props.text.slice(range.start, range.end),
      author: me.id,
    });
    window.getSelection()?.removeAllRanges();
    drags.forget();
    keyboardFrom?.(range);
    flash(id);
    if (props.layer.userId === me.id && props.docStatus.status() === 'not_started') {
      void props.docStatus.set('in_progress', true);
    }
  };

  let showing = 0;
  onCleanup(() => cancelAnimationFrame(showing));
  /** Where the article's arrow keys go on from (see ArticleText). */
  let keyboardFrom: ((at: { start: number; end: number }) => void) | undefined;
  const showSpan = (id: string) => {
    const shown = spans.spanOf(id);
    if (shown) keyboardFrom?.({ start: shown.start, end: shown.end });
    const mark = () => article.querySelector(`[data-annotation-id="${CSS.escape(id)}"]`);
    cancelAnimationFrame(showing); // (the span shown before, if still on its way)
    mark()?.scrollIntoView({ block: 'center' });
    // Paragraphs out of view have a guessed height until drawn (ArticleText): those drawn as the
    // page got there may have moved the span. Once they are, to where it is now.
    showing = requestAnimationFrame(() => (showing = requestAnimationFrame(() => mark()?.scrollIntoView({ block: 'center' }))));
    flash(id);
  };

  const [popover, setPopover] = createSignal<{ ids: string[]; x: number; y: number } | null>(null);
  const popoverSpans = () => (popover()?.ids ?? []).flatMap((id) => spans.spanOf(id) ?? []);
  createEffect(() => {
    if (popover() && popoverSpans().length === 0) setPopover(null);
  });

  const undoOrRedo = (redo: boolean) =>
    editing(() => {
      if (!(redo ? history.redo() : history.undo())) setHint(redo ? 'Nothing to redo.' : 'Nothing of yours to undo on this page.');
      else setHint(null);
    })();
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      setPopover(null);
      return;
    }
    // Ctrl+Z (⌘Z) undoes this page's last edit; Ctrl+Shift+Z or Ctrl+Y redoes it. Not in a
    // field, which has its own.
    const letter = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && !e.altKey && (letter === 'z' || letter === 'y') && !e.defaultPrevented && !isTypingTarget(e.target)) {
      e.preventDefault();
      undoOrRedo(letter === 'y' || e.shiftKey);
      return;
    }
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTypingTarget(e.target)) return;
    const label = props.schema.spans.find((l) => l.key !== undefined && l.key === e.key);
    if (!label) return;
    e.preventDefault();
    const inPopover = e.target instanceof Element && e.target.closest('[role="dialog"]');
    if (inPopover && locked()) {
      setHint(locked());
      return;
    }
    if (inPopover) {
      // About the popover's spans, not the selection behind it: relabels the span whose row has
      // the focus, or the only one shown; never adds one.
      const row = (e.target as Element).closest('[data-span-id]')?.getAttribute('data-span-id');
      const shown = popoverSpans();
      const id = row ?? (shown.length === 1 ? shown[0]!.id : null);
      if (id) editing(spans.relabel)(id, label.name);
      else setHint('Choose the annotation to relabel in the popover, or close it (Esc) to label the selection.');
      return;
    }
    applyLabel(label.name);
  };
  window.addEventListener('keydown', onKey);
  onCleanup(() => window.removeEventListener('keydown', onKey));

  // Share my selection with the others in the layer (at most once a frame).
  let frame = 0;
  const onSelection = () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => layer.setSelection(selectionOffsets(article)));
  };
  document.addEventListener('selectionchange', onSelection);
  onCleanup(() => {
    document.removeEventListener('selectionchange', onSelection);
    cancelAnimationFrame(frame);
  });
  showPeerSelections(() => article, peers, blocks);

  return (
    <div class="workspace" data-unsaved={layer.unsaved() ? '' : undefined}>
      <div class="workspace-main">
        <div class="workspace-bar" ref={(el) => (bar = el)}>
          <LabelPalette labels={props.schema.spans} onApply={applyLabel} hint={hint() ?? locked()} disabled={locked() !== null} />
          <div class="history" role="group" aria-label="History">
            <button
              type="button"
              aria-keyshortcuts="Control+Z Meta+Z"
              title="Undo your last edit on this page (Ctrl+Z)"
              disabled={locked() !== null || !history.canUndo()}
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => undoOrRedo(false)}
            >
              Undo
            </button>
            <button
              type="button"
              aria-keyshortcuts="Control+Shift+Z Control+Y Meta+Shift+Z"
              title="Redo (Ctrl+Shift+Z)"
              disabled={locked() !== null || !history.canRedo()}
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => undoOrRedo(true)}
            >
              Redo
            </button>
          </div>
          <ConnectionStatus
            connection={goingAway() ? 'connecting' : layer.connection()}
            closedCode={layer.closedCode()}
            savingDelayed={layer.savingDelayed()}
            readOnly={props.readOnly}
            writesRefused={layer.writesRefused()}
            unsaved={layer.unsaved()}
            keptLocally={layer.localCopy() === 'open'}
          />
        </div>
        <Show when={reopening()}>
          <p role="note" class="banner notice">
            Edits of yours to this layer that could not be saved are being discarded in another tab:
            the layer opens again in a moment, as the server holds it.
          </p>
        </Show>
        <Show when={layer.localCopy() === 'failed'}>
          <p role="note" class="banner notice">
            This browser could not open its storage for this layer, or it is full, so edits made
            while the server cannot be reached are kept only as long as this page stays open.
          </p>
        </Show>
        <Show when={closedNotice()}>
          {(notice) => (
            <p role="alert" class="error banner">
              {notice().text}
              <Show when={RETRY_BY_HAND_CODES.has(notice().code)}>
                {' '}
                <button type="button" disabled={goingAway()} onClick={() => layer.retry()}>
                  Try again
                </button>{' '}
                <button type="button" disabled={goingAway()} onClick={() => void discard('unsendable')}>
                  Discard them
                </button>
              </Show>
            </p>
          )}
        </Show>
        <Show when={strandedEdits()}>
          <p role="alert" class="error banner">
            The server did not save edits of yours to this layer, and you may not change it now: this
            browser keeps them, and only you see them. They are sent if you may edit the layer again
            the next time you open it.{' '}
            <button type="button" disabled={discarding() !== null} onClick={() => void discard('stranded')}>
              Discard them
            </button>
          </p>
        </Show>
        <Show when={props.discardFailed}>
          <p role="alert" class="error banner">
            {props.discardFailed}
          </p>
        </Show>
        <Show when={layer.writesRefused() && !props.readOnly && !strandedEdits() && !goingAway()}>
          <p role="alert" class="error banner">
            The server did not save your latest changes to this layer: you may only view it now.
          </p>
        </Show>
        <ArticleText
          blocks={blocks()}
          view={view}
          ref={(el) => (article = el)}
          onSpanClick={(ids, x, y) => setPopover({ ids, x, y })}
          keyboardFrom={(place) => (keyboardFrom = place)}
          topInset={() => Math.max(0, bar.getBoundingClientRect().bottom)}
        />
      </div>
      <aside class="workspace-side">
        <PresenceList peers={peers()} text={props.text} />
        <AnnotationList
          spans={spans.spans()}
          colorOf={colorOf}
          onShow={showSpan}
          offsetOf={codePointOffset}
          onDelete={locked() === null ? editing((id: string) => spans.remove(id)) : undefined}
        />
      </aside>
      <Show when={popover()}>
        {(p) => (
          <SpanPopover
            spans={popoverSpans()}
            labels={props.schema.spans}
            colorOf={colorOf}
            x={p().x}
            y={p().y}
            readOnly={locked() !== null}
            actions={{
              relabel: editing(spans.relabel),
              setAttribute: editing(spans.setAttribute),
              remove: editing(spans.remove),
              close: () => setPopover(null),
            }}
          />
        )}
      </Show>
    </div>
  );
}
