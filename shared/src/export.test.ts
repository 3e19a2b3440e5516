import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { bratAnn, bratConf, BratNames, bratText, conllBlock, jsonlRecord, w3cAnnotations, type ExportDocument, type ExportLayer } from './export.ts';
import { addRelation, addSpan, listRelations, listSpans, setAttribute } from './layer.ts';
import { DEFAULT_SCHEMA } from './schema.ts';
import { sentences, tokenize } from './tokenize.ts';

// "😀" is one code point and two UTF-16 units: every offset after it differs by one.
const TEXT = 'Iran 😀 supplied Fateh-110 missiles.\nKirby said so.';
const doc: ExportDocument = { id: 7, title: 'T', text: TEXT };

function layerOf(build: (d: Y.Doc) => void, name = 'gold', annotator: string | null = null): ExportLayer {
  const d = new Y.Doc();
  build(d);
  return { name, annotator, spans: listSpans(d), relations: listRelations(d) };
}
const span = (d: Y.Doc, label: string, quote: string, from = 0) => {
  const start = TEXT.indexOf(quote, from);
  return addSpan(d, { label, start, end: start + quote.length, quote, author: 1 });
};
/** Code point offset of a UTF-16 index in TEXT. */
const cp = (utf16: number) => [...TEXT.slice(0, utf16)].length;

describe('tokenize', () => {
  it('splits words, keeps inner hyphens and periods, and gives UTF-16 offsets', () => {
    expect(tokenize('The U.S. said Fateh-110, 1,000 km.').map((t) => t.text)).toEqual(['The', 'U.S', '.', 'said', 'Fateh-110', ',', '1,000', 'km', '.']);
    const t = tokenize(TEXT);
    for (const token of t) expect(TEXT.slice(token.start, token.end)).toBe(token.text);
  });

  it('never makes a token of a character Python splits at (\x1c-\x1f, \x85)', () => {
    expect(tokenize('a\x1cb \x85 c\x1f').map((t) => t.text)).toEqual(['a', 'b', 'c']);
  });

  it('keeps a user-perceived character whole: emoji joined by zero-width joiners, flags, skin tones', () => {
    const text = 'a 👩\u200d👩\u200d👧 b 🇫🇷🇩🇪 👍🏽! e\u0301 \u0600 1';
    expect(tokenize(text).map((t) => t.text)).toEqual(['a', '👩\u200d👩\u200d👧', 'b', '🇫🇷', '🇩🇪', '👍🏽', '!', 'e\u0301', '\u0600', '1']);
    for (const token of tokenize(text)) expect(text.slice(token.start, token.end)).toBe(token.text);
    // A Prepend character (an Arabic number sign) joins the word after it, not a space.
    const prepended = 'Page \u0600123 a\u0600b \u{110BD}\u{11083} end \u0600';
    expect(tokenize(prepended).map((t) => t.text)).toEqual(['Page', '\u0600123', 'a', '\u0600b', '\u{110BD}\u{11083}', 'end', '\u0600']);
    const segmenter = new Intl.Segmenter('und', { granularity: 'grapheme' });
    for (const token of tokenize(prepended)) expect([...segmenter.segment(prepended)].some((g) => g.index + g.segment.length === token.end)).toBe(true);
  });

  const split = (text: string) => sentences(text).map((s) => s.map((t) => t.text).join(' '));

  it('ends a sentence after . ! ? … and at every line break Python knows', () => {
    expect(split('One. Two!\nThree four\nFive')).toEqual(['One .', 'Two !', 'Three four', 'Five']);
    expect(split('A\rB\u2028C\x85D\r\nE')).toEqual(['A', 'B', 'C', 'D', 'E']);
  });

  it('ends a sentence after other scripts’ full stops and question marks, and the brackets that close on them', () => {
    expect(split('伊朗否认。俄罗斯证实！真的吗？！是的。')).toEqual(['伊朗否认 。', '俄罗斯证实 ！', '真的吗 ？！', '是的 。']);
    expect(split('「はい。」と言った｡次')).toEqual(['「 はい 。 」 と言った ｡', '次']);
    expect(split('他说：“是的。”然后走了。好。')).toEqual(['他说 ： “ 是的 。 ” 然后走了 。', '好 。']);
    expect(split('He said "No." Then he left.')).toEqual(['He said " No . "', 'Then he left .']);
    expect(split('Iran denied it؟ Russia confirmed। Next॥ End')).toEqual(['Iran denied it ؟', 'Russia confirmed ।', 'Next ॥', 'End']);
  });

  it('does not end a sentence after an abbreviation, an initial or a title, nor before a lower-case word', () => {
    expect(split('The U.S. said no. Then e.g. this.')).toEqual(['The U.S . said no .', 'Then e.g . this .']);
    expect(split('Mr. Kirby met Gen. Smith on Nov. 5. Then he left.')).toEqual(['Mr . Kirby met Gen . Smith on Nov . 5 .', 'Then he left .']);
    expect(split('J. R. R. Tolkien wrote it.')).toEqual(['J . R . R . Tolkien wrote it .']);
    // Unless a word that starts sentences, and is no name, comes next.
    expect(split('It chose Plan B. The plan failed.')).toEqual(['It chose Plan B .', 'The plan failed .']);
    expect(split('Sent by the U.S. It was late. The U.S. Army came.')).toEqual(['Sent by the U.S .', 'It was late .', 'The U.S . Army came .']);
    expect(split('A shop on Main St. But it shut.')).toEqual(['A shop on Main St .', 'But it shut .']);
    // Not after a title, whatever follows, nor after what leads on; nor before a name that is a word too.
    expect(split('Bands, e.g. The Beatles and The Who, toured.')).toEqual(['Bands , e.g . The Beatles and The Who , toured .']);
    expect(split('Bruce Springsteen, a.k.a. The Boss, sang.')).toEqual(['Bruce Springsteen , a.k.a . The Boss , sang .']);
    expect(split('We met Mr. Her at noon. Dr. He Jiankui and Gen. So came. Dr. The rest.')).toEqual(['We met Mr . Her at noon .', 'Dr . He Jiankui and Gen . So came .', 'Dr . The rest .']);
    expect(split('The U.S. In 2020 it was J. He who wrote. Then St. Paul came.')).toEqual(['The U.S . In 2020 it was J . He who wrote .', 'Then St . Paul came .']);
    // A known abbreviation ends one before an upper-case word; a word with inner periods never does.
    expect(split('Apple Inc. said so. Apple Inc. The end.')).toEqual(['Apple Inc . said so .', 'Apple Inc .', 'The end .']);
    expect(split('Open https://x.org/a?b=1 now. OK')).toEqual(['Open https : / / x.org / a ? b = 1 now .', 'OK']);
    expect(split('“Why?” he asked.')).toEqual(['“ Why ? ” he asked .']);
    expect(split('Go. \u{1E922}dlam word.')).toEqual(['Go . \u{1E922}dlam word .']); // (a lower-case letter past U+FFFF)
  });

  it('keeps a run of end punctuation one token, and the quotes and brackets that close on it in its sentence', () => {
    expect(split('Yes... And then?! Maybe.')).toEqual(['Yes ...', 'And then ?!', 'Maybe .']);
    expect(split('He said: "No." Then (he did.) Next')).toEqual(['He said : " No . "', 'Then ( he did . )', 'Next']);
    expect(split('“Because.” She left.')).toEqual(['“ Because . ”', 'She left .']);
    // (A quote after a space opens the next sentence.)
    expect(split('Done. "Next," she said.')).toEqual(['Done .', '" Next , " she said .']);
  });
});

