/**
 * Replication on a secondary: applies the primary's changes strictly in
 * order, makes each durable before acknowledging it, refuses anything from
 * an older epoch, and says hello to a new primary so it can resume from the
 * secondary's position or resync it with a snapshot.
 */
import type { Step } from './step.js';
import type { ReplicationData, ReplicationMessage } from './replication-messages.js';

export interface ReplicationSecondaryState {
  module: string;
  self: string;
  /** Highest epoch known (from the lease record or messages). */
  epoch: number;
  primary?: string;
  /** Epoch of the primary whose history the local data continues. */
  dataEpoch: number;
  /** Last change applied and durable, in `dataEpoch`'s numbering. */
  applied: number;
  refusedStale: number;
  /** The current primary has sent something (a change or a snapshot) at the current epoch since our hello. */
  heard?: boolean;
  /** Announcements seen since the last hello while nothing came from the primary. */
  unanswered?: number;
}

export type ReplicationSecondaryEvent =
  /** The primary's announcement; `inSync` is its committed in-sync set. */
  | { type: 'primary'; node: string; epoch: number; inSync?: readonly string[] }
  | { type: 'receive'; from: string; message: ReplicationMessage }
  /** A new connection to `node`: an acknowledgement sent on the old one may be lost. */
  | { type: 'reconnected'; node: string };

export type ReplicationSecondaryAction =
  /** Write the change and make it durable (fsync) before the next action. */
  | { type: 'apply'; seq: number; data: ReplicationData }
  /** Replace the replicated data with the snapshot (conflicting local changes are set aside), durably. */
  | { type: 'apply-snapshot'; seq: number; data: ReplicationData }
  | { type: 'send'; to: string; message: ReplicationMessage };

export function initReplicationSecondary(o: { module: string; self: string; dataEpoch: number; applied: number; epoch?: number }): ReplicationSecondaryState {
  return { module: o.module, self: o.self, epoch: Math.max(o.epoch ?? 0, o.dataEpoch), dataEpoch: o.dataEpoch, applied: o.applied, refusedStale: 0 };
}

export function stepReplicationSecondary(state: ReplicationSecondaryState, event: ReplicationSecondaryEvent, _now: number): Step<ReplicationSecondaryState, ReplicationSecondaryAction> {
  const s = state;
  const hello = (to: string, epoch: number): ReplicationSecondaryAction => ({ type: 'send', to, message: { type: 'repl-hello', module: s.module, epoch, dataEpoch: s.dataEpoch, applied: s.applied } });
  if (event.type === 'primary') {
    if (event.epoch < s.epoch) return { state: s, actions: [] };
    if (event.epoch === s.epoch && event.node === s.primary) {
      // Our hello may have been lost (a link that was down when we learned of this primary): while the
      // primary has sent us nothing and does not count us in sync, say hello again with each announcement.
      // Every fourth announcement (about a lease): a resync the hello started must have time to begin.
      const waiting = !s.heard && event.inSync !== undefined && !event.inSync.includes(s.self);
      if (!waiting) return { state: s, actions: [] };
      const unanswered = (s.unanswered ?? 0) + 1;
      return { state: { ...s, unanswered: unanswered % 4 }, actions: unanswered % 4 === 0 ? [hello(event.node, event.epoch)] : [] };
    }
    return { state: { ...s, epoch: event.epoch, primary: event.node, heard: false, unanswered: 0 }, actions: [hello(event.node, event.epoch)] };
  }
  if (event.type === 'reconnected') {
    // Acknowledgements are cumulative: the latest one again tells the primary everything it may have missed.
    if (event.node !== s.primary || !s.heard || s.dataEpoch !== s.epoch) return { state: s, actions: [] };
    return { state: s, actions: [{ type: 'send', to: event.node, message: { type: 'repl-ack', module: s.module, epoch: s.epoch, seq: s.applied } }] };
  }
  const msg = event.message;
  if (msg.module !== s.module || msg.type === 'repl-ack' || msg.type === 'repl-hello') return { state: s, actions: [] };
  if (msg.epoch < s.epoch) return { state: { ...s, refusedStale: s.refusedStale + 1 }, actions: [] };
  let st = s;
  const actions: ReplicationSecondaryAction[] = [];
  if (msg.epoch > s.epoch || s.primary !== event.from) {
    // A new primary speaks first: learn it, and tell it where we stand.
    st = { ...s, epoch: msg.epoch, primary: event.from, heard: false };
    // The very change that continues our data (a primary resending to a secondary that restarted meanwhile):
    // applied and acknowledged at once, the acknowledgement says where we stand. A hello would make the primary
    // send its whole window again.
    const continues = msg.type === 'repl-change' && s.dataEpoch === msg.epoch && msg.seq === s.applied + 1;
    if (msg.type === 'repl-change' && !continues) return { state: st, actions: [{ type: 'send', to: event.from, message: { type: 'repl-hello', module: s.module, epoch: msg.epoch, dataEpoch: s.dataEpoch, applied: s.applied } }] };
  }
  st = { ...st, heard: true };
  const ack = (seq: number): ReplicationSecondaryAction => ({ type: 'send', to: event.from, message: { type: 'repl-ack', module: s.module, epoch: msg.epoch, seq } });
  if (msg.type === 'repl-snapshot') {
    // A late or duplicated snapshot of this same history must not take the data back: the primary counts
    // acknowledgements as never going backwards.
    if (st.dataEpoch === msg.epoch && msg.seq <= st.applied) return { state: st, actions: [...actions, ack(st.applied)] };
    st = { ...st, dataEpoch: msg.epoch, applied: msg.seq };
    actions.push({ type: 'apply-snapshot', seq: msg.seq, data: msg.data }, ack(msg.seq));
    return { state: st, actions };
  }
  // repl-change
  if (st.dataEpoch !== msg.epoch) {
    // Our data continues another primary's history: only a snapshot can bring us in line.
    return { state: st, actions: [hello(event.from, msg.epoch)] };
  }
  if (msg.seq === st.applied + 1) {
    st = { ...st, applied: msg.seq };
    actions.push({ type: 'apply', seq: msg.seq, data: msg.data }, ack(msg.seq));
  } else {
    // A duplicate or a gap: say where we are; the primary resends what is missing.
    actions.push(ack(st.applied));
  }
  return { state: st, actions };
}
