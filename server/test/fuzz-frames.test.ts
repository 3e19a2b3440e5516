/**
 * 10,000 random and truncated frames at one room: the server stays up, a client in another
 * room keeps syncing, nothing stored changes, and memory returns to its level.
 */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';
import { addSpan, CloseCode, layerRoom, listSpans, MessageKind } from '@spanwise/shared';
import { connectLayer, login, startTestServer, storedRows, waitFor } from './harness.ts';
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

/** One sample from the server's Prometheus text; a counter never incremented is absent, so 0. */
async function metric(baseUrl: string, sample: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

const MALFORMED = 'spanwise_sync_errors_total{kind="malformed"}';

function validUpdateMessage(): Uint8Array {
  const doc = new Y.Doc();
  addSpan(doc, { label: 'GPE', start: 0, end: 4, quote: 'text', author: ALICE });
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MessageKind.sync);
  syncProtocol.writeUpdate(e, Y.encodeStateAsUpdate(doc));
  return encoding.toUint8Array(e);
}

describe('fuzzed frames', () => {
  it('survives 10,000 random and truncated frames at one room', async () => {
    const server = await startTestServer();
    try {
      const cookie = await login(server.url, 'alice');
      const target = layerRoom(1, ALICE);
      const bystander = connectLayer(server.url, layerRoom(2, ALICE), cookie);
      await bystander.synced;
      const peer = connectLayer(server.url, layerRoom(2, ALICE), await login(server.url, 'dana'));
      await peer.synced;

      const rand = prng(42);
      const valid = validUpdateMessage();
      const frame = (): Uint8Array => {
        if (rand() < 0.5) return valid.slice(0, Math.floor(rand() * valid.length)); // truncated
        const bytes = new Uint8Array(1 + Math.floor(rand() * 64));
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
        if (rand() < 0.5) bytes[0] = Math.floor(rand() * 4); // a real message kind, garbage after
        return bytes;
      };
      const targetRows = () => storedRows(server.database.db, target);
      const rowsBefore = await targetRows();

      (globalThis as { gc?: () => void }).gc?.();
      const heapBefore = process.memoryUsage().heapUsed;
      const malformedBefore = await metric(server.url, MALFORMED);
      let sent = 0;
      let sockets = 0;
      let closedAsMalformed = 0;
      let edits = 0;
      const worker = async () => {
        while (sent < FRAMES) {
          const ws = new WebSocket(`${server.url.replace('http', 'ws')}/sync/${target}`, { headers: { cookie } });
          await new Promise<void>((resolve) => {
            ws.on('open', () => {
              sockets++;
              // Keep sending on this socket until the server closes it.
              const pump = () => {
                if (ws.readyState !== ws.OPEN || sent >= FRAMES) return ws.close();
                sent++;
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
          // Meanwhile the bystander in the other room keeps editing.
          if (edits < 200) addSpan(bystander.doc, { label: 'ORG', start: edits, end: edits + 1, quote: 'x', author: ALICE }, `e${edits++}`);
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, worker));
      // The frames reached the decoder: every fuzzing socket but each worker's last (which the
      // client closes on reaching FRAMES) was closed by the server as malformed, and counted.
      // Sockets refused at the door, or garbage let through, would close otherwise or not at all.
      expect(closedAsMalformed).toBeGreaterThan(FRAMES / 100);
      expect(closedAsMalformed).toBeGreaterThanOrEqual(sockets - WORKERS);
      expect((await metric(server.url, MALFORMED)) - malformedBefore).toBeGreaterThanOrEqual(closedAsMalformed);

      // Still up, still syncing the other room, and nothing new stored for the fuzzed one.
      expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
      await waitFor(() => listSpans(peer.doc).length === edits, 'every bystander edit at the peer', 10_000);
      expect(edits).toBeGreaterThan(100);
      // A random frame may by chance be a valid empty update; none carries content.
      const check = connectLayer(server.url, target, cookie);
      await check.synced;
      expect(listSpans(check.doc)).toEqual([]);
      check.destroy();
      expect(await targetRows()).toBe(rowsBefore);

      await waitFor(() => server.sync.rooms.size <= 1 && server.sync.connections.size === 2, 'fuzzing sockets gone', 10_000);
      (globalThis as { gc?: () => void }).gc?.();
      const grownMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
      expect(grownMiB).toBeLessThan(40);
      bystander.destroy();
      peer.destroy();
    } finally {
      await server.close();
    }
  });
});
