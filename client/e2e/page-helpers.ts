/**
 * What the browser tests do to a page as a person would: sign in, find a word, select text,
 * wait for the connection. Shared by the e2e test files.
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import { waitFor, type TestServer } from '../../server/test/harness.ts';
import type { SyncStore } from '../../server/src/sync/types.ts';
import { readSeeds } from '../../server/src/features/demo/demo.seed.ts';
import path from 'node:path';

export const WAIT = { timeout: 15_000 };

/** The seed articles over and over, each after a blank line, to at least `chars` characters: a long document. */
export async function seedText(chars: number): Promise<string> {
  const articles = (await readSeeds(path.join(import.meta.dirname, '../../seeds'))).map((a) => a.text);
  let text = '';
  for (let i = 0; text.length < chars; i++) text += `${articles[i % articles.length]}\n\n`;
  return text;
}

/** Debian's Chromium (or CHROMIUM_PATH), headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export async function signIn(page: Page, username: string): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill('demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor(WAIT);
}

/** Offsets of the nth capitalised word (4+ letters) of the article, counting from 0. */
export async function findWord(page: Page, nth: number): Promise<{ start: number; end: number; word: string }> {
  return page.locator('[data-article]').evaluate((el, n) => {
    const matches = [...(el.textContent ?? '').matchAll(/\b[A-Z][a-z]{3,}\b/g)];
    const m = matches[n];
    if (!m || m.index === undefined) throw new Error(`no word #${n} in the article`);
    return { start: m.index, end: m.index + m[0].length, word: m[0] };
  }, nth);
}

/** Selects [start, end) of the article's text, as a person dragging over it would. */
export async function selectText(page: Page, start: number, end: number): Promise<void> {
  await page.locator('[data-article]').evaluate(
    (el, [s, e]) => {
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      const range = document.createRange();
      let seen = 0;
      let started = false;
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const len = (node as Text).length;
        if (!started && s < seen + len) {
          range.setStart(node, s - seen);
          started = true;
        }
        if (started && e <= seen + len) {
          range.setEnd(node, e - seen);
          break;
        }
        seen += len;
      }
      const selection = window.getSelection()!;
      selection.removeAllRanges();
      selection.addRange(range);
    },
    [start, end] as const,
  );
}

export async function waitConnected(page: Page): Promise<void> {
  await page.getByRole('status', { name: 'Connection' }).filter({ hasText: /^connected$/ }).waitFor(WAIT);
}

/** Labels the nth capitalised word of the article with the label of shortcut `key`; returns the word. */
export async function annotate(page: Page, nth: number, key: string): Promise<string> {
  const word = await findWord(page, nth);
  const before = await page.locator('[data-annotation-id]').count();
  await selectText(page, word.start, word.end);
  await page.keyboard.press(key);
  await waitFor(async () => (await page.locator('[data-annotation-id]').count()) === before + 1, `span on “${word.word}”`);
  return word.word;
}

/** The API reads the page's client keeps for offline use (api/offline-copies.ts). */
export function keptReads(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    if (!(await caches.has('spanwise-api'))) return [];
    const keys = await (await caches.open('spanwise-api')).keys();
    return keys.map((r) => new URL(r.url).pathname).sort();
  });
}

/**
 * Makes every append of the server's store hang from now on; `restore` lets them go and puts
 * the store back (call it in a `finally`).
 */
export function holdAppends(server: TestServer): { restore: () => void } {
  const store = (server.sync as unknown as { options: { store: SyncStore } }).options.store;
  const append = store.append;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  store.append = async (name, updates) => {
    await held;
    return append.call(store, name, updates);
  };
  return {
    restore: () => {
      release();
      store.append = append;
    },
  };
}

/** 1 while a layer's IndexedDB copy holds a mark (edits made in some page not saved yet), else undefined. */
export function unsavedMark(page: Page, database: string): Promise<unknown> {
  return page.evaluate(
    (name) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open(name);
        open.onerror = () => (open.error?.name === 'AbortError' ? resolve(undefined) : reject(open.error));
        // Not there: opening it would make an empty one (which y-indexeddb could not use).
        open.onupgradeneeded = () => open.transaction?.abort();
        open.onsuccess = () => {
          // (One mark per page: `unsaved:<page>`, or `unsaved` as earlier pages wrote it.)
          const marks = open.result.transaction('custom').objectStore('custom').getAll(IDBKeyRange.bound('unsaved', 'unsaved:\uffff'));
          marks.onsuccess = () => {
            open.result.close();
            resolve(marks.result.includes(1) ? 1 : undefined);
          };
          marks.onerror = () => reject(marks.error);
        };
      }),
    database,
  );
}
