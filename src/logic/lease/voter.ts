/**
 * The voter side of the majority lease. Every member (node or witness) runs
 * one voter. It promises a module's lease to one holder at a time, for
 * `lease` on its own clock, and keeps the module's committed record.
 * See docs/design/lease.md for why these rules keep two primaries apart.
 */
import type { LeaseMessage, LeaseRecord, LeaseReply, LeaseRequest, Refusal, VoterSync } from './messages.js';
import { mayTakeOver, newerRecord } from './messages.js';
import type { Step } from '../step.js';

export interface VoterTimings {
  lease: number;
  driftMargin: number;
  /** How often a voter that lost its state asks the others again. */
  syncRetry?: number;
}

interface Promise_ {
  holder: string;
  epoch: number;
  /** Voter's clock. Undefined after a reboot: unknown, so treated as lasting until quarantine ends. */
  expiresAt?: number;
  released: boolean;
}

export interface VoterModule {
  record?: LeaseRecord;
  maxEpoch: number;
  promise?: Promise_;
  /** Lost its state and has not learned this module's record since. */
  amnesiac: boolean;
}

export interface VoterState {
  self: string;
  /** Every voter of the cluster, itself included. */
  voters: readonly string[];
  timings: VoterTimings;
  /** No grant to a new holder before this (own clock): what it promised before a restart is unknown. */
  quarantineUntil: number;
  /** True when the voter started without its disk (or with a fresh one) and has not caught up since. */
  amnesiac: boolean;
  /** While amnesiac: what the other voters answered to its catch-up request, and when to ask again. */
  sync?: { replies: Record<string, Extract<VoterSync, { type: 'voter-sync-reply' }>>; nextAt: number };
  modules: Record<string, VoterModule>;
  /**
   * The data epoch of each module on this voter's own member, told by the member. "No record anywhere"
   * proves a new cluster only if no member holds data either: records can be forgotten, data survives.
   */
  localData: Record<string, number>;
}

/** What the voter persists before it replies (the driver writes it durably, then sends). */
export interface VoterDisk {
  /** Still catching up after a lost disk: persisted, or a restart would make it claim knowledge it lacks. */
  amnesiac?: boolean;
  modules: Record<string, { record?: LeaseRecord; maxEpoch: number; promise?: { holder: string; epoch: number }; amnesiac?: boolean }>;
}

export type VoterAction =
  | { type: 'persist'; disk: VoterDisk }
  | { type: 'send'; to: string; message: LeaseReply | VoterSync }
  | { type: 'wake'; at: number };

export type VoterEvent = { type: 'receive'; from: string; message: LeaseMessage } | { type: 'tick' } | { type: 'local-data'; module: string; dataEpoch: number };

/** Boot a voter from what its disk holds (undefined: no disk, or a lost one). */
export function initVoter(self: string, voters: readonly string[], timings: VoterTimings, disk: VoterDisk | undefined, now: number): VoterState {
  const modules: Record<string, VoterModule> = {};
  for (const [name, m] of Object.entries(disk?.modules ?? {})) {
    modules[name] = {
      maxEpoch: m.maxEpoch,
      amnesiac: m.amnesiac ?? false,
      ...(m.record ? { record: m.record } : {}),
      ...(m.promise ? { promise: { ...m.promise, released: false } } : {}),
    };
  }
  const state: VoterState = { self, voters: [...voters].sort(), timings, quarantineUntil: now + timings.lease + timings.driftMargin, amnesiac: disk === undefined || disk.amnesiac === true, modules, localData: {} };
  if (state.amnesiac) state.sync = { replies: {}, nextAt: now };
  return state;
}

function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * Catch-up of a voter that lost its state. It may count itself as knowing
 * again once a majority of all voters, every one of them knowing and none of
 * them itself, told it their records: any record committed before is on a
 * majority, which shares a member with those (docs/design/lease.md).
 */
