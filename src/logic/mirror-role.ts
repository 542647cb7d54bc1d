/**
 * The role of one mirror module on one node: secondary or primary, and the
 * moves between them — failover (the primary is gone: an in-sync secondary
 * takes the lease), switchover (planned: stop, final barrier, hand the lease
 * over), failback (switchover back to the preferred node once it is in sync).
 *
 * The application runs as primary only between `lease-acquired` and the
 * lease's end: the machine asks to start it only while it holds a lease, and
 * to stop it the moment the lease is lost. Acquiring, renewing and the
 * in-sync rules live in the lease client (lease/client.ts).
 */
import { reason, type Reason, type Step } from './step.js';

export type MirrorRole =
  /** Receives the primary's changes; runs no application. */
  | 'secondary'
  /** Asked the voters for the lease. */
  | 'acquiring'
  /** Holds the lease; the application is starting. */
  | 'promoting'
  /** Holds the lease and runs the application. */
  | 'primary'
  /** Switchover or failback: stopping the application, final barrier, hand-over. */
  | 'handing-over'
  /** The restart policy gave the module up on this node: it takes no role until reset. */
  | 'out-of-service';

export interface MirrorTimings {
  lease: number;
  renewInterval: number;
}

export interface MirrorState {
  module: string;
  self: string;
  /** Nodes that run this module, in config order. */
  nodes: readonly string[];
  preferredNode?: string;
  failback: 'automatic' | 'manual';
  timings: MirrorTimings;
  role: MirrorRole;
  /** Highest epoch known for this module; messages from older epochs are refused. */
  epoch: number;
  /** Who this node believes is primary, and when it last heard so. */
  primary?: { node: string; epoch: number; heardAt: number };
  /** The committed in-sync set, as last known. */
  inSync: readonly string[];
  app: 'stopped' | 'starting' | 'running' | 'stopping';
  /** Members the failure detector reports dead. */
  dead: readonly string[];
  /** How many voters the cluster has: an attempt needs a majority of them not known dead. */
  voters?: number;
  /** Earliest time of the next acquisition attempt. */
  nextAttemptAt: number;
  handOverTo?: string;
  /**
   * The lease transfer to `handOverTo` was asked for: the voters may have promised the lease to the target already,
   * so it is no longer this node's to release; a transfer or a loss follows within a lease.
   */
  transferAsked?: boolean;
  /** An operator asked to take the lease without proof of being in sync. */
  forceNext: boolean;
  /** Given up while the application ran: release the lease when it has stopped (after a final barrier). */
  releaseWhenStopped?: boolean;
  /** Given up, the application stopped: the lease is released once a final barrier to the in-sync set is done. */
  releaseAfterBarrier?: boolean;
  /** An operator reset the module while it was still releasing its lease: back in service once released. */
  resetAsked?: boolean;
  /** Nodes that refused a hand-over (out of service), until when: no failback to them before. */
  declined?: Readonly<Record<string, number>>;
  /** Nodes that said the module is out of service there (answering announcements), until when: no switchover to them. */
  outOfService?: Readonly<Record<string, number>>;
  /** The hand-over under way was an operator's switchover away from the preferred node: the new primary stays. */
  handOverStay?: boolean;
  /**
   * This primary was put here by an operator's switchover away from the preferred node: no automatic
   * failback until the next failover or switchover (an operator who moved it meant it to stay).
   */
  failbackHeld?: boolean;
}

