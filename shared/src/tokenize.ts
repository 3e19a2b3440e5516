/**
 * Word tokens and sentences of a document's text, for token-level formats (CoNLL).
 *
 * A token is a run of letters, marks and digits, joined across an inner apostrophe, hyphen,
 * period or comma ("don't", "Fateh-110", "U.S", "1,000"), or any other single character that
 * is not a space to JavaScript or to Python (which reads these files). Offsets are JavaScript string indexes (UTF-16), like the layer's.
 *
 * @example
 *   tokenize('Iran denied it.') // [{ text: 'Iran', start: 0, end: 4 }, …, { text: '.', start: 14, end: 15 }]
 *   sentences('One. Two')       // [[One, .], [Two]]
 */
export interface Token {
  text: string;
  start: number;
  end: number;
}

/** Python's str.split() also splits at \x1c-\x1f and \x85, which JavaScript's \S takes in. */
const TOKEN = /[\p{L}\p{M}\p{N}]+(?:[’'.,-][\p{L}\p{M}\p{N}]+)*|[^\s\x1c-\x1f\x85]/gu;
const SENTENCE_END = new Set(['.', '!', '?', '…']);

export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  for (const m of text.matchAll(TOKEN)) out.push({ text: m[0], start: m.index, end: m.index + m[0].length });
  return out;
}

/** Tokens grouped into sentences: a sentence ends after `.`, `!`, `?` or `…`, and at a line break. */
export function sentences(text: string): Token[][] {
  const out: Token[][] = [];
  let current: Token[] = [];
  let previousEnd = 0;
  for (const token of tokenize(text)) {
    if (current.length > 0 && text.slice(previousEnd, token.start).includes('\n')) {
      out.push(current);
      current = [];
    }
    current.push(token);
    previousEnd = token.end;
    if (SENTENCE_END.has(token.text)) {
      out.push(current);
      current = [];
    }
  }
  if (current.length > 0) out.push(current);
  return out;
}
