/**
 * The benchmark's clients: stock y-websocket providers (`ws` sockets, one Y.Doc each), all in
 * this process so one clock times every edit from sender to receivers.
 *
 * Every edit is one Yjs transaction holding the annotation change (`addSpan` or `relabel` from
 * @spanwise/shared) and a mark: key `<run>.<client>.<seq>` in the doc's `bench` map, whose value
 * is the sender's `performance.now()` at the edit. A receiver's observer computes now − mark.
 */
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as prng from 'lib0/prng';
import { WebsocketProvider } from 'y-websocket';
import { addSpan, annotationsMap, readAnnotation, relabel } from '@spanwise/shared';

/** Where clients connect: `ws://127.0.0.1:<port>/sync`, with a session cookie for our server. */
export interface Target {
  wsBase: string;
  cookie: string | null;
}

/** What edits are made of: the document's text, the project's span labels, the author id. */
export interface EditSource {
  text: string;
  labels: string[];
  author: number;
  /** The author's username: the name their presence carries, as the page's does. */
  authorName: string;
}

export interface ClientSpec {
  room: string;
  /** Clients on this room (this one included): each edit should reach peers − 1 others. */
  peers: number;
}

export const MARKS = 'bench';

/** What one room should hold once every edit is stored. */
interface RoomExpectation {
  /** Span id → the label its author set last. */
  spans: Map<string, string>;
  /** Mark key → sentAt, one per edit. */
  marks: Map<string, number>;
}

/** Everything the clients of one run count and time. */
export class Recorder {
  /**
   * Tells this run's marks apart from any an earlier run (or round) left in the same room on a
   * persistent database: a reused key would be a concurrent write to the same map entry.
   */
  readonly runTag = Math.random().toString(36).slice(2, 8);
  readonly #randoms = new Map<number, () => number>();

  /** `seed`: each client's edits and timing phase come from it, the same in every run. */
  constructor(readonly seed = 1) {}

  /** Client `index`'s numbers in [0, 1) for this run: from the seed, so each run is the same. */
  randomFor(index: number): () => number {
    let random = this.#randoms.get(index);
    if (!random) {
      const gen = prng.create(this.seed * 1_000_003 + index);
      random = () => prng.real53(gen);
      this.#randoms.set(index, random);
    }
    return random;
  }
  /** Edits sent before this instant (performance.now()) are warm-up: neither timed nor counted. */
  measureFrom = Number.POSITIVE_INFINITY;
  readonly latencies: number[] = [];
  /** When each timed edit was sent (parallel to `latencies`), for the per-second timeline. */
  readonly sentAts: number[] = [];
  sentMeasured = 0;
  expectedDeliveries = 0;
  /** Edits a lean client was sent again (not counted as deliveries, so they hide no loss). */
  duplicates = 0;
  socketErrors = 0;
  unexpectedCloses = 0;
  readonly closeCodes = new Map<number, number>();
  readonly rooms = new Map<string, RoomExpectation>();

  room(name: string): RoomExpectation {
    let r = this.rooms.get(name);
    if (!r) this.rooms.set(name, (r = { spans: new Map(), marks: new Map() }));
    return r;
  }

  /** Timed deliveries so far (one latency each). */
  get deliveries(): number {
    return this.latencies.length;
  }

  /** A timed edit (sent at `sentAt`) reached one more client at `now`. */
  delivered(now: number, sentAt: number): void {
    this.latencies.push(now - sentAt);
    this.sentAts.push(sentAt);
  }

  get missingDeliveries(): number {
    return Math.max(0, this.expectedDeliveries - this.deliveries);
  }

  /** Waits until every timed edit reached every peer, or nothing arrived for `quietMs`. */
  async drain(quietMs = 3_000, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = this.deliveries;
    let lastChange = Date.now();
    while (this.deliveries < this.expectedDeliveries && Date.now() < deadline) {
      await sleep(50);
      if (this.deliveries !== last) {
        last = this.deliveries;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > quietMs) {
        return;
      }
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The stock y-websocket client over `ws`, sending the session cookie on the upgrade. */
function providerFor(target: Target, room: string, doc: Y.Doc): WebsocketProvider {
  const cookie = target.cookie;
  class CookieWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: cookie ? { cookie } : {} });
    }
  }
  return new WebsocketProvider(target.wsBase, room, doc, {
    WebSocketPolyfill: CookieWebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 1_000,
  });
}

