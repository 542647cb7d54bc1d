/**
 * npm run bench:failover — time from kill -9 of a mirror primary (its agent
 * and its application together, as when the machine dies) to the new
 * primary's application answering HTTP, on hosts made of network namespaces
 * (two nodes and a witness, LAN profile). At least 10 runs; each run kills the
 * current primary, measures, restarts the killed node and waits until it is
 * back in sync. Writes median and p99 into docs/benchmarks.md.
 *
 * The application is polled every 5 ms from the root namespace, so each figure
 * carries up to 5 ms of polling error.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestBed } from '../src/testing/bed/bed.js';
import { BedLauncher } from '../src/testing/bed-launcher.js';
import { writeClusterFiles, type ClusterSpec } from '../src/testing/cluster-files.js';
import { ClusterRunner } from '../src/testing/cluster-runner.js';
import { assertNoOverlap, primaryIntervals, readObserver } from '../src/testing/bed/observer.js';
import { waitFor } from '../src/testing/wait.js';
import { sampleAppCommand } from '../src/testing/sample-app.js';
import { BENCHMARKS_DOC, writeSection } from './doc-section.js';
import { PROFILES } from '../src/config/profiles.js';

const LAN = PROFILES.lan;

const RUNS = Number(process.env.RUNS ?? 15);
const APP_PORT = 8080;

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};

async function answers(address: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${address}:${APP_PORT}/`, { signal: AbortSignal.timeout(200) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const bed = await TestBed.create({ hosts: ['n1', 'n2', 'w'], label: 'bench-failover' });
  const dir = mkdtempSync(join(tmpdir(), 'skyha-bench-'));
  const observer = join(dir, 'observer.jsonl');
  const spec: ClusterSpec = {
    name: 'bench',
    profile: 'lan',
    nodes: [
      { name: 'n1', address: bed.host('n1').address },
      { name: 'n2', address: bed.host('n2').address },
    ],
    witnesses: [{ name: 'w', address: bed.host('w').address }],
    log: { level: 'info' },
    modules: {
      db: {
        kind: 'mirror',
        start: sampleAppCommand(),
        environment: { APP_PORT: String(APP_PORT), SKYHA_TEST_OBSERVER: observer },
        directories: [join(dir, '{node}', 'db')],
        stop_timeout: '1s',
      },
    },
  };
  const files = await writeClusterFiles(dir, spec);
  const runner = new ClusterRunner(files, spec, new BedLauncher(bed));
  const times: number[] = [];
  try {
    runner.startAll();
    for (let run = 0; run < RUNS; run++) {
      const primary = await runner.waitPrimary('db', { deadline: 30_000 });
      const other = primary === 'n1' ? 'n2' : 'n1';
      await waitFor(`${other} in sync`, async () => (await runner.status(primary))?.modules[0]?.inSync?.includes(other), { deadline: 20_000 });
      // Let the lease settle into its steady renewal rhythm, at a random phase of it.
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 400));
      const pid = (await runner.appPid(primary, 'db'))!;
      const t0 = performance.now();
      runner.running.get(primary)!.kill('SIGKILL');
      process.kill(pid, 'SIGKILL');
      const address = runner.member(other).address;
      await waitFor(`the application on ${other}`, () => answers(address), { deadline: 10_000, every: 5 });
      const took = performance.now() - t0;
      times.push(took);
      process.stdout.write(`run ${run + 1}/${RUNS}: ${primary} killed, ${other} answered after ${took.toFixed(0)} ms\n`);
      await runner.running.get(primary)?.exited;
      runner.start(primary);
      await waitFor(`${primary} back`, async () => (await runner.status(primary))?.modules[0]?.role === 'secondary', { deadline: 20_000 });
    }
    assertNoOverlap(primaryIntervals(readObserver(observer), { slackMs: 10 }));
  } finally {
    await runner.stopAll(10_000).catch(() => undefined);
    await bed.destroy();
    rmSync(dir, { recursive: true, force: true });
  }

  const median = quantile(times, 0.5);
  const p99 = quantile(times, 0.99);
  writeSection('failover', 'Failover (`npm run bench:failover`)', [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} (load average ${loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}.`,
    '',
    '| runs | median | p99 | min | max | target |',
    '| --- | --- | --- | --- | --- | --- |',
    `| ${times.length} | ${median.toFixed(0)} ms | ${p99.toFixed(0)} ms | ${Math.min(...times).toFixed(0)} ms | ${Math.max(...times).toFixed(0)} ms | median ≤ 1000 ms, p99 ≤ 2000 ms |`,
    '',
    `All runs, ms: ${times.map((t) => t.toFixed(0)).join(', ')}.`,
    '',
    `Command: \`npm run bench:failover\` (\`RUNS=${RUNS}\`; needs root for the network namespaces). Two nodes and a witness,`,
    `each agent a separate process in its own network namespace, LAN profile (lease ${LAN.lease} ms, renewal every ${LAN.renewInterval} ms,`,
    `drift margin ${LAN.driftMargin} ms). Each run kills the primary's agent and application with SIGKILL at a random phase of the`,
    'lease renewal and measures until the other node\'s application answers HTTP (polled every 5 ms). The observer',
    'file confirms that no two primaries ever overlapped. Where the time goes: the voters grant the lease to another',
    'node `lease + drift margin` after the last renewal they accepted (so 0–1 renewal interval less after the kill),',
    'one acquisition round (a few ms), and the application\'s own start: the sample application is a Node.js',
    'process, which takes ~150–200 ms here to listen. With 15 runs, p99 is the slowest run.',
    '',
    'No peer runs in this benchmark: keepalived, the closest, moves an address rather than an application and',
    'does not fence (after `kill -9 keepalived` the old master keeps the address); with its default',
    'advertisement interval (1 s) a backup takes over after about 3 s (3 × advert_int + skew), not measured here.',
  ]);
  process.stdout.write(`median ${median.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms; wrote ${BENCHMARKS_DOC}\n`);
}

await main();
