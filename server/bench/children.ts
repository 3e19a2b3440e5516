/**
 * The servers under test, each in a child process of its own: ours (`server/src/main.ts`) and
 * the y-websocket 1.5.4 reference (`reference-server.ts`). Both listen on 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../test/ports.ts';

/** How our server is named in the results. */
export const OUR_SERVER_NAME = 'spanwise';
export const repoRoot = path.resolve(import.meta.dirname, '../..');
const HOST = '127.0.0.1';
/** Linux's USER_HZ; /proc/<pid>/stat counts CPU time in these ticks. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface ServerChild {
  name: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Database the child uses (ours only): "pglite (fresh temp dir)" or "postgres (BENCH_DATABASE_URL)". */
  database: string | null;
  /** Warn/error log lines (ours) or stderr lines (reference), the first few kept. */
  problems: { count: number; first: string[] };
  /** Whether it writes a CPU profile on exit. */
  profiled: boolean;
  /** CPU seconds (user + system) the child used so far; NaN without /proc. */
  cpuSeconds(): number;
  /** Ours only: the PGlite data directory (null on BENCH_DATABASE_URL's PostgreSQL). */
  dataDir: string | null;
  /** Ends the child with `signal` (SIGKILL after `timeoutMs`), leaving its temp files. */
  halt(signal: NodeJS.Signals, timeoutMs?: number): Promise<void>;
  /** Stops the child (SIGTERM, then SIGKILL after `timeoutMs`) and removes its temp files. */
  stop(timeoutMs?: number): Promise<void>;
  /** The CPU profile written on exit, when started with `cpuProfile`. */
  cpuProfilePath(): Promise<string | null>;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
/** Last resort: never leave a server or its data behind, whatever way the bench ends. */
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function readCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds every process on the machine used so far (all cores, from /proc/stat): with our
 * two children's own figures this tells how much other work competed for the cores.
 */
export function machineBusySeconds(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
    const busy = cpu.reduce((sum, v, i) => (i === 3 || i === 4 || i > 7 ? sum : sum + v), 0);
    return busy / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** The environment without anything that would point a child at another database or cluster. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'DEMO_PASSWORD', 'YPERSISTENCE', 'CALLBACK_URL', 'GC', 'NODE_OPTIONS']) delete env[name];
  return env;
}

interface SpawnOptions {
  name: string;
  script: string;
  env: NodeJS.ProcessEnv;
  port: number;
  readyPath: string;
  /** Whether a stdout/stderr line counts as a problem. */
  isProblem: (line: string, stream: 'stdout' | 'stderr') => boolean;
  nodeArgs?: string[];
  cleanup?: () => Promise<void>;
  database?: string | null;
  dataDir?: string | null;
  profileDir?: string | null;
  /** Appends every output line here, stamped with the bench's performance.now(). */
  outputFile?: string | null;
}

