/**
 * Replication bookkeeping on a mirror module's primary: numbers the captured
 * changes, ships them to the secondaries in order, tracks what each one has
 * made durable, keeps the in-sync set honest, and answers barriers.
 *
 * Guarantee 2 lives here. A barrier returns only when every change before it
 * is durable on every member of the *committed* in-sync set, and that set
 * has at least one member. A lagging or lost secondary is removed from the
 * set by a commit through the lease (propose-in-sync → committed) before any
 * barrier may return without it. A caught-up secondary rejoins the same way.
 */
import { reason, type Reason, type Step } from './step.js';
import type { ReplicationData, ReplicationMessage } from './replication-messages.js';

export interface ReplicationTimings {
  /** An in-sync secondary that leaves a change unacknowledged this long is lagging. */
  lagTimeout: number;
  /** Unacknowledged changes are sent again after this. */
  retransmitInterval: number;
  /** Changes kept for resuming secondaries; beyond it a returning one gets a snapshot. */
  maxLog: number;
  /** The same bound in bytes of change data (the memory window); unbounded if absent. */
  maxLogBytes?: number;
  /** Change data sent again at once to a secondary that is behind, at most (at least one change); unbounded if absent. */
  maxResendBytes?: number;
}

export interface SecondaryTrack {
  connected: boolean;
  /** Highest seq it made durable (contiguous) in this epoch; -1 before its hello. */
  acked: number;
  /**
   * Highest seq sent in order on the current connection (changes are pipelined: a change goes out at once
   * when everything before it was sent, without waiting for acknowledgements); -1 when unknown.
   */
  sent?: number;
  /** When the unacknowledged range last made progress (an advancing ack) or was (re)sent: retransmission counts from here. */
  lastSentAt: number;
  /** Waiting for a snapshot to be acknowledged. */
  snapshotting: boolean;
  /** Where its data stood when the snapshot was asked for (what its hello said, or its last acknowledgement). */
  snapshotOf?: { dataEpoch: number; applied: number };
  /** When the driver said the snapshot was on the link; undefined while the resync runs. */
  snapshotSentAt?: number;
  /** Retransmissions since the last progress: each one doubles the wait before the next (up to 8×). */
  retries?: number;
  /** When its acknowledgements last advanced: lag counts from here, or from its oldest unacknowledged change if later. */
  lastAckAt?: number;
}

/** A secondary still acknowledging is lagging all the same once its oldest unacknowledged change is this many lagTimeouts old. */
export const MAX_LAG_TIMEOUTS = 10;

/**
 * When `t` becomes lagging, unless it acknowledges more: lagTimeout after
 * the later of its oldest unacknowledged change (or, that one already out
 * of the memory window while in flight, the oldest still in it) and its
 * last advancing acknowledgement — but no later than MAX_LAG_TIMEOUTS
 * lagTimeouts after that change. A secondary slower than the writes but
 * still acknowledging stays in sync for a while (flow control holds the
 * primary back, and barriers wait for it); one that stops for lagTimeout,
 * or falls that far behind, is lagging.
 */
function lagDeadline(t: SecondaryTrack, s: ReplicationPrimaryState): number | undefined {
  if (t.acked >= s.seq) return undefined;
  const oldest = s.log.find((c) => c.seq === t.acked + 1) ?? s.log[0];
  if (oldest === undefined) return undefined;
  const lag = s.timings.lagTimeout;
  return Math.min(Math.max(oldest.at, t.lastAckAt ?? -Infinity) + lag, oldest.at + MAX_LAG_TIMEOUTS * lag);
}

/** When the unacknowledged changes of `t` are due to be sent again. */
function retransmitAt(t: SecondaryTrack, timings: ReplicationTimings): number {
  return t.lastSentAt + timings.retransmitInterval * 2 ** Math.min(t.retries ?? 0, 3);
}

export interface ReplicationPrimaryState {
  module: string;
  self: string;
  epoch: number;
  timings: ReplicationTimings;
  seq: number;
  /** Recent changes, oldest first. */
  log: { seq: number; data: ReplicationData; at: number }[];
  /** Bytes of change data in the log. */
  logBytes?: number;
  secondaries: Record<string, SecondaryTrack>;
  committedInSync: readonly string[];
  proposed?: readonly string[];
  /**
   * Members of every in-sync set proposed since the last commit that covers the latest proposal. A
   * proposal may reach some voters without being committed, and a candidate may read it there: its members
   * must hold every acknowledged change too, so barriers wait for them as well.
   */
  outstanding: readonly string[];
  /** `on`: a hand-over's final barrier, which the target itself must also hold (whether or not it is in sync). */
  barriers: { id: string; seq: number; deadline: number; on?: string }[];
  refusedStale: number;
}

