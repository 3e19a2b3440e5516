/**
 * A page reloaded while the server is down, in a real Chromium: the service worker's shell, the
 * API reads the client kept and the layer in IndexedDB open the workspace as it was; an edit
 * made then reaches the database once the server is back on the same port. Signing out forgets
 * the kept reads. Relies on `vite build client` having run (`npm test` does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { layerRoom, listSpans } from '@spanwise/shared';
import { startTestServer, storedDoc, waitFor, type TestServer } from '../../server/test/harness.ts';
import { findWord, launchChromium, selectText, signIn, WAIT, waitConnected } from './page-helpers.ts';

const ALICE = 2;
const DOCUMENT = 1;

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer({ demo: true, persistent: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** The API reads this page's client keeps for offline use (api/offline-copies.ts). */
const keptReads = (page: Page) =>
  page.evaluate(async () => {
    if (!(await caches.has('spanwise-api'))) return [];
    const keys = await (await caches.open('spanwise-api')).keys();
    return keys.map((r) => new URL(r.url).pathname).sort();
  });

async function annotate(page: Page, nth: number, key: string): Promise<string> {
  const word = await findWord(page, nth);
  const before = await page.locator('[data-annotation-id]').count();
  await selectText(page, word.start, word.end);
  await page.keyboard.press(key);
  await waitFor(async () => (await page.locator('[data-annotation-id]').count()) === before + 1, `span on “${word.word}”`);
  return word.word;
}

const status = (page: Page) => page.getByRole('status', { name: 'Connection' });

describe('reloading the page while the server is down', () => {
  it('opens the workspace from what the browser kept, and the edit made then is stored once the server is back', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/1/documents/${DOCUMENT}`);
    await signIn(page, 'alice');
    await page.locator('[data-article]').waitFor(WAIT);
    await waitConnected(page);
    // The worker takes the page over once installed (it claims open pages).
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, WAIT);
    const first = await annotate(page, 0, '1');
    const room = layerRoom(DOCUMENT, ALICE);
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).length === 1, 'the first span stored');
    const everyRead = ['/api/documents/1', '/api/me', '/api/projects/1', '/api/projects/1/documents', '/api/session'];
    await waitFor(async () => JSON.stringify(await keptReads(page)) === JSON.stringify(everyRead), 'every read kept');
    const title = await page.locator('h1').textContent();

    const database = server.testDatabase;
    const port = server.port;
    await server.stop();
    let second: string;
    try {
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);

      // Nothing from the browser's own HTTP cache (where the assets would be, immutable): the
      // page must come from what the service worker kept.
      await (await context.newCDPSession(page)).send('Network.clearBrowserCache');
      await page.reload();
      await page.locator('[data-article]').waitFor(WAIT);
      expect(await page.locator('h1').textContent()).toBe(title);
      await page.locator('[data-annotation-id]').first().waitFor(WAIT);
      expect(await page.locator('[data-annotation-id]').first().textContent()).toContain(first);
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
      second = await annotate(page, 2, '1');
    } finally {
      server = await startTestServer({ database, config: { port } });
    }
    await waitConnected(page);
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).length === 2, 'the offline span stored', 15_000);
    const stored = listSpans(await storedDoc(server.database.db, room)).map((s) => s.quote);
    expect(stored.sort()).toEqual([first, second].sort());

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Username').waitFor(WAIT);
    await waitFor(async () => (await keptReads(page)).length === 0, 'the kept reads forgotten');
    await context.close();
  });

  it('does not open from what was kept once the session it was kept in is over', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/1/documents/${DOCUMENT}`);
    await signIn(page, 'alice');
    await page.locator('[data-article]').waitFor(WAIT);
    await waitFor(async () => (await keptReads(page)).includes('/api/session'), 'the session end kept');

    const database = server.testDatabase;
    const port = server.port;
    await server.stop();
    try {
      // The session ran out (its cookie with it) while nobody was at the browser.
      await page.evaluate(async () => {
        const cache = await caches.open('spanwise-api');
        const ended = new Date(Date.now() - 1_000).toISOString();
        await cache.put('/api/session', new Response(JSON.stringify({ expiresAt: ended }), { headers: { 'content-type': 'application/json' } }));
      });
      await page.reload();
      await page.getByRole('alert').filter({ hasText: /cannot be reached/ }).waitFor(WAIT);
      expect(await page.locator('[data-article]').count()).toBe(0);
      expect(await keptReads(page)).toEqual([]);
    } finally {
      server = await startTestServer({ database, config: { port } });
    }
    await context.close();
  });
});
