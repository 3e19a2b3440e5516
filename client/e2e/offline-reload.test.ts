/**
 * A page reloaded while the server is down, in a real Chromium: the service worker's shell, the
 * API reads the client kept and the layer in IndexedDB open the workspace as it was; an edit
 * made then reaches the database once the server is back on the same port. Signing out forgets
 * the kept reads. An edit not yet saved makes the page ask before it is left, even after a
 * reload, and the document list marks its document until the server has it (a list open in
 * another tab follows); edits the user may no longer save are said apart and can be discarded;
 * a page opened offline learns the user's role again once it syncs; a browser whose storage
 * does not open (or never answers), or refuses a write (a full disk), is told so, until a write
 * of the whole layer goes through; one whose storage is full still opens online (and installs its
 * service worker); an edit the server has not stored is marked even when the page is left
 * before the mark was due, and signing out asks first while such edits wait. Relies on
 * `vite build client` having run (`npm test` does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { layerRoom, listSpans, MessageKind } from '@spanwise/shared';
import { api, login, startTestServer, storedDoc, waitFor, type TestServer } from '../../server/test/harness.ts';
import { annotate, holdAppends, keptReads, launchChromium, signIn, unsavedMark, WAIT, waitConnected } from './page-helpers.ts';
import { within } from '../src/lib/within.ts';

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

const status = (page: Page) => page.getByRole('status', { name: 'Connection' });

/** Records the page's dialogs (type and message) and answers them as last told (dismissed at first). */
function answerDialogs(page: Page) {
  const dialogs: Array<{ type: string; message: string }> = [];
  let answer: 'accept' | 'dismiss' = 'dismiss';
  page.on('dialog', (dialog) => {
    dialogs.push({ type: dialog.type(), message: dialog.message() });
    void (answer === 'accept' ? dialog.accept() : dialog.dismiss());
  });
  return { dialogs, answer: (next: 'accept' | 'dismiss') => (answer = next) };
}

/** As a browser that refuses this site storage would (an init script): every IndexedDB open fails. */
function refuseStorage() {
  IDBFactory.prototype.open = function () {
    const request = {} as { onerror?: (event: unknown) => void };
    setTimeout(() => request.onerror?.({ target: { error: new DOMException('storage refused', 'UnknownError') } }));
    return request as unknown as IDBOpenDBRequest;
  };
}

/** Gives `username` this role in the demo project, as its owner. */
async function setRole(url: string, username: string, role: 'annotator' | 'viewer'): Promise<void> {
  const res = await api(url, await login(url, 'admin'), '/api/projects/1/members', { method: 'PUT', body: JSON.stringify({ username, role }) });
  expect(res.status).toBe(200);
}

/** Makes `username` a viewer through a server of its own on the same database, while ours is stopped. */
async function demoteWhileAway(username: string): Promise<void> {
  const other = await startTestServer({ database: server.testDatabase, config: { port: 0 } });
  try {
    await setRole(other.url, username, 'viewer');
  } finally {
    await other.stop();
  }
}

/**
 * A page of alice's on `documentId`, connected, with the service worker (it claims open pages
 * once installed) and the reads the workspace and the document list need kept for offline use.
 */
