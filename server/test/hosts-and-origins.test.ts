/**
 * Who the server answers: the names it serves (DNS rebinding), the pages a sync socket may come
 * from (the Origin's scheme as well as its host), and the name a presence state may show.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { addSpan, goldRoom, layerRoom, type Me } from '@spanwise/shared';
import { loadConfig } from '../src/config.ts';
import { api, connectLayer, login, startTestServer, storedRows, waitFor, type TestServer } from './harness.ts';

/** The settings a server reads from these environment variables (over the test's own). */
const loadConfigWith = (env: Record<string, string>) => {
  const { publicUrl, allowedHosts } = loadConfig(env);
  return { publicUrl, allowedHosts };
};

/** A GET with the Host header given (fetch will not send one of its own choosing). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a sync socket with these headers: 'open', the close code after an upgrade, or the HTTP status of a refused one. */
function openSocket(server: TestServer, room: string, headers: Record<string, string>): Promise<{ opened: true; ws: WebSocket } | { opened: false; status?: number; code?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/sync/${room}`, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ opened: false, status: res.statusCode });
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('close', (code) => resolve({ opened: false, code }));
    // A refusal after the upgrade (Origin) is a close; an open socket gets the server's greeting.
    ws.on('message', () => resolve({ opened: true, ws }));
  });
}

describe('the names the server answers for (DNS rebinding)', () => {
  let server: TestServer;
  let alice: string;
  let room: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { allowedHosts: ['spanwise.example.org', '.example.net'] } });
    alice = await login(server.url, 'alice');
    const me = (await api<Me>(server.url, alice, '/api/me')).body;
    room = layerRoom(1, me.id);
  });
  afterAll(() => server.close());

  it('answers IP addresses, localhost and the listed names, and refuses any other name with 421 and what to do', async () => {
    const port = server.port;
    // (Signed out: an answered request is a 401.)
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `spanwise.example.org:${port}`, 'team.example.net', 'example.net']) {
      expect((await getWithHost(`${server.url}/api/me`, host)).status, host).toBe(401);
    }
    for (const host of [`evil.example:${port}`, 'spanwise.example.org.evil.example', 'other.example.org']) {
      const res = await getWithHost(`${server.url}/api/me`, host);
      expect(res.status, host).toBe(421);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'host_not_allowed', message: expect.stringContaining('ALLOWED_HOSTS') } });
    }
    // The health check answers whatever the name (a probe reaches an instance by its service
    // name); the metrics only behind their token (open, they would tell a rebinding page when
    // someone is at work).
    expect((await getWithHost(`${server.url}/api/health`, `app_1:${port}`)).status).toBe(200);
    expect((await getWithHost(`${server.url}/metrics`, `app_1:${port}`)).status).toBe(421);
    // The pages too: a rebinding page cannot load the app there either.
    expect((await getWithHost(`${server.url}/`, `evil.example:${port}`)).status).toBe(421);
    // And signing in, which the demo password would otherwise let a rebinding page do.
    const signIn = await new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ username: 'admin', password: 'demo' });
      const req = request(`${server.url}/api/auth/login`, { method: 'POST', headers: { host: `evil.example:${port}`, origin: `http://evil.example:${port}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(signIn).toBe(421);
  });

  it('refuses a sync socket for another name before the upgrade, even when its Origin and Host agree', async () => {
    const evil = `evil.example:${server.port}`;
    expect(await openSocket(server, room, { cookie: alice, host: evil, origin: `http://${evil}` })).toEqual({ opened: false, status: 421 });
    const listed = await openSocket(server, room, { cookie: alice, host: `spanwise.example.org:${server.port}`, origin: `http://spanwise.example.org:${server.port}` });
    expect(listed.opened).toBe(true);
    if (listed.opened) listed.ws.close();
  });
});