export type ReplicationPrimaryEvent =
  | { type: 'change'; data: ReplicationData }
  | { type: 'receive'; from: string; message: ReplicationMessage }
  | { type: 'peer'; node: string; status: 'alive' | 'dead' }
  | { type: 'barrier'; id: string; deadline: number; on?: string }
  | { type: 'committed'; inSync: readonly string[] }
  /**
   * The link's word on what was sent to `node`: on a new connection (`reconnected`) anything sent since its
   * last acknowledgement may be lost, and goes again at once; a change the link `dropped` goes again with the
   * next progress or retransmission. The links are ordered and reliable otherwise, so the retransmission timer
   * is only a backstop.
   */
  | { type: 'link'; node: string; what: 'reconnected' | 'dropped' }
  /** The driver's resync of `node` is done and its repl-snapshot is on the link. */
  | { type: 'snapshot-sent'; node: string }
  | { type: 'tick' };

export type ReplicationPrimaryAction =
  | { type: 'send'; to: string; message: ReplicationMessage }
  /**
   * The driver resyncs `to` (whose data is at `dataEpoch`:`applied`, as its hello said) and then sends
   * repl-snapshot at `seq`.
   */
  | { type: 'send-snapshot'; to: string; seq: number; dataEpoch: number; applied: number }
  | { type: 'propose-in-sync'; inSync: readonly string[]; reason: Reason }
  | { type: 'barrier-done'; id: string; ok: boolean; reason: Reason }
  | { type: 'wake'; at: number };

export const REPLICATION_REASONS = {
  BARRIER_DONE: 'BARRIER_DONE',
  BARRIER_TIMEOUT: 'BARRIER_TIMEOUT',
  BARRIER_NO_IN_SYNC: 'BARRIER_NO_IN_SYNC',
  SECONDARY_LAGGING: 'SECONDARY_LAGGING',
  SECONDARY_LOST: 'SECONDARY_LOST',
  SECONDARY_CAUGHT_UP: 'SECONDARY_CAUGHT_UP',
} as const;
const R = REPLICATION_REASONS;

export function initReplicationPrimary(o: { module: string; self: string; epoch: number; secondaries: readonly string[]; inSync: readonly string[]; timings: ReplicationTimings; seq?: number }): ReplicationPrimaryState {
  const secondaries: Record<string, SecondaryTrack> = {};
  for (const n of o.secondaries) if (n !== o.self) secondaries[n] = { connected: false, acked: -1, lastSentAt: -Infinity, snapshotting: false };
  return { module: o.module, self: o.self, epoch: o.epoch, timings: o.timings, seq: o.seq ?? 0, log: [], secondaries, committedInSync: [...o.inSync].sort(), outstanding: [], barriers: [], refusedStale: 0 };
}

type Out = { state: ReplicationPrimaryState; actions: ReplicationPrimaryAction[] };

