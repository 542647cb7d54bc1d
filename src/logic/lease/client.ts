/**
 * The lease client: a node's side of the majority lease, one per node for all
 * its mirror modules. The role logic asks it to acquire, transfer, adopt or
 * release a module's lease and to commit a new in-sync set; the client talks
 * to every voter, counts majorities, renews on time, and says when the lease
 * is held and when it is lost. Its deadline (`validUntil`, own clock) is the
 * instant by which the application must be stopped. docs/design/lease.md
 * explains the rules.
 */
import { reason, type Reason, type Step } from '../step.js';
import type { LeaseRecord, LeaseReply, LeaseRequest, Refusal } from './messages.js';
import { acknowledgedNothing, mayTakeOver, newerRecord, newHolderRecord, withInSync } from './messages.js';

export interface ClientTimings {
  lease: number;
  renewInterval: number;
  driftMargin: number;
  /** How long an acquisition or renewal round waits for replies. */
  requestTimeout: number;
}

interface Round {
  requestId: number;
  sentAt: number;
  replies: Record<string, LeaseReply>;
}

export type ClientModule =
  | { phase: 'idle' }
  | ({ phase: 'acquiring'; epoch: number; force: boolean; dataEpoch: number; staleRetries: number } & Round)
  | ({ phase: 'committing'; epoch: number; record: LeaseRecord; forced: boolean; validUntil: number } & Round)
  | { phase: 'holding'; epoch: number; record: LeaseRecord; validUntil: number; nextRenewAt: number; pending?: LeaseRecord; round?: Round & { record: LeaseRecord; renewed?: boolean }; atRisk: boolean }
  | ({ phase: 'transferring'; epoch: number; to: string; record: LeaseRecord; validUntil: number } & Round);

export interface ClientState {
  self: string;
  voters: readonly string[];
  timings: ClientTimings;
  nextRequestId: number;
  /** Highest epoch this node has seen per module (persisted by the role logic's driver). */
  knownEpoch: Record<string, number>;
  /**
   * The newest record any voter replied with, per module: an acquisition carries it, so that a voter whose
   * record is older learns the newer one instead of refusing by its stale in-sync set.
   */
  knownRecord?: Record<string, LeaseRecord>;
  modules: Record<string, ClientModule>;
}

export type ClientEvent =
  /**
   * `dataEpoch`: the epoch whose history this node's data continues (0 when it has none). Being the
   * record's holder or in its in-sync set counts only if the data still continues that record's epoch:
   * a node that lost its disk is in sync with nothing.
   */
  | { type: 'acquire'; module: string; dataEpoch: number; force?: boolean }
  /** Switchover target: the old holder transferred epoch `epoch` to this node. */
  | { type: 'adopt'; module: string; epoch: number; inSync: readonly string[]; dataEpoch: number }
  | { type: 'set-in-sync'; module: string; inSync: readonly string[] }
  | { type: 'transfer'; module: string; to: string }
  | { type: 'release'; module: string }
  | { type: 'receive'; from: string; message: LeaseReply }
  | { type: 'tick' };

export type ClientAction =
  | { type: 'send'; to: string; message: LeaseRequest }
  | { type: 'wake'; at: number }
  | { type: 'lease-acquired'; module: string; epoch: number; validUntil: number; record: LeaseRecord; forced: boolean; grantedBy: readonly string[]; reason: Reason }
  | { type: 'lease-renewed'; module: string; epoch: number; validUntil: number; grantedBy: readonly string[] }
  | { type: 'record-committed'; module: string; record: LeaseRecord; reason: Reason }
  | { type: 'lease-at-risk'; module: string; epoch: number; validUntil: number; reason: Reason }
  | { type: 'lease-lost'; module: string; epoch: number; reason: Reason }
  | { type: 'acquire-failed'; module: string; reason: Reason; holder?: string; retryAfter?: number }
  | { type: 'transferred'; module: string; epoch: number; to: string; reason: Reason }
  | { type: 'released'; module: string; epoch: number; reason: Reason };

