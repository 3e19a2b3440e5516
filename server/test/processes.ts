/**
 * Spanwise servers as child processes, for tests that kill them (kill -9 cannot be done to a
 * server inside the test process).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const root = path.resolve(import.meta.dirname, '../..');

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
  /** Sends `signal` (default SIGKILL), then SIGKILL if it has not exited within 10 s; resolves on exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Settings that point a server at shared state: a test's child gets only those the test gives it. */
const SHARED_STATE = ['DATABASE_URL', 'REDIS_URL', 'REDIS_KEY_PREFIX', 'DATA_DIR'];

/** How long `kill` waits after a gentler signal before it sends SIGKILL. */
const KILL_AFTER_MS = 10_000;

/** Children still running: killed if this process exits first (a test timing out, a crash). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** Starts `server/src/main.ts` with `env` on a free port; resolves once it listens. */
export function spawnServer(env: Record<string, string>, timeoutMs = 60_000): Promise<ServerProcess> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !SHARED_STATE.includes(name)));
  const proc = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
    cwd: root,
    env: { ...inherited, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      running.delete(proc);
      resolve(code);
    }),
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += String(d)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start in ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${stderr}`));
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let event: { event?: string; url?: string };
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (event.event === 'listening' && event.url) {
        clearTimeout(timer);
        resolve({
          url: event.url,
          proc,
          exited,
          /** Sends `signal`, then SIGKILL if the process has not exited within 10 s. */
          async kill(signal: NodeJS.Signals = 'SIGKILL') {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            const late = setTimeout(() => proc.kill('SIGKILL'), KILL_AFTER_MS);
            try {
              await exited;
            } finally {
              clearTimeout(late);
            }
          },
        });
      }
    });
  });
}
