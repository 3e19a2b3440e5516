/** Small numeric helpers for the sync benchmark: percentiles and fixed-width formatting. */

/** The q-quantile (0..1) of already sorted values, nearest-rank; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  return {
    samples: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

/** Rounds for the JSON summary (keeps it short and readable). */
export function round(n: number, digits = 2): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

/** A plain text table: first row is the header; columns after the first are right-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** Cumulative bucket counts of one Prometheus histogram: upper bound (seconds) → count. */
export type Buckets = Map<number, number>;

/** Reads a histogram's `_bucket` lines from Prometheus text. */
export function parseHistogram(text: string, name: string): Buckets {
  const buckets: Buckets = new Map();
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) buckets.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return buckets;
}

/** The sum of a counter's samples over all its labels in Prometheus text (0 when absent). */
export function counterTotal(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** What fell into each bucket between two snapshots: "≤5 ms 93.1%, ≤10 ms 5.0%, …". */
export function histogramDelta(before: Buckets, after: Buckets): { total: number; text: string } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  const parts: string[] = [];
  let below = 0;
  for (const le of bounds) {
    const cumulative = (after.get(le) ?? 0) - (before.get(le) ?? 0);
    const n = cumulative - below;
    below = cumulative;
    if (n === 0 || total === 0) continue;
    const label = le === Infinity ? `>${bounds[bounds.length - 2]! * 1000} ms` : `≤${le * 1000} ms`;
    parts.push(`${label} ${fmt((n / total) * 100, n / total < 0.001 ? 2 : 1)}%`);
  }
  return { total, text: parts.join(', ') };
}

/**
 * Watches the event loop with a 1 ms timer; `stop()` resolves the longest gap between its ticks
 * (the longest stretch in which the loop ran nothing), after one more tick has seen the last one.
 */
export function stallProbe(): { stop(): Promise<number> } {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 5));
      clearInterval(timer);
      return longest;
    },
  };
}