describe('the metrics behind a token (METRICS_TOKEN)', () => {
  it('answer a scraper whatever name it reaches the instance by', async () => {
    const token = 'scrape-token-0123456789';
    const server = await startTestServer({ config: { metricsToken: token } });
    try {
      const scrape = await new Promise<number>((resolve, reject) => {
        const req = request(`${server.url}/metrics`, { headers: { host: `app_1:${server.port}`, authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(scrape).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('the site’s own address (PUBLIC_URL)', () => {
  it('names the W3C export’s annotations the same whatever address the export was asked at, and is answered for', async () => {
    const server = await startTestServer({ config: loadConfigWith({ PUBLIC_URL: 'https://spanwise.example.org/' }) });
    try {
      const admin = await login(server.url, 'admin');
      // A span on the gold layer, for an annotation to name.
      const gold = connectLayer(server.url, goldRoom(1), admin);
      try {
        await gold.synced;
        addSpan(gold.doc, { label: 'ORG', start: 0, end: 3, quote: (await api<{ text: string }>(server.url, admin, '/api/documents/1')).body.text.slice(0, 3), author: 1 });
        await waitFor(async () => (await storedRows(server.database.db, goldRoom(1))) > 0, 'the span stored');
      } finally {
        gold.destroy();
      }
      const ids = async (host: string) => {
        const body = await new Promise<string>((resolve, reject) => {
          const req = request(`${server.url}/api/projects/1/export?format=w3c`, { headers: { host, cookie: admin } }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk) => (text += chunk));
            res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${res.statusCode}: ${text}`))));
          });
          req.on('error', reject);
          req.end();
        });
        const collection = JSON.parse(body) as { id: string; first: { items: Array<{ id: string; target: { source: string } }> } };
        return [collection.id, ...collection.first.items.flatMap((item) => [item.id, item.target.source])];
      };
      const viaLoopback = await ids(`127.0.0.1:${server.port}`);
      expect(viaLoopback.length).toBeGreaterThan(1);
      for (const id of viaLoopback) expect(id.startsWith('https://spanwise.example.org/'), id).toBe(true);
      expect(await ids(`localhost:${server.port}`)).toEqual(viaLoopback);
      expect(await ids('spanwise.example.org')).toEqual(viaLoopback); // (its name answered for, though not listed)
    } finally {
      await server.close();
    }
  });

  it('must be an http or https origin alone', () => {
    expect(() => loadConfig({ PUBLIC_URL: 'https://spanwise.example.org/app' })).toThrow(/PUBLIC_URL: an http or https origin alone/);
    expect(() => loadConfig({ PUBLIC_URL: 'ftp://spanwise.example.org' })).toThrow(/PUBLIC_URL/);
    expect(loadConfig({ PUBLIC_URL: 'http://10.0.0.5:8080' }).publicUrl).toBe('http://10.0.0.5:8080');
    // Its name is answered for, written with a final dot or not; a domain is not a name.
    expect(loadConfig({ PUBLIC_URL: 'https://example.org./' }).allowedHosts).toEqual(['example.org']);
    expect(() => loadConfig({ PUBLIC_URL: 'https://.org' })).toThrow(/PUBLIC_URL: its name must be a host name/);
  });
});

describe('the page a sync socket comes from, served over HTTPS (SECURE_COOKIES=1)', () => {
  it('must be an https page of the same host: an http one is refused, but on this machine', async () => {
    const server = await startTestServer({ config: { secureCookies: true, allowedHosts: ['spanwise.example.org'] } });
    try {
      const alice = await login(server.url, 'alice');
      const me = (await api<Me>(server.url, alice, '/api/me')).body;
      const room = layerRoom(1, me.id);
      const host = `spanwise.example.org:${server.port}`;
      expect(await openSocket(server, room, { cookie: alice, host, origin: `http://${host}` })).toEqual({ opened: false, code: 4403 });
      const https = await openSocket(server, room, { cookie: alice, host, origin: `https://${host}` });
      expect(https.opened).toBe(true);
      if (https.opened) https.ws.close();
      // Developing on this machine with SECURE_COOKIES on: its own pages over http.
      for (const local of [`localhost:${server.port}`, `127.0.0.1:${server.port}`]) {
        const socket = await openSocket(server, room, { cookie: alice, host: local, origin: `http://${local}` });
        expect(socket.opened, local).toBe(true);
        if (socket.opened) socket.ws.close();
      }
    } finally {
      await server.close();
    }
  });

  it('may be http or https when the server is not told it is served over HTTPS', async () => {
    const server = await startTestServer();
    try {
      const alice = await login(server.url, 'alice');
      const me = (await api<Me>(server.url, alice, '/api/me')).body;
      const host = `127.0.0.1:${server.port}`;
      for (const origin of [`http://${host}`, `https://${host}`]) {
        const socket = await openSocket(server, layerRoom(1, me.id), { cookie: alice, host, origin });
        expect(socket.opened, origin).toBe(true);
        if (socket.opened) socket.ws.close();
      }
      expect(await openSocket(server, layerRoom(1, me.id), { cookie: alice, host, origin: `http://127.0.0.1:1` })).toEqual({ opened: false, code: 4403 });
    } finally {
      await server.close();
    }
  });
});

describe('the name a presence state shows', () => {
  it('is the signed-in user’s own: a state under another name is not passed on', async () => {
    const server = await startTestServer();
    try {
      const alice = await login(server.url, 'alice');
      const me = (await api<Me>(server.url, alice, '/api/me')).body;
      const room = layerRoom(1, me.id);
      const speaker = connectLayer(server.url, room, alice);
      const listener = connectLayer(server.url, room, alice);
      try {
        await Promise.all([speaker.synced, listener.synced]);
        const seen = () => listener.provider.awareness.getStates().get(speaker.doc.clientID) as { user?: { name?: string } } | undefined;
        speaker.provider.awareness.setLocalState({ user: { id: me.id, name: 'dana (curator)', color: '#000' }, selection: null });
        // Then a state the server passes on, under the same client id: the one before went nowhere.
        await new Promise((r) => setTimeout(r, 300));
        expect(seen()?.user?.name).toBeUndefined();
        speaker.provider.awareness.setLocalState({ user: { id: me.id, name: me.username, color: '#000' }, selection: null });
        await waitFor(() => seen()?.user?.name === me.username, 'alice’s own presence');
      } finally {
        speaker.destroy();
        listener.destroy();
      }
    } finally {
      await server.close();
    }
  });
});
