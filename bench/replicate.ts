/**
 * npm run bench:replicate — mirror replication against the real peers, in
 * one run, on hosts made of network namespaces (two nodes and a witness;
 * the primary n1, the secondary n2; rsync runs as a daemon on n2 and lsyncd
 * and the rsync client on n1):
 *
 * 1. propagation: a small file written on the primary, until it is visible
 *    on the secondary (inotify on the secondary's directory, same clock);
 *    skyha vs lsyncd with delay 0 and lsyncd with its default delay;
 * 2. barrier round trip (write a small file, barrier through the client
 *    library) against the link's RTT (ping) and one fsync here;
 * 3. throughput: 1 GiB of new files moved into the primary's directory
 *    until the barrier returns, vs `rsync --whole-file` of the same tree;
 * 4. incremental resync: 200 × 5 MiB, the secondary away while 1 % of the
 *    4 KiB blocks change, from its restart until it is in sync again (bytes
 *    counted on the link), vs `rsync --inplace --no-whole-file`.
 *
 * ROUNDS rounds of each (default 5), medians into docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, cpSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, watch, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BarrierClient } from '../src/client/barrier.js';
import { TestBed } from '../src/testing/bed/bed.js';
import { BedLauncher } from '../src/testing/bed-launcher.js';
import { writeClusterFiles, type ClusterSpec } from '../src/testing/cluster-files.js';
import { ClusterRunner } from '../src/testing/cluster-runner.js';
import { sampleAppCommand } from '../src/testing/sample-app.js';
import { waitFor } from '../src/testing/wait.js';
import { BENCHMARKS_DOC, writeSection } from './doc-section.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const SAMPLES = Number(process.env.SAMPLES ?? 40);
const LSYNCD_DEFAULT_SAMPLES = Number(process.env.LSYNCD_DEFAULT_SAMPLES ?? 2);
const RSYNC_PORT = 8873;
/** Which parts to run (all by default): propagation, barrier, throughput, resync. A partial run does not write the doc. */
const PHASES = new Set((process.env.PHASES ?? 'propagation,barrier,throughput,resync').split(','));
const MiB = 1024 * 1024;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (x: number): string => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
const pause = (t: number) => new Promise((r) => setTimeout(r, t));
/** Before every timed run, skyha's and the peers' alike: what the setup left dirty (gigabytes of copies) is written back first, not during the run. */
const settleDisk = (): void => void spawnSync('sync', { stdio: 'ignore' });

/** Resolves with the time (performance.now) at which `name` appears in `dir` with `content`. */
function appearance(dir: string, name: string, content: string, deadline: number): { seen: Promise<number>; close: () => void } {
  const w = watch(dir);
  let timer: NodeJS.Timeout | undefined;
  const seen = new Promise<number>((resolve, reject) => {
    const check = (): void => {
      try {
        if (existsSync(join(dir, name)) && readText(join(dir, name)) === content) resolve(performance.now());
      } catch {
        // mid-rename: the next event tells
      }
    };
    w.on('change', (_e, f) => {
      if (f === name) check();
    });
    timer = setTimeout(() => reject(new Error(`${name} did not appear in ${dir} within ${deadline} ms`)), deadline);
  });
  return {
    seen,
    close: () => {
      clearTimeout(timer);
      w.close();
    },
  };
}

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Writes a small file and measures until it is visible at `target`. */
async function propagation(source: string, target: string, name: string, deadline = 5000): Promise<number> {
  const content = `${name} ${Date.now()}\n`;
  const a = appearance(target, name, content, deadline);
  const t0 = performance.now();
  writeFileSync(join(source, name), content);
  try {
    return (await a.seen) - t0;
  } finally {
    a.close();
  }
}

function fsyncTimes(dir: string, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const fd = openSync(join(dir, `fsync-${i}`), 'w');
    writeSync(fd, Buffer.alloc(100, i));
    const t0 = performance.now();
    fsyncSync(fd);
    out.push(performance.now() - t0);
    closeSync(fd);
    rmSync(join(dir, `fsync-${i}`));
  }
  return out;
}

