/**
 * Two people on one layer in two real Chromium contexts against the real server: alice
 * annotates her layer while dana, a curator, watches it and annotates too; each sees the
 * other's spans and presence live. Relies on `vite build client` having run (`npm test` does).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type Browser, type BrowserContext, type Page, type Route } from 'playwright-core';
import { addSpan, DEFAULT_SCHEMA, deleteAnnotation, layerRoom, relabel } from '@spanwise/shared';
import { api, connectLayer, login, startTestServer, waitFor, type TestServer } from '../../server/test/harness.ts';
import { SESSION_COOKIE } from '../../server/src/features/auth/auth.service.ts';
import { hashPassword } from '../../server/src/features/auth/password.ts';
import { usersRepository } from '../../server/src/features/auth/users.repository.ts';
import { projectsRepository } from '../../server/src/features/projects/projects.repository.ts';
import { findWord, launchChromium, seedText, selectText, signIn, WAIT, waitConnected } from './page-helpers.ts';

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer({ demo: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('the login gate', () => {
  it('shows the login form on a document page without a session, and stays there after signing in', async () => {
    const api = await request.newContext({ baseURL: server.url });
    await api.post('/api/auth/login', { data: { username: 'alice', password: 'demo' } });
    const [project] = (await (await api.get('/api/projects')).json()) as { id: number }[];
    const [doc] = (await (await api.get(`/api/projects/${project!.id}/documents`)).json()) as { id: number }[];
    await api.dispose();

    const context = await browser.newContext();
    const page = await context.newPage();
    const path = `/projects/${project!.id}/documents/${doc!.id}`;
    await page.goto(server.url + path);
    await page.getByLabel('Password').waitFor(WAIT);
    expect(await page.getByLabel('Username').isVisible()).toBe(true);
    expect(await page.locator('[data-article]').count()).toBe(0);

    await signIn(page, 'alice');
    await page.locator('[data-article]').waitFor(WAIT);
    expect(new URL(page.url()).pathname).toBe(path);
    await context.close();
  });

  it('says so when the password is wrong', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.url);
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor(WAIT);
    expect(await alert.textContent()).toMatch(/wrong username or password/i);
    await context.close();
  });
});

describe('a project that is not there', () => {
  it('says so on its document list and on a document page, instead of a blank page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.url);
    await signIn(page, 'alice');
    for (const path of ['/projects/999', '/projects/999/documents/1']) {
      await page.goto(server.url + path);
      const alert = page.getByRole('alert');
      await alert.waitFor(WAIT);
      expect(await alert.textContent(), path).toMatch(/not found|no such|999/i);
      expect(await page.getByRole('link', { name: 'Projects' }).isVisible(), path).toBe(true);
    }
    await context.close();
  });
});

describe('a page that fails to render', () => {
  it('says so where the page would be, and the rest of the app goes on', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // An answer the page does not expect (a server of another version, say): no label schema.
    await page.route('**/api/projects/1', async (route) => {
      const answer = await route.fetch();
      const project = (await answer.json()) as Record<string, unknown>;
      delete project.schema;
      await route.fulfill({ response: answer, json: project });
    });
    await page.goto(`${server.url}/projects/1/documents/1`);
    await signIn(page, 'alice');
    const alert = page.getByRole('alert').filter({ hasText: /This page could not be shown/ });
    await alert.waitFor(WAIT);
    expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true);
    // Another page opens as usual.
    await page.getByRole('link', { name: 'Spanwise' }).click();
    await page.locator('main ul a').first().waitFor(WAIT);
    expect(await alert.count()).toBe(0);
    await context.close();
  });
});

/** The server's own answer while its database is busy, as `page.route` fulfils it. */
const BUSY = {
  status: 503,
  headers: { 'retry-after': '1' },
  json: { error: { code: 'database_busy', message: 'the server is too busy to answer just now: try again in a moment' } },
};

/** Alice signed in, in a context without the service worker (Playwright routes past a worker). */
async function aliceWithoutWorker(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  await page.goto(server.url);
  await signIn(page, 'alice');
  return { context, page };
}

describe('a 503', () => {
  it('from the server itself (its database busy) shows its message; from a proxy, the copy kept of the last answer', async () => {
    const { context, page } = await aliceWithoutWorker();
    const projects = page.locator('main ul a');
    await projects.first().waitFor(WAIT);
    const listed = await projects.count();

    await page.route('**/api/projects', (route) => route.fulfill(BUSY));
    await page.reload();
    const alert = page.getByRole('alert').filter({ hasText: /too busy to answer/ });
    await alert.waitFor(WAIT);
    expect(await projects.count()).toBe(0);

    // A proxy's answers, HTML or a gateway's JSON of its own: the server is away.
    for (const away of [
      { contentType: 'text/html', body: '<h1>503 Service Unavailable</h1>' },
      { contentType: 'application/json', body: '{"message":"no healthy upstream"}' },
    ]) {
      await page.unroute('**/api/projects');
      await page.route('**/api/projects', (route) => route.fulfill({ status: 503, ...away }));
      await page.reload();
      await projects.first().waitFor(WAIT);
      expect(await projects.count()).toBe(listed);
      expect(await alert.count()).toBe(0);
    }
    await context.close();
  });
});

