/**
 * `npm run bench:page`: the annotation page on a long document, in Debian's Chromium. A document
 * of ~200,000 characters with 5,000 spans in alice's layer; prints how long the page takes to
 * show them all, how long a label key takes to show its span (keydown → the mark in the DOM),
 * how long a span another client adds takes to show, and the page's long tasks (> 50 ms)
 * meanwhile. Needs the built client (`npm run build`). Options: --chars N, --spans N, --edits N.
 */
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { addSpan, layerRoom } from '@spanwise/shared';
import { api, connectLayer, login, startTestServer, storedDoc, waitFor } from '../../server/test/harness.ts';
import { launchChromium, signIn } from '../e2e/page-helpers.ts';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const { values } = parseArgs({
  options: { chars: { type: 'string', default: '200000' }, spans: { type: 'string', default: '5000' }, edits: { type: 'string', default: '20' } },
});
const CHARS = Number(values.chars);
const SPANS = Number(values.spans);
const EDITS = Number(values.edits);
const ALICE = 2;

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
};
const figures = (xs: number[]) => `p50 ${quantile(xs, 0.5).toFixed(1)} ms, p95 ${quantile(xs, 0.95).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (${xs.length})`;

/** The seed articles, over and over, to CHARS characters. */
function longText(): string {
  const dir = path.join(import.meta.dirname, '../../seeds');
  const articles = readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => readFileSync(path.join(dir, f), 'utf8'));
  let text = '';
  for (let i = 0; text.length < CHARS; i++) text += articles[i % articles.length] + '\n\n';
  return text.slice(0, CHARS);
}

/** Page-side: times from each keydown, and from each moment asked, to the next new mark. */
async function watch(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { bench: { keyAt: number; marks: number[]; longTasks: number[] } };
    w.bench = { keyAt: 0, marks: [], longTasks: [] };
    window.addEventListener('keydown', () => (w.bench.keyAt = performance.now()), { capture: true });
    const article = document.querySelector('[data-article]')!;
    let count = article.querySelectorAll('[data-annotation-id]').length;
    new MutationObserver(() => {
      const now = article.querySelectorAll('[data-annotation-id]').length;
      if (now > count) w.bench.marks.push(performance.timeOrigin + performance.now());
      count = now;
    }).observe(article, { childList: true, subtree: true });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) w.bench.longTasks.push(entry.duration);
    }).observe({ type: 'longtask', buffered: false });
  });
}

async function main() {
  const server = await startTestServer({ demo: true });
  const browser = await launchChromium();
  try {
    const admin = await login(server.url, 'admin');
    const text = longText();
    const documentId = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Long', text }) })).body.id;
    const room = layerRoom(documentId, ALICE);
    const words = [...text.matchAll(/\p{L}{3,}/gu)];
    const step = Math.floor(words.length / (SPANS + EDITS * 2));
    const alice = await login(server.url, 'alice');
    const writer = connectLayer(server.url, room, alice);
    await writer.synced;
    // (One update: one message each would pass a socket's message rate.)
    writer.doc.transact(() => {
      for (let i = 0; i < SPANS; i++) {
        const m = words[i * step]!;
        addSpan(writer.doc, { label: 'PERSON', start: m.index!, end: m.index! + m[0].length, quote: m[0], author: ALICE });
      }
    });
    await waitFor(async () => (await storedDoc(server.database.db, room)).getMap('annotations').size === SPANS, 'the spans stored', 120_000);
    console.log(`document ${text.length} characters, ${SPANS} spans in alice's layer`);

    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${server.url}/projects/1/documents/${documentId}`);
    await signIn(page, 'alice');
    const opened = performance.now();
    await page.waitForFunction((n) => document.querySelectorAll('[data-article] [data-annotation-id]').length >= n, SPANS, { timeout: 120_000, polling: 50 });
    console.log(`open: signed in → ${SPANS} marks shown in ${(performance.now() - opened).toFixed(0)} ms`);
    await watch(page);

    // A label key on a selected word, EDITS times.
    const local: number[] = [];
    for (let i = 0; i < EDITS; i++) {
      const m = words[(SPANS + i) * step + Math.floor(step / 2)]!;
      await page.evaluate(([start, end]) => {
        const article = document.querySelector('[data-article]')!;
        const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
        let seen = 0;
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const len = (node as Text).length;
          if (start >= seen && end <= seen + len) {
            window.getSelection()!.setBaseAndExtent(node, start - seen, node, end - seen);
            return;
          }
          seen += len;
        }
      }, [m.index!, m.index! + m[0].length] as const);
      const before = await page.evaluate(() => (window as unknown as { bench: { marks: number[] } }).bench.marks.length);
      await page.keyboard.press('2');
      await page.waitForFunction((n) => (window as unknown as { bench: { marks: number[] } }).bench.marks.length > n, before, { polling: 'raf' });
      local.push(await page.evaluate(() => {
        const b = (window as unknown as { bench: { keyAt: number; marks: number[] } }).bench;
        return b.marks.at(-1)! - performance.timeOrigin - b.keyAt;
      }));
    }
    console.log(`label key → its mark shown: ${figures(local)}`);

    // Another client of alice's adds a span, EDITS times.
    const remote: number[] = [];
    for (let i = 0; i < EDITS; i++) {
      const m = words[(SPANS + EDITS + i) * step + Math.floor(step / 2)]!;
      const before = await page.evaluate(() => (window as unknown as { bench: { marks: number[] } }).bench.marks.length);
      const sentAt = performance.timeOrigin + performance.now();
      addSpan(writer.doc, { label: 'GPE', start: m.index!, end: m.index! + m[0].length, quote: m[0], author: ALICE });
      await page.waitForFunction((n) => (window as unknown as { bench: { marks: number[] } }).bench.marks.length > n, before, { polling: 'raf' });
      remote.push((await page.evaluate(() => (window as unknown as { bench: { marks: number[] } }).bench.marks.at(-1)!)) - sentAt);
    }
    console.log(`another client's span → shown: ${figures(remote)} (server and sync included)`);
    const longTasks = await page.evaluate(() => (window as unknown as { bench: { longTasks: number[] } }).bench.longTasks);
    console.log(`long tasks (> 50 ms) meanwhile: ${longTasks.length}${longTasks.length ? `, ${figures(longTasks)}` : ''}`);
    writer.destroy();
  } finally {
    await browser.close();
    await server.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench failed:', err);
    process.exit(1);
  },
);
