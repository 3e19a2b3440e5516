/**
 * Inter-annotator agreement statistics: Cohen's κ, Fleiss' κ, Krippendorff's α and span-level
 * precision / recall / F1.
 *
 * All functions are pure and validate their input, throwing `RangeError` for shape or range
 * problems (and `TypeError` for values of the wrong type where a numeric scale is required).
 * Labels are compared with SameValueZero (as `Map` keys), so the number `1` and the string `'1'`
 * are different categories.
 */

// ---------------------------------------------------------------------------------------------
// Cohen's kappa
// ---------------------------------------------------------------------------------------------

/**
 * Cohen's kappa for two coders who each labelled the same items: κ = (pₒ − pₑ) / (1 − pₑ), with
 * pₒ the observed proportion of agreement and pₑ the agreement expected from each coder's own
 * label distribution.
 *
 * Edge cases: the arrays must have the same, non-zero length (else `RangeError`), and hold
 * strings or finite numbers (else `TypeError`). When pₑ = 1
 * (both coders used one and the same label for everything) κ is 0/0; this returns 1 if the
 * coders agree on every item, else 0.
 *
 * @example
 * cohenKappa(['y', 'y', 'n', 'n'], ['y', 'n', 'n', 'n']); // 0.5
 */
export function cohenKappa(
  a: readonly (string | number)[],
  b: readonly (string | number)[],
): number {
  if (a.length !== b.length) {
    throw new RangeError(`cohenKappa: label arrays differ in length (${a.length} vs ${b.length})`);
  }
  const n = a.length;
  if (n === 0) throw new RangeError('cohenKappa: no items');

  const countA = new Map<string | number, number>();
  const countB = new Map<string | number, number>();
  let agreed = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    checkLabel(x, 'a', i);
    checkLabel(y, 'b', i);
    if (x === y) agreed++;
    countA.set(x, (countA.get(x) ?? 0) + 1);
    countB.set(y, (countB.get(y) ?? 0) + 1);
  }
  const po = agreed / n;
  let pe = 0;
  for (const [label, ca] of countA) pe += (ca / n) * ((countB.get(label) ?? 0) / n);
  return chanceCorrected(po, pe);
}

/** A label is a string or a finite number (NaN would count as a category yet never agree with itself). */
function checkLabel(label: unknown, side: string, i: number): void {
  if (typeof label === 'string' || (typeof label === 'number' && Number.isFinite(label))) return;
  throw new TypeError(`cohenKappa: ${side}[${i}] = ${String(label)} is not a string or a finite number`);
}

/** (pₒ − pₑ) / (1 − pₑ), with the degenerate pₑ = 1 case mapped to 1 (perfect) or 0. */
function chanceCorrected(po: number, pe: number): number {
  // Compare with a tolerance: pₑ is a sum of products of floating-point fractions.
  if (Math.abs(1 - pe) < 1e-12) return Math.abs(1 - po) < 1e-12 ? 1 : 0;
  return (po - pe) / (1 - pe);
}

// ---------------------------------------------------------------------------------------------
// Fleiss' kappa
// ---------------------------------------------------------------------------------------------

/**
 * Fleiss' kappa for a fixed number of raters per subject.
 *
 * `counts[i][j]` is how many raters put subject `i` in category `j`. There must be at least one
 * subject and one category, all rows the same width, every cell a non-negative integer, and
 * every row the same total n ≥ 2 (else `RangeError`). Raters need not be the same people across
 * subjects. When expected agreement P̄ₑ = 1 (every rating in a single category) this returns 1
 * if observed agreement is perfect (which it then necessarily is).
 *
 * @example
 * // 3 subjects, 2 categories, 3 raters each
 * fleissKappa([[3, 0], [0, 3], [2, 1]]); // ≈ 0.55
 */