function onSync(state: VoterState, from: string, msg: VoterSync): { state: VoterState; actions: VoterAction[] } {
  if (msg.type === 'voter-sync-request') {
    const modules: Record<string, { record?: LeaseRecord; maxEpoch: number; amnesiac?: boolean }> = {};
    for (const [name, m] of Object.entries(state.modules)) modules[name] = { maxEpoch: m.maxEpoch, ...(m.record ? { record: m.record } : {}), ...(m.amnesiac ? { amnesiac: true } : {}) };
    return { state, actions: [{ type: 'send', to: from, message: { type: 'voter-sync-reply', voter: state.self, amnesiac: state.amnesiac, modules, data: state.localData } }] };
  }
  if (!state.sync || msg.voter === state.self || !state.voters.includes(msg.voter)) return { state, actions: [] };
  const replies = { ...state.sync.replies, [msg.voter]: msg };
  const all = Object.values(replies);
  const need = majority(state.voters.length);
  const knows = (r: (typeof all)[number], name: string) => {
    const m = r.modules[name];
    return m ? !m.amnesiac : !r.amnesiac;
  };
  // A new cluster: every other voter answered and nobody, this voter included, holds any record.
  const noData = [...all.flatMap((r) => Object.values(r.data ?? {})), ...Object.values(state.localData)].every((d) => d <= 0);
  const fresh = noData && all.length === state.voters.length - 1 && [...all.flatMap((r) => Object.values(r.modules)), ...Object.values(state.modules)].every((m) => !m.record);
  const wholesale = fresh || all.filter((r) => !r.amnesiac).length >= need;
  const modules: Record<string, VoterModule> = { ...state.modules };
  let learned = false;
  const names = new Set([...Object.keys(state.modules), ...all.flatMap((r) => Object.keys(r.modules))]);
  for (const name of names) {
    const own = state.modules[name];
    if (own && !own.amnesiac && !state.amnesiac) continue;
    // Per module: learned once a majority of the voters, each knowing this module, told it their record.
    const sources = fresh ? all : all.filter((r) => knows(r, name));
    if (!fresh && sources.length < need) continue;
    let record = own?.record;
    let maxEpoch = own?.maxEpoch ?? 0;
    for (const r of sources) {
      const theirs = r.modules[name];
      if (!theirs) continue;
      record = newerRecord(record, theirs.record);
      maxEpoch = Math.max(maxEpoch, theirs.maxEpoch);
    }
    modules[name] = { ...(own ?? {}), maxEpoch: Math.max(maxEpoch, record?.epoch ?? 0), amnesiac: false, ...(record ? { record } : {}) };
    learned = true;
  }
  if (!wholesale && !learned) return { state: { ...state, sync: { ...state.sync, replies } }, actions: [] };
  let next: VoterState = { ...state, modules, sync: { ...state.sync, replies } };
  if (wholesale) {
    // Knowing voters were a majority: every module they did not list has no record anywhere.
    const { sync: _done, ...rest } = next;
    next = { ...rest, amnesiac: false };
  }
  return { state: next, actions: [{ type: 'persist', disk: diskOf(next) }] };
}

function syncTick(state: VoterState, now: number): { state: VoterState; actions: VoterAction[] } {
  if (!state.amnesiac || !state.sync) return { state, actions: [] };
  // Still asking: the voter as a whole does not know yet (modules it learned meanwhile are known).
  const actions: VoterAction[] = [];
  let s = state;
  if (now >= state.sync.nextAt) {
    for (const v of state.voters) if (v !== state.self) actions.push({ type: 'send', to: v, message: { type: 'voter-sync-request' } });
    s = { ...state, sync: { ...state.sync, nextAt: now + (state.timings.syncRetry ?? state.timings.lease / 4) } };
  }
  actions.push({ type: 'wake', at: s.sync!.nextAt });
  return { state: s, actions };
}

function moduleOf(state: VoterState, name: string): VoterModule {
  return state.modules[name] ?? { maxEpoch: 0, amnesiac: state.amnesiac };
}

function diskOf(state: VoterState): VoterDisk {
  const modules: VoterDisk['modules'] = {};
  for (const [name, m] of Object.entries(state.modules)) {
    modules[name] = {
      maxEpoch: m.maxEpoch,
      ...(m.record ? { record: m.record } : {}),
      ...(m.promise && !m.promise.released ? { promise: { holder: m.promise.holder, epoch: m.promise.epoch } } : {}),
      ...(m.amnesiac ? { amnesiac: true } : {}),
    };
  }
  return state.amnesiac ? { amnesiac: true, modules } : { modules };
}

