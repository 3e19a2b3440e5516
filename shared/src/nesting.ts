/**
 * Turns possibly overlapping spans into a properly nested tree that a renderer can walk
 * (HTML elements must nest, spans need not).
 *
 * Every span has a rank: earlier start first, then the longer one, then the smaller id. At each
 * point of the text the spans covering it are stacked by rank, lowest rank outermost. A span
 * therefore stays one element until an outer (lower-ranked) span that covers its start ends
 * inside it, or at a break the caller asks for (a paragraph's start: see nestParagraphs); only
 * there is it split, and every part carries the same id. Otherwise spans that are disjoint or
 * nested, including identical ranges, are never split.
 *
 * @example
 *   nestSpans([{ id: 'a', start: 0, end: 10 }, { id: 'b', start: 5, end: 15 }], 20)
 *   // [ span a [0,10) { text [0,5), span b part 0 [5,10) },
 *   //   span b part 1 [10,15), text [15,20) ]
 */

export interface NestInput {
  id: string;
  start: number;
  end: number;
}

export interface TextNode {
  kind: 'text';
  start: number;
  end: number;
}

export interface SpanNode {
  kind: 'span';
  id: string;
  start: number;
  end: number;
  /** 0 for the outermost element at this point of the text. */
  depth: number;
  /** Which part of a split span this is, counting from 0. */
  part: number;
  /** How many parts the span was split into; 1 when it was not split. */
  parts: number;
  children: NestNode[];
}

export type NestNode = TextNode | SpanNode;

/** Orders spans by rank: start, then longer first, then id. */
export function compareRank(a: NestInput, b: NestInput): number {
  return a.start - b.start || b.end - a.end || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Builds the nested tree for a text of `textLength` UTF-16 units. Spans are clipped to the text;
 * empty spans and repeated ids (after the first) are dropped. Text nodes cover every character
 * not under a span and every gap between child spans, so walking the tree in order yields the
 * whole text exactly once. At each of `breaks` (offsets inside the text: where paragraphs
 * start, see paragraphStarts) every element ends and the spans that go on are opened again, as
 * further parts, so that no node of the top level runs over a break.
 */
export function nestSpans(spans: readonly NestInput[], textLength: number, breaks: readonly number[] = []): NestNode[] {
  const ranked = clip(spans, textLength).sort(compareRank);
  const root: NestNode[] = [];
  if (textLength <= 0) return root;

  // Boundaries: every start and end, every break, and both ends of the text.
  const points = new Set<number>([0, textLength]);
  for (const s of ranked) {
    points.add(s.start);
    points.add(s.end);
  }
  const breaking = new Set<number>();
  for (const b of breaks) {
    if (b <= 0 || b >= textLength) continue;
    breaking.add(b);
    points.add(b);
  }
  const bounds = [...points].sort((a, b) => a - b);

  const byStart = new Map<number, NestInput[]>();
  for (const s of ranked) {
    const list = byStart.get(s.start);
    if (list) list.push(s);
    else byStart.set(s.start, [s]);
  }
  const rank = new Map(ranked.map((s, i) => [s.id, i]));

  let active: NestInput[] = []; // covering the current segment, by rank
  const stack: SpanNode[] = []; // open elements, outermost first
  const partCount = new Map<string, number>();
  const all: SpanNode[] = [];

  for (let i = 0; i < bounds.length - 1; i++) {
    const from = bounds[i]!;
    const to = bounds[i + 1]!;
    const starting = byStart.get(from);
    active = active.filter((s) => s.end > from);
    if (starting) active = mergeByRank(active, starting, rank);

    // Keep the open elements that are still the same prefix of the stack; reopen the rest (all
    // of them at a break).
    const broken = breaking.has(from);
    let keep = 0;
    while (!broken && keep < stack.length && keep < active.length && stack[keep]!.id === active[keep]!.id) keep++;
    stack.length = keep;
    for (let d = keep; d < active.length; d++) {
      const s = active[d]!;
      const part = partCount.get(s.id) ?? 0;
      partCount.set(s.id, part + 1);
      const node: SpanNode = { kind: 'span', id: s.id, start: from, end: from, depth: d, part, parts: 1, children: [] };
      (d === 0 ? root : stack[d - 1]!.children).push(node);
      stack.push(node);
      all.push(node);
    }

    const siblings = stack.length === 0 ? root : stack[stack.length - 1]!.children;
    const last = siblings[siblings.length - 1];
    if (last?.kind === 'text' && last.end === from && !broken) last.end = to;
    else siblings.push({ kind: 'text', start: from, end: to });
    for (const node of stack) node.end = to;
  }

  for (const node of all) node.parts = partCount.get(node.id) ?? 1;
  return root;
}

function clip(spans: readonly NestInput[], textLength: number): NestInput[] {
  const seen = new Set<string>();
  const out: NestInput[] = [];
  for (const s of spans) {
    const start = Math.max(0, s.start);
    const end = Math.min(textLength, s.end);
    if (!(end > start) || seen.has(s.id)) continue;
    seen.add(s.id);
    out.push({ id: s.id, start, end });
  }
  return out;
}

function mergeByRank(a: NestInput[], b: NestInput[], rank: Map<string, number>): NestInput[] {
  const out: NestInput[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && rank.get(a[i]!.id)! < rank.get(b[j]!.id)!)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

/** A stretch of the text drawn as one block (a paragraph): the tree's top-level nodes in it. */
export interface Block {
  start: number;
  end: number;
  nodes: NestNode[];
}

/**
 * Where each paragraph but the first starts: after each run of line breaks (LF, CRLF). A lone CR
 * is no line break to a browser, which draws it as a space.
 */
export function paragraphStarts(text: string): number[] {
  return [...text.matchAll(/(?:\r?\n)+/g)].map((m) => m.index + m[0].length).filter((at) => at < text.length);
}

/**
 * The nested tree of `spans` over `text`, in paragraphs (blocks), so that a renderer can draw
 * them apart: a change then lays out one paragraph again, not the whole text. A paragraph ends
 * after a run of line breaks (paragraphStarts); a span that runs over one is split there, a
 * part in each paragraph (as a crossing span is split, see nestSpans), so that a span over the
 * whole text still leaves every paragraph a block of its own. The blocks cover the text exactly
 * once, in order.
 *
 * @example
 *   nestParagraphs([{ id: 'a', start: 2, end: 7 }], 'one\n\ntwo')
 *   // [ { start: 0, end: 5, nodes: [text [0,2), span a part 0 [2,5)] },
 *   //   { start: 5, end: 8, nodes: [span a part 1 [5,7), text [7,8)] } ]
 */
export function nestParagraphs(spans: readonly NestInput[], text: string): Block[] {
  const starts = paragraphStarts(text);
  const blocks: Block[] = [];
  let next = 0; // the first paragraph start not yet reached
  for (const node of nestSpans(spans, text.length, starts)) {
    const current = blocks.at(-1);
    if (current && (next >= starts.length || node.start < starts[next]!)) {
      current.nodes.push(node);
      current.end = node.end;
      continue;
    }
    while (next < starts.length && starts[next]! <= node.start) next++;
    blocks.push({ start: node.start, end: node.end, nodes: [node] });
  }
  return blocks;
}