export function fleissKappa(counts: readonly (readonly number[])[]): number {
  const subjects = counts.length;
  if (subjects === 0) throw new RangeError('fleissKappa: no subjects');
  const categories = (counts[0] as readonly number[]).length;
  if (categories === 0) throw new RangeError('fleissKappa: no categories');

  let raters = -1;
  const categoryTotals = new Array<number>(categories).fill(0);
  let observedSum = 0;
  for (let i = 0; i < subjects; i++) {
    const row = counts[i] as readonly number[];
    if (row.length !== categories) {
      throw new RangeError(
        `fleissKappa: row ${i} has ${row.length} categories, expected ${categories}`,
      );
    }
    let total = 0;
    let squares = 0;
    for (let j = 0; j < categories; j++) {
      const c = row[j] as number;
      if (!Number.isInteger(c) || c < 0) {
        throw new RangeError(`fleissKappa: counts[${i}][${j}] = ${c} is not a non-negative integer`);
      }
      total += c;
      squares += c * c;
      categoryTotals[j] = (categoryTotals[j] as number) + c;
    }
    if (raters === -1) {
      raters = total;
      if (raters < 2) throw new RangeError(`fleissKappa: need at least 2 raters per subject`);
    } else if (total !== raters) {
      throw new RangeError(
        `fleissKappa: row ${i} has ${total} ratings, expected ${raters} like row 0`,
      );
    }
    // Pᵢ = (Σⱼ nᵢⱼ² − n) / (n(n − 1))
    observedSum += (squares - raters) / (raters * (raters - 1));
  }

  const pBar = observedSum / subjects;
  let pe = 0;
  for (const t of categoryTotals) {
    const p = t / (subjects * raters);
    pe += p * p;
  }
  return chanceCorrected(pBar, pe);
}

// ---------------------------------------------------------------------------------------------
// Krippendorff's alpha
// ---------------------------------------------------------------------------------------------

/** Measurement level for {@link krippendorffAlpha}. */
export type AlphaLevel = 'nominal' | 'ordinal' | 'interval' | 'ratio';

export interface AlphaOptions {
  /**
   * For `ordinal` data, its values from lowest to highest ('low', 'medium', 'high'): every
   * value in the data must be listed, once (else `RangeError`). Other levels ignore it.
   */
  order?: readonly (number | string)[];
}

/** A decimal number written out ('-2', '1.25', '3e2'), which ranks by its value. */
const NUMERIC_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * Natural-order string comparison: runs of ASCII digits compare by numeric value, everything
 * else by UTF-16 code unit, so 'item2' < 'item10'. Ties (e.g. '01' vs '1') are broken by plain
 * code-unit order so the ordering is total and locale-independent.
 */
function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  const len = Math.min(pa.length, pb.length);
  for (let i = 0; i < len; i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x === y) continue;
    const xDigits = /^\d/.test(x);
    const yDigits = /^\d/.test(y);
    if (xDigits && yDigits) {
      // Compare digit runs numerically without overflowing: strip leading zeros, then by length.
      const xs = x.replace(/^0+/, '');
      const ys = y.replace(/^0+/, '');
      if (xs.length !== ys.length) return xs.length - ys.length;
      if (xs !== ys) return xs < ys ? -1 : 1;
      continue;
    }
    return x < y ? -1 : 1;
  }
  if (pa.length !== pb.length) return pa.length - pb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Krippendorff's alpha reliability coefficient, α = 1 − Dₒ / Dₑ, computed from the coincidence
 * matrix (Krippendorff, "Computing Krippendorff's Alpha-Reliability", 2011).
 *
 * `data[c][u]` is coder c's value for unit u, `null` when the coder did not code that unit. All
 * rows must have the same length. Units with fewer than 2 values are not pairable and are
 * dropped.
 *
 * Difference functions δ²(c, k) by level:
 * - `nominal`: 0 if c = k else 1. Values may be numbers or strings (`1` ≠ `'1'`).
 * - `ordinal`: (Σ_{g=c..k} n_g − (n_c + n_k) / 2)², n_g being the marginal frequency of value g
 *   in the coincidence matrix, over the values in rank order. Only the rank order matters: the
 *   one `options.order` gives; else values must be all numbers (ranked by value) or all strings,
 *   ranked by value when every one is a decimal number ('-2' < '-1' < '1.25' < '1.5'), else in
 *   natural order ('L2' < 'L10', locale-independent: give `order` for words such as 'low',
 *   'medium', 'high'). Mixing numbers and strings throws `TypeError`.
 * - `interval`: (c − k)². Values must be finite numbers (`TypeError` otherwise).
 * - `ratio`: ((c − k) / (c + k))², 0 when c = k = 0. Values must be finite, non-negative
 *   numbers (`TypeError` for non-numbers, `RangeError` for negatives).
 *
 * Edge cases: no coders, rows of different lengths, or no pairable unit at all (α undefined)
 * throw `RangeError`. If expected disagreement Dₑ is 0 (all pairable values identical), observed
 * disagreement is necessarily 0 too and the result is 1. α can be negative (systematic
 * disagreement) and is at most 1.
 *
 * @example
 * krippendorffAlpha([
 *   ['a', 'a', 'b', null],
 *   ['a', 'b', 'b', 'b'],
 * ]); // ≈ 0.444 (the 4th unit has one value and is dropped)
 */