describe('export formats', () => {
  const layer = layerOf((d) => {
    const claim = span(d, 'CLAIM', 'supplied Fateh-110 missiles');
    setAttribute(d, claim, 'stance', 'asserts');
    const weapon = span(d, 'WEAPON', 'Fateh-110');
    span(d, 'GPE', 'Iran');
    const kirby = span(d, 'PERSON', 'Kirby');
    addRelation(d, { label: 'object', from: claim, to: weapon, author: 1 });
    addRelation(d, { label: 'source', from: claim, to: kirby, author: 1 });
  });

  it('jsonl: one line per document and layer, offsets in code points', () => {
    const line = jsonlRecord(doc, layer);
    expect(line.endsWith('\n')).toBe(true);
    const record = JSON.parse(line);
    expect(record).toMatchObject({ document_id: 7, layer: 'gold', annotator: null, text: TEXT });
    const weapon = record.spans.find((s: { label: string }) => s.label === 'WEAPON');
    const at = TEXT.indexOf('Fateh-110');
    expect(weapon).toMatchObject({ start: cp(at), end: cp(at) + 9, text: 'Fateh-110' });
    expect(weapon.start).toBe(at - 1);
    // Code point offsets index the text as Python would.
    for (const s of record.spans) expect([...TEXT].slice(s.start, s.end).join('')).toBe(s.text);
    expect(record.spans.find((s: { label: string }) => s.label === 'CLAIM').attributes).toEqual({ stance: 'asserts' });
    expect(record.relations.map((r: { label: string }) => r.label).sort()).toEqual(['object', 'source']);
    // doccano's sequence labelling: the same spans as [start, end, label], in code points.
    expect(record.label).toEqual(record.spans.map((s: { start: number; end: number; label: string }) => [s.start, s.end, s.label]));
    expect(record.label).toContainEqual([cp(at), cp(at) + 9, 'WEAPON']);
  });

  it('jsonl: leaves out a span whose offsets do not fit the text, and relations to it', () => {
    const broken = layerOf((d) => {
      const a = span(d, 'GPE', 'Iran');
      const b = addSpan(d, { label: 'ORG', start: 40, end: 400, quote: 'x', author: 1 });
      addRelation(d, { label: 'object', from: a, to: b, author: 1 });
    });
    const record = JSON.parse(jsonlRecord(doc, broken));
    expect(record.spans.map((s: { label: string }) => s.label)).toEqual(['GPE']);
    expect(record.relations).toEqual([]);
  });

  it('conll: BIO tags per token, a blank line after each sentence, the longer of overlapping spans', () => {
    const block = conllBlock(doc, layer);
    const lines = block.split('\n');
    expect(lines.slice(0, 2)).toEqual(['-DOCSTART- -X- document=7;layer=gold O', '']);
    const rows = lines.filter((l) => l && !l.startsWith('-DOCSTART-')).map((l) => l.split(' '));
    expect(rows.every((r) => r.length === 4)).toBe(true);
    const tag = (token: string) => rows.find((r) => r[0] === token)?.[3];
    expect(tag('Iran')).toBe('B-GPE');
    expect(tag('supplied')).toBe('B-CLAIM');
    // WEAPON nests in the CLAIM: BIO keeps the longer span.
    expect(tag('Fateh-110')).toBe('I-CLAIM');
    expect(tag('missiles')).toBe('I-CLAIM');
    expect(tag('Kirby')).toBe('B-PERSON');
    expect(tag('said')).toBe('O');
    // DOCSTART and two sentences, each followed by a blank line.
    expect(block.split('\n\n').length).toBe(4);
  });

  it('conll: never starts a sentence inside a span, and keeps labels one column', () => {
    const text = 'The U.S. Army left.\nThen the Islamic\nRepublic spoke.';
    const d = { id: 1, title: 't', text };
    const l = layerOf((y) => {
      for (const quote of ['U.S. Army', 'Islamic\nRepublic']) {
        const start = text.indexOf(quote);
        addSpan(y, { label: quote.startsWith('U') ? 'ORG' : 'GOV BODY', start, end: start + quote.length, quote, author: 1 });
      }
    });
    const sentencesOut = conllBlock(d, l)
      .split('\n\n')
      .slice(1)
      .filter(Boolean)
      .map((b) => b.split('\n').filter(Boolean).map((line) => line.split(' ')));
    for (const sentence of sentencesOut) expect(sentence[0]![3]).not.toMatch(/^I-/);
    const tagsOf = (token: string) => sentencesOut.flat().find((r) => r[0] === token)?.[3];
    expect([tagsOf('U.S'), tagsOf('.'), tagsOf('Army')]).toEqual(['B-ORG', 'I-ORG', 'I-ORG']);
    expect([tagsOf('Islamic'), tagsOf('Republic')]).toEqual(['B-GOV_BODY', 'I-GOV_BODY']);
  });

  it('skips spans whose offsets a client wrote wrong, and odd timestamps, in every format', () => {
    const odd = layerOf((d) => {
      span(d, 'GPE', 'Iran');
      const emoji = TEXT.indexOf('😀');
      addSpan(d, { label: 'X', start: emoji + 1, end: emoji + 4, quote: '', author: 1 }); // inside the surrogate pair
      addSpan(d, { label: 'X', start: 0.5, end: 3, quote: '', author: 1 });
      addSpan(d, { label: 'X', start: Number.NaN, end: 3, quote: '', author: 1 });
    });
    const withBadTime: ExportLayer = { ...odd, spans: odd.spans.map((s) => ({ ...s, createdAt: 1e20, updatedAt: Number.NaN })) };
    expect(JSON.parse(jsonlRecord(doc, withBadTime)).spans.map((s: { label: string }) => s.label)).toEqual(['GPE']);
    expect(conllBlock(doc, withBadTime)).toContain('Iran -X- _ B-GPE');
    expect(bratAnn(doc, withBadTime, new BratNames())).toBe('T1\tGPE 0 4\tIran\n');
    const items = w3cAnnotations(doc, withBadTime, 'http://x.test/d') as Array<Record<string, unknown>>;
    expect(items).toHaveLength(1);
    expect(items[0]!.created).toBeUndefined();
  });

  it('keeps only string attributes, whatever a peer stored, so no format fails on them', () => {
    const odd = layerOf((d) => {
      const id = span(d, 'CLAIM', 'supplied');
      const m = d.getMap<Y.Map<unknown>>('annotations').get(id)!;
      const nested = new Y.Map<unknown>();
      m.set('attributes', { stance: 'asserts', count: 1n, weird: { toString: 0 }, list: ['a'], none: null });
      const other = span(d, 'WEAPON', 'Fateh-110');
      d.getMap<Y.Map<unknown>>('annotations').get(other)!.set('attributes', nested);
    });
    expect(odd.spans.map((s) => s.attributes)).toEqual([{ stance: 'asserts' }, {}]);
    expect(() => jsonlRecord(doc, odd)).not.toThrow();
    expect(bratAnn(doc, odd, new BratNames())).toContain('stance');
    expect(() => w3cAnnotations(doc, odd, 'http://x/')).not.toThrow();
  });

  it('brat: standoff lines in code points, fragments across a line break, attributes and relations', () => {
    const crossing = layerOf((d) => {
      const claim = span(d, 'CLAIM', 'supplied Fateh-110 missiles');
      setAttribute(d, claim, 'stance', 'denies');
      const across = span(d, 'EVENT', 'missiles.\nKirby');
      addRelation(d, { label: 'source', from: claim, to: across, author: 1 });
    });
    const ann = bratAnn(doc, crossing, new BratNames()).trimEnd().split('\n');
    const at = cp(TEXT.indexOf('supplied'));
    expect(ann[0]).toBe(`T1\tCLAIM ${at} ${at + 27}\tsupplied Fateh-110 missiles`);
    expect(ann).toContain('A1\tstance T1 denies');
    const m = cp(TEXT.indexOf('missiles'));
    const k = cp(TEXT.indexOf('Kirby'));
    expect(ann).toContain(`T2\tEVENT ${m} ${m + 9};${k} ${k + 5}\tmissiles. Kirby`);
    expect(ann).toContain('R1\tsource Arg1:T1 Arg2:T2');
  });

  it('brat: with CRLF line breaks, the .txt has LF and the offsets count it as one character', () => {
    const text = 'Iran 😀 denied it.\r\nKirby said so.\rThe U.S.\r\n\r\nagreed.';
    const span = (id: string, quote: string, from = 0) => {
      const start = text.indexOf(quote, from);
      return { id, kind: 'span', label: 'X', start, end: start + quote.length, quote, attributes: {}, entityId: null, author: 1, createdAt: 0, updatedAt: 0 } as const;
    };
    const l: ExportLayer = { name: 'gold', annotator: null, spans: [span('a', 'Iran'), span('b', 'Kirby'), span('c', 'U.S.\r\n\r\nagreed')], relations: [] };
    const txt = bratText(text);
    expect(txt).toBe('Iran 😀 denied it.\nKirby said so.\nThe U.S.\n\nagreed.');
    const points = [...txt];
    for (const line of bratAnn({ id: 1, title: 't', text }, l, new BratNames()).trimEnd().split('\n')) {
      const [, mid, quote] = line.split('\t');
      const pieces = mid!.split(' ').slice(1).join(' ').split(';').map((p) => p.split(' ').map(Number) as [number, number]);
      expect(pieces.map(([a, b]) => points.slice(a, b).join('')).join(' ')).toBe(quote);
    }
    expect(bratAnn({ id: 1, title: 't', text }, l, new BratNames())).toContain('T2\tX 18 23\tKirby');
  });

  it('brat: names with spaces become one token, and every line break Python knows splits a fragment', () => {
    const text = 'alpha beta\rgamma\u2028delta';
    const d = { id: 2, title: 't', text };
    const l = layerOf((y) => {
      const a = addSpan(y, { label: 'ORG', start: 6, end: text.length, quote: '', author: 1 });
      setAttribute(y, a, 'my stance', 'not sure');
      const b = addSpan(y, { label: 'GPE', start: 0, end: 5, quote: 'alpha', author: 1 });
      addRelation(y, { label: 'located in', from: a, to: b, author: 1 });
    });
    const ann = bratAnn(d, l, new BratNames()).trimEnd().split('\n');
    expect(ann).toContain('T2\tORG 6 10;11 16;17 22\tbeta gamma delta');
    expect(ann).toContain('A1\tmy_stance T2 not_sure');
    expect(ann).toContain('R1\tlocated_in Arg1:T2 Arg2:T1');
    for (const line of ann) expect(line.split('\t').length).toBeLessThanOrEqual(3);
  });

  it('brat: names in the form brat reads them, the same in annotation.conf and the .ann file', () => {
    // brat reads any character of a name but A-Z a-z 0-9 _ - as _ (a leading # would make a
    // comment of the line, a leading ! an unused type).
    const schema = {
      ...DEFAULT_SCHEMA,
      spans: DEFAULT_SCHEMA.spans.map((sp) => (sp.name === 'CLAIM' ? { ...sp, attributes: [{ name: 'Négation (v2)', values: ['yes.', 'yes!', 'no!'] }] } : sp)),
      relations: [{ name: 'part.of' }, { name: '#source' }, { name: '!x' }, { name: 'да' }, { name: 'не' }],
    };
    const names = new BratNames(); // (one export's)
    const conf = bratConf(schema, names);
    expect(conf).toContain('part_of\tArg1:<ENTITY>, Arg2:<ENTITY>');
    expect(conf).toContain('_source\tArg1:<ENTITY>, Arg2:<ENTITY>');
    expect(conf).toContain('_x\tArg1:<ENTITY>, Arg2:<ENTITY>');
    // Names that come out alike are told apart.
    expect(conf).toContain('N_gation__v2_\tArg:CLAIM, Value:yes_|yes__2|no_');
    expect(conf).toContain('__\tArg1:<ENTITY>, Arg2:<ENTITY>\n___2\tArg1');
    const l = layerOf((y) => {
      const claim = span(y, 'CLAIM', 'supplied Fateh-110 missiles');
      setAttribute(y, claim, 'Négation (v2)', 'yes!');
      const kirby = span(y, 'PERSON', 'Kirby');
      addRelation(y, { label: '#source', from: claim, to: kirby, author: 1 });
      addRelation(y, { label: 'не', from: claim, to: kirby, author: 1 });
    });
    const ann = bratAnn(doc, l, names);
    expect(ann).toContain('\tN_gation__v2_ T1 yes__2\n'); // as the .conf names it
    expect(ann).toContain('\t___2 Arg1:T1 Arg2:T2\n');
    expect(ann).toContain('\t_source Arg1:T1 Arg2:T2\n');
  });

  it('jsonl and conll: a character Python takes for a line break never splits a record or a row', () => {
    const text = 'Paris\u2028is\u0085big.';
    const d = { id: 3, title: 't', text };
    const l = layerOf((y) => void addSpan(y, { label: 'G\u0085PE', start: 0, end: 5, quote: 'Paris', author: 1 }));
    const line = jsonlRecord(d, l);
    expect(line.trimEnd()).not.toMatch(/[\n\r\u2028\u2029\u0085]/);
    expect(JSON.parse(line).text).toBe(text);
    const rows = conllBlock(d, l).split('\n').filter((r) => r && !r.startsWith('-DOCSTART-'));
    expect(rows[0]).toBe('Paris -X- _ B-G_PE');
    for (const row of rows) expect(row.split(/[\s\x1c-\x1f\x85]+/)).toHaveLength(4); // (as Python's split() does)
  });

  it('conll: cuts a token where a span starts or ends inside it, rather than stretching the span', () => {
    const text = 'Iran’s missiles and Iran-Russia ties.';
    const d = { id: 4, title: 't', text };
    const l = layerOf((y) => {
      for (const [quote, from] of [['Iran', 0], ['Iran', 10], ['Russia', 0]] as const) {
        const start = text.indexOf(quote, from);
        addSpan(y, { label: 'GPE', start, end: start + quote.length, quote, author: 1 });
      }
    });
    const rows = conllBlock(d, l).split('\n').filter((r) => r && !r.startsWith('-DOCSTART-')).map((r) => r.split(' '));
    expect(rows.map((r) => [r[0], r[3]])).toEqual([
      ['Iran', 'B-GPE'],
      ['’s', 'O'],
      ['missiles', 'O'],
      ['and', 'O'],
      ['Iran', 'B-GPE'],
      ['-', 'O'],
      ['Russia', 'B-GPE'],
      ['ties', 'O'],
      ['.', 'O'],
    ]);
    // Not at the edges of a span left out (it overlaps a longer one): 'missiles' stays whole.
    const nested = layerOf((y) => {
      addSpan(y, { label: 'CLAIM', start: 7, end: 15, quote: 'missiles', author: 1 });
      addSpan(y, { label: 'WEAPON', start: 7, end: 14, quote: 'missile', author: 1 });
    });
    const nestedRows = conllBlock(d, nested).split('\n').filter((r) => r && !r.startsWith('-DOCSTART-')).map((r) => r.split(' '));
    expect(nestedRows.slice(1, 3).map((r) => [r[0], r[3]])).toEqual([['missiles', 'B-CLAIM'], ['and', 'O']]);
  });

  it('brat: annotation.conf lists the schema’s labels, relations and attributes', () => {
    const conf = bratConf(DEFAULT_SCHEMA, new BratNames());
    expect(conf).toMatch(/^\[entities\]\nPERSON\nORG\nGPE\nWEAPON\nEVENT\nCLAIM\n/);
    expect(conf).toContain('subject\tArg1:<ENTITY>, Arg2:<ENTITY>');
    expect(conf).toContain('stance\tArg:CLAIM, Value:asserts|denies|uncertain');
  });

  it('brat: annotation.conf written after the .ann files also declares what they hold beyond the schema', () => {
    const names = new BratNames();
    const odd = layerOf((d) => {
      const claim = span(d, 'CLAIM', 'supplied Fateh-110 missiles');
      setAttribute(d, claim, 'stance', 'maybe'); // a value the schema does not have
      const weapon = span(d, 'WEAPON', 'Fateh-110');
      setAttribute(d, weapon, 'stance', 'asserts'); // on a label the schema does not give it
      const legacy = span(d, 'LEGACY TYPE', 'Kirby'); // a label since taken out of the schema
      addRelation(d, { label: 'cites', from: claim, to: legacy, author: 1 });
    });
    bratConf(DEFAULT_SCHEMA, names); // (the schema's names first, as an export does)
    const ann = bratAnn(doc, odd, names);
    const conf = bratConf(DEFAULT_SCHEMA, names);
    expect(ann).toContain('\tLEGACY_TYPE ');
    expect(conf).toMatch(/^\[entities\]\nPERSON\nORG\nGPE\nWEAPON\nEVENT\nCLAIM\nLEGACY_TYPE\n/);
    expect(conf).toContain('cites\tArg1:<ENTITY>, Arg2:<ENTITY>');
    expect(conf).toContain('stance\tArg:CLAIM|WEAPON, Value:asserts|denies|uncertain|maybe');
    // Every name the .ann file uses is declared.
    for (const line of ann.trimEnd().split('\n')) {
      const [, what] = line.split('\t');
      for (const name of what!.split(' ').filter((w) => !/^(T|Arg\d:T)\d+$|^\d+$/.test(w) && !/^\d+;\d+$/.test(w))) {
        expect(conf.split(/[\n\t,:| ]/)).toContain(name);
      }
    }
  });

  it('w3c: tagging annotations with position and quote selectors, linking annotations for relations', () => {
    const source = 'http://example.test/projects/1/documents/7';
    const items = w3cAnnotations(doc, { ...layer, name: 'user:2', annotator: 'alice' }, source) as Array<Record<string, any>>;
    const weapon = items.find((a) => a.body?.[0]?.value === 'WEAPON')!;
    const at = TEXT.indexOf('Fateh-110');
    expect(weapon).toMatchObject({ type: 'Annotation', motivation: 'tagging', creator: { type: 'Person', nickname: 'alice' } });
    expect(weapon.target.source).toBe(source);
    expect(weapon.target.selector[0]).toEqual({ type: 'TextPositionSelector', start: cp(at), end: cp(at) + 9 });
    expect(weapon.target.selector[1]).toMatchObject({ type: 'TextQuoteSelector', exact: 'Fateh-110', prefix: 'Iran 😀 supplied ', suffix: ' missiles.\nKirby said so.' });
    const links = items.filter((a) => a.motivation === 'linking');
    expect(links).toHaveLength(2);
    const object = links.find((a) => a.body[0].value === 'object')!;
    const claim = items.find((a) => a.body?.[0]?.value === 'CLAIM')!;
    expect(object.target).toEqual({ type: 'List', items: [claim.id, weapon.id] });
    expect(claim.body[1]).toEqual({ type: 'TextualBody', purpose: 'describing', value: 'stance: asserts' });
  });
});
