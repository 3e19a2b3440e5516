/**
 * The entries of a presence (awareness) update as y-protocols writes them: a count, then each
 * client id with its clock and its state as JSON text. For reading a peer's update before it is
 * applied, and for writing one with some entries left out or merged.
 *
 * @example
 *   writePresenceEntries(readPresenceEntries(update).filter((e) => e.id !== 7))
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

export interface PresenceEntry {
  id: number;
  clock: number;
  /** The state as JSON text (`null` for a removal). */
  state: string;
}

/** Every entry, in order; throws on an update that does not read. */
export function readPresenceEntries(update: Uint8Array): PresenceEntry[] {
  const decoder = decoding.createDecoder(update);
  const entries: PresenceEntry[] = [];
  for (let n = decoding.readVarUint(decoder); n > 0; n--) {
    const id = decoding.readVarUint(decoder);
    const clock = decoding.readVarUint(decoder);
    entries.push({ id, clock, state: decoding.readVarString(decoder) });
  }
  return entries;
}

export function writePresenceEntries(entries: readonly PresenceEntry[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, entries.length);
  for (const { id, clock, state } of entries) {
    encoding.writeVarUint(encoder, id);
    encoding.writeVarUint(encoder, clock);
    encoding.writeVarString(encoder, state);
  }
  return encoding.toUint8Array(encoder);
}
