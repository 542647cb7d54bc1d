/**
 * npm run bench:gate — the gate's throughput and latency against real peers,
 * in one run and rotation, on loopback:
 *
 * - direct: wrk straight at one nginx backend (no proxy: the ceiling);
 * - HAProxy (Debian) with 1 and 2 threads;
 * - nginx as a reverse proxy (1 worker) with upstream keep-alive;
 * - the built-in gate with 1 worker process and with one per core;
 * - `gate.engine: haproxy` (skyha rendering and driving HAProxy, 1 thread).
 *
 * Backends are two nginx servers answering a short body. Each round starts
 * every proxy afresh in a rotated order, runs wrk (closed loop, 50
 * connections) for throughput and its latency percentiles, then `hey` at a
 * fixed rate of 5,000 requests/s for the latency at a set load. Medians of
 * the rounds, and ratios to HAProxy with the same number of cores, go into
 * docs/benchmarks.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendState, GateEngine } from '../src/gate/backend.js';
import { GateProcess } from '../src/gate/gate-process.js';
import { HaproxyGate } from '../src/gate/haproxy/haproxy-gate.js';
import { createLogger } from '../src/observe/log.js';
import { waitFor } from '../src/testing/wait.js';
import { writeSection } from './doc-section.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 5);
const CONNECTIONS = 50;
const RATE = 5000;
const HOST = '127.0.0.1';
const logger = createLogger({ level: 'warn' });

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  /** At the fixed rate. */
  rateP50: number;
  rateP99: number;
  rateAchieved: number;
  errors: number;
}

interface Peer {
  name: string;
  /** Cores the proxy may use: the ratio is to HAProxy with as many threads. */
  cores: number;
  start(): Promise<{ port: number; stop(): Promise<void> }>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, HOST, resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}:${port}/`, { signal: AbortSignal.timeout(500) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

async function startProcess(cmd: string, args: string[], port: number): Promise<{ port: number; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitFor(`${cmd} on port ${port}`, () => answers(port), { deadline: 10_000 });
  return {
    port,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function nginxBackends(dir: string, ports: [number, number]): string {
  const conf = join(dir, 'backends.conf');
  writeFileSync(
    conf,
    `worker_processes 1;\ndaemon off;\npid ${dir}/backends.pid;\nerror_log stderr warn;\nevents { worker_connections 4096; }\n` +
      `http {\n  access_log off;\n  keepalive_requests 1000000;\n` +
      ports.map((p, i) => `  server { listen ${HOST}:${p}; location / { return 200 "hello from backend ${i}\\n"; } }\n`).join('') +
      `}\n`,
  );
  return conf;
}

function haproxyConf(dir: string, name: string, threads: number, port: number, backends: [number, number]): string {
  const conf = join(dir, `${name}.cfg`);
  writeFileSync(
    conf,
    `global\n  nbthread ${threads}\n  maxconn 4000\n` +
      `defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\n` +
      `frontend fe\n  bind ${HOST}:${port}\n  default_backend be\n` +
      `backend be\n  balance roundrobin\n  http-reuse always\n` +
      backends.map((p, i) => `  server b${i} ${HOST}:${p}\n`).join(''),
  );
  return conf;
}

function nginxProxyConf(dir: string, port: number, backends: [number, number]): string {
  const conf = join(dir, 'nginx-proxy.conf');
  writeFileSync(
    conf,
    `worker_processes 1;\ndaemon off;\npid ${dir}/proxy.pid;\nerror_log stderr warn;\nevents { worker_connections 4096; }\n` +
      `http {\n  access_log off;\n  upstream be {\n` +
      backends.map((p) => `    server ${HOST}:${p};\n`).join('') +
      `    keepalive 64;\n  }\n  server {\n    listen ${HOST}:${port};\n    location / {\n      proxy_pass http://be;\n      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n    }\n  }\n}\n`,
  );
  return conf;
}

function backendStates(ports: [number, number]): BackendState[] {
  return ports.map((port, i) => ({ node: `b${i}`, host: HOST, port, weight: 1, health: 'up' as const, admin: 'ready' as const }));
}

async function startEngine(engine: GateEngine, port: number, backends: BackendState[]): Promise<{ port: number; stop(): Promise<void> }> {
  engine.update(backends);
  await engine.start();
  await waitFor(`the gate on ${port}`, () => answers(port), { deadline: 10_000 });
  return { port, stop: () => engine.close() };
}

function wrk(port: number): Pick<Figures, 'rps' | 'p50' | 'p99' | 'errors'> {
  const out = spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', `http://${HOST}:${port}/`], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  const text = out.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const pct = (p: string): number => toMs(new RegExp(`^\\s+${p}%\\s+([\\d.]+\\w+)`, 'm').exec(text)?.[1] ?? 'NaNms');
  const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0) + Number(/Socket errors:.*?(\d+)/.exec(text)?.[1] ?? 0);
  return { rps, p50: pct('50'), p99: pct('99'), errors };
}

