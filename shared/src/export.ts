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
import { LINE_BREAK, sentences, type Token } from './tokenize.ts';

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

/**
 * The layer with only the spans whose label is one of `labels`, and the relations between those:
 * an export of some labels alone (the entities without the claims they sit in, say, which
 * CoNLL's one tag per token would otherwise leave out).
 */
export function withLabels(layer: ExportLayer, labels: ReadonlySet<string>): ExportLayer {
  const spans = layer.spans.filter((span) => labels.has(span.label));
  return { ...layer, spans, relations: linked(layer, new Set(spans.map((span) => span.id))) };
}

/** A span that fits the text (exportableSpan), with its offsets in code points. */
interface CpSpan {
  span: SpanAnnotation;
  start: number;
  end: number;
  text: string;
}

/**
 * Whether a span's UTF-16 offsets can be exported: whole numbers inside the text, in order, and
 * neither inside a surrogate pair. A layer holds whatever its clients wrote; one odd span must
 * not cost the rest of the export.
 */
function exportableSpan(text: string, span: Pick<SpanAnnotation, 'start' | 'end'>): boolean {
  const { start, end } = span;
  const insidePair = (i: number) => i > 0 && i < text.length && /[\uDC00-\uDFFF]/.test(text[i]!) && /[\uD800-\uDBFF]/.test(text[i - 1]!);
  return Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= text.length && end > start && !insidePair(start) && !insidePair(end);
}

function inCodePoints(doc: ExportDocument, layer: ExportLayer, map: OffsetMapper = offsetMapper(doc.text)): CpSpan[] {
  const out: CpSpan[] = [];
  for (const span of layer.spans) {
    if (!exportableSpan(doc.text, span)) continue;
    out.push({ span, start: map.toCodePointOffset(span.start), end: map.toCodePointOffset(span.end), text: doc.text.slice(span.start, span.end) });
  }
  return out;
}

/** An ISO time for a stored timestamp, or nothing for one that is not a time. */
function isoTime(ms: number): string | undefined {
  if (!ms) return undefined;
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : undefined;
}

/** Relations whose two ends are spans of the layer. */
function linked(layer: ExportLayer, spanIds: ReadonlySet<string>): RelationAnnotation[] {
  return layer.relations.filter((r) => spanIds.has(r.from) && spanIds.has(r.to));
}

/**
 * One JSON object (and a newline) per document and layer: its spans and relations, and the spans
 * once more as doccano imports them (`label`: `[start, end, label]`), so that the file loads in
 * doccano as a sequence-labelling dataset (with the rest as each example's metadata).
 */
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
    // The spans as doccano reads a sequence-labelling dataset: [start, end, label] each.
    label: spans.map(({ span, start, end }) => [start, end, span.label]),
  };
  // (U+2028, U+2029 and U+0085 are valid in a JSON string, but readers that split the file
  // with Python's splitlines() would cut the record there: escaped, they are the same JSON.)
  return JSON.stringify(record).replace(/[\u2028\u2029\u0085]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) + '\n';
}

/**
 * A label, relation or attribute name or value as one token, the same in every file: whitespace
 * (Python's too: \x1c-\x1f and \x85, which its readers split lines or columns at) and brat's
 * separators (`,|:;=`) become `_`.
 */
function oneToken(name: string): string {
  return name.replace(/[\s,|:;=\x1c-\x1f\x85]+/g, '_') || '_';
}

/**
 * Names in the form brat keeps them: brat reads every character of annotation.conf's names but
 * `A-Z a-z 0-9 _ -` as `_` (and a leading `!` or `#` would mean something else), so the same
 * form goes into both the .conf and the .ann files. Two names that would come out the same
 * ('yes.' and 'yes!', or two in another script) are told apart by a number (`yes_`, `yes__2`),
 * each kind of name on its own (the values of each attribute too). One export uses one set, so
 * a name has one form in all its files.
 */
export class BratNames {
  readonly #kinds = new Map<string, { byName: Map<string, string>; taken: Set<string> }>();
  /**
   * What the `.ann` files written with these names hold (in brat's forms): annotation.conf
   * declares these too, so that a label or an attribute value no longer in the schema, or an
   * attribute on a label the schema does not give it, is no unknown type to brat.
   */
  readonly used = {
    types: new Set<string>(),
    relations: new Set<string>(),
    attributes: new Map<string, { labels: Set<string>; values: Set<string> }>(),
  };