export const LEASE_REASONS = {
  LEASE_ACQUIRED: 'LEASE_ACQUIRED',
  LEASE_ACQUIRED_FORCED: 'LEASE_ACQUIRED_FORCED',
  LEASE_PROMISED_ELSEWHERE: 'LEASE_PROMISED_ELSEWHERE',
  LEASE_NO_MAJORITY: 'LEASE_NO_MAJORITY',
  LEASE_NOT_IN_SYNC: 'LEASE_NOT_IN_SYNC',
  LEASE_UNKNOWN_STATE: 'LEASE_UNKNOWN_STATE',
  LEASE_RENEW_LATE: 'LEASE_RENEW_LATE',
  LEASE_EXPIRED: 'LEASE_EXPIRED',
  LEASE_REFUSED: 'LEASE_REFUSED',
  LEASE_TRANSFERRED: 'LEASE_TRANSFERRED',
  LEASE_RELEASED: 'LEASE_RELEASED',
  IN_SYNC_COMMITTED: 'IN_SYNC_COMMITTED',
} as const;
const R = LEASE_REASONS;

export function majorityOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

export function initClient(self: string, voters: readonly string[], timings: ClientTimings, knownEpoch: Record<string, number> = {}): ClientState {
  return { self, voters: [...voters].sort(), timings, nextRequestId: 1, knownEpoch: { ...knownEpoch }, modules: {} };
}

/** The lease as the role logic needs it: held (and until when) or not. */
export function heldLease(state: ClientState, module: string): { epoch: number; validUntil: number; record: LeaseRecord } | undefined {
  const m = state.modules[module];
  return m && m.phase === 'holding' ? { epoch: m.epoch, validUntil: m.validUntil, record: m.record } : undefined;
}

type Out = { state: ClientState; actions: ClientAction[] };

export function stepClient(state: ClientState, event: ClientEvent, now: number): Step<ClientState, ClientAction> {
  const out: Out = { state, actions: [] };
  switch (event.type) {
    case 'acquire':
      startAcquire(out, event.module, event.force ?? false, event.dataEpoch, now, 0);
      break;
    case 'adopt': {
      const record: LeaseRecord = { holder: state.self, epoch: event.epoch, inSync: [...event.inSync].sort(), version: 1, baseEpoch: event.dataEpoch };
      bumpEpoch(out, event.module, event.epoch);
      // The old holder's transfer gave us the voters' promise; our own renewal gives us a deadline.
      startCommit(out, event.module, event.epoch, record, false, now, -Infinity);
      break;
    }
    case 'set-in-sync': {
      const m = out.state.modules[event.module];
      if (m?.phase === 'holding') {
        const base = m.pending ?? m.record;
        const inSync = [...event.inSync].filter((n) => n !== state.self).sort();
        if (inSync.join() !== base.inSync.join()) {
          setModule(out, event.module, { ...m, pending: withInSync(base, inSync), nextRenewAt: now });
        }
      }
      break;
    }
    case 'transfer': {
      const m = out.state.modules[event.module];
      if (m?.phase === 'holding') {
        const round = newRound(out, now);
        setModule(out, event.module, { phase: 'transferring', epoch: m.epoch, to: event.to, record: m.record, validUntil: m.validUntil, ...round });
        broadcast(out, { type: 'lease-transfer', module: event.module, requestId: round.requestId, holder: state.self, epoch: m.epoch, to: event.to });
      }
      break;
    }
    case 'release': {
      const m = out.state.modules[event.module];
      if (m && m.phase !== 'idle' && m.phase !== 'acquiring') {
        broadcast(out, { type: 'lease-release', module: event.module, holder: state.self, epoch: m.epoch });
        setModule(out, event.module, { phase: 'idle' });
        out.actions.push({ type: 'released', module: event.module, epoch: m.epoch, reason: reason(R.LEASE_RELEASED, `released the lease of ${event.module} at epoch ${m.epoch}`) });
      } else if (m?.phase === 'acquiring') {
        releaseGrants(out, event.module, m.epoch, m.replies);
        setModule(out, event.module, { phase: 'idle' });
      }
      break;
    }
    case 'receive':
      onReply(out, event.message, now);
      break;
    case 'tick':
      break;
  }
  for (const name of Object.keys(out.state.modules)) onTime(out, name, now);
  const wake = nextWake(out.state);
  if (wake !== undefined) out.actions.push({ type: 'wake', at: wake });
  return out;
}

function setModule(out: Out, name: string, m: ClientModule): void {
  out.state = { ...out.state, modules: { ...out.state.modules, [name]: m } };
}

function bumpEpoch(out: Out, module: string, epoch: number): void {
  if ((out.state.knownEpoch[module] ?? 0) < epoch) out.state = { ...out.state, knownEpoch: { ...out.state.knownEpoch, [module]: epoch } };
}

function newRound(out: Out, now: number): Round {
  const requestId = out.state.nextRequestId;
  out.state = { ...out.state, nextRequestId: requestId + 1 };
  return { requestId, sentAt: now, replies: {} };
}