function hey(port: number): Pick<Figures, 'rateP50' | 'rateP99' | 'rateAchieved'> {
  // 50 workers × 100 requests/s each = 5,000 requests/s.
  const out = spawnSync('hey', ['-z', `${SECONDS}s`, '-c', String(CONNECTIONS), '-q', String(RATE / CONNECTIONS), `http://${HOST}:${port}/`], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`hey failed: ${out.stderr}`);
  const text = out.stdout;
  const pct = (p: number): number => Number(new RegExp(`${p}% in ([\\d.]+) secs`).exec(text)?.[1]) * 1000;
  return { rateP50: pct(50), rateP99: pct(99), rateAchieved: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]) };
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function main(): Promise<void> {
  for (const tool of ['nginx', 'haproxy', 'wrk', 'hey']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (apt-get install nginx haproxy wrk hey)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'skyha-bench-gate-'));
  const backendPorts: [number, number] = [await freePort(), await freePort()];
  const backends = await startProcess('nginx', ['-c', nginxBackends(dir, backendPorts)], backendPorts[0]);
  const haproxy = (threads: number): Peer => ({
    name: `HAProxy ${threads} thread${threads > 1 ? 's' : ''}`,
    cores: threads,
    start: async () => {
      const port = await freePort();
      return startProcess('haproxy', ['-db', '-f', haproxyConf(dir, `haproxy-${threads}`, threads, port, backendPorts)], port);
    },
  });
  const builtin = (workers: number): Peer => ({
    name: `skyha gate, ${workers} worker${workers > 1 ? 's' : ''}`,
    cores: workers,
    start: async () => {
      const port = await freePort();
      const engine = new GateProcess({ module: 'bench', bind: HOST, port, mode: 'http', balance: 'round_robin', connectTimeout: 1000, responseTimeout: 30_000, maxConnections: 10_000, workers }, logger);
      return startEngine(engine, port, backendStates(backendPorts));
    },
  });
  const peers: Peer[] = [
    { name: 'direct (no proxy)', cores: 0, start: async () => ({ port: backendPorts[0], stop: async () => undefined }) },
    haproxy(1),
    haproxy(2),
    {
      name: 'nginx proxy, 1 worker',
      cores: 1,
      start: async () => {
        const port = await freePort();
        return startProcess('nginx', ['-c', nginxProxyConf(dir, port, backendPorts)], port);
      },
    },
    builtin(1),
    builtin(cpus().length),
    {
      name: 'skyha engine: haproxy (1 thread)',
      cores: 1,
      start: async () => {
        const port = await freePort();
        const engine = new HaproxyGate({
          module: 'bench',
          bind: HOST,
          port,
          mode: 'http',
          balance: 'round_robin',
          backends: backendStates(backendPorts),
          connectTimeout: 1000,
          responseTimeout: 30_000,
          maxConnections: 4000,
          haproxyBinary: '/usr/sbin/haproxy',
          runDir: join(dir, `engine-${port}`),
          logger,
        });
        return startEngine(engine, port, backendStates(backendPorts));
      },
    },
  ];

  const results = new Map<string, Figures[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order so that no peer always runs first (cold caches) or last (a warmer machine).
      const order = peers.map((_, i) => peers[(i + round) % peers.length]!);
      for (const peer of order) {
        const running = await peer.start();
        try {
          // Warm up: connection pools, JIT.
          spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, '-d1s', `http://${HOST}:${running.port}/`]);
          const f: Figures = { ...wrk(running.port), ...hey(running.port) };
          (results.get(peer.name) ?? results.set(peer.name, []).get(peer.name)!).push(f);
          process.stdout.write(`round ${round + 1} ${peer.name}: ${Math.round(f.rps)} req/s, p50 ${f.p50.toFixed(2)} ms, p99 ${f.p99.toFixed(2)} ms; at ${RATE}/s: p50 ${f.rateP50.toFixed(2)} ms, p99 ${f.rateP99.toFixed(2)} ms\n`);
        } finally {
          await running.stop();
        }
      }
    }
  } finally {
    await backends.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const med = (name: string, key: keyof Figures): number => median(results.get(name)!.map((f) => f[key]));
  const haproxyFor = (cores: number): string => (cores >= 2 ? 'HAProxy 2 threads' : 'HAProxy 1 thread');
  const lines: string[] = [];
  const cpu = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  lines.push(`Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpu} (load average ${loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}.`);
  lines.push('');
  lines.push(`| proxy | req/s (median of ${ROUNDS}) | × HAProxy, same cores (median of rounds) | p50 | p99 | at ${RATE}/s: p50 | p99 | p99 − HAProxy's (median of rounds) |`);
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const p of peers) {
    const ref = haproxyFor(p.cores);
    // Paired by round (both ran minutes apart in the same rotation): the median of the per-round ratios and
    // differences is steadier on a shared machine than a ratio of medians.
    const pair = (key: keyof Figures, f: (a: number, b: number) => number): number => median(results.get(p.name)!.map((x, i) => f(x[key], results.get(ref)![i]![key])));
    const ratio = p.cores === 0 ? '—' : `${pair('rps', (a, b) => a / b).toFixed(2)}×`;
    const dp99 = p.cores === 0 ? '—' : `${pair('rateP99', (a, b) => a - b).toFixed(2)} ms`;
    lines.push(`| ${p.name} | ${Math.round(med(p.name, 'rps'))} | ${ratio} | ${med(p.name, 'p50').toFixed(2)} ms | ${med(p.name, 'p99').toFixed(2)} ms | ${med(p.name, 'rateP50').toFixed(2)} ms | ${med(p.name, 'rateP99').toFixed(2)} ms | ${dp99} |`);
  }
  lines.push('');
  lines.push('All rounds, req/s: ' + peers.map((p) => `${p.name}: ${results.get(p.name)!.map((f) => Math.round(f.rps)).join(', ')}`).join('; ') + '.');
  lines.push('');
  lines.push(
    `Command: \`npm run bench:gate\` (\`ROUNDS=${ROUNDS}\`, \`SECONDS=${SECONDS}\`). Throughput: \`wrk -t1 -c${CONNECTIONS} -d${SECONDS}s --latency\` (closed loop). ` +
      `Fixed rate: \`hey -z ${SECONDS}s -c ${CONNECTIONS} -q ${RATE / CONNECTIONS}\` (${CONNECTIONS} workers each limited to ${RATE / CONNECTIONS} req/s; hey waits for each answer, so its latencies understate queueing — coordinated omission — for every proxy alike). ` +
      'Two nginx backends (1 worker each) answer a 22-byte body; every proxy balances round robin over both with keep-alive to them. ' +
      'Everything shares the machine\'s 2 cores: wrk, hey, the backends and the proxy compete, so the figures compare proxies with each other in the same run, not with published numbers. Targets: built-in gate (1 worker) ≥ 0.6× HAProxy 1 thread; p99 at 5,000 req/s ≤ HAProxy\'s + 1 ms; engine haproxy ≥ 0.95× HAProxy 1 thread.',
  );
  writeSection('gate', 'Gate throughput and latency (`npm run bench:gate`)', lines);
  process.stdout.write(lines.join('\n') + '\n');
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench:gate failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
