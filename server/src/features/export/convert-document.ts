/**
 * One document's part of a text export (JSON lines, CoNLL, W3C), as the export route streams it:
 * here on its own, so that the converter's worker (convert-worker.mjs) loads only this.
 */
import { conllBlock, jsonlRecord, w3cAnnotations, type ExportDocument, type ExportLayer } from '@spanwise/shared';

export type TextFormat = 'jsonl' | 'conll' | 'w3c';

export interface ConvertJob {
  format: TextFormat;
  doc: ExportDocument;
  layers: ExportLayer[];
  /** The document's IRI (W3C). */
  source: string;
}

/** Each layer's text (JSON lines, CoNLL), or each annotation as JSON text (W3C), in order. */
export function convertDocument({ format, doc, layers, source }: ConvertJob): string[] {
  switch (format) {
    case 'jsonl':
      return layers.map((layer) => jsonlRecord(doc, layer));
    case 'conll':
      return layers.map((layer) => conllBlock(doc, layer));
    case 'w3c':
      return layers.flatMap((layer) => w3cAnnotations(doc, layer, source).map((annotation) => JSON.stringify(annotation)));
  }
}
