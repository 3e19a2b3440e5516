/**
 * Editing a layer as a person does, in a real Chromium against the real server: undo and redo,
 * selections snapped to whole words, the same label twice on the same text, offsets shown as
 * the exports count them, the keyboard's selection kept in view below the sticky bar; and the
 * export panel's word on CoNLL, and a blank username at sign-in. Relies on `vite build client`
 * having run (`npm test` does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { addSpan, layerRoom, listSpans, type Me } from '@spanwise/shared';
import { api, connectLayer, login, startTestServer, waitFor, type TestServer } from '../../server/test/harness.ts';
import { launchChromium, seedText, selectText, signIn, WAIT, waitConnected } from './page-helpers.ts';

let server: TestServer;
let browser: Browser;
let admin: string;

beforeAll(async () => {
  server = await startTestServer({ demo: true });
  browser = await launchChromium();
  admin = await login(server.url, 'admin');
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** A new document of project 1 with this text, opened by alice on her layer. */
async function openAs(context: BrowserContext, title: string, text: string): Promise<{ page: Page; id: number }> {
  const { id } = (await api<{ id: number }>(server.url, admin, '/api/projects/1/documents', { method: 'POST', body: JSON.stringify({ title, text }) })).body;
  const page = await context.newPage();
  await page.goto(`${server.url}/projects/1/documents/${id}`);
  if (await page.getByLabel('Username').isVisible().catch(() => false)) await signIn(page, 'alice');
  await page.locator('[data-article]').waitFor(WAIT);
  await waitConnected(page);
  return { page, id };
}

/** Another tab of alice's on her layer of document `id` (another page, as the server sees it), synced. */
async function aliceElsewhere(id: number): Promise<{ me: Me; other: ReturnType<typeof connectLayer> }> {
  const cookie = await login(server.url, 'alice');
  const me = (await api<Me>(server.url, cookie, '/api/me')).body;
  const other = connectLayer(server.url, layerRoom(id, me.id), cookie);
  await other.synced;
  return { me, other };
}

const spansOf = (page: Page) =>
  page.locator('[data-article] [data-annotation-id]').evaluateAll((els) => els.map((el) => ({ label: el.getAttribute('data-label'), text: el.textContent })));

