import { describe, it, expect } from 'vitest';
import {
  cohenKappa,
  exactSpanAgreement,
  fleissKappa,
  krippendorffAlpha,
  overlapSpanAgreement,
  spanAgreement,
  type SpanLike,
} from './agreement.ts';

/** Expands a 2×2 contingency table into two label arrays. */
function fromTable(yy: number, yn: number, ny: number, nn: number): [string[], string[]] {
  const a: string[] = [];
  const b: string[] = [];
  const push = (x: string, y: string, times: number) => {
    for (let i = 0; i < times; i++) {
      a.push(x);
      b.push(y);
    }
  };
  push('yes', 'yes', yy);
  push('yes', 'no', yn);
  push('no', 'yes', ny);
  push('no', 'no', nn);
  return [a, b];
}

describe('cohenKappa', () => {
  it('matches the textbook 2×2 example', () => {
    // 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
    // pₒ = (20 + 15) / 50 = 0.7
    // A says yes 25/50 = 0.5, B says yes 30/50 = 0.6
    // pₑ = 0.5·0.6 + 0.5·0.4 = 0.5
    // κ = (0.7 − 0.5) / (1 − 0.5) = 0.4
    const [a, b] = fromTable(20, 5, 10, 15);
    expect(cohenKappa(a, b)).toBeCloseTo(0.4, 12);
  });

  it('handles more than two categories and numeric labels', () => {
    // a = 1 1 2 2 3 3, b = 1 1 2 3 3 3: pₒ = 5/6
    // marginals a: 1→2, 2→2, 3→2; b: 1→2, 2→1, 3→3 (out of 6)
    // pₑ = (2·2 + 2·1 + 2·3) / 36 = 12/36 = 1/3
    // κ = (5/6 − 1/3) / (2/3) = 0.75
    expect(cohenKappa([1, 1, 2, 2, 3, 3], [1, 1, 2, 3, 3, 3])).toBeCloseTo(0.75, 12);
  });

  it('is 1 for perfect agreement and can go negative', () => {
    expect(cohenKappa(['a', 'b', 'c'], ['a', 'b', 'c'])).toBe(1);
    // Always-opposite binary coders: pₒ = 0, pₑ = 0.5 ⇒ κ = −1
    expect(cohenKappa(['y', 'n', 'y', 'n'], ['n', 'y', 'n', 'y'])).toBeCloseTo(-1, 12);
  });

  it('treats number 1 and string "1" as different labels', () => {
    expect(cohenKappa([1, 2], ['1', '2'])).toBeLessThan(1);
  });

  it('returns 1 rather than NaN when expected agreement is 1', () => {
    // Both coders always say 'x': pₑ = 1, pₒ = 1.
    expect(cohenKappa(['x', 'x', 'x'], ['x', 'x', 'x'])).toBe(1);
  });

  it('rejects arrays of different length or no items', () => {
    expect(() => cohenKappa(['a'], ['a', 'b'])).toThrow(RangeError);
    expect(() => cohenKappa([], [])).toThrow(RangeError);
  });

  it('rejects labels that are neither strings nor finite numbers (NaN would never agree with itself)', () => {
    expect(() => cohenKappa(['a', Number.NaN], ['a', Number.NaN])).toThrow(TypeError);
    expect(() => cohenKappa(['a', Infinity], ['a', 'b'])).toThrow(TypeError);
    expect(() => cohenKappa(['a', null as unknown as string], ['a', 'b'])).toThrow(TypeError);
  });
});

