/**
 * The guarantee checkers: pure functions over a run's history. Each returns
 * the violations it found, each with a sentence a person can act on, or says
 * why the guarantee was out of scope for this history (`skipped`).
 *
 * They trust what applications did (app-start / app-stop, acknowledged
 * writes, final data) and what the world did (crash, freeze, boot markers),
 * never a member's role labels.
 */
import { formatUs, msToUs } from './clock.js';
import type { HistoryEntry } from './history.js';

export interface Violation {
  checker: CheckerName;
  module?: string;
  /** Global ms where the violation shows. */
  at?: number;
  text: string;
}

export interface CheckResult {
  checker: CheckerName;
  violations: Violation[];
  /** Set when the guarantee did not apply to this history (or to some of its modules), with the reason. */
  skipped?: string;
}

export interface CheckParams {
  /** Every voter of the run (nodes and witnesses). */
  voters: readonly string[];
  /** Members that hold data; a loss of any other member is not a data loss. */
  nodes: readonly string[];
  modules: readonly string[];
  /** Lease length, ms: the oldest a quorum may be when a primary starts. */
  lease: number;
  /** After the `healed` marker, a primary must run each module within this many ms. */
  livenessBudget: number;
  /** Liveness also requires that, once a primary ran after healing, one always runs until the end (default true). */
  stable?: boolean;
  /** With `stable`: the longest gap a planned move (switchover, failback) may leave between two primaries, ms (default 0). */
  plannedGap?: number;
  /** At most this many violations are listed per checker (default 5); the rest are counted. */
  maxReported?: number;
}

export const CHECKERS = ['noTwoPrimaries', 'noLostAckedWrite', 'quorumBeforePrimary', 'liveness', 'leaseExclusive'] as const;
export type CheckerName = (typeof CHECKERS)[number];

/** A stretch of time during which one member ran a module's application as primary: [from, to). */
export interface PrimaryInterval {
  member: string;
  module: string;
  from: number;
  to: number;
  epoch?: number;
  /** Why it ended: the app-stop reason, `node crashed`, `node paused`, `end of run`. */
  ended: string;
  /** Still running when the run ended. */
  open: boolean;
}

/** Formats global ms for messages: `1234.567`. */
export function t(ms: number): string {
  return Number.isFinite(ms) ? formatUs(msToUs(ms)) : String(ms);
}

function sorted(history: readonly HistoryEntry[]): readonly HistoryEntry[] {
  for (let i = 1; i < history.length; i++) {
    if ((history[i] as HistoryEntry).at < (history[i - 1] as HistoryEntry).at) {
      return [...history].sort((a, b) => a.at - b.at); // stable
    }
  }
  return history;
}

function endOf(history: readonly HistoryEntry[]): number {
  const end = history.find((e) => e.type === 'end');
  if (end) return end.at;
  return history.length === 0 ? 0 : (history[history.length - 1] as HistoryEntry).at;
}

function healedAt(history: readonly HistoryEntry[]): number | undefined {
  return history.find((e) => e.type === 'healed')?.at;
}

/**
 * The primary intervals of every module, from app-start/app-stop. An
 * interval also ends when its node crashes as a whole, pauses while the whole
 * node is frozen (it resumes at the thaw), ends when the app restarts in
 * another role, and is closed at the end of the run if still open.
 */