export function stepReplicationPrimary(state: ReplicationPrimaryState, event: ReplicationPrimaryEvent, now: number): Step<ReplicationPrimaryState, ReplicationPrimaryAction> {
  const out: Out = { state, actions: [] };
  const s = () => out.state;
  switch (event.type) {
    case 'change': {
      const seq = s().seq + 1;
      const log = [...s().log, { seq, data: event.data, at: now }];
      let logBytes = (s().logBytes ?? 0) + event.data.length;
      const maxBytes = s().timings.maxLogBytes ?? Infinity;
      // The newest change always stays: a secondary that keeps up needs nothing else.
      while (log.length > 1 && (log.length > s().timings.maxLog || logBytes > maxBytes)) logBytes -= log.shift()!.data.length;
      out.state = { ...s(), seq, log, logBytes };
      for (const [n, t] of Object.entries(s().secondaries)) {
        if (t.connected && !t.snapshotting && t.acked >= 0 && (t.sent ?? t.acked) === seq - 1) {
          out.actions.push({ type: 'send', to: n, message: { type: 'repl-change', module: s().module, epoch: s().epoch, seq, data: event.data } });
          // An idle secondary starts its retransmission clock now; a busy one keeps it running from its last progress.
          track(out, n, { sent: seq, ...(t.acked === seq - 1 ? { lastSentAt: now } : {}) });
        }
      }
      break;
    }
    case 'receive':
      onMessage(out, event.from, event.message, now);
      break;
    case 'peer': {
      const t = s().secondaries[event.node];
      if (!t) break;
      if (event.status === 'dead') track(out, event.node, { connected: false, sent: -1 });
      else if (!t.connected && t.acked >= 0 && !t.snapshotting) {
        // Back after being given up for dead (a partition healed) at the same epoch: it has no reason to say hello
        // again, so go on from what it acknowledged (from the log, or with a resync if the log no longer reaches).
        track(out, event.node, { connected: true, sent: t.acked, lastSentAt: -Infinity });
        resend(out, event.node, now);
      }
      break;
    }
    case 'link': {
      const t = s().secondaries[event.node];
      if (t?.connected && t.snapshotting && t.snapshotOf && event.what === 'reconnected') {
        // A resync's records carry no numbers: some may have gone with the old connection, and the snapshot's
        // position must not claim them. The driver stopped that resync (it checks the connection before every
        // record and before it counts as done); this one starts over on the new connection. One already done
        // is not started again: its snapshot may have arrived (an acknowledgement follows), and if it went with
        // the old connection, the secondary's next hello is no longer taken as one that crossed it.
        if (t.snapshotSentAt === undefined) snapshot(out, event.node, t.snapshotOf, now);
        else track(out, event.node, { snapshotSentAt: undefined });
        break;
      }
      // Whatever it has not acknowledged, sent or not (a drop before the reconnection already took `sent` back).
      if (!t || !t.connected || t.snapshotting || t.acked < 0 || t.acked >= s().seq) break;
      track(out, event.node, { sent: t.acked });
      // Not at once after a drop: the link is full or down, and sending again now would be dropped too.
      if (event.what === 'reconnected') resend(out, event.node, now);
      break;
    }
    case 'snapshot-sent': {
      const t = s().secondaries[event.node];
      if (t?.snapshotting) track(out, event.node, { snapshotSentAt: now });
      break;
    }
    case 'barrier':
      out.state = { ...s(), barriers: [...s().barriers, { id: event.id, seq: s().seq, deadline: event.deadline, ...(event.on !== undefined ? { on: event.on } : {}) }] };
      break;
    case 'committed': {
      const inSync = [...event.inSync].filter((n) => n !== s().self).sort();
      out.state = { ...s(), committedInSync: inSync };
      // The latest proposal is committed: every earlier one is superseded wherever a candidate could look.
      if (s().proposed && s().proposed!.join() === inSync.join()) {
        delete out.state.proposed;
        out.state = { ...out.state, outstanding: [] };
      }
      break;
    }
    case 'tick':
      break;
  }
  housekeeping(out, now);
  return out;
}

function track(out: Out, node: string, patch: Partial<SecondaryTrack>): void {
  const t = out.state.secondaries[node];
  if (!t) return;
  out.state = { ...out.state, secondaries: { ...out.state.secondaries, [node]: { ...t, ...patch } } };
}

function onMessage(out: Out, from: string, msg: ReplicationMessage, now: number): void {
  const s = out.state;
  const t = s.secondaries[from];
  if (!t || msg.module !== s.module) return;
  if (msg.epoch !== s.epoch) {
    // Fencing: a message of another epoch is not about this primary's history.
    out.state = { ...s, refusedStale: s.refusedStale + 1 };
    return;
  }
  if (msg.type === 'repl-ack') {
    const acked = Math.max(t.acked, Math.min(msg.seq, s.seq));
    // An ack is a true statement about this epoch's history, so it counts even mid-snapshot;
    // housekeeping ends the snapshot once the secondary acknowledged anything. An advancing ack is progress.
    track(out, from, { acked, connected: true, sent: Math.max(t.sent ?? -1, acked), ...(acked > t.acked ? { lastSentAt: now, retries: 0, lastAckAt: now } : {}) });
    const after = out.state.secondaries[from]!;
    // Catching up (some changes not sent yet) and progress: keep its window full rather than wait for the retransmit
    // interval after each window. Behind otherwise: resend, at most once per retransmit interval (a burst of
    // duplicate acks must not multiply traffic).
    if (acked > t.acked && !after.snapshotting && (after.sent ?? acked) < out.state.seq) stream(out, from);
    else if (acked < out.state.seq && now >= retransmitAt(after, s.timings)) resend(out, from, now, true);
  } else if (msg.type === 'repl-hello') {
    const first = s.log[0]?.seq ?? s.seq + 1;
    const canResume = msg.dataEpoch === s.epoch && msg.applied <= s.seq && msg.applied + 1 >= first;
    const asked = t.snapshotOf;
    if (t.connected && t.snapshotting && t.snapshotSentAt !== undefined && now - t.snapshotSentAt < s.timings.retransmitInterval && asked?.dataEpoch === msg.dataEpoch && asked.applied === msg.applied) {
      // Said before the snapshot it asked for reached it (hellos repeat while a resync runs): the snapshot is on
      // the ordered link, its acknowledgement follows. Another resync would compare every path again. If the
      // snapshot is lost after all, the next hello, a retransmission interval on, asks again.
      return;
    }
    if (canResume && t.connected && !t.snapshotting && msg.applied === t.acked && (t.sent ?? t.acked) > t.acked) {
      // It stands where we thought, and what we sent after that is on the link it reads now (a lost connection
      // is reported and resent): sending it all again would only duplicate it. Acknowledgements carry it on.
      track(out, from, { connected: true });
    } else if (canResume) {
      track(out, from, { connected: true, acked: msg.applied, sent: msg.applied, snapshotting: false });
      resend(out, from, now);
    } else {
      track(out, from, { connected: true });
      snapshot(out, from, { dataEpoch: msg.dataEpoch, applied: msg.applied }, now);
    }
  }
}

