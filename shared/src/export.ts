/**
 * Dataset formats: one document's layer as a JSON line, a CoNLL block, a brat standoff file or
 * W3C Web Annotations. Pure functions; the server streams what they return.
 *
 * Every offset written here counts Unicode code points, as Python, spaCy and brat do; the
 * layers count UTF-16 units (DESIGN.md, "Domain model").
 *
 * @example
 *   const doc = { id: 3, title: 'T', text: 'Iran 😀 denied' };
 *   const layer = { name: 'gold', annotator: null, spans, relations };
 *   jsonlRecord(doc, layer); // '{"document_id":3,…,"spans":[{"start":7,…}]}\n'
 */
import type { LabelSchema } from './schema.ts';
import type { RelationAnnotation, SpanAnnotation } from './layer.ts';
import { offsetMapper, type OffsetMapper } from './offsets.ts';
import { sentences } from './tokenize.ts';

export const EXPORT_FORMATS = ['jsonl', 'conll', 'brat', 'w3c'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_LAYERS = ['gold', 'all'] as const;
export type ExportLayerChoice = (typeof EXPORT_LAYERS)[number];

export interface ExportDocument {
  id: number;
  title: string;
  text: string;
}

export interface ExportLayer {
  /** `gold`, or `user:<id>` for an annotator's layer. */
  name: string;
  /** The layer's annotator (null for gold). */
  annotator: string | null;
  spans: readonly SpanAnnotation[];
  relations: readonly RelationAnnotation[];
}

/** A span in code points, checked against the text; null when its offsets do not fit the text. */
interface CpSpan {
  span: SpanAnnotation;
  start: number;
  end: number;
  text: string;
}

function inCodePoints(doc: ExportDocument, layer: ExportLayer, map: OffsetMapper = offsetMapper(doc.text)): CpSpan[] {
  const out: CpSpan[] = [];
  for (const span of layer.spans) {
    if (span.start < 0 || span.end > doc.text.length || span.end <= span.start) continue;
    out.push({ span, start: map.toCodePointOffset(span.start), end: map.toCodePointOffset(span.end), text: doc.text.slice(span.start, span.end) });
  }
  return out;
}

/** Relations whose two ends are spans of the layer. */
function linked(layer: ExportLayer, spanIds: ReadonlySet<string>): RelationAnnotation[] {
  return layer.relations.filter((r) => spanIds.has(r.from) && spanIds.has(r.to));
}

/** One JSON object (and a newline) per document and layer. */
export function jsonlRecord(doc: ExportDocument, layer: ExportLayer): string {
  const spans = inCodePoints(doc, layer);
  const record = {
    document_id: doc.id,
    title: doc.title,
    layer: layer.name,
    annotator: layer.annotator,
    text: doc.text,
    spans: spans.map(({ span, start, end, text }) => ({
      id: span.id,
      label: span.label,
      start,
      end,
      text,
      attributes: span.attributes,
      entity_id: span.entityId,
    })),
    relations: linked(layer, new Set(spans.map((s) => s.span.id))).map((r) => ({ id: r.id, label: r.label, from: r.from, to: r.to, attributes: r.attributes })),
  };
  return JSON.stringify(record) + '\n';
}

/**
 * A CoNLL-2003-style block (`token -X- _ tag`, BIO tags, a blank line after each sentence),
 * headed by `# document_id`, `# layer` and `-DOCSTART-`. BIO cannot nest: where spans overlap,
 * the longer one is kept, and `# spans_left_out` counts the others.
 */
export function conllBlock(doc: ExportDocument, layer: ExportLayer): string {
  const tokens = sentences(doc.text);
  const flat = tokens.flat();
  const tags: string[] = flat.map(() => 'O');
  const taken: boolean[] = flat.map(() => false);
  let leftOut = 0;
  const bySize = inCodePoints(doc, layer)
    .map((s) => s.span)
    .sort((a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start);
  for (const span of bySize) {
    const covered: number[] = [];
    flat.forEach((t, i) => {
      if (t.start < span.end && t.end > span.start) covered.push(i);
    });
    if (covered.length === 0 || covered.some((i) => taken[i])) {
      leftOut++;
      continue;
    }
    covered.forEach((i, k) => {
      taken[i] = true;
      tags[i] = `${k === 0 ? 'B' : 'I'}-${span.label}`;
    });
  }
  const lines = [`# document_id = ${doc.id}`, `# layer = ${layer.name}`];
  if (leftOut > 0) lines.push(`# spans_left_out = ${leftOut}`);
  lines.push('-DOCSTART- -X- -X- O', '');
  let i = 0;
  for (const sentence of tokens) {
    for (const token of sentence) lines.push(`${token.text} -X- _ ${tags[i++]}`);
    lines.push('');
  }
  return lines.join('\n') + '\n';
}

/** Where a span crosses line breaks, brat wants one fragment per line (in code points). */
function fragments(doc: ExportDocument, span: SpanAnnotation, map: OffsetMapper): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let from = span.start;
  for (let i = span.start; i <= span.end; i++) {
    if (i === span.end || doc.text[i] === '\n') {
      // Leading and trailing whitespace stays out of a fragment; an all-space piece is dropped.
      let a = from;
      let b = i;
      while (a < b && /\s/.test(doc.text[a]!)) a++;
      while (b > a && /\s/.test(doc.text[b - 1]!)) b--;
      if (b > a) out.push([map.toCodePointOffset(a), map.toCodePointOffset(b)]);
      from = i + 1;
    }
  }
  return out;
}

/** The `.ann` file of one document's layer in brat's standoff format. */
export function bratAnn(doc: ExportDocument, layer: ExportLayer): string {
  const map = offsetMapper(doc.text);
  const chars = [...doc.text];
  const lines: string[] = [];
  const tIds = new Map<string, string>();
  let attributes = 0;
  let notes = 0;
  for (const span of layer.spans) {
    if (span.start < 0 || span.end > doc.text.length || span.end <= span.start) continue;
    const parts = fragments(doc, span, map);
    if (parts.length === 0) continue;
    const t = `T${tIds.size + 1}`;
    tIds.set(span.id, t);
    const text = parts.map(([a, b]) => chars.slice(a, b).join('')).join(' ');
    lines.push(`${t}\t${span.label} ${parts.map(([a, b]) => `${a} ${b}`).join(';')}\t${text}`);
    for (const [name, value] of Object.entries(span.attributes)) lines.push(`A${++attributes}\t${name} ${t} ${value}`);
    if (span.entityId) lines.push(`#${++notes}\tAnnotatorNotes ${t}\tentity ${span.entityId}`);
  }
  let relations = 0;
  for (const r of layer.relations) {
    const from = tIds.get(r.from);
    const to = tIds.get(r.to);
    if (from && to) lines.push(`R${++relations}\t${r.label} Arg1:${from} Arg2:${to}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** brat's `annotation.conf` for a project's label schema. */
export function bratConf(schema: LabelSchema): string {
  const attributes = new Map<string, { labels: string[]; values: Set<string> }>();
  for (const label of schema.spans) {
    for (const a of label.attributes ?? []) {
      const entry = attributes.get(a.name) ?? { labels: [], values: new Set<string>() };
      entry.labels.push(label.name);
      for (const v of a.values) entry.values.add(v);
      attributes.set(a.name, entry);
    }
  }
  return [
    '[entities]',
    ...schema.spans.map((s) => s.name),
    '',
    '[relations]',
    ...schema.relations.map((r) => `${r.name}\tArg1:<ENTITY>, Arg2:<ENTITY>`),
    '<OVERLAP>\tArg1:<ENTITY>, Arg2:<ENTITY>, <OVL-TYPE>:<ANY>',
    '',
    '[events]',
    '',
    '[attributes]',
    ...[...attributes].map(([name, a]) => `${name}\tArg:${a.labels.join('|')}, Value:${[...a.values].join('|')}`),
    '',
  ].join('\n');
}

const QUOTE_CONTEXT = 32;

/**
 * W3C Web Annotation Data Model objects for one document's layer: a span is a `tagging`
 * annotation whose target carries a TextPositionSelector (code points) and a
 * TextQuoteSelector; a relation is a `linking` annotation whose two targets are its spans'
 * annotations, in order from → to. `source` is the document's IRI.
 */
export function w3cAnnotations(doc: ExportDocument, layer: ExportLayer, source: string): object[] {
  const chars = [...doc.text];
  const iri = (id: string) => `${source}/layers/${layer.name}/annotations/${encodeURIComponent(id)}`;
  const creator = layer.annotator ? { creator: { type: 'Person', nickname: layer.annotator } } : {};
  const spans = inCodePoints(doc, layer);
  const out: object[] = spans.map(({ span, start, end, text }) => ({
    id: iri(span.id),
    type: 'Annotation',
    motivation: 'tagging',
    ...creator,
    ...(span.createdAt ? { created: new Date(span.createdAt).toISOString() } : {}),
    ...(span.updatedAt ? { modified: new Date(span.updatedAt).toISOString() } : {}),
    body: [
      { type: 'TextualBody', purpose: 'tagging', value: span.label },
      ...Object.entries(span.attributes).map(([name, value]) => ({ type: 'TextualBody', purpose: 'describing', value: `${name}: ${value}` })),
      ...(span.entityId ? [{ id: `urn:spanwise:entity:${encodeURIComponent(span.entityId)}`, purpose: 'identifying' }] : []),
    ],
    target: {
      source,
      selector: [
        { type: 'TextPositionSelector', start, end },
        {
          type: 'TextQuoteSelector',
          exact: text,
          prefix: chars.slice(Math.max(0, start - QUOTE_CONTEXT), start).join(''),
          suffix: chars.slice(end, end + QUOTE_CONTEXT).join(''),
        },
      ],
    },
  }));
  for (const r of linked(layer, new Set(spans.map((s) => s.span.id)))) {
    out.push({
      id: iri(r.id),
      type: 'Annotation',
      motivation: 'linking',
      ...creator,
      body: { type: 'TextualBody', purpose: 'tagging', value: r.label },
      target: [iri(r.from), iri(r.to)],
    });
  }
  return out;
}