function broadcast(out: Out, message: LeaseRequest): void {
  for (const v of out.state.voters) out.actions.push({ type: 'send', to: v, message });
}

/** How often an acquisition retries at once with a higher epoch after voters said its epoch was stale. */
const MAX_STALE_RETRIES = 3;

function startAcquire(out: Out, module: string, force: boolean, dataEpoch: number, now: number, staleRetries: number): void {
  const m = out.state.modules[module];
  if (m && m.phase !== 'idle') return; // already acquiring or holding
  // Not recorded as known: only an epoch a voter stored counts, so failed attempts do not inflate it.
  const epoch = (out.state.knownEpoch[module] ?? 0) + 1;
  const round = newRound(out, now);
  setModule(out, module, { phase: 'acquiring', epoch, force, dataEpoch, staleRetries, ...round });
  const record = out.state.knownRecord?.[module];
  broadcast(out, { type: 'lease-acquire', module, requestId: round.requestId, candidate: out.state.self, epoch, dataEpoch, ...(force ? { force } : {}), ...(record ? { record } : {}) });
}

function startCommit(out: Out, module: string, epoch: number, record: LeaseRecord, forced: boolean, now: number, validUntil: number): void {
  const round = newRound(out, now);
  setModule(out, module, { phase: 'committing', epoch, record, forced, validUntil, ...round });
  broadcast(out, { type: 'lease-renew', module, requestId: round.requestId, holder: out.state.self, epoch, record });
}

function releaseGrants(out: Out, module: string, epoch: number, replies: Record<string, LeaseReply>): void {
  for (const r of Object.values(replies)) {
    if (r.granted) out.actions.push({ type: 'send', to: r.voter, message: { type: 'lease-release', module, holder: out.state.self, epoch } });
  }
}

function count(replies: Record<string, LeaseReply>): { granted: number; refused: number; total: number } {
  const all = Object.values(replies);
  const granted = all.filter((r) => r.granted).length;
  return { granted, refused: all.length - granted, total: all.length };
}

/**
 * Grants whose voter says it stored `record` (or a later version of that holder's epoch). A grant alone extends
 * the lease; only these commit a record: a voter answers with what is durable on its disk, and a record it is
 * still writing is not — the grant comes at once, so that a slow disk delays a commit, never a renewal.
 */
function stored(replies: Record<string, LeaseReply>, record: LeaseRecord): number {
  return Object.values(replies).filter((r) => r.granted && r.record !== undefined && r.record.holder === record.holder && r.record.epoch === record.epoch && r.record.version >= record.version).length;
}