/** Asks the driver to resync `node`, whose data is at `of`, up to now. */
function snapshot(out: Out, node: string, of: { dataEpoch: number; applied: number }, now: number): void {
  track(out, node, { acked: -1, sent: -1, snapshotting: true, snapshotOf: of, snapshotSentAt: undefined, lastSentAt: now });
  out.actions.push({ type: 'send-snapshot', to: node, seq: out.state.seq, dataEpoch: of.dataEpoch, applied: of.applied });
}

/** Sends what `node` has not acknowledged, from the log (a snapshot if the log no longer reaches); `retry`: a retransmission. */
function resend(out: Out, node: string, now: number, retry = false): void {
  const s = out.state;
  const t = s.secondaries[node]!;
  const missing = s.log.filter((c) => c.seq > t.acked);
  if (missing.length === 0) return;
  if (missing[0]!.seq !== t.acked + 1) {
    // The log no longer reaches back far enough: resync with a snapshot.
    snapshot(out, node, { dataEpoch: s.epoch, applied: t.acked }, now);
    return;
  }
  // At most maxResendBytes at a time: a secondary that is slow to acknowledge (a big fsync) has most of it in flight
  // already, and resending a whole window at once would stall the primary and overflow the link.
  let bytes = 0;
  let last = t.acked;
  for (const c of missing) {
    if (last > t.acked && bytes + c.data.length > (s.timings.maxResendBytes ?? Infinity)) break;
    out.actions.push({ type: 'send', to: node, message: { type: 'repl-change', module: s.module, epoch: s.epoch, seq: c.seq, data: c.data } });
    bytes += c.data.length;
    last = c.seq;
  }
  track(out, node, { lastSentAt: now, sent: Math.max(t.sent ?? -1, last), retries: retry ? (t.retries ?? 0) + 1 : 0 });
}

/**
 * Sends the changes after the last one sent to `node` while what it has not
 * acknowledged stays within maxResendBytes (its progress reopens the window).
 */
function stream(out: Out, node: string): void {
  const s = out.state;
  const t = s.secondaries[node]!;
  const first = s.log[0]?.seq;
  if (first === undefined || t.acked + 1 < first) return; // out of the log: the retransmission resyncs it
  const max = s.timings.maxResendBytes ?? Infinity;
  let bytes = 0;
  for (let seq = t.acked + 1; seq <= (t.sent ?? t.acked); seq++) bytes += s.log[seq - first]?.data.length ?? 0;
  let last = t.sent ?? t.acked;
  for (let seq = last + 1; seq <= s.seq; seq++) {
    const c = s.log[seq - first]!;
    if (bytes > 0 && bytes + c.data.length > max) break;
    out.actions.push({ type: 'send', to: node, message: { type: 'repl-change', module: s.module, epoch: s.epoch, seq: c.seq, data: c.data } });
    bytes += c.data.length;
    last = seq;
  }
  track(out, node, { sent: last });
}