export function primaryIntervals(history: readonly HistoryEntry[]): PrimaryInterval[] {
  const out: PrimaryInterval[] = [];
  const open = new Map<string, { member: string; module: string; from: number; epoch?: number }>();
  const paused = new Map<string, Array<{ module: string; epoch?: number }>>();
  const key = (member: string, module: string): string => `${member}\u0000${module}`;
  const close = (k: string, at: number, ended: string, isOpen = false): void => {
    const o = open.get(k);
    if (!o) return;
    open.delete(k);
    if (at > o.from) out.push({ member: o.member, module: o.module, from: o.from, to: at, ...(o.epoch === undefined ? {} : { epoch: o.epoch }), ended, open: isOpen });
  };
  const closeMember = (member: string, at: number, ended: string): Array<{ module: string; epoch?: number }> => {
    const closed: Array<{ module: string; epoch?: number }> = [];
    for (const [k, o] of [...open]) {
      if (o.member !== member) continue;
      closed.push({ module: o.module, ...(o.epoch === undefined ? {} : { epoch: o.epoch }) });
      close(k, at, ended);
    }
    return closed;
  };
  const h = sorted(history);
  for (const e of h) {
    switch (e.type) {
      case 'app-start': {
        const k = key(e.member, e.module);
        if (e.role === 'primary') {
          if (!open.has(k)) open.set(k, { member: e.member, module: e.module, from: e.at, ...(e.epoch === undefined ? {} : { epoch: e.epoch }) });
        } else {
          close(k, e.at, `restarted as ${e.role}`);
        }
        break;
      }
      case 'app-stop':
        close(key(e.member, e.module), e.at, e.reason === undefined ? 'app-stop' : `app-stop: ${e.reason}`);
        break;
      case 'crash':
        paused.delete(e.member);
        if (e.kind === 'node') closeMember(e.member, e.at, 'node crashed');
        break;
      case 'freeze':
        if (e.scope === 'node') paused.set(e.member, closeMember(e.member, e.at, 'node paused'));
        break;
      case 'thaw':
        for (const p of paused.get(e.member) ?? []) open.set(key(e.member, p.module), { member: e.member, module: p.module, from: e.at, ...(p.epoch === undefined ? {} : { epoch: p.epoch }) });
        paused.delete(e.member);
        break;
      default:
        break;
    }
  }
  const end = endOf(h);
  for (const k of [...open.keys()]) close(k, end, 'end of run', true);
  return out.sort((a, b) => a.from - b.from || a.to - b.to);
}

function describeInterval(i: PrimaryInterval): string {
  const epoch = i.epoch === undefined ? '' : ` epoch ${i.epoch}`;
  return `${i.member}${epoch} [${t(i.from)} → ${t(i.to)}, ${i.ended}]`;
}

class Reporter {
  readonly violations: Violation[] = [];
  private extra = 0;
  constructor(
    private readonly checker: CheckerName,
    private readonly max: number,
  ) {}
  add(v: Omit<Violation, 'checker'>): void {
    if (this.violations.length < this.max) this.violations.push({ checker: this.checker, ...v });
    else this.extra++;
  }
  result(skipped?: string): CheckResult {
    const violations = [...this.violations];
    if (this.extra > 0) violations.push({ checker: this.checker, text: `… and ${this.extra} more like these` });
    return skipped === undefined ? { checker: this.checker, violations } : { checker: this.checker, violations, skipped };
  }
}

/**
 * Guarantee 1: never two primaries. No instant at which two members run the
 * same module's application as primary (from app-start/app-stop intervals).
 */
export function noTwoPrimaries(history: readonly HistoryEntry[], params: Pick<CheckParams, 'maxReported'> = {}): CheckResult {
  const r = new Reporter('noTwoPrimaries', params.maxReported ?? 5);
  const byModule = new Map<string, PrimaryInterval[]>();
  for (const i of primaryIntervals(history)) {
    const list = byModule.get(i.module) ?? [];
    list.push(i);
    byModule.set(i.module, list);
  }
  for (const [module, intervals] of byModule) {
    const active: PrimaryInterval[] = [];
    for (const i of intervals) {
      for (let k = active.length - 1; k >= 0; k--) if ((active[k] as PrimaryInterval).to <= i.from) active.splice(k, 1);
      for (const a of active) {
        if (a.member === i.member) continue;
        const from = Math.max(a.from, i.from);
        const to = Math.min(a.to, i.to);
        r.add({
          module,
          at: from,
          text: `module ${module}: two primaries for ${t(to - from)} ms, from ${t(from)} to ${t(to)}: ${describeInterval(a)} and ${describeInterval(i)}`,
        });
      }
      active.push(i);
    }
  }
  return r.result();
}

/**
 * The stretches during which a node's copy of a module's data is gone: from a
 * crash followed by a restart on a wiped disk until the node reports
 * `in-sync` for the module (a model that never reports it keeps the node lost
 * until the end); a crash never followed by a boot also lasts to the end.
 */
