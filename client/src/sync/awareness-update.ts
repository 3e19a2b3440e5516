/**
 * Awareness updates as y-protocols encodes them (a count, then client id, clock and state as
 * JSON for each), taken apart where the page must.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

export interface AwarenessEntry {
  client: number;
  clock: number;
  /** The state as JSON: 'null' for a removal. */
  state: string;
}

export function readEntries(update: Uint8Array): AwarenessEntry[] {
  const decoder = decoding.createDecoder(update);
  const entries: AwarenessEntry[] = [];
  for (let n = decoding.readVarUint(decoder); n > 0; n--) {
    const client = decoding.readVarUint(decoder);
    const clock = decoding.readVarUint(decoder);
    entries.push({ client, clock, state: decoding.readVarString(decoder) });
  }
  return entries;
}

/** The update without its removals of the clients `drop` names; null when nothing is left. */
export function withoutRemovals(update: Uint8Array, drop: (client: number) => boolean): Uint8Array | null {
  const entries = readEntries(update);
  const kept = entries.filter((e) => e.state !== 'null' || !drop(e.client));
  if (kept.length === entries.length) return update;
  if (kept.length === 0) return null;
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, kept.length);
  for (const e of kept) {
    encoding.writeVarUint(encoder, e.client);
    encoding.writeVarUint(encoder, e.clock);
    encoding.writeVarString(encoder, e.state);
  }
  return encoding.toUint8Array(encoder);
}