/** A tree of `files` files of `size` bytes (random, each different). */
function makeTree(dir: string, files: number, size: number): void {
  mkdirSync(dir, { recursive: true });
  const body = randomBytes(size);
  for (let i = 0; i < files; i++) {
    body.writeUInt32BE(i, 0);
    writeFileSync(join(dir, `f${String(i).padStart(4, '0')}.bin`), body);
  }
}

/** Overwrites `share` of the 4 KiB blocks of every file under `dir`, at positions fixed by `seed`. Returns bytes changed. */
function scribble(dir: string, files: number, size: number, share: number, seed: number): number {
  let x = seed >>> 0 || 1;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const blocks = size / 4096;
  let changed = 0;
  for (let i = 0; i < files; i++) {
    const fd = openSync(join(dir, `f${String(i).padStart(4, '0')}.bin`), 'r+');
    const picked = new Set<number>();
    while (picked.size < Math.round(blocks * share)) picked.add(Math.floor(rnd() * blocks));
    for (const b of picked) {
      writeSync(fd, randomBytes(4096), 0, 4096, b * 4096);
      changed += 4096;
    }
    closeSync(fd);
  }
  return changed;
}

function pingRtt(bed: TestBed, from: string, to: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = bed.spawn(from, 'ping', ['-c', '20', '-i', '0.02', '-q', to]);
    void p.exited.then(() => {
      const out = p.stdout();
      const m = /= [\d.]+\/([\d.]+)\//.exec(out);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`ping gave no RTT: ${out}`));
    });
  });
}

/** Runs a command on a bed host, resolves with its stdout and wall time. */
function timed(bed: TestBed, host: string, command: string, args: string[]): Promise<{ ms: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = bed.spawn(host, command, args);
    void p.exited.then((st) => {
      if (st.code === 0) resolve({ ms: performance.now() - t0, out: p.stdout() });
      else reject(new Error(`${command} ${args.join(' ')} exited ${st.code ?? st.signal}: ${p.stderr()}`));
    });
  });
}