describe('signing out', () => {
  it('says so and stays signed in when the server refuses (its database busy), and signs out once it answers', async () => {
    const { context, page } = await aliceWithoutWorker();
    await page.route('**/api/auth/logout', (route) => route.fulfill(BUSY));
    const signOut = page.getByRole('button', { name: 'Sign out' });
    await signOut.click();
    const alert = page.getByRole('alert').filter({ hasText: /Not signed out: the server is too busy/ });
    await alert.waitFor(WAIT);
    expect(await signOut.isVisible()).toBe(true);
    expect(await page.getByLabel('Password').count()).toBe(0);

    await page.unroute('**/api/auth/logout');
    await signOut.click();
    await page.getByLabel('Password').waitFor(WAIT);
    // Signed out at the server too: a reload shows the login form.
    await page.reload();
    await page.getByLabel('Password').waitFor(WAIT);
    await context.close();
  });

  /** The session cookie `context` holds, if any. */
  async function sessionCookie(context: BrowserContext) {
    return (await context.cookies()).find((c) => c.name === SESSION_COOKIE);
  }

  /** Whether the server still holds the session of `context`'s cookie now (asked apart from the browser). */
  async function sessionHeld(context: BrowserContext): Promise<() => Promise<number>> {
    const cookie = await sessionCookie(context);
    expect(cookie).toBeDefined();
    return async () => {
      const api = await request.newContext({ baseURL: server.url, extraHTTPHeaders: { cookie: `${SESSION_COOKIE}=${cookie!.value}` } });
      try {
        return (await api.get('/api/me')).status();
      } finally {
        await api.dispose();
      }
    };
  }

  /** Makes `page` hear nothing of sign-ins and sign-outs in other tabs (as a tab frozen in the background then). */
  const deafToOtherTabs = (page: Page) =>
    page.addInitScript(() => {
      const listen = BroadcastChannel.prototype.addEventListener;
      BroadcastChannel.prototype.addEventListener = function (this: BroadcastChannel, ...args: Parameters<BroadcastChannel['addEventListener']>) {
        if (this.name !== 'spanwise-session') listen.apply(this, args);
      };
    });

  /** Alice signed in, in two tabs of one context (without the service worker); `deaf`: the other hears nothing of the first's sign-ins and sign-outs. */
  async function aliceInTwoTabs(deaf = false): Promise<{ context: BrowserContext; page: Page; other: Page }> {
    const { context, page } = await aliceWithoutWorker();
    const other = await context.newPage();
    if (deaf) await deafToOtherTabs(other);
    await other.goto(server.url);
    await other.getByRole('button', { name: 'Sign out' }).waitFor(WAIT);
    return { context, page, other };
  }

  /** Signs alice in on `page`'s login form, the server's answer held back: the held request. */
  async function signInHeld(context: BrowserContext, page: Page): Promise<Route> {
    let held: Route | null = null;
    await context.route('**/api/auth/login', (route) => void (held = route));
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill('demo');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => held !== null, WAIT).toBe(true);
    return held!;
  }

  it('while the server cannot be reached signs every tab out, and ends the session at the server once it can', async () => {
    const { context, page, other } = await aliceInTwoTabs();
    // The session as the server sees it (the cookie is httpOnly: only the server can end it).
    const sessionStatus = await sessionHeld(context);

    await context.route('**/api/auth/logout', (route) => route.abort('internetdisconnected'));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Password').waitFor(WAIT);
    await other.getByLabel('Password').waitFor(WAIT);
    expect(await sessionStatus()).toBe(200);
    // Reloaded while the server still cannot be told: signed out still, not signed back in.
    await page.reload();
    await page.getByLabel('Password').waitFor(WAIT);
    expect(await sessionStatus()).toBe(200);

    // Reachable again, and the browser says it is online: the waiting pages tell the server at
    // once, with no reload (their own retries back off: 5 s, 10 s, …).
    await context.unroute('**/api/auth/logout');
    await context.setOffline(true);
    await context.setOffline(false);
    await expect.poll(sessionStatus, { timeout: 4_000 }).toBe(401);
    await context.close();
  });

  it('left untold does not end the next session signed in on that browser', async () => {
    const { context, page } = await aliceWithoutWorker();
    await context.route('**/api/auth/logout', (route) => route.abort('internetdisconnected'));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Password').waitFor(WAIT);
    // Signing in again replaces the cookie: the sign-out still waiting is of a session this
    // browser no longer holds, and must not be sent on behalf of the new one.
    await signIn(page, 'alice');
    await context.unroute('**/api/auth/logout');
    await page.waitForTimeout(6_000); // past the page's retry (5 s)
    expect((await context.request.get(server.url + '/api/me')).status()).toBe(200);
    await page.reload();
    await page.getByRole('button', { name: 'Sign out' }).waitFor(WAIT);
    await context.close();
  });

  it('sent again is never under way while a sign-in is, in any tab (its answer would delete the new cookie)', async () => {
    const { context, page, other } = await aliceInTwoTabs();
    let logouts: 'fail' | 'hold' = 'fail';
    const heldLogouts: Route[] = [];
    await context.route('**/api/auth/logout', (route) => (logouts === 'fail' ? route.abort('internetdisconnected') : void heldLogouts.push(route)));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Password').waitFor(WAIT);
    await other.getByLabel('Password').waitFor(WAIT);

    // A sign-in the server is slow to answer, while the other tab's retries come round.
    const heldLogin = await signInHeld(context, page);
    logouts = 'hold';
    await page.waitForTimeout(11_000); // past two retries (5 s, then 10 s after a failed one)
    expect(heldLogouts.length).toBe(0);
    await heldLogin.continue();
    await page.getByRole('button', { name: 'Sign out' }).waitFor(WAIT);
    await page.reload();
    await page.getByRole('button', { name: 'Sign out' }).waitFor(WAIT);
    await context.close();
  });

  it('made in another tab while a sign-in waits there ends the new session, and that tab says so', async () => {
    const { context, page, other } = await aliceInTwoTabs(true);
    const otherSignOut = other.getByRole('button', { name: 'Sign out' });
    // This tab signs out (heard), and signs in again, slowly.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Password').waitFor(WAIT);
    const heldLogin = await signInHeld(context, page);
    // Meanwhile the other tab (still showing the page) signs out: it waits 10 s for the sign-in's
    // turn, then signs out and leaves the sign-out to be sent.
    await otherSignOut.click();
    await other.getByLabel('Password').waitFor({ timeout: 20_000 });
    await heldLogin.continue();
    await page.getByRole('alert').filter({ hasText: /Signed out in another tab/ }).waitFor(WAIT);
    expect(await sessionCookie(context)).toBeUndefined(); // (ended, and its cookie deleted)
    await page.reload();
    await page.getByLabel('Password').waitFor(WAIT);
    await context.close();
  });

  it('leaves the user’s other tabs as they are when a sign-out is refused (the session stays on)', async () => {
    const { context, page, other } = await aliceInTwoTabs();
    try {
      await other.goto(`${server.url}/projects/1/documents/3`);
      await other.locator('[data-article]').waitFor(WAIT);
      await other.evaluate(() => ((document.querySelector('[data-article]') as HTMLElement & { kept?: boolean }).kept = true));
      await page.route('**/api/auth/logout', (route) => route.fulfill(BUSY));
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('alert').filter({ hasText: /Not signed out/ }).waitFor(WAIT);
      await new Promise((r) => setTimeout(r, 500));
      // The same article element: the other tab's page was not made anew.
      expect(await other.evaluate(() => (document.querySelector('[data-article]') as HTMLElement & { kept?: boolean } | null)?.kept)).toBe(true);
    } finally {
      await context.close();
    }
  });

  it('signs the user’s other tabs out at once, and a tab that missed it does not end the next user’s session', async () => {
    const { context, page, other } = await aliceInTwoTabs();
    try {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Password').waitFor(WAIT);
      await other.getByLabel('Password').waitFor(WAIT); // told by the first, not waiting for a socket's 4401
      // A tab that hears nothing of the others, on alice's session again.
      await signIn(page, 'alice');
      const deaf = await context.newPage();
      await deafToOtherTabs(deaf);
      await deaf.goto(server.url);
      await deaf.locator('.user-name', { hasText: 'alice' }).waitFor(WAIT);
      // alice signs out in the first tab, and bob signs in there.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await signIn(page, 'bob');
      await page.locator('.user-name', { hasText: 'bob' }).waitFor(WAIT);
      const bobsSession = await sessionHeld(context);
      expect(await deaf.locator('.user-name').textContent()).toBe('alice'); // (it missed both)
      // Its Sign out is alice's: it leaves bob's session be, and shows who is signed in.
      await deaf.getByRole('button', { name: 'Sign out' }).click();
      await deaf.locator('.user-name', { hasText: 'bob' }).waitFor(WAIT);
      expect(await bobsSession()).toBe(200);
      expect(await page.locator('.user-name').textContent()).toBe('bob');
    } finally {
      await context.close();
    }
  });
});

