/** Awareness updates as y-protocols encodes them, taken apart where the page must. */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

/**
 * An awareness update (y-protocols: a count, then client id, clock and state as JSON for each)
 * without its removals (a state of null); null when nothing is left.
 */
export function withoutRemovals(update: Uint8Array): Uint8Array | null {
  const decoder = decoding.createDecoder(update);
  const entries: Array<{ client: number; clock: number; state: string }> = [];
  for (let n = decoding.readVarUint(decoder); n > 0; n--) {
    const client = decoding.readVarUint(decoder);
    const clock = decoding.readVarUint(decoder);
    const state = decoding.readVarString(decoder);
    if (state !== 'null') entries.push({ client, clock, state });
  }
  if (entries.length === 0) return null;
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, entries.length);
  for (const e of entries) {
    encoding.writeVarUint(encoder, e.client);
    encoding.writeVarUint(encoder, e.clock);
    encoding.writeVarString(encoder, e.state);
  }
  return encoding.toUint8Array(encoder);
}
