/**
 * The scaled-out deployment (docker-compose.yml, deploy/nginx.conf, Dockerfile) can't be run
 * here, so this reads the three files and checks that they agree with each other and with the
 * app: service names, URLs, ports, the WebSocket proxying and how the image starts the server.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MAX_BODY_BYTES } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { KEEP_ALIVE_TIMEOUT_MS } from '../src/server.ts';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  ports?: Array<string | number | { target?: number; published?: number | string }>;
  volumes?: Array<string | { type?: string; source?: string; target?: string; read_only?: boolean }>;
  healthcheck?: { test?: string | string[] };
  command?: string | string[];
}

const compose: unknown = parse(read('docker-compose.yml'));
const services: Record<string, Service> =
  isDict(compose) && isDict(compose.services) ? (compose.services as Record<string, Service>) : {};

function service(name: string): Service {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}

/** A service's environment as a map, whichever of the two compose syntaxes it uses. */
function env(s: Service): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(s.environment)) {
    for (const entry of s.environment) {
      const at = entry.indexOf('=');
      if (at > 0) out[entry.slice(0, at)] = entry.slice(at + 1);
    }
  } else if (s.environment) {
    for (const [k, v] of Object.entries(s.environment)) if (v !== null) out[k] = String(v);
  }
  return out;
}

function envVar(s: Service, name: string): string {
  const value = env(s)[name];
  if (value === undefined) throw new Error(`environment has no ${name}`);
  return value;
}

/** depends_on as service → condition (`service_started` for the short syntax). */
function dependsOn(s: Service): Record<string, string> {
  if (Array.isArray(s.depends_on)) return Object.fromEntries(s.depends_on.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([k, v]) => [k, v.condition ?? 'service_started']));
}

/** Published ports as { published, target } (the short syntax: [ip:]published:target[/proto]). */
function ports(s: Service): Array<{ published: number; target: number }> {
  return (s.ports ?? []).flatMap((p) => {
    if (typeof p === 'object') {
      return p.published !== undefined && p.target !== undefined ? [{ published: Number(p.published), target: p.target }] : [];
    }
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    if (parts.length < 2) return []; // container port only: published on a random host port
    return [{ published: Number(parts.at(-2)), target: Number(parts.at(-1)) }];
  });
}

/** Bind mounts as { source (relative to the repo root), target, readOnly }. */
function bindMounts(s: Service): Array<{ source: string; target: string; readOnly: boolean }> {
  return (s.volumes ?? []).flatMap((v) => {
    if (typeof v === 'object') {
      return v.type === 'bind' && v.source && v.target ? [{ source: v.source, target: v.target, readOnly: v.read_only === true }] : [];
    }
    const [source = '', target = '', mode = ''] = v.split(':');
    if (!source.startsWith('.') && !source.startsWith('/')) return []; // a named volume
    return [{ source, target, readOnly: mode.split(',').includes('ro') }];
  });
}

const appServices = ['app1', 'app2'] as const;

// ---------------------------------------------------------------------------------------------
// deploy/nginx.conf: parsed into a tree of directives, so the checks see nesting, not text.

interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
}

function parseNginx(text: string): Directive[] {
  const tokens: string[] = [];
  const re = /#[^\n]*|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([{};])|([^\s{};"'#]+)/g;
  for (const m of text.matchAll(re)) {
    if (m[0].startsWith('#')) continue;
    tokens.push(m[1] ?? m[2] ?? m[3] ?? m[4] ?? '');
  }
  let i = 0;
  const block = (nested: boolean): Directive[] => {
    const out: Directive[] = [];
    while (i < tokens.length) {
      const name = tokens[i++]!;
      if (name === '}') {
        if (!nested) throw new Error('nginx.conf: unbalanced }');
        return out;
      }
      const args: string[] = [];
      while (i < tokens.length && tokens[i] !== ';' && tokens[i] !== '{') args.push(tokens[i++]!);
      const end = tokens[i++];
      if (end === ';') out.push({ name, args });
      else if (end === '{') out.push({ name, args, block: block(true) });
      else throw new Error(`nginx.conf: ${name} is not terminated`);
    }
    if (nested) throw new Error('nginx.conf: unclosed {');
    return out;
  };
  return block(false);
}

