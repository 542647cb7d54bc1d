/**
 * npm run bench:eject — how soon a node whose link is lost stops getting
 * requests, and how many requests fail meanwhile: skyha's gate against
 * HAProxy (Debian) with its default health checks (`check`: inter 2 s,
 * fall 3, rise 2), and, for reference, HAProxy with checks tuned to skyha's
 * LAN budget (inter 250 ms, fall 3), in one run, on namespace hosts.
 *
 * Hosts n1 n2 n3 run a farm module (the sample application on port 8081);
 * the gate listens on n1:8080. HAProxy runs on n1 too, next to the gate and
 * seeing the same network, with the three applications as servers: port
 * 8090 default checks, 8091 tuned. A witness w and a client host c. HAProxy
 * has Debian's default timeouts (connect 5 s), `retries 3` and `option
 * redispatch`, as an operator would set it up.
 *
 * Each round: one open-loop client per contestant on c (200 GET/s each,
 * 5 s deadline per request), then `ip link set down` on n3's link. From that
 * moment:
 * - out of rotation: the gate's pool has n3 down (skyha status), HAProxy's
 *   server is DOWN (`show stat`), polled every 10 ms;
 * - last routed request: the last request the contestant sent to n3 (the
 *   gate's `lastRequestAt` for n3; HAProxy's request log: the accept time
 *   of the last request it gave n3, or sent elsewhere after trying n3);
 * - failed requests: answered non-2xx, or not within the 5 s deadline.
 * Then the link comes back and every contestant has n3 in again before the
 * next round. Medians of the rounds go into docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RuntimeApi } from '../src/gate/haproxy/runtime-api.js';
import { TestBed, type BedProcess } from '../src/testing/bed/bed.js';
import { BedLauncher } from '../src/testing/bed-launcher.js';
import { writeClusterFiles, type ClusterSpec } from '../src/testing/cluster-files.js';
import { ClusterRunner } from '../src/testing/cluster-runner.js';
import type { ClientResult } from '../src/testing/open-loop-client.js';
import { sampleAppCommand } from '../src/testing/sample-app.js';
import { waitFor } from '../src/testing/wait.js';
import { writeSection } from './doc-section.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const RATE = 200;
const CLIENT_DEADLINE = 5000;
/** The client runs this long after the fault: HAProxy's default checks take 10-11 s to put a lost server DOWN (3 checks, each timing out after `inter`). */
const AFTER_FAULT = 13_000;
const BEFORE_FAULT = 1000;
const APP_PORT = 8081;
const GATE_PORT = 8080;
const NODES = ['n1', 'n2', 'n3'] as const;
const CLIENT = fileURLToPath(new URL('../src/testing/open-loop-client.js', import.meta.url));

interface Contestant {
  name: string;
  port: number;
  /** HAProxy's proxy name; undefined for the gate. */
  haproxy?: string;
  check?: string;
}

const CONTESTANTS: readonly Contestant[] = [
  { name: 'skyha gate (built-in, LAN profile)', port: GATE_PORT },
  { name: 'HAProxy, default checks (inter 2s fall 3)', port: 8090, haproxy: 'default_checks', check: 'check' },
  { name: 'HAProxy, tuned checks (inter 250ms fall 3)', port: 8091, haproxy: 'tuned_checks', check: 'check inter 250ms fall 3 rise 2' },
];

