/**
 * `GET /api/projects/:id/export?format=jsonl|conll|brat|w3c&layer=gold|all` streams a project's
 * dataset, one document at a time, offsets in code points (shared/src/export.ts has the
 * formats). brat comes as a zip of `<layer>/<document id>.txt` and `.ann` files with an
 * `annotation.conf` (last: the project's schema, and any name the files use besides); W3C as one JSON-LD AnnotationCollection.
 *
 * Who may export what follows decideRoomAccess, the rule for opening rooms over sync: the gold
 * layer, whoever may open it (curators, owners, viewers, and everyone in an `open` project);
 * every layer, whoever may open every member's layer (curators, owners, viewers).
 */
import type { ServerResponse } from 'node:http';
import { Hono } from 'hono';
import { z } from 'zod';
import { AsyncZipDeflate, strToU8, Zip, ZipDeflate } from 'fflate';
import {
  bratAnn,
  bratConf,
  bratText,
  BratNames,
  decideRoomAccess,
  EXPORT_FORMATS,
  EXPORT_LAYERS,
  labelSchemaSchema,
  LABEL_NAME,
  withLabels,
  type AccessFacts,
  type ExportDocument,
  type ExportFormat,
  type ExportLayer,
  type LabelSchema,
  type Room,
} from '@spanwise/shared';
import { withoutQueueLimits } from '../../db/pglite-dialect.ts';
import { AppError, forbidden, idParam, queryParams } from '../../http/errors.ts';
import { requireUser, type AppEnv } from '../../http/session.ts';
import type { Logger } from '../../log.ts';
import type { AccessService } from '../access/access.service.ts';
import type { ProjectsRepository } from '../projects/projects.repository.ts';
import type { ExportService } from './export.service.ts';
import { convert, INLINE_MAX_CHARS, type TextFormat } from './convert.ts';

const exportQuery = z.object({
  format: z.enum(EXPORT_FORMATS, { message: `must be one of ${EXPORT_FORMATS.join(', ')}` }),
  layer: z.enum(EXPORT_LAYERS, { message: `must be one of ${EXPORT_LAYERS.join(', ')}` }).default('gold'),
  /** Only these span labels (comma-separated), and the relations between such spans. */
  labels: z
    .string()
    .refine((list) => list.split(',').every((name) => LABEL_NAME.test(name)), { message: 'must be span labels separated by commas' })
    .optional(),
});

/** Access is decided for one stand-in document: every document of a project has the same rules. */
const ANY_DOCUMENT = 1;

const MEDIA: Record<ExportFormat, { type: string; extension: string }> = {
  jsonl: { type: 'application/x-ndjson; charset=utf-8', extension: 'jsonl' },
  conll: { type: 'text/plain; charset=utf-8', extension: 'conll' },
  brat: { type: 'application/zip', extension: 'zip' },
  w3c: { type: 'application/ld+json; charset=utf-8', extension: 'jsonld' },
};

type Documents = AsyncIterable<{ doc: ExportDocument; layers: ExportLayer[] }>;

/** Each layer with only the spans of these labels (withLabels). */
async function* onlyLabels(documents: Documents, labels: ReadonlySet<string>): Documents {
  for await (const { doc, layers } of documents) yield { doc, layers: layers.map((layer) => withLabels(layer, labels)) };
}

/** One piece of text per document and layer (JSON lines, CoNLL). */
async function* perLayer(documents: Documents, format: TextFormat) {
  for await (const { doc, layers } of documents) yield* convert({ format, doc, layers, source: '' });
}

async function* w3c(documents: Documents, collection: { id: string; label: string }, documentIri: (id: number) => string) {
  yield JSON.stringify({ '@context': 'http://www.w3.org/ns/anno.jsonld', id: collection.id, type: 'AnnotationCollection', label: collection.label }).slice(0, -1);
  // (One page, embedded: the model asks for its IRI all the same.)
  yield `,"first":{"id":${JSON.stringify(`${collection.id}#page1`)},"type":"AnnotationPage","items":[`;
  let total = 0;
  for await (const { doc, layers } of documents) {
    for await (const annotation of convert({ format: 'w3c', doc, layers, source: documentIri(doc.id) })) {
      yield (total === 0 ? '' : ',') + annotation;
      total++;
    }
  }
  // (The count is known only once all went: the collection's last member.)
  yield `],"startIndex":0},"total":${total}}\n`;
}