export type MirrorEvent =
  | { type: 'tick' }
  | { type: 'member'; member: string; status: 'alive' | 'suspect' | 'dead' }
  /** The primary's periodic word (carried on heartbeats or replication messages). */
  | { type: 'announce'; from: string; epoch: number; inSync: readonly string[] }
  | { type: 'lease-acquired'; epoch: number; inSync: readonly string[]; forced: boolean; reason: Reason }
  | { type: 'lease-failed'; reason: Reason; retryAfter?: number }
  | { type: 'lease-lost'; epoch: number; reason: Reason }
  | { type: 'record-committed'; inSync: readonly string[] }
  | { type: 'lease-transferred'; epoch: number; to: string }
  /**
   * The switchover target: the old primary handed over `epoch`. `lacks`: the local data does not hold everything
   * the old primary had (a disk lost or replaced since its final barrier), said why.
   */
  | { type: 'hand-over'; from: string; epoch: number; inSync: readonly string[]; stay?: boolean; lacks?: string; senderOutOfService?: boolean }
  /** The node we handed over to is out of service or lacks data: it released the lease; take it back. */
  | { type: 'hand-over-refused'; from: string; epoch: number }
  /** `from` answered an announcement: it is out of service (given up), so no failback to it for now. */
  | { type: 'out-of-service'; from: string }
  | { type: 'app-started' }
  /** `unshipped`: what the application wrote before it stopped could not all be shipped (why). */
  | { type: 'app-stopped'; unshipped?: string }
  | { type: 'barrier-done'; ok: boolean; reason?: Reason }
  | { type: 'given-up'; reason: Reason }
  | { type: 'reset' }
  | { type: 'switchover'; to?: string }
  | { type: 'force-failover' };

export type MirrorAction =
  | { type: 'lease-acquire'; force: boolean }
  | { type: 'lease-adopt'; epoch: number; inSync: readonly string[] }
  | { type: 'lease-transfer'; to: string }
  | { type: 'lease-release' }
  | { type: 'start-app'; epoch: number; reason: Reason }
  | { type: 'stop-app'; reason: Reason }
  /** Before handing over (`to`: the target) or releasing after a give-up: every change made so far durable on the target and the in-sync set. */
  | { type: 'final-barrier'; to?: string }
  /** `senderOutOfService`: this node gave up meanwhile (the target does not fail back to it). */
  | { type: 'send-hand-over'; to: string; epoch: number; inSync: readonly string[]; stay?: boolean; senderOutOfService?: boolean }
  /** Out of service here, or the local data lacks changes: tell the hand-over's sender no, and release the lease it transferred to us. */
  | { type: 'refuse-hand-over'; to: string; epoch: number; reason: Reason }
  | { type: 'role-changed'; from: MirrorRole; to: MirrorRole; epoch: number; reason: Reason }
  | { type: 'refused'; what: string; reason: Reason }
  | { type: 'wake'; at: number };

export const MIRROR_REASONS = {
  PROMOTED: 'PROMOTED',
  /** The promoted application runs: the role is primary now. */
  PRIMARY_RUNNING: 'PRIMARY_RUNNING',
  PROMOTED_FORCED: 'PROMOTED_FORCED',
  DEMOTED_LEASE_LOST: 'DEMOTED_LEASE_LOST',
  FAILOVER_ATTEMPT: 'FAILOVER_ATTEMPT',
  SWITCHOVER: 'SWITCHOVER',
  FAILBACK: 'FAILBACK',
  HANDED_OVER: 'HANDED_OVER',
  /** The target of a hand-over is out of service or lacks changes: it gave the lease back. */
  HAND_OVER_REFUSED: 'HAND_OVER_REFUSED',
  SWITCHOVER_ABORTED: 'SWITCHOVER_ABORTED',
  GIVEN_UP: 'GIVEN_UP',
  BACK_IN_SERVICE: 'BACK_IN_SERVICE',
  STALE_EPOCH_REFUSED: 'STALE_EPOCH_REFUSED',
  NOT_PRIMARY: 'NOT_PRIMARY',
  APP_STOPPED: 'APP_STOPPED',
} as const;
const R = MIRROR_REASONS;
/** How long (in leases) a node that refused a hand-over is not offered a failback again. */
const DECLINE_HOLDOFF_LEASES = 100;
/** A node that says it is out of service is not failed back to for this many leases (it says so at every announcement). */
const OUT_OF_SERVICE_HOLD_LEASES = 2;

