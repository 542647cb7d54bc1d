/**
 * Runs schedules: builds a world for a cluster shape and a model, applies a
 * fault schedule generated from the seed, ends the run, and checks the
 * history against the guarantees.
 *
 *   runSchedule({ seed, model, shape: '2n+w' })   one schedule
 *   runMany({ schedules: 1000, seed: 7, model })   one seed per schedule, derived from the master seed
 *
 * A run is a pure function of its options: the same seed gives the same
 * schedule, the same history and the same trace, byte for byte.
 */
import { CHECKERS, checkAll, type CheckerName, type CheckResult, type Violation } from './checkers.js';
import { formatUs, msToUs } from './clock.js';
import type { HistoryEntry } from './history.js';
import type { LinkModel, LinkParams } from './network.js';
import type { SimModel } from './process.js';
import { deriveSeed } from './random.js';
import { faultOptions, formatSchedule, generateSchedule, HARSH, type FaultOptions, type Schedule } from './schedule.js';
import { clusterInfo, parseShape, type ClusterShape } from './shape.js';
import type { Trace } from './trace.js';
import { SimulationError, World, type WorldStats } from './world.js';

export interface RunOptions<Msg> {
  /** The schedule's seed: it decides the faults, the clocks, the network's randomness and the processes' `random()`. */
  seed: number;
  model: SimModel<Msg>;
  /** A shape name (`2n+w`, `3n`, `5v`, …) or a shape. Default `3n`. */
  shape?: string | ClusterShape;
  /** Knobs of the schedule generator (duration, quiet period, fault mix, maxDrift…). */
  faults?: Partial<FaultOptions>;
  /** Harsh schedules: any number of members down at once (see schedule.ts). */
  harsh?: boolean;
  /** Use this schedule instead of generating one. */
  schedule?: Schedule;
  /** Default quality of every link. */
  link?: Partial<LinkParams>;
  linkModel?: LinkModel;
  /** Trace entries kept (the most recent). Default 2000; Infinity keeps the whole trace. */
  traceLimit?: number;
  /** The checkers to run (default: all). */
  checks?: readonly CheckerName[];
  /** Overrides the model's liveness budget, ms. */
  livenessBudget?: number;
  /** Liveness also requires a primary at every instant from the end of the budget to the end of the run. Default true. */
  stable?: boolean;
  maxEvents?: number;
}

export interface RunResult {
  seed: number;
  shape: ClusterShape;
  model: string;
  schedule: Schedule;
  ok: boolean;
  violations: Violation[];
  /** One per checker run, with the reason when it was out of scope. */
  results: CheckResult[];
  /** Set when the model threw or the run broke a world limit; no checker ran then. */
  error?: string;
  history: readonly HistoryEntry[];
  trace: Trace;
  stats: WorldStats;
}

function shapeOf(shape: string | ClusterShape | undefined): ClusterShape {
  return typeof shape === 'string' ? parseShape(shape) : (shape ?? parseShape('3n'));
}

/** The shape and the fault schedule that `runSchedule` would use for these options. */
export function scheduleFor<Msg>(o: Pick<RunOptions<Msg>, 'seed' | 'model' | 'shape' | 'faults' | 'harsh' | 'linkModel'>): { shape: ClusterShape; schedule: Schedule } {
  const shape = shapeOf(o.shape);
  const options: Partial<FaultOptions> = {
    maxDrift: o.model.maxDrift ?? 1e-4,
    linkModel: o.linkModel ?? 'datagram',
    ...(o.harsh ? HARSH : {}),
    ...o.faults,
  };
  return { shape, schedule: generateSchedule(o.seed, clusterInfo(shape), faultOptions(options)) };
}

export function runSchedule<Msg>(o: RunOptions<Msg>): RunResult {
  const shape = shapeOf(o.shape);
  const schedule = o.schedule ?? scheduleFor(o).schedule;
  const world = new World<Msg>({
    seed: o.seed,
    shape,
    model: o.model,
    ...(o.link ? { link: o.link } : {}),
    linkModel: o.linkModel ?? schedule.options.linkModel,
    traceLimit: o.traceLimit ?? 2000,
    ...(o.maxEvents === undefined ? {} : { maxEvents: o.maxEvents }),
  });
  let error: string | undefined;
  try {
    for (const f of schedule.events) if (f.type === 'clock' && f.at === 0) world.apply(f);
    world.boot();
    for (const f of schedule.events) if (!(f.type === 'clock' && f.at === 0)) world.schedule(f);
    world.runUntil(schedule.endAt);
    world.finish();
  } catch (err) {
    if (!(err instanceof SimulationError)) throw err;
    error = err.message;
  }
  const results =
    error === undefined
      ? checkAll(
          world.history.entries,
          {
            voters: world.cluster.voters,
            nodes: world.cluster.nodes,
            modules: o.model.modules,
            lease: o.model.lease,
            livenessBudget: o.livenessBudget ?? o.model.livenessBudget,
            stable: o.stable ?? true,
            plannedGap: o.model.plannedGap ?? 0,
          },
          o.checks ?? CHECKERS,
        )
      : [];
  const violations = results.flatMap((r) => r.violations);
  return {
    seed: o.seed,
    shape,
    model: o.model.name,
    schedule,
    ok: error === undefined && violations.length === 0,
    violations,
    results,
    ...(error === undefined ? {} : { error }),
    history: world.history.entries,
    trace: world.trace,
    stats: world.stats(),
  };
}