/** The voter's promise, if it is to `holder` at `epoch` and not released: what renewals, transfers and releases need. */
function promiseOf(m: VoterModule, holder: string, epoch: number): Promise_ | undefined {
  const p = m.promise;
  return p && !p.released && p.holder === holder && p.epoch === epoch ? p : undefined;
}

/** True while the promise still binds: not released, and not expired plus the drift margin. */
function promiseBinds(state: VoterState, p: Promise_ | undefined, now: number): boolean {
  if (!p || p.released) return false;
  const end = p.expiresAt ?? state.quarantineUntil - state.timings.driftMargin;
  return now < end + state.timings.driftMargin;
}

/**
 * A renewal from a holder this voter never promised (it was away, or cut
 * off, when the lease was taken) is adopted: out of quarantine, not
 * amnesiac, no binding promise to anyone, the holder's record in hand, and an
 * epoch newer than the newest this voter saw held (its record's), or that
 * very epoch with its record naming this holder. Without this, a lease taken
 * while one voter was away rests on the others alone for as long as it
 * lives, and one more loss ends it although a majority is there. Safe: a
 * newer epoch was held only with renewals accepted by a majority, which
 * stored its record; any majority this holder gathers shares a voter with
 * that one, and it refuses.
 */
function adoptable(state: VoterState, m: VoterModule, msg: Extract<LeaseMessage, { type: 'lease-renew' }>, now: number): Promise_ | undefined {
  // A voter still catching up after a lost disk would take the holder's record for knowledge it lacks.
  if (now < state.quarantineUntil || state.amnesiac || m.amnesiac || promiseBinds(state, m.promise, now)) return undefined;
  // Against the newest epoch this voter saw *held* (its record: every renewal carries the holder's record),
  // not the newest it granted: a failed attempt (a partitioned node asking in vain) raises maxEpoch but
  // held nothing, and must not lock the real holder out.
  const held = m.record?.epoch ?? 0;
  if (!(msg.epoch > held || (msg.epoch === held && m.record?.holder === msg.holder))) return undefined;
  // Only with the holder's record in hand: the voter then knows what it votes for.
  if (!msg.record || msg.record.epoch !== msg.epoch || msg.record.holder !== msg.holder) return undefined;
  return { holder: msg.holder, epoch: msg.epoch, expiresAt: now + state.timings.lease, released: false };
}