describe('fleissKappa', () => {
  // Fleiss (1971) worked example as reproduced on Wikipedia: 10 subjects, 5 categories,
  // 14 raters per subject.
  const fleiss1971 = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
  ];

  it('matches the classic Fleiss (1971) example, κ ≈ 0.210', () => {
    // Column totals 20, 28, 39, 21, 32 of 140 ratings:
    //   pⱼ = 1/7, 1/5, 39/140, 3/20, 8/35;  P̄ₑ = Σ pⱼ² = 0.212755…
    // Pᵢ = (Σⱼ nᵢⱼ² − 14) / (14·13), e.g. P₁ = (196 − 14) / 182 = 1, P₂ = (60 − 14) / 182 = 0.253
    //   P̄ = Σ Pᵢ / 10 = 0.378022…
    // κ = (0.378022 − 0.212755) / (1 − 0.212755) = 4211/20059 = 0.209931
    // (values cross-checked with an independent exact-fraction Python computation)
    expect(fleissKappa(fleiss1971)).toBeCloseTo(4211 / 20059, 12);
    expect(fleissKappa(fleiss1971)).toBeCloseTo(0.21, 3);
  });

  it('matches a small hand-computed example', () => {
    // n = 3; P = 1, 1, (4 + 1 − 3)/6 = 1/3 ⇒ P̄ = 7/9
    // p = 5/9, 4/9 ⇒ P̄ₑ = 41/81;  κ = (7/9 − 41/81) / (40/81) = 22/40 = 0.55
    expect(fleissKappa([[3, 0], [0, 3], [2, 1]])).toBeCloseTo(0.55, 12);
  });

  it('is 1 for perfect agreement, including the all-one-category degenerate case', () => {
    expect(fleissKappa([[4, 0, 0], [0, 4, 0], [0, 0, 4]])).toBe(1);
    expect(fleissKappa([[3, 0], [3, 0]])).toBe(1);
  });

  it('rejects malformed matrices', () => {
    expect(() => fleissKappa([])).toThrow(RangeError);
    expect(() => fleissKappa([[]])).toThrow(RangeError);
    expect(() => fleissKappa([[1, 0], [0, 1]])).toThrow(RangeError); // only one rater
    expect(() => fleissKappa([[2, 1], [1, 1]])).toThrow(RangeError); // unequal rater counts
    expect(() => fleissKappa([[2, 1], [3]])).toThrow(RangeError); // ragged
    expect(() => fleissKappa([[2, -1, 2], [1, 1, 1]])).toThrow(RangeError); // negative
    expect(() => fleissKappa([[1.5, 1.5], [2, 1]])).toThrow(RangeError); // fractional
  });
});

