/**
 * Membership: failure detection by heartbeats over every link.
 *
 * Ideas from hashicorp memberlist (SWIM with the Lifeguard extensions), adapted
 * to a full mesh of links where every member hears every other one directly:
 *
 * - Each member broadcasts a heartbeat every `heartbeatInterval`. It carries the
 *   sender's incarnation and a digest of its view of the others.
 * - A peer silent for `suspectAfter` becomes suspect; it becomes dead once its
 *   silence reaches the suspicion timeout, which starts at `deadAfter` and
 *   shrinks as other members confirm the suspicion in their heartbeats' views.
 * - Incarnations order rumours. A member that reads, in any heartbeat, that it
 *   is suspect or dead at its current incarnation raises its incarnation: every
 *   rumour about the old incarnation is void from then on.
 *
 * Direct evidence wins over rumours: a heartbeat from the peer itself (at an
 * incarnation no lower than the one we know) makes it alive, whatever others
 * say. Views are used only to count confirmations and to refute rumours about
 * ourselves; we never mark a peer alive, suspect or dead because someone else
 * did. (memberlist gossips alive/suspect/dead messages; we have a link to every
 * member, so each member judges by what it hears itself.)
 *
 * Driver contract:
 * - Call `stepMembership` with `{type:'tick'}` once right after `initMembership`,
 *   then whenever the last `wake` action's time has come (earlier is harmless).
 * - Every step ends with exactly one `wake` action: the time of the next tick.
 * - `broadcast-heartbeat` means: send this heartbeat on every link, including
 *   links to members we consider dead (that is how they learn it and refute).
 * - Deliver a received heartbeat as `{type:'heartbeat', ...heartbeat}`.
 * - `link-down` (optional) reports that the link to a peer closed; an alive
 *   peer becomes suspect at once (its dead timer still runs from its last
 *   heartbeat).
 * - Actions come in this order: `incarnation-changed`, `member-changed` (by
 *   member name), `broadcast-heartbeat`, `wake`.
 */
import { formatDuration } from '../core/duration.js';
import { reason, type Reason, type Step } from './step.js';

export const MEMBERSHIP_REASONS = {
  /** First heartbeat from a peer since this member started, or a suspect heard again at the same incarnation. */
  MEMBER_ALIVE: 'MEMBER_ALIVE',
  /** A peer was silent for `suspectAfter`, or its link went down. */
  MEMBER_SUSPECT: 'MEMBER_SUSPECT',
  /** A suspect's silence reached the suspicion timeout, or a peer never spoke within `deadAfter` of our start. */
  MEMBER_DEAD: 'MEMBER_DEAD',
  /** A suspect spoke again with a higher incarnation: it refuted the suspicion. */
  MEMBER_REFUTED: 'MEMBER_REFUTED',
  /** A dead peer spoke again. */
  MEMBER_RETURNED: 'MEMBER_RETURNED',
  /** Another member's view says we are suspect or dead at our incarnation: we raise it. */
  SELF_REFUTED: 'SELF_REFUTED',
  /** Another member knows us at a higher incarnation than ours (we restarted and lost it): we raise ours above it. */
  SELF_CAUGHT_UP: 'SELF_CAUGHT_UP',
} as const;
export type MembershipReasonCode = (typeof MEMBERSHIP_REASONS)[keyof typeof MEMBERSHIP_REASONS];

/** `unknown`: not heard from since this member started. */
export type MemberStatus = 'unknown' | 'alive' | 'suspect' | 'dead';

export interface MembershipConfig {
  /** This member's name. */
  readonly self: string;
  /** The other members (nodes and witnesses), without `self`. */
  readonly peers: readonly string[];
  readonly heartbeatInterval: number;
  readonly suspectAfter: number;
  readonly deadAfter: number;
}

/** One line of a heartbeat's digest: what the sender thinks of `member`. */
export interface ViewEntry {
  readonly member: string;
  readonly status: MemberStatus;
  readonly incarnation: number;
}

export interface Heartbeat {
  readonly from: string;
  readonly incarnation: number;
  /** The sender's view of every member but itself, sorted by member. */
  readonly view: readonly ViewEntry[];
}

export interface PeerRecord {
  readonly status: MemberStatus;
  /** The highest incarnation heard directly from the peer. */
  readonly incarnation: number;
  /** When its last accepted heartbeat arrived; for `unknown`, when we started. */
  readonly lastHeard: number;
  /** When `status` last changed. */
  readonly since: number;
  /**
   * Rumours: the other members whose latest heartbeat holds this peer suspect
   * or dead, with the incarnation they name (never below `incarnation`).
   */
  readonly suspectedBy: Readonly<Record<string, number>>;
}

