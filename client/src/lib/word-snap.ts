/**
 * A selection made by dragging starts or ends where the pointer let go, often inside a word
 * ("entagon say"): labelled so, the span would cut words apart, and CoNLL would have to cut its
 * tokens there. Snapped out to the whole words it touches, as brat does. Only in scripts that
 * put spaces between words: in Chinese, Japanese, Thai and the like, a run of letters is a whole
 * phrase, and the selection is taken as it is.
 *
 * @example
 *   snapToWords('The Pentagon says', 5, 15) // { start: 4, end: 17 }: "Pentagon says"
 */
const LETTER = /[\p{L}\p{N}\p{M}]/u;
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

export function snapToWords(text: string, start: number, end: number): { start: number; end: number } {
  // Only a boundary with a letter of a spaced script on both sides is inside a word.
  if (inWord(after(text, start))) while (inWord(before(text, start))) start -= before(text, start).length;
  if (inWord(before(text, end))) while (inWord(after(text, end))) end += after(text, end).length;
  return { start, end };
}