export function initMirror(options: {
  module: string;
  self: string;
  nodes: readonly string[];
  preferredNode?: string;
  failback?: 'automatic' | 'manual';
  timings: MirrorTimings;
  epoch?: number;
  /** How many voters the cluster has (nodes and witnesses); unset: no quorum check before an attempt. */
  voters?: number;
  now: number;
}): MirrorState {
  return {
    module: options.module,
    self: options.self,
    nodes: options.nodes,
    ...(options.preferredNode ? { preferredNode: options.preferredNode } : {}),
    failback: options.failback ?? 'manual',
    timings: options.timings,
    ...(options.voters !== undefined ? { voters: options.voters } : {}),
    role: 'secondary',
    epoch: options.epoch ?? 0,
    inSync: [],
    app: 'stopped',
    dead: [],
    // Give a primary that is already running the time to announce itself.
    nextAttemptAt: options.now + rankDelay(options.self, options.nodes, options.preferredNode, options.timings),
    forceNext: false,
  };
}

/** Nodes try in a fixed order so that they rarely compete: preferred node first, then config order. */
function rankDelay(self: string, nodes: readonly string[], preferred: string | undefined, t: MirrorTimings): number {
  const order = preferred ? [preferred, ...nodes.filter((n) => n !== preferred)] : [...nodes];
  return Math.max(0, order.indexOf(self)) * t.renewInterval;
}

type Out = { state: MirrorState; actions: MirrorAction[] };

function become(out: Out, role: MirrorRole, why: Reason): void {
  const from = out.state.role;
  if (from === role) return;
  out.state = { ...out.state, role };
  out.actions.push({ type: 'role-changed', from, to: role, epoch: out.state.epoch, reason: why });
}

function set(out: Out, patch: Partial<MirrorState>): void {
  out.state = { ...out.state, ...patch };
}