export interface MembershipState {
  readonly config: MembershipConfig;
  /** Our own incarnation; only grows. */
  readonly incarnation: number;
  readonly nextHeartbeatAt: number;
  /** One record per peer, keyed by name, in name order. */
  readonly peers: Readonly<Record<string, PeerRecord>>;
}

export type MembershipEvent =
  | { readonly type: 'tick' }
  | ({ readonly type: 'heartbeat' } & Heartbeat)
  | { readonly type: 'link-down'; readonly peer: string };

export type MembershipAction =
  | {
      readonly type: 'member-changed';
      readonly member: string;
      readonly from: MemberStatus;
      readonly to: MemberStatus;
      readonly incarnation: number;
      readonly reason: Reason;
    }
  | { readonly type: 'incarnation-changed'; readonly from: number; readonly to: number; readonly reason: Reason }
  | { readonly type: 'broadcast-heartbeat'; readonly heartbeat: Heartbeat }
  | { readonly type: 'wake'; readonly at: number };

/**
 * `incarnation` lets a driver that persists it start above its last value
 * (otherwise a restarted member catches up from its peers' views, see
 * SELF_CAUGHT_UP). The first heartbeat goes out on the first tick.
 */
export function initMembership(config: MembershipConfig, now: number, incarnation = 0): MembershipState {
  const names = [...new Set(config.peers)].filter((p) => p !== config.self).sort();
  const peers: Record<string, PeerRecord> = {};
  for (const name of names) peers[name] = { status: 'unknown', incarnation: 0, lastHeard: now, since: now, suspectedBy: {} };
  return { config: { ...config, peers: names }, incarnation, nextHeartbeatAt: now, peers };
}

/**
 * The Lifeguard suspicion timeout, as silence since the last heartbeat:
 *   timeout = max(min, max − (max − min) · log(k + 1) / log(K + 1))
 * with min = `suspectAfter`, max = `deadAfter`, k confirmations out of K
 * possible confirmers (every peer but the suspect). Floored to whole ms, like
 * memberlist. With no possible confirmer (two members) it is `deadAfter`.
 *
 * min is `suspectAfter` because a confirmation here is not a second-hand
 * rumour but another member's own silence observation: when every other member
 * has independently heard nothing for `suspectAfter`, waiting longer only
 * delays the failover.
 */
export function suspicionTimeout(config: Pick<MembershipConfig, 'suspectAfter' | 'deadAfter'>, k: number, K: number): number {
  const min = config.suspectAfter;
  const max = config.deadAfter;
  if (K < 1 || k < 1) return max;
  const frac = Math.log(Math.min(k, K) + 1) / Math.log(K + 1);
  return Math.max(min, Math.floor(max - (max - min) * frac));
}

/** The members who confirm our suspicion of `member`: their latest view holds it suspect or dead, and they are not dead to us. */
export function confirmersOf(state: MembershipState, member: string): string[] {
  const rec = state.peers[member];
  if (!rec) return [];
  return Object.keys(rec.suspectedBy)
    .filter((by) => {
      const author = state.peers[by];
      const inc = rec.suspectedBy[by];
      return by !== member && author !== undefined && author.status !== 'dead' && inc !== undefined && inc >= rec.incarnation;
    })
    .sort();
}

export function statusOf(state: MembershipState, member: string): MemberStatus | undefined {
  if (member === state.config.self) return 'alive';
  return state.peers[member]?.status;
}

/** The members whose status is `alive`, `self` included, sorted. */
export function aliveMembers(state: MembershipState): string[] {
  return [state.config.self, ...Object.keys(state.peers).filter((p) => state.peers[p]?.status === 'alive')].sort();
}

/** The digest this member puts in its heartbeats. */
export function viewOf(state: MembershipState): ViewEntry[] {
  return Object.keys(state.peers)
    .sort()
    .map((member) => {
      const rec = state.peers[member]!;
      return { member, status: rec.status, incarnation: rec.incarnation };
    });
}

export function stepMembership(state: MembershipState, event: MembershipEvent, now: number): Step<MembershipState, MembershipAction> {
  const m = begin(state);
  switch (event.type) {
    case 'tick':
      break;
    case 'heartbeat':
      onHeartbeat(m, event, now);
      break;
    case 'link-down': {
      const rec = m.peers[event.peer];
      if (rec && rec.status === 'alive') {
        change(m, event.peer, 'suspect', now, reason(MEMBERSHIP_REASONS.MEMBER_SUSPECT, `marked ${event.peer} suspect: its link went down, last heartbeat ${formatDuration(now - rec.lastHeard)} ago`));
      }
      break;
    }
  }
  expire(m, now);
  // A new incarnation goes out at once; otherwise keep the cadence.
  const beat = m.announce || now >= m.nextHeartbeatAt;
  if (beat) {
    const at = m.announce ? now + state.config.heartbeatInterval : m.nextHeartbeatAt + state.config.heartbeatInterval;
    m.nextHeartbeatAt = at > now ? at : now + state.config.heartbeatInterval;
  }
  const next = snapshot(m);
  if (beat) m.heartbeats.push({ type: 'broadcast-heartbeat', heartbeat: { from: state.config.self, incarnation: m.incarnation, view: viewOf(next) } });
  const actions: MembershipAction[] = [...m.selfActions, ...m.changes.sort((a, b) => compare(a.member, b.member)), ...m.heartbeats, { type: 'wake', at: nextWake(next) }];
  return { state: next, actions };
}