/** The spans a client made, with the label it set last. */
export type OwnSpans = Array<{ id: string; label: string }>;

/**
 * One edit in one transaction on `doc`: a new span (always the first time, then half the
 * time) or a new label on one of the client's own spans, plus the client's timing mark.
 * Records what the room should then hold and counts the edit.
 */
export function makeEdit(doc: Y.Doc, marks: Y.Map<number>, own: OwnSpans, index: number, seq: number, spec: ClientSpec, src: EditSource, rec: Recorder): number {
  const key = `${rec.runTag}.${index}.${seq}`;
  const random = rec.randomFor(index);
  const randomInt = (n: number) => Math.floor(random() * n);
  const expected = rec.room(spec.room);
  const label = src.labels[randomInt(src.labels.length)]!;
  const sentAt = performance.now();
  doc.transact(() => {
    if (own.length === 0 || random() < 0.5) {
      const length = 3 + randomInt(18);
      const start = randomInt(Math.max(1, src.text.length - length));
      const end = Math.min(src.text.length, start + length);
      const id = addSpan(doc, { label, start, end, quote: src.text.slice(start, end), author: src.author });
      own.push({ id, label });
      expected.spans.set(id, label);
    } else {
      const span = own[randomInt(own.length)]!;
      const others = src.labels.filter((l) => l !== span.label);
      span.label = others.length ? others[randomInt(others.length)]! : label;
      relabel(doc, span.id, span.label);
      expected.spans.set(span.id, span.label);
    }
    marks.set(key, sentAt);
  });
  expected.marks.set(key, sentAt);
  if (sentAt >= rec.measureFrom) {
    rec.sentMeasured++;
    rec.expectedDeliveries += spec.peers - 1;
  }
  return sentAt;
}

/** Calls `tick` every `periodMs`, starting at a random phase so clients do not fire in step. */
export class Pacer {
  #timer: NodeJS.Timeout | null = null;

  start(periodMs: number, tick: () => void, random: () => number): void {
    this.stop();
    this.#timer = setTimeout(() => {
      tick();
      this.#timer = setInterval(tick, periodMs);
    }, random() * periodMs);
  }

  stop(): void {
    if (this.#timer) {
      clearTimeout(this.#timer); // clears an interval too
      this.#timer = null;
    }
  }
}

/** What the bench asks of a client, stock provider or lean. */
export interface FleetClient {
  readonly synced: Promise<void>;
  readonly isSynced: boolean;
  startSending(periodMs: number, src: EditSource): void;
  stopSending(): void;
  destroy(): void;
}

export class BenchClient implements FleetClient {
  readonly doc = new Y.Doc();
  readonly provider: WebsocketProvider;
  readonly synced: Promise<void>;
  readonly #marks: Y.Map<number>;
  readonly #own: OwnSpans = [];
  #seq = 0;
  #closing = false;
  readonly #pacer = new Pacer();