export function stepMirror(state: MirrorState, event: MirrorEvent, now: number): Step<MirrorState, MirrorAction> {
  const out: Out = { state, actions: [] };
  const s = () => out.state;
  const m = state.module;
  switch (event.type) {
    case 'member': {
      const dead = event.status === 'dead' ? [...new Set([...s().dead, event.member])].sort() : s().dead.filter((x) => x !== event.member);
      set(out, { dead });
      // The primary died: try soon (after our rank), rather than waiting for its silence to last a lease.
      if (event.status === 'dead' && s().primary?.node === event.member && s().role === 'secondary') {
        set(out, { nextAttemptAt: Math.min(s().nextAttemptAt, now + rankDelay(s().self, liveNodes(s()), s().preferredNode, s().timings)) });
      }
      break;
    }
    case 'announce': {
      if (event.epoch < s().epoch) {
        out.actions.push({ type: 'refused', what: `announcement of ${event.from}`, reason: reason(R.STALE_EPOCH_REFUSED, `refused ${event.from}'s claim to be primary of ${m}: its epoch ${event.epoch} is older than ${s().epoch}`) });
        break;
      }
      set(out, { epoch: event.epoch, primary: { node: event.from, epoch: event.epoch, heardAt: now }, inSync: event.inSync });
      if (event.from !== s().self && s().role === 'secondary') set(out, { nextAttemptAt: now + s().timings.lease + rankDelay(s().self, liveNodes(s()), s().preferredNode, s().timings) });
      break;
    }
    case 'lease-acquired': {
      set(out, { epoch: Math.max(s().epoch, event.epoch), inSync: event.inSync, primary: { node: s().self, epoch: event.epoch, heardAt: now }, forceNext: false });
      if (s().role === 'out-of-service') {
        out.actions.push({ type: 'lease-release' });
        break;
      }
      become(out, 'promoting', event.reason);
      set(out, { app: 'starting' });
      out.actions.push({ type: 'start-app', epoch: event.epoch, reason: reason(event.forced ? R.PROMOTED_FORCED : R.PROMOTED, event.forced ? `starting ${m} as primary at epoch ${event.epoch}, forced by an operator: data may be lost` : `starting ${m} as primary at epoch ${event.epoch}`) });
      break;
    }
    case 'lease-failed': {
      if (s().role === 'acquiring') {
        become(out, 'secondary', event.reason);
        // Not in sync: trying again soon would only compete with a node that can take over. (One lease, not more:
        // a voter with a stale record may have refused a node that is in fact in sync.)
        // A lease promised to another ends at a time the voters told (retryAfter): try exactly then, not a
        // backoff later — that wait is the whole of a failover after a crash.
        const backoff = event.reason.code === 'LEASE_NOT_IN_SYNC' ? s().timings.lease : event.reason.code === 'LEASE_PROMISED_ELSEWHERE' && event.retryAfter !== undefined ? 0 : s().timings.renewInterval;
        // Plus this node's rank, so that candidates that just collided do not collide again in step.
        const rank = rankDelay(s().self, liveNodes(s()), s().preferredNode, s().timings);
        set(out, { nextAttemptAt: now + Math.max(backoff, event.retryAfter ?? 0) + rank });
      }
      break;
    }
    case 'lease-lost': {
      // Fencing: whatever we were doing, the application stops now.
      if (s().app !== 'stopped') {
        set(out, { app: 'stopping' });
        out.actions.push({ type: 'stop-app', reason: reason(R.DEMOTED_LEASE_LOST, `stopping ${m}: ${event.reason.text}`) });
      }
      if (s().role !== 'out-of-service') become(out, 'secondary', event.reason);
      // Nothing left to release once the application is gone.
      set(out, { primary: undefined, nextAttemptAt: now + s().timings.renewInterval, releaseWhenStopped: false, releaseAfterBarrier: false, transferAsked: false });
      delete out.state.handOverTo;
      delete out.state.handOverStay;
      delete out.state.primary;
      if (s().resetAsked) backInService(out, now);
      break;
    }
    case 'record-committed':
      set(out, { inSync: event.inSync });
      break;
    case 'app-started':
      if (s().role === 'promoting') {
        set(out, { app: 'running' });
        become(out, 'primary', reason(R.PRIMARY_RUNNING, `${m} runs as primary on ${s().self} at epoch ${s().epoch}`));
      } else {
        // Started after we stopped being primary: stop it again.
        set(out, { app: 'stopping' });
        out.actions.push({ type: 'stop-app', reason: reason(R.NOT_PRIMARY, `stopping ${m}: this node is no longer its primary`) });
      }
      break;
    case 'app-stopped': {
      const expected = s().app === 'stopping';
      set(out, { app: 'stopped' });
      if (s().releaseWhenStopped) {
        // Released once what the application wrote is durable on the in-sync secondaries: one of them takes over.
        set(out, { releaseWhenStopped: false, releaseAfterBarrier: true });
        out.actions.push({ type: 'final-barrier' });
      }
      // A hand-over moves the role only with every last write on the target: if some could not be shipped, the
      // application runs here again (what is left is then shipped as usual) and the operator may try again.
      if (s().role === 'handing-over' && s().handOverTo && event.unshipped !== undefined) abortHandOver(out, now, reason(R.SWITCHOVER_ABORTED, `the last writes could not be shipped to ${s().handOverTo}: ${event.unshipped}`));
      else if (s().role === 'handing-over' && s().handOverTo) out.actions.push({ type: 'final-barrier', to: s().handOverTo! });
      else if (!expected && (s().role === 'primary' || s().role === 'promoting')) {
        // It stopped by itself (crashed, or the keeper stopped it while the agent was frozen): start it again
        // under the lease; the member checks the lease is still held, and the restart policy counts it.
        set(out, { app: 'starting' });
        become(out, 'promoting', reason(R.APP_STOPPED, `${m} stopped unexpectedly on ${s().self}; starting it again as primary`));
        out.actions.push({ type: 'start-app', epoch: s().epoch, reason: reason(R.APP_STOPPED, `restarting ${m} as primary at epoch ${s().epoch}`) });
      }
      break;
    }
    case 'barrier-done': {
      if (s().releaseAfterBarrier) {
        // Done or failed (bounded by a lease): the module must not stay down for it.
        set(out, { releaseAfterBarrier: false });
        out.actions.push({ type: 'lease-release' });
        if (s().resetAsked) backInService(out, now);
        break;
      }
      const to = s().handOverTo;
      if (s().role !== 'handing-over' || !to) break;
      if (event.ok) {
        set(out, { transferAsked: true });
        out.actions.push({ type: 'lease-transfer', to });
      }
      else abortHandOver(out, now, event.reason ?? reason(R.SWITCHOVER_ABORTED, 'final barrier failed'));
      break;
    }
    case 'lease-transferred': {
      const inSync = [...new Set([...s().inSync.filter((n) => n !== event.to), s().self])].sort();
      // Given up after the transfer was asked for: the target holds the lease now, so it still gets the hand-over
      // (it starts at once, rather than after the lease runs out); this node has nothing left to release and
      // stays out of service.
      if (s().role === 'out-of-service') {
        set(out, { epoch: event.epoch, primary: { node: event.to, epoch: event.epoch, heardAt: now }, releaseWhenStopped: false, releaseAfterBarrier: false, transferAsked: false });
        out.actions.push({ type: 'send-hand-over', to: event.to, epoch: event.epoch, inSync, ...(s().handOverStay ? { stay: true } : {}), senderOutOfService: true });
        delete out.state.handOverTo;
        delete out.state.handOverStay;
        if (s().resetAsked) backInService(out, now);
        break;
      }
      set(out, { epoch: event.epoch, primary: { node: event.to, epoch: event.epoch, heardAt: now }, nextAttemptAt: now + s().timings.lease });
      out.actions.push({ type: 'send-hand-over', to: event.to, epoch: event.epoch, inSync, ...(s().handOverStay ? { stay: true } : {}) });
      delete out.state.handOverTo;
      delete out.state.handOverStay;
      set(out, { transferAsked: false });
      become(out, 'secondary', reason(R.HANDED_OVER, `handed ${m} over to ${event.to} at epoch ${event.epoch}`));
      break;
    }
    case 'hand-over': {
      if (event.epoch <= s().epoch && s().epoch !== 0 && event.epoch !== s().epoch) {
        out.actions.push({ type: 'refused', what: `hand-over from ${event.from}`, reason: reason(R.STALE_EPOCH_REFUSED, `refused a hand-over of ${m} at epoch ${event.epoch}: epoch ${s().epoch} is newer`) });
        break;
      }
      // A copy of the hand-over this node already took (it holds or held that epoch): refusing it would release
      // the lease under its own application.
      if (event.epoch === s().epoch && s().primary?.node === s().self) break;
      if (s().role === 'out-of-service' || event.lacks !== undefined) {
        set(out, { epoch: Math.max(s().epoch, event.epoch) });
        const why = event.lacks ?? `${m} is out of service on ${s().self}`;
        out.actions.push({ type: 'refuse-hand-over', to: event.from, epoch: event.epoch, reason: reason(R.HAND_OVER_REFUSED, `refused the hand-over of ${m} from ${event.from}: ${why}`) });
        break;
      }
      if (s().role !== 'secondary') break;
      set(out, { epoch: event.epoch, failbackHeld: Boolean(event.stay) });
      // The old primary gave up after it asked for the transfer: no failback to it (it says so again at every announcement).
      if (event.senderOutOfService) noteOutOfService(out, event.from, now);
      become(out, 'acquiring', reason(R.SWITCHOVER, `${event.from} handed ${m} over at epoch ${event.epoch}${event.stay ? ` (an operator's switchover: ${m} stays on ${s().self}, no automatic failback to ${s().preferredNode} until the next switchover or failover)` : ''}`));
      out.actions.push({ type: 'lease-adopt', epoch: event.epoch, inSync: event.inSync });
      break;
    }
    case 'hand-over-refused': {
      if (event.epoch < s().epoch || s().primary?.node !== event.from) break;
      // The lease is free again (the target released it): ask for it now, and fail back to that node
      // only after a hold-off, or an operator's switchover (it is out of service until someone resets it).
      set(out, { declined: { ...(s().declined ?? {}), [event.from]: now + DECLINE_HOLDOFF_LEASES * s().timings.lease }, nextAttemptAt: now });
      delete out.state.primary;
      out.actions.push({ type: 'refused', what: `hand-over to ${event.from}`, reason: reason(R.HAND_OVER_REFUSED, `${event.from} refused the hand-over of ${m} (out of service there, or its data lacks changes)`) });
      break;
    }
    case 'out-of-service':
      noteOutOfService(out, event.from, now);
      break;
    case 'given-up': {
      if (s().transferAsked) {
        // The lease may be the target's already: no barrier, no release; the transfer's end decides (lease-transferred
        // hands over all the same, lease-lost ends it here).
        set(out, { resetAsked: false });
        become(out, 'out-of-service', reason(R.GIVEN_UP, `${m} is out of service on ${s().self}: ${event.reason.text}`));
        break;
      }
      const holds = s().role === 'primary' || s().role === 'promoting' || s().role === 'handing-over';
      // The later word wins: a give-up (an operator's stop too) cancels a reset still waiting for the release. A
      // hand-over under way is off.
      set(out, { resetAsked: false });
      delete out.state.handOverTo;
      delete out.state.handOverStay;
      if (s().app !== 'stopped') {
        set(out, { app: 'stopping' });
        out.actions.push({ type: 'stop-app', reason: event.reason });
        // Released only once the application is gone: a release frees the voters at once.
        if (holds) set(out, { releaseWhenStopped: true });
      } else if (holds) {
        set(out, { releaseAfterBarrier: true });
        out.actions.push({ type: 'final-barrier' });
      }
      become(out, 'out-of-service', reason(R.GIVEN_UP, `${m} is out of service on ${s().self}: ${event.reason.text}`));
      break;
    }
    case 'reset':
      if (s().role !== 'out-of-service') break;
      // Still stopping or releasing the lease it gave up: back in service once that is done (a secondary that
      // still holds the lease would try for it and wait for ever).
      if (s().releaseWhenStopped || s().releaseAfterBarrier) set(out, { resetAsked: true });
      else backInService(out, now);
      break;
    case 'switchover': {
      if (s().role !== 'primary') {
        out.actions.push({ type: 'refused', what: 'switchover', reason: reason(R.NOT_PRIMARY, `cannot switch ${m} over from ${s().self}: it is ${s().role}, not primary`) });
        break;
      }
      const to = event.to ?? pickTarget(s(), now);
      // It would refuse the hand-over, after this node had stopped its application for nothing.
      if (to !== undefined && (s().outOfService?.[to] ?? 0) > now) {
        out.actions.push({ type: 'refused', what: 'switchover', reason: reason(R.SWITCHOVER_ABORTED, `cannot switch ${m} over to ${to}: ${m} is out of service there (given up); \`skyha restart ${m} --node ${to}\` resets it, and a switchover to it is taken once it no longer says so (within two leases)`) });
        break;
      }
      const allOut = s().inSync.filter((n) => n !== s().self && !s().dead.includes(n) && (s().outOfService?.[n] ?? 0) > now);
      if (!to && allOut.length > 0) {
        out.actions.push({ type: 'refused', what: 'switchover', reason: reason(R.SWITCHOVER_ABORTED, `cannot switch ${m} over: every in-sync, live secondary is out of service ([${allOut.join(', ')}], given up); \`skyha restart ${m} --node NODE\` resets one`) });
        break;
      }
      if (!to || !s().inSync.includes(to) || s().dead.includes(to)) {
        out.actions.push({ type: 'refused', what: 'switchover', reason: reason(R.SWITCHOVER_ABORTED, `cannot switch ${m} over to ${to ?? 'another node'}: it is not an in-sync, live secondary (in sync: [${s().inSync.join(', ')}])`) });
        break;
      }
      startHandOver(out, to, reason(R.SWITCHOVER, `switching ${m} over from ${s().self} to ${to}`));
      // Away from the preferred node, an operator's move holds: the target does not fail back at once.
      if (s().failback === 'automatic' && s().preferredNode && to !== s().preferredNode) out.state = { ...out.state, handOverStay: true };
      break;
    }
    case 'force-failover':
      set(out, { forceNext: true, nextAttemptAt: now });
      break;
    case 'tick':
      break;
  }
  decide(out, now);
  return out;
}

/** `node` says the module is out of service there: renewed by every announcement it answers, it lapses soon after a reset ends the answers. */
function noteOutOfService(out: Out, node: string, now: number): void {
  const until = now + OUT_OF_SERVICE_HOLD_LEASES * out.state.timings.lease;
  out.state = {
    ...out.state,
    declined: { ...(out.state.declined ?? {}), [node]: Math.max(out.state.declined?.[node] ?? 0, until) },
    outOfService: { ...(out.state.outOfService ?? {}), [node]: until },
  };
}

function liveNodes(s: MirrorState): string[] {
  return s.nodes.filter((n) => !s.dead.includes(n));
}

/** An in-sync, live secondary that is not out of service; one that declined only if there is no other. */
function pickTarget(s: MirrorState, now: number): string | undefined {
  const candidates = s.nodes.filter((n) => n !== s.self && s.inSync.includes(n) && !s.dead.includes(n) && !((s.outOfService?.[n] ?? 0) > now));
  return candidates.find((n) => !((s.declined?.[n] ?? 0) > now)) ?? candidates[0];
}

function startHandOver(out: Out, to: string, why: Reason): void {
  out.state = { ...out.state, handOverTo: to, app: 'stopping' };
  become(out, 'handing-over', why);
  out.actions.push({ type: 'stop-app', reason: why });
}

function backInService(out: Out, now: number): void {
  out.state = { ...out.state, resetAsked: false, nextAttemptAt: now + out.state.timings.lease };
  become(out, 'secondary', reason(R.BACK_IN_SERVICE, `${out.state.module} is back in service on ${out.state.self}`));
}

function abortHandOver(out: Out, now: number, why: Reason): void {
  // No automatic failback to that node for a while: the next attempt would likely fail the same way, and each costs
  // a stop and a start of the application (an operator's switchover to it is not held back).
  const to = out.state.handOverTo;
  if (to !== undefined) out.state = { ...out.state, declined: { ...(out.state.declined ?? {}), [to]: Math.max(out.state.declined?.[to] ?? 0, now + DECLINE_HOLDOFF_LEASES * out.state.timings.lease) } };
  // We still hold the lease: run the application again.
  delete out.state.handOverTo;
  delete out.state.handOverStay;
  out.state = { ...out.state, app: 'starting' };
  become(out, 'promoting', reason(R.SWITCHOVER_ABORTED, `switchover of ${out.state.module} aborted: ${why.text}`));
  out.actions.push({ type: 'start-app', epoch: out.state.epoch, reason: why });
}

/** Time-driven choices: try for the lease when no primary is heard; fail back when the preferred node is ready. */
function decide(out: Out, now: number): void {
  const s = out.state;
  if (s.role === 'secondary') {
    const silent = !s.primary || s.dead.includes(s.primary.node) || now - s.primary.heardAt > s.timings.lease;
    // Quorum before action: a node that sees no majority alive cannot win, and every attempt would raise
    // the epoch on the voters it still reaches (a partitioned node would wear its own voter out).
    const quorum = s.voters === undefined || s.voters - s.dead.length >= Math.floor(s.voters / 2) + 1;
    if (silent && !quorum && now >= s.nextAttemptAt) out.state = { ...s, nextAttemptAt: now + s.timings.renewInterval };
    else if (silent && now >= s.nextAttemptAt) {
      out.state = { ...s, nextAttemptAt: now + s.timings.renewInterval, failbackHeld: false };
      become(out, 'acquiring', reason(R.FAILOVER_ATTEMPT, s.primary ? `no word from primary ${s.primary.node} of ${s.module}: asking the voters for the lease` : `no primary of ${s.module} known: asking the voters for the lease`));
      out.actions.push({ type: 'lease-acquire', force: s.forceNext });
    }
  } else if (s.role === 'primary' && s.failback === 'automatic' && s.preferredNode && s.preferredNode !== s.self && !s.failbackHeld) {
    const p = s.preferredNode;
    if (s.inSync.includes(p) && !s.dead.includes(p) && !((s.declined?.[p] ?? 0) > now)) startHandOver(out, p, reason(R.FAILBACK, `failing ${s.module} back to its preferred node ${p}, which is in sync`));
  }
  const st = out.state;
  if (st.role === 'secondary') {
    // While a live primary is heard, the next thing to check is whether its silence outlasts a lease.
    let at = st.nextAttemptAt;
    if (st.primary && !st.dead.includes(st.primary.node)) at = Math.max(at, st.primary.heardAt + st.timings.lease + 1);
    out.actions.push({ type: 'wake', at: Math.max(at, now) });
  }
}