describe('exporting a dataset', () => {
  it('offers the owner every format and layer, and the download is the dataset', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.url + '/projects/1');
    await signIn(page, 'admin');
    const panel = page.getByRole('region', { name: 'Export dataset' });
    await panel.waitFor(WAIT);
    await panel.getByLabel('Format').selectOption('brat');
    await panel.getByLabel('Layers').selectOption('all');
    const link = panel.getByRole('link', { name: 'Download' });
    expect(await link.getAttribute('href')).toBe('/api/projects/1/export?format=brat&layer=all');
    const download = await page.evaluate(async (href) => {
      const res = await fetch(href);
      const bytes = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, type: res.headers.get('content-type'), magic: String.fromCharCode(bytes[0]!, bytes[1]!) };
    }, (await link.getAttribute('href'))!);
    expect(download).toEqual({ status: 200, type: 'application/zip', magic: 'PK' });
    // Some of the schema's span labels: only those go in; none, nothing to download.
    await panel.getByLabel('Format').selectOption('jsonl');
    const labels = panel.getByRole('group', { name: 'Span labels' });
    expect(await labels.getByRole('checkbox').count()).toBe(6);
    await labels.getByLabel('CLAIM').uncheck();
    await labels.getByLabel('EVENT').uncheck();
    expect(await link.getAttribute('href')).toBe('/api/projects/1/export?format=jsonl&layer=all&labels=PERSON,ORG,GPE,WEAPON');
    const lines = await page.evaluate(async (href) => (await (await fetch(href)).text()).trimEnd().split('\n').map((l) => JSON.parse(l)), (await link.getAttribute('href'))!);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) for (const span of line.spans) expect(['PERSON', 'ORG', 'GPE', 'WEAPON']).toContain(span.label);
    for (const name of ['PERSON', 'ORG', 'GPE', 'WEAPON']) await labels.getByLabel(name).uncheck();
    await panel.getByText('Choose at least one label to download.').waitFor(WAIT);
    expect(await link.count()).toBe(0);
    await labels.getByLabel('GPE').check();
    expect(await link.getAttribute('href')).toBe('/api/projects/1/export?format=jsonl&layer=all&labels=GPE');
    await context.close();
  });

  it('offers nothing to an annotator of a blind project', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.url + '/projects/1');
    await signIn(page, 'alice');
    // The panel hangs on the same project details as this line.
    await page.getByText(/You are annotator/).waitFor(WAIT);
    expect(await page.getByRole('region', { name: 'Export dataset' }).count()).toBe(0);
    await context.close();
  });
});

