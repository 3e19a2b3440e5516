import { describe, expect, it } from 'vitest';
import { nestParagraphs, nestSpans, paragraphStarts, type NestInput, type NestNode } from './nesting.ts';

/** A compact picture of a tree: text as [s,e), spans as id[s,e){...}, split parts as id#part. */
function show(nodes: readonly NestNode[]): string {
  return nodes
    .map((n) =>
      n.kind === 'text'
        ? `[${n.start},${n.end})`
        : `${n.id}${n.parts > 1 ? `#${n.part}` : ''}[${n.start},${n.end}){${show(n.children)}}`,
    )
    .join(' ');
}

/** A repeatable stream of integers in [0, n): a linear congruential generator from `seed`. */
function seededRandom(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
}

function elements(nodes: readonly NestNode[]): Extract<NestNode, { kind: 'span' }>[] {
  return nodes.flatMap((n) => (n.kind === 'span' ? [n, ...elements(n.children)] : []));
}

/** Checks the invariants every tree must hold and returns, per character, the ids above it. */
function check(spans: NestInput[], length: number): string[][] {
  const tree = nestSpans(spans, length);
  const covering: string[][] = Array.from({ length }, () => []);
  let cursor = 0;
  const walk = (nodes: readonly NestNode[], path: string[], from: number, to: number, depth: number) => {
    let at = from;
    for (const n of nodes) {
      expect(n.start).toBe(at);
      expect(n.end).toBeGreaterThan(n.start);
      if (n.kind === 'text') {
        expect(n.start).toBe(cursor);
        for (let i = n.start; i < n.end; i++) covering[i] = path;
        cursor = n.end;
      } else {
        expect(n.depth).toBe(depth);
        expect(path).not.toContain(n.id);
        walk(n.children, [...path, n.id], n.start, n.end, depth + 1);
      }
      at = n.end;
    }
    expect(at).toBe(to);
  };
  walk(tree, [], 0, length, 0);
  expect(cursor).toBe(length);
  return covering;
}

function expected(spans: NestInput[], length: number): string[][] {
  return Array.from({ length }, (_, i) =>
    spans
      .filter((s) => s.start <= i && i < s.end)
      .map((s) => s.id)
      .sort(),
  );
}

