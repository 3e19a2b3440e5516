import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { addSpan, annotationsMap, listSpans, setAttribute } from './layer.ts';

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

describe('attributes', () => {
  /** Two peers' docs, each with what the other had at the start. */
  const twoPeers = () => {
    const a = new Y.Doc();
    const id = addSpan(a, { label: 'CLAIM', start: 0, end: 4, quote: 'text', author: 1, attributes: { stance: 'asserts', old: 'kept' } });
    const b = new Y.Doc();
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    const sync = () => {
      Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)));
      Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)));
    };
    return { a, b, id, sync };
  };
  const attributesOf = (doc: Y.Doc) => listSpans(doc)[0]!.attributes;

  it('keeps both of two attributes two people set on one span at once', () => {
    const { a, b, id, sync } = twoPeers();
    setAttribute(a, id, 'stance', 'denies');
    setAttribute(b, id, 'certainty', 'high');
    sync();
    expect(attributesOf(a)).toEqual({ stance: 'denies', old: 'kept', certainty: 'high' });
    expect(attributesOf(b)).toEqual(attributesOf(a));
  });

  it('settles on one value when both set the same attribute, and a removal holds against what the span was made with', () => {
    const { a, b, id, sync } = twoPeers();
    setAttribute(a, id, 'stance', 'denies');
    setAttribute(b, id, 'stance', 'uncertain');
    setAttribute(b, id, 'old', null);
    sync();
    expect(attributesOf(a)).toEqual(attributesOf(b));
    expect(['denies', 'uncertain']).toContain(attributesOf(a).stance);
    expect(attributesOf(a)).not.toHaveProperty('old');
  });

  it('reads a name like any other, whatever objects have (__proto__), and only string values', () => {
    const doc = new Y.Doc();
    const id = addSpan(doc, { label: 'CLAIM', start: 0, end: 4, quote: 'text', author: 1 });
    setAttribute(doc, id, '__proto__', 'yes');
    annotationsMap(doc).get(id)!.set('attr:count', 3);
    const attributes = attributesOf(doc);
    expect(Object.getPrototypeOf(attributes)).toBe(Object.prototype);
    expect(Object.entries(attributes)).toEqual([['__proto__', 'yes']]);
    expect(JSON.parse(JSON.stringify(attributes))).toEqual(JSON.parse('{"__proto__":"yes"}'));
  });
});
