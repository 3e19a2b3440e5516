/**
 * Prometheus metrics for sync, on a registry of this server's own (two servers in one process,
 * as in tests, never share counters).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MESSAGE_LABELS, SYNC_ERROR_KINDS, type SyncObserver } from '../../sync/types.ts';

export interface SyncState {
  rooms: number;
  sockets: number;
  queued: number;
  queuedBytes: number;
}

export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createSyncMetrics(state: () => SyncState, options: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'spanwise_' });
  const gauge = (name: string, help: string, read: (s: SyncState) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(state()));
      },
    });
  gauge('spanwise_sync_rooms_open', 'Rooms loaded on this instance', (s) => s.rooms);
  gauge('spanwise_sync_sockets_open', 'Sync sockets connected to this instance', (s) => s.sockets);
  gauge('spanwise_sync_queue_length', 'Updates received but not yet stored', (s) => s.queued);
  gauge('spanwise_sync_queued_bytes', 'Bytes received but not yet stored (updates, and frames waiting for their room)', (s) => s.queuedBytes);
  // By kind: `update` (and `sync_step2`) carry document changes, `awareness` presence.
  const byKind = { labelNames: ['kind'] as const, registers: [registry] };
  const messagesIn = new Counter({ name: 'spanwise_sync_messages_in_total', help: 'Sync messages received, by kind', ...byKind });
  const messagesOut = new Counter({ name: 'spanwise_sync_messages_out_total', help: 'Sync messages sent, by kind', ...byKind });
  const bytesIn = new Counter({ name: 'spanwise_sync_bytes_in_total', help: 'Bytes of sync messages received, by kind', ...byKind });
  const bytesOut = new Counter({ name: 'spanwise_sync_bytes_out_total', help: 'Bytes of sync messages sent, by kind', ...byKind });
  const stored = new Counter({ name: 'spanwise_sync_updates_stored_total', help: 'Updates stored', registers: [registry] });
  const storeLatency = new Histogram({
    name: 'spanwise_sync_store_seconds',
    help: 'Time to store one batch of updates (one transaction)',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const storeFailedLatency = new Histogram({
    name: 'spanwise_sync_store_failed_seconds',
    help: 'Time a store attempt took to fail (its batch stays queued and is tried again)',
    buckets: [...LATENCY_BUCKETS, 10, 30, 60],
    registers: [registry],
  });
  const fanOutLatency = new Histogram({
    name: 'spanwise_sync_fanout_seconds',
    help: "Time from receiving an update from a socket to sending it on to the room's other sockets (updates sent to nobody are not timed)",
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({ name: 'spanwise_sync_errors_total', help: 'Sync errors by kind', labelNames: ['kind'], registers: [registry] });
  // Every series from the start, at 0: an alert on increase() sees the first error of a kind.
  for (const kind of MESSAGE_LABELS) for (const counter of [messagesIn, messagesOut, bytesIn, bytesOut]) counter.inc({ kind }, 0);
  for (const kind of SYNC_ERROR_KINDS) errors.inc({ kind }, 0);

  const observer: SyncObserver = {
    messageIn(bytes, kind) {
      messagesIn.inc({ kind });
      bytesIn.inc({ kind }, bytes);
    },
    messagesOut(count, bytes, kind) {
      messagesOut.inc({ kind }, count);
      bytesOut.inc({ kind }, count * bytes);
    },
    updatesStored(count, seconds) {
      stored.inc(count);
      storeLatency.observe(seconds);
    },
    storeFailed(seconds) {
      storeFailedLatency.observe(seconds);
    },
    fanOut(seconds) {
      fanOutLatency.observe(seconds);
    },
    error(kind) {
      errors.inc({ kind });
    },
  };
  return { registry, observer };
}