function onReply(out: Out, reply: LeaseReply, now: number): void {
  const m = out.state.modules[reply.module];
  if (!out.state.voters.includes(reply.voter)) return;
  if (reply.record) {
    const known = out.state.knownRecord?.[reply.module];
    const newer = newerRecord(known, reply.record);
    if (newer !== known) out.state = { ...out.state, knownRecord: { ...out.state.knownRecord, [reply.module]: newer! } };
  }
  // A grant that arrives after its round was decided (a failed attempt, a lease already lost) would bind
  // that voter to us for a whole lease, for nothing: give it back at once.
  const p = reply.granted ? reply.promise : undefined;
  if (p && p.holder === out.state.self && (!m || m.phase === 'idle' || ('epoch' in m && m.epoch !== p.epoch))) {
    // Never propose that epoch again: the release names (holder, epoch), and a delayed copy of it must not
    // free a promise of a later round at the same epoch.
    bumpEpoch(out, reply.module, p.epoch);
    out.actions.push({ type: 'send', to: reply.voter, message: { type: 'lease-release', module: reply.module, holder: out.state.self, epoch: p.epoch } });
    return;
  }
  if (!m || m.phase === 'idle') return;
  bumpEpoch(out, reply.module, reply.maxEpoch);
  const majority = majorityOf(out.state.voters.length);
  const n = out.state.voters.length;

  if (m.phase === 'acquiring') {
    if (reply.requestId !== m.requestId) return;
    const replies = { ...m.replies, [reply.voter]: reply };
    setModule(out, reply.module, { ...m, replies });
    if (reply.refusal === 'STALE_EPOCH' && m.staleRetries < MAX_STALE_RETRIES) {
      // This voter saw a higher epoch (knownEpoch now includes it): start over above it.
      releaseGrants(out, reply.module, m.epoch, replies);
      setModule(out, reply.module, { phase: 'idle' });
      startAcquire(out, reply.module, m.force, m.dataEpoch, now, m.staleRetries + 1);
      return;
    }
    const c = count(replies);
    if (c.granted >= majority) {
      const verdict = eligibility(out.state.self, replies, n, m.force, m.dataEpoch);
      if (verdict === 'wait') return;
      if (verdict !== 'eligible' && verdict !== 'forced') {
        releaseGrants(out, reply.module, m.epoch, replies);
        setModule(out, reply.module, { phase: 'idle' });
        out.actions.push({ type: 'acquire-failed', module: reply.module, reason: verdict });
        return;
      }
      const record = newHolderRecord(out.state.self, m.epoch, m.dataEpoch, [], newestRecord(replies), verdict === 'forced');
      startCommit(out, reply.module, m.epoch, record, verdict === 'forced', now, m.sentAt + out.state.timings.lease - out.state.timings.driftMargin);
      return;
    }
    if (c.refused > n - majority) {
      releaseGrants(out, reply.module, m.epoch, replies);
      setModule(out, reply.module, { phase: 'idle' });
      out.actions.push(refusedAcquire(reply.module, replies, out.state.self, m.dataEpoch));
    }
    return;
  }

  if (m.phase === 'committing' || m.phase === 'transferring') {
    if (reply.requestId !== m.requestId) return;
    const replies = { ...m.replies, [reply.voter]: reply };
    setModule(out, reply.module, { ...m, replies });
    const c = count(replies);
    if (m.phase === 'committing' && stored(replies, m.record) >= majority) {
      const validUntil = Math.max(m.validUntil, m.sentAt + out.state.timings.lease - out.state.timings.driftMargin);
      setModule(out, reply.module, { phase: 'holding', epoch: m.epoch, record: m.record, validUntil, nextRenewAt: m.sentAt + out.state.timings.renewInterval, atRisk: false });
      const text = m.forced
        ? `became primary of ${reply.module} at epoch ${m.epoch} by operator force: data may be lost (not proven in sync)`
        : `became primary of ${reply.module} at epoch ${m.epoch}: lease granted by a majority (${granters(replies)})`;
      out.actions.push({ type: 'lease-acquired', module: reply.module, epoch: m.epoch, validUntil, record: m.record, forced: m.forced, grantedBy: granters(replies).split(', '), reason: reason(m.forced ? R.LEASE_ACQUIRED_FORCED : R.LEASE_ACQUIRED, text) });
    } else if (m.phase === 'transferring' && c.granted >= majority) {
      setModule(out, reply.module, { phase: 'idle' });
      out.actions.push({ type: 'transferred', module: reply.module, epoch: m.epoch + 1, to: m.to, reason: reason(R.LEASE_TRANSFERRED, `handed the lease of ${reply.module} to ${m.to} at epoch ${m.epoch + 1}`) });
    } else if (c.refused > n - majority) {
      // Committing: the promise is gone at a majority; we never started. Transferring: the lease is no longer ours.
      setModule(out, reply.module, { phase: 'idle' });
      if (m.phase === 'committing') out.actions.push(refusedAcquire(reply.module, replies));
      else out.actions.push({ type: 'lease-lost', module: reply.module, epoch: m.epoch, reason: reason(R.LEASE_REFUSED, `lost the lease of ${reply.module} during a transfer: refused by ${refusers(replies)}`) });
    }
    return;
  }

  // holding
  const round = m.round;
  if (!round || reply.requestId !== round.requestId) return;
  const replies = { ...round.replies, [reply.voter]: reply };
  const c = count(replies);
  if (c.granted >= majority) {
    const validUntil = Math.max(m.validUntil, round.sentAt + out.state.timings.lease - out.state.timings.driftMargin);
    // The lease is renewed at the first majority of grants; the round's record is committed once a majority stored
    // it. Until then the round stays open (the replies naming it follow the voters' writes), and the next renewal
    // carries the record again.
    const committed = round.record.version > m.record.version && stored(replies, round.record) >= majority;
    const record = committed ? round.record : m.record;
    const newest = m.pending && m.pending.version > round.record.version ? m.pending : round.record;
    const pending = newest.version > record.version ? newest : undefined;
    const open = !committed && round.record.version > m.record.version ? { round: { ...round, replies, renewed: true } } : {};
    setModule(out, reply.module, { phase: 'holding', epoch: m.epoch, record, validUntil, nextRenewAt: m.nextRenewAt, atRisk: false, ...(pending ? { pending } : {}), ...open });
    if (!round.renewed) out.actions.push({ type: 'lease-renewed', module: reply.module, epoch: m.epoch, validUntil, grantedBy: granters(replies).split(', ') });
    if (committed) out.actions.push({ type: 'record-committed', module: reply.module, record: round.record, reason: reason(R.IN_SYNC_COMMITTED, `committed the in-sync set of ${reply.module}: [${round.record.inSync.join(', ')}] (version ${round.record.version})`) });
  } else if (c.refused > n - majority) {
    setModule(out, reply.module, { phase: 'idle' });
    out.actions.push({ type: 'lease-lost', module: reply.module, epoch: m.epoch, reason: reason(R.LEASE_REFUSED, `stopped being primary of ${reply.module}: renewal refused by ${refusers(replies)}`) });
  } else {
    setModule(out, reply.module, { ...m, round: { ...round, replies } });
  }
}