export function lossIntervals(history: readonly HistoryEntry[], nodes: readonly string[], module?: string): Array<{ member: string; from: number; to: number }> {
  const h = sorted(history);
  const end = endOf(h);
  const isNode = new Set(nodes);
  const crashedAt = new Map<string, number>();
  const resyncing = new Map<string, number>();
  const out: Array<{ member: string; from: number; to: number }> = [];
  for (const e of h) {
    if (!isNode.has(e.member)) continue;
    if (e.type === 'crash' && !crashedAt.has(e.member) && !resyncing.has(e.member)) crashedAt.set(e.member, e.at);
    else if (e.type === 'boot') {
      const from = crashedAt.get(e.member);
      crashedAt.delete(e.member);
      if (from !== undefined && e.disk === 'wiped') resyncing.set(e.member, from);
    } else if (e.type === 'in-sync' && (module === undefined || e.module === module)) {
      const from = resyncing.get(e.member);
      resyncing.delete(e.member);
      if (from !== undefined) out.push({ member: e.member, from, to: e.at });
    }
  }
  for (const [member, from] of [...crashedAt, ...resyncing]) out.push({ member, from, to: end });
  return out.sort((a, b) => a.from - b.from);
}

/**
 * Why the data guarantee does not apply to a module in this history, or
 * undefined if it does: it covers the loss of one node at a time, and not the
 * loss of every node.
 */
export function dataLossOutOfScope(history: readonly HistoryEntry[], nodes: readonly string[], module: string): string | undefined {
  const losses = lossIntervals(history, nodes, module);
  if (nodes.length === 1 && losses.length > 0) {
    const l = losses[0] as { member: string; from: number; to: number };
    return `the only node's data was lost (${l.member} ${t(l.from)}–${t(l.to)})`;
  }
  for (let i = 0; i < losses.length; i++) {
    for (let j = i + 1; j < losses.length; j++) {
      const a = losses[i] as { member: string; from: number; to: number };
      const b = losses[j] as { member: string; from: number; to: number };
      if (a.member !== b.member && b.from < a.to && a.from < b.to) {
        return `two nodes' data lost at once (${a.member} ${t(a.from)}–${t(a.to)}, ${b.member} ${t(b.from)}–${t(b.to)})`;
      }
    }
  }
  return undefined;
}

/**
 * Why liveness cannot be asked of a module, or undefined: after a disk was
 * wiped, fewer than a majority of voters may know the module's committed
 * record at `at` (from `voter-knows`), so nobody can prove who is in sync
 * and only an operator may decide. Without a wiped disk, knowledge can only
 * be late, never lost, and liveness is always in scope.
 */
export function knowledgeOutOfScope(history: readonly HistoryEntry[], voters: readonly string[], module: string, at: number): string | undefined {
  const h = sorted(history);
  if (!h.some((e) => e.type === 'boot' && e.disk === 'wiped')) return undefined;
  const knows = new Map<string, boolean>();
  for (const e of h) {
    if (e.at > at) break;
    if (e.type === 'voter-knows' && e.module === module) knows.set(e.member, e.knows);
  }
  const knowing = voters.filter((v) => knows.get(v) === true);
  if (knowing.length * 2 > voters.length) return undefined;
  return `after a lost disk only ${knowing.length} of ${voters.length} voters know the record of ${module} (${knowing.join(', ') || 'none'})`;
}

/**
 * Guarantee 2: no acknowledged write lost. Every write acknowledged during
 * the run is in the final data of whoever runs the module as primary at the
 * end. In scope only if at most one node's data was lost at a time.
 */
export function noLostAckedWrite(history: readonly HistoryEntry[], params: Pick<CheckParams, 'nodes' | 'modules' | 'maxReported'>): CheckResult {
  const r = new Reporter('noLostAckedWrite', params.maxReported ?? 5);
  const h = sorted(history);
  const finals = primaryIntervals(h).filter((i) => i.open);
  const notes: string[] = [];
  for (const module of params.modules) {
    const outOfScope = dataLossOutOfScope(h, params.nodes, module);
    if (outOfScope !== undefined) {
      notes.push(`module ${module} out of scope: ${outOfScope}`);
      continue;
    }
    const acked = h.filter((e): e is Extract<HistoryEntry, { type: 'write-acked' }> => e.type === 'write-acked' && e.module === module);
    const primaries = finals.filter((i) => i.module === module);
    if (primaries.length === 0) {
      if (acked.length > 0) notes.push(`module ${module}: no primary at the end (liveness reports it); ${acked.length} acknowledged writes not checked`);
      continue;
    }
    for (const p of primaries) {
      let data: ReadonlySet<string> | undefined;
      for (const e of h) if (e.type === 'final-data' && e.member === p.member && e.module === module) data = new Set(e.writes);
      if (data === undefined) {
        r.add({ module, text: `module ${module}: ${p.member} is primary at the end but reported no final-data, so its ${acked.length} acknowledged writes cannot be checked` });
        continue;
      }
      for (const a of acked) {
        if (!data.has(a.writeId)) {
          r.add({ module, at: a.at, text: `module ${module}: write ${a.writeId}, acknowledged by ${a.member} at ${t(a.at)}, is missing from ${p.member}, primary at the end (since ${t(p.from)})` });
        }
      }
    }
  }
  return r.result(notes.length > 0 ? notes.join('; ') : undefined);
}

