/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`) over a time window: self time by area
 * (package, our source file, node internals, GC), busiest functions (self and inclusive), and
 * the longest stretches in which the event loop never went idle (what stalled every socket).
 *
 * Window bounds are CLOCK_MONOTONIC microseconds (`process.hrtime.bigint() / 1000n`), the clock
 * V8 stamps profiles with, so the bench can pass its own timed window to the server's profile.
 */
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Ranked {
  name: string;
  ms: number;
}

export interface ProfileSummary {
  windowMs: number;
  busyMs: number;
  areas: Ranked[];
  selfTop: Ranked[];
  /** Inclusive time of frames in our code and in packages (node internals left out). */
  inclusiveTop: Ranked[];
  /** Longest runs of consecutive non-idle samples, each with its busiest frames. */
  stalls: Array<{ ms: number; atMs: number; top: Ranked[] }>;
}

export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);

/** Which part of the code a URL belongs to: an npm package, one of our files, or Node itself. */
function area(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const ours = /\/((?:server|shared)\/src\/.*)$/.exec(url);
  if (ours) return ours[1]!;
  if (url.startsWith('node:')) return 'node internals';
  if (url.startsWith('wasm://')) return 'wasm (PGlite)';
  return url;
}

function frameName(f: CallFrame): string {
  const a = area(f.url, f.functionName);
  return `${f.functionName || '(anonymous)'}  ${a}${f.url && !f.url.startsWith('wasm') ? ':' + (f.lineNumber + 1) : ''}`;
}

const interesting = (f: CallFrame) => f.url !== '' && !f.url.startsWith('node:') && !f.url.startsWith('wasm://') && f.functionName !== '';

function ranked(m: Map<string, number>, top: number): Ranked[] {
  return [...m.entries()]
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000 }));
}

export async function summarizeProfile(file: string, window: { fromUs: number; toUs: number } | null, top = 12): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** Distinct interesting frames on a sample's stack, innermost first. */
  const stackCache = new Map<number, string[]>();
  const stackOf = (id: number): string[] => {
    let s = stackCache.get(id);
    if (!s) {
      const seen = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = byId.get(at)!.callFrame;
        if (interesting(f)) seen.add(frameName(f));
      }
      stackCache.set(id, (s = [...seen]));
    }
    return s;
  };

  const areas = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const stretches: Array<{ us: number; atUs: number; samples: Array<[number, number]> }> = [];
  let current: { us: number; atUs: number; samples: Array<[number, number]> } | null = null;
  let windowUs = 0;
  let busyUs = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    windowUs += dt;
    const id = profile.samples[i]!;
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') {
      if (current) stretches.push(current);
      current = null;
      continue;
    }
    busyUs += dt;
    (current ??= { us: 0, atUs: t, samples: [] }).us += dt;
    current.samples.push([id, dt]);
    const a = area(f.url, f.functionName);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    self.set(frameName(f), (self.get(frameName(f)) ?? 0) + dt);
    for (const name of stackOf(id)) inclusive.set(name, (inclusive.get(name) ?? 0) + dt);
  }
  if (current) stretches.push(current);

  const stalls = stretches
    .sort((x, y) => y.us - x.us)
    .slice(0, 3)
    .map((s) => {
      const m = new Map<string, number>();
      for (const [id, dt] of s.samples) for (const name of stackOf(id)) m.set(name, (m.get(name) ?? 0) + dt);
      return { ms: s.us / 1000, atMs: (s.atUs - (window?.fromUs ?? profile.startTime)) / 1000, top: ranked(m, 6) };
    });
  return {
    windowMs: windowUs / 1000,
    busyMs: busyUs / 1000,
    areas: ranked(areas, top),
    selfTop: ranked(self, top),
    inclusiveTop: ranked(inclusive, top),
    stalls,
  };
}
