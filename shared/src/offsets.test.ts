import { describe, it, expect } from 'vitest';
import { offsetMapper, toCodePointOffset, toUtf16Offset } from './offsets.ts';

// "a😀b": UTF-16 units a, \uD83D, \uDE00, b (length 4); code points a, 😀, b (length 3).
const text = 'a😀b';

/** Reference conversion table built with Array.from (which iterates by code point). */
function referenceTable(s: string): { utf16ToCp: Map<number, number>; cpToUtf16: number[] } {
  const utf16ToCp = new Map<number, number>();
  const cpToUtf16: number[] = [];
  let u = 0;
  Array.from(s).forEach((ch, cp) => {
    utf16ToCp.set(u, cp);
    cpToUtf16.push(u);
    u += ch.length;
  });
  utf16ToCp.set(u, cpToUtf16.length);
  cpToUtf16.push(u);
  return { utf16ToCp, cpToUtf16 };
}

describe('toCodePointOffset / toUtf16Offset', () => {
  it('converts around an emoji', () => {
    expect(text.length).toBe(4);
    expect([0, 1, 3, 4].map((i) => toCodePointOffset(text, i))).toEqual([0, 1, 2, 3]);
    expect([0, 1, 2, 3].map((i) => toUtf16Offset(text, i))).toEqual([0, 1, 3, 4]);
  });

  it('rejects an index inside a surrogate pair', () => {
    expect(() => toCodePointOffset(text, 2)).toThrow(RangeError);
  });

  it('rejects indexes outside the text or not integers', () => {
    expect(() => toCodePointOffset(text, -1)).toThrow(RangeError);
    expect(() => toCodePointOffset(text, 5)).toThrow(RangeError);
    expect(() => toCodePointOffset(text, 1.5)).toThrow(RangeError);
    expect(() => toUtf16Offset(text, -1)).toThrow(RangeError);
    expect(() => toUtf16Offset(text, 4)).toThrow(RangeError);
    expect(() => toUtf16Offset(text, Number.NaN)).toThrow(RangeError);
  });

  it('is the identity for BMP-only text, including the end offset', () => {
    const bmp = 'héllo wörld — ñ 中文';
    for (let i = 0; i <= bmp.length; i++) {
      expect(toCodePointOffset(bmp, i)).toBe(i);
      expect(toUtf16Offset(bmp, i)).toBe(i);
    }
    expect(toCodePointOffset('', 0)).toBe(0);
    expect(toUtf16Offset('', 0)).toBe(0);
    expect(() => toUtf16Offset('', 1)).toThrow(RangeError);
  });

  it('counts a lone surrogate as one code point', () => {
    const lone = 'a\uD83Db\uDE00c'; // unpaired high and low surrogates
    expect(Array.from(lone)).toHaveLength(5);
    for (let i = 0; i <= lone.length; i++) {
      expect(toCodePointOffset(lone, i)).toBe(i);
      expect(toUtf16Offset(lone, i)).toBe(i);
    }
  });
});

describe('offsetMapper', () => {
  it('converts "a😀b" in both directions', () => {
    const m = offsetMapper(text);
    expect(m.hasAstral).toBe(true);
    expect(m.utf16Length).toBe(4);
    expect(m.codePointLength).toBe(3);
    expect([0, 1, 3, 4].map((i) => m.toCodePointOffset(i))).toEqual([0, 1, 2, 3]);
    expect([0, 1, 2, 3].map((i) => m.toUtf16Offset(i))).toEqual([0, 1, 3, 4]);
    expect(() => m.toCodePointOffset(2)).toThrow(RangeError);
    expect(() => m.toCodePointOffset(5)).toThrow(RangeError);
    expect(() => m.toUtf16Offset(4)).toThrow(RangeError);
    expect(() => m.toUtf16Offset(-1)).toThrow(RangeError);
  });

  it('agrees with an Array.from reference on mixed astral text', () => {
    // Emoji, a ZWJ sequence (several code points), a flag (two regional indicators),
    // math alphanumerics, a CJK extension-B ideograph, a lone surrogate and BMP text.
    const s = '😀x👩‍💻 🇫🇷 𝒜𝒷𝒸 𠀀 é\uD800z😀😀';
    const { utf16ToCp, cpToUtf16 } = referenceTable(s);
    const m = offsetMapper(s);
    expect(m.codePointLength).toBe(Array.from(s).length);
    for (let u = 0; u <= s.length; u++) {
      const expected = utf16ToCp.get(u);
      if (expected === undefined) {
        expect(() => m.toCodePointOffset(u)).toThrow(RangeError);
        expect(() => toCodePointOffset(s, u)).toThrow(RangeError);
      } else {
        expect(m.toCodePointOffset(u)).toBe(expected);
        expect(toCodePointOffset(s, u)).toBe(expected);
      }
    }
    cpToUtf16.forEach((u, cp) => {
      expect(m.toUtf16Offset(cp)).toBe(u);
      expect(toUtf16Offset(s, cp)).toBe(u);
    });
    expect(() => m.toUtf16Offset(cpToUtf16.length)).toThrow(RangeError);
  });

  it('round-trips and slices consistently with code point arrays', () => {
    const s = 'Hi 😀 there 𝄞 music';
    const m = offsetMapper(s);
    const cps = Array.from(s);
    // The code point range 3..4 is the emoji.
    expect(s.slice(m.toUtf16Offset(3), m.toUtf16Offset(4))).toBe('😀');
    expect(cps.slice(m.toCodePointOffset(12), m.toCodePointOffset(14)).join('')).toBe('𝄞');
    for (let cp = 0; cp <= m.codePointLength; cp++) {
      expect(m.toCodePointOffset(m.toUtf16Offset(cp))).toBe(cp);
    }
  });

  it('uses the identity fast path for text without astral characters', () => {
    const m = offsetMapper('plain ascii');
    expect(m.hasAstral).toBe(false);
    expect(m.codePointLength).toBe(11);
    expect(m.toCodePointOffset(11)).toBe(11);
    expect(m.toUtf16Offset(5)).toBe(5);
    expect(() => m.toCodePointOffset(12)).toThrow(RangeError);
    expect(() => m.toUtf16Offset(0.5)).toThrow(RangeError);
  });

  it('handles text that is only lone surrogates (no pairs)', () => {
    const m = offsetMapper('\uDE00\uD83D');
    expect(m.hasAstral).toBe(false);
    expect(m.codePointLength).toBe(2);
    expect(m.toCodePointOffset(1)).toBe(1);
    expect(m.toUtf16Offset(2)).toBe(2);
  });

  it('handles adjacent astral characters and large texts', () => {
    const s = '😀'.repeat(1000) + 'end';
    const m = offsetMapper(s);
    expect(m.codePointLength).toBe(1003);
    expect(m.toUtf16Offset(1000)).toBe(2000);
    expect(m.toCodePointOffset(2000)).toBe(1000);
    expect(m.toCodePointOffset(2003)).toBe(1003);
    expect(() => m.toCodePointOffset(1999)).toThrow(RangeError);
    expect(m.toCodePointOffset(1998)).toBe(999);
  });
});