function housekeeping(out: Out, now: number): void {
  const s = out.state;
  // Snapshot done: acknowledged up to (at least) the snapshot's seq.
  for (const [n, t] of Object.entries(s.secondaries)) {
    if (t.snapshotting && t.acked >= 0) {
      // What changed during the snapshot follows at once.
      track(out, n, { snapshotting: false, snapshotOf: undefined, snapshotSentAt: undefined, sent: t.acked });
      resend(out, n, now);
    }
  }
  // Retransmit to connected secondaries that are behind.
  for (const [n, t] of Object.entries(out.state.secondaries)) {
    if (t.connected && !t.snapshotting && t.acked >= 0 && t.acked < out.state.seq && now >= retransmitAt(t, s.timings)) resend(out, n, now, true);
  }
  // Who should be in sync: connected, everything acknowledged, or in the committed set and not lagging.
  const desired: string[] = [];
  for (const [n, t] of Object.entries(out.state.secondaries)) {
    const caughtUp = t.connected && !t.snapshotting && t.acked === out.state.seq;
    // Lagging once it has made no progress for lagTimeout. Counting from its oldest unacknowledged change alone made
    // a secondary that kept acknowledging, behind the fsyncs of a burst of big files, flap in and out of sync: a
    // record commit (an fsync on every voter) each time, and barriers without an in-sync secondary meanwhile.
    const deadline = lagDeadline(t, out.state);
    const lagging = !t.connected || t.snapshotting || t.acked < 0 || (deadline !== undefined && now >= deadline);
    if (caughtUp || (out.state.committedInSync.includes(n) && !lagging)) desired.push(n);
  }
  desired.sort();
  const current = out.state.proposed ?? out.state.committedInSync;
  if (desired.join() !== current.join()) {
    const removed = current.filter((n) => !desired.includes(n));
    const added = desired.filter((n) => !current.includes(n));
    const text = removed.length
      ? `${removed.join(', ')} ${removed.length > 1 ? 'are' : 'is'} no longer in sync with ${s.module}: ${removed.map((n) => (out.state.secondaries[n]!.connected ? 'lagging behind' : 'lost')).join(', ')}`
      : `${added.join(', ')} caught up with ${s.module}`;
    const code = removed.length ? (removed.some((n) => !out.state.secondaries[n]!.connected) ? R.SECONDARY_LOST : R.SECONDARY_LAGGING) : R.SECONDARY_CAUGHT_UP;
    out.state = { ...out.state, proposed: desired, outstanding: [...new Set([...out.state.outstanding, ...desired])].sort() };
    out.actions.push({ type: 'propose-in-sync', inSync: desired, reason: reason(code, text) });
  }
  // Barriers: durable on every member of the committed in-sync set, which is not empty, and of every set
  // proposed since (a candidate may read a proposal that never got committed).
  const inSync = out.state.committedInSync;
  const mustHold = [...new Set([...inSync, ...out.state.outstanding])];
  const remaining: ReplicationPrimaryState['barriers'] = [];
  for (const b of out.state.barriers) {
    // A hand-over's target must hold everything itself, and be in the committed in-sync set (the voters refuse
    // a transfer to anyone else): the role may still count it in sync while the commit that removes a lagging
    // target is in flight, and the others holding the changes does not put them on it.
    const holders = b.on !== undefined ? [...new Set([...mustHold, b.on])] : mustHold;
    const done = inSync.length > 0 && (b.on === undefined || inSync.includes(b.on)) && holders.every((n) => (out.state.secondaries[n]?.acked ?? -1) >= b.seq);
    if (done) {
      out.actions.push({ type: 'barrier-done', id: b.id, ok: true, reason: reason(R.BARRIER_DONE, `every change up to ${b.seq} of ${s.module} is durable on ${[...new Set([...inSync, ...(b.on !== undefined ? [b.on] : [])])].sort().join(', ')}`) });
    } else if (now >= b.deadline) {
      const why = inSync.length === 0
        ? reason(R.BARRIER_NO_IN_SYNC, `barrier of ${s.module} failed: no secondary is in sync, so no change is durable on two nodes`)
        : b.on !== undefined && !inSync.includes(b.on)
          ? reason(R.BARRIER_TIMEOUT, `barrier of ${s.module} timed out: ${b.on} is not in sync`)
          : reason(R.BARRIER_TIMEOUT, `barrier of ${s.module} timed out: not yet durable on ${holders.filter((n) => (out.state.secondaries[n]?.acked ?? -1) < b.seq).join(', ')}`);
      out.actions.push({ type: 'barrier-done', id: b.id, ok: false, reason: why });
    } else remaining.push(b);
  }
  out.state = { ...out.state, barriers: remaining };
  // Next wake: the earliest barrier deadline, lag limit or retransmission.
  let at = Infinity;
  for (const b of remaining) at = Math.min(at, b.deadline);
  for (const t of Object.values(out.state.secondaries)) {
    if (!t.connected || t.acked < 0 || t.acked >= out.state.seq) continue;
    const deadline = lagDeadline(t, out.state);
    // Only deadlines still ahead: one already passed has been acted on.
    if (deadline !== undefined && deadline > now) at = Math.min(at, deadline);
    if (!t.snapshotting) at = Math.min(at, Math.max(retransmitAt(t, s.timings), now + 1));
  }
  if (at < Infinity) out.actions.push({ type: 'wake', at: Math.max(at, now) });
}
