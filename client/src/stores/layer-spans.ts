/**
 * A layer's spans as Solid signals: one observeDeep on the `annotations` map feeds one signal;
 * unchanged annotations keep their object identity, so lists keyed by them re-render only
 * what changed.
 */
import { createMemo, createSignal, onCleanup } from 'solid-js';
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
  const read = () => {
    const next = new Map<string, SpanAnnotation>();
    const list = listSpans(doc).map((s) => {
      const prev = byIdCache.get(s.id);
      const kept = prev && same(prev, s) ? prev : s;
      next.set(s.id, kept);
      return kept;
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
    add: (span: NewSpan) => addSpan(doc, span),
    relabel: (id: string, label: string) => relabel(doc, id, label),
    setAttribute: (id: string, name: string, value: string | null) => setAttribute(doc, id, name, value),
    remove: (id: string) => deleteAnnotation(doc, id),
  };
}

