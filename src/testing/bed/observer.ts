/**
 * Proof, from the application's side, that two primaries never ran at once.
 *
 * The sample application (test/fixtures/apps/sample-app.mjs) appends one
 * JSON line per event to the observer file: `start` before it serves, a
 * `beat` every 5 ms while it runs, `stop` when it ends on SIGTERM. Times are
 * CLOCK_MONOTONIC nanoseconds, one clock for every namespace on the machine,
 * so lines from different hosts compare directly. A process killed with -9
 * writes no `stop`: its beats bound its life instead, since an application
 * acts only when it writes and its last write is its last act as a primary.
 */
import { AssertionError } from 'node:assert';
import { readFileSync } from 'node:fs';

export type ObserverEvent = 'start' | 'beat' | 'stop';

export interface ObserverRecord {
  node: string;
  module: string;
  epoch: number;
  pid: number;
  event: ObserverEvent;
  /** CLOCK_MONOTONIC, nanoseconds. */
  t: bigint;
}

/** One run of the application as a primary. */
export interface PrimaryInterval {
  module: string;
  node: string;
  pid: number;
  epoch: number;
  /** Nanoseconds, as in the records. */
  from: bigint;
  to: bigint;
  /** 'stop': it said so; 'last-beat': it fell silent (killed, crashed, still running), `to` is its last beat plus the slack. */
  end: 'stop' | 'last-beat';
}

const EVENTS = new Set<string>(['start', 'beat', 'stop']);

/** Reads an observer file. A torn last line (a write in progress) is left out; any other bad line throws. */
export function readObserver(file: string): ObserverRecord[] {
  return parseObserver(readFileSync(file, 'utf8'), file);
}

export function parseObserver(text: string, source = 'observer'): ObserverRecord[] {
  const lines = text.split('\n');
  const out: ObserverRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const last = i === lines.length - 1; // no newline after it yet
    let record: ObserverRecord | undefined;
    try {
      record = toRecord(JSON.parse(line));
    } catch {
      record = undefined;
    }
    if (record) out.push(record);
    else if (!last) throw new Error(`${source}:${i + 1}: not an observer record: ${line.slice(0, 200)}`);
  });
  return out;
}

function toRecord(x: unknown): ObserverRecord | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const r = x as Record<string, unknown>;
  if (typeof r.node !== 'string' || typeof r.module !== 'string' || typeof r.pid !== 'number' || typeof r.event !== 'string' || !EVENTS.has(r.event)) return undefined;
  if (typeof r.t !== 'string' || !/^\d+$/.test(r.t)) return undefined;
  const epoch = typeof r.epoch === 'number' ? r.epoch : Number(r.epoch ?? 0);
  return { node: r.node, module: r.module, epoch: Number.isFinite(epoch) ? epoch : 0, pid: r.pid, event: r.event as ObserverEvent, t: BigInt(r.t) };
}

/**
 * One interval per run (module, node, pid): from its `start` (or first
 * record, if the start is missing) to its `stop`, or to its last record plus
 * `slackMs` (the beat period it might still have acted in) when it never
 * said stop. Sorted by start.
 */
export function primaryIntervals(records: readonly ObserverRecord[], options: { slackMs?: number } = {}): PrimaryInterval[] {
  const slack = BigInt(Math.round((options.slackMs ?? 10) * 1e6));
  const runs = new Map<string, ObserverRecord[]>();
  for (const r of records) {
    const key = `${r.module}\0${r.node}\0${r.pid}`;
    const run = runs.get(key);
    if (run) run.push(r);
    else runs.set(key, [r]);
  }
  const out: PrimaryInterval[] = [];
  for (const run of runs.values()) {
    run.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    const first = run.find((r) => r.event === 'start') ?? run[0]!;
    const stop = run.find((r) => r.event === 'stop' && r.t >= first.t);
    const last = run[run.length - 1]!;
    out.push({
      module: first.module,
      node: first.node,
      pid: first.pid,
      epoch: first.epoch,
      from: first.t,
      to: stop ? stop.t : last.t + slack,
      end: stop ? 'stop' : 'last-beat',
    });
  }
  return out.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
}

/**
 * Throws if two runs of one module overlap in time (touching is fine: one
 * ends at the instant the other starts). The message names both runs, with
 * times in ms from the first start.
 */
export function assertNoOverlap(intervals: readonly PrimaryInterval[]): void {
  const sorted = [...intervals].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const origin = sorted[0]?.from ?? 0n;
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!;
    for (let j = i + 1; j < sorted.length; j++) {
      const b = sorted[j]!;
      if (b.from >= a.to) break; // sorted by start: no later one can overlap a either
      if (b.module !== a.module) continue;
      const overlap = (a.to < b.to ? a.to : b.to) - b.from;
      throw new AssertionError({
        message: `two primaries of ${a.module} at once, for ${ms(overlap)} ms:\n  ${describeInterval(a, origin)}\n  ${describeInterval(b, origin)}`,
      });
    }
  }
}

export function describeInterval(i: PrimaryInterval, origin = 0n): string {
  const end = i.end === 'stop' ? 'stop' : 'last beat + slack';
  return `${i.node} pid ${i.pid} epoch ${i.epoch}: ${ms(i.from - origin)} ms → ${ms(i.to - origin)} ms (${end})`;
}

const ms = (ns: bigint): string => (Number(ns) / 1e6).toFixed(3);