async function main(): Promise<void> {
  for (const tool of ['rsync', 'lsyncd', 'ping']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (Debian packages rsync, lsyncd, iputils-ping)`);
  const bed = await TestBed.create({ hosts: ['n1', 'n2', 'w'], label: 'bench-repl' });
  const dir = mkdtempSync(join(tmpdir(), 'skyha-bench-repl-'));
  const n2 = bed.host('n2').address;
  const spec: ClusterSpec = {
    name: 'bench',
    profile: 'lan',
    nodes: [
      { name: 'n1', address: bed.host('n1').address },
      { name: 'n2', address: n2 },
    ],
    witnesses: [{ name: 'w', address: bed.host('w').address }],
    log: { level: 'info' },
    modules: {
      data: { kind: 'mirror', start: sampleAppCommand(), environment: { APP_PORT: '8080' }, directories: [join(dir, '{node}', 'data')], preferred_node: 'n1', stop_timeout: '1s' },
    },
  };
  const files = await writeClusterFiles(dir, spec);
  const runner = new ClusterRunner(files, spec, new BedLauncher(bed));
  const primData = join(dir, 'n1', 'data');
  const secData = join(dir, 'n2', 'data');
  const client = new BarrierClient({ dataDir: join(dir, 'data', 'n1'), timeoutMs: 600_000 });
  const rsyncDst = join(dir, 'rsync-dst');
  const lsyncSrc = join(dir, 'lsync-src');
  mkdirSync(rsyncDst, { recursive: true });
  mkdirSync(lsyncSrc, { recursive: true });
  const rsyncConf = join(dir, 'rsyncd.conf');
  writeFileSync(rsyncConf, `use chroot = no\nuid = 0\ngid = 0\n[bench]\npath = ${rsyncDst}\nread only = no\n`);
  const daemon = bed.spawn('n2', 'rsync', ['--daemon', '--no-detach', `--config=${rsyncConf}`, `--address=${n2}`, `--port=${RSYNC_PORT}`]);
  const target = (sub: string): string => `rsync://${n2}:${RSYNC_PORT}/bench/${sub}`;
  const results = {
    propagation: { skyha: [] as number[], lsyncd0: [] as number[], lsyncdDefault: [] as number[] },
    barrier: { ms: [] as number[], rtt: [] as number[], fsync: [] as number[] },
    throughput: { skyha: [] as number[], rsync: [] as number[], rsyncFsync: [] as number[] },
    resync: { skyha: [] as number[], skyhaBytes: [] as number[], rsync: [] as number[], rsyncBytes: [] as number[], restart: [] as number[], restartBytes: [] as number[], changed: 0 },
  };
  let lsyncd: ReturnType<TestBed['spawn']> | undefined;
  try {
    runner.startAll();
    // n1 is the preferred node: primary from the start, or after a failback once it is in sync.
    await waitFor('n1 (preferred) primary', async () => (await runner.status('n1'))?.modules[0]?.role === 'primary', { deadline: 60_000 });
    await waitFor('n2 in sync', async () => (await runner.status('n1'))?.modules[0]?.inSync?.includes('n2'), { deadline: 30_000 });
    await waitFor('the rsync daemon', () => timed(bed, 'n1', 'rsync', [target('')]).then(() => true, () => false), { deadline: 10_000, every: 100 });

    // 1. Propagation of a small file.
    for (let r = 0; PHASES.has('propagation') && r < ROUNDS; r++) {
      const round: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        round.push(await propagation(primData, secData, `p-${r}-${i}.txt`));
        await pause(20);
      }
      results.propagation.skyha.push(median(round));
      process.stdout.write(`propagation round ${r + 1}: skyha median ${ms(median(round))} ms\n`);
    }
    const lsyncdConf = (delay: number | undefined): string => {
      const file = join(dir, `lsyncd-${delay ?? 'default'}.lua`);
      const dst = join(rsyncDst, 'lsync');
      mkdirSync(dst, { recursive: true });
      writeFileSync(file, `settings { nodaemon = true, logfile = "${join(dir, 'lsyncd.log')}", statusFile = "${join(dir, 'lsyncd.status')}" }\nsync { default.rsync, source = "${lsyncSrc}", target = "${target('lsync/')}"${delay === undefined ? '' : `, delay = ${delay}`} }\n`);
      return file;
    };
    for (const delay of PHASES.has('propagation') ? ([0, undefined] as const) : []) {
      lsyncd = bed.spawn('n1', 'lsyncd', [lsyncdConf(delay)]);
      // Its start-up sync first: a probe file written before it started is there once it has run.
      await waitFor('lsyncd start-up', async () => existsSync(join(rsyncDst, 'lsync')), { deadline: 30_000 });
      await propagation(lsyncSrc, join(rsyncDst, 'lsync'), `warm-${delay ?? 'd'}.txt`, 30_000);
      const samples = delay === 0 ? SAMPLES : LSYNCD_DEFAULT_SAMPLES;
      const rounds = delay === 0 ? ROUNDS : 1;
      for (let r = 0; r < rounds; r++) {
        const round: number[] = [];
        for (let i = 0; i < samples; i++) {
          round.push(await propagation(lsyncSrc, join(rsyncDst, 'lsync'), `l${delay ?? 'd'}-${r}-${i}.txt`, 60_000));
          await pause(20);
        }
        (delay === 0 ? results.propagation.lsyncd0 : results.propagation.lsyncdDefault).push(median(round));
        process.stdout.write(`propagation: lsyncd delay ${delay ?? 'default'} median ${ms(median(round))} ms\n`);
      }
      bed.kill(lsyncd);
      await lsyncd.exited;
      lsyncd = undefined;
    }

    // 2. Barrier round trip.
    await client.barrier('data');
    for (let r = 0; PHASES.has('barrier') && r < ROUNDS; r++) {
      const round: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        writeFileSync(join(primData, `b-${r}-${i}.txt`), `barrier ${i}\n`);
        const t0 = performance.now();
        await client.barrier('data');
        round.push(performance.now() - t0);
      }
      results.barrier.ms.push(median(round));
      results.barrier.rtt.push(await pingRtt(bed, 'n1', n2));
      results.barrier.fsync.push(median(fsyncTimes(dir, 20)));
      process.stdout.write(`barrier round ${r + 1}: median ${ms(median(round))} ms (RTT ${ms(results.barrier.rtt.at(-1)!)} ms, fsync ${ms(results.barrier.fsync.at(-1)!)} ms)\n`);
    }

    // 3. Throughput: 1 GiB of new files.
    const gib = join(dir, 'gib');
    if (PHASES.has('throughput')) makeTree(gib, 256, 4 * MiB);
    for (let r = 0; PHASES.has('throughput') && r < ROUNDS; r++) {
      const stage = join(dir, `stage-${r}`);
      cpSync(gib, stage, { recursive: true });
      settleDisk();
      const t0 = performance.now();
      renameSync(stage, join(primData, `bulk-${r}`));
      await client.barrier('data');
      results.throughput.skyha.push(performance.now() - t0);
      rmSync(join(primData, `bulk-${r}`), { recursive: true });
      await client.barrier('data');
      for (const [key, extra] of [['rsync', []], ['rsyncFsync', ['--fsync']]] as const) {
        settleDisk();
        const run = await timed(bed, 'n1', 'rsync', ['-a', '--whole-file', ...extra, `${gib}/`, target(`bulk-${r}/`)]);
        results.throughput[key].push(run.ms);
        rmSync(join(rsyncDst, `bulk-${r}`), { recursive: true, force: true });
      }
      process.stdout.write(`throughput round ${r + 1}: skyha ${ms(results.throughput.skyha.at(-1)!)} ms, rsync ${ms(results.throughput.rsync.at(-1)!)} ms, rsync --fsync ${ms(results.throughput.rsyncFsync.at(-1)!)} ms\n`);
    }
    rmSync(gib, { recursive: true, force: true });

    // 4. Incremental resync: 200 × 5 MiB, 1 % of the blocks changed while the secondary is away.
    const base = join(dir, 'base');
    if (PHASES.has('resync')) makeTree(base, 200, 5 * MiB);
    for (let r = 0; PHASES.has('resync') && r < ROUNDS; r++) {
      const inc = join(primData, 'inc');
      cpSync(base, join(dir, 'stage-inc'), { recursive: true });
      renameSync(join(dir, 'stage-inc'), inc);
      await client.barrier('data');
      await timed(bed, 'n1', 'rsync', ['-a', '--whole-file', `${base}/`, target('inc/')]);
      // Away twice: cut off by a partition (its agent keeps running), then stopped (its agent starts again).
      for (const way of ['partition', 'restart'] as const) {
        if (way === 'partition') await bed.partition('n2', ['n1', 'w']);
        else await runner.kill('n2');
        await waitFor('n2 out of sync', async () => !(await runner.status('n1'))?.modules[0]?.inSync?.includes('n2'), { deadline: 10_000 });
        results.resync.changed = scribble(inc, 200, 5 * MiB, 0.01, 1000 + 2 * r + (way === 'restart' ? 1 : 0));
        // Everything captured and read on the primary (no secondary to acknowledge it).
        await client.barrier('data', 1000).catch(() => undefined);
        await waitFor('n1 shipped every change', async () => (await runner.status('n1'))?.modules[0]?.replication?.pending === 0, { deadline: 60_000 });
        const before = ((await runner.status('n1'))?.links as { bytesSentTo: Record<string, number> }).bytesSentTo.n2 ?? 0;
        settleDisk();
        const t0 = performance.now();
        if (way === 'partition') await bed.heal('n2');
        else runner.start('n2');
        await waitFor('n2 in sync again', async () => (await runner.status('n1', 200))?.modules[0]?.inSync?.includes('n2'), { deadline: 120_000, every: 10 });
        const took = performance.now() - t0;
        const after = ((await runner.status('n1'))?.links as { bytesSentTo: Record<string, number> }).bytesSentTo.n2 ?? 0;
        settleDisk();
        const rs = await timed(bed, 'n1', 'rsync', ['-a', '--inplace', '--no-whole-file', '--stats', `${inc}/`, target('inc/')]);
        const rsBytes = Number(/Total bytes sent: ([\d,]+)/.exec(rs.out)?.[1]?.replaceAll(',', '') ?? NaN);
        if (way === 'partition') {
          results.resync.skyha.push(took);
          results.resync.skyhaBytes.push(after - before);
          results.resync.rsync.push(rs.ms);
          results.resync.rsyncBytes.push(rsBytes);
        } else {
          results.resync.restart.push(took);
          results.resync.restartBytes.push(after - before);
        }
        process.stdout.write(`resync round ${r + 1} (${way}): skyha ${ms(took)} ms / ${after - before} B, rsync ${ms(rs.ms)} ms / ${rsBytes} B (changed ${results.resync.changed} B)\n`);
      }
      rmSync(inc, { recursive: true });
      rmSync(join(rsyncDst, 'inc'), { recursive: true, force: true });
      await client.barrier('data', 60_000);
    }
    rmSync(base, { recursive: true, force: true });
  } finally {
    client.close();
    if (lsyncd) bed.kill(lsyncd);
    bed.kill(daemon);
    await runner.stopAll(10_000).catch(() => undefined);
    await bed.destroy();
    if (process.env.SKYHA_BENCH_KEEP) process.stdout.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
  if (PHASES.size === 4) report(results);
  else process.stdout.write(`${JSON.stringify(results)}\n(a partial run: docs/benchmarks.md not written)\n`);
}

