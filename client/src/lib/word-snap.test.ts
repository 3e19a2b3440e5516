import { describe, expect, it } from 'vitest';
import { snapToWords } from './word-snap.ts';

const snapped = (text: string, from: string, to: string) => {
  // The selection from the first `from` up to the end of the first `to` after it.
  const start = text.indexOf(from);
  const end = text.indexOf(to, start) + to.length;
  const at = snapToWords(text, start, end);
  return text.slice(at.start, at.end);
};

describe('snapToWords', () => {
  it('takes in the whole of a word a selection starts or ends inside', () => {
    expect(snapped('The Pentagon says Iran', 'entagon', ' say')).toBe('Pentagon says');
    expect(snapped('The Pentagon says Iran', 'Pentagon', 'Pentagon')).toBe('Pentagon');
    expect(snapped('über Zürich', 'rich', 'rich')).toBe('Zürich');
    expect(snapped('Fateh-110 missiles', 'ateh', 'ateh')).toBe('Fateh'); // (a hyphen ends a word)
    expect(snapped('Iran’s drones', 'Ira', 'Ira')).toBe('Iran'); // (so does an apostrophe: the possessive left out)
  });

  it('takes in the whole of a number a selection starts or ends inside, its separators too', () => {
    expect(snapped('it is 1,000.5 km', ',0', ',0')).toBe('1,000.5');
    expect(snapped('in 2024, they', '02', '02')).toBe('2024'); // (a comma after a number, no digit after it: not inside)
    expect(snapped('v. 3.14', '14', '14')).toBe('3.14');
  });

  it('leaves a selection that starts and ends between words, or on spaces and punctuation, as it is', () => {
    expect(snapped('said: "Iran is"', '"Iran', 'is"')).toBe('"Iran is"');
    expect(snapped('a b', ' ', ' ')).toBe(' ');
  });

  it('takes a selection in a script without spaces between words as it is', () => {
    expect(snapped('美国国防部表示伊朗', '国防', '部')).toBe('国防部');
    expect(snapped('ロシアに提供', 'シア', 'シア')).toBe('シア');
  });

  it('counts letters outside the basic plane whole', () => {
    const text = 'x 𝐀𝐁𝐂 y';
    const inner = text.indexOf('𝐁');
    expect(snapToWords(text, inner, inner + 2)).toEqual({ start: 2, end: 2 + 6 });
  });
});