export function krippendorffAlpha(
  data: readonly (readonly (number | string | null)[])[],
  level: AlphaLevel = 'nominal',
  options: AlphaOptions = {},
): number {
  if (level !== 'nominal' && level !== 'ordinal' && level !== 'interval' && level !== 'ratio') {
    throw new RangeError(`krippendorffAlpha: unknown level ${String(level)}`);
  }
  const coders = data.length;
  if (coders === 0) throw new RangeError('krippendorffAlpha: no coders');
  const units = (data[0] as readonly (number | string | null)[]).length;
  for (let c = 1; c < coders; c++) {
    const len = (data[c] as readonly unknown[]).length;
    if (len !== units) {
      throw new RangeError(
        `krippendorffAlpha: coder ${c} has ${len} units, expected ${units} like coder 0`,
      );
    }
  }

  // Validate values and give each distinct value an index.
  const index = new Map<number | string, number>();
  const values: (number | string)[] = [];
  let sawNumber = false;
  let sawString = false;
  for (let c = 0; c < coders; c++) {
    const row = data[c] as readonly (number | string | null)[];
    for (let u = 0; u < units; u++) {
      const v = row[u];
      if (v === null || v === undefined) continue;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) {
          throw new TypeError(`krippendorffAlpha: data[${c}][${u}] = ${v} is not a finite number`);
        }
        if (level === 'ratio' && v < 0) {
          throw new RangeError(
            `krippendorffAlpha: ratio data must be non-negative, data[${c}][${u}] = ${v}`,
          );
        }
        sawNumber = true;
      } else if (typeof v === 'string') {
        if (level === 'interval' || level === 'ratio') {
          throw new TypeError(
            `krippendorffAlpha: ${level} data must be numbers, data[${c}][${u}] is a string`,
          );
        }
        sawString = true;
      } else {
        throw new TypeError(`krippendorffAlpha: data[${c}][${u}] is not a number, string or null`);
      }
      // Map keys use SameValueZero, so -0 and 0 are one value.
      if (!index.has(v)) {
        index.set(v, values.length);
        values.push(v);
      }
    }
  }
  if (level === 'ordinal' && sawNumber && sawString) {
    throw new TypeError('krippendorffAlpha: ordinal data must be all numbers or all strings');
  }

  // Put values in rank order for the ordinal metric (harmless for the others).
  if (level !== 'nominal') {
    if (level === 'ordinal' && options.order) {
      const rank = new Map<number | string, number>();
      options.order.forEach((v, i) => rank.set(v, i));
      if (rank.size !== options.order.length) throw new RangeError('krippendorffAlpha: options.order lists a value twice');
      for (const v of values) {
        if (!rank.has(v)) throw new RangeError(`krippendorffAlpha: ${JSON.stringify(v)} is not in options.order`);
      }
      values.sort((x, y) => (rank.get(x) as number) - (rank.get(y) as number));
    } else {
      const byValue = values.every((v) => typeof v === 'number' || NUMERIC_TEXT.test(v));
      values.sort((x, y) =>
        byValue
          ? Number(x) - Number(y) || naturalCompare(String(x), String(y)) // ('1' and '1.0' apart, in a fixed order)
          : naturalCompare(String(x), String(y)),
      );
    }
    values.forEach((v, i) => index.set(v, i));
  }
  const V = values.length;

  // Coincidence matrix: o[c][k] = Σᵤ (number of c–k pairs in unit u) / (mᵤ − 1).
  const o: number[][] = Array.from({ length: V }, () => new Array<number>(V).fill(0));
  const unitCounts = new Map<number, number>();
  for (let u = 0; u < units; u++) {
    unitCounts.clear();
    let m = 0;
    for (let c = 0; c < coders; c++) {
      const v = (data[c] as readonly (number | string | null)[])[u];
      if (v === null || v === undefined) continue;
      const i = index.get(v) as number;
      unitCounts.set(i, (unitCounts.get(i) ?? 0) + 1);
      m++;
    }
    if (m < 2) continue;
    for (const [i, ni] of unitCounts) {
      const oi = o[i] as number[];
      for (const [k, nk] of unitCounts) {
        const pairs = i === k ? ni * (ni - 1) : ni * nk;
        oi[k] = (oi[k] as number) + pairs / (m - 1);
      }
    }
  }

  // Marginals n_c and total n (number of pairable values).
  const marginals = o.map((row) => row.reduce((s, x) => s + x, 0));
  const n = marginals.reduce((s, x) => s + x, 0);
  if (n < 2) throw new RangeError('krippendorffAlpha: no unit has 2 or more values');

  // δ² for each pair of value indexes.
  let delta: (i: number, k: number) => number;
  if (level === 'nominal') {
    delta = (i, k) => (i === k ? 0 : 1);
  } else if (level === 'interval') {
    delta = (i, k) => ((values[i] as number) - (values[k] as number)) ** 2;
  } else if (level === 'ratio') {
    delta = (i, k) => {
      const x = values[i] as number;
      const y = values[k] as number;
      return x + y === 0 ? 0 : ((x - y) / (x + y)) ** 2;
    };
  } else {
    // cumulative[g] = n_0 + … + n_{g−1}, so Σ_{g=i..k} n_g = cumulative[k + 1] − cumulative[i].
    const cumulative = [0];
    for (const m of marginals) cumulative.push((cumulative[cumulative.length - 1] as number) + m);
    delta = (i, k) => {
      if (i === k) return 0;
      const lo = Math.min(i, k);
      const hi = Math.max(i, k);
      const span =
        (cumulative[hi + 1] as number) -
        (cumulative[lo] as number) -
        ((marginals[i] as number) + (marginals[k] as number)) / 2;
      return span * span;
    };
  }

  // α = 1 − (n − 1) Σ o_ck δ²_ck / Σ n_c n_k δ²_ck
  let observed = 0;
  let expected = 0;
  for (let i = 0; i < V; i++) {
    const oi = o[i] as number[];
    const ni = marginals[i] as number;
    for (let k = 0; k < V; k++) {
      if (i === k) continue; // δ²(c, c) = 0 for every level
      const d = delta(i, k);
      observed += (oi[k] as number) * d;
      expected += ni * (marginals[k] as number) * d;
    }
  }
  if (expected === 0) return observed === 0 ? 1 : 0;
  return 1 - ((n - 1) * observed) / expected;
}

