import { describe, expect, it } from 'vitest';
import type { ExportLayer, SpanAnnotation } from '@spanwise/shared';
import { convert, INLINE_MAX_CHARS, type ConvertJob } from './convert.ts';
import { convertDocument, type TextFormat } from './convert-document.ts';

/** Every piece an async generator yields. */
async function collect<T>(pieces: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const piece of pieces) out.push(piece);
  return out;
}

const SENTENCE = 'Reuters reported that Vienna and Prague signed the Danube accord on Monday, Novak said. ';

/** A document of about `chars` characters, with a GPE span on every Vienna of its first 200 sentences. */
function longDocument(chars: number): { doc: ConvertJob['doc']; layers: ExportLayer[] } {
  const text = SENTENCE.repeat(Math.ceil(chars / SENTENCE.length));
  const spans: SpanAnnotation[] = Array.from({ length: 200 }, (_, i) => {
    const start = i * SENTENCE.length + SENTENCE.indexOf('Vienna');
    return { id: `s${i}`, kind: 'span', label: 'GPE', start, end: start + 6, quote: 'Vienna', attributes: {}, entityId: null, author: 1, createdAt: 0, updatedAt: 0 };
  });
  return {
    doc: { id: 7, title: 'Long', text },
    layers: [
      { name: 'gold', annotator: null, spans, relations: [] },
      { name: 'user:2', annotator: 'alice', spans: spans.slice(0, 10), relations: [] },
    ],
  };
}

describe('convert', () => {
  it('converts a long document on its worker to what the event loop would make of it', async () => {
    const { doc, layers } = longDocument(INLINE_MAX_CHARS * 3);
    for (const format of ['jsonl', 'conll', 'w3c'] satisfies TextFormat[]) {
      const job = { format, doc, layers, source: 'https://example.org/documents/7' };
      const pieces = await collect(convert(job));
      expect(pieces).toEqual(convertDocument(job));
      expect(pieces.length).toBe(format === 'w3c' ? 210 : 2);
    }
  });

  it('keeps the event loop turning while it converts a long document', async () => {
    const { doc, layers } = longDocument(2_000_000);
    const job = { format: 'conll' as const, doc, layers, source: '' };
    await collect(convert({ ...job, doc: longDocument(INLINE_MAX_CHARS + 1).doc })); // (the worker started)
    let last = performance.now();
    let longest = 0;
    const ticks = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 5);
    try {
      const started = performance.now();
      const pieces = await collect(convert(job));
      const took = performance.now() - started;
      await new Promise((r) => setTimeout(r, 30)); // (a tick after it, which sees a stall that ended it)
      expect(pieces[0]!.split('\n').filter((line) => line.endsWith('B-GPE'))).toHaveLength(200);
      // Converted on the event loop, the whole conversion would be one stall (~1 s here).
      expect(longest).toBeLessThan(Math.max(100, took / 4));
    } finally {
      clearInterval(ticks);
    }
  });
});