const nginxText = read('deploy/nginx.conf');
const nginx = parseNginx(nginxText);
/** The directives of the http context: the file's top level if it is a conf.d snippet. */
const http = nginx.find((d) => d.name === 'http')?.block ?? nginx;

const all = (scope: Directive[], name: string) => scope.filter((d) => d.name === name);
const one = (scope: Directive[], name: string, ...args: string[]): Directive => {
  const found = scope.filter((d) => d.name === name && args.every((a, k) => d.args[k] === a));
  if (found.length !== 1) throw new Error(`expected one "${[name, ...args].join(' ')}", found ${found.length}`);
  return found[0]!;
};
const inner = (d: Directive) => d.block ?? [];

const server = inner(one(http, 'server'));
const location = (prefix: string) => inner(one(server, 'location', prefix));

/** The upstream a location proxies to, which must be defined in this file. */
function upstreamOf(loc: Directive[]): Directive[] {
  const target = one(loc, 'proxy_pass').args[0] ?? '';
  const name = /^https?:\/\/([^/:]+)/.exec(target)?.[1] ?? '';
  return inner(one(http, 'upstream', name));
}
const upstreamServers = (up: Directive[]) =>
  all(up, 'server')
    .map((d) => d.args[0] ?? '')
    .sort();

/**
 * The headers nginx actually sends from a location: proxy_set_header is inherited from the
 * enclosing level only when the inner level sets none of its own.
 */
function proxyHeaders(loc: Directive[]): Map<string, string> {
  const level = [loc, server, http].find((scope) => all(scope, 'proxy_set_header').length > 0) ?? [];
  return new Map(all(level, 'proxy_set_header').map((d) => [(d.args[0] ?? '').toLowerCase(), d.args[1] ?? '']));
}

