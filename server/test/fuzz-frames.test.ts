/**
 * 10,000 random and truncated frames at one room (taken in by the server, counted there): the server stays up, a client in another
 * room keeps syncing, nothing stored changes, and memory returns to its level.
 */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';
import { addSpan, CloseCode, layerRoom, listSpans, MessageKind } from '@spanwise/shared';
import { defaultSyncLimits } from '../src/config.ts';
import { connectLayer, login, metric, metricTotal, startTestServer, storedRows, waitFor, type LayerClient } from './harness.ts';
import WebSocket from 'ws';

const ALICE = 2;
const FRAMES = 10_000;
const WORKERS = 16;

/** A deterministic PRNG, so a failure can be replayed. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
}


const MALFORMED = 'spanwise_sync_errors_total{kind="malformed"}';
/** Every frame the server took in, of every kind. */
const FRAMES_IN = 'spanwise_sync_messages_in_total';
/** The bystander's own frames in a round, counted with the fuzzed ones: its 100 edits and some presence. */
const BYSTANDER_FRAMES = 200;

/** Without it the memory check would compare garbage the collector has not got round to. */
function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run with --expose-gc (vitest.config.ts sets it for the server project)');
  collect();
}

function validUpdateMessage(): Uint8Array {
  const doc = new Y.Doc();
  addSpan(doc, { label: 'GPE', start: 0, end: 4, quote: 'text', author: ALICE });
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MessageKind.sync);
  syncProtocol.writeUpdate(e, Y.encodeStateAsUpdate(doc));
  return encoding.toUint8Array(e);
}

describe('fuzzed frames', () => {
  it('survives 10,000 random and truncated frames at one room, twice, and memory returns to its level', { timeout: 120_000 }, async () => {
    // Thousands of sockets in seconds, all alice's: her opening allowance is lifted (what is
    // fuzzed is the frames, not the door).
    const server = await startTestServer({ config: { sync: { ...defaultSyncLimits, socketOpensPerSecond: 1e6 } } });
    const clients: LayerClient[] = [];
    try {
      const cookie = await login(server.url, 'alice');
      const target = layerRoom(1, ALICE);
      const bystander = connectLayer(server.url, layerRoom(2, ALICE), cookie);
      const peer = connectLayer(server.url, layerRoom(2, ALICE), await login(server.url, 'dana'));
      clients.push(bystander, peer);
      await Promise.all([bystander.synced, peer.synced]);
      // When each bystander edit reached the peer, in the other room.
      const madeAt = new Map<string, number>();
      const lags: number[] = [];
      peer.doc.getMap('annotations').observe((event) => {
        for (const key of event.keysChanged) {
          const at = madeAt.get(key);
          if (at !== undefined) lags.push(performance.now() - at);
        }
      });

      const valid = validUpdateMessage();
      const targetRows = () => storedRows(server.database.db, target);
      const rowsBefore = await targetRows();
      let edits = 0;

      /** FRAMES frames from WORKERS sockets at a time, each socket until the server closes it. */
      const round = async (seed: number) => {
        const rand = prng(seed);
        const frame = (): Uint8Array => {
          if (rand() < 0.5) return valid.slice(0, Math.floor(rand() * valid.length)); // truncated
          const bytes = new Uint8Array(1 + Math.floor(rand() * 64));
          for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
          if (rand() < 0.5) bytes[0] = Math.floor(rand() * 4); // a real message kind, garbage after
          return bytes;
        };
        const malformedBefore = await metric(server.url, MALFORMED);
        const framesBefore = await metricTotal(server.url, FRAMES_IN);
        const editsBy = edits + 100;
        // Frames the server took in: what is sent after it closed a socket never reaches it, so
        // the sockets go on until FRAMES have (read every 100 ms, so a few hundred more go).
        let received = 0;
        const count = async () => (received = (await metricTotal(server.url, FRAMES_IN)) - framesBefore);
        const counting = setInterval(() => void count().catch(() => {}), 100);
        let sockets = 0;
        let attempts = 0;
        let closedAsMalformed = 0;
        const worker = async () => {
          while (received < FRAMES + BYSTANDER_FRAMES) {
            // Bounded: each socket the server opens takes in a frame or more before it is closed.
            if (++attempts > FRAMES) throw new Error(`${FRAMES} sockets tried, and the server took in only ${received} frames`);
            const ws = new WebSocket(`${server.url.replace('http', 'ws')}/sync/${target}`, { headers: { cookie } });
            await new Promise<void>((resolve) => {
              ws.on('open', () => {
                sockets++;
                const pump = () => {
                  if (ws.readyState !== ws.OPEN || received >= FRAMES + BYSTANDER_FRAMES) return ws.close();
                  ws.send(frame());
                  setImmediate(pump);
                };
                pump();
              });
              ws.on('close', (code) => {
                if (code === CloseCode.malformed) closedAsMalformed++;
                resolve();
              });
              ws.on('error', () => resolve());
            });
            // Meanwhile the bystander in the other room keeps editing (a hundred times a round: its
            // document's growth is not what the memory check is after).
            if (edits >= editsBy) continue;
            const id = `e${edits++}`;
            madeAt.set(id, performance.now());
            addSpan(bystander.doc, { label: 'ORG', start: edits % 2000, end: (edits % 2000) + 1, quote: 'x', author: ALICE }, id);
          }
        };
        try {
          await Promise.all(Array.from({ length: WORKERS }, worker));
        } finally {
          clearInterval(counting);
        }
        expect(await count()).toBeGreaterThanOrEqual(FRAMES + BYSTANDER_FRAMES);
        // The frames reached the decoder: every fuzzing socket but each worker's last (which the
        // client closes on reaching FRAMES) was closed by the server as malformed, and counted.
        // Sockets refused at the door, or garbage let through, would close otherwise or not at all.
        expect(closedAsMalformed).toBeGreaterThan(FRAMES / 100);
        expect(closedAsMalformed).toBeGreaterThanOrEqual(sockets - WORKERS);
        expect((await metric(server.url, MALFORMED)) - malformedBefore).toBeGreaterThanOrEqual(closedAsMalformed);
        // Still up; every bystander edit reached the peer, each while the fuzzing went on.
        expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
        await waitFor(() => lags.length === edits, 'every bystander edit at the peer', 10_000);
        await waitFor(() => server.sync.rooms.size <= 1 && server.sync.connections.size === 2, 'fuzzing sockets gone', 10_000);
        expect(server.sync.stats()).toMatchObject({ queued: 0, queuedBytes: 0 });
        gc();
        return process.memoryUsage().heapUsed;
      };

      const afterFirst = await round(42);
      expect(edits).toBe(100);
      expect(Math.max(...lags)).toBeLessThan(10_000);
      // A random frame may by chance be a valid empty update; none carries content.
      const check = connectLayer(server.url, target, cookie);
      await check.synced;
      expect(listSpans(check.doc)).toEqual([]);
      check.destroy();
      expect(await targetRows()).toBe(rowsBefore);

      // The same again: what the server keeps of 10,000 bad frames is what a second 10,000 grow.
      const afterSecond = await round(43);
      expect(Math.max(...lags)).toBeLessThan(10_000);
      expect(await targetRows()).toBe(rowsBefore);
      const grownMiB = (afterSecond - afterFirst) / 2 ** 20;
      expect(grownMiB).toBeLessThan(8);
    } finally {
      for (const c of clients) c.destroy();
      await server.close();
    }
  });
});