async function spawnServer(o: SpawnOptions): Promise<ServerChild> {
  const profileArgs = o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] : [];
  const child = spawn(process.execPath, [...profileArgs, ...(o.nodeArgs ?? []), '--import', 'tsx', o.script], {
    cwd: repoRoot,
    env: o.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const problems = { count: 0, first: [] as string[] };
  const problem = (line: string) => {
    problems.count++;
    if (problems.first.length < 5) problems.first.push(line.slice(0, 300));
  };
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      // A signal's end is the bench's doing; an exit code other than 0 is the server's.
      if (code !== null && code !== 0) problem(`exited with code ${code}`);
      resolve();
    }),
  );
  void exited.then(() => live.delete(child));
  // Written as a stream: this process times the clients, and must not block on a file.
  const outputFile = o.outputFile ? createWriteStream(o.outputFile, { flags: 'a' }) : null;
  void exited.then(() => outputFile?.end());
  const output: string[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    let buffered = '';
    child[stream].setEncoding('utf8');
    child[stream].on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        if (output.length < 50) output.push(line);
        outputFile?.write(`${performance.now().toFixed(1)} ${line}\n`);
        if (o.isProblem(line, stream)) problem(line);
      }
    });
  }

  const url = `http://${HOST}:${o.port}`;
  const deadline = Date.now() + 90_000;
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  for (;;) {
    if (exitedEarly) throw new Error(`${o.name} exited during start:\n${output.join('\n')}`);
    try {
      const res = await fetch(url + o.readyPath, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${o.name} did not start within 90 s:\n${output.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const halt = async (signal: NodeJS.Signals, timeoutMs = 20_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    }
  };
  let stopping: Promise<void> | null = null;
  return {
    name: o.name,
    url,
    database: o.database ?? null,
    dataDir: o.dataDir ?? null,
    problems,
    profiled: Boolean(o.profileDir),
    cpuSeconds: () => readCpuSeconds(child.pid),
    halt,
    stop(timeoutMs = 20_000) {
      stopping ??= (async () => {
        await halt('SIGTERM', timeoutMs);
        await o.cleanup?.();
      })();
      return stopping;
    },
    async cpuProfilePath() {
      if (!o.profileDir) return null;
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's
      // loader hooks run on a thread of their own).
      const files = (await readdir(o.profileDir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
      const main = files.find((f) => f.split('.')[4] === '0') ?? files[0];
      return main ? path.join(o.profileDir, main) : null;
    },
  };
}

/** BENCH_SERVER_NODE_ARGS: Node flags for our server only (a diagnostic: the fan-out gives no verdict then). */
export function serverNodeArgs(): string[] {
  return process.env.BENCH_SERVER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
}

export interface OurServerOptions {
  maxMessagesPerSecond: number;
  /** All bench sockets sign in as one user; the default cap (64) would refuse most of them. */
  maxSocketsPerUser: number;
  /** Write a V8 CPU profile of the server into this directory (kept after the run). */
  cpuProfileDir?: string | null;
  /**
   * Start on this PGlite data directory (another child's, ended), not a fresh one; it is left
   * for its owner to remove.
   */
  dataDir?: string;
}

/**
 * Our server: `node --import tsx server/src/main.ts` with a fresh PGlite temp dir, or the
 * PostgreSQL named by BENCH_DATABASE_URL.
 */
export async function startOurServer(options: OurServerOptions): Promise<ServerChild> {
  const port = await freePort(HOST);
  const owned = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'spanwise-bench-')));
  if (owned) tempDirs.add(dataDir);
  const databaseUrl = process.env.BENCH_DATABASE_URL || null;
  const env: NodeJS.ProcessEnv = {
    ...cleanEnv(),
    PORT: String(port),
    HOST,
    DATA_DIR: dataDir,
    DEMO: '1',
    LOG_LEVEL: 'warn',
    MAX_MESSAGES_PER_SECOND: String(options.maxMessagesPerSecond),
    MAX_SOCKETS_PER_USER: String(options.maxSocketsPerUser),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  };
  // For testing a hypothesis: BENCH_SERVER_NODE_ARGS='--trace-gc' BENCH_SERVER_OUTPUT=/tmp/server.log
  const extraArgs = serverNodeArgs();
  return spawnServer({
    name: OUR_SERVER_NAME,
    script: 'server/src/main.ts',
    env,
    port,
    readyPath: '/api/health',
    nodeArgs: extraArgs,
    database: databaseUrl ? 'postgres (BENCH_DATABASE_URL)' : owned ? `pglite (fresh temp dir ${dataDir})` : `pglite (${dataDir}, again)`,
    dataDir: databaseUrl ? null : dataDir,
    profileDir: options.cpuProfileDir ?? null,
    // With extra Node flags (--trace-gc, say), their stdout lines are not problems; stderr still is.
    isProblem: (line, stream) => /"level":"(warn|error)"/.test(line) || (!line.startsWith('{') && (stream === 'stderr' || extraArgs.length === 0)),
    outputFile: process.env.BENCH_SERVER_OUTPUT || null,
    cleanup: async () => {
      if (!owned) return;
      await rm(dataDir, { recursive: true, force: true });
      tempDirs.delete(dataDir);
    },
  });
}

/**
 * y-websocket 1.5.4's in-memory server (see reference-server.ts); with `pauseUs`, it busy-waits
 * that long before handling each document update (a diagnostic, named in its label).
 */
export async function startReferenceServer(options: { cpuProfileDir?: string | null; pauseUs?: number } = {}): Promise<ServerChild> {
  const port = await freePort(HOST);
  const pauseUs = options.pauseUs ?? 0;
  return spawnServer({
    name: pauseUs > 0 ? `y-websocket 1.5.4 +${pauseUs}µs` : 'y-websocket 1.5.4',
    script: path.join('server', 'bench', 'reference-server.ts'),
    env: { ...cleanEnv(), PORT: String(port), HOST, ...(pauseUs > 0 ? { PAUSE_US: String(pauseUs) } : {}) },
    port,
    readyPath: '/',
    profileDir: options.cpuProfileDir ?? null,
    isProblem: (_line, stream) => stream === 'stderr',
  });
}

/** Kills every child still running (used on SIGINT and on the watchdog). */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
}
