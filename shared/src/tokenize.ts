/**
 * Word tokens and sentences of a document's text, for token-level formats (CoNLL).
 *
 * A token is a run of letters, marks and digits, joined across an inner apostrophe, hyphen,
 * period or comma ("don't", "Fateh-110", "U.S", "1,000"), a run of sentence-ending punctuation
 * ("...", "?!"), or any other single character that is not a space to JavaScript or to Python
 * (which reads these files). A token ends where a user-perceived character (a grapheme cluster)
 * ends: a family emoji joined by zero-width joiners, a flag, a skin tone stay one token, and a
 * Prepend character (an Arabic number sign) goes with the word after it. Offsets are JavaScript
 * string indexes (UTF-16), like the layer's.
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
const TOKEN = /[\p{L}\p{M}\p{N}]+(?:[’'.,-][\p{L}\p{M}\p{N}]+)*|[.!?…。｡！？؟।॥]{2,}|[^\s\x1c-\x1f\x85]/gu;

/** Python's split() and JavaScript's \s both take these as spaces: a token never holds one. */
const SPACE = /[\s\x1c-\x1f\x85]/u;
/**
 * What may join on to the character before it in a grapheme cluster: a mark (a variation
 * selector, a keycap among them), a zero-width joiner, a skin tone, the second of a flag's two
 * letters, a tag of a subdivision flag. (A Prepend character joins the one after it: see PREPEND.)
 */
const JOINS_ON = /^[\p{M}\u200d\p{Emoji_Modifier}\p{Regional_Indicator}\u{E0020}-\u{E007F}]/u;
/**
 * A Prepend character (an Arabic number sign, say): it joins the character after it, so a word
 * that follows one is one token with it.
 */
const PREPEND = /[\u0600-\u0605\u06DD\u070F\u0890\u0891\u08E2\u0D4E\u{110BD}\u{110CD}\u{111C2}\u{111C3}\u{1193F}\u{11941}\u{11A3A}\u{11A84}-\u{11A89}\u{11D46}\u{11F02}]$/u;
const WORD_START = /[\p{L}\p{M}\p{N}]/u;
/** (Made when first needed; a browser without Intl.Segmenter splits clusters as before.) */
let graphemes: Intl.Segmenter | null | undefined;

export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  const pattern = new RegExp(TOKEN.source, TOKEN.flags);
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    let end = m.index + m[0].length;
    // A Prepend character (a token of its own to TOKEN) takes the word after it along.
    while (end < text.length && text.charCodeAt(end - 1) >= 0x600 && PREPEND.test(text.slice(Math.max(0, end - 2), end)) && WORD_START.test(String.fromCodePoint(text.codePointAt(end)!))) {
      pattern.lastIndex = end;
      const word = pattern.exec(text)!; // (a word starts at `end`: it matches there)
      end = word.index + word[0].length;
    }
    end = clusterEnd(text, m.index, end);
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

