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
    expect(await keptReads(page)).toEqual(['/api/documents/1', '/api/me', '/api/projects/1', '/api/projects/1/documents']);
    const title = await page.locator('h1').textContent();

    const database = server.testDatabase;
    const port = server.port;
    await server.stop();
    await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);

    await page.reload();
    await page.locator('[data-article]').waitFor(WAIT);
    expect(await page.locator('h1').textContent()).toBe(title);
    await page.locator('[data-annotation-id]').first().waitFor(WAIT);
    expect(await page.locator('[data-annotation-id]').first().textContent()).toContain(first);
    await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
    const second = await annotate(page, 2, '1');

    server = await startTestServer({ database, config: { port } });
    await waitConnected(page);
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).length === 2, 'the offline span stored', 15_000);
    const stored = listSpans(await storedDoc(server.database.db, room)).map((s) => s.quote);
    expect(stored.sort()).toEqual([first, second].sort());

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Username').waitFor(WAIT);
    expect(await keptReads(page)).toEqual([]);
    await context.close();
  });
});
