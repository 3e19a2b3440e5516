/**
 * A lean y-websocket peer for the capacity bench: one `ws` socket speaking the y-websocket
 * protocol (sync step 1/2, updates, awareness renewed every 15 s as the stock provider does),
 * whose edits are real Yjs transactions on its own Y.Doc, the same edits the stock-provider
 * clients make.
 *
 * What it leaves out is the receiving side's work: it does not apply what others send. It
 * reads each incoming update's clock ranges (`Y.parseUpdateMeta`) and looks up, in the run's
 * ledger, when each edit those ranges hold was sent. A thousand stock providers in one process
 * spend most of the load generator's CPU applying and observing everyone's edits, and that
 * process's queueing then dominates the tail whatever server it talks to. A client's own edits
 * only ever refer to its own items, so its updates stay valid without the others'.
 */
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { MessageKind } from '@spanwise/shared';
import { makeEdit, MARKS, Pacer, type ClientSpec, type EditSource, type FleetClient, type OwnSpans, type Recorder, type Target } from './load.ts';

/** The stock provider renews its awareness state this often (y-protocols' outdatedTimeout / 2). */
const AWARENESS_RENEW_MS = 15_000;

/** When each lean client's edits were sent, by Yjs client id and the clock each edit starts at. */
export class EditLedger {
  readonly #byClient = new Map<number, Map<number, { end: number; sentAt: number }>>();

  record(client: number, start: number, end: number, sentAt: number): void {
    let edits = this.#byClient.get(client);
    if (!edits) this.#byClient.set(client, (edits = new Map()));
    edits.set(start, { end, sentAt });
  }

  /**
   * Calls `found` with the send time of every whole edit the update's clock ranges hold,
   * except the receiver's own (a server may echo a batch back to its senders), and `again`
   * for an edit the receiver had already been sent: `seen` is its own record, per sender, of
   * how far it has received (a server sends each client's edits in order).
   */
  sentAtsIn(update: Uint8Array, receiver: number, seen: Map<number, number>, found: (sentAt: number) => void, again: () => void): void {
    const { from, to } = Y.parseUpdateMeta(update);
    for (const [client, end] of to) {
      if (client === receiver) continue;
      const edits = this.#byClient.get(client);
      if (!edits) continue;
      let clock = from.get(client) ?? 0;
      while (clock < end) {
        const edit = edits.get(clock);
        // Only whole edits count. (An update's clock range per client is read as gapless: true
        // of what a server that integrates updates before sending them on can send.)
        if (!edit || edit.end > end) break;
        if (edit.end <= (seen.get(client) ?? 0)) {
          again();
        } else {
          seen.set(client, edit.end);
          found(edit.sentAt);
        }
        clock = edit.end;
      }
    }
  }
}

