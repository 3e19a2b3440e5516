/**
 * Derives a title for an article imported without one. Newsletter and "read also" boilerplate
 * is skipped; a short headline-like first line wins; otherwise the first sentence of the first
 * paragraph, cut at a word boundary. Abbreviations such as "U.S." do not end a sentence.
 *
 * @example
 *   deriveTitle('SIGN UP for our newsletter\n\nIran prepares to transfer missiles — report\n\nU.S. officials…')
 *   // 'Iran prepares to transfer missiles — report'
 */
const MAX = 100;
const BOILERPLATE = /sign up|newsletter|subscribe|get the latest|read also|advertisement|cookies?\b|click here/i;
const ABBREVIATION = /(\b(?:[A-Z]\.)+[A-Z]?|\b(?:Mr|Mrs|Ms|Dr|Gen|Sen|Rep|St|Jr|Sr|Lt|Col|Brig|Maj|Capt|Gov|Prof|No|Nov|Dec|Jan|Feb|Aug|Sept?|Oct))$/;

function firstSentence(line: string): string {
  const boundary = /[.!?](?=\s+["“‘(]?[A-Z0-9])/g;
  for (let m = boundary.exec(line); m; m = boundary.exec(line)) {
    if (m[0] === '.' && ABBREVIATION.test(line.slice(0, m.index))) continue;
    return line.slice(0, m.index);
  }
  return line.replace(/[.!?]$/, '');
}

function shorten(text: string): string {
  if (text.length <= MAX) return text;
  const cut = text.slice(0, MAX);
  return cut.slice(0, Math.max(cut.lastIndexOf(' '), 40)).replace(/[,;:\s]+$/, '') + '…';
}

export function deriveTitle(text: string, fallback = 'Untitled document'): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !BOILERPLATE.test(l));
  const first = lines[0];
  if (!first) return fallback;
  const words = first.split(/\s+/).length;
  const headline = words >= 3 && words <= 20 && !/[.:;,]$/.test(first);
  return shorten(headline ? first : firstSentence(first));
}
