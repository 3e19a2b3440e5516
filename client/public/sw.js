/**
 * The service worker: keeps the app shell (index.html and the built assets it names) so that a
 * page reloaded while the server cannot be reached still opens. The layers themselves come from
 * IndexedDB (sync/open-layer.ts) and what the pages read from the API from the copies the API
 * client keeps (api/offline-copies.ts); nothing under /api, /sync or /metrics passes through here.
 *
 * - A page (a navigation): the network first, and the shell kept fresh from each answer that is
 *   the app's index.html; the kept shell when the network fails or a proxy in front answers
 *   that the server is away (502, 503, 504). Every page path is index.html (the client routes).
 * - /assets/*: hashed, so never changed: the kept copy first, the network to fill it — only with
 *   the asset itself (a 200 that is not a page).
 * A new build's shell replaces the old one's assets at the next page load online.
 */
const SHELL = 'spanwise-shell-v1';
const NOT_PAGES = /^\/(api|sync|metrics)(\/|$)/;
/** What a proxy answers while the app servers behind it are away. */
const AWAY = new Set([502, 503, 504]);

/** Whether `answer` is a built asset itself, not a page answered in its place. */
const isAsset = (answer) => answer.status === 200 && !(answer.headers.get('content-type') ?? '').includes('text/html');

/** The built assets an index.html names (its script and stylesheet). */
function assetsOf(html) {
  return [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
}

/** Keeps `page` (an index.html answer) as the shell, with the assets it names. */
async function keepShell(page) {
  const html = await page.clone().text();
  const wanted = assetsOf(html);
  // Not the app's index.html (a proxy's maintenance page, a captive portal's): not kept.
  if (wanted.length === 0 || !html.includes('id="root"')) return;
  const cache = await caches.open(SHELL);
  const kept = await cache.match('/');
  const changed = !kept || (await kept.text()) !== html;
  for (const asset of wanted) {
    if (await cache.match(asset)) continue;
    const answer = await fetch(asset);
    // An asset this server does not have (another build's instance answered): keep the old shell.
    if (!isAsset(answer)) return;
    await cache.put(asset, answer);
  }
  await cache.put('/', page);
  if (!changed) return;
  // A new build: forget the assets of earlier ones.
  for (const request of await cache.keys()) {
    const { pathname } = new URL(request.url);
    if (pathname.startsWith('/assets/') && !wanted.includes(pathname)) await cache.delete(request);
  }
}

async function openPage(request, event) {
  // (A kept copy that cannot be read is none: the site's storage refused, say.)
  const shell = () => caches.match('/', { cacheName: SHELL }).catch(() => undefined);
  let page;
  try {
    page = await fetch(request);
  } catch (err) {
    const kept = await shell();
    if (kept) return kept;
    throw err;
  }
  if (AWAY.has(page.status)) return (await shell()) ?? page;
  if (page.status === 200 && (page.headers.get('content-type') ?? '').includes('text/html')) {
    event.waitUntil(keepShell(page.clone()).catch(() => {}));
  }
  return page;
}

async function openAsset(request, event) {
  // Keeping the asset is a bonus: a cache that cannot be read or written (the site's storage
  // full, or refused) must not keep the page from the asset the network gave.
  const kept = await caches.match(request, { cacheName: SHELL }).catch(() => undefined);
  if (kept) return kept;
  const answer = await fetch(request);
  if (isAsset(answer)) {
    const copy = answer.clone();
    event.waitUntil(
      caches
        .open(SHELL)
        .then((cache) => cache.put(request, copy))
        .catch(() => {}),
    );
  }
  return answer;
}

self.addEventListener('install', (event) => {
  // Installed even when the shell cannot be kept now (the site's storage full, say): the pages
  // keep it at a later load, and a worker left out would leave the old one answering.
  event.waitUntil(
    fetch('/', { cache: 'no-cache' })
      .then((page) => (page.ok ? keepShell(page) : undefined))
      .catch(() => {})
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith('spanwise-shell-') && key !== SHELL) await caches.delete(key);
      // Pages opened before this worker was installed use it from now on.
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate' && !NOT_PAGES.test(url.pathname)) event.respondWith(openPage(request, event));
  else if (url.pathname.startsWith('/assets/')) event.respondWith(openAsset(request, event));
});