async function aliceOnline(documentId: number) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${server.url}/projects/1/documents/${documentId}`);
  await signIn(page, 'alice');
  await page.locator('[data-article]').waitFor(WAIT);
  await waitConnected(page);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, WAIT);
  await waitFor(async () => {
    const kept = await keptReads(page);
    return kept.includes(`/api/documents/${documentId}`) && kept.includes('/api/projects/1/documents');
  }, 'the reads kept');
  return { context, page };
}

describe('reloading the page while the server is down', () => {
  it('still opens offline after a sign-out the server refused (its database busy): the page is signed in still', async () => {
    const { context, page } = await aliceOnline(DOCUMENT);
    try {
      await page.route('**/api/auth/logout', (route) =>
        route.fulfill({ status: 503, json: { error: { code: 'database_busy', message: 'the server is too busy to answer just now' } } }),
      );
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('alert').filter({ hasText: /Not signed out/ }).waitFor(WAIT);
      // The copies the sign-out forgot: who is signed in, and till when, are kept again.
      await waitFor(async () => {
        const kept = await keptReads(page);
        return kept.includes('/api/me') && kept.includes('/api/session');
      }, 'the session kept again');
      await page.reload(); // (online: the document's reads are kept again)
      await page.locator('[data-article]').waitFor(WAIT);
      await waitFor(async () => (await keptReads(page)).includes(`/api/documents/${DOCUMENT}`), 'the document kept');
      await context.setOffline(true);
      await page.reload();
      await page.locator('[data-article]').waitFor(WAIT);
    } finally {
      await context.close();
    }
  });

  it('opens the workspace from what the browser kept, and the edit made then is stored once the server is back', async () => {
    const { context, page } = await aliceOnline(DOCUMENT);
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

  it('opens online when the site’s storage is full: the service worker answers with the assets it could not keep', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/1/documents/${DOCUMENT}`);
    await signIn(page, 'alice');
    await page.locator('[data-article]').waitFor(WAIT);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, WAIT);
    // As after a new build, on a disk nearly full: the assets are not kept yet, and nothing more
    // can be.
    const forgotten = await page.evaluate(async () => {
      const cache = await caches.open('spanwise-shell-v1');
      const assets = (await cache.keys()).filter((r) => new URL(r.url).pathname.startsWith('/assets/'));
      for (const asset of assets) await cache.delete(asset);
      return assets.length;
    });
    expect(forgotten).toBeGreaterThan(0);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url, quotaSize: 1 });
    await cdp.send('Network.clearBrowserCache');
    const refused = await page.evaluate(async () => {
      try {
        await (await caches.open('spanwise-shell-v1')).put('/probe', new Response('x'.repeat(10_000)));
        return null;
      } catch (err) {
        return (err as Error).name;
      }
    });
    expect(refused).toBe('QuotaExceededError');
    await page.reload();
    await page.locator('[data-article]').waitFor(WAIT);
    await waitConnected(page);
    await context.close();
  });

  it('installs its service worker even when the site’s storage is full from the start', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url, quotaSize: 1 });
    await page.goto(`${server.url}/`);
    await page.getByLabel('Username').waitFor(WAIT);
    // (A worker whose install failed never takes the page: an old one, on a user's machine,
    // would have stayed in its place.)
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, WAIT);
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