/**
 * Guarantee 4: quorum before action. Every app-start as primary is preceded,
 * since the member's last boot and within one lease, by a `quorum`
 * observation of the same member granted by a majority of the voters.
 */
export function quorumBeforePrimary(history: readonly HistoryEntry[], params: Pick<CheckParams, 'voters' | 'lease' | 'maxReported'>): CheckResult {
  const r = new Reporter('quorumBeforePrimary', params.maxReported ?? 5);
  const voters = new Set(params.voters);
  const need = Math.floor(voters.size / 2) + 1;
  const quorums = new Map<string, Array<Extract<HistoryEntry, { type: 'quorum' }>>>();
  const count = (granted: readonly string[]): number => new Set(granted.filter((g) => voters.has(g))).size;
  for (const e of sorted(history)) {
    if (e.type === 'boot' || e.type === 'crash') quorums.delete(e.member);
    else if (e.type === 'quorum') {
      const list = quorums.get(e.member) ?? [];
      list.push(e);
      quorums.set(e.member, list);
    } else if (e.type === 'app-start' && e.role === 'primary') {
      const mine = (quorums.get(e.member) ?? []).filter((q) => q.module === undefined || q.module === e.module);
      const ok = mine.some((q) => e.at - q.at <= params.lease && count(q.granted) >= need);
      if (ok) continue;
      const last = mine[mine.length - 1];
      let why: string;
      if (last === undefined) why = 'no quorum observed since its last boot';
      else if (count(last.granted) < need) why = `its latest quorum (${t(last.at)}) was granted by [${last.granted.join(', ')}]: ${count(last.granted)} of ${voters.size} voters, a majority is ${need}`;
      else why = `its latest majority (${t(last.at)}, [${last.granted.join(', ')}]) is ${t(e.at - last.at)} ms old, more than the ${params.lease} ms lease`;
      r.add({ module: e.module, at: e.at, text: `module ${e.module}: ${e.member} started as primary at ${t(e.at)}${e.epoch === undefined ? '' : ` (epoch ${e.epoch})`} but ${why}` });
    }
  }
  return r.result();
}

/**
 * Guarantee 3 (liveness): once every fault is healed (the `healed` marker),
 * some member runs each module as primary within the budget, and (when
 * `stable`, the default) from then on some member runs it at every instant
 * until the end of the run.
 */
export function liveness(history: readonly HistoryEntry[], params: Pick<CheckParams, 'modules' | 'livenessBudget' | 'stable' | 'plannedGap' | 'maxReported'> & Partial<Pick<CheckParams, 'nodes' | 'voters'>> & { healedAt?: number }): CheckResult {
  const r = new Reporter('liveness', params.maxReported ?? 5);
  const h = sorted(history);
  const healed = params.healedAt ?? healedAt(h);
  if (healed === undefined) return r.result('no healing point in this history');
  const end = endOf(h);
  const deadline = healed + params.livenessBudget;
  if (end < deadline) return r.result(`the run ended ${t(end - healed)} ms after healing, before the ${params.livenessBudget} ms budget ran out`);
  const intervals = primaryIntervals(h);
  const notes: string[] = [];
  for (const module of params.modules) {
    // Without any complete copy of the data, or of the knowledge of who has it, only an operator may force a primary.
    const outOfScope = (params.nodes === undefined ? undefined : dataLossOutOfScope(h, params.nodes, module)) ?? (params.voters === undefined ? undefined : knowledgeOutOfScope(h, params.voters, module, deadline));
    if (outOfScope !== undefined) {
      notes.push(`module ${module} out of scope: ${outOfScope}`);
      continue;
    }
    const mine = intervals.filter((i) => i.module === module && i.to > healed);
    const first = mine.reduce((m, i) => Math.min(m, Math.max(i.from, healed)), Infinity);
    if (first > deadline) {
      r.add({
        module,
        at: deadline,
        text: `module ${module}: no primary within ${params.livenessBudget} ms after every fault was healed at ${t(healed)}${first === Infinity ? ' (none until the end of the run)' : ` (the first started at ${t(first)}, ${t(first - healed)} ms after healing)`}`,
      });
      continue;
    }
    if (params.stable === false) continue;
    // From the deadline on, with no fault left, some member must be primary at every instant.
    let covered = deadline;
    for (const i of mine) {
      if (i.to <= covered) continue;
      if (i.from - covered > (params.plannedGap ?? 0)) r.add({ module, at: covered, text: `module ${module}: no primary from ${t(covered)} to ${t(i.from)} (${t(i.from - covered)} ms, longer than a planned move's ${params.plannedGap ?? 0} ms), more than ${params.livenessBudget} ms after every fault was healed at ${t(healed)}` });
      covered = Math.max(covered, i.to);
    }
    if (covered < end) r.add({ module, at: covered, text: `module ${module}: no primary from ${t(covered)} to the end of the run at ${t(end)}, more than ${params.livenessBudget} ms after every fault was healed at ${t(healed)}` });
  }
  return r.result(notes.length > 0 ? notes.join('; ') : undefined);
}

