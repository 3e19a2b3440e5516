/**
 * A layer's spans as Solid signals: one observeDeep on the `annotations` map feeds one signal,
 * reading again only the annotations its events name; unchanged annotations keep their object
 * identity, so lists keyed by them re-render only what changed. Each span's label is also kept
 * apart (`labelOf`), so that what shows one span's label is told only when that label changes,
 * not at every edit of the layer.
 */
import { batch, createSignal, onCleanup } from 'solid-js';
import { createStore } from 'solid-js/store';
import { compareRank } from '@spanwise/shared/nesting';
import { firstIndex } from '../lib/text-selection.ts';
import type * as Y from 'yjs';
import {
  addSpan,
  annotationsMap,
  deleteAnnotation,
  readAnnotation,
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
  const map = annotationsMap(doc);
  /** Every span by id, as last read. */
  const byIdCache = new Map<string, SpanAnnotation>();
  // (Keyed '#' + id: a span's id is any string, and a store, an object, has its own
  // properties: '__proto__', 'constructor'.)
  const [labels, setLabels] = createStore<Record<string, string | undefined>>({});

  /**
   * The list after the annotations `ids` changed: only those are read again, and put in their
   * places (an edit of a long layer would otherwise read every span, and sort them all, again).
   */
  const reread = (list: SpanAnnotation[], ids: Iterable<string>): SpanAnnotation[] => {
    const changed = new Set<string>();
    const fresh: SpanAnnotation[] = [];
    batch(() => {
      for (const id of ids) {
        const m = map.get(id);
        const a = m ? readAnnotation(id, m) : null;
        const prev = byIdCache.get(id);
        if (a?.kind === 'span') {
          if (prev && same(prev, a)) continue;
          byIdCache.set(id, a);
          fresh.push(a);
        } else if (prev) byIdCache.delete(id);
        else continue;
        changed.add(id);
        // (A store's property tells only who read it, and only when its value changes.)
        setLabels(`#${id}`, a?.kind === 'span' ? a.label : undefined);
      }
    });
    if (changed.size === 0) return list;
    const next = list.filter((s) => !changed.has(s.id));
    // A few put in place; many (the layer's first read, a batch from a peer) sorted together.
    if (fresh.length > 32) return next.concat(fresh).sort(compareRank);
    for (const s of fresh) next.splice(firstIndex(next, (t) => compareRank(t, s) >= 0), 0, s);
    return next;
  };

  const [spans, setSpans] = createSignal<SpanAnnotation[]>(reread([], map.keys()));
  const onChange = (events: Y.YEvent<Y.AbstractType<unknown>>[], transaction: Y.Transaction) => {
    // The annotations added, deleted or replaced, and those a field of which changed.
    const ids = new Set<string>();
    for (const event of events) {
      if (event.target === map) for (const key of (event as Y.YMapEvent<unknown>).keysChanged) ids.add(key);
      else if (typeof event.path[0] === 'string') ids.add(event.path[0]);
    }
    around(() => setSpans((list) => reread(list, ids)), transaction.local);
  };
  map.observeDeep(onChange);
  onCleanup(() => map.unobserveDeep(onChange));

  return {
    spans,
    /** The span with this id, if any (tracked with the list). */
    spanOf: (id: string): SpanAnnotation | undefined => {
      spans();
      return byIdCache.get(id);
    },
    /** A span's label ('' for none), tracked per span. */
    labelOf: (id: string): string => labels[`#${id}`] ?? '',
    add: (span: NewSpan) => addSpan(doc, span),
    relabel: (id: string, label: string) => relabel(doc, id, label),
    setAttribute: (id: string, name: string, value: string | null) => setAttribute(doc, id, name, value),
    remove: (id: string) => deleteAnnotation(doc, id),
  };
}

