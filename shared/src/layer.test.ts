import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { addSpan, annotationsMap, listSpans } from './layer.ts';

describe('reading a layer', () => {
  it('lists only spans with whole, non-negative offsets, whatever else another client wrote', () => {
    const doc = new Y.Doc();
    const good = addSpan(doc, { label: 'GPE', start: 13, end: 17, quote: 'Iran', author: 2 });
    // What a client of its own could write into its layer's annotations.
    doc.transact(() => {
      for (const [id, start, end] of [
        ['nan', Number.NaN, 5],
        ['nan-end', 1, Number.NaN],
        ['infinite', 0, Number.POSITIVE_INFINITY],
        ['fraction', 1.5, 4],
        ['negative', -3, 4],
        ['backwards', 9, 2],
        ['empty', 4, 4],
        ['text', '1', '4'],
      ] as const) {
        const m = new Y.Map<unknown>();
        annotationsMap(doc).set(id, m);
        m.set('kind', 'span');
        m.set('label', 'ORG');
        m.set('start', start);
        m.set('end', end);
      }
    });
    expect(listSpans(doc).map((s) => s.id)).toEqual([good]);
  });
});