describe('nestSpans', () => {
  it('returns one text node for a text without spans', () => {
    expect(show(nestSpans([], 10))).toBe('[0,10)');
  });

  it('returns nothing for an empty text', () => {
    expect(nestSpans([{ id: 'a', start: 0, end: 3 }], 0)).toEqual([]);
  });

  it('keeps disjoint spans as siblings, one element each', () => {
    const tree = nestSpans(
      [
        { id: 'b', start: 6, end: 9 },
        { id: 'a', start: 0, end: 3 },
      ],
      10,
    );
    expect(show(tree)).toBe('a[0,3){[0,3)} [3,6) b[6,9){[6,9)} [9,10)');
  });

  it('keeps adjacent spans as siblings', () => {
    const tree = nestSpans(
      [
        { id: 'a', start: 0, end: 4 },
        { id: 'b', start: 4, end: 8 },
      ],
      8,
    );
    expect(show(tree)).toBe('a[0,4){[0,4)} b[4,8){[4,8)}');
  });

  it('nests a span inside the span that contains it', () => {
    const tree = nestSpans(
      [
        { id: 'inner', start: 3, end: 5 },
        { id: 'outer', start: 1, end: 8 },
      ],
      10,
    );
    expect(show(tree)).toBe('[0,1) outer[1,8){[1,3) inner[3,5){[3,5)} [5,8)} [8,10)');
    expect(elements(tree).map((n) => [n.id, n.depth])).toEqual([
      ['outer', 0],
      ['inner', 1],
    ]);
  });

  it('nests spans that share a start or an end without splitting them', () => {
    const tree = nestSpans(
      [
        { id: 'head', start: 0, end: 3 },
        { id: 'all', start: 0, end: 10 },
        { id: 'tail', start: 7, end: 10 },
      ],
      10,
    );
    expect(show(tree)).toBe('all[0,10){head[0,3){[0,3)} [3,7) tail[7,10){[7,10)}}');
  });

  it('nests identical ranges by id, one element each', () => {
    const tree = nestSpans(
      [
        { id: 'y', start: 2, end: 5 },
        { id: 'x', start: 2, end: 5 },
      ],
      6,
    );
    expect(show(tree)).toBe('[0,2) x[2,5){y[2,5){[2,5)}} [5,6)');
  });

  it('splits a crossing span into two parts at the boundary it crosses', () => {
    const tree = nestSpans(
      [
        { id: 'a', start: 0, end: 10 },
        { id: 'b', start: 5, end: 15 },
      ],
      20,
    );
    expect(show(tree)).toBe('a[0,10){[0,5) b#0[5,10){[5,10)}} b#1[10,15){[10,15)} [15,20)');
    const parts = elements(tree).filter((n) => n.id === 'b');
    expect(parts.map((n) => [n.part, n.parts])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(elements(tree).find((n) => n.id === 'a')?.parts).toBe(1);
  });

  it('splits only the later span when a chain of spans crosses', () => {
    const tree = nestSpans(
      [
        { id: 'a', start: 0, end: 10 },
        { id: 'b', start: 5, end: 20 },
        { id: 'c', start: 15, end: 25 },
      ],
      25,
    );
    expect(show(tree)).toBe(
      'a[0,10){[0,5) b#0[5,10){[5,10)}} b#1[10,20){[10,15) c#0[15,20){[15,20)}} c#1[20,25){[20,25)}',
    );
  });

  it('splits a span once per outer span that ends inside it', () => {
    const tree = nestSpans(
      [
        { id: 'long', start: 0, end: 6 },
        { id: 'short', start: 0, end: 4 },
        { id: 'x', start: 2, end: 10 },
      ],
      10,
    );
    expect(show(tree)).toBe('long[0,6){short[0,4){[0,2) x#0[2,4){[2,4)}} x#1[4,6){[4,6)}} x#2[6,10){[6,10)}');
  });

  it('keeps a nested span whole when a crossing span is split around it', () => {
    const tree = nestSpans(
      [
        { id: 'a', start: 0, end: 10 },
        { id: 'b', start: 5, end: 15 },
        { id: 'c', start: 11, end: 13 },
      ],
      15,
    );
    expect(show(tree)).toBe('a[0,10){[0,5) b#0[5,10){[5,10)}} b#1[10,15){[10,11) c[11,13){[11,13)} [13,15)}');
  });

  it('clips spans to the text and drops empty spans and repeated ids', () => {
    const tree = nestSpans(
      [
        { id: 'a', start: -3, end: 2 },
        { id: 'b', start: 4, end: 4 },
        { id: 'c', start: 6, end: 50 },
        { id: 'a', start: 7, end: 8 },
        { id: 'd', start: Number.NaN, end: 3 },
      ],
      8,
    );
    expect(show(tree)).toBe('a[0,2){[0,2)} [2,6) c[6,8){[6,8)}');
  });

  it('keeps many overlapping spans properly nested and covering exactly their characters', () => {
    const spans: NestInput[] = [];
    for (let i = 0; i < 20; i++) spans.push({ id: `s${i}`, start: i, end: i + 10 });
    const covering = check(spans, 40);
    expect(covering.map((ids) => [...ids].sort())).toEqual(expected(spans, 40));
  });

  it('holds its invariants on random spans', () => {
    const random = seededRandom(42);
    for (let round = 0; round < 200; round++) {
      const length = 1 + random(60);
      const spans: NestInput[] = Array.from({ length: random(12) }, (_, i) => {
        const start = random(length);
        return { id: `r${i}`, start, end: start + 1 + random(length - start) };
      });
      const covering = check(spans, length);
      expect(covering.map((ids) => [...ids].sort())).toEqual(expected(spans, length));

      // A span is split only where an earlier-ranked span that covers its start ends inside it.
      const tree = nestSpans(spans, length);
      for (const s of spans) {
        const cuts = new Set(
          spans
            .filter((o) => o.start < s.start && s.start < o.end && o.end < s.end)
            .map((o) => o.end),
        );
        expect(elements(tree).filter((n) => n.id === s.id)).toHaveLength(1 + cuts.size);
      }
    }
  });
});

describe('nestParagraphs', () => {
  /** The blocks as text: each block's nodes' pieces, spans in braces (a part: its id#part first). */
  const draw = (text: string, nodes: readonly NestNode[]): string =>
    nodes.map((n) => (n.kind === 'span' ? `{${n.parts > 1 ? `${n.id}#${n.part}:` : `${n.id}:`}${draw(text, n.children)}}` : text.slice(n.start, n.end))).join('');
  const picture = (text: string, spans: NestInput[]) => nestParagraphs(spans, text).map((b) => draw(text, b.nodes));

  it('cuts after each run of line breaks', () => {
    expect(picture('One.\n\nTwo.\nThree.\r\n\r\nFour.', [])).toEqual(['One.\n\n', 'Two.\n', 'Three.\r\n\r\n', 'Four.']);
    expect(picture('\n\nlead and trail\n', [])).toEqual(['\n\n', 'lead and trail\n']);
    expect(picture('a lone\rCR is a space\n\rto a browser', [])).toEqual(['a lone\rCR is a space\n', '\rto a browser']);
    expect(picture('', [])).toEqual([]);
    expect(paragraphStarts('One.\n\nTwo.\r\nThree\n')).toEqual([6, 12]);
  });

  it('splits a span over a paragraph break into parts, one in each paragraph', () => {
    const text = 'Alpha one.\n\nBeta two.\n\nGamma.';
    expect(picture(text, [{ id: 'a', start: 6, end: 16 }])).toEqual(['Alpha {a#0:one.\n\n}', '{a#1:Beta} two.\n\n', 'Gamma.']);
    expect(picture(text, [{ id: 'b', start: 11, end: 16 }])).toEqual(['Alpha one.\n{b#0:\n}', '{b#1:Beta} two.\n\n', 'Gamma.']);
    expect(picture(text, [{ id: 'c', start: 6, end: 11 }])).toEqual(['Alpha {c:one.\n}\n', 'Beta two.\n\n', 'Gamma.']);
    // Over the whole text, with a span inside, and one crossing it: a part in each paragraph,
    // counted with the parts a crossing span makes.
    expect(
      picture(text, [
        { id: 'all', start: 0, end: text.length },
        { id: 'in', start: 12, end: 16 },
        { id: 'x', start: 20, end: 27 },
      ]),
    ).toEqual(['{all#0:Alpha one.\n\n}', '{all#1:{in:Beta} two{x#0:.\n\n}}', '{all#2:{x#1:Gamm}a.}']);
    const [, second] = nestParagraphs([{ id: 'all', start: 0, end: text.length }, { id: 'in', start: 12, end: 16 }], text);
    expect(second!.nodes).toMatchObject([{ kind: 'span', id: 'all', part: 1, parts: 3, depth: 0, children: [{ id: 'in', depth: 1, parts: 1 }, { kind: 'text' }] }]);
  });

  it('covers the text once, paragraph by paragraph, with each span over exactly its characters, split only where it must be', () => {
    const random = seededRandom(7);
    for (let round = 0; round < 500; round++) {
      const text = Array.from({ length: random(40) }, () => 'ab \n\r'[random(5)]).join('');
      const spans: NestInput[] = Array.from({ length: random(6) }, (_, i) => {
        const start = random(text.length + 1);
        return { id: `r${i}`, start, end: start + random(text.length - start + 1) };
      });
      const blocks = nestParagraphs(spans, text);
      // The paragraphs, by brute force: cut after a line feed that no line feed (maybe after a CR) follows.
      const starts: number[] = [];
      for (let p = 1; p < text.length; p++) if (text[p - 1] === '\n' && !(text[p] === '\n' || (text[p] === '\r' && text[p + 1] === '\n'))) starts.push(p);
      expect(blocks.map((b) => b.start)).toEqual(text.length > 0 ? [0, ...starts] : []);
      expect(blocks.map((b) => b.end)).toEqual(text.length > 0 ? [...starts, text.length] : []);

      // Each block's nodes join up from its start to its end, and hold the spans over each character.
      const covering: string[][] = Array.from({ length: text.length }, () => []);
      const walk = (nodes: readonly NestNode[], path: string[], from: number, to: number, depth: number) => {
        let at = from;
        for (const n of nodes) {
          expect(n.start).toBe(at);
          expect(n.end).toBeGreaterThan(n.start);
          if (n.kind === 'text') for (let i = n.start; i < n.end; i++) covering[i] = path;
          else {
            expect(n.depth).toBe(depth);
            walk(n.children, [...path, n.id], n.start, n.end, depth + 1);
          }
          at = n.end;
        }
        expect(at).toBe(to);
      };
      for (const block of blocks) walk(block.nodes, [], block.start, block.end, 0);
      const clipped = spans.filter((s) => s.end > s.start);
      expect(covering.map((ids) => [...ids].sort())).toEqual(expected(clipped, text.length));

      // A span's parts: one more than the places it is cut, where a paragraph starts inside it or
      // where an earlier-ranked span that covers its start ends inside it; numbered in order.
      const all = blocks.flatMap((b) => elements(b.nodes));
      for (const s of clipped) {
        const cuts = new Set([
          ...starts.filter((p) => s.start < p && p < s.end),
          ...clipped.filter((o) => o.start < s.start && s.start < o.end && o.end < s.end).map((o) => o.end),
        ]);
        const parts = all.filter((n) => n.id === s.id);
        expect(parts.map((n) => [n.part, n.parts])).toEqual(parts.map((_, i) => [i, 1 + cuts.size]));
      }
    }
  });
});