/** Without Zip64 (fflate has none), a zip holds at most this many files (a 16-bit count) and 4 GiB. */
const ZIP_MAX_FILES = 65_535;
const ZIP_MAX_BYTES = 2 ** 32 - 1;

async function* bratZip(documents: Documents, schema: LabelSchema) {
  const ready: Uint8Array[] = [];
  let failure: Error | null = null;
  let entries = 0;
  let bytes = 0;
  const zip = new Zip((err, chunk) => {
    if (err) failure = err;
    else ready.push(chunk);
  });
  /** Adds a file; resolves once it is compressed (a long text on a worker thread of fflate's). */
  const add = async (name: string, text: string) => {
    // Past either limit the archive would be silently corrupt: fail the transfer instead.
    if (++entries > ZIP_MAX_FILES) throw new Error(`a brat export holds at most ${ZIP_MAX_FILES} files`);
    if (text.length <= INLINE_MAX_CHARS) {
      const file = new ZipDeflate(name, { level: 6 });
      zip.add(file);
      file.push(strToU8(text), true);
      return;
    }
    // (Deflating 5,000,000 characters takes from 0.1 to 0.6 s.) One at a time: awaited.
    const file = new AsyncZipDeflate(name, { level: 6 });
    zip.add(file);
    const compressed = new Promise<void>((resolve, reject) => {
      const passOn = file.ondata; // (the zip's, set by add)
      file.ondata = (err, data, final) => {
        passOn(err, data, final);
        if (err) reject(err);
        else if (final) resolve();
      };
    });
    file.push(strToU8(text), true);
    await compressed;
  };
  function* drain() {
    if (failure) throw failure;
    for (const chunk of ready.splice(0)) {
      bytes += chunk.byteLength;
      if (bytes > ZIP_MAX_BYTES) throw new Error('a brat export is limited to 4 GiB');
      yield chunk;
    }
  }
  const names = new BratNames(); // (one form for each name in every file of the zip)
  // The schema's names first, so that each has its form whatever the layers hold; the conf
  // itself last, with every name the .ann files use (a label since taken out of the schema too).
  bratConf(schema, names);
  for await (const { doc, layers } of documents) {
    for (const layer of layers) {
      const folder = layer.name.replace(':', '-');
      await add(`${folder}/${doc.id}.txt`, bratText(doc.text));
      await add(`${folder}/${doc.id}.ann`, bratAnn(doc, layer, names));
    }
    yield* drain();
  }
  await add('annotation.conf', bratConf(schema, names));
  zip.end();
  yield* drain();
}

/**
 * A byte stream that pulls from `chunks` only as fast as the client reads. A failure part-way
 * errors the stream, after `breakOff` (which closes the connection), so the client sees a broken
 * transfer rather than a short dataset. `onEnd` once it is over, however it ended. `producing`
 * says when a read of `chunks` begins (true) and ends (false): meanwhile the server, not the
 * client, is what the download waits for.
 */
export function readable(
  chunks: AsyncIterable<string | Uint8Array>,
  onError: (err: unknown) => void,
  { onEnd = () => {}, breakOff = () => {}, producing = () => {} }: { onEnd?: () => void; breakOff?: () => void; producing?: (busy: boolean) => void } = {},
): ReadableStream<Uint8Array> {
  const it = chunks[Symbol.asyncIterator]();
  const encoder = new TextEncoder();
  /** The client went away: a read in flight then has nowhere to go, and that is no failure. */
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        // Once the answer has begun, its reads wait their turn however long: refused half-way
        // (503 database_busy is for a request that has not begun), the download would be cut.
        producing(true);
        const { value, done } = await withoutQueueLimits(() => it.next()).finally(() => producing(false));
        if (cancelled) return;
        if (done) {
          controller.close();
          onEnd();
        } else controller.enqueue(typeof value === 'string' ? encoder.encode(value) : value);
      } catch (err) {
        if (cancelled) return;
        onError(err);
        // The connection first: the server's own handling of an errored body may write its error
        // and end the answer cleanly, which would read as a complete (short) download.
        breakOff();
        controller.error(err);
        onEnd();
      }
    },
    async cancel() {
      cancelled = true;
      onEnd();
      await it.return?.(undefined);
    },
  });
}