/** Applies the time-driven rules to one module: deadlines, renewals, timeouts. */
function onTime(out: Out, name: string, now: number): void {
  const m = out.state.modules[name];
  if (!m || m.phase === 'idle') return;
  const t = out.state.timings;
  if (m.phase === 'acquiring' || m.phase === 'committing') {
    if (now >= m.sentAt + t.requestTimeout) {
      if (m.phase === 'acquiring') releaseGrants(out, name, m.epoch, m.replies);
      setModule(out, name, { phase: 'idle' });
      const c = count(m.replies);
      const failed: ClientAction = { type: 'acquire-failed', module: name, reason: reason(R.LEASE_NO_MAJORITY, `could not become primary of ${name}: ${c.granted} of ${out.state.voters.length} voters granted within ${t.requestTimeout}ms (a majority is ${majorityOf(out.state.voters.length)})`) };
      // Some voter may have said when its promise to another ends (a silent voter is often the dead holder itself).
      const promised = Object.values(m.replies).filter((r) => r.refusal === 'PROMISED' && r.promise);
      if (promised.length > 0) {
        failed.holder = promised[0]!.promise!.holder;
        failed.retryAfter = Math.max(0, Math.max(...promised.map((r) => r.promise!.remaining)) - (now - m.sentAt)) + 1;
      }
      out.actions.push(failed);
    }
    return;
  }
  if (m.phase === 'transferring') {
    if (now >= m.validUntil) {
      setModule(out, name, { phase: 'idle' });
      out.actions.push({ type: 'lease-lost', module: name, epoch: m.epoch, reason: reason(R.LEASE_EXPIRED, `the lease of ${name} ran out during a transfer to ${m.to}`) });
    }
    return;
  }
  // holding
  if (now >= m.validUntil) {
    setModule(out, name, { phase: 'idle' });
    out.actions.push({ type: 'lease-lost', module: name, epoch: m.epoch, reason: reason(R.LEASE_EXPIRED, `stopped being primary of ${name}: the lease was not renewed by a majority before its end`) });
    return;
  }
  if (now >= m.nextRenewAt) {
    let atRisk = m.atRisk;
    if (m.round && !m.round.renewed && !atRisk) {
      // The previous round is still short of a majority: say so once, the role logic may prepare to stop.
      atRisk = true;
      out.actions.push({ type: 'lease-at-risk', module: name, epoch: m.epoch, validUntil: m.validUntil, reason: reason(R.LEASE_RENEW_LATE, `renewal of ${name} has no majority yet; the lease ends in ${m.validUntil - now}ms`) });
    }
    const round = newRound(out, now);
    const record = m.pending ?? m.record;
    setModule(out, name, { ...m, atRisk, nextRenewAt: now + t.renewInterval, round: { ...round, record } });
    broadcast(out, { type: 'lease-renew', module: name, requestId: round.requestId, holder: out.state.self, epoch: m.epoch, record });
  }
}

function nextWake(state: ClientState): number | undefined {
  let at: number | undefined;
  const consider = (t: number) => (at = at === undefined ? t : Math.min(at, t));
  for (const m of Object.values(state.modules)) {
    if (m.phase === 'acquiring' || m.phase === 'committing') consider(m.sentAt + state.timings.requestTimeout);
    else if (m.phase === 'transferring') consider(m.validUntil);
    else if (m.phase === 'holding') {
      consider(m.validUntil);
      consider(m.nextRenewAt);
    }
  }
  return at;
}

function newestRecord(replies: Record<string, LeaseReply>): LeaseRecord | undefined {
  let best: LeaseRecord | undefined;
  for (const r of Object.values(replies)) best = newerRecord(best, r.record);
  return best;
}

