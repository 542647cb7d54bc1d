/**
 * The trace: every delivered or dropped message, fired timer, keeper action,
 * fault, marker and observation, with global time and member. It is kept as
 * raw references in a bounded ring (the last `limit` entries) and turned into
 * text only when someone asks (a failing schedule, a replay), so a passing
 * schedule pays a few array stores per event and no formatting.
 *
 * The text is deterministic: the same seed gives the same bytes.
 */
import { formatUs } from './clock.js';
import { describeFault, type FaultEvent } from './faults.js';
import { describeEntry, type Entry } from './history.js';

export const TraceKind = {
  recv: 0,
  drop: 1,
  timer: 2,
  keeper: 3,
  fault: 4,
  obs: 5,
  world: 6,
} as const;
export type TraceKind = (typeof TraceKind)[keyof typeof TraceKind];

const LABELS = ['recv', 'drop', 'timer', 'keeper', 'fault', 'obs', 'world'];

export class Trace {
  /** How many entries were added in all (kept or not). */
  total = 0;
  readonly limit: number;
  private readonly atUs: number[] = [];
  private readonly kind: number[] = [];
  private readonly member: number[] = [];
  private readonly peer: number[] = [];
  private readonly data: unknown[] = [];
  private readonly extra: unknown[] = [];
  private readonly names: readonly string[];
  private readonly describeMsg: (msg: unknown) => string;

  /** `limit`: entries kept (the most recent); `Infinity` keeps all, 0 keeps none. */
  constructor(limit: number, names: readonly string[], describeMsg: (msg: unknown) => string) {
    this.limit = limit;
    this.names = names;
    this.describeMsg = describeMsg;
  }

  get enabled(): boolean {
    return this.limit > 0;
  }

  add(kind: TraceKind, atUs: number, member: number, peer: number, data: unknown, extra?: unknown): void {
    const limit = this.limit;
    if (limit === 0) return;
    const i = limit === Infinity ? this.total : this.total % limit;
    this.total++;
    this.atUs[i] = atUs;
    this.kind[i] = kind;
    this.member[i] = member;
    this.peer[i] = peer;
    this.data[i] = data;
    this.extra[i] = extra;
  }

  /** How many entries are kept. */
  get size(): number {
    return Math.min(this.total, this.limit);
  }

  /** The kept entries as text lines, oldest first; `last` keeps only the most recent ones. */
  lines(last = Infinity): string[] {
    const size = this.size;
    const n = Math.min(size, last);
    const first = this.total - n;
    const out: string[] = [];
    for (let k = first; k < this.total; k++) {
      const i = this.limit === Infinity ? k : k % this.limit;
      out.push(this.format(i));
    }
    return out;
  }

  /**
   * Up to `before` kept entries at or before global time `atUs` and up to
   * `after` entries past it: the lines that lead to a violation.
   */
  linesAround(atUs: number, before: number, after: number): string[] {
    const first = this.total - this.size;
    let end = first; // one past the last entry at or before atUs
    while (end < this.total && (this.atUs[this.slot(end)] as number) <= atUs) end++;
    const from = Math.max(first, end - before);
    const to = Math.min(this.total, end + after);
    const out: string[] = [];
    for (let k = from; k < to; k++) out.push(this.format(this.slot(k)));
    return out;
  }

  private slot(k: number): number {
    return this.limit === Infinity ? k : k % this.limit;
  }

  text(last = Infinity): string {
    const lines = this.lines(last);
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }

  /** How many entries were dropped off the front of the ring. */
  get forgotten(): number {
    return this.total - this.size;
  }

  private name(i: number): string {
    return i < 0 ? '*' : (this.names[i] ?? `#${i}`);
  }

  private format(i: number): string {
    const kind = this.kind[i] as number;
    const time = formatUs(this.atUs[i] as number).padStart(11);
    const who = this.name(this.member[i] as number).padEnd(4);
    const label = (LABELS[kind] ?? '?').padEnd(6);
    const data = this.data[i];
    let what: string;
    switch (kind) {
      case TraceKind.recv:
        what = `${this.name(this.peer[i] as number)} → ${this.describeMsg(data)}`;
        break;
      case TraceKind.drop:
        what = `${this.name(this.peer[i] as number)} → ${this.describeMsg(data)} (${String(this.extra[i])})`;
        break;
      case TraceKind.timer:
      case TraceKind.keeper:
        what = String(data);
        break;
      case TraceKind.fault:
        what = describeFault(data as FaultEvent);
        break;
      default:
        what = describeEntry(data as Entry);
    }
    return `${time} ${who} ${label} ${what}`;
  }
}

/** Compact JSON, the default way to show a message. */
export function describeJson(msg: unknown): string {
  return JSON.stringify(msg) ?? String(msg);
}