/** What Python's str.splitlines() takes for a line break (and brat, which reads `.ann` files with `readlines()`). */
export const LINE_BREAK = /[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/;
/**
 * A run of sentence-ending punctuation ("...", "?!" are one token): `.`, `!`, `?`, `…`, and
 * other scripts' (`。` and its half-width form, the full-width `！？`, Arabic `؟`, Devanagari `।`
 * and `॥`).
 */
const SENTENCE_END = /^[.!?…。｡！？؟।॥]+$/;
/** Text in a script written without spaces between words (and without case): Han, kana. */
const UNSPACED = /^[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
/** What may close a sentence after its full stop: quotes and brackets (`He said "No." Then`, `「はい。」`). */
const CLOSER = /^["'”’»›)\]}」』）】〕》〉]$/u;
/** Abbreviations a name follows, never a sentence's end ("Gen. Smith", "Mr. Kirby", "Dr. He Jiankui"). */
const TITLES = new Set('Mr Mrs Ms Mx Dr Prof Gen Lt Col Maj Capt Cpt Sgt Cpl Adm Cmdr Brig Sen Rep Gov Pres Amb Rev Hon Fr Messrs Mme Mlle'.split(' '));
/** Abbreviations of places a name follows ("St. Paul"), and that may end a sentence ("on Main St. The"). */
const PLACES = new Set(['St', 'Mt', 'Ft']);
/** Words with inner periods that lead on to what follows, never a sentence's end ("e.g. The Beatles"). */
const LEADING = new Set(['e.g', 'i.e', 'a.k.a', 'E.g', 'I.e', 'A.k.a']);
/** Abbreviations that may end a sentence, but not before a number or a lower-case word ("Nov. 5", "Apple Inc. said"). */
const ABBREVIATIONS = new Set(
  'Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Mon Tue Tues Wed Thu Thurs Fri Sat Sun Inc Corp Ltd Co Bros Jr Sr No Nos Vol Fig pp approx est etc vs al cf ca Ave Blvd Rd Dept Univ'.split(
    ' ',
  ),
);

/**
 * Words that start sentences and are hardly anyone's name: after an initial, a place's
 * abbreviation or a word with inner periods, one of these says the full stop ended a sentence
 * ("Plan B. The", "the U.S. It"). (Not "A" nor "I", which are initials as well, nor words that
 * are also names: "He", "Her", "So", "In", "Most" …)
 */
const SENTENCE_STARTERS = new Set('The This That These Those It Its They We You There Then But And Yet After Before When While If Their Our'.split(' '));

/**
 * Tokens grouped into sentences. A sentence ends at a line break (any Python's splitlines()
 * knows), and after a run of `.`, `!`, `?`, `…` together with the quotes and brackets that close
 * on it, unless the next word starts in lower case. A full stop right after an abbreviation does
 * not end one after a title ("Gen. Smith", "Dr. He"), nor after "e.g.", "i.e." or "a.k.a."; nor
 * after an initial, a place's abbreviation ("St.") or another word with inner periods ("U.S."),
 * unless a word that starts sentences follows ("Plan B. The", "the U.S. It"); after another
 * known abbreviation, only before a word in upper case ("on Nov. 5" goes on; "at Apple Inc.
 * The next" ends).
 */
export function sentences(text: string): Token[][] {
  const tokens = tokenize(text);
  const out: Token[][] = [];
  let current: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (current.length > 0 && LINE_BREAK.test(text.slice(current.at(-1)!.end, token.start))) {
      out.push(current);
      current = [];
    }
    current.push(token);
    if (!SENTENCE_END.test(token.text)) continue;
    // The quotes and brackets that close on it, with no space between, are the sentence's.
    let last = i;
    while (last + 1 < tokens.length && CLOSER.test(tokens[last + 1]!.text) && tokens[last + 1]!.start === tokens[last]!.end) last++;
    const next = tokens[last + 1];
    if (next && !LINE_BREAK.test(text.slice(tokens[last]!.end, next.start)) && !endsHere(tokens[i - 1], token, next)) continue;
    // A quote that closes on it and runs straight on in a script without spaces or case goes on
    // («「はい。」と言った»: the quotative particle is the same sentence's).
    if (next && last > i && next.start === tokens[last]!.end && UNSPACED.test(next.text)) continue;
    for (let k = i + 1; k <= last; k++) current.push(tokens[k]!);
    i = last;
    out.push(current);
    current = [];
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Whether `end` (a run of end punctuation, after `before` and on the line of `next`) ends a sentence. */
function endsHere(before: Token | undefined, end: Token, next: Token): boolean {
  const nextStart = String.fromCodePoint(next.text.codePointAt(0)!);
  if (/\p{Ll}/u.test(nextStart)) return false;
  if (end.text !== '.' || !before || before.end !== end.start) return true;
  const word = before.text;
  if (TITLES.has(word) || LEADING.has(word)) return false;
  if (PLACES.has(word) || /^\p{Lu}$/u.test(word) || /\p{L}\.\p{L}/u.test(word)) return SENTENCE_STARTERS.has(next.text);
  if (ABBREVIATIONS.has(word)) return /\p{Lu}/u.test(nextStart);
  return true;
}