/**
 * The leases members believe they hold (`lease-held`, until the believed
 * deadline, a `lease-released`, or a crash of their agent) never overlap
 * between two members: a protocol-level check that fails earlier and more
 * plainly than noTwoPrimaries.
 */
export function leaseExclusive(history: readonly HistoryEntry[], params: Pick<CheckParams, 'maxReported'> = {}): CheckResult {
  const r = new Reporter('leaseExclusive', params.maxReported ?? 5);
  const beliefs: Array<{ member: string; module: string; from: number; to: number }> = [];
  const current = new Map<string, { member: string; module: string; from: number; to: number }>();
  const key = (member: string, module: string): string => `${member}\u0000${module}`;
  const flush = (k: string): void => {
    const c = current.get(k);
    if (c) beliefs.push(c);
    current.delete(k);
  };
  for (const e of sorted(history)) {
    if (e.type === 'lease-held') {
      const k = key(e.member, e.module);
      const c = current.get(k);
      if (c && e.at <= c.to) c.to = Math.max(c.to, e.until);
      else {
        flush(k);
        if (e.until > e.at) current.set(k, { member: e.member, module: e.module, from: e.at, to: e.until });
      }
    } else if (e.type === 'lease-released') {
      const k = key(e.member, e.module);
      const c = current.get(k);
      if (c) c.to = Math.min(c.to, e.at);
      flush(k);
    } else if (e.type === 'crash') {
      for (const [k, c] of [...current]) {
        if (c.member !== e.member) continue;
        c.to = Math.min(c.to, e.at);
        flush(k);
      }
    }
  }
  for (const k of [...current.keys()]) flush(k);
  beliefs.sort((a, b) => a.from - b.from);
  for (let i = 0; i < beliefs.length; i++) {
    const a = beliefs[i] as (typeof beliefs)[number];
    for (let j = i + 1; j < beliefs.length; j++) {
      const b = beliefs[j] as (typeof beliefs)[number];
      if (b.from >= a.to) break;
      if (a.member === b.member || a.module !== b.module || b.to <= b.from) continue;
      r.add({
        module: a.module,
        at: b.from,
        text: `module ${a.module}: ${a.member} believed it held the lease from ${t(a.from)} to ${t(a.to)} while ${b.member} believed it held it from ${t(b.from)} to ${t(b.to)} (overlap ${t(Math.min(a.to, b.to) - b.from)} ms)`,
      });
    }
  }
  return r.result();
}

/** Runs the checkers named in `only` (default: all) and returns one result each. */
export function checkAll(history: readonly HistoryEntry[], params: CheckParams, only: readonly CheckerName[] = CHECKERS): CheckResult[] {
  const h = sorted(history);
  const run: Record<CheckerName, () => CheckResult> = {
    noTwoPrimaries: () => noTwoPrimaries(h, params),
    noLostAckedWrite: () => noLostAckedWrite(h, params),
    quorumBeforePrimary: () => quorumBeforePrimary(h, params),
    liveness: () => liveness(h, params),
    leaseExclusive: () => leaseExclusive(h, params),
  };
  return only.map((name) => run[name]());
}
