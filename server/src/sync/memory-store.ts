import type { StoredUpdate, SyncStore } from './types.ts';

/** An in-memory SyncStore for unit tests; `failing` simulates an outage. */
export class MemoryStore implements SyncStore {
  readonly rooms = new Map<string, StoredUpdate[]>();
  readonly setAsideRows: Array<{ room: string; id: string; error: string }> = [];
  failing = false;
  appendCalls = 0;
  #next = 1;

  async load(room: string): Promise<StoredUpdate[]> {
    if (this.failing) throw new Error('store unavailable');
    return [...(this.rooms.get(room) ?? [])];
  }

  async append(room: string, updates: readonly Uint8Array[]): Promise<void> {
    this.appendCalls++;
    if (this.failing) throw new Error('store unavailable');
    const rows = this.rooms.get(room) ?? [];
    for (const data of updates) rows.push({ id: String(this.#next++), data: data.slice() });
    this.rooms.set(room, rows);
  }

  async setAside(room: string, id: string, error: string): Promise<boolean> {
    const rows = this.rooms.get(room) ?? [];
    if (!rows.some((r) => r.id === id)) return false;
    this.rooms.set(room, rows.filter((r) => r.id !== id));
    this.setAsideRows.push({ room, id, error });
    return true;
  }
}
