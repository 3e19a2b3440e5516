import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { layerRoom, listSpans } from '@spanwise/shared';
import { connectLayer, login, startTestServer, waitFor, type LayerClient, type TestServer } from '../test/harness.ts';
import { EditLedger, LeanClient } from './lean-client.ts';
import { makeEdit, MARKS, Recorder, sleep, type OwnSpans } from './load.ts';

// The capacity bench's measuring instrument: its clients must be real peers (their edits reach a
// stock provider) and must time every other client's edit exactly once.
describe('bench edit ledger', () => {
  it('times each edit once per receiver, whole edits only, and counts a resent one apart', () => {
    const doc = new Y.Doc();
    doc.clientID = 5;
    const ledger = new EditLedger();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    for (const [i, sentAt] of [100, 200, 300].entries()) {
      const start = Y.getState(doc.store, 5);
      doc.getMap('m').set(`k${i}`, 'value');
      ledger.record(5, start, Y.getState(doc.store, 5), sentAt);
    }
    const seen = new Map<number, number>();
    const found: number[] = [];
    let again = 0;
    const read = (u: Uint8Array, receiver = 9) => ledger.sentAtsIn(u, receiver, seen, (t) => found.push(t), () => again++);
    read(updates[0]!);
    expect(found).toEqual([100]);
    // A merged message holding the first edit again and the second: one new delivery, one resent.
    read(Y.mergeUpdates([updates[0]!, updates[1]!]));
    expect(found).toEqual([100, 200]);
    expect(again).toBe(1);
    // The sender's own edit echoed back is neither.
    read(updates[2]!, 5);
    expect(found).toEqual([100, 200]);
    expect(again).toBe(1);
  });
});

describe('bench edits', () => {
  /** The spans `edits` edits of client `index` make under `seed`, as (label, start, end). */
  const spansMade = (seed: number, index: number, edits = 12) => {
    const doc = new Y.Doc();
    const rec = new Recorder(seed);
    const src = { text: 'The U.S. fears Iran is preparing to provide Russia with missiles', labels: ['PERSON', 'ORG', 'GPE', 'CLAIM'], author: 2, authorName: 'alice' };
    const own: OwnSpans = [];
    for (let seq = 0; seq < edits; seq++) makeEdit(doc, doc.getMap<number>(MARKS), own, index, seq, { room: 'r', peers: 2 }, src, rec);
    return listSpans(doc).map((s) => `${s.label} ${s.start}-${s.end}`);
  };

  it('are the same for a client in every run with the same seed, and differ between clients and seeds', () => {
    expect(spansMade(1, 0)).toEqual(spansMade(1, 0));
    expect(spansMade(1, 0)).not.toEqual(spansMade(1, 1));
    expect(spansMade(1, 0)).not.toEqual(spansMade(2, 0));
    expect(new Recorder(3).randomFor(4)()).toBe(new Recorder(3).randomFor(4)());
  });
});

describe('bench lean client', () => {
  let server: TestServer | null = null;
  const clients: Array<LeanClient | LayerClient> = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await server?.close();
    server = null;
  });

  it('syncs, sends edits a stock provider receives, and times each other client’s edit once', async () => {
    server = await startTestServer();
    const cookie = await login(server.url, 'alice');
    const room = layerRoom(1, 2); // alice's own layer of document 1
    const target = { wsBase: server.url.replace(/^http/, 'ws') + '/sync', cookie };
    const rec = new Recorder();
    rec.measureFrom = 0;
    const ledger = new EditLedger();
    // `peers` counts the lean clients only: the stock provider below records nothing.
    const spec = { room, peers: 2 };
    const a = new LeanClient(0, spec, target, rec, ledger);
    const b = new LeanClient(1, spec, target, rec, ledger);
    clients.push(a, b);
    await Promise.all([a.synced, b.synced]);
    const stock = connectLayer(server.url, room, cookie);
    clients.push(stock);
    await stock.synced;

    const src = { text: 'The minister said the agreement would be signed in Geneva next week.', labels: ['PERSON', 'ORG', 'GPE'], author: 2, authorName: 'alice' };
    // Same tick on purpose: the server may store both in one batch and echo it to both senders.
    for (let i = 0; i < 5; i++) {
      a.edit(src);
      b.edit(src);
      await sleep(5);
    }
    await waitFor(() => rec.deliveries >= rec.expectedDeliveries, 'every edit to reach the other lean client');
    await sleep(200); // an echo counted as a delivery would show up here
    expect(rec.expectedDeliveries).toBe(10);
    expect(rec.deliveries).toBe(10);
    expect(rec.duplicates).toBe(0);
    expect(rec.latencies.every((ms) => ms >= 0 && ms < 5_000)).toBe(true);

    await waitFor(() => stock.doc.getMap(MARKS).size === 10, 'the stock provider to hold every mark');
    const expected = rec.room(room).spans;
    const spans = listSpans(stock.doc);
    expect(spans).toHaveLength(expected.size);
    for (const span of spans) expect(span.label).toBe(expected.get(span.id));
    expect(rec.socketErrors + rec.unexpectedCloses).toBe(0);
  });
});