function onHeartbeat(m: Work, hb: Heartbeat, now: number): void {
  const { self } = m.config;
  const rec = m.peers[hb.from];
  // Unknown senders and echoes of ourselves are not members' heartbeats.
  if (!rec || hb.from === self) return;
  // A heartbeat from the past (an older incarnation) says nothing about now.
  if (hb.incarnation < rec.incarnation) return;

  const silence = formatDuration(now - rec.lastHeard);
  const raised = hb.incarnation > rec.incarnation;
  m.peers[hb.from] = {
    ...rec,
    incarnation: hb.incarnation,
    lastHeard: now,
    // Rumours about an older incarnation are void.
    suspectedBy: raised ? pick(rec.suspectedBy, (inc) => inc >= hb.incarnation) : rec.suspectedBy,
  };
  switch (rec.status) {
    case 'unknown':
      change(m, hb.from, 'alive', now, reason(MEMBERSHIP_REASONS.MEMBER_ALIVE, `marked ${hb.from} alive: first heartbeat (incarnation ${hb.incarnation})`));
      break;
    case 'suspect':
      change(
        m,
        hb.from,
        'alive',
        now,
        raised
          ? reason(MEMBERSHIP_REASONS.MEMBER_REFUTED, `marked ${hb.from} alive: it refuted the suspicion with incarnation ${hb.incarnation} (was ${rec.incarnation}) after ${silence} of silence`)
          : reason(MEMBERSHIP_REASONS.MEMBER_ALIVE, `marked ${hb.from} alive: heard again after ${silence} of silence`),
      );
      break;
    case 'dead':
      change(m, hb.from, 'alive', now, reason(MEMBERSHIP_REASONS.MEMBER_RETURNED, `marked ${hb.from} alive: it returned after ${silence} of silence (incarnation ${hb.incarnation})`));
      break;
    case 'alive':
      break;
  }

  // The sender's view replaces everything it said before.
  for (const name of Object.keys(m.peers)) {
    const target = m.peers[name]!;
    if (hb.from in target.suspectedBy) m.peers[name] = { ...target, suspectedBy: omit(target.suspectedBy, hb.from) };
  }
  for (const entry of hb.view) {
    if (entry.member === self) {
      refuteIfNeeded(m, hb.from, entry);
      continue;
    }
    const target = m.peers[entry.member];
    if (!target || entry.member === hb.from) continue;
    if ((entry.status === 'suspect' || entry.status === 'dead') && entry.incarnation >= target.incarnation) {
      m.peers[entry.member] = { ...target, suspectedBy: { ...target.suspectedBy, [hb.from]: entry.incarnation } };
    }
  }
}

function refuteIfNeeded(m: Work, by: string, entry: ViewEntry): void {
  const { self } = m.config;
  const before = m.incarnation;
  if ((entry.status === 'suspect' || entry.status === 'dead') && entry.incarnation >= before) {
    raiseIncarnation(m, entry.incarnation + 1, reason(MEMBERSHIP_REASONS.SELF_REFUTED, `refuted the rumour that ${self} is ${entry.status}: ${by} holds it ${entry.status} at incarnation ${entry.incarnation}, raised ours to ${entry.incarnation + 1}`));
  } else if (entry.incarnation > before) {
    raiseIncarnation(m, entry.incarnation + 1, reason(MEMBERSHIP_REASONS.SELF_CAUGHT_UP, `raised the incarnation of ${self} from ${before} to ${entry.incarnation + 1}: ${by} knows it at ${entry.incarnation} and would ignore our heartbeats`));
  }
}

/** Our incarnation goes up, and the next heartbeat goes out at once so the peers learn it. */
function raiseIncarnation(m: Work, to: number, why: Reason): void {
  m.selfActions.push({ type: 'incarnation-changed', from: m.incarnation, to, reason: why });
  m.incarnation = to;
  m.announce = true;
}

