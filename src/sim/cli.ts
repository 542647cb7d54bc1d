/**
 * `npm run sim -- --schedules N --seed S [--shape 2n+w|3n|5v] [--model NAME] [--replay] [--verbose]`
 *
 * Runs N fault schedules (seeds derived from the master seed S) against a
 * model and checks each against the guarantees. On the first failure it
 * prints the failing schedule's seed, a replay command, the fault list, the
 * violations and the last lines of the trace, and exits 1. `--replay` runs
 * exactly the schedule with seed S and prints its whole trace: the same seed
 * prints the same bytes. Exit codes: 0 all passed, 1 a schedule failed,
 * 2 bad usage.
 *
 * Wall-clock time is read here only, to print the rate; nothing in the
 * simulation depends on it. With --workers > 1 the schedules are shared out
 * in chunks to worker threads; the failure reported is always the one with
 * the lowest schedule index, so the report does not depend on the workers.
 */
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CHECKERS, type CheckerName } from './checkers.js';
import { MODEL_NAMES, modelByName } from './models/index.js';
import type { LinkModel } from './network.js';
import type { SimModel } from './process.js';
import { deriveSeed } from './random.js';
import { formatFailure, runMany, runSchedule, type ManyTotals, type RunOptions, type RunResult } from './runner.js';
import { formatSchedule, type FaultOptions } from './schedule.js';
import { parseShape, SHAPE_NAMES } from './shape.js';

const USAGE = `Usage: npm run sim -- [options]

Runs seeded fault schedules against a member model on a virtual clock and
checks every one against the guarantees (never two primaries, no acknowledged
write lost, quorum before primary, liveness after healing, exclusive leases).

Options:
  --schedules N        schedules to run (default 1000)
  --seed S             master seed, 0..4294967295 (default 1); with --replay, the seed of one schedule
  --shape SHAPE        ${SHAPE_NAMES.join(' | ')} (Xn, Xn+Yw, Xv) (default 3n)
  --model NAME         one of: ${MODEL_NAMES.join(', ')} (default toy-lease)
  --replay             run exactly the schedule with seed S and print its whole trace
  --verbose            one line per schedule
  --harsh              harsh schedules: any number of members down at once
  --link-model MODEL   datagram (reordering, duplicates) or fifo (like TCP) (default datagram)
  --duration MS        length of the faulty period (default 10000)
  --quiet MS           length of the quiet period after healing (default 4000)
  --checks LIST        comma-separated checkers (default all: ${CHECKERS.join(',')})
  --tail K             trace lines shown with a failure (default 80)
  --workers N          worker threads (default: up to 2 cores, for 200 schedules or more)
  --keep-going         count every failing schedule instead of stopping at the first
  -h, --help           show this help

Exit codes: 0 every schedule passed, 1 a schedule failed, 2 bad usage.
`;

class UsageError extends Error {}

interface CliOptions {
  schedules: number;
  seed: number;
  shape: string;
  model: string;
  replay: boolean;
  verbose: boolean;
  harsh: boolean;
  linkModel: LinkModel;
  faults: Partial<FaultOptions>;
  checks: readonly CheckerName[];
  tail: number;
  workers: number;
  keepGoing: boolean;
}