function message(kind: number, write: (e: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, kind);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

export class LeanClient implements FleetClient {
  readonly doc = new Y.Doc();
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  readonly ws: WebSocket;
  readonly synced: Promise<void>;
  #isSynced = false;
  readonly #marks: Y.Map<number>;
  readonly #own: OwnSpans = [];
  /** Per sending client, the clock up to which its edits have reached this one. */
  readonly #seen = new Map<number, number>();
  #seq = 0;
  #closing = false;
  readonly #pacer = new Pacer();
  #renew: NodeJS.Timeout | null = null;

  constructor(
    readonly index: number,
    readonly spec: ClientSpec,
    target: Target,
    private readonly rec: Recorder,
    private readonly ledger: EditLedger,
    /** Before each edit, send presence with a text selection, as the page does when its user selects the text to label. */
    private readonly presence = false,
  ) {
    this.#marks = this.doc.getMap<number>(MARKS);
    // The awareness module renews on its own timer; this client sends its renewals itself.
    clearInterval((this.awareness as unknown as { _checkInterval: NodeJS.Timeout })._checkInterval);
    this.awareness.setLocalState({ user: { name: `bench ${index}` } });
    this.doc.on('update', (update: Uint8Array) => this.#send(message(MessageKind.sync, (e) => syncProtocol.writeUpdate(e, update))));

    this.ws = new WebSocket(`${target.wsBase}/${encodeURIComponent(spec.room)}`, {
      headers: target.cookie ? { cookie: target.cookie } : {},
    });
    this.ws.binaryType = 'nodebuffer';
    let resolveSynced!: () => void;
    this.synced = new Promise<void>((resolve) => (resolveSynced = resolve));
    this.ws.on('open', () => {
      this.#send(message(MessageKind.sync, (e) => syncProtocol.writeSyncStep1(e, this.doc)));
      this.#sendAwareness();
      this.#renew = setInterval(() => this.#sendAwareness(), AWARENESS_RENEW_MS);
    });
    this.ws.on('message', (data: Buffer) => {
      const decoder = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (decoding.readVarUint(decoder) !== MessageKind.sync) return; // awareness and the rest: not timed
      const type = decoding.readVarUint(decoder);
      const payload = decoding.readVarUint8Array(decoder);
      if (type === syncProtocol.messageYjsSyncStep1) {
        this.#send(message(MessageKind.sync, (e) => syncProtocol.writeSyncStep2(e, this.doc, payload)));
      } else if (type === syncProtocol.messageYjsSyncStep2) {
        this.#isSynced = true;
        resolveSynced();
      } else if (type === syncProtocol.messageYjsUpdate) {
        const now = performance.now();
        this.ledger.sentAtsIn(
          payload,
          this.doc.clientID,
          this.#seen,
          (sentAt) => {
            if (sentAt >= rec.measureFrom) rec.delivered(now, sentAt);
          },
          () => rec.duplicates++,
        );
      }
    });
    this.ws.on('error', () => {
      if (!this.#closing) rec.socketErrors++;
    });
    this.ws.on('close', (code: number) => {
      this.#stopTimers();
      if (this.#closing) return;
      rec.unexpectedCloses++;
      rec.closeCodes.set(code, (rec.closeCodes.get(code) ?? 0) + 1);
    });
  }

  get isSynced(): boolean {
    return this.#isSynced;
  }

  #send(data: Uint8Array): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  #sendAwareness(): void {
    this.awareness.setLocalState(this.awareness.getLocalState()); // bumps the clock, as a renewal does
    const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, [this.doc.clientID]);
    this.#send(message(MessageKind.awareness, (e) => encoding.writeVarUint8Array(e, update)));
  }

  edit(src: EditSource): void {
    if (this.presence) {
      // The page's presence state (client/src/sync/presence.ts), its selection moved.
      const random = this.rec.randomFor(this.index);
      const from = Math.floor(random() * Math.max(1, src.text.length - 20));
      this.awareness.setLocalState({
        user: { id: src.author, name: src.authorName, color: '#1f77b4' },
        selection: { start: from, end: from + 3 + Math.floor(random() * 18) },
      });
      this.#sendAwareness();
    }
    const start = Y.getState(this.doc.store, this.doc.clientID);
    const sentAt = makeEdit(this.doc, this.#marks, this.#own, this.index, this.#seq++, this.spec, src, this.rec);
    this.ledger.record(this.doc.clientID, start, Y.getState(this.doc.store, this.doc.clientID), sentAt);
  }

  startSending(periodMs: number, src: EditSource): void {
    this.#pacer.start(periodMs, () => this.edit(src), this.rec.randomFor(this.index));
  }

  stopSending(): void {
    this.#pacer.stop();
  }

  #stopTimers(): void {
    this.stopSending();
    if (this.#renew) clearInterval(this.#renew);
    this.#renew = null;
  }

  destroy(): void {
    this.#closing = true;
    this.#stopTimers();
    this.ws.close();
    this.awareness.destroy();
    this.doc.destroy();
  }
}
