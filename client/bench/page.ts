/**
 * `npm run bench:page`: the annotation page on a long document, in Debian's Chromium. A document
 * of ~200,000 characters with 5,000 spans in alice's layer; prints how long the page takes to
 * show them all, how long a label key takes to show its span (keydown → the mark in the DOM),
 * how long a span another client adds takes to show, and the page's long tasks (> 50 ms)
 * meanwhile, while N other people (curators) on the layer move their selections, each every 150
 * ms. Needs the built client (`npm run build`). Options: --chars N, --spans N, --edits N,
 * --peers N (default 5), --profile FILE (a CPU profile of the page while the label keys are
 * pressed, for DevTools), --outer (one more span, over the whole text: every edit lands inside it).
 */
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { addSpan, layerRoom } from '@spanwise/shared';
import { api, connectLayer, login, startTestServer, storedDoc, waitFor, type LayerClient } from '../../server/test/harness.ts';
import { hashPassword } from '../../server/src/features/auth/password.ts';
import { usersRepository } from '../../server/src/features/auth/users.repository.ts';
import { projectsRepository } from '../../server/src/features/projects/projects.repository.ts';
import { userColor } from '../src/sync/presence.ts';
import { launchChromium, seedText, selectText, signIn } from '../e2e/page-helpers.ts';
import { writeFile } from 'node:fs/promises';

const { values } = parseArgs({
  options: { chars: { type: 'string', default: '200000' }, spans: { type: 'string', default: '5000' }, edits: { type: 'string', default: '20' }, peers: { type: 'string', default: '5' }, profile: { type: 'string' }, outer: { type: 'boolean', default: false } },
});
const CHARS = Number(values.chars);
const SPANS = Number(values.spans);
const EDITS = Number(values.edits);
const PEERS = Number(values.peers);
const ALICE = 2;

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
};
const figures = (xs: number[]) => `p50 ${quantile(xs, 0.5).toFixed(1)} ms, p95 ${quantile(xs, 0.95).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (${xs.length})`;

/** The page's window with what `watch` records: the last keydown, each new mark's time, long tasks. */
type Watched = { bench: { keyAt: number; marks: number[]; longTasks: number[] } };

/** Page-side: times from each keydown, and from each moment asked, to the next new mark. */
async function watch(page: Page): Promise<void> {
  await page.evaluate(() => {
    const bench: Watched['bench'] = { keyAt: 0, marks: [], longTasks: [] };
    (window as unknown as Watched).bench = bench;
    window.addEventListener('keydown', () => (bench.keyAt = performance.now()), { capture: true });
    const article = document.querySelector('[data-article]')!;
    let count = article.querySelectorAll('[data-annotation-id]').length;
    new MutationObserver(() => {
      const now = article.querySelectorAll('[data-annotation-id]').length;
      if (now > count) bench.marks.push(performance.timeOrigin + performance.now());
      count = now;
    }).observe(article, { childList: true, subtree: true });
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) bench.longTasks.push(entry.duration);
    }).observe({ type: 'longtask', buffered: false });
  });
}

async function main() {
  const server = await startTestServer({ demo: true });
  const browser = await launchChromium();
  try {
    const admin = await login(server.url, 'admin');
    const text = (await seedText(CHARS)).slice(0, CHARS);
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
      if (values.outer) addSpan(writer.doc, { label: 'CLAIM', start: 0, end: text.length, quote: text, author: ALICE });
    });
    const stored = SPANS + (values.outer ? 1 : 0);
    await waitFor(async () => (await storedDoc(server.database.db, room)).getMap('annotations').size === stored, 'the spans stored', 120_000);
    // Other people on the layer, each moving their selection to a word at random every 150 ms.
    const peers: LayerClient[] = [];
    for (let i = 0; i < PEERS; i++) {
      const username = `peer${i + 1}`;
      const id = await usersRepository(server.database.db).insert(username, await hashPassword('demo'));
      await projectsRepository(server.database.db).addMember(1, id, 'curator');
      const peer = connectLayer(server.url, room, await login(server.url, username));
      await peer.synced;
      peer.provider.awareness.setLocalState({ user: { id, name: username, color: userColor(id) }, selection: null });
      peers.push(peer);
    }
    const moving = setInterval(() => {
      for (const peer of peers) {
        const m = words[Math.floor(Math.random() * words.length)]!;
        peer.provider.awareness.setLocalStateField('selection', { start: m.index!, end: m.index! + m[0].length });
      }
    }, 150);
    console.log(`document ${text.length} characters, ${SPANS} spans in alice's layer${values.outer ? ' (and one over the whole text)' : ''}, ${PEERS} others moving their selections every 150 ms`);

    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    await page.goto(`${server.url}/projects/1/documents/${documentId}`);
    await signIn(page, 'alice');
    const opened = performance.now();
    await page.waitForFunction((n) => document.querySelectorAll('[data-article] [data-annotation-id]').length >= n, stored, { timeout: 120_000, polling: 50 });
    console.log(`open: signed in → ${stored} marks shown in ${(performance.now() - opened).toFixed(0)} ms`);
    await watch(page);

    // A label key on a selected word, EDITS times.
    const profiler = values.profile ? await page.context().newCDPSession(page) : null;
    if (profiler) {
      await profiler.send('Profiler.enable');
      await profiler.send('Profiler.start');
    }
    const local: number[] = [];
    for (let i = 0; i < EDITS; i++) {
      const m = words[(SPANS + i) * step + Math.floor(step / 2)]!;
      await selectText(page, m.index!, m.index! + m[0].length);
      const before = await page.evaluate(() => (window as unknown as Watched).bench.marks.length);
      await page.keyboard.press('2');
      await page.waitForFunction((n) => (window as unknown as Watched).bench.marks.length > n, before, { polling: 'raf' });
      local.push(await page.evaluate(() => (window as unknown as Watched).bench.marks.at(-1)! - performance.timeOrigin - (window as unknown as Watched).bench.keyAt));
    }
    console.log(`label key → its mark shown: ${figures(local)}`);
    if (profiler) {
      const { profile } = await profiler.send('Profiler.stop');
      await writeFile(values.profile!, JSON.stringify(profile));
      console.log(`CPU profile of the label keys written to ${values.profile}`);
    }

    // Another client of alice's adds a span, EDITS times.
    const remote: number[] = [];
    for (let i = 0; i < EDITS; i++) {
      const m = words[(SPANS + EDITS + i) * step + Math.floor(step / 2)]!;
      const before = await page.evaluate(() => (window as unknown as Watched).bench.marks.length);
      const sentAt = performance.timeOrigin + performance.now();
      addSpan(writer.doc, { label: 'GPE', start: m.index!, end: m.index! + m[0].length, quote: m[0], author: ALICE });
      await page.waitForFunction((n) => (window as unknown as Watched).bench.marks.length > n, before, { polling: 'raf' });
      remote.push((await page.evaluate(() => (window as unknown as Watched).bench.marks.at(-1)!)) - sentAt);
    }
    console.log(`another client's span → shown: ${figures(remote)} (server and sync included)`);
    const longTasks = await page.evaluate(() => (window as unknown as Watched).bench.longTasks);
    console.log(`long tasks (> 50 ms) meanwhile: ${longTasks.length}${longTasks.length ? `, ${figures(longTasks)}` : ''}`);
    writer.destroy();
    clearInterval(moving);
    for (const peer of peers) peer.destroy();
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