  constructor(
    readonly index: number,
    readonly spec: ClientSpec,
    target: Target,
    private readonly rec: Recorder,
  ) {
    this.#marks = this.doc.getMap<number>(MARKS);
    this.#marks.observe((event) => {
      if (event.transaction.local) return; // our own edit
      const now = performance.now();
      for (const [key, change] of event.changes.keys) {
        if (change.action === 'delete') continue;
        const sentAt = this.#marks.get(key);
        if (typeof sentAt === 'number' && sentAt >= rec.measureFrom && key.startsWith(`${rec.runTag}.`)) rec.delivered(now, sentAt);
      }
    });
    this.provider = providerFor(target, spec.room, this.doc);
    this.provider.on('connection-error', () => {
      if (!this.#closing) rec.socketErrors++;
    });
    this.provider.on('connection-close', (event) => {
      if (this.#closing) return;
      rec.unexpectedCloses++;
      const code = event?.code ?? -1;
      rec.closeCodes.set(code, (rec.closeCodes.get(code) ?? 0) + 1);
    });
    this.synced = new Promise<void>((resolve) => {
      if (this.provider.synced) resolve();
      this.provider.on('sync', (s: boolean) => s && resolve());
    });
  }

  get isSynced(): boolean {
    return this.provider.synced;
  }

  /** One edit: a new span (always first, then half the time) or a new label on one of ours. */
  edit(src: EditSource): void {
    makeEdit(this.doc, this.#marks, this.#own, this.index, this.#seq++, this.spec, src, this.rec);
  }

  startSending(periodMs: number, src: EditSource): void {
    this.#pacer.start(periodMs, () => this.edit(src), this.rec.randomFor(this.index));
  }

  stopSending(): void {
    this.#pacer.stop();
  }

  destroy(): void {
    this.stopSending();
    this.#closing = true;
    this.provider.destroy();
    this.doc.destroy();
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${typeof what === 'string' ? what : what()}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Connects clients `batch` at a time, each batch synced before the next starts. */
export async function connectFleet(
  specs: ClientSpec[],
  rec: Recorder,
  create: (index: number, spec: ClientSpec) => FleetClient,
  batch = 50,
): Promise<FleetClient[]> {
  const clients: FleetClient[] = [];
  try {
    for (let i = 0; i < specs.length; i += batch) {
      const group = specs.slice(i, i + batch).map((spec, j) => create(i + j, spec));
      clients.push(...group);
      const what = () =>
        `clients ${i}..${i + group.length - 1} to sync (${group.filter((c) => !c.isSynced).length} not synced; ` +
        `so far ${rec.socketErrors} socket errors, ${rec.unexpectedCloses} closes, codes ${JSON.stringify(Object.fromEntries(rec.closeCodes))})`;
      await withTimeout(Promise.all(group.map((c) => c.synced)), 30_000, what);
      await sleep(20);
    }
  } catch (err) {
    for (const c of clients) c.destroy();
    throw err;
  }
  return clients;
}

export interface StoredCheck {
  spans: { stored: number; total: number };
  /** Spans whose label is the one their author set last. */
  labels: { current: number; total: number };
  /** Edits (span or relabel) whose mark is present. */
  edits: { stored: number; total: number };
  /** Socket errors and unexpected closes of the fresh clients. */
  errors: number;
  ok: boolean;
}

/**
 * Opens each room with one fresh client and counts what it holds against what was sent. (The
 * bench asks ours once it has been killed and started again on its database: see sync.ts.)
 */
export async function verifyStored(target: Target, rec: Recorder, batch = 50): Promise<StoredCheck> {
  const result: StoredCheck = {
    spans: { stored: 0, total: 0 },
    labels: { current: 0, total: 0 },
    edits: { stored: 0, total: 0 },
    errors: 0,
    ok: false,
  };
  const rooms = [...rec.rooms.entries()];
  const probe = new Recorder();
  for (let i = 0; i < rooms.length; i += batch) {
    const group = rooms.slice(i, i + batch).map(([room, expected]) => ({ client: new BenchClient(-1, { room, peers: 1 }, target, probe), expected }));
    try {
      await withTimeout(Promise.all(group.map((g) => g.client.synced)), 30_000, 'fresh clients to sync');
      for (const { client, expected } of group) {
        const annotations = annotationsMap(client.doc);
        const marks = client.doc.getMap<number>(MARKS);
        for (const [id, label] of expected.spans) {
          const m = annotations.get(id);
          const a = m ? readAnnotation(id, m) : null;
          if (a?.kind === 'span') result.spans.stored++;
          if (a?.label === label) result.labels.current++;
        }
        for (const [key, sentAt] of expected.marks) if (marks.get(key) === sentAt) result.edits.stored++;
        result.spans.total += expected.spans.size;
        result.labels.total += expected.spans.size;
        result.edits.total += expected.marks.size;
      }
    } finally {
      for (const g of group) g.client.destroy();
    }
  }
  result.errors = probe.socketErrors + probe.unexpectedCloses;
  result.ok =
    result.errors === 0 &&
    result.spans.stored === result.spans.total &&
    result.labels.current === result.labels.total &&
    result.edits.stored === result.edits.total;
  return result;
}