export interface ManyOptions<Msg> extends Omit<RunOptions<Msg>, 'seed' | 'schedule'> {
  /** How many schedules to run. */
  schedules: number;
  /** The master seed; schedule i runs with `deriveSeed(seed, i)`. */
  seed: number;
  /** The index of the first schedule (to split a run across workers). Default 0. */
  first?: number;
  /** Stop at the first failing schedule. Default true. */
  stopOnFailure?: boolean;
  /** Called after each schedule (results are not kept otherwise, to bound memory). */
  onResult?: (result: RunResult, index: number) => void;
}

export interface ManyTotals {
  /** Per checker: schedules in which it was (partly) out of scope. */
  skipped: Partial<Record<CheckerName, number>>;
  events: number;
  faults: number;
  virtualMs: number;
  sent: number;
  delivered: number;
  dropped: number;
}

export interface ManySummary {
  /** Schedules run. */
  runs: number;
  failures: Array<{ index: number; seed: number; result: RunResult }>;
  totals: ManyTotals;
}

export function runMany<Msg>(o: ManyOptions<Msg>): ManySummary {
  const first = o.first ?? 0;
  const failures: ManySummary['failures'] = [];
  const totals: ManyTotals = { skipped: {}, events: 0, faults: 0, virtualMs: 0, sent: 0, delivered: 0, dropped: 0 };
  let runs = 0;
  for (let index = first; index < first + o.schedules; index++) {
    const seed = deriveSeed(o.seed, index);
    const result = runSchedule({ ...o, seed });
    runs++;
    const s = result.stats;
    totals.events += s.events;
    totals.faults += s.faults;
    totals.virtualMs += s.virtualMs;
    totals.sent += s.messages.sent;
    totals.delivered += s.messages.delivered;
    totals.dropped += s.messages.dropped;
    for (const c of result.results) if (c.skipped !== undefined) totals.skipped[c.checker] = (totals.skipped[c.checker] ?? 0) + 1;
    o.onResult?.(result, index);
    if (!result.ok) {
      failures.push({ index, seed, result });
      if (o.stopOnFailure ?? true) break;
    }
  }
  return { runs, failures, totals };
}

/**
 * The failure report: seed, replay command, schedule, violations, and the
 * trace: the `tail` lines that lead to the first violation (and a few after)
 * when the trace still holds them, else the last `tail` lines.
 */
export function formatFailure(result: RunResult, options: { tail?: number; replay?: string } = {}): string {
  const tail = options.tail ?? 60;
  const out: string[] = [];
  out.push(`FAILED: seed ${result.seed} (model ${result.model}, shape ${result.shape.name})`);
  if (options.replay) out.push(`replay: ${options.replay}`);
  out.push('', 'schedule:');
  out.push(formatSchedule(result.schedule).replace(/\n$/, ''));
  if (result.error) out.push('', `error: ${result.error}`);
  if (result.violations.length > 0) {
    out.push('', 'violations:');
    for (const v of result.violations) out.push(`  [${v.checker}] ${v.text}`);
  }
  const firstAt = Math.min(...result.violations.map((v) => v.at ?? Infinity));
  const trace = result.trace;
  if (Number.isFinite(firstAt) && trace.size > 0 && trace.forgotten === 0) {
    const after = Math.min(10, Math.ceil(tail / 4));
    const lines = trace.linesAround(msToUs(firstAt), tail - after, after);
    out.push('', `trace (the ${lines.length} entries around the first violation at ${formatUs(msToUs(firstAt))} ms, of ${trace.total}):`);
    out.push(...lines);
  } else {
    const lines = trace.lines(tail);
    out.push('', `trace (last ${lines.length} of ${trace.total} entries):`);
    out.push(...lines);
  }
  return `${out.join('\n')}\n`;
}