describe('live annotation on one layer', () => {
  let aliceContext: BrowserContext;
  let danaContext: BrowserContext;
  let alice: Page;
  let dana: Page;

  beforeAll(async () => {
    aliceContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    danaContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    alice = await aliceContext.newPage();
    dana = await danaContext.newPage();

    // alice goes the way a person would: sign in, pick the project, pick the first document.
    await alice.goto(server.url);
    await signIn(alice, 'alice');
    await alice.locator('main ul a').first().click();
    await alice.locator('main ul a[href*="/documents/"]').first().waitFor(WAIT);
    await alice.locator('main ul a[href*="/documents/"]').first().click();
    await alice.locator('[data-article]').waitFor(WAIT);
    const me = (await alice.evaluate(() => fetch('/api/me').then((r) => r.json()))) as { id: number };

    // dana, a curator, opens alice's layer of the same document from its address.
    const docPath = new URL(alice.url()).pathname;
    await dana.goto(`${server.url}${docPath}?layer=user:${me.id}`);
    await signIn(dana, 'dana');
    await dana.locator('[data-article]').waitFor(WAIT);

    await waitConnected(alice);
    await waitConnected(dana);
  });

  afterAll(async () => {
    await aliceContext?.close();
    await danaContext?.close();
  });

  it('opens alice’s layer for dana from the query string', async () => {
    const selected = await dana.getByLabel('Layer').evaluate((el) => (el as HTMLSelectElement).selectedOptions[0]?.text);
    expect(selected).toMatch(/alice/);
  });

  it('shows alice’s new PERSON span to dana', async () => {
    const { start, end, word } = await findWord(alice, 0);
    await selectText(alice, start, end);
    await alice.keyboard.press('1');

    const mine = alice.locator('[data-label="PERSON"]');
    await mine.first().waitFor(WAIT);
    const theirs = dana.locator('[data-label="PERSON"]');
    await theirs.first().waitFor(WAIT);
    expect(await theirs.count()).toBe(1);
    expect(await theirs.first().textContent()).toBe(word);
    expect(await theirs.first().getAttribute('data-annotation-id')).toBe(await mine.first().getAttribute('data-annotation-id'));
  });

  it('shows dana’s span, made with the label button, to alice', async () => {
    const { start, end, word } = await findWord(dana, 1);
    // A sloppy selection: the surrounding spaces are trimmed off.
    await selectText(dana, Math.max(0, start - 1), end + 1);
    await dana.getByRole('button', { name: 'GPE', exact: true }).click();

    const theirs = alice.locator('[data-label="GPE"]');
    await theirs.first().waitFor(WAIT);
    expect(await theirs.count()).toBe(1);
    expect(await theirs.first().textContent()).toBe(word);
    expect(await alice.locator('[data-annotation-id]').count()).toBe(2);
  });

  it('shows each of them in the other’s presence list', async () => {
    await alice.getByRole('list', { name: 'Here now' }).filter({ hasText: 'dana' }).waitFor(WAIT);
    await dana.getByRole('list', { name: 'Here now' }).filter({ hasText: 'alice' }).waitFor(WAIT);
    expect(await alice.getByRole('list', { name: 'Here now' }).textContent()).not.toContain('alice');
  });

  it('shows dana what alice is selecting', async () => {
    const { start, end, word } = await findWord(alice, 3);
    await selectText(alice, start, end);
    const presence = dana.getByRole('list', { name: 'Here now' });
    await presence.filter({ hasText: `selecting “${word}”` }).waitFor(WAIT);
    expect(await presence.textContent()).toContain(word);
    await alice.evaluate(() => window.getSelection()?.removeAllRanges());
  });

  it('highlights in dana’s article what alice selects, within a paragraph, from one to the next, and from a paragraph’s start', async () => {
    const text = (await dana.locator('[data-article]').textContent()) ?? '';
    const paragraphs = await dana.locator('[data-article] > .paragraph').evaluateAll((els) => els.map((e) => e.textContent ?? ''));
    const third = paragraphs[0]!.length + paragraphs[1]!.length; // where the third paragraph starts
    // Word edges: the last word start 20 characters or more before it, the first word end 10 or more after.
    const starts = [...text.matchAll(/\b\p{L}/gu)].map((m) => m.index);
    const ends = [...text.matchAll(/\p{L}\b/gu)].map((m) => m.index + 1);
    const before = starts.filter((i) => i <= third - 20).at(-1)!;
    const after = ends.find((i) => i >= third + 10)!;
    const highlighted = () => dana.evaluate(() => [...CSS.highlights.values()].flatMap((h) => [...h]).map((r) => r.toString()));
    for (const [start, end] of [
      [third, after], // from a paragraph's start
      [before, after], // over a line break
      [third + 3, third + paragraphs[2]!.length + 12], // into the next paragraph
      [starts[1]!, ends[3]!], // in the first
    ] as const) {
      await selectText(alice, start, end);
      await waitFor(async () => (await highlighted()).includes(text.slice(start, end)), `“${text.slice(start, end)}” highlighted`);
    }
    await alice.evaluate(() => window.getSelection()?.removeAllRanges());
    await waitFor(async () => (await highlighted()).length === 0, 'the highlight gone');
  });

  it('renders overlapping spans nested, and a crossing span in parts, for both', async () => {
    const first = await findWord(alice, 0);
    const second = await findWord(alice, 1);
    // A CLAIM over both words (contains both spans), and an EVENT that crosses the CLAIM's end.
    await selectText(alice, first.start, second.end);
    await alice.keyboard.press('6');
    await alice.locator('[data-label="CLAIM"]').first().waitFor(WAIT);
    const third = await findWord(alice, 2);
    await selectText(alice, second.start, third.end);
    await alice.keyboard.press('5');

    const parts = dana.locator('[data-label="EVENT"]');
    await parts.first().waitFor(WAIT);
    expect(await parts.count()).toBe(2);
    expect(await parts.evaluateAll((els) => els.map((e) => e.getAttribute('data-part')))).toEqual(['0', '1']);
    expect(await dana.locator('[data-label="CLAIM"]').count()).toBe(1);
    expect(await dana.locator('[data-label="CLAIM"] [data-label="PERSON"]').count()).toBe(1);

    // The article holds only the document's text: labels never leak into it.
    const text = await dana.locator('[data-article]').textContent();
    const api = (await dana.evaluate((p) => fetch(`/api/documents/${p}`).then((r) => r.json()), new URL(dana.url()).pathname.split('/').pop())) as {
      text: string;
    };
    expect(text).toBe(api.text);

    await alice.locator('[data-label="EVENT"]').first().waitFor(WAIT);
    await alice.locator('mark.focused').first().waitFor({ state: 'detached', ...WAIT }); // the new span's flash
    await alice.screenshot({ path: join(tmpdir(), 'spanwise-annotate.png') });
  });

  it('lets alice delete a span from the popover, and dana sees it go', async () => {
    await alice.locator('[data-label="GPE"]').first().click();
    const dialog = alice.getByRole('dialog', { name: 'Annotations here' });
    await dialog.waitFor(WAIT);
    const gpeRow = dialog.locator('.popover-row').filter({ has: alice.locator('.chip', { hasText: 'GPE' }) });
    await gpeRow.getByRole('button', { name: /Delete/ }).click();
    await dana.locator('[data-label="GPE"]').waitFor({ state: 'detached', ...WAIT });
    expect(await dana.locator('[data-label="GPE"]').count()).toBe(0);
    await alice.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', ...WAIT });
  });

  it('labels nothing for a selection that runs on outside the article (Select All, a drag into the sidebar)', async () => {
    const before = await alice.locator('[data-annotation-id]').count();
    await alice.locator('h1').click();
    await alice.keyboard.press('Control+A');
    await alice.keyboard.press('1');
    await alice.getByText('Select some text in the article first.').waitFor(WAIT);
    // From a word of the article to the sidebar's heading.
    const { start } = await findWord(alice, 7);
    await alice.evaluate((at) => {
      const article = document.querySelector('[data-article]')!;
      const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
      let seen = 0;
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const len = (node as Text).length;
        if (at < seen + len) {
          const heading = document.getElementById('presence-heading')!.firstChild!;
          window.getSelection()!.setBaseAndExtent(node, at - seen, heading, 4);
          return;
        }
        seen += len;
      }
    }, start);
    await alice.keyboard.press('1');
    await new Promise((r) => setTimeout(r, 300));
    expect(await alice.locator('[data-annotation-id]').count()).toBe(before);
    await alice.evaluate(() => window.getSelection()?.removeAllRanges());
  });

  it('keeps the selection alice is making when dana adds a span just before it, and labels what she chose', async () => {
    const before = await findWord(alice, 5);
    const chosen = await findWord(alice, 6);
    await selectText(alice, chosen.start, chosen.end);
    // dana labels the word before, in the same stretch of text: alice's copy of it is re-rendered.
    await selectText(dana, before.start, before.end);
    await dana.keyboard.press('4');
    await alice.locator('[data-label="WEAPON"]').first().waitFor(WAIT);
    expect(await alice.evaluate(() => window.getSelection()?.toString())).toBe(chosen.word);
    await alice.keyboard.press('3');
    const made = alice.locator('[data-label="GPE"]');
    await made.first().waitFor(WAIT);
    expect(await made.first().textContent()).toBe(chosen.word);
  });

  it('keeps the focus on a label chosen from the keyboard in the popover', async () => {
    await alice.locator('[data-label="GPE"]').first().click();
    const dialog = alice.getByRole('dialog', { name: 'Annotations here' });
    await dialog.waitFor(WAIT);
    const select = dialog.getByRole('combobox', { name: /^Label of/ });
    await select.focus();
    await alice.keyboard.press('ArrowDown'); // GPE → the next label
    await dana.locator('[data-label="WEAPON"]').nth(1).waitFor(WAIT);
    expect(await alice.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? null)).toMatch(/^Label of/);
    await alice.keyboard.press('ArrowDown'); // and on from there, still in the same select
    await dana.locator('[data-label="EVENT"]').nth(2).waitFor(WAIT);
    await alice.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', ...WAIT });
  });

  it('lets alice label from the keyboard alone, go on from there, and open what is annotated with Enter', async () => {
    await selectText(alice, 0, 0); // the caret at the start (the arrows would go on from her last label)
    const words = await alice.locator('[data-article]').evaluate((el) =>
      [...(el.textContent ?? '').matchAll(/[\p{L}\p{M}\p{N}]+(?:[’'.,-][\p{L}\p{M}\p{N}]+)*/gu)].map((m) => ({ start: m.index!, end: m.index! + m[0].length })),
    );
    const text = (await alice.locator('[data-article]').textContent())!;
    const selected = () => alice.evaluate(() => window.getSelection()?.toString());
    const article = alice.locator('[data-article]');
    await article.focus();
    for (let i = 0; i < 3; i++) await alice.keyboard.press('ArrowRight'); // the third word
    expect(await selected()).toBe(text.slice(words[2]!.start, words[2]!.end));
    await alice.keyboard.press('Shift+ArrowRight');
    await alice.keyboard.press('Shift+ArrowRight'); // to the fifth
    await alice.keyboard.press('Shift+ArrowLeft'); // back to the fourth
    const chosen = text.slice(words[2]!.start, words[3]!.end);
    expect(await selected()).toBe(chosen);
    await alice.keyboard.press('2');
    const made = alice.locator('[data-label="ORG"]');
    await made.first().waitFor(WAIT);
    expect(await made.first().textContent()).toBe(chosen);
    // On from where the label was put (the label cleared the selection), not from the top.
    await alice.keyboard.press('ArrowRight');
    expect(await selected()).toBe(text.slice(words[4]!.start, words[4]!.end));
    await alice.keyboard.press('ArrowLeft');
    await alice.keyboard.press('ArrowLeft'); // the new span's first word
    await alice.keyboard.press('Enter');
    const dialog = alice.getByRole('dialog', { name: 'Annotations here' });
    await dialog.waitFor(WAIT);
    expect(await dialog.locator('.chip', { hasText: 'ORG' }).count()).toBe(1);
    await alice.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', ...WAIT });
    expect(await alice.evaluate(() => document.activeElement?.hasAttribute('data-article'))).toBe(true); // the focus given back
    // On to the second paragraph's first word: the selection starts in that paragraph, not at the
    // end of the one before (where the browser would draw the other's line break selected).
    const secondStart = text.indexOf('\n') + 1;
    const firstOfSecond = words.findIndex((w) => w.start >= secondStart);
    await alice.keyboard.press('ArrowRight');
    expect(await selected()).toBe(text.slice(words[3]!.start, words[3]!.end));
    for (let i = 3; i < firstOfSecond; i++) await alice.keyboard.press('ArrowRight');
    expect(await selected()).toBe(text.slice(words[firstOfSecond]!.start, words[firstOfSecond]!.end));
    const where = await alice.evaluate(() => {
      const range = window.getSelection()!.getRangeAt(0);
      const paragraphs = [...document.querySelectorAll('[data-article] > .paragraph')];
      return [range.startContainer, range.endContainer].map((node) => paragraphs.findIndex((p) => p.contains(node)));
    });
    expect(where).toEqual([1, 1]);
  });

  it('draws the article in paragraphs, and a span re-renders only what it touches', async () => {
    const text = (await alice.locator('[data-article]').textContent()) ?? '';
    const paragraphs = alice.locator('[data-article] > .paragraph');
    const texts = async () => paragraphs.evaluateAll((els) => els.map((e) => e.textContent ?? ''));
    // Each ends after its line break; together they are the text.
    const before = await texts();
    expect(before.length).toBeGreaterThan(5);
    expect(before.join('')).toBe(text);
    expect(before.slice(0, -1).every((t) => /\n$/.test(t))).toBe(true);
    type Tagged = Element & { tag?: number };
    const tag = (selector: string) => alice.locator(selector).evaluateAll((els) => els.forEach((e, i) => ((e as Tagged).tag = i)));
    const tags = (selector: string) => alice.locator(selector).evaluateAll((els) => els.map((e) => (e as Tagged).tag ?? null));

    // dana labels two words of the third paragraph (none there yet), one after the other.
    const third = before.slice(0, 2).join('').length;
    const [first, second] = [...before[2]!.matchAll(/\b[A-Z][a-z]{3,}\b/g)];
    expect(await paragraphs.nth(2).locator('[data-annotation-id]').count()).toBe(0);
    await tag('[data-article] > .paragraph');
    await selectText(dana, third + first!.index, third + first!.index + first![0].length);
    await dana.getByRole('button', { name: 'ORG', exact: true }).click();
    await paragraphs.nth(2).locator('[data-label="ORG"]').waitFor(WAIT);
    // Every paragraph kept its element, that one too; the text is as it was.
    expect(await tags('[data-article] > .paragraph')).toEqual(before.map((_, i) => i));
    expect(await texts()).toEqual(before);
    await tag('[data-article] mark');
    const marks = await alice.locator('[data-article] mark').count();
    await selectText(dana, third + second!.index, third + second!.index + second![0].length);
    await dana.getByRole('button', { name: 'ORG', exact: true }).click();
    await waitFor(async () => (await paragraphs.nth(2).locator('[data-label="ORG"]').count()) === 2, 'the second span');
    // In the paragraph, the first span kept its element; the new one is the only new mark.
    const after = await tags('[data-article] mark');
    expect(after.filter((t) => t === null)).toHaveLength(1);
    expect(after.filter((t) => t !== null)).toEqual([...Array(marks).keys()]);

    // A span over the line break between the fourth and the fifth: a part in each, the
    // paragraphs as they were, each in its element.
    const fourthEnd = before.slice(0, 4).join('').length;
    await selectText(dana, fourthEnd - 6, fourthEnd + 4);
    await dana.getByRole('button', { name: 'CLAIM', exact: true }).click();
    const claim = alice.locator(
      [4, 5].map((n) => `[data-article] > .paragraph:nth-child(${n}) mark[data-label="CLAIM"][data-part]`).join(', '),
    );
    await waitFor(async () => (await claim.count()) === 2, 'the claim in two parts');
    expect(await claim.evaluateAll((els) => els.map((e) => [e.getAttribute('data-part'), e.closest('.paragraph')!.textContent]))).toEqual([
      ['0', before[3]],
      ['1', before[4]],
    ]);
    expect(await claim.evaluateAll((els) => els.map((e) => e.textContent).join(''))).toBe(text.slice(fourthEnd - 6, fourthEnd + 4).trim());
    expect(await texts()).toEqual(before);
    expect(await tags('[data-article] > .paragraph')).toEqual(before.map((_, i) => i));
    expect(await alice.locator('[data-article]').textContent()).toBe(text);
    // A word labelled inside that claim: the claim's element, and every other mark, stay; the
    // new mark is the claim's child.
    await tag('[data-article] mark');
    const marksBefore = await alice.locator('[data-article] mark').count();
    await selectText(dana, fourthEnd, fourthEnd + 3);
    await dana.getByRole('button', { name: 'PERSON', exact: true }).click();
    await waitFor(async () => (await alice.locator('[data-article] mark').count()) === marksBefore + 1, 'the span inside the claim');
    const inside = await tags('[data-article] mark');
    expect(inside.filter((t) => t === null)).toHaveLength(1);
    expect(inside.filter((t) => t !== null)).toEqual([...Array(marksBefore).keys()]);
    const parentOfNew = await alice.locator('[data-article] mark').evaluateAll((els) => {
      const fresh = els.find((e) => (e as Element & { tag?: number }).tag === undefined)!;
      return [fresh.textContent, fresh.parentElement?.getAttribute('data-label')];
    });
    expect(parentOfNew).toEqual([text.slice(fourthEnd, fourthEnd + 3).trim(), 'CLAIM']);
    expect(await texts()).toEqual(before);
    // A span crossing into the claim's first part splits it there (a third part): its part in
    // the fifth paragraph, numbered anew, keeps its element, and the word inside it its own.
    await tag('[data-article] mark');
    const claimStart = fourthEnd - 6 + (text.slice(fourthEnd - 6).length - text.slice(fourthEnd - 6).trimStart().length);
    let crossFrom = claimStart - 4;
    while (/\s/.test(text[crossFrom]!)) crossFrom--;
    const fifthPart = alice.locator('[data-article] > .paragraph:nth-child(5) mark[data-label="CLAIM"]');
    const keptBefore = await fifthPart.evaluate((e) => [(e as Element & { tag?: number }).tag, (e.querySelector('mark') as (Element & { tag?: number }) | null)?.tag]);
    expect(keptBefore.every((t) => typeof t === 'number')).toBe(true);
    const claimParts = alice.locator(`[data-article] mark[data-annotation-id="${await fifthPart.getAttribute('data-annotation-id')}"]`);
    expect(await claimParts.count()).toBe(2);
    await selectText(dana, crossFrom, claimStart + 2);
    await dana.getByRole('button', { name: 'ORG', exact: true }).click();
    await waitFor(async () => (await claimParts.count()) === 3, 'the claim in three parts');
    expect(await fifthPart.getAttribute('data-part')).toBe('2');
    expect(await fifthPart.evaluate((e) => [(e as Element & { tag?: number }).tag, (e.querySelector('mark') as (Element & { tag?: number }) | null)?.tag])).toEqual(keptBefore);
    expect(await texts()).toEqual(before);
    // A span before the others (at the second paragraph's last word) takes its place in the list
    // beside the text: in the text's order (start, the longer first), each span once.
    const secondAt = before[0]!.length;
    const lastWord = [...before[1]!.matchAll(/\b\p{L}{3,}\b/gu)].at(-1)!;
    const rowsBefore = await alice.locator('.annotation .offsets').count();
    await selectText(dana, secondAt + lastWord.index, secondAt + lastWord.index + lastWord[0].length);
    await dana.getByRole('button', { name: 'GPE', exact: true }).click();
    const newRow = `${secondAt + lastWord.index}–${secondAt + lastWord.index + lastWord[0].length}`;
    await alice.locator('.annotation .offsets', { hasText: newRow }).waitFor(WAIT);
    expect(await alice.locator('.annotation .offsets').count()).toBe(rowsBefore + 1);
    const rows = await alice.locator('.annotation .offsets').evaluateAll((els) => els.map((e) => (e.textContent ?? '').split('–').map(Number)));
    expect(rows.length).toBe(await alice.locator('[data-article] mark:not([data-part]), [data-article] mark[data-part="0"]').count());
    expect(rows).toEqual([...rows].sort((a, b) => a[0]! - b[0]! || b[1]! - a[1]!));
  });

  it('shows a span whose id is a name every object has (__proto__, constructor) with its label, and follows a relabel', async () => {
    const documentId = Number(new URL(alice.url()).pathname.split('/').pop());
    const me = (await alice.evaluate(() => fetch('/api/me').then((r) => r.json()))) as { id: number };
    const writer = connectLayer(server.url, layerRoom(documentId, me.id), await login(server.url, 'alice'));
    try {
      await writer.synced;
      const words = await Promise.all([findWord(alice, 8), findWord(alice, 9)]);
      addSpan(writer.doc, { label: 'PERSON', start: words[0].start, end: words[0].end, quote: words[0].word, author: me.id }, '__proto__');
      addSpan(writer.doc, { label: 'GPE', start: words[1].start, end: words[1].end, quote: words[1].word, author: me.id }, 'constructor');
      const proto = alice.locator('[data-annotation-id="__proto__"]');
      const ctor = alice.locator('[data-annotation-id="constructor"]');
      await proto.waitFor(WAIT);
      await ctor.waitFor(WAIT);
      expect([await proto.getAttribute('data-label'), await ctor.getAttribute('data-label')]).toEqual(['PERSON', 'GPE']);
      relabel(writer.doc, '__proto__', 'ORG');
      await alice.locator('[data-annotation-id="__proto__"][data-label="ORG"]').waitFor(WAIT);
    } finally {
      deleteAnnotation(writer.doc, '__proto__');
      deleteAnnotation(writer.doc, 'constructor');
      await waitFor(async () => (await alice.locator('[data-annotation-id="constructor"]').count()) === 0, 'the two spans gone');
      writer.destroy();
    }
  });

  it('keeps alice’s “Mark done” across a reload', async () => {
    await alice.getByRole('button', { name: 'Mark done' }).click();
    await alice.getByRole('button', { name: 'Reopen' }).waitFor(WAIT);
    await alice.reload();
    await alice.getByRole('button', { name: 'Reopen' }).waitFor(WAIT);
    expect(await alice.locator('.status-pill').textContent()).toBe('Done');
  });
});

describe('a viewer', () => {
  it('sees a layer live but cannot change it', async () => {
    const viewerId = await usersRepository(server.database.db).insert('vera', await hashPassword('demo'));
    await server.database.db.insertInto('project_members').values({ project_id: 1, user_id: viewerId, role: 'viewer' }).execute();
    const room = layerRoom(2, 2); // alice's layer of the second document
    const writer = connectLayer(server.url, room, await login(server.url, 'alice'));
    const context = await browser.newContext();
    try {
      await writer.synced;
      const page = await context.newPage();
      await page.goto(`${server.url}/projects/1/documents/2?layer=user:2`);
      // (The statuses come with the project's document list: the button would show once it is read.)
      const listed = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/projects/1/documents' && r.ok(), WAIT);
      await signIn(page, 'vera');
      await page.getByRole('status', { name: 'Connection' }).filter({ hasText: 'read-only' }).waitFor(WAIT);
      await listed;
      await page.waitForTimeout(200);
      // No edit controls: the label buttons are disabled, nothing offers to delete, and no
      // button marks the document's progress.
      expect(await page.getByRole('button', { name: 'ORG' }).isDisabled()).toBe(true);
      expect(await page.getByRole('button', { name: /Mark done|Reopen/ }).count()).toBe(0);

      const text = (await page.locator('[data-article]').textContent()) ?? '';
      const at = text.indexOf('White House');
      addSpan(writer.doc, { label: 'ORG', start: at, end: at + 'White House'.length, quote: 'White House', author: 2 });
      await page.locator('[data-label="ORG"]').waitFor(WAIT);
      expect(await page.getByRole('button', { name: /^Delete/ }).count()).toBe(0);

      const word = await findWord(page, 3);
      await selectText(page, word.start, word.end);
      await page.keyboard.press('3');
      await page.getByText('This layer is read-only for you.').waitFor(WAIT);
      expect(await page.locator('[data-annotation-id]').count()).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
      await waitFor(() => writer.doc.getMap('annotations').size === 1, 'alice still at one span');
    } finally {
      writer.destroy();
      await context.close();
    }
  });
});

describe('a long document', () => {
  it('shows a span far down the article when its row in the list is chosen, though the paragraphs above it were never drawn', async () => {
    const admin = await login(server.url, 'admin');
    const text = await seedText(120_000);
    const { id } = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Long', text }) })).body;
    const writer = connectLayer(server.url, layerRoom(id, 2), await login(server.url, 'alice'));
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      await writer.synced;
      // A span every ~6,000 characters, the last near the end.
      const words = [...text.matchAll(/\b[A-Z][a-z]{4,}\b/g)];
      const chosen = Array.from({ length: 20 }, (_, i) => words[Math.floor(((i + 1) * words.length) / 21)]!);
      for (const m of chosen) addSpan(writer.doc, { label: 'ORG', start: m.index, end: m.index + m[0].length, quote: m[0], author: 2 });
      const page = await context.newPage();
      await page.goto(`${server.url}/projects/1/documents/${id}`);
      await signIn(page, 'alice');
      await waitFor(async () => (await page.locator('[data-article] mark').count()) === chosen.length, 'the spans shown');
      // (Most paragraphs out of view have never been drawn: their height is a guess.)
      const last = chosen.at(-1)!;
      await page.getByRole('button', { name: `Show “${last[0]}”, ${last.index} to ${last.index + last[0].length}` }).click();
      const inView = () =>
        page.locator(`[data-article] mark`).last().evaluate((el) => {
          const box = el.getBoundingClientRect();
          return box.top >= 0 && box.bottom <= window.innerHeight;
        });
      await waitFor(inView, 'the span in view');
      await new Promise((r) => setTimeout(r, 300)); // (and still there once the paragraphs around it are drawn)
      expect(await inView()).toBe(true);
      expect(await page.locator('[data-article] mark').last().textContent()).toBe(last[0]);
    } finally {
      writer.destroy();
      await context.close();
    }
  });
});

describe('the keyboard and the focus', () => {
  let context: BrowserContext;
  let page: Page;
  let writer: ReturnType<typeof connectLayer>;
  const ALICE = 2;

  beforeAll(async () => {
    const admin = await login(server.url, 'admin');
    const text = await seedText(40_000);
    const { id } = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title: 'Keys', text }) })).body;
    writer = connectLayer(server.url, layerRoom(id, ALICE), await login(server.url, 'alice'));
    await writer.synced;
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    await page.goto(`${server.url}/projects/1/documents/${id}`);
    await signIn(page, 'alice');
    await waitConnected(page);
  });
  afterAll(async () => {
    writer?.destroy();
    await context?.close();
  });
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.tagName ?? null);

  it('relabels the span in the popover with a label’s key, and adds none, though the selection is behind it', async () => {
    const word = await findWord(page, 3);
    addSpan(writer.doc, { label: 'GPE', start: word.start, end: word.end, quote: word.word, author: ALICE }, 'keyed');
    const mark = page.locator('[data-annotation-id="keyed"]');
    await mark.waitFor(WAIT);
    await page.locator('[data-article]').focus();
    await selectText(page, word.start, word.end);
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Annotations here' });
    await dialog.waitFor(WAIT);
    await page.keyboard.press('2'); // ORG
    await page.locator('[data-annotation-id="keyed"][data-label="ORG"]').waitFor(WAIT);
    expect(writer.doc.getMap('annotations').size).toBe(1);
    expect(await page.locator('[data-article] mark').count()).toBe(1);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', ...WAIT });
  });

  it('goes on with the arrows from a span labelled after a double-click, far down, not from the top', async () => {
    const word = await findWord(page, 300);
    const box = await page.locator('[data-article]').evaluate((el, [s, e]) => {
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      let at = 0;
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const length = node.textContent!.length;
        if (s! >= at && e! <= at + length) {
          const range = document.createRange();
          range.setStart(node, s! - at);
          range.setEnd(node, e! - at);
          (node.parentElement as HTMLElement).scrollIntoView({ block: 'center' });
          const rect = range.getBoundingClientRect();
          return { x: rect.left + rect.width / 2, y: rect.top + rect.height / 2 };
        }
        at += length;
      }
      throw new Error('word not found');
    }, [word.start, word.end]);
    await page.mouse.dblclick(box.x, box.y);
    expect(await page.evaluate(() => window.getSelection()?.toString())).toBe(word.word);
    const scrolled = await page.evaluate(() => window.scrollY);
    expect(scrolled).toBeGreaterThan(2_000);
    await page.keyboard.press('1');
    await waitFor(() => writer.doc.getMap('annotations').size === 2, 'the span made');
    await page.keyboard.press('ArrowRight');
    const next = await page.locator('[data-article]').evaluate((el, end) => {
      const m = /[\p{L}\p{N}]+(?:[’'.,-][\p{L}\p{N}]+)*/u.exec((el.textContent ?? '').slice(end))!;
      return m[0];
    }, word.end);
    expect(await page.evaluate(() => window.getSelection()?.toString())).toBe(next);
    expect(Math.abs((await page.evaluate(() => window.scrollY)) - scrolled)).toBeLessThan(400);
  });

  it('keeps the focus on a row of the list while a peer relabels its span', async () => {
    const show = page.getByRole('button', { name: /^Show “/ }).first();
    await show.focus();
    const name = await focused();
    expect(name).toMatch(/^Show “/);
    const label = await show.locator('.chip').textContent();
    expect(label).toBe('ORG'); // (the first in the text: the span relabelled from the popover)
    relabel(writer.doc, 'keyed', 'EVENT');
    await waitFor(async () => (await show.locator('.chip').textContent()) !== label, 'the row relabelled');
    expect(await focused()).toBe(name);
  });

  it('keeps the focus in the popover when the row that had it goes, by a peer or by its Delete', async () => {
    const words = await Promise.all([findWord(page, 20), findWord(page, 21)]);
    addSpan(writer.doc, { label: 'CLAIM', start: words[0].start, end: words[1].end, quote: 'x', author: ALICE }, 'outer');
    addSpan(writer.doc, { label: 'ORG', start: words[1].start, end: words[1].end, quote: words[1].word, author: ALICE }, 'inner');
    addSpan(writer.doc, { label: 'GPE', start: words[1].start, end: words[1].end, quote: words[1].word, author: ALICE }, 'inner2');
    const inner = page.locator('[data-annotation-id="inner2"]');
    await inner.waitFor(WAIT);
    await inner.scrollIntoViewIfNeeded();
    await inner.click();
    const dialog = page.getByRole('dialog', { name: 'Annotations here' });
    await dialog.waitFor(WAIT);
    expect(await dialog.locator('[data-span-id]').count()).toBe(3);
    // A label's key relabels the span whose row has the focus, not another shown.
    await dialog.locator('[data-span-id="inner2"] button', { hasText: 'Delete' }).focus();
    await page.keyboard.press('5'); // EVENT
    await page.locator('[data-annotation-id="inner2"][data-label="EVENT"]').waitFor(WAIT);
    expect(await page.locator('[data-annotation-id="outer"]').first().getAttribute('data-label')).toBe('CLAIM');
    expect(await page.locator('[data-annotation-id="inner"]').getAttribute('data-label')).toBe('ORG');
    const inDialog = () => page.evaluate(() => !!document.activeElement?.closest('[role="dialog"]'));
    // A peer deletes the span whose Delete has the focus.
    await dialog.locator('[data-span-id="inner"] button', { hasText: 'Delete' }).focus();
    deleteAnnotation(writer.doc, 'inner');
    await waitFor(async () => (await dialog.locator('[data-span-id]').count()) === 2, 'the row gone');
    await waitFor(inDialog, 'the focus in the popover');
    // And by its own Delete, from the keyboard.
    await dialog.locator('[data-span-id="inner2"] button', { hasText: 'Delete' }).focus();
    await page.keyboard.press('Enter');
    await waitFor(async () => (await dialog.locator('[data-span-id]').count()) === 1, 'the second row gone');
    await waitFor(inDialog, 'the focus in the popover again');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', ...WAIT });
  });
});

