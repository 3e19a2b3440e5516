/**
 * Reading and writing annotations in a layer's Y.Doc (DESIGN.md, "layer shape").
 *
 * A layer's `annotations` is a Y.Map from annotation id to a Y.Map holding `kind`, `label`,
 * and for spans `start`/`end` (UTF-16 offsets) and `quote`, for relations `from`/`to`.
 *
 * @example
 *   const id = addSpan(doc, { label: 'GPE', start: 4, end: 8, quote: 'Iran', author: 2 });
 *   relabel(doc, id, 'ORG');
 *   listSpans(doc); // [{ id, kind: 'span', label: 'ORG', start: 4, end: 8, ... }]
 */
import * as Y from 'yjs';

export type Attributes = Record<string, string>;

export interface SpanAnnotation {
  id: string;
  kind: 'span';
  label: string;
  start: number;
  end: number;
  quote: string;
  attributes: Attributes;
  entityId: string | null;
  author: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface RelationAnnotation {
  id: string;
  kind: 'relation';
  label: string;
  from: string;
  to: string;
  attributes: Attributes;
  author: number | null;
  createdAt: number;
  updatedAt: number;
}

export type Annotation = SpanAnnotation | RelationAnnotation;

export const ANNOTATIONS = 'annotations';

export function annotationsMap(doc: Y.Doc): Y.Map<Y.Map<unknown>> {
  return doc.getMap<Y.Map<unknown>>(ANNOTATIONS);
}

/** A short random id that works outside secure contexts too (no crypto.randomUUID). */
export function newId(): string {
  const bytes = new Uint8Array(10);
  (globalThis as unknown as { crypto: { getRandomValues(a: Uint8Array): Uint8Array } }).crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('');
}

export interface NewSpan {
  label: string;
  start: number;
  end: number;
  quote: string;
  author: number | null;
  attributes?: Attributes;
  entityId?: string | null;
}

/** Throws a RangeError unless 0 <= start < end <= textLength. */
export function checkSpanRange(start: number, end: number, textLength: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start || end > textLength) {
    throw new RangeError(`span [${start}, ${end}) is not inside a text of length ${textLength}`);
  }
}

export function addSpan(doc: Y.Doc, span: NewSpan, id: string = newId()): string {
  const now = Date.now();
  doc.transact(() => {
    const m = new Y.Map<unknown>();
    m.set('kind', 'span');
    m.set('label', span.label);
    m.set('start', span.start);
    m.set('end', span.end);
    m.set('quote', span.quote);
    m.set('attributes', span.attributes ?? {});
    m.set('entityId', span.entityId ?? null);
    m.set('author', span.author);
    m.set('createdAt', now);
    m.set('updatedAt', now);
    annotationsMap(doc).set(id, m);
  });
  return id;
}

export function addRelation(
  doc: Y.Doc,
  rel: { label: string; from: string; to: string; author: number | null; attributes?: Attributes },
  id: string = newId(),
): string {
  const now = Date.now();
  doc.transact(() => {
    const m = new Y.Map<unknown>();
    m.set('kind', 'relation');
    m.set('label', rel.label);
    m.set('from', rel.from);
    m.set('to', rel.to);
    m.set('attributes', rel.attributes ?? {});
    m.set('author', rel.author);
    m.set('createdAt', now);
    m.set('updatedAt', now);
    annotationsMap(doc).set(id, m);
  });
  return id;
}

/** Changes an annotation's label; returns false when the id is not in the layer. */
export function relabel(doc: Y.Doc, id: string, label: string): boolean {
  const m = annotationsMap(doc).get(id);
  if (!m) return false;
  doc.transact(() => {
    m.set('label', label);
    m.set('updatedAt', Date.now());
  });
  return true;
}