describe('edits that have not reached the server', () => {
  /** Starts the server again on its port and database, once the page has seen it gone. */
  async function restart(): Promise<void> {
    server = await startTestServer({ database: server.testDatabase, config: { port: server.port } });
  }

  it('warns before the page is left while an edit made offline is not saved, across a reload, until the edit is stored', async () => {
    const documentId = 2;
    const { context, page } = await aliceOnline(documentId);
    const { dialogs, answer } = answerDialogs(page);

    await server.stop();
    let word: string;
    let list: Page | undefined;
    try {
      await status(page).filter({ hasText: /^offline — edits kept in this browser$/ }).waitFor(WAIT);
      word = await annotate(page, 1, '1');
      await status(page).filter({ hasText: 'offline — unsaved edits kept in this browser' }).waitFor(WAIT);

      // Another page of the app: asked, and staying.
      await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Projects' }).click();
      await waitFor(async () => dialogs.length === 1, 'asked before leaving for another page');
      expect(dialogs[0]).toMatchObject({ type: 'confirm', message: expect.stringContaining('kept in this browser') });
      await new Promise((r) => setTimeout(r, 300)); // (the router would have moved on by now)
      expect(new URL(page.url()).pathname).toBe(`/projects/1/documents/${documentId}`);
      expect(await page.locator('[data-annotation-id]').count()).toBe(1);

      // Closing the tab: the browser asks, and the tab stays.
      void page.close({ runBeforeUnload: true });
      await waitFor(async () => dialogs.length === 2, 'asked before the tab closes');
      expect(dialogs[1]!.type).toBe('beforeunload');
      expect(page.isClosed()).toBe(false);

      // Reloaded anyway: the page still knows the edit has not been sent.
      answer('accept');
      await page.reload();
      expect(dialogs.map((d) => d.type)).toEqual(['confirm', 'beforeunload', 'beforeunload']);
      await page.locator('[data-annotation-id]').first().waitFor(WAIT);
      await status(page).filter({ hasText: 'offline — unsaved edits kept in this browser' }).waitFor(WAIT);
      expect(await unsavedMark(page, `spanwise:u${ALICE}:${layerRoom(documentId, ALICE)}`)).toBe(1);

      // The document list says where edits wait (leaving for it is asked about, and let go).
      await page.goto(`${server.url}/projects/1`);
      expect(dialogs.map((d) => d.type)).toEqual(['confirm', 'beforeunload', 'beforeunload', 'beforeunload']);
      await page.getByRole('note').filter({ hasText: 'One document holds edits of yours kept in this browser' }).waitFor(WAIT);
      const rows = page.locator('.row-link');
      await rows.first().waitFor(WAIT);
      expect(await rows.filter({ hasText: 'not saved yet' }).count()).toBe(1);
      expect(await rows.filter({ hasText: 'not saved yet' }).getAttribute('href')).toBe(`/projects/1/documents/${documentId}`);
      await rows.filter({ hasText: 'not saved yet' }).click();
      await status(page).filter({ hasText: 'offline — unsaved edits kept in this browser' }).waitFor(WAIT);
      // The list stays open in another tab, from what the browser kept.
      list = await context.newPage();
      await list.goto(`${server.url}/projects/1`);
      await list.locator('.row-link').filter({ hasText: 'not saved yet' }).waitFor(WAIT);
    } finally {
      await restart();
    }
    const room = layerRoom(documentId, ALICE);
    // Back, but its store slow: the page's step 2 (the offline edit) is in, not yet stored, and
    // the page still says so.
    const hold = holdAppends(server);
    try {
      await waitFor(async () => server.sync.rooms.get(room)?.busy === true, 'the offline edit at the server, waiting to be stored');
      await new Promise((r) => setTimeout(r, 200)); // (time for a word the server must not send)
      expect(await unsavedMark(page, `spanwise:u${ALICE}:${room}`)).toBe(1);
      expect(await page.locator('.workspace[data-unsaved]').count()).toBe(1);
    } finally {
      hold.restore();
    }
    await waitConnected(page);
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).some((s) => s.quote === word), 'the offline edit stored', 15_000);

    // Stored (the server says so): the mark is gone from the layer's copy, and leaving asks nothing.
    await waitFor(async () => (await unsavedMark(page, `spanwise:u${ALICE}:${room}`)) === undefined, 'the mark taken away');
    // The list in the other tab follows without being reloaded.
    await list!.locator('.row-link').filter({ hasText: 'not saved yet' }).waitFor({ state: 'detached', ...WAIT });
    expect(await list!.getByRole('note').count()).toBe(0);
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Projects' }).click();
    // (Left, or asked again — which would keep the page here: said as such, not as a timeout.)
    await waitFor(async () => dialogs.length > 4 || new URL(page.url()).pathname === '/', 'left the page');
    expect(dialogs).toHaveLength(4);
    await page.waitForURL(`${server.url}/`, WAIT);
    // Nor does the document list any more.
    await page.goto(`${server.url}/projects/1`);
    await page.locator('.row-link').first().waitFor(WAIT);
    await page.locator('section[data-unsaved-read]').waitFor(WAIT); // (the marks read)
    expect(await page.locator('.row-link').filter({ hasText: 'not saved yet' }).count()).toBe(0);
    expect(await page.getByRole('note').count()).toBe(0);
    await context.close();
  });

  it('counts what the browser’s copy brings after the first sync (the copy slow to read) as unsaved until the server stores it', async () => {
    const text = 'Reuters reported that Berlin and Warsaw signed the Oder accord on Tuesday, Kovacs said.';
    const admin = await login(server.url, 'admin');
    const documentId = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Slow copy', text }) })).body.id;
    const room = layerRoom(documentId, ALICE);
    const copy = `spanwise:u${ALICE}:${room}`;
    const { context, page } = await aliceOnline(documentId);
    // An edit in the browser's copy alone: made while the server is away, and its page closed.
    await server.stop();
    let word: string;
    try {
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
      word = await annotate(page, 2, '1');
      await waitFor(async () => (await unsavedMark(page, copy)) === 1, 'the edit marked');
      answerDialogs(page).answer('accept');
      await page.close({ runBeforeUnload: true });
      await waitFor(async () => page.isClosed(), 'the page closed');
    } finally {
      await restart();
    }
    // Opened again with the copy's edits slow to read: their read is held back until the test
    // lets it go, its transaction kept open meanwhile (y-indexeddb goes on in it).
    await context.addInitScript(() => {
      let holding = true;
      (window as unknown as { letUpdatesGo: () => void }).letUpdatesGo = () => (holding = false);
      const getAll = IDBObjectStore.prototype.getAll;
      IDBObjectStore.prototype.getAll = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['getAll']>) {
        if (!holding || this.name !== 'updates') return getAll.apply(this, args);
        const store = this;
        const stand = {} as IDBRequest;
        const keepOpen = () => {
          const ping = store.count();
          ping.onsuccess = () => {
            if (holding) return keepOpen();
            const real = getAll.apply(store, args);
            real.onsuccess = () => stand.onsuccess?.call(real, { target: real } as unknown as Event);
            real.onerror = (event) => stand.onerror?.call(real, event);
          };
        };
        keepOpen();
        return stand;
      };
    });
    const again = await context.newPage();
    // The server's word that the socket's first sync is stored (MessageKind.stored, a count of 1 or more).
    const firstSyncStored = new Promise<void>((resolve) =>
      again.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => typeof payload !== 'string' && payload[0] === MessageKind.stored && payload[1]! > 0 && resolve())),
    );
    await again.goto(`${server.url}/projects/1/documents/${documentId}`);
    await waitConnected(again);
    // Synced without the copy's edit, the server's word on that sync taken: the earlier page's
    // mark stays, and the page says edits wait, for the copy has not loaded what it stands for.
    await within(firstSyncStored, WAIT.timeout, () => {
      throw new Error('the server never said the first sync was stored');
    });
    expect(await again.locator('[data-annotation-id]').count()).toBe(0);
    expect(await again.locator('.workspace[data-unsaved]').count()).toBe(1);
    expect(await unsavedMark(again, copy)).toBe(1);
    const hold = holdAppends(server);
    try {
      await again.evaluate(() => (window as unknown as { letUpdatesGo: () => void }).letUpdatesGo());
      await again.locator('[data-annotation-id]').first().waitFor(WAIT);
      // At the server, not stored: the page still says so, and leaving would ask.
      await waitFor(async () => server.sync.rooms.get(room)?.busy === true, 'the copy’s edit at the server, waiting to be stored');
      await again.waitForTimeout(200);
      expect(await again.locator('.workspace[data-unsaved]').count()).toBe(1);
      expect(await unsavedMark(again, copy)).toBe(1);
    } finally {
      hold.restore();
    }
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).some((s) => s.quote === word), 'the copy’s edit stored');
    await again.locator('.workspace:not([data-unsaved])').waitFor(WAIT);
    await waitFor(async () => (await unsavedMark(again, copy)) === undefined, 'the mark taken away');
    await context.close();
  });

  it('marks an edit the server has not stored when the page is hidden before the mark was due', async () => {
    const documentId = 5;
    const copy = `spanwise:u${ALICE}:${layerRoom(documentId, ALICE)}`;
    const { context, page } = await aliceOnline(documentId);
    const hold = holdAppends(server);
    try {
      await annotate(page, 3, '1');
      await page.locator('.workspace[data-unsaved]').waitFor(WAIT);
      expect(await unsavedMark(page, copy)).toBeUndefined(); // (not due yet: 2 s)
      // Hidden (another tab brought forward, a phone's browser sent to the back).
      const hiddenAt = Date.now();
      await page.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      await waitFor(async () => (await unsavedMark(page, copy)) === 1, 'the edit marked', 5_000);
      // At once, not when it would have been due (2 s after the edit; this test can tell the
      // two apart only while the steps before took less than a second).
      expect(Date.now() - hiddenAt).toBeLessThan(1_000);
    } finally {
      hold.restore();
      await context.close();
    }
  });

  it('counts edits whose mark the browser failed to write as not kept (signing out says they would be lost), until one is written', async () => {
    const text = 'Reuters reported that Lisbon and Porto signed the Tagus accord on Friday, Moreira said.';
    const added = await api<{ id: number }>(server.url, await login(server.url, 'admin'), '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Lost mark', text }) });
    const copy = `spanwise:u${ALICE}:${layerRoom(added.body.id, ALICE)}`;
    const { context, page } = await aliceOnline(added.body.id);
    const hold = holdAppends(server);
    const questions: string[] = [];
    page.on('dialog', (dialog) => {
      questions.push(dialog.message());
      void dialog.dismiss();
    });
    try {
      // The mark's write fails at commit, as a full disk makes it (the request itself succeeds).
      // (A transaction cannot be made to fail at its commit from a page: this one is aborted
      // once its request succeeded, and so not committed at once, as the page asks.)
      await page.evaluate(() => {
        Object.defineProperty(IDBTransaction.prototype, 'commit', { value: undefined, configurable: true });
        const put = IDBObjectStore.prototype.put;
        IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
          const request = put.apply(this, args);
          const tx = this.transaction;
          if ((window as { markFails?: boolean }).markFails && typeof args[1] === 'string' && args[1].startsWith('unsaved:')) request.addEventListener('success', () => tx.abort());
          return request;
        };
        (window as { markFails?: boolean }).markFails = true;
      });
      await annotate(page, 0, '1');
      await page.locator('.workspace[data-unsaved]').waitFor(WAIT);
      await new Promise((r) => setTimeout(r, 2_500)); // (its mark due after 2 s)
      expect(await unsavedMark(page, copy)).toBeUndefined();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await waitFor(() => questions.length === 1, 'the question before signing out');
      expect(questions[0]).toMatch(/could not keep them/);
      // The disk has room again: the next edit writes the mark.
      await page.evaluate(() => ((window as { markFails?: boolean }).markFails = false));
      await annotate(page, 1, '1');
      await waitFor(async () => (await unsavedMark(page, copy)) === 1, 'the mark written');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await waitFor(() => questions.length === 2, 'the second question');
      expect(questions[1]).toMatch(/stay in this browser/);
    } finally {
      hold.restore();
      await context.close();
    }
  });

  it('marks an edit the server has not stored when the page is reloaded before the mark was due', async () => {
    const documentId = 4;
    const room = layerRoom(documentId, ALICE);
    const copy = `spanwise:u${ALICE}:${room}`;
    const { context, page } = await aliceOnline(documentId);
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.type());
      void dialog.accept();
    });
    // The server takes the edit in and does not store it (as a socket whose network went
    // quiet looks to the page): the page marks such an edit only after 2 s, and is left sooner.
    const hold = holdAppends(server);
    let word: string;
    try {
      word = await annotate(page, 3, '1');
      await page.locator('.workspace[data-unsaved]').waitFor(WAIT);
      expect(await unsavedMark(page, copy)).toBeUndefined(); // (not due yet)
      await page.reload();
      expect(dialogs).toEqual(['beforeunload']);
      // The reloaded page knows: the edit may not have reached the server.
      await page.locator('.workspace[data-unsaved]').waitFor(WAIT);
      expect(await unsavedMark(page, copy)).toBe(1);
    } finally {
      hold.restore();
    }
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).some((s) => s.quote === word), 'the edit stored');
    await waitFor(async () => (await unsavedMark(page, copy)) === undefined, 'the mark taken away once the server says it stored the edit');
    await page.locator('.workspace:not([data-unsaved])').waitFor(WAIT);
    await context.close();
  });

  it('asks before signing out while edits wait in this browser, in the layer or only in its copy', async () => {
    const documentId = 4;
    const room = layerRoom(documentId, ALICE);
    const { context, page } = await aliceOnline(documentId);
    const { dialogs, answer } = answerDialogs(page);
    const signOut = page.getByRole('button', { name: 'Sign out' });
    const hold = holdAppends(server);
    let word: string;
    try {
      word = await annotate(page, 5, '1');
      await page.locator('.workspace[data-unsaved]').waitFor(WAIT);
      // In the open layer: asked, and kept signed in.
      await signOut.click();
      await waitFor(async () => dialogs.length === 1, 'asked before signing out');
      expect(dialogs[0]).toMatchObject({ type: 'confirm', message: expect.stringContaining('have not reached the server') });
      await new Promise((r) => setTimeout(r, 300)); // (time for a sign-out that must not happen)
      expect(await signOut.isEnabled()).toBe(true);
      expect(await page.locator('.user-name').textContent()).toBe('alice');
      // Only in its copy (the layer left, for the list): asked too.
      answer('accept');
      await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Projects' }).click();
      await page.waitForURL(`${server.url}/`, WAIT);
      expect(dialogs.map((d) => d.type)).toEqual(['confirm', 'confirm']); // (leaving the layer was asked about)
      answer('dismiss');
      await signOut.click();
      await waitFor(async () => dialogs.length === 3, 'asked before signing out, from the list');
      expect(dialogs[2]!.message).toContain('have not reached the server');
      expect(await page.locator('.user-name').textContent()).toBe('alice');
      // Signing out anyway keeps the edit in the browser.
      answer('accept');
      await signOut.click();
      await page.getByLabel('Username').waitFor(WAIT);
      expect(dialogs).toHaveLength(4);
      expect(await unsavedMark(page, `spanwise:u${ALICE}:${room}`)).toBe(1);
    } finally {
      hold.restore();
    }
    // (The server had the edit, held: stored once let go.)
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).some((s) => s.quote === word), 'the edit stored');
    await context.close();
  });

  it('learns the role again at the first sync of a page opened offline', async () => {
    const { context, page } = await aliceOnline(3);
    const port = server.port;
    await server.stop();
    try {
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
      await page.reload();
      await page.locator('[data-article]').waitFor(WAIT);
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
      expect(await page.getByRole('button', { name: 'PERSON' }).isDisabled()).toBe(false);

      // Made a viewer while the page was away (through a server the page does not know of).
      await demoteWhileAway('alice');
    } finally {
      await restart();
    }
    expect(server.port).toBe(port);
    try {
      await status(page).filter({ hasText: 'connected · read-only' }).waitFor(WAIT);
      expect(await page.getByRole('button', { name: 'PERSON' }).isDisabled()).toBe(true);
    } finally {
      await setRole(server.url, 'alice', 'annotator');
    }
    await context.close();
  });

  it('says where edits wait that can no longer be saved and lets them be discarded, and the list in another tab follows', async () => {
    const documentId = 5;
    const room = layerRoom(documentId, ALICE);
    const copy = `spanwise:u${ALICE}:${room}`;
    const { context, page } = await aliceOnline(documentId);
    // The document list, open in another tab throughout.
    const list = await context.newPage();
    const questions: string[] = [];
    list.on('dialog', (dialog) => {
      questions.push(dialog.message());
      void dialog.accept();
    });
    await list.goto(`${server.url}/projects/1`);
    await list.locator('section[data-unsaved-read]').waitFor(WAIT);
    const rows = list.locator('.row-link');
    expect(await rows.filter({ hasText: 'not saved yet' }).count()).toBe(0);

    await server.stop();
    let word: string;
    try {
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
      word = await annotate(page, 2, '1');
      // The other tab learns of the mark without being reloaded.
      await rows.filter({ hasText: 'not saved yet' }).first().waitFor(WAIT);
      expect(await rows.filter({ hasText: 'not saved yet' }).getAttribute('href')).toBe(`/projects/1/documents/${documentId}`);
      await list.getByRole('note').filter({ hasText: 'One document holds edits of yours' }).waitFor(WAIT);

      // Made a viewer while the page was away: her layer is no longer hers to write (nor, in
      // blind review, to open), and the edit will not be stored.
      await demoteWhileAway('alice');
    } finally {
      await restart();
    }
    try {
      await page.close({ runBeforeUnload: false });
      await list.reload();
      const stranded = list.locator('[data-stranded]');
      await stranded.filter({ hasText: 'One document holds edits of yours kept in this browser that cannot be saved' }).waitFor(WAIT);
      expect(await rows.filter({ hasText: 'cannot be saved' }).getAttribute('href')).toBe(`/projects/1/documents/${documentId}`);
      expect(await rows.filter({ hasText: 'not saved yet' }).count()).toBe(0);
      expect(await list.getByRole('note').filter({ hasText: 'not saved yet' }).count()).toBe(0);
      expect(await unsavedMark(list, copy)).toBe(1);

      // Not while the server cannot say whether she may edit again (the list's view of it may
      // be old): nothing is deleted.
      await server.stop();
      try {
        await stranded.getByRole('button', { name: 'Discard them' }).click();
        await stranded.filter({ hasText: 'Nothing was discarded' }).waitFor(WAIT);
        expect(await unsavedMark(list, copy)).toBe(1);
      } finally {
        await restart();
      }

      // Nor when the server says she may edit there again (the list did not know): the copy is
      // kept, and the list now says it will be sent.
      await setRole(server.url, 'alice', 'annotator');
      await stranded.getByRole('button', { name: 'Discard them' }).click();
      await stranded.waitFor({ state: 'detached', ...WAIT });
      await rows.filter({ hasText: 'not saved yet' }).first().waitFor(WAIT);
      expect(await unsavedMark(list, copy)).toBe(1);
      await setRole(server.url, 'alice', 'viewer');
      await list.reload();
      await stranded.waitFor(WAIT);

      // Discarded (asked first): the copy is gone from the browser, and so is the list's word.
      await stranded.getByRole('button', { name: 'Discard them' }).click();
      await stranded.waitFor({ state: 'detached', ...WAIT });
      expect(questions).toHaveLength(3);
      for (const q of questions) expect(q).toContain('cannot be brought back');
      expect(await rows.filter({ hasText: 'cannot be saved' }).count()).toBe(0);
      expect(await list.evaluate(async (name) => (await indexedDB.databases()).some((d) => d.name === name), copy)).toBe(false);
      expect(listSpans(await storedDoc(server.database.db, room)).some((s) => s.quote === word)).toBe(false);
    } finally {
      await setRole(server.url, 'alice', 'annotator');
    }
    await context.close();
  });

  it('tries to reconnect at waits drawn apart, not on a schedule every page shares', async () => {
    const context = await browser.newContext();
    // Every draw the lowest: each wait is then half of y-websocket's own (0.2, 0.4, 0.8, 1.6 s).
    await context.addInitScript(() => {
      Math.random = () => 0;
      const tries: number[] = [];
      (window as unknown as { syncTries: number[] }).syncTries = tries;
      window.WebSocket = class extends window.WebSocket {
        constructor(url: string | URL, protocols?: string | string[]) {
          super(url, protocols);
          if (String(url).includes('/sync/')) tries.push(performance.now());
        }
      };
    });
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/1/documents/3`);
    await signIn(page, 'alice');
    await waitConnected(page);
    const database = server.testDatabase;
    const port = server.port;
    await server.stop();
    try {
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
      await new Promise((r) => setTimeout(r, 3_500));
      // The first try opened the page's socket; those after it came after a wait each. Between
      // the 1st and 2nd retry, y-websocket's own schedule waits 400 ms, then 800, 1,600 …: here
      // half of each.
      const tries = await page.evaluate(() => (window as unknown as { syncTries: number[] }).syncTries);
      const waits = tries.slice(2).map((t, i) => t - tries[i + 1]!);
      expect(waits.length).toBeGreaterThanOrEqual(3);
      waits.slice(0, 4).forEach((wait, i) => expect(wait, `wait ${i + 2}`).toBeLessThan(0.75 * 100 * 2 ** (i + 2)));
    } finally {
      server = await startTestServer({ database, config: { port } });
    }
    await waitConnected(page);
    await context.close();
  });

  it('says so when the browser cannot open its storage, and the layer still syncs', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript(refuseStorage);
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/1/documents/4`);
    await signIn(page, 'alice');
    await page.getByRole('note').filter({ hasText: 'could not open its storage' }).waitFor(WAIT);
    await waitConnected(page);
    const word = await annotate(page, 0, '1');
    const room = layerRoom(4, ALICE);
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).some((s) => s.quote === word), 'the edit stored');
    // An edit the server has not stored is only in the page: signing out would lose it, and
    // the question says so.
    const { dialogs } = answerDialogs(page);
    const hold = holdAppends(server);
    try {
      await annotate(page, 6, '1');
      await page.locator('.workspace[data-unsaved]').waitFor(WAIT);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await waitFor(async () => dialogs.length === 1, 'asked before signing out');
      expect(dialogs[0]!.message).toContain('could not keep them: signing out now loses them');
    } finally {
      hold.restore();
    }
    await context.close();
  });

  it('asks, signing out from another tab, about the edits a tab holds only in the page', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const list = await context.newPage();
    await list.goto(`${server.url}/projects/1`);
    await signIn(list, 'alice');
    await list.getByRole('button', { name: 'Sign out' }).waitFor(WAIT);
    // A second tab whose storage will not open (as the test above): its edits are only in it.
    const tab = await context.newPage();
    await tab.addInitScript(refuseStorage);
    await tab.goto(`${server.url}/projects/1/documents/5`);
    await tab.getByRole('note').filter({ hasText: 'could not open its storage' }).waitFor(WAIT);
    await waitConnected(tab);
    const { dialogs } = answerDialogs(list);
    const hold = holdAppends(server);
    try {
      await annotate(tab, 7, '1'); // (a word no test before labels: the same label on the same text is not made twice)
      await tab.locator('.workspace[data-unsaved]').waitFor(WAIT);
      await list.getByRole('button', { name: 'Sign out' }).click();
      await waitFor(async () => dialogs.length === 1, 'asked before signing out');
      expect(dialogs[0]!.message).toContain('could not keep them: signing out now loses them');
      // Dismissed: still signed in, in both tabs.
      expect((await api(server.url, (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; '), '/api/me')).status).toBe(200);
    } finally {
      hold.restore();
    }
    // Stored: the question is gone with the edits' wait.
    await tab.locator('.workspace:not([data-unsaved])').waitFor(WAIT);
    await list.getByRole('button', { name: 'Sign out' }).click();
    await list.getByRole('button', { name: 'Sign in' }).waitFor(WAIT);
    expect(dialogs).toHaveLength(1);
    await context.close();
  });

  it('says so too when the browser’s storage never answers, and the layer still syncs', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // An open that stays pending (blocked behind a delete another tab holds up, say).
    await context.addInitScript(() => {
      IDBFactory.prototype.open = () => ({}) as IDBOpenDBRequest;
    });
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/1/documents/5`);
    await signIn(page, 'alice');
    await page.getByRole('note').filter({ hasText: 'could not open its storage' }).waitFor(WAIT);
    await waitConnected(page);
    const word = await annotate(page, 0, '1');
    await waitFor(async () => listSpans(await storedDoc(server.database.db, layerRoom(5, ALICE))).some((s) => s.quote === word), 'the edit stored');
    await context.close();
  });

  it('says edits are kept only in the page while the browser cannot store them (its disk full), and keeps them again once it can', async () => {
    const text = 'Reuters reported that Berlin and Warsaw signed the Oder accord on Tuesday, Kovacs said.';
    const added = await api<{ id: number }>(server.url, await login(server.url, 'admin'), '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Full disk', text }) });
    const documentId = added.body.id;
    const room = layerRoom(documentId, ALICE);
    const { context, page } = await aliceOnline(documentId);
    const first = await annotate(page, 0, '1');
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).length === 1, 'the first span stored');
    // A full disk, as the browser meets it: a write's transaction aborts (Chromium's quota
    // override, which the service worker test uses, binds Cache Storage but not IndexedDB here).
    await page.evaluate(() => {
      const add = IDBObjectStore.prototype.add;
      IDBObjectStore.prototype.add = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>) {
        const request = add.apply(this, args);
        if ((window as { diskFull?: boolean }).diskFull) this.transaction.abort();
        return request;
      };
    });
    const diskFull = (full: boolean) => page.evaluate((f) => ((window as { diskFull?: boolean }).diskFull = f), full);
    const database = server.testDatabase;
    const port = server.port;
    await server.stop();
    let second: string;
    let third: string;
    try {
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
      // The disk fills up: the layer's copy can take no more.
      await diskFull(true);
      second = await annotate(page, 1, '1');
      await status(page).filter({ hasText: 'offline — unsaved edits kept only while this page is open' }).waitFor(WAIT);
      await page.getByRole('note').filter({ hasText: 'or it is full' }).waitFor(WAIT);
      // Room again: the next edit's write carries what the refused one lost.
      await diskFull(false);
      third = await annotate(page, 2, '1');
      await status(page).filter({ hasText: 'offline — unsaved edits kept in this browser' }).waitFor(WAIT);
      expect(await page.getByRole('note').filter({ hasText: 'or it is full' }).count()).toBe(0);
      // So a reload, the server still away, opens all three from the copy.
      page.on('dialog', (dialog) => void dialog.accept()); // (asked before leaving: edits wait)
      await page.reload();
      await page.locator('[data-article]').waitFor(WAIT);
      await status(page).filter({ hasText: /^offline/ }).waitFor(WAIT);
      await waitFor(async () => (await page.locator('[data-annotation-id]').count()) === 3, 'the three spans, from the copy');
    } finally {
      server = await startTestServer({ database, config: { port } });
    }
    await waitConnected(page);
    await waitFor(async () => listSpans(await storedDoc(server.database.db, room)).length === 3, 'the spans made offline stored', 15_000);
    expect(listSpans(await storedDoc(server.database.db, room)).map((s) => s.quote).sort()).toEqual([first, second, third].sort());
    await context.close();
  });

  it('does not ask before signing out about edits kept for a document the server no longer has for the user', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await signIn(page, 'alice');
    await page.locator('.row-link').first().waitFor(WAIT);
    // A layer's copy holding edits of alice's never sent, for a document since deleted.
    const copy = `spanwise:u${ALICE}:${layerRoom(999, ALICE)}`;
    await page.evaluate(
      (name) =>
        new Promise<void>((resolve, reject) => {
          const open = indexedDB.open(name, 1);
          open.onupgradeneeded = () => {
            open.result.createObjectStore('updates', { autoIncrement: true });
            open.result.createObjectStore('custom');
          };
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const put = open.result.transaction('custom', 'readwrite').objectStore('custom').put(1, 'unsaved');
            put.onsuccess = () => {
              open.result.close();
              resolve();
            };
            put.onerror = () => reject(put.error);
          };
        }),
      copy,
    );
    expect(await unsavedMark(page, copy)).toBe(1);
    const questions: string[] = [];
    page.on('dialog', (dialog) => {
      questions.push(dialog.message());
      void dialog.dismiss();
    });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Username').waitFor(WAIT);
    expect(questions).toEqual([]);
    await context.close();
  });
});