/** `items`, each once `allowed` has not thrown (asked again before each). */
async function* whileAllowed<T>(items: AsyncIterable<T>, allowed: () => Promise<unknown>): AsyncGenerator<T> {
  for await (const item of items) {
    await allowed();
    yield item;
  }
}

/** How many exports may be under way at once: each user's, and the server's. */
export const EXPORTS_PER_USER = 2;
export const EXPORTS_AT_ONCE = 8;

/**
 * Exports under way. Each holds a document or two in memory however slowly its client reads,
 * and its reads wait their turn for the database however long (see readable): without a bound,
 * a few hundred downloads never read would hold gigabytes.
 */
class ExportSlots {
  readonly #byUser = new Map<number, number>();
  #total = 0;

  /** A slot for `userId`, with what gives it back (once, however often called); or why not. */
  take(userId: number): { release: () => void } | 'user' | 'server' {
    const mine = this.#byUser.get(userId) ?? 0;
    if (mine >= EXPORTS_PER_USER) return 'user';
    if (this.#total >= EXPORTS_AT_ONCE) return 'server';
    this.#byUser.set(userId, mine + 1);
    this.#total++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#total--;
        const left = this.#byUser.get(userId)! - 1;
        if (left === 0) this.#byUser.delete(userId);
        else this.#byUser.set(userId, left);
      },
    };
  }
}

