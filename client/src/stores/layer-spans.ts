/**
 * A layer's spans as Solid signals: one observeDeep on the `annotations` map feeds one signal;
 * unchanged annotations keep their object identity, so lists keyed by them re-render only
 * what changed. Each span's label is also kept apart (`labelOf`), so that what shows one span's
 * label is told only when that label changes, not at every edit of the layer.
 */
import { batch, createMemo, createSignal, onCleanup } from 'solid-js';
import { createStore } from 'solid-js/store';
import type * as Y from 'yjs';
import {
  addSpan,
  annotationsMap,
  deleteAnnotation,
  listSpans,
  relabel,
  setAttribute,
  type NewSpan,
  type SpanAnnotation,
} from '@spanwise/shared/layer';

function same(a: SpanAnnotation, b: SpanAnnotation): boolean {
  return (
    a.label === b.label &&
    a.start === b.start &&
    a.end === b.end &&
    a.quote === b.quote &&
    a.updatedAt === b.updatedAt &&
    a.entityId === b.entityId &&
    a.author === b.author &&
    JSON.stringify(a.attributes) === JSON.stringify(b.attributes)
  );
}

/**
 * `around`: how a change is applied, and whether it was made here (`local`) or came from
 * elsewhere (the page keeps the reader's selection across another's edit).
 */
export function createLayerSpans(doc: Y.Doc, around: (apply: () => void, local: boolean) => void = (apply) => apply()) {
  let byIdCache = new Map<string, SpanAnnotation>();
  // (Keyed '#' + id: a span's id is any string, and a store, an object, has its own
  // properties: '__proto__', 'constructor'.)
  const [labels, setLabels] = createStore<Record<string, string | undefined>>({});
  const read = () => {
    const next = new Map<string, SpanAnnotation>();
    const list = listSpans(doc).map((s) => {
      const prev = byIdCache.get(s.id);
      const kept = prev && same(prev, s) ? prev : s;
      next.set(s.id, kept);
      return kept;
    });
    // (A store's property tells only who read it, and only when its value changes.)
    batch(() => {
      for (const [id, s] of next) if (byIdCache.get(id)?.label !== s.label) setLabels(`#${id}`, s.label);
      for (const id of byIdCache.keys()) if (!next.has(id)) setLabels(`#${id}`, undefined);
    });
    byIdCache = next;
    return list;
  };

  const [spans, setSpans] = createSignal<SpanAnnotation[]>(read());
  const map = annotationsMap(doc);
  const onChange = (_events: unknown, transaction: Y.Transaction) => around(() => setSpans(read()), transaction.local);
  map.observeDeep(onChange);
  onCleanup(() => map.unobserveDeep(onChange));

  const byId = createMemo(() => new Map(spans().map((s) => [s.id, s])));

  return {
    spans,
    byId,
    /** A span's label ('' for none), tracked per span. */
    labelOf: (id: string): string => labels[`#${id}`] ?? '',
    add: (span: NewSpan) => addSpan(doc, span),
    relabel: (id: string, label: string) => relabel(doc, id, label),
    setAttribute: (id: string, name: string, value: string | null) => setAttribute(doc, id, name, value),
    remove: (id: string) => deleteAnnotation(doc, id),
  };
}