export function setAttribute(doc: Y.Doc, id: string, name: string, value: string | null): boolean {
  const m = annotationsMap(doc).get(id);
  if (!m) return false;
  // Under a key of its own (null: removed), so that two people setting two attributes of one
  // annotation at once both keep theirs: a whole object written back would keep one of them.
  doc.transact(() => {
    m.set(ATTRIBUTE_KEY + name, value);
    m.set('updatedAt', Date.now());
  });
  return true;
}

/**
 * The prefix of the key an attribute set after the annotation was made is kept under (see
 * setAttribute); those it was made with are in its `attributes` object.
 */
const ATTRIBUTE_KEY = 'attr:';

/** Deletes an annotation, and with a span every relation that points at it. */
export function deleteAnnotation(doc: Y.Doc, id: string): boolean {
  const map = annotationsMap(doc);
  if (!map.has(id)) return false;
  doc.transact(() => {
    map.delete(id);
    for (const [rid, m] of map) {
      if (m.get('kind') === 'relation' && (m.get('from') === id || m.get('to') === id)) map.delete(rid);
    }
  });
  return true;
}

function num(v: unknown, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}
function str(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : fallback;
}

/**
 * An annotation's attributes as stored: those it was made with (its `attributes` object), each
 * replaced or removed (null) by one set since under a key of its own (setAttribute). Only string
 * values are kept: any peer can store anything there (a number, a bigint, a nested object or Y
 * type), and exports and the UI expect names to strings.
 */
function readAttributes(m: Y.Map<unknown>): Attributes {
  const v = m.get('attributes');
  // (A Map until the end: a name such as `__proto__` is a name like any other.)
  const out = new Map<string, string>();
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Y.AbstractType) && !(v instanceof Uint8Array)) {
    for (const [name, value] of Object.entries(v)) if (typeof value === 'string') out.set(name, value);
  }
  for (const [key, value] of m) {
    if (!key.startsWith(ATTRIBUTE_KEY)) continue;
    const name = key.slice(ATTRIBUTE_KEY.length);
    if (typeof value === 'string') out.set(name, value);
    else out.delete(name);
  }
  return Object.fromEntries(out);
}

/** An offset into the text: a whole UTF-16 position. */
const isOffset = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Reads one annotation into a plain object; null for entries that are not well-formed. */
export function readAnnotation(id: string, m: Y.Map<unknown>): Annotation | null {
  if (!(m instanceof Y.Map)) return null;
  const kind = m.get('kind');
  const attributes = readAttributes(m);
  const author = typeof m.get('author') === 'number' ? (m.get('author') as number) : null;
  const base = {
    id,
    label: str(m.get('label')),
    attributes,
    author,
    createdAt: num(m.get('createdAt')),
    updatedAt: num(m.get('updatedAt')),
  };
  if (kind === 'span') {
    const start = m.get('start');
    const end = m.get('end');
    // Offsets are whole UTF-16 positions: any other value (NaN, Infinity, a fraction, a negative
    // start), which another person's client may have written into their layer, is no span.
    if (!isOffset(start) || !isOffset(end) || end <= start) return null;
    const entityId = m.get('entityId');
    return {
      ...base,
      kind: 'span',
      start,
      end,
      quote: str(m.get('quote')),
      entityId: typeof entityId === 'string' ? entityId : null,
    };
  }
  if (kind === 'relation') {
    return { ...base, kind: 'relation', from: str(m.get('from')), to: str(m.get('to')) };
  }
  return null;
}

/** All well-formed spans, ordered by start, then longer first, then id. */
export function listSpans(doc: Y.Doc): SpanAnnotation[] {
  const out: SpanAnnotation[] = [];
  for (const [id, m] of annotationsMap(doc)) {
    const a = readAnnotation(id, m);
    if (a?.kind === 'span') out.push(a);
  }
  return out.sort((a, b) => a.start - b.start || b.end - a.end || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function listRelations(doc: Y.Doc): RelationAnnotation[] {
  const out: RelationAnnotation[] = [];
  for (const [id, m] of annotationsMap(doc)) {
    const a = readAnnotation(id, m);
    if (a?.kind === 'relation') out.push(a);
  }
  return out;
}