describe('editing a layer', () => {
  let context: BrowserContext;

  beforeAll(async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(server.url);
    await signIn(page, 'alice');
    await page.close();
  });
  afterAll(() => context?.close());

  it('undoes and redoes this page’s own edits, a label, a relabel and a deletion each a step, and never another’s', async () => {
    const text = 'Reuters reported that Vienna and Prague signed the Danube accord on Monday.';
    const { page, id } = await openAs(context, 'Undo', text);
    const undo = page.getByRole('button', { name: 'Undo' });
    const redo = page.getByRole('button', { name: 'Redo' });
    expect(await undo.isDisabled()).toBe(true);
    await selectText(page, text.indexOf('Vienna'), text.indexOf('Vienna') + 6);
    await page.keyboard.press('3'); // GPE
    await selectText(page, text.indexOf('Prague'), text.indexOf('Prague') + 6);
    await page.keyboard.press('3');
    await waitFor(async () => (await spansOf(page)).length === 2, 'two spans');
    // Another tab of alice's (another page, as the server sees it) labels Reuters.
    const { me, other } = await aliceElsewhere(id);
    try {
      addSpan(other.doc, { label: 'ORG', start: 0, end: 7, quote: 'Reuters', author: me.id });
      await waitFor(async () => (await spansOf(page)).length === 3, 'the other tab’s span');

      await page.keyboard.press('Control+z'); // Prague's label
      await waitFor(async () => JSON.stringify(await spansOf(page)) === JSON.stringify([{ label: 'ORG', text: 'Reuters' }, { label: 'GPE', text: 'Vienna' }]), 'Prague undone');
      await redo.click();
      await waitFor(async () => (await spansOf(page)).length === 3, 'Prague again');
      // A relabel, then a deletion from the list: each undone in turn.
      await page.locator('[data-label="GPE"]', { hasText: 'Vienna' }).click();
      await page.getByRole('dialog').getByLabel('Label of “Vienna”').selectOption('ORG');
      await waitFor(async () => (await spansOf(page)).some((s) => s.text === 'Vienna' && s.label === 'ORG'), 'Vienna relabelled');
      await page.keyboard.press('Escape');
      await page.getByRole('button', { name: /^Delete “Prague”/ }).click();
      await waitFor(async () => !(await spansOf(page)).some((s) => s.text === 'Prague'), 'Prague deleted');
      await page.keyboard.press('Control+z');
      await waitFor(async () => (await spansOf(page)).some((s) => s.text === 'Prague' && s.label === 'GPE'), 'the deletion undone');
      await undo.click();
      await waitFor(async () => (await spansOf(page)).some((s) => s.text === 'Vienna' && s.label === 'GPE'), 'the relabel undone');
      await page.keyboard.press('Control+Shift+z');
      await waitFor(async () => (await spansOf(page)).some((s) => s.text === 'Vienna' && s.label === 'ORG'), 'the relabel redone');
      // Undoing everything of this page's leaves the other tab's span.
      while (!(await undo.isDisabled())) await undo.click();
      await waitFor(async () => JSON.stringify(await spansOf(page)) === JSON.stringify([{ label: 'ORG', text: 'Reuters' }]), 'only the other tab’s span');
      await page.keyboard.press('Control+z');
      await page.getByText('Nothing of yours to undo on this page.').waitFor(WAIT);
      // And it is what the server holds.
      await waitFor(() => listSpans(other.doc).map((s) => s.quote).join() === 'Reuters', 'the server’s copy');
    } finally {
      other.destroy();
      await page.close();
    }
  });

  it('snaps a selection dragged with the mouse out to the whole words it touches; takes one made otherwise, or with Alt and a label button, as it is', async () => {
    const text = 'The Pentagon says Iran is preparing to provide Russia with missiles.';
    const { page } = await openAs(context, 'Snap', text);
    /** Where in the window the middle of the character at `i` is. */
    const at = (i: number) =>
      page.locator('[data-article]').evaluate((el, index) => {
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        let seen = 0;
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const length = (node as Text).length;
          if (index < seen + length) {
            const range = document.createRange();
            range.setStart(node, index - seen);
            range.setEnd(node, index - seen + 1);
            const box = range.getBoundingClientRect();
            return { x: box.left + box.width / 2, y: box.top + box.height / 2 };
          }
          seen += length;
        }
        throw new Error('no such character');
      }, i);
    const drag = async (from: number, to: number) => {
      const a = await at(from);
      const b = await at(to);
      await page.mouse.move(a.x - 1, a.y);
      await page.mouse.down();
      await page.mouse.move(b.x, b.y, { steps: 5 });
      await page.mouse.up();
    };
    // From the middle of "Pentagon" to the middle of "says".
    await drag(text.indexOf('entagon') + 1, text.indexOf('says') + 2);
    expect(await page.evaluate(() => window.getSelection()!.toString())).not.toBe('Pentagon says'); // (a part of each)
    await page.keyboard.press('2'); // ORG
    await waitFor(async () => (await spansOf(page)).length === 1, 'a span');
    expect(await spansOf(page)).toEqual([{ label: 'ORG', text: 'Pentagon says' }]);
    // Dragged, then a label's button clicked: snapped too.
    await drag(text.indexOf('reparing') + 2, text.indexOf('reparing') + 4);
    await page.getByRole('button', { name: 'EVENT', exact: true }).click();
    await waitFor(async () => (await spansOf(page)).some((s) => s.label === 'EVENT'), 'the clicked span');
    expect((await spansOf(page)).find((s) => s.label === 'EVENT')).toEqual({ label: 'EVENT', text: 'preparing' });
    // Dragged, with Alt and the button: as dragged.
    await drag(text.indexOf('ussia') + 1, text.indexOf('ussia') + 3);
    const dragged = await page.evaluate(() => window.getSelection()!.toString());
    expect(dragged.length).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'GPE', exact: true }).click({ modifiers: ['Alt'] });
    await waitFor(async () => (await spansOf(page)).length === 3, 'the third span');
    expect((await spansOf(page)).find((s) => s.label === 'GPE')).toEqual({ label: 'GPE', text: dragged.trim() });
    // Selected otherwise (a script, as a test does): as selected.
    await selectText(page, text.indexOf('issiles'), text.indexOf('issiles') + 3);
    await page.keyboard.press('4');
    await waitFor(async () => (await spansOf(page)).length === 4, 'the fourth span');
    expect((await spansOf(page)).find((s) => s.label === 'WEAPON')).toEqual({ label: 'WEAPON', text: 'iss' });
    await page.close();
  });

  it('does not make the same label on the same text twice: it shows the one there and says so', async () => {
    const text = 'Officials in Kyiv said Ukraine would respond.';
    const { page } = await openAs(context, 'Twice', text);
    for (let i = 0; i < 2; i++) {
      await selectText(page, text.indexOf('Ukraine'), text.indexOf('Ukraine') + 7);
      await page.keyboard.press('3');
      await waitFor(async () => (await spansOf(page)).length === 1, 'one span');
    }
    await page.getByText('That text is labelled GPE already.').waitFor(WAIT);
    expect(await spansOf(page)).toEqual([{ label: 'GPE', text: 'Ukraine' }]);
    // Another label on the same text is another span.
    await selectText(page, text.indexOf('Ukraine'), text.indexOf('Ukraine') + 7);
    await page.keyboard.press('2');
    await waitFor(async () => (await spansOf(page)).length === 2, 'a second label');
    await page.close();
  });

  it('shows offsets in the list as the exports count them, in code points', async () => {
    const text = 'The lab 👩‍🔬 in 🇺🇦 Kharkiv reopened.';
    const { page, id } = await openAs(context, 'Emoji', text);
    const start = text.indexOf('Kharkiv');
    await selectText(page, start, start + 7);
    await page.keyboard.press('3');
    const row = page.getByRole('button', { name: /^Show “Kharkiv”/ });
    await row.waitFor(WAIT);
    const points = Array.from(text.slice(0, start)).length;
    expect(points).toBeLessThan(start); // (the emoji are two UTF-16 units a code point)
    expect(await row.getAttribute('aria-label')).toBe(`Show “Kharkiv”, ${points} to ${points + 7}`);
    expect(await row.locator('.offsets').textContent()).toBe(`${points}–${points + 7}`);
    // A span another client wrote past the text's end, or inside an emoji, leaves the list standing.
    const { me, other } = await aliceElsewhere(id);
    try {
      const inEmoji = text.indexOf('🇺🇦') + 1;
      addSpan(other.doc, { label: 'ORG', start: inEmoji, end: text.length + 50, quote: 'x', author: me.id });
      await page.getByRole('heading', { name: /Annotations\s*2/ }).waitFor(WAIT);
      expect(await page.getByRole('alert').count()).toBe(0);
      expect(await row.isVisible()).toBe(true);
    } finally {
      other.destroy();
    }
    await page.close();
  });

  it('lets Tab reach the article at once, past the header and the bar, and keeps Tab inside an open popover', async () => {
    const text = 'Officials in Kyiv said Ukraine would respond.';
    const { page } = await openAs(context, 'Tabs', text);
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Skip to the content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.hasAttribute('data-article'))).toBe(true);
    // A span's popover, from the keyboard: Tab and Shift+Tab go round its controls.
    await page.keyboard.press('ArrowRight'); // Officials
    await page.keyboard.press('3');
    await waitFor(async () => (await spansOf(page)).length === 1, 'a span');
    await page.keyboard.press('ArrowLeft'); // (back on it: the label cleared the selection)
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor(WAIT);
    const inside = () => page.evaluate(() => !!document.activeElement?.closest('[role="dialog"]'));
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      expect(await inside(), `Tab ${i + 1}`).toBe(true);
    }
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Shift+Tab');
      expect(await inside(), `Shift+Tab ${i + 1}`).toBe(true);
    }
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', ...WAIT });
    await page.close();
  });

  it('keeps the keyboard’s selection in view below the bar that stays at the top of the window', async () => {
    const { page } = await openAs(context, 'Long enough to scroll', await seedText(20_000));
    const below = () =>
      page.evaluate(() => {
        const bar = document.querySelector('.workspace-bar')!.getBoundingClientRect();
        const selection = window.getSelection()!;
        const box = selection.getRangeAt(0).getBoundingClientRect();
        return { selected: selection.toString(), top: box.top, bottom: box.bottom, barBottom: bar.bottom, height: window.innerHeight };
      });
    // Tabbed to (focused), the article is scrolled into view below the bar, not under it.
    await page.locator('[data-article]').focus();
    const placed = await page.evaluate(() => ({
      top: document.querySelector('[data-article]')!.getBoundingClientRect().top,
      barBottom: document.querySelector('.workspace-bar')!.getBoundingClientRect().bottom,
    }));
    expect(placed.top).toBeGreaterThanOrEqual(placed.barBottom);
    await page.locator('[data-article]').blur();
    // Scrolled down a little: the article's first words are under the bar.
    await page.evaluate(() => window.scrollTo(0, 200));
    await page.locator('[data-article]').focus();
    await page.keyboard.press('ArrowRight');
    let seen = await below();
    expect(seen.selected.length).toBeGreaterThan(0);
    expect(seen.top).toBeGreaterThanOrEqual(seen.barBottom);
    expect(seen.bottom).toBeLessThanOrEqual(seen.height);
    // Scrolled so that the selection is under the bar (in the window, but not to be seen): the
    // next word, on the same line, is brought out below it.
    await page.evaluate((top) => window.scrollBy(0, top - 30), seen.top);
    expect((await below()).top).toBeLessThan(seen.barBottom);
    await page.keyboard.press('ArrowRight');
    seen = await below();
    expect(seen.top).toBeGreaterThanOrEqual(seen.barBottom);
    expect(seen.bottom).toBeLessThanOrEqual(seen.height);
    // Far down, then on to a word above: brought back into view below the bar.
    await page.evaluate(() => window.scrollTo(0, 4_000));
    await page.keyboard.press('ArrowRight');
    seen = await below();
    expect(seen.top).toBeGreaterThanOrEqual(seen.barBottom);
    expect(seen.bottom).toBeLessThanOrEqual(seen.height);
    await page.close();
  });
});

describe('the export panel', () => {
  it('says what CoNLL leaves out where spans nest, when CoNLL is chosen', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/1`);
    await signIn(page, 'admin');
    const panel = page.getByRole('region', { name: 'Export dataset' });
    await panel.waitFor(WAIT);
    const note = panel.getByRole('note');
    expect(await note.count()).toBe(0);
    await panel.getByLabel('Format').selectOption('conll');
    await note.waitFor(WAIT);
    expect(await note.textContent()).toMatch(/the longest is kept and the others are left out/);
    await context.close();
  });
});

describe('signing in', () => {
  it('asks for a username when only spaces were typed, without asking the server', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.url);
    let asked = 0;
    page.on('request', (request) => void (request.url().endsWith('/api/auth/login') && asked++));
    await page.getByLabel('Username').fill('   ');
    await page.getByLabel('Password').fill('demo');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Enter your username.' }).waitFor(WAIT);
    expect(asked).toBe(0);
    await context.close();
  });
});