describe('krippendorffAlpha', () => {
  // Reliability data from Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011):
  // 4 observers × 12 units, null = missing. Unit 12 has a single value and is not pairable,
  // leaving n = 40 pairable values.
  const _ = null;
  const paper = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
  ];
  // Expected values computed independently with exact fractions in Python (coincidence matrix
  // o_ck = Σᵤ n_uc·n_uk/(mᵤ − 1), α = 1 − (n − 1)·Σ o_ck δ²_ck / Σ n_c n_k δ²_ck):
  //   marginals n_1..n_5 = 9, 13, 10, 5, 3
  //   nominal:  Dₒ·n = 8,      α = 113/152             = 0.743421…  (paper: 0.743)
  //   ordinal:  Dₒ·n = 1891,   α = 108577/133160       = 0.815388…  (paper: 0.815)
  //   interval: Dₒ·n = 52/3,   α = 951/1120            = 0.849107…  (paper: 0.849)
  //   ratio:                   α = 18222619/22852465   = 0.797403…  (paper: 0.797)

  it('reproduces the paper values for every level', () => {
    expect(krippendorffAlpha(paper)).toBeCloseTo(113 / 152, 12);
    expect(krippendorffAlpha(paper, 'nominal')).toBeCloseTo(0.743, 3);
    expect(krippendorffAlpha(paper, 'ordinal')).toBeCloseTo(108577 / 133160, 12);
    expect(krippendorffAlpha(paper, 'ordinal')).toBeCloseTo(0.815, 3);
    expect(krippendorffAlpha(paper, 'interval')).toBeCloseTo(951 / 1120, 12);
    expect(krippendorffAlpha(paper, 'interval')).toBeCloseTo(0.849, 3);
    expect(krippendorffAlpha(paper, 'ratio')).toBeCloseTo(18222619 / 22852465, 12);
    expect(krippendorffAlpha(paper, 'ratio')).toBeCloseTo(0.797, 3);
  });

  it('reproduces the paper binary two-observer example, α = 0.095', () => {
    // A: 0 1 0 0 0 0 0 0 1 0, B: 1 1 1 0 0 1 0 0 0 0
    // o_00 = 10, o_01 = o_10 = 4, o_11 = 2; n_0 = 14, n_1 = 6, n = 20
    // α = 1 − (n − 1)·o_01 / (n_0·n_1) = 1 − 19·4 / 84 = 2/21 = 0.0952
    const a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0];
    const b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0];
    expect(krippendorffAlpha([a, b])).toBeCloseTo(2 / 21, 12);
  });

  it('ordinal depends only on rank order; string values sort naturally', () => {
    // Monotone recoding 1,2,3,4,5 → 1,10,11,100,1000 keeps ordinal α (interval α changes).
    const recode = new Map([[1, 1], [2, 10], [3, 11], [4, 100], [5, 1000]]);
    const recoded = paper.map((row) => row.map((v) => (v === null ? null : recode.get(v)!)));
    expect(krippendorffAlpha(recoded, 'ordinal')).toBeCloseTo(108577 / 133160, 12);
    expect(krippendorffAlpha(recoded, 'interval')).not.toBeCloseTo(951 / 1120, 3);
    // Same ranks as strings in natural order ('L10' after 'L2', unlike plain string order).
    const names = new Map([[1, 'L1'], [2, 'L2'], [3, 'L10'], [4, 'L11'], [5, 'L100']]);
    const named = paper.map((row) => row.map((v) => (v === null ? null : names.get(v)!)));
    expect(krippendorffAlpha(named, 'ordinal')).toBeCloseTo(108577 / 133160, 12);
    // Strings are plain categories at the nominal level.
    expect(krippendorffAlpha(named, 'nominal')).toBeCloseTo(113 / 152, 12);
  });

  it('ranks ordinal strings that are numbers by their value, negatives and decimals too', () => {
    expect(krippendorffAlpha([[-2, -1], [0, -2]], 'ordinal')).toBeCloseTo(-5 / 12, 12);
    expect(krippendorffAlpha([['-2', '-1'], ['0', '-2']], 'ordinal')).toBeCloseTo(-5 / 12, 12);
    expect(krippendorffAlpha([['1.25', '1.25'], ['1.5', '2']], 'ordinal')).toBeCloseTo(krippendorffAlpha([[1.25, 1.25], [1.5, 2]], 'ordinal'), 12);
    // The paper's data as text ranks as its numbers.
    const asText = paper.map((row) => row.map((v) => (v === null ? null : String(v))));
    expect(krippendorffAlpha(asText, 'ordinal')).toBeCloseTo(108577 / 133160, 12);
  });

  it('ranks ordinal values in the order given, such as words', () => {
    const words = new Map([[1, 'none'], [2, 'low'], [3, 'medium'], [4, 'high'], [5, 'extreme']]);
    const worded = paper.map((row) => row.map((v) => (v === null ? null : words.get(v)!)));
    const order = ['none', 'low', 'medium', 'high', 'extreme'];
    expect(krippendorffAlpha(worded, 'ordinal', { order })).toBeCloseTo(108577 / 133160, 12);
    expect(krippendorffAlpha(worded, 'ordinal')).not.toBeCloseTo(108577 / 133160, 3); // (alphabetical)
    expect(() => krippendorffAlpha(worded, 'ordinal', { order: order.slice(1) })).toThrow(RangeError);
    expect(() => krippendorffAlpha(worded, 'ordinal', { order: [...order, 'low'] })).toThrow(RangeError);
  });

  it('hand-computed small nominal example with a dropped unit', () => {
    // Units (a,a), (a,b), (b,b), (b) — the last is dropped.
    // o_aa = 2, o_ab = o_ba = 1, o_bb = 2; n_a = n_b = 3, n = 6
    // α = 1 − 5·2 / (2·3·3) = 4/9
    expect(
      krippendorffAlpha([
        ['a', 'a', 'b', null],
        ['a', 'b', 'b', 'b'],
      ]),
    ).toBeCloseTo(4 / 9, 12);
  });

  it('is 1 for perfect agreement at every level', () => {
    const data = [
      [1, 2, 3, null],
      [1, 2, 3, 4],
      [null, 2, 3, 4],
    ];
    for (const level of ['nominal', 'ordinal', 'interval', 'ratio'] as const) {
      expect(krippendorffAlpha(data, level)).toBe(1);
    }
  });

  it('returns 1 when all pairable values are identical (no expected disagreement)', () => {
    expect(krippendorffAlpha([[7, 7, null], [7, 7, 3]], 'interval')).toBe(1);
    expect(krippendorffAlpha([['x', 'x'], ['x', 'x']])).toBe(1);
  });

  it('goes negative for systematic disagreement', () => {
    expect(krippendorffAlpha([[1, 2, 1, 2], [2, 1, 2, 1]])).toBeLessThan(0);
  });

  it('handles ratio data containing zero', () => {
    // Units (0,0) and (0,1): o_00 = 2, o_01 = o_10 = 1; n_0 = 3, n_1 = 1, n = 4.
    // δ²(0,1) = ((0 − 1)/(0 + 1))² = 1, so α = 1 − 3·2 / (2·3·1) = 0.
    expect(krippendorffAlpha([[0, 0], [0, 1]], 'ratio')).toBeCloseTo(0, 12);
  });

  it('rejects bad input', () => {
    expect(() => krippendorffAlpha([])).toThrow(RangeError);
    expect(() => krippendorffAlpha([[1, 2], [1]])).toThrow(RangeError); // ragged
    expect(() => krippendorffAlpha([[1, null], [null, 2]])).toThrow(RangeError); // nothing pairable
    expect(() => krippendorffAlpha([[1, 2]])).toThrow(RangeError); // a single coder
    expect(() => krippendorffAlpha([['a', 'b'], ['a', 'c']], 'interval')).toThrow(TypeError);
    expect(() => krippendorffAlpha([['a', 'b'], ['a', 'c']], 'ratio')).toThrow(TypeError);
    expect(() => krippendorffAlpha([[1, 'b'], [1, 'c']], 'ordinal')).toThrow(TypeError);
    expect(() => krippendorffAlpha([[1, Number.NaN], [1, 2]], 'interval')).toThrow(TypeError);
    expect(() => krippendorffAlpha([[-1, 2], [1, 2]], 'ratio')).toThrow(RangeError);
    expect(() =>
      krippendorffAlpha([[1, 2], [1, 2]], 'bogus' as unknown as 'nominal'),
    ).toThrow(RangeError);
  });
});