function parse(argv: readonly string[]): CliOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        schedules: { type: 'string' },
        seed: { type: 'string' },
        shape: { type: 'string' },
        model: { type: 'string' },
        replay: { type: 'boolean' },
        verbose: { type: 'boolean' },
        harsh: { type: 'boolean' },
        'link-model': { type: 'string' },
        duration: { type: 'string' },
        quiet: { type: 'string' },
        checks: { type: 'string' },
        tail: { type: 'string' },
        workers: { type: 'string' },
        'keep-going': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const int = (name: string, v: string | undefined, d: number, min: number, max: number): number => {
    if (v === undefined) return d;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name}: expected a whole number from ${min} to ${max}, got "${v}"`);
    return Number(v);
  };
  const shape = values.shape ?? '3n';
  try {
    parseShape(shape);
  } catch (err) {
    throw new UsageError(`--shape: ${(err as Error).message}`);
  }
  const model = values.model ?? 'toy-lease';
  if (modelByName(model) === undefined) throw new UsageError(`--model: unknown model "${model}"; known: ${MODEL_NAMES.join(', ')}`);
  const linkModel = values['link-model'] ?? 'datagram';
  if (linkModel !== 'datagram' && linkModel !== 'fifo') throw new UsageError(`--link-model: expected datagram or fifo, got "${linkModel}"`);
  const checks = values.checks === undefined ? CHECKERS : values.checks.split(',').map((c) => c.trim());
  for (const c of checks) if (!(CHECKERS as readonly string[]).includes(c)) throw new UsageError(`--checks: unknown checker "${c}"; known: ${CHECKERS.join(', ')}`);
  const schedules = int('schedules', values.schedules, 1000, 1, 100_000_000);
  const faults: Partial<FaultOptions> = {};
  if (values.duration !== undefined) faults.duration = int('duration', values.duration, 10_000, 1, 1e9);
  if (values.quiet !== undefined) faults.quiet = int('quiet', values.quiet, 4_000, 0, 1e9);
  return {
    schedules,
    seed: int('seed', values.seed, 1, 0, 0xffffffff),
    shape,
    model,
    replay: values.replay ?? false,
    verbose: values.verbose ?? false,
    harsh: values.harsh ?? false,
    linkModel,
    faults,
    checks: checks as CheckerName[],
    tail: int('tail', values.tail, 80, 0, 1e9),
    workers: int('workers', values.workers, schedules >= 200 ? Math.min(2, availableParallelism()) : 1, 1, 64),
    keepGoing: values['keep-going'] ?? false,
  };
}

function runOptions(o: CliOptions): Omit<RunOptions<unknown>, 'seed'> {
  return {
    model: modelByName(o.model) as SimModel<unknown>,
    shape: o.shape,
    harsh: o.harsh,
    linkModel: o.linkModel,
    faults: o.faults,
    checks: o.checks,
  };
}

/** The command that replays one schedule of this run. */
function replayCommand(o: CliOptions, seed: number): string {
  const args = ['npm run sim --', '--replay', `--seed ${seed}`, `--model ${o.model}`, `--shape ${o.shape}`];
  if (o.harsh) args.push('--harsh');
  if (o.linkModel !== 'datagram') args.push(`--link-model ${o.linkModel}`);
  if (o.faults.duration !== undefined) args.push(`--duration ${o.faults.duration}`);
  if (o.faults.quiet !== undefined) args.push(`--quiet ${o.faults.quiet}`);
  if (o.checks !== CHECKERS) args.push(`--checks ${o.checks.join(',')}`);
  return args.join(' ');
}

function describeResult(r: RunResult): string {
  const skipped = r.results.filter((c) => c.skipped !== undefined).map((c) => c.checker);
  return `seed ${r.seed}: ${r.ok ? 'ok' : 'FAILED'}, ${r.schedule.events.length} faults, ${r.stats.events} events, ${r.stats.messages.sent} messages sent${skipped.length > 0 ? `, out of scope: ${skipped.join(', ')}` : ''}`;
}

function replay(o: CliOptions, write: (s: string) => void): number {
  const r = runSchedule({ ...runOptions(o), seed: o.seed, traceLimit: Infinity });
  write(`replay: seed ${o.seed}, model ${r.model}, shape ${r.shape.name} (${r.shape.nodes.length} nodes, ${r.shape.witnesses.length} witnesses)\n\nschedule:\n`);
  write(formatSchedule(r.schedule));
  write(`\ntrace (${r.trace.total} entries):\n`);
  write(r.trace.text());
  write('\nchecks:\n');
  for (const c of r.results) {
    const status = c.violations.length > 0 ? `${c.violations.length} violation(s)` : 'ok';
    write(`  ${c.checker}: ${status}${c.skipped === undefined ? '' : ` (${c.skipped})`}\n`);
    for (const v of c.violations) write(`    ${v.text}\n`);
  }
  if (r.error) write(`\nerror: ${r.error}\n`);
  const m = r.stats.messages;
  write(`\nstats: ${r.stats.events} events, ${r.stats.timers} timers, ${r.stats.keeperActions} keeper actions, messages ${m.sent} sent / ${m.delivered} delivered / ${m.dropped} dropped (${Object.entries(m.droppedBy).map(([k, v]) => `${k} ${v}`).join(', ')}) / ${m.duplicated} duplicated\n`);
  write(r.ok ? '\nresult: ok\n' : '\nresult: FAILED\n');
  return r.ok ? 0 : 1;
}

interface ChunkReport {
  start: number;
  count: number;
  failures: Array<{ index: number; seed: number }>;
  totals: ManyTotals;
  lines: string[];
}

function runChunk(o: CliOptions, start: number, count: number): ChunkReport {
  const lines: string[] = [];
  const s = runMany({
    ...runOptions(o),
    seed: o.seed,
    schedules: count,
    first: start,
    stopOnFailure: !o.keepGoing,
    traceLimit: 0, // a failure is replayed (deterministically) for its report
    onResult: o.verbose ? (r, i) => lines.push(`#${i} ${describeResult(r)}`) : undefined,
  });
  return { start, count: s.runs, failures: s.failures.map((f) => ({ index: f.index, seed: f.seed })), totals: s.totals, lines };
}

