/**
 * npm run bench:sim — how many fault schedules per second the simulator runs
 * against the real decision core, per cluster shape: the median of three
 * runs of 1,000 schedules each (the CI settings: 6 s of faults, 3 s quiet,
 * two worker threads). Writes its section of docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BENCHMARKS_DOC, writeSection } from './doc-section.js';

const CLI = fileURLToPath(new URL('../src/sim/cli.js', import.meta.url));
const SHAPES = ['2n+w', '3n', '5v'];
const RUNS = 3;
const SCHEDULES = 1000;

function once(shape: string, seed: number): number {
  const r = spawnSync(process.execPath, [CLI, '--model', 'skyha', '--shape', shape, '--schedules', String(SCHEDULES), '--seed', String(seed), '--duration', '6000', '--quiet', '3000'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sim failed on ${shape} seed ${seed}:\n${r.stdout}${r.stderr}`);
  const m = /([\d.]+) schedules\/s/.exec(r.stdout + r.stderr);
  if (!m) throw new Error(`no rate in the output:\n${r.stdout}`);
  return Number(m[1]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];
for (const shape of SHAPES) {
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) rates.push(once(shape, 1000 + i));
  rows.push(`| ${shape} | ${median(rates).toFixed(1)} | ${rates.map((r) => r.toFixed(1)).join(', ')} |`);
  process.stdout.write(`${shape}: ${rates.join(', ')} schedules/s\n`);
}
writeSection('sim', 'Simulator: fault schedules per second (`npm run bench:sim`)', [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} (load average ${loadavg()[0]!.toFixed(1)} at the end), Node ${process.version}.`,
  '',
  '| shape | schedules/s (median of 3) | runs |',
  '| --- | --- | --- |',
  ...rows,
  '',
  `Command: \`npm run bench:sim\` (${RUNS} runs × ${SCHEDULES} schedules per shape, seeds 1000–${1000 + RUNS - 1}, \`--duration 6000 --quiet 3000\`, 2 worker threads).`,
  'There is no peer to compare with: this is the rate at which CI explores fault schedules. One schedule is 9 s of',
  'virtual time with the `test` timing profile; larger clusters exchange more messages per virtual second.',
]);
process.stdout.write(`wrote ${BENCHMARKS_DOC}\n`);
