/**
 * Word tokens and sentences of a document's text, for token-level formats (CoNLL).
 *
 * A token is a run of letters, marks and digits, joined across an inner apostrophe, hyphen,
 * period or comma ("don't", "Fateh-110", "U.S", "1,000"), or any other single character that
 * is not a space to JavaScript or to Python (which reads these files). A token ends where a
 * user-perceived character (a grapheme cluster) ends: a family emoji joined by zero-width
 * joiners, a flag, a skin tone stay one token. Offsets are JavaScript string indexes (UTF-16),
 * like the layer's.
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

/** Python's split() and JavaScript's \s both take these as spaces: a token never holds one. */
const SPACE = /[\s\x1c-\x1f\x85]/u;
/**
 * What may join on to the character before it in a grapheme cluster: a mark (a variation
 * selector, a keycap among them), a zero-width joiner, a skin tone, the second of a flag's two
 * letters, a tag of a subdivision flag. (A Prepend character joins the one after it: such a pair
 * is left as two tokens.)
 */
const JOINS_ON = /^[\p{M}\u200d\p{Emoji_Modifier}\p{Regional_Indicator}\u{E0020}-\u{E007F}]/u;
/** (Made when first needed; a browser without Intl.Segmenter splits clusters as before.) */
let graphemes: Intl.Segmenter | null | undefined;

export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  const pattern = new RegExp(TOKEN.source, TOKEN.flags);
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    const end = clusterEnd(text, m.index, m.index + m[0].length);
    out.push({ text: text.slice(m.index, end), start: m.index, end });
    pattern.lastIndex = end;
  }
  return out;
}

/**
 * Where the grapheme cluster that holds text[end - 1] ends, short of any space; a token starts
 * at `start`. The text is segmented only when what follows the token can join on (JOINS_ON), and
 * only around the token (segmenting from the text's start for each token would take minutes on a
 * long document).
 */
function clusterEnd(text: string, start: number, end: number): number {
  if (end >= text.length || text.charCodeAt(end) < 0x80 || !JOINS_ON.test(text.slice(end, end + 2))) return end;
  graphemes ??= typeof Intl.Segmenter === 'function' ? new Intl.Segmenter('und', { granularity: 'grapheme' }) : null;
  if (!graphemes) return end;
  for (let window = 64; ; window *= 4) {
    const around = text.slice(start, end + window);
    let at = end;
    for (const { index, segment } of graphemes.segment(around)) {
      if (start + index + segment.length < end) continue;
      at = start + index + segment.length;
      break;
    }
    if (at < start + around.length || start + around.length >= text.length) {
      let cut = end;
      while (cut < at && !SPACE.test(text[cut]!)) cut++;
      return cut;
    }
    // (A cluster longer than the window: again, with a wider one.)
  }
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
