/**
 * A selection dragged with the pointer starts or ends where the pointer let go, often inside a
 * word ("entagon say"): labelled so, the span would cut words apart, and CoNLL would have to cut
 * its tokens there. Snapped out to the whole words it touches, as brat does:
 * - a word is a run of letters, marks and digits; a number's inner separators join it
 *   ("1,000.5");
 * - an apostrophe or a hyphen ends a word, so "Iran" can still be taken out of "Iran’s", and
 *   "Fateh" out of "Fateh-110";
 * - in scripts that put no spaces between words (Chinese, Japanese, Thai and the like) a run
 *   of letters is a whole phrase, and the selection is taken as it is.
 *
 * @example
 *   snapToWords('The Pentagon says', 5, 15) // { start: 4, end: 17 }: "Pentagon says"
 */
const LETTER = /[\p{L}\p{N}\p{M}]/u;
const DIGIT = /\p{N}/u;
const NUMBER_SEPARATOR = /[.,]/;
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}\p{Script=Tibetan}]/u;

/** The character (code point) that ends at `i`, or '' at the start. */
function before(text: string, i: number): string {
  if (i <= 0) return '';
  const low = text.charCodeAt(i - 1);
  return low >= 0xdc00 && low <= 0xdfff && i >= 2 ? text.slice(i - 2, i) : text.slice(i - 1, i);
}

/** The character (code point) that starts at `i`, or '' at the end. */
function after(text: string, i: number): string {
  const code = text.codePointAt(i);
  return code === undefined ? '' : String.fromCodePoint(code);
}

const inWord = (ch: string) => ch !== '' && LETTER.test(ch) && !UNSPACED.test(ch);
const digit = (ch: string) => ch !== '' && DIGIT.test(ch);

/** Whether offset `i` lies inside a word (or a number), not at its edge. */
function inside(text: string, i: number): boolean {
  const b = before(text, i);
  const a = after(text, i);
  if (inWord(b) && inWord(a)) return true;
  // Beside a separator with a digit on each side of it: inside a number.
  if (digit(b) && NUMBER_SEPARATOR.test(a) && digit(after(text, i + 1))) return true;
  return NUMBER_SEPARATOR.test(b) && digit(a) && digit(before(text, i - 1));
}

export function snapToWords(text: string, start: number, end: number): { start: number; end: number } {
  while (start > 0 && inside(text, start)) start -= before(text, start).length;
  while (end < text.length && inside(text, end)) end += after(text, end).length;
  return { start, end };
}