describe('spanAgreement', () => {
  const s = (start: number, end: number, label?: string): SpanLike =>
    label === undefined ? { start, end } : { start, end, label };

  it('empty vs empty is perfect agreement', () => {
    expect(spanAgreement([], [])).toEqual({
      precision: 1,
      recall: 1,
      f1: 1,
      truePositives: 0,
      falsePositives: 0,
      falseNegatives: 0,
    });
  });

  it('one side empty scores 0', () => {
    expect(spanAgreement([s(0, 3, 'A')], [])).toMatchObject({
      precision: 0,
      recall: 0,
      f1: 0,
      falseNegatives: 1,
    });
    expect(spanAgreement([], [s(0, 3, 'A')])).toMatchObject({
      precision: 0,
      recall: 0,
      f1: 0,
      falsePositives: 1,
    });
  });

  it('exact mode requires identical boundaries and, by default, labels', () => {
    const ref = [s(0, 5, 'PER'), s(10, 15, 'LOC'), s(20, 25, 'ORG')];
    const cand = [s(0, 5, 'PER'), s(10, 15, 'ORG'), s(21, 25, 'ORG'), s(30, 31, 'PER')];
    // TP = 1 (0–5 PER); FP = 3; FN = 2 → P = 1/4, R = 1/3, F1 = 2/(2 + 3 + 2) = 2/7
    const r = exactSpanAgreement(ref, cand);
    expect(r).toMatchObject({ truePositives: 1, falsePositives: 3, falseNegatives: 2 });
    expect(r.precision).toBeCloseTo(1 / 4, 12);
    expect(r.recall).toBeCloseTo(1 / 3, 12);
    expect(r.f1).toBeCloseTo(2 / 7, 12);
    // Ignoring labels also matches 10–15: TP = 2, P = 2/4, R = 2/3, F1 = 4/(4 + 2 + 1) = 4/7
    const u = spanAgreement(ref, cand, { matchLabel: false });
    expect(u.truePositives).toBe(2);
    expect(u.f1).toBeCloseTo(4 / 7, 12);
  });

  it('exact mode matches duplicates one-to-one', () => {
    // Two identical reference spans, one candidate: TP = 1, FN = 1.
    const r = exactSpanAgreement([s(0, 2, 'A'), s(0, 2, 'A')], [s(0, 2, 'A')]);
    expect(r).toMatchObject({ truePositives: 1, falsePositives: 0, falseNegatives: 1 });
    expect(r.precision).toBe(1);
    expect(r.recall).toBe(0.5);
  });

  it('missing labels only equal missing labels', () => {
    expect(exactSpanAgreement([s(0, 2)], [s(0, 2)]).f1).toBe(1);
    expect(exactSpanAgreement([s(0, 2)], [s(0, 2, 'A')]).f1).toBe(0);
  });

  it('overlap mode counts intersecting spans, not adjacent ones', () => {
    const ref = [s(0, 5, 'A'), s(10, 15, 'A')];
    const cand = [s(3, 8, 'A'), s(15, 20, 'A')]; // 15–20 only touches 10–15
    const r = overlapSpanAgreement(ref, cand);
    expect(r).toMatchObject({ truePositives: 1, falsePositives: 1, falseNegatives: 1 });
    expect(r.f1).toBeCloseTo(0.5, 12);
    // Exact mode finds nothing here.
    expect(exactSpanAgreement(ref, cand).truePositives).toBe(0);
  });

  it('overlap mode with labels requires equal labels', () => {
    const r = overlapSpanAgreement([s(0, 5, 'A')], [s(2, 4, 'B')]);
    expect(r.truePositives).toBe(0);
    expect(spanAgreement([s(0, 5, 'A')], [s(2, 4, 'B')], { mode: 'overlap', matchLabel: false }).truePositives).toBe(1);
  });

  it('nested spans match one-to-one', () => {
    // Reference: outer 0–20 and inner 5–8. Candidate: 0–18 and 6–8.
    // Overlaps: outer/0–18 = 18, outer/6–8 = 2, inner/0–18 = 3, inner/6–8 = 2: every span has a partner, TP = 2.
    const r = overlapSpanAgreement(
      [s(0, 20, 'X'), s(5, 8, 'X')],
      [s(0, 18, 'X'), s(6, 8, 'X')],
    );
    expect(r).toMatchObject({ truePositives: 2, falsePositives: 0, falseNegatives: 0, f1: 1 });
  });

  it('one long candidate covering two reference spans matches only one', () => {
    // Candidate 0–30 overlaps 0–10 by 10 and 12–30 by 18: it is matched to one of them.
    const ref = [s(0, 10), s(12, 30)];
    const r = spanAgreement(ref, [s(0, 30)], { mode: 'overlap' });
    expect(r).toMatchObject({ truePositives: 1, falsePositives: 0, falseNegatives: 1 });
    expect(r.precision).toBe(1);
    expect(r.recall).toBe(0.5);
    expect(r.f1).toBeCloseTo(2 / 3, 12);
  });

  it('pairs crossing candidates one each, and two candidates for one reference once', () => {
    // Reference 0–10 and 8–20; candidates 0–9 and 9–20.
    // Overlaps: (0–10, 0–9) = 9, (0–10, 9–20) = 1, (8–20, 0–9) = 1, (8–20, 9–20) = 11: TP = 2.
    const r = overlapSpanAgreement([s(0, 10), s(8, 20)], [s(0, 9), s(9, 20)]);
    expect(r.truePositives).toBe(2);
    // Two candidates competing for one reference: only one is a true positive.
    const r2 = overlapSpanAgreement([s(0, 10)], [s(0, 3), s(2, 10)]);
    expect(r2).toMatchObject({ truePositives: 1, falsePositives: 1, falseNegatives: 0 });
  });

  it('identical zero-length spans match in both modes', () => {
    expect(exactSpanAgreement([s(4, 4, 'P')], [s(4, 4, 'P')]).f1).toBe(1);
    expect(overlapSpanAgreement([s(4, 4, 'P')], [s(4, 4, 'P')]).f1).toBe(1);
    expect(overlapSpanAgreement([s(4, 4, 'P')], [s(0, 10, 'P')]).truePositives).toBe(0);
  });

  it('is order-independent', () => {
    const ref = [s(30, 40, 'B'), s(0, 10, 'A'), s(12, 20, 'A')];
    const cand = [s(13, 19, 'A'), s(35, 45, 'B'), s(1, 9, 'A')];
    const r1 = overlapSpanAgreement(ref, cand);
    const r2 = overlapSpanAgreement([...ref].reverse(), [...cand].reverse());
    expect(r1).toEqual(r2);
    expect(r1.f1).toBe(1);
  });

  it('pairs as many spans as can be paired, where taking the largest overlap first would not', () => {
    // 5–10 overlaps 6–11 by 4 and 5–8 by 3; 8–10 overlaps only 6–11. Largest first would pair
    // 5–10 with 6–11 and leave the other two alone.
    const result = overlapSpanAgreement([s(8, 10), s(5, 10)], [s(6, 11), s(5, 8)]);
    expect(result).toMatchObject({ truePositives: 2, f1: 1 });
  });

  it('is order-independent where overlaps tie', () => {
    const ref = [s(4, 7), s(5, 8)];
    const cand = [s(3, 5), s(5, 6)];
    expect(overlapSpanAgreement(ref, cand).truePositives).toBe(2);
    expect(overlapSpanAgreement([...ref].reverse(), cand).truePositives).toBe(2);
    expect(overlapSpanAgreement(ref, [...cand].reverse()).truePositives).toBe(2);
  });

  it('matches as many as a search of every pairing finds, on random span sets', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * n); // (the high bits: an LCG's low ones repeat soon)
    };
    const spans = () =>
      Array.from({ length: random(7) }, () => {
        const start = random(12);
        return s(start, start + random(6), random(4) === 0 ? 'B' : 'A');
      });
    const overlaps = (r: SpanLike, c: SpanLike) =>
      r.label === c.label && (Math.min(r.end, c.end) > Math.max(r.start, c.start) || (r.start === c.start && r.end === c.end));
    /** The largest matching, by trying every partner (or none) for each reference span in turn. */
    const best = (ref: SpanLike[], cand: SpanLike[], used = new Set<number>()): number => {
      if (ref.length === 0) return 0;
      const [first, ...rest] = ref as [SpanLike, ...SpanLike[]];
      let most = best(rest, cand, used);
      cand.forEach((c, j) => {
        if (used.has(j) || !overlaps(first, c)) return;
        used.add(j);
        most = Math.max(most, 1 + best(rest, cand, used));
        used.delete(j);
      });
      return most;
    };
    for (let i = 0; i < 1_000; i++) {
      const ref = spans();
      const cand = spans();
      expect(overlapSpanAgreement(ref, cand).truePositives, JSON.stringify({ ref, cand })).toBe(best(ref, cand));
    }
  });

  it('rejects invalid spans and modes', () => {
    expect(() => spanAgreement([s(5, 3)], [])).toThrow(RangeError);
    expect(() => spanAgreement([], [s(0, Number.NaN)])).toThrow(RangeError);
    expect(() =>
      spanAgreement([], [], { mode: 'fuzzy' as unknown as 'exact' }),
    ).toThrow(RangeError);
  });
});