function report(r: {
  propagation: { skyha: number[]; lsyncd0: number[]; lsyncdDefault: number[] };
  barrier: { ms: number[]; rtt: number[]; fsync: number[] };
  throughput: { skyha: number[]; rsync: number[]; rsyncFsync: number[] };
  resync: { skyha: number[]; skyhaBytes: number[]; rsync: number[]; rsyncBytes: number[]; restart: number[]; restartBytes: number[]; changed: number };
}): void {
  const p = { skyha: median(r.propagation.skyha), lsyncd0: median(r.propagation.lsyncd0), lsyncdDefault: median(r.propagation.lsyncdDefault) };
  const b = { ms: median(r.barrier.ms), rtt: median(r.barrier.rtt), fsync: median(r.barrier.fsync) };
  const t = { skyha: median(r.throughput.skyha), rsync: median(r.throughput.rsync), rsyncFsync: median(r.throughput.rsyncFsync) };
  const s = { skyha: median(r.resync.skyha), skyhaBytes: median(r.resync.skyhaBytes), rsync: median(r.resync.rsync), rsyncBytes: median(r.resync.rsyncBytes) };
  const gibps = (x: number) => `${(1024 / (x / 1000)).toFixed(0)} MiB/s`;
  const list = (xs: number[]) => xs.map(ms).join(', ');
  writeSection('replicate', 'Replication (`npm run bench:replicate`)', [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} (load average ${loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}; medians of ${r.throughput.skyha.length} rounds.`,
    '',
    '| measure | skyha | peer | ratio | target |',
    '| --- | --- | --- | --- | --- |',
    `| small file write → visible on the secondary, p50 | ${ms(p.skyha)} ms | lsyncd delay 0: ${ms(p.lsyncd0)} ms; lsyncd default: ${(p.lsyncdDefault / 1000).toFixed(1)} s | ${(p.skyha / p.lsyncd0).toFixed(2)}× lsyncd 0 | p50 ≤ 3 ms |`,
    `| barrier round trip (write, barrier), p50 | ${ms(b.ms)} ms | link RTT ${ms(b.rtt)} ms, fsync ${ms(b.fsync)} ms | ${(b.ms / (b.rtt + b.fsync)).toFixed(1)}× (RTT + fsync) | ≤ 2× (RTT + fsync) |`,
    `| 1 GiB of new files (256 × 4 MiB) | ${ms(t.skyha)} ms (${gibps(t.skyha)}) | rsync --whole-file: ${ms(t.rsync)} ms (${gibps(t.rsync)}); with --fsync: ${ms(t.rsyncFsync)} ms | ${(t.rsync / t.skyha).toFixed(2)}× rsync's speed | ≥ 1.5× rsync |`,
    `| resync, 200 × 5 MiB, 1 % of blocks changed (${(r.resync.changed / MiB).toFixed(1)} MiB) while the secondary was cut off | ${ms(s.skyha)} ms, ${(s.skyhaBytes / MiB).toFixed(2)} MiB on the link | rsync --inplace --no-whole-file: ${ms(s.rsync)} ms, ${(s.rsyncBytes / MiB).toFixed(2)} MiB sent | ${(s.skyha / s.rsync).toFixed(2)}× rsync's time, ${(s.skyhaBytes / r.resync.changed).toFixed(2)}× the changed bytes | ≤ 0.5× rsync's time, ≤ 1.1× the changed bytes |`,
    `| the same while the secondary's agent was stopped, from its start | ${ms(median(r.resync.restart))} ms, ${(median(r.resync.restartBytes) / MiB).toFixed(2)} MiB on the link | | ${(median(r.resync.restartBytes) / r.resync.changed).toFixed(2)}× the changed bytes | |`,
    '',
    'Per round, ms:',
    `propagation skyha ${list(r.propagation.skyha)}; lsyncd 0 ${list(r.propagation.lsyncd0)}; lsyncd default ${list(r.propagation.lsyncdDefault)};`,
    `barrier ${list(r.barrier.ms)} (RTT ${list(r.barrier.rtt)}, fsync ${list(r.barrier.fsync)});`,
    `1 GiB skyha ${list(r.throughput.skyha)}, rsync ${list(r.throughput.rsync)}, rsync --fsync ${list(r.throughput.rsyncFsync)};`,
    `resync after a partition skyha ${list(r.resync.skyha)} (bytes ${r.resync.skyhaBytes.join(', ')}), rsync ${list(r.resync.rsync)} (bytes ${r.resync.rsyncBytes.join(', ')});`,
    `resync after an agent restart ${list(r.resync.restart)} (bytes ${r.resync.restartBytes.join(', ')}).`,
    '',
    `Command: \`npm run bench:replicate\` (\`ROUNDS=${r.throughput.skyha.length} SAMPLES=${SAMPLES}\`; needs root for the network namespaces, and Debian's rsync and lsyncd).`,
    'Two nodes and a witness, each agent in its own network namespace on a veth bridge (no added delay: this kernel has',
    'no netem); the rsync daemon runs on the secondary\'s host, lsyncd (default.rsync to that daemon) and the rsync client',
    'on the primary\'s. All data directories share one disk and the page cache; `sync` runs before every timed run (skyha\'s',
    'and the peers\' alike), so that the gigabytes the setup copies are not written back during one. Propagation is timed from the write on',
    'the primary to the inotify event of the file\'s final name on the secondary, in one process (one clock); each',
    `round is the median of ${SAMPLES} writes 20 ms apart (lsyncd default: ${LSYNCD_DEFAULT_SAMPLES} writes, one round). skyha's`,
    'secondary fsyncs every file (and its directory) before acknowledging; rsync does not fsync unless asked (`--fsync`).',
    'The barrier goes through the client library (`skyha/client`, one kept-open control-socket connection). A resync is',
    'timed from the heal of the partition (or the secondary agent\'s start: process start-up, TLS links, watcher, hello)',
    'until the primary counts the secondary in sync again (which includes committing the in-sync set through the lease);',
    'its bytes are the message frames the primary wrote to it meanwhile. The primary had already read the changed files',
    'to find their changed blocks when they were written, before the secondary came back; rsync reads and checksums',
    'both trees during its run. The 1 GiB figure is bounded by the primary\'s CPU: TLS on the link, SHA-256 of each',
    '4 KiB block and garbage collection of record buffers (see docs/design/replication.md).',
  ]);
  process.stdout.write(`wrote ${BENCHMARKS_DOC}\n`);
}

await main();
