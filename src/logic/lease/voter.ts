/**
 * The voter side of the majority lease. Every member (node or witness) runs
 * one voter. It promises a module's lease to one holder at a time, for
 * `lease` on its own clock, and keeps the module's committed record.
 * See docs/design/lease.md for why these rules keep two primaries apart.
 */
import type { LeaseMessage, LeaseRecord, LeaseReply, LeaseRequest, Refusal } from './messages.js';
import { newerRecord } from './messages.js';
import type { Step } from '../step.js';

export interface VoterTimings {
  lease: number;
  driftMargin: number;
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
  timings: VoterTimings;
  /** No grant to a new holder before this (own clock): what it promised before a restart is unknown. */
  quarantineUntil: number;
  /** True when the voter started without its disk (or with a fresh one). */
  amnesiac: boolean;
  modules: Record<string, VoterModule>;
}

/** What the voter persists before it replies (the driver writes it durably, then sends). */
export interface VoterDisk {
  modules: Record<string, { record?: LeaseRecord; maxEpoch: number; promise?: { holder: string; epoch: number } }>;
}

export type VoterAction =
  | { type: 'persist'; disk: VoterDisk }
  | { type: 'send'; to: string; message: LeaseReply };

export type VoterEvent = { type: 'receive'; from: string; message: LeaseMessage };

/** Boot a voter from what its disk holds (undefined: no disk, or a lost one). */
export function initVoter(self: string, timings: VoterTimings, disk: VoterDisk | undefined, now: number): VoterState {
  const modules: Record<string, VoterModule> = {};
  for (const [name, m] of Object.entries(disk?.modules ?? {})) {
    modules[name] = {
      maxEpoch: m.maxEpoch,
      amnesiac: false,
      ...(m.record ? { record: m.record } : {}),
      ...(m.promise ? { promise: { ...m.promise, released: false } } : {}),
    };
  }
  return { self, timings, quarantineUntil: now + timings.lease + timings.driftMargin, amnesiac: disk === undefined, modules };
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
    };
  }
  return { modules };
}

/** True while the promise still binds: not released, and not expired plus the drift margin. */
function promiseBinds(state: VoterState, p: Promise_ | undefined, now: number): boolean {
  if (!p || p.released) return false;
  const end = p.expiresAt ?? state.quarantineUntil - state.timings.driftMargin;
  return now < end + state.timings.driftMargin;
}

export function stepVoter(state: VoterState, event: VoterEvent, now: number): Step<VoterState, VoterAction> {
  const msg = event.message;
  if (msg.type === 'lease-reply') return { state, actions: [] }; // replies are for clients
  const m = moduleOf(state, msg.module);
  const next: VoterModule = { ...m };
  let granted = false;
  let refusal: Refusal | undefined;
  let changed = false;

  switch (msg.type) {
    case 'lease-acquire': {
      if (now < state.quarantineUntil) refusal = 'QUARANTINE';
      else if (promiseBinds(state, m.promise, now) && m.promise!.holder !== msg.candidate) refusal = 'PROMISED';
      else if (promiseBinds(state, m.promise, now) && m.promise!.holder === msg.candidate && m.promise!.epoch >= msg.epoch) refusal = 'STALE_EPOCH';
      else if (msg.epoch <= m.maxEpoch) refusal = 'STALE_EPOCH';
      else {
        granted = true;
        changed = true;
        next.maxEpoch = msg.epoch;
        next.promise = { holder: msg.candidate, epoch: msg.epoch, expiresAt: now + state.timings.lease, released: false };
      }
      break;
    }
    case 'lease-renew': {
      const p = m.promise;
      if (!p || p.released || p.holder !== msg.holder || p.epoch !== msg.epoch) refusal = 'NOT_HOLDER';
      else {
        granted = true;
        changed = true;
        next.promise = { ...p, expiresAt: now + state.timings.lease };
        const newer = newerRecord(m.record, msg.record);
        if (msg.record && newer === msg.record && msg.record.epoch === msg.epoch && msg.record.holder === msg.holder) {
          next.record = msg.record;
          next.amnesiac = false; // it now knows the module's committed record
        }
        next.maxEpoch = Math.max(m.maxEpoch, msg.epoch);
      }
      break;
    }
    case 'lease-transfer': {
      const p = m.promise;
      if (!p || p.released || p.holder !== msg.holder || p.epoch !== msg.epoch) refusal = 'NOT_HOLDER';
      else {
        granted = true;
        changed = true;
        next.maxEpoch = Math.max(m.maxEpoch, msg.epoch + 1);
        next.promise = { holder: msg.to, epoch: msg.epoch + 1, expiresAt: now + state.timings.lease, released: false };
      }
      break;
    }
    case 'lease-release': {
      const p = m.promise;
      if (p && !p.released && p.holder === msg.holder && p.epoch === msg.epoch) {
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
  };
  if (refusal) reply.refusal = refusal;
  if (m.record) reply.record = m.record;
  const p = m.promise;
  if (p && !p.released) {
    const end = p.expiresAt ?? state.quarantineUntil - state.timings.driftMargin;
    reply.promise = { holder: p.holder, epoch: p.epoch, remaining: Math.max(0, end - now) };
  }
  return reply;
}
