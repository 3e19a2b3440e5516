/**
 * `npm run bench:bus` — what following many rooms costs the Redis bus (prints figures; not a
 * test).
 *
 * Two bus instances in this process (the Redis of REDIS_URL, default 127.0.0.1:6379, under a
 * key prefix of their own) both follow `--rooms` rooms; one publishes small updates to rooms
 * picked at random, `--rate` a second for `--seconds`, and the other times each from publish to
 * delivery. Prints the delivery latency, and the CPU Redis and this process used meanwhile (an
 * instance that reads every room it follows at every read pays for rooms with nothing new).
 *
 *   npm run bench:bus -- [--rooms 10000] [--rate 200] [--seconds 10]
 *
 * The last line printed is a one-line JSON summary.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RedisBus } from '../src/sync/adapters/redis-bus.ts';
import { fmt, round, summarize } from './stats.ts';

const { values } = parseArgs({
  options: {
    rooms: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
  },
});
const rooms = Number(values.rooms);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
for (const [name, n] of [['rooms', rooms], ['rate', rate], ['seconds', seconds]] as const) {
  if (!Number.isFinite(n) || n < 1) throw new Error(`--${name} must be a number ≥ 1`);
}
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `spanwise-bench-bus:${process.pid}:`;
const silent = { info() {}, warn() {}, error() {} };
const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
redis.on('error', () => {}); // (connect() below says what went wrong)
try {
  await redis.connect();
} catch (err) {
  console.error(`bench:bus needs Redis (7 or later): none answers at ${url} (${String(err)}). Set REDIS_URL.`);
  process.exit(1);
}

/** Seconds of CPU the Redis server has used so far. */
async function redisCpu(): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

const publisher = new RedisBus({ url, instanceId: 'publisher', maxLen: 1000, log: silent, keyPrefix: prefix });
const reader = new RedisBus({ url, instanceId: 'reader', maxLen: 1000, log: silent, keyPrefix: prefix });
const latencies: number[] = [];
let timing = false;
try {
  const names = Array.from({ length: rooms }, (_, i) => `doc:${i + 1}:user:1`);
  const joinStarted = performance.now();
  for (let i = 0; i < names.length; i += 500) {
    await Promise.all(
      names.slice(i, i + 500).flatMap((room) => [
        publisher.join(room, { message() {}, reload() {} }),
        reader.join(room, {
          message(_kind, data) {
            if (timing) latencies.push(performance.now() - Buffer.from(data).readDoubleLE(0));
          },
          reload() {},
        }),
      ]),
    );
  }
  console.log(`Spanwise bus bench: 2 instances following ${rooms} rooms each (joined in ${fmt((performance.now() - joinStarted) / 1000)} s); ${rate} updates/s to random rooms for ${seconds} s`);
  await new Promise((r) => setTimeout(r, 1_000));

  timing = true;
  const cpuBefore = process.cpuUsage();
  const redisBefore = await redisCpu();
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) {
      const data = Buffer.alloc(64);
      data.writeDoubleLE(performance.now(), 0);
      publisher.publish(names[Math.floor(Math.random() * rooms)]!, 'update', data);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  const deadline = performance.now() + 10_000;
  while (latencies.length < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisUsed = (await redisCpu()) - redisBefore;
  timing = false;

  const s = summarize(latencies);
  const processPct = ((cpu.user + cpu.system) / 1e6 / elapsed) * 100;
  const redisPct = (redisUsed / elapsed) * 100;
  console.log(`  delivered ${latencies.length} of ${sent}: p50 ${fmt(s.p50, 2)} ms, p99 ${fmt(s.p99, 2)} ms, max ${fmt(s.max, 2)} ms`);
  console.log(`  CPU meanwhile: Redis ${fmt(redisPct)}%, this process (both instances) ${fmt(processPct)}%`);
  console.log(
    JSON.stringify({
      bench: 'bus',
      rooms,
      rate,
      seconds,
      sent,
      delivered: latencies.length,
      p50Ms: round(s.p50),
      p99Ms: round(s.p99),
      maxMs: round(s.max),
      redisCpuPct: round(redisPct, 1),
      processCpuPct: round(processPct, 1),
    }),
  );
} finally {
  await Promise.all([publisher.close(), reader.close()]);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } catch (err) {
    // (What failed the run, Redis away say, is the error to show; this only says what is left.)
    console.error(`could not remove the bench's keys (${prefix}*): ${String(err)}`);
  }
  redis.disconnect();
}