  /** `name`'s form among the names of `kind` ('type', 'relation', 'attribute', or 'value:<attribute>'). */
  of(kind: string, name: string): string {
    let names = this.#kinds.get(kind);
    if (!names) this.#kinds.set(kind, (names = { byName: new Map(), taken: new Set() }));
    const known = names.byName.get(name);
    if (known !== undefined) return known;
    const base = name.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
    let form = base;
    for (let n = 2; names.taken.has(form); n++) form = `${base}_${n}`;
    names.byName.set(name, form);
    names.taken.add(form);
    return form;
  }
}

/** Index of the first of `sorted` (ascending) for which `key` is past `offset`. */
function firstPast<T>(sorted: readonly T[], offset: number, key: (item: T) => number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(sorted[mid]!) <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Counts marked positions in ranges, in logarithmic time (a Fenwick tree). */
class MarkedCount {
  readonly #tree: Int32Array;
  constructor(size: number) {
    this.#tree = new Int32Array(size + 1);
  }
  mark(i: number): void {
    for (let j = i + 1; j < this.#tree.length; j += j & -j) this.#tree[j]!++;
  }
  /** Marked positions before `end`. */
  #before(end: number): number {
    let n = 0;
    for (let j = end; j > 0; j -= j & -j) n += this.#tree[j]!;
    return n;
  }
  any(start: number, end: number): boolean {
    return this.#before(end) - this.#before(start) > 0;
  }
}

/**
 * A CoNLL-2003-style block (`token -X- _ tag`, BIO tags, a blank line after each sentence)
 * after a `-DOCSTART-` line whose third column names the document and layer
 * (`document=7;layer=gold`; readers skip the whole line). A token is cut where a span starts or
 * ends inside it. BIO cannot nest: where spans overlap, the longer one is kept (JSON lines
 * keeps them all). A sentence is never split inside a kept
 * span, so no sentence starts with an `I-` tag.
 */
export function conllBlock(doc: ExportDocument, layer: ExportLayer): string {
  const sentenceTokens = sentences(doc.text);
  // A token that a span starts or ends inside ('Iran’s', the span on 'Iran') is cut there, as
  // CoNLL-2003 cuts off a possessive: else its tag would stretch the span over the whole token.
  // Only at the edges of the spans kept: which those are is found on tokens cut at every edge
  // (where none straddles two spans), and the tokens are then cut at the kept ones' alone.
  const tokensCutAt = (spans: readonly SpanAnnotation[]) => {
    const edges = [...new Set(spans.flatMap((span) => [span.start, span.end]))].sort((x, y) => x - y);
    const out: Array<Token & { startsSentence: boolean }> = [];
    let k = 0; // the first edge past the token's start (tokens come in order)
    for (const sentence of sentenceTokens) {
      sentence.forEach((token, i) => {
        while (k < edges.length && edges[k]! <= token.start) k++;
        let from = token.start;
        for (; k < edges.length && edges[k]! < token.end; k++) {
          out.push({ text: doc.text.slice(from, edges[k]), start: from, end: edges[k]!, startsSentence: i === 0 && from === token.start });
          from = edges[k]!;
        }
        out.push(from === token.start ? { ...token, startsSentence: i === 0 } : { text: doc.text.slice(from, token.end), start: from, end: token.end, startsSentence: false });
      });
    }
    return out;
  };
  /** Where each of `spans` (longest first) lies in `tokens`, [first, last), leaving out those that would overlap one before. */
  const place = (tokens: readonly Token[], spans: readonly SpanAnnotation[]) => {
    // Each span costs a few binary searches whatever its length; each token is taken once.
    const taken = new MarkedCount(tokens.length);
    const placed: Array<{ span: SpanAnnotation; first: number; last: number }> = [];
    for (const span of spans) {
      const first = firstPast(tokens, span.start, (t) => t.end);
      const last = Math.max(first, firstPast(tokens, span.end - 1, (t) => t.start));
      if (last === first || taken.any(first, last)) continue;
      for (let i = first; i < last; i++) taken.mark(i);
      placed.push({ span, first, last });
    }
    return placed;
  };
  const bySize = layer.spans
    .filter((span) => exportableSpan(doc.text, span))
    .sort((a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start);
  const kept = place(tokensCutAt(bySize), bySize).map((p) => p.span);
  const flat = tokensCutAt(kept);
  const tags: string[] = flat.map(() => 'O');
  for (const { span, first, last } of place(flat, kept)) {
    const label = oneToken(span.label);
    for (let i = first; i < last; i++) tags[i] = `${i === first ? 'B' : 'I'}-${label}`;
  }
  const lines = [`-DOCSTART- -X- document=${doc.id};layer=${layer.name} O`, ''];
  flat.forEach((token, i) => {
    if (token.startsSentence && i > 0 && !tags[i]!.startsWith('I-')) lines.push('');
    lines.push(`${token.text} -X- _ ${tags[i]}`);
  });
  if (flat.length > 0) lines.push('');
  return lines.join('\n') + '\n';
}

/** Offsets of every line break in a text, in order (found once per document). */
function lineBreaks(text: string): number[] {
  const out: number[] = [];
  const all = new RegExp(LINE_BREAK.source, 'g');
  for (let m = all.exec(text); m; m = all.exec(text)) out.push(m.index);
  return out;
}

/**
 * Where a span crosses line breaks, brat wants one fragment per line (UTF-16 ranges). `breaks`
 * are the text's line breaks (lineBreaks): only those inside the span are visited.
 */
function fragments(text: string, breaks: readonly number[], span: SpanAnnotation): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const space = /[\s\x1c-\x1e\x85]/;
  let from = span.start;
  const cut = (i: number) => {
    // Leading and trailing whitespace stays out of a fragment; an all-space piece is dropped.
    let a = from;
    let b = i;
    while (a < b && space.test(text[a]!)) a++;
    while (b > a && space.test(text[b - 1]!)) b--;
    if (b > a) out.push([a, b]);
    from = i + 1;
  };
  for (let k = firstPast(breaks, span.start - 1, (b) => b); k < breaks.length && breaks[k]! < span.end; k++) cut(breaks[k]!);
  cut(span.end);
  return out;
}

/**
 * A document's text as its brat `.txt` file holds it: each CRLF (and lone CR) as LF. Readers
 * disagree on CRLF: Python 3's (brat's today) read it as one character, binary ones (brat on
 * Python 2) as two; with LF alone they agree, and bratAnn's offsets count that way.
 */
export function bratText(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/** Offsets of the CR of every CRLF in a text, in order. */
function crlfs(text: string): number[] {
  const out: number[] = [];
  for (let i = text.indexOf('\r\n'); i >= 0; i = text.indexOf('\r\n', i + 2)) out.push(i);
  return out;
}

/**
 * The `.ann` file of one document's layer in brat's standoff format (`names`: the export's, see
 * BratNames), its offsets in the code points of bratText's text.
 */
export function bratAnn(doc: ExportDocument, layer: ExportLayer, names: BratNames): string {
  const map = offsetMapper(doc.text);
  const breaks = lineBreaks(doc.text);
  const pairs = crlfs(doc.text);
  // (A fragment never starts or ends inside a CRLF: it leaves out line breaks and the space around.)
  const offset = (i: number) => map.toCodePointOffset(i) - firstPast(pairs, i, (cr) => cr + 1);
  const lines: string[] = [];
  const tIds = new Map<string, string>();
  let attributes = 0;
  let notes = 0;
  for (const span of layer.spans) {
    if (!exportableSpan(doc.text, span)) continue;
    const parts = fragments(doc.text, breaks, span);
    if (parts.length === 0) continue;
    const t = `T${tIds.size + 1}`;
    tIds.set(span.id, t);
    const offsets = parts.map(([a, b]) => `${offset(a)} ${offset(b)}`).join(';');
    const text = parts.map(([a, b]) => doc.text.slice(a, b)).join(' ');
    const type = names.of('type', span.label);
    names.used.types.add(type);
    lines.push(`${t}\t${type} ${offsets}\t${text}`);
    for (const [name, value] of Object.entries(span.attributes)) {
      const attribute = names.of('attribute', name);
      const form = names.of(`value:${name}`, String(value));
      const use = names.used.attributes.get(attribute) ?? { labels: new Set<string>(), values: new Set<string>() };
      use.labels.add(type);
      use.values.add(form);
      names.used.attributes.set(attribute, use);
      lines.push(`A${++attributes}\t${attribute} ${t} ${form}`);
    }
    if (span.entityId) lines.push(`#${++notes}\tAnnotatorNotes ${t}\tentity ${oneToken(span.entityId)}`);
  }
  let relations = 0;
  for (const r of layer.relations) {
    const from = tIds.get(r.from);
    const to = tIds.get(r.to);
    if (!from || !to) continue;
    const relation = names.of('relation', r.label);
    names.used.relations.add(relation);
    lines.push(`R${++relations}\t${relation} Arg1:${from} Arg2:${to}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/**
 * brat's `annotation.conf` for a project's label schema and what the `.ann` files written with
 * `names` hold besides (`names`: the export's, see BratNames; written after them).
 */
export function bratConf(schema: LabelSchema, names: BratNames): string {
  const attributes = new Map<string, { labels: Set<string>; values: Set<string> }>();
  const attribute = (name: string) => {
    const entry = attributes.get(name) ?? { labels: new Set<string>(), values: new Set<string>() };
    attributes.set(name, entry);
    return entry;
  };
  for (const span of schema.spans) {
    for (const a of span.attributes ?? []) {
      const entry = attribute(names.of('attribute', a.name));
      entry.labels.add(names.of('type', span.name));
      for (const v of a.values) entry.values.add(names.of(`value:${a.name}`, v));
    }
  }
  for (const [name, use] of names.used.attributes) {
    const entry = attribute(name);
    for (const label of use.labels) entry.labels.add(label);
    for (const value of use.values) entry.values.add(value);
  }
  const types = new Set([...schema.spans.map((s) => names.of('type', s.name)), ...names.used.types]);
  const relations = new Set([...schema.relations.map((r) => names.of('relation', r.name)), ...names.used.relations]);
  return [
    '[entities]',
    ...types,
    '',
    '[relations]',
    ...[...relations].map((name) => `${name}\tArg1:<ENTITY>, Arg2:<ENTITY>`),
    '<OVERLAP>\tArg1:<ENTITY>, Arg2:<ENTITY>, <OVL-TYPE>:<ANY>',
    '',
    '[events]',
    '',
    '[attributes]',
    ...[...attributes].map(([name, a]) => `${name}\tArg:${[...a.labels].join('|')}, Value:${[...a.values].join('|')}`),
    '',
  ].join('\n');
}

const QUOTE_CONTEXT = 32;

const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;
const isLow = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;

/** The UTF-16 offset `count` code points before `i` in `text` (or 0), a pair counting as one. */
function codePointsBack(text: string, i: number, count: number): number {
  for (let k = 0; k < count && i > 0; k++) i -= i > 1 && isLow(text.charCodeAt(i - 1)) && isHigh(text.charCodeAt(i - 2)) ? 2 : 1;
  return i;
}

/** The UTF-16 offset `count` code points after `i` in `text` (or its end), a pair counting as one. */
function codePointsOn(text: string, i: number, count: number): number {
  for (let k = 0; k < count && i < text.length; k++) i += isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1)) ? 2 : 1;
  return i;
}

function times(a: { createdAt: number; updatedAt: number }) {
  const created = isoTime(a.createdAt);
  const modified = isoTime(a.updatedAt);
  return { ...(created ? { created } : {}), ...(modified ? { modified } : {}) };
}

function describing(attributes: Record<string, string>) {
  return Object.entries(attributes).map(([name, value]) => ({ type: 'TextualBody', purpose: 'describing', value: `${name}: ${value}` }));
}

/**
 * W3C Web Annotation Data Model objects for one document's layer: a span is a `tagging`
 * annotation whose target carries a TextPositionSelector (code points) and a
 * TextQuoteSelector; a relation is a `linking` annotation whose two targets are its spans'
 * annotations, as an ordered List from → to. `source` is the document's IRI.
 */
export function w3cAnnotations(doc: ExportDocument, layer: ExportLayer, source: string): object[] {
  const iri = (id: string) => `${source}/layers/${layer.name}/annotations/${encodeURIComponent(id)}`;
  const creator = layer.annotator ? { creator: { type: 'Person', nickname: layer.annotator } } : {};
  const spans = inCodePoints(doc, layer);
  const out: object[] = spans.map(({ span, start, end, text }) => ({
    id: iri(span.id),
    type: 'Annotation',
    motivation: 'tagging',
    ...creator,
    ...times(span),
    body: [
      { type: 'TextualBody', purpose: 'tagging', value: span.label },
      ...describing(span.attributes),
      ...(span.entityId ? [{ type: 'SpecificResource', source: `urn:spanwise:entity:${encodeURIComponent(span.entityId)}`, purpose: 'identifying' }] : []),
    ],
    target: {
      source,
      selector: [
        { type: 'TextPositionSelector', start, end },
        {
          type: 'TextQuoteSelector',
          exact: text,
          prefix: doc.text.slice(codePointsBack(doc.text, span.start, QUOTE_CONTEXT), span.start),
          suffix: doc.text.slice(span.end, codePointsOn(doc.text, span.end, QUOTE_CONTEXT)),
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
      ...times(r),
      body: [{ type: 'TextualBody', purpose: 'tagging', value: r.label }, ...describing(r.attributes)],
      // An ordered pair: plain multiple targets would be an unordered set in JSON-LD.
      target: { type: 'List', items: [iri(r.from), iri(r.to)] },
    });
  }
  return out;
}