describe('going from one document to another', () => {
  const ALICE_ID = 2;
  let admin: string;
  beforeAll(async () => {
    admin = await login(server.url, 'admin');
  });
  const addDocument = async (title: string, text: string, projectId = 1) =>
    (await api<{ id: number }>(server.url, admin, `/api/projects/${projectId}/documents`, { method: 'POST', body: JSON.stringify({ title, text }) })).body.id;

  it('shows each document’s own text and layer, going back past the list, and a status answered late stays on its document', async () => {
    const x = await addDocument('Going back X', 'Vienna and Prague signed the Danube accord on Monday, Novak said.');
    const y = await addDocument('Going back Y', 'Lisbon rejected the Tagus plan outright on Friday, Moreira said.');
    const writer = connectLayer(server.url, layerRoom(x, ALICE_ID), await login(server.url, 'alice'));
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      await writer.synced;
      addSpan(writer.doc, { label: 'GPE', start: 0, end: 6, quote: 'Vienna', author: ALICE_ID });
      const page = await context.newPage();
      await page.goto(`${server.url}/projects/1/documents/${x}`);
      await signIn(page, 'alice');
      await page.locator('[data-annotation-id]').waitFor(WAIT);
      // To the list, and on to Y.
      await page.locator('nav.crumbs a[href="/projects/1"]').click();
      await page.locator(`a[href="/projects/1/documents/${y}"]`).click();
      await page.locator('[data-article]', { hasText: 'Lisbon' }).waitFor(WAIT);
      await waitConnected(page);
      // Y marked done, its answer held back; meanwhile straight back to X past the list, X's own answer held back too.
      let statusAnswer: Route | null = null;
      await page.route('**/api/documents/*/status', (route) => void (statusAnswer = route));
      let xAnswer: Route | null = null;
      await page.route(`**/api/documents/${x}`, (route) => void (xAnswer = route));
      await page.getByRole('button', { name: 'Mark done' }).click();
      await expect.poll(() => statusAnswer !== null, WAIT).toBe(true);
      await page.evaluate(() => history.go(-2));
      await expect.poll(() => xAnswer !== null, WAIT).toBe(true);
      // No workspace with Y's text under X's layer while X is on its way.
      await new Promise((r) => setTimeout(r, 300));
      expect(await page.locator('[data-article]').count()).toBe(0);
      await xAnswer!.continue();
      await page.locator('[data-article]', { hasText: 'Vienna' }).waitFor(WAIT);
      expect(await page.locator('[data-article]').textContent()).toBe('Vienna and Prague signed the Danube accord on Monday, Novak said.');
      expect(await page.locator('[data-annotation-id]').textContent()).toBe('Vienna');
      // Y's status answers now: it is Y's, not X's that is shown.
      await statusAnswer!.continue();
      await page.waitForTimeout(300);
      expect(await page.locator('.status-pill').textContent()).not.toBe('Done');
      const list = (await api<Array<{ id: number; status: string }>>(server.url, await login(server.url, 'alice'), '/api/projects/1/documents')).body;
      expect(list.find((d) => d.id === y)?.status).toBe('done');
      expect(list.find((d) => d.id === x)?.status).not.toBe('done');
    } finally {
      writer.destroy();
      await context.close();
    }
  });

  it('opens a document under its own project when the address names another', async () => {
    const projects = projectsRepository(server.database.db);
    const adminId = (await server.database.db.selectFrom('users').select('id').where('username', '=', 'admin').executeTakeFirstOrThrow()).id;
    const second = await projects.insert({ name: 'Second project', mode: 'blind', schema: DEFAULT_SCHEMA, guidelines: '' });
    await projects.addMember(second, adminId, 'owner');
    await projects.addMember(second, ALICE_ID, 'annotator');
    const doc = await addDocument('Elsewhere', 'Oslo and Bergen agreed on the fjord plan.', second);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/projects/1/documents/${doc}`);
      await signIn(page, 'alice');
      await page.waitForURL(`**/projects/${second}/documents/${doc}`, WAIT);
      await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Second project' }).waitFor(WAIT);
      await waitConnected(page);
    } finally {
      await context.close();
    }
  });

  it('keeps the workspace when the project’s document list cannot be read (no status then)', async () => {
    const context = await browser.newContext({ serviceWorkers: 'block' });
    try {
      const page = await context.newPage();
      await page.route('**/api/projects/1/documents', (route) => route.fulfill({ status: 503, json: { error: { code: 'database_busy', message: 'the server is too busy' } } }));
      await page.goto(`${server.url}/projects/1/documents/1`);
      await signIn(page, 'carol');
      await page.locator('[data-article]').waitFor(WAIT);
      await waitConnected(page);
      expect(await page.locator('.status-pill').count()).toBe(0);
    } finally {
      await context.close();
    }
  });
});