/** An nginx time ("60s", "1m", "75") in seconds. */
function nginxSeconds(value: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(value);
  if (!m) throw new Error(`not an nginx time: ${value}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}

/** nginx's size syntax (16m, 1g, 512k, bytes) in bytes. */
function nginxSize(value: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(value);
  if (!m) throw new Error(`not an nginx size: ${value}`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * unit;
}

// ---------------------------------------------------------------------------------------------
// Dockerfile: instructions after joining continuation lines and dropping comments.

interface Instruction {
  op: string;
  rest: string;
}

const dockerfile: Instruction[] = read('Dockerfile')
  .split('\n')
  .filter((line) => !/^\s*#/.test(line))
  .join('\n')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter(Boolean)
  .map((line) => {
    const [op = '', ...rest] = line.split(/\s+/);
    return { op: op.toUpperCase(), rest: rest.join(' ') };
  });
/** The final stage: what the running container is. */
const lastFrom = dockerfile.map((d) => d.op).lastIndexOf('FROM');
const finalStage = dockerfile.slice(lastFrom);
const indexOf = (pred: (d: Instruction) => boolean) => finalStage.findIndex(pred);
const runs = (command: RegExp) => (d: Instruction) => d.op === 'RUN' && command.test(d.rest);

const rootPackage = JSON.parse(read('package.json')) as {
  workspaces?: string[];
  scripts?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

// The port the app instances listen on, as nginx sees it.
const upstreamPort = (() => {
  const ports = new Set(upstreamServers(upstreamOf(location('/'))).map((s) => s.split(':')[1]));
  return ports.size === 1 ? [...ports][0] : undefined;
})();

describe('docker-compose.yml', () => {
  it('has postgres, redis, two app instances and the proxy', () => {
    expect(Object.keys(services).sort()).toEqual(['app1', 'app2', 'postgres', 'proxy', 'redis']);
    expect(service('postgres').image).toMatch(/^postgres:/);
    expect(service('redis').image).toMatch(/^redis:/);
    expect(service('proxy').image).toMatch(/^nginx:/);
  });

  it('keeps Postgres data in a named volume and Redis in append-only mode', () => {
    const volumes = isDict(compose) && isDict(compose.volumes) ? Object.keys(compose.volumes) : [];
    const pgVolume = (service('postgres').volumes ?? []).find((v): v is string => typeof v === 'string' && v.endsWith(':/var/lib/postgresql/data'));
    expect(volumes).toContain(pgVolume?.split(':')[0]);
    expect([service('redis').command].flat().join(' ')).toMatch(/--appendonly\s+yes/);
  });

  it.each(appServices)('%s is built from the Dockerfile at the repository root', (name) => {
    const build = service(name).build;
    const context = typeof build === 'string' ? build : build?.context;
    const file = typeof build === 'object' ? (build.dockerfile ?? 'Dockerfile') : 'Dockerfile';
    expect(context).toBeDefined();
    expect(path.resolve(root, context!, file)).toBe(path.join(root, 'Dockerfile'));
    expect(service(name).image).toBeUndefined();
  });

  it.each(appServices)('%s connects to the postgres service with its user, password and database', (name) => {
    const url = new URL(envVar(service(name), 'DATABASE_URL'));
    const pg = env(service('postgres'));
    expect(url.protocol).toMatch(/^postgres(ql)?:$/);
    expect(url.hostname).toBe('postgres');
    expect(url.port || '5432').toBe('5432');
    expect(decodeURIComponent(url.username)).toBe(pg.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(pg.POSTGRES_PASSWORD);
    expect(url.pathname).toBe(`/${pg.POSTGRES_DB}`);
  });

  it.each(appServices)('%s trusts the address nginx adds to X-Forwarded-For (the sign-in throttle counts by it)', (name) => {
    expect(envVar(service(name), 'TRUST_PROXY')).toBe('1');
    for (const prefix of ['/api/', '/']) expect(proxyHeaders(location(prefix)).get('x-forwarded-for')).toBe('$proxy_add_x_forwarded_for');
  });

  it.each(appServices)('%s takes the names the site is reached by from ALLOWED_HOSTS, and is valid without it', (name) => {
    expect(envVar(service(name), 'ALLOWED_HOSTS')).toBe('${ALLOWED_HOSTS:-}');
    // Unset (blank), the server answers only for localhost and IP addresses; what is listed must parse.
    expect(loadConfig({ ALLOWED_HOSTS: '' }).allowedHosts).toEqual([]);
    expect(loadConfig({ ALLOWED_HOSTS: 'spanwise.example.org, .example.net' }).allowedHosts).toEqual(['spanwise.example.org', '.example.net']);
  });

  it.each(appServices)('%s connects to the redis service', (name) => {
    const url = new URL(envVar(service(name), 'REDIS_URL'));
    expect(url.protocol).toBe('redis:');
    expect(url.hostname).toBe('redis');
    expect(url.port || '6379').toBe('6379');
  });

  it.each(appServices)('%s listens on the port nginx forwards to, and publishes none', (name) => {
    expect(upstreamPort).toBeDefined();
    expect(envVar(service(name), 'PORT')).toBe(upstreamPort);
    expect(service(name).ports ?? []).toEqual([]);
  });

  it.each(appServices)('%s is given time to shut down: queued updates stored, the Redis outbox sent (~14 s at most)', (name) => {
    const grace = String((service(name) as Record<string, unknown>).stop_grace_period ?? '10s');
    const m = /^(\d+)(s|m)$/.exec(grace);
    expect(m, grace).not.toBeNull();
    expect(Number(m![1]) * (m![2] === 'm' ? 60 : 1)).toBeGreaterThanOrEqual(20);
  });

  it.each(appServices)('%s takes the demo password from the environment, with a default', (name) => {
    expect(envVar(service(name), 'DEMO_PASSWORD')).toMatch(/^\$\{DEMO_PASSWORD:-[^}]+\}$/);
  });

  it('publishes the proxy on this machine only (the demo users have a known default password)', () => {
    expect(service('proxy').ports).toEqual(['127.0.0.1:8080:80']);
  });

  it.each(appServices)('%s waits for a healthy Postgres (it migrates on start) and for Redis', (name) => {
    expect(service('postgres').healthcheck?.test).toBeDefined();
    // Over TCP: the image's first-start setup server listens only on its Unix socket.
    expect([service('postgres').healthcheck?.test].flat().join(' ')).toMatch(/pg_isready.* -h 127\.0\.0\.1\b/);
    const deps = dependsOn(service(name));
    expect(deps.postgres).toBe('service_healthy');
    expect(deps).toHaveProperty('redis');
    if (deps.redis === 'service_healthy') expect(service('redis').healthcheck?.test).toBeDefined();
  });

  it('publishes the proxy on a host port that reaches the port nginx listens on', () => {
    const published = ports(service('proxy'));
    expect(published).toHaveLength(1);
    const listen = all(server, 'listen').map((d) => Number((d.args[0] ?? '').split(':').at(-1)));
    expect(listen).toContain(published[0]!.target);
    expect(Object.keys(dependsOn(service('proxy'))).sort()).toEqual(['app1', 'app2']);
  });

  it('mounts deploy/nginx.conf read-only where nginx loads it', () => {
    const mounts = bindMounts(service('proxy')).filter((m) => path.resolve(root, m.source) === path.join(root, 'deploy/nginx.conf'));
    expect(mounts).toHaveLength(1);
    expect(existsSync(path.join(root, 'deploy/nginx.conf'))).toBe(true);
    expect(mounts[0]!.readOnly).toBe(true);
    // A whole config (with an http block) replaces nginx.conf; a snippet goes in conf.d.
    if (nginx.some((d) => d.name === 'http')) expect(mounts[0]!.target).toBe('/etc/nginx/nginx.conf');
    else expect(mounts[0]!.target).toMatch(/^\/etc\/nginx\/conf\.d\/[^/]+\.conf$/);
  });
});

describe('deploy/nginx.conf', () => {
  it('parses: balanced braces and terminated directives', () => {
    expect(() => parseNginx(nginxText)).not.toThrow();
    expect(all(http, 'server')).toHaveLength(1);
  });

  it('balances every location over exactly the two app instances', () => {
    for (const prefix of ['/sync/', '/api/', '/']) {
      expect(upstreamServers(upstreamOf(location(prefix))), prefix).toEqual(['app1:3000', 'app2:3000'].map((s) => s.replace('3000', upstreamPort ?? '?')));
    }
    // The hosts are the compose services that run the app.
    const hosts = upstreamServers(upstreamOf(location('/'))).map((s) => s.split(':')[0]);
    expect(hosts.sort()).toEqual(Object.keys(services).filter((n) => services[n]!.build !== undefined).sort());
  });

  it('proxies WebSockets on /sync/', () => {
    const sync = location('/sync/');
    expect(one(sync, 'proxy_http_version').args).toEqual(['1.1']);
    const headers = proxyHeaders(sync);
    expect(headers.get('upgrade')).toBe('$http_upgrade');
    const connection = headers.get('connection');
    if (connection === '$connection_upgrade') {
      const map = inner(one(http, 'map', '$http_upgrade', '$connection_upgrade'));
      expect(one(map, 'default').args).toEqual(['upgrade']);
      expect(one(map, '').args).toEqual(['close']);
    } else {
      expect(connection?.toLowerCase()).toBe('upgrade');
    }
    // Idle documents stay open far longer than nginx's 60 s default.
    const timeout = sync.find((d) => d.name === 'proxy_read_timeout')?.args[0] ?? '60s';
    const seconds = Number(/^(\d+)/.exec(timeout)?.[1]) * ({ s: 1, m: 60, h: 3600, d: 86400 }[timeout.replace(/^\d+/, '') || 's'] ?? NaN);
    expect(seconds).toBeGreaterThanOrEqual(600);
  });

  it('keeps one room on one instance where it can (consistent hash of the path: the room, not the page’s query)', () => {
    expect(one(upstreamOf(location('/sync/')), 'hash').args).toEqual(['$uri', 'consistent']);
  });

  it("sends a room's socket to the other instance while its own one shuts down (503 to new sockets)", () => {
    const next = location('/sync/').find((d) => d.name === 'proxy_next_upstream')?.args ?? ['error', 'timeout'];
    expect(next).toContain('http_503');
    // A 503 (its database unable to decide access, too) must not set an instance aside for all.
    for (const server of all(upstreamOf(location('/sync/')), 'server')) expect(server.args, server.args[0]).toContain('max_fails=0');
  });

  it("looks the instances' addresses up again, not once at start (an instance down then, or recreated)", () => {
    const resolver = one(http, 'resolver').args;
    expect(resolver[0]).toBe('127.0.0.11'); // Docker's DNS
    for (const prefix of ['/sync/', '/api/', '/']) {
      const up = upstreamOf(location(prefix));
      expect(all(up, 'zone'), prefix).toHaveLength(1); // `resolve` needs the group in shared memory
      for (const server of all(up, 'server')) expect(server.args.slice(1), `${prefix} ${server.args[0]}`).toContain('resolve');
    }
    // Open-source nginx has `resolve` from 1.27.3 on.
    const [major, minor] = (/^nginx:(\d+)\.(\d+)/.exec(service('proxy').image ?? '') ?? []).slice(1).map(Number);
    expect(major! > 1 || (major === 1 && minor! >= 28)).toBe(true);
  });

  it('lets go of idle upstream connections before the app does (no request on one it is closing)', () => {
    for (const prefix of ['/api/', '/']) {
      const up = upstreamOf(location(prefix));
      if (!up.some((d) => d.name === 'keepalive')) continue;
      // nginx's upstream keepalive_timeout defaults to 60 s.
      const nginxIdle = nginxSeconds(all(up, 'keepalive_timeout').at(-1)?.args[0] ?? '60s');
      expect(nginxIdle * 1000).toBeLessThan(KEEP_ALIVE_TIMEOUT_MS);
    }
  });

  it('proxies /api/ and the pages as plain HTTP', () => {
    for (const prefix of ['/api/', '/']) {
      expect(one(location(prefix), 'proxy_pass').args[0]).toMatch(/^http:\/\//);
      // Keep-alive to the upstream: a Connection header other than upgrade.
      expect(proxyHeaders(location(prefix)).get('connection') ?? '').not.toMatch(/upgrade/i);
    }
  });

  it('passes the original Host and the forwarding headers from every location', () => {
    const proxyPort = ports(service('proxy'))[0];
    for (const prefix of ['/sync/', '/api/', '/']) {
      const headers = proxyHeaders(location(prefix));
      // The sync endpoint compares the browser's Origin host (with the port it used) to Host.
      const host = headers.get('host');
      if (host === '$host:$server_port') expect(proxyPort?.published, prefix).toBe(proxyPort?.target);
      else expect(host, prefix).toBe('$http_host');
      expect(headers.get('x-forwarded-for'), prefix).toBe('$proxy_add_x_forwarded_for');
      expect(headers.get('x-forwarded-proto'), prefix).toBe('$scheme');
    }
  });

  it('does not serve /metrics on the public side', () => {
    const metrics = inner(one(server, 'location', '=', '/metrics'));
    expect(one(metrics, 'return').args[0]).toBe('404');
    expect(metrics.some((d) => d.name === 'proxy_pass')).toBe(false);
  });

  it("accepts bodies as large as the API's limit", () => {
    const sizes = [http, server, location('/api/')].flatMap((scope) => all(scope, 'client_max_body_size'));
    // The innermost setting applies to /api/.
    const effective = sizes.at(-1)?.args[0] ?? '1m';
    expect(nginxSize(effective)).toBeGreaterThanOrEqual(MAX_BODY_BYTES);
    expect(nginxSize(effective)).toBeGreaterThanOrEqual(16 * 1024 * 1024);
  });
});

describe('Dockerfile', () => {
  it('builds on Node 20', () => {
    expect(finalStage[0]?.rest).toMatch(/^(--platform=\S+\s+)?node:20([.-]|$)/);
  });

  it('installs from the lockfile with every workspace manifest copied first, dev dependencies kept', () => {
    const ci = indexOf(runs(/\bnpm ci\b/));
    expect(ci).toBeGreaterThan(0);
    expect(finalStage[ci]!.rest).not.toMatch(/--omit[= ]dev|--production|--only[= ]prod/);
    const copiedBefore = finalStage
      .slice(0, ci)
      .filter((d) => d.op === 'COPY')
      .flatMap((d) => d.rest.split(/\s+/).filter((arg) => !arg.startsWith('--')).slice(0, -1));
    const copied = (file: string) => copiedBefore.some((src) => path.normalize(src) === file);
    for (const file of ['package.json', 'package-lock.json', ...(rootPackage.workspaces ?? []).map((w) => `${w}/package.json`)]) {
      expect(copied(file), file).toBe(true);
    }
    // No source is copied before `npm ci`, so edits keep the dependency layer cached.
    expect(copiedBefore.every((src) => src.endsWith('package.json') || src.endsWith('package-lock.json'))).toBe(true);
    // tsx runs the server: a production-only install would leave it out.
    expect(rootPackage.devDependencies).toHaveProperty('tsx');
    const envBeforeCi = finalStage.slice(0, ci).filter((d) => d.op === 'ENV' || d.op === 'ARG');
    expect(envBeforeCi.map((d) => d.rest).join(' ')).not.toMatch(/NODE_ENV[= ]"?production/);
  });

  it("installs with an npm that honours package.json's allowScripts (11 or later), before npm ci", () => {
    const upgrade = indexOf(runs(/\bnpm install -g npm@(\d+)/));
    expect(upgrade).toBeGreaterThanOrEqual(0);
    expect(Number(/npm@(\d+)/.exec(finalStage[upgrade]!.rest)![1])).toBeGreaterThanOrEqual(11);
    expect(upgrade).toBeLessThan(indexOf(runs(/\bnpm ci\b/)));
    expect(rootPackage).toHaveProperty('allowScripts');
  });

  it('builds the client after copying the sources', () => {
    const build = indexOf(runs(/\bnpm run build\b/));
    expect(build).toBeGreaterThan(indexOf(runs(/\bnpm ci\b/)));
    expect(rootPackage.scripts?.build).toBeDefined();
    const copiedBefore = finalStage.slice(0, build).filter((d) => d.op === 'COPY').map((d) => d.rest);
    for (const dir of ['shared', 'server', 'client', 'seeds']) {
      expect(copiedBefore.some((c) => c.split(/\s+/).filter((arg) => !arg.startsWith('--')).slice(0, -1).some((src) => src.replace(/\/$/, '') === dir)), dir).toBe(true);
    }
  });

  it('runs as an unprivileged user', () => {
    const users = finalStage.filter((d) => d.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)!.rest.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(finalStage.map((d) => d.op).lastIndexOf('USER')).toBeLessThan(finalStage.findIndex((d) => d.op === 'CMD'));
  });

  it("runs the serve script's command itself, node (PID 1's signals reach the server), on the port it exposes", () => {
    const cmd = finalStage.filter((d) => d.op === 'CMD').at(-1);
    const argv = JSON.parse(cmd?.rest ?? 'null') as unknown;
    const serve = rootPackage.scripts?.serve;
    expect(serve).toBeDefined();
    // Not through npm and a shell (npm signals only the shell; `exec` makes node the shell's
    // process), nor tsx's own parent process, which kills its child when it is slow to
    // acknowledge a relayed signal: node, with tsx loaded into it.
    const [exec, ...command] = serve!.split(/\s+/);
    expect(exec).toBe('exec');
    expect(command).toEqual(['node', '--import', 'tsx', expect.stringMatching(/\.ts$/)]);
    expect(existsSync(path.join(root, command.at(-1)!))).toBe(true);
    expect(argv).toEqual(command);
    const port = finalStage.filter((d) => d.op === 'ENV').map((d) => /\bPORT[= ](\d+)/.exec(d.rest)?.[1]).find(Boolean);
    expect(port).toBe(upstreamPort);
    expect(finalStage.filter((d) => d.op === 'EXPOSE').map((d) => d.rest)).toContain(port);
  });

  it('checks its health on /api/health', () => {
    const health = finalStage.find((d) => d.op === 'HEALTHCHECK');
    expect(health?.rest).toMatch(/\bCMD\b.*\bfetch\(.*\/api\/health/);
  });

  it('leaves local installs, data and builds out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim().replace(/^\*\*\//, '').replace(/\/$/, ''));
    for (const entry of ['node_modules', '.data', 'dist', '.git']) expect(ignored, entry).toContain(entry);
  });
});
