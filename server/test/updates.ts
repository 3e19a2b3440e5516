/** Yjs updates for tests. */
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { writePresenceEntries } from '../src/sync/presence-entries.ts';

/**
 * The first one-byte change of `update` that still decodes but throws when applied (onto a doc
 * holding `onto`, for an update that builds on earlier ones).
 */
export function findPoison(update: Uint8Array, onto?: Uint8Array): Uint8Array {
  for (let i = 0; i < update.length; i++) {
    for (let v = 0; v < 256; v++) {
      if (v === update[i]) continue;
      const changed = Uint8Array.from(update);
      changed[i] = v;
      try {
        Y.decodeUpdate(changed);
      } catch {
        continue;
      }
      const doc = new Y.Doc();
      if (onto) Y.applyUpdate(doc, onto);
      try {
        Y.applyUpdate(doc, changed);
      } catch {
        return changed;
      }
    }
  }
  throw new Error('no one-byte change of this update decodes and then fails to apply');
}

/**
 * A log in which a sound row is where an unsound one fails: `honest` writes "hello", then
 * " world", then " again" (three rows); `poison`, stored between the first two, inserts text
 * after the honest writer's next character (not there yet: Yjs holds it back) and before a
 * character of its own that never exists. It decodes, and is held without complaint; when
 * " world" arrives Yjs tries it again inside that row's apply, and that apply throws.
 */
export function waitingPoisonLog(): { rows: Uint8Array[]; text: string } {
  const honestId = 1_000;
  const poisonId = 2_000;
  const honest = new Y.Doc();
  honest.clientID = honestId;
  const text = honest.getText('t');
  const rows: Uint8Array[] = [];
  honest.on('update', (u: Uint8Array) => rows.push(u));
  text.insert(0, 'hello');
  text.insert(5, ' world');
  text.insert(11, ' again');
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1); // one client
  encoding.writeVarUint(e, 1); // one struct
  encoding.writeVarUint(e, poisonId);
  encoding.writeVarUint(e, 0); // its first clock
  encoding.writeUint8(e, 4 | 0x80 | 0x40); // string content, with origin and right origin
  encoding.writeVarUint(e, honestId);
  encoding.writeVarUint(e, 5); // origin: the honest writer's sixth character
  encoding.writeVarUint(e, poisonId);
  encoding.writeVarUint(e, 10); // right origin: its own, never written
  encoding.writeVarString(e, '!!');
  encoding.writeVarUint(e, 0); // no deletions
  return { rows: [rows[0]!, encoding.toUint8Array(e), rows[1]!, rows[2]!], text: text.toString() };
}

/** A presence (awareness) update written entry by entry (id, clock, state), as a peer may send any. */
export function presenceUpdate(entries: ReadonlyArray<readonly [id: number, clock: number, state: unknown]>): Uint8Array {
  return writePresenceEntries(entries.map(([id, clock, state]) => ({ id, clock, state: JSON.stringify(state) })));
}