// ---------------------------------------------------------------------------------------------
// Span agreement
// ---------------------------------------------------------------------------------------------

/** A labelled character range, `start` inclusive and `end` exclusive. */
export interface SpanLike {
  start: number;
  end: number;
  label?: string;
}

export interface SpanAgreementOptions {
  /** `'exact'` (default): same start and end. `'overlap'`: the ranges intersect. */
  mode?: 'exact' | 'overlap';
  /** Also require equal labels (default `true`). Two missing labels are equal. */
  matchLabel?: boolean;
}

export interface SpanAgreementResult {
  precision: number;
  recall: number;
  f1: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
}

function checkSpans(spans: readonly SpanLike[], which: string): void {
  spans.forEach((s, i) => {
    if (!Number.isFinite(s.start) || !Number.isFinite(s.end) || s.end < s.start) {
      throw new RangeError(
        `spanAgreement: ${which}[${i}] has invalid range ${String(s.start)}..${String(s.end)}`,
      );
    }
  });
}

/** Overlap length of two half-open ranges (≤ 0 when they do not intersect). */
function overlapLength(a: SpanLike, b: SpanLike): number {
  return Math.min(a.end, b.end) - Math.max(a.start, b.start);
}

/** First index in `sorted` (ascending by start) whose start is ≥ `value`. */
function lowerBoundByStart(sorted: readonly SpanLike[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as SpanLike).start < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function countExactMatches(
  reference: readonly SpanLike[],
  candidate: readonly SpanLike[],
  matchLabel: boolean,
): number {
  // Multiset intersection: duplicates on one side can each match one duplicate on the other.
  const key = (s: SpanLike) =>
    JSON.stringify(matchLabel ? [s.start, s.end, s.label ?? null] : [s.start, s.end]);
  const available = new Map<string, number>();
  for (const s of candidate) available.set(key(s), (available.get(key(s)) ?? 0) + 1);
  let matched = 0;
  for (const s of reference) {
    const k = key(s);
    const left = available.get(k) ?? 0;
    if (left > 0) {
      available.set(k, left - 1);
      matched++;
    }
  }
  return matched;
}

function countOverlapMatches(
  reference: readonly SpanLike[],
  candidate: readonly SpanLike[],
  matchLabel: boolean,
): number {
  // Candidates sorted by start; a candidate can only intersect reference r if its start lies in
  // [r.start − longest candidate, r.end], which bounds the scan with two binary searches.
  const order = candidate
    .map((_, j) => j)
    .sort((x, y) => (candidate[x] as SpanLike).start - (candidate[y] as SpanLike).start);
  const sorted = order.map((j) => candidate[j] as SpanLike);
  const longest = sorted.reduce((m, s) => Math.max(m, s.end - s.start), 0);

  // Which candidates each reference span may be paired with.
  const edges: number[][] = reference.map((r) => {
    const partners: number[] = [];
    const from = lowerBoundByStart(sorted, r.start - longest);
    for (let p = from; p < sorted.length; p++) {
      const c = sorted[p] as SpanLike;
      if (c.start > r.end) break;
      if (matchLabel && (r.label ?? null) !== (c.label ?? null)) continue;
      // Identical ranges always match, which covers identical zero-length spans.
      if (overlapLength(r, c) > 0 || (r.start === c.start && r.end === c.end)) partners.push(order[p] as number);
    }
    return partners;
  });
  // One-to-one, as many pairs as can be: a maximum matching, whatever order the spans came in
  // (taking the largest overlaps first can leave two spans unmatched that could each have had one).
  return maximumMatching(edges, candidate.length);
}

/**
 * The size of a largest matching of left nodes 0…edges.length − 1 to right nodes
 * 0…rightCount − 1 along `edges[left]` (Hopcroft–Karp: O(E√V); its searches iterative, so a
 * long chain of overlapping spans cannot overflow the stack).
 */
function maximumMatching(edges: readonly (readonly number[])[], rightCount: number): number {
  const left = edges.length;
  const NONE = -1;
  const FAR = Number.MAX_SAFE_INTEGER;
  const partnerOfLeft = new Array<number>(left).fill(NONE);
  const partnerOfRight = new Array<number>(rightCount).fill(NONE);
  const layer = new Array<number>(left).fill(FAR);
  const nextEdge = new Array<number>(left).fill(0);
  // Layers by breadth-first search from the free left nodes; true if a free right node is reached.
  const layered = (): boolean => {
    const queue: number[] = [];
    for (let l = 0; l < left; l++) {
      layer[l] = partnerOfLeft[l] === NONE ? 0 : FAR;
      if (layer[l] === 0) queue.push(l);
    }
    let reachesFree = false;
    for (let head = 0; head < queue.length; head++) {
      const l = queue[head] as number;
      for (const r of edges[l] as readonly number[]) {
        const next = partnerOfRight[r] as number;
        if (next === NONE) reachesFree = true;
        else if (layer[next] === FAR) {
          layer[next] = (layer[l] as number) + 1;
          queue.push(next);
        }
      }
    }
    return reachesFree;
  };
  // A path from `root` down the layers to a free right node, taken (flipped) if found.
  const augment = (root: number): boolean => {
    const path: number[] = [root];
    const via: number[] = [];
    while (path.length > 0) {
      const l = path[path.length - 1] as number;
      const adjacent = edges[l] as readonly number[];
      if ((nextEdge[l] as number) >= adjacent.length) {
        layer[l] = FAR; // a dead end for this phase
        path.pop();
        via.pop();
        continue;
      }
      const r = adjacent[nextEdge[l] as number] as number;
      nextEdge[l] = (nextEdge[l] as number) + 1;
      const next = partnerOfRight[r] as number;
      if (next === NONE) {
        via.push(r);
        for (let i = 0; i < path.length; i++) {
          partnerOfLeft[path[i] as number] = via[i] as number;
          partnerOfRight[via[i] as number] = path[i] as number;
        }
        return true;
      }
      if (layer[next] === (layer[l] as number) + 1) {
        via.push(r);
        path.push(next);
      }
    }
    return false;
  };
  let matched = 0;
  while (layered()) {
    nextEdge.fill(0);
    for (let l = 0; l < left; l++) if (partnerOfLeft[l] === NONE && augment(l)) matched++;
  }
  return matched;
}

/**
 * Span-level agreement of a candidate annotation set against a reference one, as
 * precision / recall / F1 (swap the arguments to swap precision and recall; F1 is symmetric).
 *
 * - `mode: 'exact'` (default): a candidate matches a reference span with the same start and end.
 * - `mode: 'overlap'`: spans match when their half-open ranges intersect by at least one unit
 *   (adjacent spans such as 0..5 and 5..8 do not; identical ranges, including identical
 *   zero-length spans, always do). Matching is one-to-one, each span matched at most once, and
 *   as large as it can be (a maximum matching), so the order of the spans changes nothing.
 * - `matchLabel` (default `true`): matching spans must also carry equal labels (a missing label
 *   only equals a missing label).
 *
 * Scores: precision = TP / |candidate|, recall = TP / |reference|, F1 = 2TP / (2TP + FP + FN).
 * When both sets are empty all three are 1. When only one set is empty the scores over the empty
 * set are 0 (e.g. no candidates against a non-empty reference: precision = recall = f1 = 0).
 * Spans need finite numbers with start ≤ end (else `RangeError`).
 *
 * @example
 * spanAgreement(
 *   [{ start: 0, end: 5, label: 'PER' }, { start: 10, end: 15, label: 'LOC' }],
 *   [{ start: 0, end: 4, label: 'PER' }],
 *   { mode: 'overlap' },
 * ); // { precision: 1, recall: 0.5, f1: 0.667, truePositives: 1, falsePositives: 0, falseNegatives: 1 }
 */
export function spanAgreement(
  reference: readonly SpanLike[],
  candidate: readonly SpanLike[],
  options: SpanAgreementOptions = {},
): SpanAgreementResult {
  const mode = options.mode ?? 'exact';
  const matchLabel = options.matchLabel ?? true;
  if (mode !== 'exact' && mode !== 'overlap') {
    throw new RangeError(`spanAgreement: unknown mode ${String(mode)}`);
  }
  checkSpans(reference, 'reference');
  checkSpans(candidate, 'candidate');

  const tp =
    mode === 'exact'
      ? countExactMatches(reference, candidate, matchLabel)
      : countOverlapMatches(reference, candidate, matchLabel);
  const fp = candidate.length - tp;
  const fn = reference.length - tp;
  const bothEmpty = reference.length === 0 && candidate.length === 0;
  return {
    precision: candidate.length === 0 ? (bothEmpty ? 1 : 0) : tp / candidate.length,
    recall: reference.length === 0 ? (bothEmpty ? 1 : 0) : tp / reference.length,
    f1: bothEmpty ? 1 : (2 * tp) / (2 * tp + fp + fn),
    truePositives: tp,
    falsePositives: fp,
    falseNegatives: fn,
  };
}

/**
 * {@link spanAgreement} with exact boundary matching and labels compared.
 *
 * @example
 * exactSpanAgreement([{ start: 0, end: 3 }], [{ start: 0, end: 3 }]).f1; // 1
 */
export function exactSpanAgreement(
  reference: readonly SpanLike[],
  candidate: readonly SpanLike[],
): SpanAgreementResult {
  return spanAgreement(reference, candidate, { mode: 'exact', matchLabel: true });
}

/**
 * {@link spanAgreement} with overlap matching and labels compared.
 *
 * @example
 * overlapSpanAgreement([{ start: 0, end: 5 }], [{ start: 3, end: 8 }]).f1; // 1
 */
export function overlapSpanAgreement(
  reference: readonly SpanLike[],
  candidate: readonly SpanLike[],
): SpanAgreementResult {
  return spanAgreement(reference, candidate, { mode: 'overlap', matchLabel: true });
}