export function stepVoter(state: VoterState, event: VoterEvent, now: number): Step<VoterState, VoterAction> {
  if (event.type === 'tick') return syncTick(state, now);
  if (event.type === 'local-data') {
    if (state.localData[event.module] === event.dataEpoch) return { state, actions: [] };
    return { state: { ...state, localData: { ...state.localData, [event.module]: event.dataEpoch } }, actions: [] };
  }
  const msg = event.message;
  if (msg.type === 'lease-reply') return { state, actions: [] }; // replies are for clients
  if (msg.type === 'voter-sync-request' || msg.type === 'voter-sync-reply') {
    const r = onSync(state, event.from, msg);
    const t = syncTick(r.state, now);
    return { state: t.state, actions: [...r.actions, ...t.actions] };
  }
  const m = moduleOf(state, msg.module);
  const next: VoterModule = { ...m };
  let granted = false;
  let refusal: Refusal | undefined;
  let changed = false;

  switch (msg.type) {
    case 'lease-acquire': {
      // A newer record the candidate heard of from other voters: records only grow (a holder writes them, each
      // version after the last), and any member of a newer record's in-sync set holds every acknowledged change.
      if (!m.amnesiac && msg.record && newerRecord(m.record, msg.record) !== m.record) {
        next.record = msg.record;
        changed = true;
      }
      if (now < state.quarantineUntil) refusal = 'QUARANTINE';
      else if (promiseBinds(state, m.promise, now) && m.promise!.holder !== msg.candidate) refusal = 'PROMISED';
      else if (promiseBinds(state, m.promise, now) && m.promise!.holder === msg.candidate && m.promise!.epoch >= msg.epoch) refusal = 'STALE_EPOCH';
      else if (msg.epoch <= m.maxEpoch) refusal = 'STALE_EPOCH';
      // Knowing the record, refuse a candidate that could not use the lease: its promise would only block others.
      // (A candidate whose data comes from a later epoch shows that this voter's record is the stale one.)
      else if (!m.amnesiac && next.record && !msg.force && msg.dataEpoch <= next.record.epoch && !mayTakeOver(next.record, msg.candidate, msg.dataEpoch)) refusal = 'NOT_IN_SYNC';
      else {
        granted = true;
        changed = true;
        next.maxEpoch = msg.epoch;
        next.promise = { holder: msg.candidate, epoch: msg.epoch, expiresAt: now + state.timings.lease, released: false };
      }
      break;
    }
    case 'lease-renew': {
      const p = promiseOf(m, msg.holder, msg.epoch) ?? adoptable(state, m, msg, now);
      if (!p) refusal = 'NOT_HOLDER';
      else {
        granted = true;
        changed = true;
        next.promise = { ...p, expiresAt: now + state.timings.lease };
        // The holder of the promise has the module's newest record: storing it, the voter knows the module.
        if (msg.record && msg.record.epoch === msg.epoch && msg.record.holder === msg.holder) {
          const newer = newerRecord(m.record, msg.record);
          if (newer) next.record = newer;
          next.amnesiac = false;
        }
        next.maxEpoch = Math.max(m.maxEpoch, msg.epoch);
      }
      break;
    }
    case 'lease-transfer': {
      if (!promiseOf(m, msg.holder, msg.epoch)) refusal = 'NOT_HOLDER';
      // Only to a node the holder's own record counts in sync: a switchover moves the lease, never data loss.
      else if (!m.amnesiac && m.record && m.record.holder === msg.holder && m.record.epoch === msg.epoch && !m.record.inSync.includes(msg.to)) refusal = 'NOT_IN_SYNC';
      else {
        granted = true;
        changed = true;
        next.maxEpoch = Math.max(m.maxEpoch, msg.epoch + 1);
        next.promise = { holder: msg.to, epoch: msg.epoch + 1, expiresAt: now + state.timings.lease, released: false };
      }
      break;
    }
    case 'lease-release': {
      const p = promiseOf(m, msg.holder, msg.epoch);
      if (p) {
        next.promise = { ...p, released: true };
        changed = true;
      }
      // No reply: a release is best effort; an unreleased promise simply expires.
      const s = changed ? { ...state, modules: { ...state.modules, [msg.module]: next } } : state;
      return { state: s, actions: changed ? [{ type: 'persist', disk: diskOf(s) }] : [] };
    }
  }

  const s = changed ? { ...state, modules: { ...state.modules, [msg.module]: next } } : state;
  const reply = replyFor(s, msg, next, granted, refusal, now);
  const actions: VoterAction[] = changed ? [{ type: 'persist', disk: diskOf(s) }] : [];
  actions.push({ type: 'send', to: event.from, message: reply });
  return { state: s, actions };
}

function replyFor(state: VoterState, req: Exclude<LeaseRequest, { type: 'lease-release' }>, m: VoterModule, granted: boolean, refusal: Refusal | undefined, now: number): LeaseReply {
  const reply: LeaseReply = {
    type: 'lease-reply',
    module: req.module,
    requestId: req.requestId,
    voter: state.self,
    granted,
    amnesiac: m.amnesiac,
    maxEpoch: m.maxEpoch,
    dataEpoch: state.localData[req.module] ?? 0,
  };
  if (refusal) reply.refusal = refusal;
  if (m.record) reply.record = m.record;
  const p = m.promise;
  if (p && !p.released) {
    const end = p.expiresAt ?? state.quarantineUntil - state.timings.driftMargin;
    // Until the voter grants again: the promise binds for the drift margin past its end (promiseBinds).
    reply.promise = { holder: p.holder, epoch: p.epoch, remaining: Math.max(0, end + state.timings.driftMargin - now) };
  }
  return reply;
}