function addTotals(a: ManyTotals, b: ManyTotals): void {
  a.events += b.events;
  a.faults += b.faults;
  a.virtualMs += b.virtualMs;
  a.sent += b.sent;
  a.delivered += b.delivered;
  a.dropped += b.dropped;
  for (const [k, v] of Object.entries(b.skipped)) a.skipped[k as CheckerName] = (a.skipped[k as CheckerName] ?? 0) + (v ?? 0);
}

function ask(worker: Worker, start: number, count: number): Promise<ChunkReport> {
  return new Promise<ChunkReport>((resolve, reject) => {
    const onMessage = (r: ChunkReport): void => {
      worker.off('error', onError);
      resolve(r);
    };
    const onError = (err: Error): void => {
      worker.off('message', onMessage);
      reject(err);
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
    worker.postMessage({ start, count });
  });
}

async function runAll(o: CliOptions, write: (s: string) => void): Promise<number> {
  const t0 = performance.now();
  const totals: ManyTotals = { skipped: {}, events: 0, faults: 0, virtualMs: 0, sent: 0, delivered: 0, dropped: 0 };
  const failures: Array<{ index: number; seed: number }> = [];
  let runs = 0;
  const chunk = Math.max(1, Math.min(100, Math.ceil(o.schedules / (o.workers * 8))));
  let next = 0;
  // The lowest failing index so far: chunks that start after it are not needed (unless --keep-going).
  const limit = (): number => (o.keepGoing || failures.length === 0 ? o.schedules : Math.min(...failures.map((f) => f.index)));
  const take = (): { start: number; count: number } | undefined => {
    if (next >= limit()) return undefined;
    const start = next;
    const count = Math.min(chunk, o.schedules - start);
    next += count;
    return { start, count };
  };
  const collect = (r: ChunkReport): void => {
    runs += r.count;
    addTotals(totals, r.totals);
    failures.push(...r.failures);
    for (const l of r.lines) write(`${l}\n`);
  };

  if (o.workers <= 1) {
    for (let job = take(); job; job = take()) collect(runChunk(o, job.start, job.count));
  } else {
    await Promise.all(
      Array.from({ length: o.workers }, async () => {
        const worker = new Worker(new URL(import.meta.url), { workerData: { options: o } });
        try {
          for (let job = take(); job; job = take()) {
            const { start, count } = job;
            collect(await ask(worker, start, count));
          }
        } finally {
          await worker.terminate();
        }
      }),
    );
  }
  const wallMs = performance.now() - t0;
  failures.sort((a, b) => a.index - b.index);
  const first = failures[0];
  if (first !== undefined) {
    const r = runSchedule({ ...runOptions(o), seed: first.seed, traceLimit: Infinity });
    write(`\nschedule #${first.index} of master seed ${o.seed} failed\n`);
    write(formatFailure(r, { tail: o.tail, replay: replayCommand(o, first.seed) }));
    if (o.keepGoing && failures.length > 1) write(`\nfailing seeds: ${failures.map((f) => f.seed).join(' ')}\n`);
  }
  const rate = runs / (wallMs / 1000);
  const skipped = Object.entries(totals.skipped).map(([k, v]) => `${k} ${v}`);
  write(
    `\n${runs} schedules (model ${o.model}, shape ${o.shape}${o.harsh ? ', harsh' : ''}${o.linkModel === 'fifo' ? ', fifo links' : ''}, master seed ${o.seed}): ${failures.length === 0 ? 'all passed' : `${failures.length} failed`}\n` +
      `  ${(totals.virtualMs / 1000).toFixed(0)} s of virtual time, ${totals.faults} faults, ${totals.events} events, messages ${totals.sent} sent / ${totals.delivered} delivered / ${totals.dropped} dropped\n` +
      (skipped.length > 0 ? `  out of scope in some schedules (too much data, or knowledge of the record, lost at once): ${skipped.join(', ')}\n` : '') +
      `  ${rate.toFixed(1)} schedules/s (${(wallMs / 1000).toFixed(2)} s wall, ${o.workers} worker${o.workers === 1 ? '' : 's'})\n`,
  );
  return failures.length === 0 ? 0 : 1;
}

export async function main(argv: readonly string[]): Promise<number> {
  const write = (s: string): void => void process.stdout.write(s);
  let o: CliOptions | 'help';
  try {
    o = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`sim: ${err.message}\nRun \`npm run sim -- --help\` for the options.\n`);
    return 2;
  }
  if (o === 'help') {
    write(USAGE);
    return 0;
  }
  if (o.replay) return replay(o, write);
  // Seeds are derived per schedule; print the first for orientation in verbose mode.
  if (o.verbose) write(`master seed ${o.seed}: schedule 0 has seed ${deriveSeed(o.seed, 0)}\n`);
  return runAll(o, write);
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const { options } = workerData as { options: CliOptions };
  port.on('message', ({ start, count }: { start: number; count: number }) => port.postMessage(runChunk(options, start, count)));
} else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sim: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
