/**
 * One open layer of one document: the article with its spans, the label palette and its
 * shortcut keys, the popover over clicked spans, the annotation list, presence and the
 * connection state. Mounted per layer; unmounting closes the layer.
 */
import { createEffect, createMemo, createSelector, createSignal, onCleanup, Show } from 'solid-js';
import type { LabelSchema } from '@spanwise/shared/schema';
import { CloseCode } from '@spanwise/shared/protocol';
import { AnnotationList } from '../components/AnnotationList.tsx';
import { ArticleText, type ArticleView } from '../components/ArticleText.tsx';
import { ConnectionStatus } from '../components/ConnectionStatus.tsx';
import { LabelPalette } from '../components/LabelPalette.tsx';
import { PresenceList } from '../components/PresenceList.tsx';
import { SpanPopover } from '../components/SpanPopover.tsx';
import { isTypingTarget, selectionOffsets, trimOffsets } from '../lib/text-selection.ts';
import type { DocStatus } from '../stores/doc-status.ts';
import type { LayerOption } from '../stores/layer-choice.ts';
import { createLayerSpans } from '../stores/layer-spans.ts';
import { useMe, useSession } from '../stores/session.tsx';
import { createSpanTree } from '../stores/span-tree.ts';
import { openLayer } from '../sync/open-layer.ts';
import { userColor } from '../sync/presence.ts';
import { showPeerSelections } from '../sync/peer-highlights.ts';

export function LayerWorkspace(props: { layer: LayerOption; text: string; schema: LabelSchema; docStatus: DocStatus }) {
  const me = useMe();
  const session = useSession();
  const layer = openLayer({
    room: props.layer.room,
    user: { id: me.id, name: me.username, color: userColor(me.id) },
    storagePrefix: `u${me.id}`,
    // Leave the provider's event handler before the session change unmounts this layer.
    onClosed: (code) => code === CloseCode.unauthenticated && queueMicrotask(session.expire),
  });
  onCleanup(layer.close);

  const spans = createLayerSpans(layer.doc);
  const tree = createSpanTree(spans.spans, () => props.text.length);
  const colors = createMemo(() => new Map(props.schema.spans.map((l) => [l.name, l.color])));
  const colorOf = (label: string) => colors().get(label) ?? '#9e9e9e';

  const [focused, setFocused] = createSignal<string | null>(null);
  const view: ArticleView = {
    get text() {
      return props.text;
    },
    labelOf: (id) => spans.byId().get(id)?.label ?? '',
    colorOf,
    isFocused: createSelector(focused),
  };

  let article!: HTMLDivElement;
  let flashTimer: ReturnType<typeof setTimeout> | undefined;
  const flash = (id: string) => {
    setFocused(id);
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => setFocused(null), 1600);
  };
  onCleanup(() => clearTimeout(flashTimer));

  const [hint, setHint] = createSignal<string | null>(null);
  const readOnly = () => props.layer.readOnly === true;
  /** Edits are refused up front on a read-only layer, so the local copy never drifts. */
  const editing = <A extends unknown[]>(edit: (...args: A) => unknown) => (...args: A) => {
    if (readOnly()) setHint('This layer is read-only for you.');
    else edit(...args);
  };
  const applyLabel = (label: string) => {
    if (readOnly()) {
      setHint('This layer is read-only for you.');
      return;
    }
    const raw = selectionOffsets(article);
    const range = raw && trimOffsets(props.text, raw.start, raw.end);
    if (!range) {
      setHint('Select some text in the article first.');
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
    flash(id);
    if (props.layer.userId === me.id && props.docStatus.status() === 'not_started') {
      void props.docStatus.set('in_progress');
    }
  };

  const showSpan = (id: string) => {
    article.querySelector(`[data-annotation-id="${CSS.escape(id)}"]`)?.scrollIntoView({ block: 'center', behavior: 'smooth' });
    flash(id);
  };

  const [popover, setPopover] = createSignal<{ ids: string[]; x: number; y: number } | null>(null);
  const popoverSpans = () => (popover()?.ids ?? []).flatMap((id) => spans.byId().get(id) ?? []);
  createEffect(() => {
    if (popover() && popoverSpans().length === 0) setPopover(null);
  });

  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      setPopover(null);
      return;
    }
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTypingTarget(e.target)) return;
    const label = props.schema.spans.find((l) => l.key !== undefined && l.key === e.key);
    if (!label) return;
    e.preventDefault();
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
  showPeerSelections(() => article, layer.peers, tree);

  return (
    <div class="workspace">
      <div class="workspace-main">
        <div class="workspace-bar">
          <LabelPalette labels={props.schema.spans} onApply={applyLabel} hint={hint()} />
          <ConnectionStatus
            connection={layer.connection()}
            closedCode={layer.closedCode()}
            savingDelayed={layer.savingDelayed()}
            readOnly={readOnly()}
          />
        </div>
        <Show when={layer.closedCode() !== null && layer.closedCode() !== CloseCode.unauthenticated}>
          <p role="alert" class="error banner">
            {layer.closedCode() === CloseCode.forbidden
              ? 'You do not have access to this layer.'
              : 'The server does not know this layer.'}
          </p>
        </Show>
        <ArticleText
          tree={tree()}
          view={view}
          ref={(el) => (article = el)}
          onSpanClick={(ids, x, y) => setPopover({ ids, x, y })}
        />
      </div>
      <aside class="workspace-side">
        <PresenceList peers={layer.peers()} text={props.text} />
        <AnnotationList
          spans={spans.spans()}
          colorOf={colorOf}
          onShow={showSpan}
          onDelete={editing((id: string) => spans.remove(id))}
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
