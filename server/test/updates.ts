/** Yjs updates for tests. */
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { writePresenceEntries } from '@spanwise/shared/presence-entries';

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
  // origin: the honest writer's sixth character
  return { rows: [rows[0]!, waitingPoison({ client: honestId, clock: 5 }, poisonId), rows[1]!, rows[2]!], text: text.toString() };
}

/**
 * The poison of waitingPoisonLog: text of client `poisonId` inserted after `origin` and before a
 * character of its own that never exists. Held back until `origin` is there; then Yjs tries it
 * again inside the apply that brought `origin`, and that apply throws.
 */
export function waitingPoison(origin: { client: number; clock: number }, poisonId = 2_000): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1); // one client
  encoding.writeVarUint(e, 1); // one struct
  encoding.writeVarUint(e, poisonId);
  encoding.writeVarUint(e, 0); // its first clock
  encoding.writeUint8(e, 4 | 0x80 | 0x40); // string content, with origin and right origin
  encoding.writeVarUint(e, origin.client);
  encoding.writeVarUint(e, origin.clock);
  encoding.writeVarUint(e, poisonId);
  encoding.writeVarUint(e, 10); // right origin: its own, never written
  encoding.writeVarString(e, '!!');
  encoding.writeVarUint(e, 0); // no deletions
  return encoding.toUint8Array(e);
}

/** A presence (awareness) update written entry by entry (id, clock, state), as a peer may send any. */
export function presenceUpdate(entries: ReadonlyArray<readonly [id: number, clock: number, state: unknown]>): Uint8Array {
  return writePresenceEntries(entries.map(([id, clock, state]) => ({ id, clock, state: JSON.stringify(state) })));
}

/**
 * An update (698 bytes: a few annotation edits, one byte changed by a fuzzer in review) that
 * decodes and then makes Yjs' own transaction cleanup throw ("reading 'id'", in its delete-set
 * merge): the doc's cleanup list is never cleared, and the doc emits no 'update' again.
 */
export function cleanupPoison(): Uint8Array {
  return Buffer.from(
    '02100c0027010b616e6e6f746174696f6e7314317634683431326f3663353730713364366f32650128000c00046b696e' +
    '640177047370616e28000c00056c6162656c0177015828000c00057374617274017d0028000c0003656e64017d032800' +
    '0c000571756f746501770361626328000c000a6174747269627574657301760028000c0008656e746974794964017e28' +
    '000c0006617574686f72017d0228000c0009637265617465644174017b427a237f3099b00028000c0009757064617465' +
    '644174017b427a237f3099b000040101740168810c0b02840c0d026c6f080103617272037d01770178760101617d0107' +
    '01017803017018010021010b616e6e6f746174696f6e73143531356d356e316636613078356635793537367700000a27' +
    '010b616e6e6f746174696f6e73143273316732303473326933643678367832793630012800010b046b696e6401770473' +
    '70616e2800010b056c6162656c0177024c312800010b057374617274017d012800010b03656e64017d032800010b0571' +
    '756f746501770261622800010b0a617474726962757465730176002800010b08656e746974794964017e2800010b0661' +
    '7574686f72017d012800010b09637265617465644174017b427a237f3099b0002800010b09757064617465644174017b' +
    '427a237f3099b00027010b616e6e6f746174696f6e731436763163366f35733435346c3534316d326b33310128000116' +
    '046b696e640177047370616e28000116056c6162656c0177024c3228000116057374617274017d022800011603656e64' +
    '017d04280001160571756f74650177026162280001160a617474726962757465730176002800011608656e7469747949' +
    '64017e2800011606617574686f72017d012800011609637265617465644174017b427a237f3099b00028000116097570' +
    '64617465644174017b427a237f3099b000020c010c020101000b',
    'hex',
  );
}