/** Timers: alive → suspect after `suspectAfter`, suspect → dead at the suspicion timeout, unknown → dead after `deadAfter`. */
function expire(m: Work, now: number): void {
  const { suspectAfter, deadAfter } = m.config;
  // Confirmations are counted against the statuses as they were before this pass, so the order of names does not matter.
  // (Copied only when some peer is or may become suspect: most passes change nothing.)
  // Deadlines are compared as `now >= lastHeard + timeout`, the sum nextWake asks to be woken at: `now - lastHeard >=
  // timeout` can round the other way, and a wake at the deadline would then change nothing and ask again (a spin).
  const mayChange = Object.values(m.peers).some((r) => r.status === 'suspect' || (r.status !== 'dead' && now >= r.lastHeard + suspectAfter));
  if (!mayChange) return;
  const before = snapshot(m);
  const K = m.config.peers.length - 1;
  for (const name of Object.keys(m.peers).sort()) {
    const rec = m.peers[name]!;
    const silence = now - rec.lastHeard;
    if (rec.status === 'unknown' && now >= rec.lastHeard + deadAfter) {
      change(m, name, 'dead', now, reason(MEMBERSHIP_REASONS.MEMBER_DEAD, `marked ${name} dead: no heartbeat since we started ${formatDuration(silence)} ago`));
      continue;
    }
    if (rec.status === 'alive' && now >= rec.lastHeard + suspectAfter) {
      change(m, name, 'suspect', now, reason(MEMBERSHIP_REASONS.MEMBER_SUSPECT, `marked ${name} suspect: no heartbeat for ${formatDuration(silence)}`));
    }
    if (m.peers[name]!.status === 'suspect') {
      const confirmers = confirmersOf(before, name);
      const timeout = suspicionTimeout(m.config, confirmers.length, K);
      if (now >= rec.lastHeard + timeout) {
        const by =
          confirmers.length === 0
            ? `no other member confirmed (timeout ${formatDuration(timeout)})`
            : `confirmed by ${confirmers.join(', ')} (${confirmers.length} of ${K}; timeout ${formatDuration(timeout)})`;
        change(m, name, 'dead', now, reason(MEMBERSHIP_REASONS.MEMBER_DEAD, `marked ${name} dead: no heartbeat for ${formatDuration(silence)} and ${by}`));
      }
    }
  }
}

function nextWake(state: MembershipState): number {
  const { suspectAfter, deadAfter } = state.config;
  const K = state.config.peers.length - 1;
  let at = state.nextHeartbeatAt;
  for (const name of Object.keys(state.peers)) {
    const rec = state.peers[name]!;
    const due =
      rec.status === 'unknown'
        ? rec.lastHeard + deadAfter
        : rec.status === 'alive'
          ? rec.lastHeard + suspectAfter
          : rec.status === 'suspect'
            ? rec.lastHeard + suspicionTimeout(state.config, confirmersOf(state, name).length, K)
            : Infinity;
    if (due < at) at = due;
  }
  return at;
}

/** Working copy for one step (plain data, like the state); `snapshot` turns it back into sorted state. */
interface Work {
  readonly config: MembershipConfig;
  incarnation: number;
  nextHeartbeatAt: number;
  peers: Record<string, PeerRecord>;
  /** Our incarnation changed: heartbeat at once. */
  announce: boolean;
  selfActions: MembershipAction[];
  changes: Extract<MembershipAction, { type: 'member-changed' }>[];
  heartbeats: MembershipAction[];
}

function begin(state: MembershipState): Work {
  return {
    config: state.config,
    incarnation: state.incarnation,
    nextHeartbeatAt: state.nextHeartbeatAt,
    peers: { ...state.peers },
    announce: false,
    selfActions: [],
    changes: [],
    heartbeats: [],
  };
}

function change(w: Work, member: string, to: MemberStatus, now: number, why: Reason): void {
  const rec = w.peers[member]!;
  w.peers[member] = { ...rec, status: to, since: now };
  w.changes.push({ type: 'member-changed', member, from: rec.status, to, incarnation: rec.incarnation, reason: why });
}

function snapshot(w: Work): MembershipState {
  const peers: Record<string, PeerRecord> = {};
  // Peers keep the name order they were created in (initMembership sorts them).
  for (const name of Object.keys(w.peers)) {
    const rec = w.peers[name]!;
    peers[name] = Object.keys(rec.suspectedBy).length > 1 ? { ...rec, suspectedBy: sortKeys(rec.suspectedBy) } : rec;
  }
  return { config: w.config, incarnation: w.incarnation, nextHeartbeatAt: w.nextHeartbeatAt, peers };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function pick(rec: Readonly<Record<string, number>>, keep: (value: number) => boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(rec)) if (keep(v)) out[k] = v;
  return out;
}

function omit(rec: Readonly<Record<string, number>>, key: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(rec)) if (k !== key) out[k] = v;
  return out;
}

function sortKeys(rec: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(rec).sort()) out[k] = rec[k]!;
  return out;
}
