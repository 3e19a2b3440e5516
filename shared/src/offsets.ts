/**
 * Conversion between JavaScript string indexes (UTF-16 code units) and Unicode code point
 * offsets.
 *
 * Inside the app every span offset is a UTF-16 index (what `String.prototype.slice` uses), but
 * many external formats (Python tooling, most JSON/JSONL span datasets) count code points. An
 * astral character such as "😀" is one code point but two UTF-16 code units (a surrogate pair),
 * so the two coordinate systems diverge after the first astral character.
 *
 * Conventions:
 * - Offsets are boundaries, so the valid range is `0..length` inclusive (the end of the text is a
 *   valid offset).
 * - Offsets must be integers; anything else, or anything outside the text, throws `RangeError`.
 * - A UTF-16 index that points between the high and low half of a well-formed surrogate pair
 *   throws `RangeError`.
 * - A lone (unpaired) surrogate counts as one code point, exactly as `Array.from(text)` and
 *   `for…of` iteration treat it.
 */

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** True when `text[i]` and `text[i + 1]` form a well-formed surrogate pair. */
function isPairStart(text: string, i: number): boolean {
  return isHighSurrogate(text.charCodeAt(i)) && isLowSurrogate(text.charCodeAt(i + 1));
}

function checkIndex(index: number, max: number, what: string): void {
  if (!Number.isInteger(index) || index < 0 || index > max) {
    throw new RangeError(`${what} ${String(index)} is outside the text (0..${max})`);
  }
}

function surrogateMiddleError(utf16Index: number): RangeError {
  return new RangeError(`UTF-16 index ${utf16Index} points into the middle of a surrogate pair`);
}

/**
 * Converts a UTF-16 index (JavaScript string index) into a code point offset.
 *
 * Scans the prefix once (O(index)); use {@link offsetMapper} to convert many offsets in the same
 * text.
 *
 * @example
 * toCodePointOffset('a😀b', 3); // 2 — "a" and "😀" precede "b"
 * toCodePointOffset('a😀b', 2); // throws RangeError (inside the surrogate pair)
 */
export function toCodePointOffset(text: string, utf16Index: number): number {
  checkIndex(utf16Index, text.length, 'UTF-16 index');
  let codePoints = 0;
  let i = 0;
  while (i < utf16Index) {
    i += isPairStart(text, i) ? 2 : 1;
    codePoints++;
  }
  if (i !== utf16Index) throw surrogateMiddleError(utf16Index);
  return codePoints;
}

/**
 * Converts a code point offset into a UTF-16 index (JavaScript string index).
 *
 * Scans the prefix once (O(index)); use {@link offsetMapper} to convert many offsets in the same
 * text.
 *
 * @example
 * toUtf16Offset('a😀b', 2); // 3
 * toUtf16Offset('a😀b', 4); // throws RangeError (the text has 3 code points)
 */
export function toUtf16Offset(text: string, codePointIndex: number): number {
  if (!Number.isInteger(codePointIndex) || codePointIndex < 0) {
    throw new RangeError(`code point index ${String(codePointIndex)} is outside the text`);
  }
  let i = 0;
  let codePoints = 0;
  while (codePoints < codePointIndex) {
    if (i >= text.length) {
      throw new RangeError(
        `code point index ${codePointIndex} is outside the text (0..${codePoints})`,
      );
    }
    i += isPairStart(text, i) ? 2 : 1;
    codePoints++;
  }
  return i;
}

/** Converts many offsets in one text, in both directions. Created by {@link offsetMapper}. */
export interface OffsetMapper {
  /** Length of the text in UTF-16 code units (`text.length`). */
  readonly utf16Length: number;
  /** Length of the text in code points. */
  readonly codePointLength: number;
  /** Whether the text contains at least one surrogate pair (astral character). */
  readonly hasAstral: boolean;
  /** Same contract as the free function {@link toCodePointOffset}. */
  toCodePointOffset(utf16Index: number): number;
  /** Same contract as the free function {@link toUtf16Offset}. */
  toUtf16Offset(codePointIndex: number): number;
}

/**
 * Returns the number of elements of the ascending array `sorted` that are strictly less than
 * `value` (binary search).
 */
function countLessThan(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Builds a reusable converter for one text.
 *
 * Text without astral characters (the common case) needs no tables: both directions are the
 * identity plus a range check, O(1). Otherwise the positions of the surrogate pairs are recorded
 * once (O(text length) time, O(number of astral characters) memory) and each lookup is a binary
 * search, O(log p) for p astral characters.
 *
 * @example
 * const map = offsetMapper('a😀b😀');
 * map.toCodePointOffset(3); // 2
 * map.toUtf16Offset(3);     // 4
 * map.codePointLength;      // 4
 */
export function offsetMapper(text: string): OffsetMapper {
  const utf16Length = text.length;

  // Fast path: no surrogate code units at all ⇒ both coordinate systems coincide. Lone
  // surrogates also count one unit = one code point, so only well-formed pairs matter below.
  if (!/[\uD800-\uDFFF]/.test(text)) {
    return {
      utf16Length,
      codePointLength: utf16Length,
      hasAstral: false,
      toCodePointOffset(utf16Index) {
        checkIndex(utf16Index, utf16Length, 'UTF-16 index');
        return utf16Index;
      },
      toUtf16Offset(codePointIndex) {
        checkIndex(codePointIndex, utf16Length, 'code point index');
        return codePointIndex;
      },
    };
  }

  // pairUtf16[j]: UTF-16 index of the high surrogate of the j-th surrogate pair.
  // pairCodePoint[j]: code point offset of that same character (= pairUtf16[j] - j).
  // Both are strictly increasing.
  const pairUtf16: number[] = [];
  const pairCodePoint: number[] = [];
  for (let i = 0; i < utf16Length; i++) {
    if (isPairStart(text, i)) {
      pairCodePoint.push(i - pairUtf16.length);
      pairUtf16.push(i);
      i++;
    }
  }
  const codePointLength = utf16Length - pairUtf16.length;
  const hasAstral = pairUtf16.length > 0;

  return {
    utf16Length,
    codePointLength,
    hasAstral,
    toCodePointOffset(utf16Index) {
      checkIndex(utf16Index, utf16Length, 'UTF-16 index');
      // Every pair starting before the index shrinks the offset by one.
      const before = countLessThan(pairUtf16, utf16Index);
      if (before > 0 && pairUtf16[before - 1] === utf16Index - 1) {
        throw surrogateMiddleError(utf16Index);
      }
      return utf16Index - before;
    },
    toUtf16Offset(codePointIndex) {
      checkIndex(codePointIndex, codePointLength, 'code point index');
      // Every astral character before the offset adds one code unit.
      return codePointIndex + countLessThan(pairCodePoint, codePointIndex);
    },
  };
}