/**
 * May this node become primary, given the replies so far? It must be in the
 * in-sync set of the newest record that a majority of knowledgeable voters
 * could hide (see docs/design/lease.md), or hold that record itself.
 */
function eligibility(self: string, replies: Record<string, LeaseReply>, voters: number, force: boolean, dataEpoch: number): 'eligible' | 'forced' | 'wait' | Reason {
  const all = Object.values(replies);
  const knowing = all.filter((r) => !r.amnesiac);
  const newest = newestRecord(replies);
  if (knowing.length < majorityOf(voters)) {
    // A new cluster: every voter answered and no member holds data (what keeps acknowledged writes safe here: one
    // acknowledged is held by a node whose data continues epoch 1 or later). The newest record, if any, must have
    // acknowledged nothing — a new cluster's first leases whose commits reached a minority: the voters that never
    // stored them would otherwise stay amnesiac for good, each waiting for a majority of knowing others.
    const bootstrap = all.length === voters && (!newest || acknowledgedNothing(newest)) && all.every((r) => (r.dataEpoch ?? 0) <= 0);
    if (bootstrap) return 'eligible';
    if (force) return 'forced';
    if (all.length === voters) return reason(R.LEASE_UNKNOWN_STATE, `cannot tell who is in sync: only ${knowing.length} of ${voters} voters remember the module's record`);
    return 'wait';
  }
  if (!newest) return 'eligible';
  if (mayTakeOver(newest, self, dataEpoch)) return 'eligible';
  if (force) return 'forced';
  return notInSync(self, newest, dataEpoch);
}

/** Why this node may not take over from `record`, in the words an operator needs. */
function notInSync(self: string, record: LeaseRecord, dataEpoch: number): Reason {
  const named = record.holder === self || record.inSync.includes(self) || (record.inSync.length === 0 && (record.lastInSync ?? []).includes(self));
  if (named) return reason(R.LEASE_NOT_IN_SYNC, `may not become primary: the local data continues epoch ${dataEpoch}, not epoch ${record.epoch} of ${record.holder} (was the disk lost?)`);
  return reason(R.LEASE_NOT_IN_SYNC, `may not become primary: not in the in-sync set [${record.inSync.join(', ')}] of ${record.holder} at epoch ${record.epoch}`);
}

function refusedAcquire(module: string, replies: Record<string, LeaseReply>, self?: string, dataEpoch?: number): ClientAction {
  const all = Object.values(replies);
  const newest = newestRecord(replies);
  if (self !== undefined && dataEpoch !== undefined && newest && all.some((r) => r.refusal === 'NOT_IN_SYNC')) {
    const why = notInSync(self, newest, dataEpoch);
    return { type: 'acquire-failed', module, reason: reason(why.code, `${why.text} (refused by ${refusers(replies)})`) };
  }
  const promised = all.find((r) => r.refusal === 'PROMISED' && r.promise);
  const quarantine = all.some((r) => r.refusal === 'QUARANTINE');
  const refusedNotInSync = all.some((r) => r.refusal === 'NOT_IN_SYNC');
  const code = refusedNotInSync ? R.LEASE_NOT_IN_SYNC : promised ? R.LEASE_PROMISED_ELSEWHERE : R.LEASE_NO_MAJORITY;
  const action: ClientAction = {
    type: 'acquire-failed',
    module,
    reason: reason(code, `could not become primary of ${module}: refused by ${refusers(replies)}`),
  };
  if (promised?.promise) {
    action.holder = promised.promise.holder;
    // The latest of the refusing voters' ends (plus a millisecond, so that the retry does not land on the edge).
    action.retryAfter = Math.max(...all.filter((r) => r.refusal === 'PROMISED' && r.promise).map((r) => r.promise!.remaining)) + 1;
  } else if (quarantine) {
    action.retryAfter = Math.max(...all.filter((r) => r.refusal === 'QUARANTINE').map((r) => r.promise?.remaining ?? 0), 0);
  }
  return action;
}

function granters(replies: Record<string, LeaseReply>): string {
  return Object.values(replies).filter((r) => r.granted).map((r) => r.voter).sort().join(', ');
}

function refusers(replies: Record<string, LeaseReply>): string {
  return Object.values(replies)
    .filter((r) => !r.granted)
    .map((r) => `${r.voter} (${(r.refusal ?? 'refused') as Refusal}${r.promise ? `, promised to ${r.promise.holder}` : ''})`)
    .sort()
    .join(', ');
}