export function exportRoutes(
  access: AccessService,
  projects: ProjectsRepository,
  exports: ExportService,
  log: Logger,
  options: {
    trustProxy: boolean;
    /** The site's address (PUBLIC_URL): the W3C ids' origin, whatever address the export was asked at. */
    publicUrl?: string | null;
    /** How long a download may move no byte before it is cut off (EXPORT_STALL_MS). */
    stallMs: number;
  },
) {
  const { stallMs } = options;
  const slots = new ExportSlots();
  return new Hono<AppEnv>().get('/projects/:id/export', async (c) => {
    const user = requireUser(c.get('user'));
    const id = idParam(c.req.param('id'), 'project');
    const { format, layer, labels } = queryParams(c, exportQuery);
    /**
     * The same rules as opening the rooms over sync, asked of any one document of the project:
     * before the export, and again, at most once a second, before a document (a member removed,
     * or whose role changed, mid-download gets no more of it: the download breaks off).
     */
    const allowed = async () => {
      const { project } = await access.projectRole(user.id, id);
      const allMembers = await projects.members(id);
      const roles = new Map(allMembers.map((m) => [m.id, m.role]));
      const facts: AccessFacts = { projectOfDocument: new Map([[ANY_DOCUMENT, id]]), modes: new Map([[id, project.mode]]), role: (_p, u) => roles.get(u) };
      const mayOpen = (room: Room) => decideRoomAccess(room, user.id, facts).ok;
      if (!mayOpen({ kind: 'gold', documentId: ANY_DOCUMENT })) throw forbidden('you may not read this project’s gold layer');
      if (layer === 'all' && !allMembers.every((m) => mayOpen({ kind: 'layer', documentId: ANY_DOCUMENT, userId: m.id }))) {
        throw forbidden('only those who may read every layer (curators, owners, viewers) may export every layer');
      }
      return { project, allMembers };
    };
    const { project, allMembers } = await allowed();
    const members = layer === 'all' ? allMembers.map((m) => ({ id: m.id, username: m.username })) : [];
    const fields = { projectId: id, userId: user.id, format, layer, ...(labels ? { labels } : {}) };
    const slot = slots.take(user.id);
    if (slot === 'user' || slot === 'server') {
      c.header('Retry-After', '5');
      throw slot === 'user'
        ? new AppError(429, 'too_many_exports', `at most ${EXPORTS_PER_USER} of your exports at once: try again when one has finished`)
        : new AppError(503, 'exports_busy', 'too many exports under way: try again in a moment');
    }
    if (format === 'brat') {
      // A .txt and an .ann per document's gold layer and per member layer that holds anything
      // (empty ones are left out of the zip), and annotation.conf.
      try {
        const documentCount = await exports.documentCount(id);
        // (Past the limit on documents alone, the member layers need not be counted.)
        const files = 1 + 2 * (documentCount + (1 + 2 * documentCount > ZIP_MAX_FILES ? 0 : await exports.layersWithRows(id, members)));
        if (files > ZIP_MAX_FILES) {
          throw new AppError(413, 'export_too_large', `a brat export holds at most ${ZIP_MAX_FILES} files; this one could need ${files}: export the gold layer, or another format`);
        }
      } catch (err) {
        slot.release();
        throw err;
      }
    }
    const headers = {
      'Content-Type': MEDIA[format].type,
      'Content-Disposition': `attachment; filename="spanwise-project-${id}-${layer}.${MEDIA[format].extension}"`,
    };
    // Given back when the download ends, fails or is cancelled, or its connection closes. A HEAD
    // (whose body Hono drops unread) and a client gone already get nothing started (a stream is
    // read once as soon as it is made).
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (c.req.method === 'HEAD' || outgoing?.closed || c.req.raw.signal.aborted) {
      slot.release();
      return c.body(null, 200, headers);
    }
    if (outgoing) {
      outgoing.once('close', slot.release);
      // A client that stops reading would keep its slot as long as its connection lives (TCP
      // keeps a peer that acknowledges but never reads alive for good): a download that moves
      // no byte for stallMs is cut off — counted only while the server has something to send,
      // not while a read of the database is under way (see `producing` below). (The socket's
      // timer; Node puts it back once the answer is over.)
      outgoing.setTimeout(stallMs, () => {
        log.info('export_stalled', { ...fields, stallMs });
        outgoing.destroy();
      });
    } else c.req.raw.signal.addEventListener('abort', slot.release, { once: true });
    try {
      // Access asked again while it runs: at most once a second, before a document.
      let askedAt = performance.now();
      const all = whileAllowed(exports.documents(id, layer, members), async () => {
        if (performance.now() - askedAt < 1_000) return;
        await allowed();
        askedAt = performance.now();
      });
      const documents = labels ? onlyLabels(all, new Set(labels.split(','))) : all;
      // The W3C ids are addresses: the site's own (PUBLIC_URL), so that two exports name an
      // annotation alike; else the one asked at (behind a proxy that ends TLS, its
      // X-Forwarded-Proto is the scheme).
      const url = new URL(c.req.url);
      const forwardedProto = options.trustProxy ? c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() : undefined;
      if (forwardedProto === 'https' || forwardedProto === 'http') url.protocol = `${forwardedProto}:`;
      const origin = options.publicUrl ?? url.origin;
      const chunks =
        format === 'jsonl'
          ? perLayer(documents, 'jsonl')
          : format === 'conll'
            ? perLayer(documents, 'conll')
            : format === 'brat'
              ? bratZip(documents, labelSchemaSchema.parse(project.schema))
              : w3c(documents, { id: `${origin}/api/projects/${id}/export?format=w3c&layer=${layer}${labels ? `&labels=${labels}` : ''}`, label: project.name }, (docId) => `${origin}/projects/${id}/documents/${docId}`);
      log.info('export_started', fields);
      const body = readable(
        chunks,
        (err) =>
          // Access withdrawn while it ran is no failure of the export's.
          err instanceof AppError
            ? log.info('export_refused', { ...fields, code: err.code })
            : log.error('export_failed', { ...fields, error: String(err) }),
        {
          onEnd: slot.release,
          breakOff: () => outgoing?.destroy(),
          producing: (busy) => {
            if (!outgoing || outgoing.destroyed) return;
            outgoing.setTimeout(busy ? 0 : stallMs);
          },
        },
      );
      return c.body(body, 200, headers);
    } catch (err) {
      slot.release();
      throw err;
    }
  });
}