interface Figures {
  /** ms from the link loss; undefined if never within the round. */
  out: number | undefined;
  /** ms from the link loss to the last request sent to n3; 0 if none after it. */
  lastRouted: number;
  failed: number;
  sent: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function haproxyConfig(dir: string, address: (n: string) => string): string {
  const lines = [
    'global',
    '  log stdout format raw local0',
    `  stats socket ${join(dir, 'haproxy.sock')} mode 600 level admin`,
    'defaults',
    '  mode http',
    '  log global',
    // Debian's default timeouts.
    '  timeout connect 5s',
    '  timeout client 50s',
    '  timeout server 50s',
    '  retries 3',
    '  option redispatch',
    // Accept time (s.ms), proxy, server, retries (+ when redispatched), status.
    '  log-format "%Ts.%ms %b %s %rc %ST"',
  ];
  for (const c of CONTESTANTS) {
    if (!c.haproxy) continue;
    lines.push(`listen ${c.haproxy}`, `  bind ${address('n1')}:${c.port}`, '  balance roundrobin');
    for (const n of NODES) lines.push(`  server ${n} ${address(n)}:${APP_PORT} ${c.check}`);
  }
  const path = join(dir, 'haproxy.cfg');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** Accept time (ms since the epoch) of the last request HAProxy gave n3, or sent elsewhere after trying a server (only n3 fails here). */
function lastRoutedByHaproxy(logFile: string, proxy: string, from: number): number | undefined {
  let last: number | undefined;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const [ts, px, server, retries] = line.split(' ');
    // Request lines only (HAProxy writes its own notices to the same stream).
    if (px !== proxy || ts === undefined || !/^\d+\.\d{3}$/.test(ts)) continue;
    const at = Math.round(Number(ts) * 1000);
    if (at < from) continue;
    if (server === 'n3' || (retries !== undefined && retries !== '0')) last = Math.max(last ?? at, at);
  }
  return last;
}

async function main(): Promise<void> {
  for (const tool of ['haproxy']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (apt-get install haproxy)`);
  }
  const bed = await TestBed.create({ hosts: [...NODES, 'w', 'c'], label: 'bench-eject' });
  const dir = mkdtempSync(join(tmpdir(), 'skyha-bench-eject-'));
  const runner = await (async () => {
    const spec: ClusterSpec = {
      name: 'bench',
      profile: 'lan',
      nodes: NODES.map((n) => ({ name: n, address: bed.host(n).address })),
      witnesses: [{ name: 'w', address: bed.host('w').address }],
      log: { level: 'warn' },
      modules: {
        web: {
          kind: 'farm',
          start: sampleAppCommand(),
          port: APP_PORT,
          environment: { APP_PORT: String(APP_PORT) },
          stop_timeout: '1s',
          checkers: [{ kind: 'tcp', port: APP_PORT }],
          gate: { port: GATE_PORT },
        },
      },
    };
    return new ClusterRunner(await writeClusterFiles(dir, spec), spec, new BedLauncher(bed));
  })();
  const haproxyLog = join(dir, 'haproxy.log');
  let haproxy: BedProcess | undefined;
  const rounds: Figures[][] = [];
  try {
    runner.startAll();
    haproxy = bed.spawn('n1', 'haproxy', ['-db', '-f', haproxyConfig(dir, (n) => bed.host(n).address)], { stdoutFile: haproxyLog });
    const api = new RuntimeApi(join(dir, 'haproxy.sock'));
    const n3 = async (): Promise<Array<string | undefined>> => {
      const gate = (await runner.status('n1'))?.modules.find((m) => m.name === 'web')?.gate;
      const rows = await Promise.all(CONTESTANTS.filter((c) => c.haproxy).map((c) => api.showStat(c.haproxy!).catch(() => [])));
      return [gate?.backends.find((b) => b.node === 'n3')?.health, ...rows.map((r) => r.find((s) => s.name === 'n3')?.status)];
    };
    const allIn = async (): Promise<void> => {
      await waitFor(
        'n3 in rotation everywhere',
        async () => {
          const gate = (await runner.status('n1'))?.modules.find((m) => m.name === 'web')?.gate;
          const rows = await Promise.all(CONTESTANTS.filter((c) => c.haproxy).map((c) => api.showStat(c.haproxy!).catch(() => [])));
          return gate?.backends.length === 3 && gate.backends.every((b) => b.health === 'up') && rows.every((r) => NODES.every((n) => r.find((s) => s.name === n)?.status === 'UP'));
        },
        { deadline: 30_000, every: 100 },
      );
    };
    await allIn();

    for (let round = 1; round <= ROUNDS; round++) {
      const clients = CONTESTANTS.map((c, i) => {
        const out = join(dir, `round-${round}-${i}.json`);
        const args = [CLIENT, '--url', `http://${bed.host('n1').address}:${c.port}/`, '--rate', String(RATE), '--duration', String(BEFORE_FAULT + AFTER_FAULT), '--timeout', String(CLIENT_DEADLINE), '--out', out];
        return { out, proc: bed.spawn('c', process.execPath, args) };
      });
      await Promise.all(clients.map((c) => c.proc.waitOutput(/^ready$/m, { deadline: 10_000 })));
      await waitFor('every client to have answers', () => clients.every((c) => /ok [1-9]\d+/.test(c.proc.stdout())), { deadline: 10_000 });
      const t0 = Date.now();
      await bed.linkDown('n3');
      const out: Array<number | undefined> = CONTESTANTS.map(() => undefined);
      await waitFor(
        'n3 out of rotation everywhere',
        async () => {
          const states = await n3();
          const now = Date.now() - t0;
          states.forEach((s, i) => {
            if (out[i] === undefined && (s === 'down' || s?.startsWith('DOWN'))) out[i] = now;
          });
          return out.every((o) => o !== undefined);
        },
        { deadline: 20_000, every: 10 },
      );
      await waitFor('the clients to finish', () => clients.every((c) => !c.proc.running), { deadline: BEFORE_FAULT + AFTER_FAULT + CLIENT_DEADLINE + 10_000 });
      // HAProxy logs a request when it ends: one still waiting on the lost node (sent on a kept-alive connection, it waits
      // for `timeout server`) is ended here, after its client gave up, so that its line is written.
      for (const c of CONTESTANTS) if (c.haproxy) await api.command(`shutdown sessions server ${c.haproxy}/n3`);
      await waitFor(
        'HAProxy to end every session',
        async () => (await Promise.all(CONTESTANTS.filter((c) => c.haproxy).map((c) => api.showStat(c.haproxy!)))).every((rows) => rows.find((r) => r.name === 'BACKEND')?.scur === 0),
        { deadline: 30_000, every: 100 },
      );
      const gateLast = (await runner.status('n1'))?.modules.find((m) => m.name === 'web')?.gate?.backends.find((b) => b.node === 'n3')?.lastRequestAt;
      const figures = CONTESTANTS.map((c, i): Figures => {
        const result = JSON.parse(readFileSync(clients[i]!.out, 'utf8')) as ClientResult;
        const last = c.haproxy ? lastRoutedByHaproxy(haproxyLog, c.haproxy, t0) : gateLast;
        return {
          out: out[i],
          lastRouted: last !== undefined && last > t0 ? last - t0 : 0,
          failed: result.records.filter((r) => r.status < 200 || r.status >= 300).length,
          sent: result.records.length,
        };
      });
      rounds.push(figures);
      process.stdout.write(`round ${round}: ${CONTESTANTS.map((c, i) => `${c.name}: out ${figures[i]!.out} ms, last routed ${figures[i]!.lastRouted} ms, failed ${figures[i]!.failed}/${figures[i]!.sent}`).join('; ')}\n`);
      await bed.linkUp('n3');
      await allIn();
    }
  } finally {
    haproxy?.kill('SIGTERM');
    await haproxy?.exited;
    await runner.stopAll(10_000).catch(() => undefined);
    await bed.destroy();
    if (process.env.SKYHA_BENCH_KEEP) process.stdout.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }

  const rows = CONTESTANTS.map((c, i) => {
    const col = (f: (x: Figures) => number) => rounds.map((r) => f(r[i]!));
    return `| ${c.name} | ${Math.round(median(col((x) => x.out ?? NaN)))} | ${Math.round(median(col((x) => x.lastRouted)))} | ${median(col((x) => x.failed))} | ${Math.max(...col((x) => x.failed))} |`;
  });
  const [gateRow, defaultRow] = [0, 1].map((i) => rounds.map((r) => r[i]!));
  const ratio = median(defaultRow!.map((d, k) => d.lastRouted / Math.max(1, gateRow![k]!.lastRouted)));
  const lines = [
    `Run ${new Date().toISOString().slice(0, 10)}, ${ROUNDS} rounds, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), load average before ${loadavg()[0]!.toFixed(2)}. Command: \`ROUNDS=${ROUNDS} npm run bench:eject\`.`,
    '',
    `Three nodes on network namespaces (LAN profile), ${RATE} GET/s per contestant from a client host, open loop, ${CLIENT_DEADLINE / 1000} s deadline per request; \`ip link set down\` on one node's link. Times are from that moment; medians of the rounds.`,
    '',
    '| contestant | out of rotation (ms) | last request routed to the lost node (ms) | failed requests (median) | failed (worst round) |',
    '|---|---:|---:|---:|---:|',
    ...rows,
    '',
    `HAProxy with default checks keeps routing to the lost node ${ratio.toFixed(1)}× as long as skyha's gate (median of per-round ratios). HAProxy has Debian's default timeouts (connect 5 s), \`retries 3\`, \`option redispatch\`; a request it sends to the lost node waits for the connect timeout, past the client's deadline. skyha's gate learns of the loss from the cluster (heartbeats every 100 ms, dead after at most 600 ms) and sends the requests it had in flight there to another node. With checks tuned to 250 ms, HAProxy still routes to the lost node for three check timeouts, and each request it sends there in that time fails.`,
  ];
  writeSection('eject', 'Gate: ejection of a lost node (bench:eject)', lines);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
