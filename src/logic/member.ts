/**
 * One member of the cluster as a single pure machine: failure detection, the
 * voter, and on nodes the lease client and, per mirror module, its role and
 * its replication. The simulator and the agent drive this same machine; only
 * the clock, the network and the effects differ.
 *
 * The sub-machines feed each other through a work queue inside one step:
 * membership tells the roles who died, the lease client tells a role it holds
 * the lease, the role asks replication for a final barrier, replication asks
 * the lease client to commit the in-sync set, and so on.
 */
import type { Timings } from '../config/profiles.js';
import { initClient, heldLease, stepClient, type ClientAction, type ClientEvent, type ClientState } from './lease/client.js';
import type { LeaseMessage } from './lease/messages.js';
import { initVoter, stepVoter, type VoterDisk, type VoterEvent, type VoterState } from './lease/voter.js';
import { initMembership, stepMembership, type Heartbeat, type MemberStatus, type MembershipAction, type MembershipState } from './membership.js';
import { initMirror, stepMirror, type MirrorAction, type MirrorEvent, type MirrorState } from './mirror-role.js';
import type { ReplicationData, ReplicationMessage } from './replication-messages.js';
import { initReplicationPrimary, stepReplicationPrimary, type ReplicationPrimaryAction, type ReplicationPrimaryEvent, type ReplicationPrimaryState, type ReplicationTimings } from './replication-primary.js';
import { initReplicationSecondary, stepReplicationSecondary, type ReplicationSecondaryAction, type ReplicationSecondaryEvent, type ReplicationSecondaryState } from './replication-secondary.js';
import { reason, type Reason, type Step } from './step.js';

export interface MirrorModuleSpec {
  name: string;
  nodes: readonly string[];
  preferredNode?: string;
  failback: 'automatic' | 'manual';
}

export interface MemberConfig {
  self: string;
  nodes: readonly string[];
  witnesses: readonly string[];
  timings: Timings;
  replication: ReplicationTimings;
  modules: readonly MirrorModuleSpec[];
}

export type MemberMessage =
  | LeaseMessage
  | ReplicationMessage
  | { type: 'heartbeat'; heartbeat: Heartbeat }
  /** The primary's periodic word to the module's other nodes. */
  | { type: 'announce'; module: string; epoch: number; inSync: readonly string[] }
  /** `dataEpoch`:`seq`: the position of the old primary's data, which the target's must match to take over. */
  | { type: 'hand-over'; module: string; epoch: number; inSync: readonly string[]; dataEpoch: number; seq: number; stay?: boolean; senderOutOfService?: boolean }
  | { type: 'hand-over-refused'; module: string; epoch: number }
  /** A node out of service (given up) answers the announcements it hears: the primary does not fail back to it meanwhile. */
  | { type: 'out-of-service'; module: string; epoch: number };

/** What survives a restart (the driver stores it durably when told to). */
export interface MemberDisk {
  voter?: VoterDisk;
  /** Per module: highest epoch known, and the position of the local data. */
  /**
   * `epoch`: the highest epoch this node used or saw (its next attempt goes above it). `fencing`: the highest epoch of
   * a primary it knows was granted (announcements, acquisitions, hand-overs, messages) — what it refuses older ones by.
   * A failed attempt raises the first, never the second: else a restarted secondary would refuse the real primary.
   */
  modules: Record<string, { epoch: number; dataEpoch: number; applied: number; fencing?: number }>;
}

interface ModuleSlot {
  mirror: MirrorState;
  /** While this node holds the module's lease and serves as primary. */
  primary?: ReplicationPrimaryState;
  secondary: ReplicationSecondaryState;
  nextAnnounceAt: number;
  /** The voters whose grants back the lease now (acquisition or latest renewal): the evidence for starting as primary. */
  grantedBy?: readonly string[];
}

export interface MemberState {
  config: MemberConfig;
  isNode: boolean;
  membership: MembershipState;
  voter: VoterState;
  client?: ClientState;
  modules: Record<string, ModuleSlot>;
  /** When each sub-machine asked to be woken. */
  wakes: Record<string, number>;
  barrierSeq: number;
}

export type MemberInput =
  | { type: 'tick' }
  | { type: 'receive'; from: string; message: MemberMessage }
  | { type: 'app-started'; module: string }
  /** `unshipped`: the stopped application's last writes could not all be shipped (why); a hand-over is then aborted. */
  | { type: 'app-stopped'; module: string; unshipped?: string }
  /** The restart policy gave the module up on this node: stop it, release the lease, take no role until reset. */
  | { type: 'given-up'; module: string; reason: Reason }
  /** A change the application made on the primary (the driver captured it). */
  | { type: 'change'; module: string; data: ReplicationData }
  | { type: 'barrier'; module: string; id: string; deadline: number }
  | { type: 'operator'; module: string; command: 'switchover' | 'force-failover' | 'reset'; to?: string }
  /**
   * What the links know and the machine cannot: the connection to `peer` is new (what went on the old one may
   * be lost), or the link dropped a change for `module` to it (no connection, a full buffer).
   */
  | { type: 'link'; peer: string; what: 'reconnected' | 'dropped'; module?: string }
  /** The resync that a `send-snapshot` asked for is done, and its repl-snapshot is on the link to `to`. */
  | { type: 'snapshot-sent'; module: string; to: string };

export type MemberAction =
  | { type: 'send'; to: string; message: MemberMessage }
  | { type: 'persist-voter'; disk: VoterDisk }
  | { type: 'persist-module'; module: string; epoch: number; dataEpoch: number; applied: number; fencing: number }
  /** Start the application as primary; the keeper must stop it at `validUntil` unless renewed. */
  | { type: 'start-app'; module: string; epoch: number; validUntil: number; reason: Reason }
  | { type: 'extend-app'; module: string; validUntil: number }
  | { type: 'stop-app'; module: string; reason: Reason }
  | { type: 'apply'; module: string; dataEpoch: number; seq: number; data: ReplicationData }
  | { type: 'apply-snapshot'; module: string; dataEpoch: number; seq: number; data: ReplicationData }
  /** Resync `to` (its data at `dataEpoch`:`applied`), then send repl-snapshot at `seq`. */
  | { type: 'send-snapshot'; module: string; to: string; epoch: number; seq: number; dataEpoch: number; applied: number }
  | { type: 'change-refused'; module: string; reason: Reason }
  | { type: 'barrier-done'; module: string; id: string; ok: boolean; reason: Reason }
  | { type: 'quorum'; module: string; epoch: number; grantedBy: readonly string[] }
  /** This node no longer holds the module's lease (lost, transferred or released). */
  | { type: 'lease-ended'; module: string; epoch: number; reason: Reason }
  | { type: 'event'; module?: string; reason: Reason; data?: Record<string, string | number> }
  /** Membership's verdict on a member changed (the gates follow it). */
  | { type: 'member-status'; member: string; status: MemberStatus }
  | { type: 'wake'; at: number };

const FINAL_BARRIER = '__final';

export function initMember(config: MemberConfig, disk: MemberDisk | undefined, now: number): MemberState {
  const t = config.timings;
  const isNode = config.nodes.includes(config.self);
  const voters = [...config.nodes, ...config.witnesses];
  const state: MemberState = {
    config,
    isNode,
    membership: initMembership({ self: config.self, peers: voters.filter((v) => v !== config.self), heartbeatInterval: t.heartbeatInterval, suspectAfter: t.suspectAfter, deadAfter: t.deadAfter }, now),
    voter: initVoter(config.self, voters, { lease: t.lease, driftMargin: t.driftMargin, syncRetry: t.renewInterval }, disk?.voter, now),
    modules: {},
    wakes: { membership: now, voter: now },
    barrierSeq: 0,
  };
  if (isNode) {
    for (const m of config.modules) {
      const d = disk?.modules[m.name];
      if (d && m.nodes.includes(config.self)) state.voter = stepVoter(state.voter, { type: 'local-data', module: m.name, dataEpoch: d.dataEpoch }, now).state;
    }
    const known: Record<string, number> = {};
    for (const m of config.modules) known[m.name] = disk?.modules[m.name]?.epoch ?? 0;
    state.client = initClient(config.self, voters, { lease: t.lease, renewInterval: t.renewInterval, driftMargin: t.driftMargin, requestTimeout: t.renewInterval }, known);
    for (const m of config.modules) {
      if (!m.nodes.includes(config.self)) continue;
      const d = disk?.modules[m.name];
      state.modules[m.name] = {
        mirror: initMirror({ module: m.name, self: config.self, nodes: m.nodes, ...(m.preferredNode ? { preferredNode: m.preferredNode } : {}), failback: m.failback, timings: { lease: t.lease, renewInterval: t.renewInterval }, epoch: fencingOf(d), voters: voters.length, now }),
        secondary: initReplicationSecondary({ module: m.name, self: config.self, dataEpoch: d?.dataEpoch ?? 0, applied: d?.applied ?? 0, epoch: fencingOf(d) }),
        nextAnnounceAt: Infinity,
      };
      state.wakes[`mirror:${m.name}`] = now;
    }
  }
  return state;
}

/** The epoch a restarted member fences by (a disk written before `fencing` existed: its data's epoch). */
function fencingOf(d: MemberDisk['modules'][string] | undefined): number {
  return d ? (d.fencing ?? d.dataEpoch) : 0;
}

type Work =
  | { to: 'membership'; event: Parameters<typeof stepMembership>[1] }
  | { to: 'client'; event: ClientEvent }
  | { to: 'mirror'; module: string; event: MirrorEvent }
  | { to: 'primary'; module: string; event: ReplicationPrimaryEvent }
  | { to: 'secondary'; module: string; event: ReplicationSecondaryEvent }
  | { to: 'persist'; module: string };

interface Run {
  state: MemberState;
  actions: MemberAction[];
  queue: Work[];
  now: number;
}

export function stepMember(state: MemberState, input: MemberInput, now: number): Step<MemberState, MemberAction> {
  const run: Run = { state, actions: [], queue: [], now };
  route(run, input);
  drain(run);
  announce(run);
  drain(run);
  const at = Math.min(...Object.values(run.state.wakes), ...Object.values(run.state.modules).map((m) => m.nextAnnounceAt));
  if (Number.isFinite(at)) run.actions.push({ type: 'wake', at: Math.max(at, now) });
  return { state: run.state, actions: run.actions };
}

/**
 * Whether this node's application may be writing under its lease: primary,
 * or promoting (started, not yet reported running; or restarting after a
 * crash), or handing over until its application has stopped (its last
 * writes go with the final barrier). Changes and barriers are taken then.
 */
function servesWrites(slot: ModuleSlot | undefined): boolean {
  if (!slot?.primary) return false;
  const { role, app } = slot.mirror;
  // Handing over, or given up with the lease kept until the application is gone: its last writes still ship.
  return role === 'primary' || role === 'promoting' || ((role === 'handing-over' || role === 'out-of-service') && app !== 'stopped');
}

function route(run: Run, input: MemberInput): void {
  const s = run.state;
  switch (input.type) {
    case 'tick':
      for (const [key, at] of Object.entries(s.wakes)) {
        if (at > run.now) continue;
        // A wake is consumed when delivered; the sub-machine asks again if it needs to.
        const { [key]: _done, ...rest } = run.state.wakes;
        run.state = { ...run.state, wakes: rest };
        if (key === 'membership') run.queue.push({ to: 'membership', event: { type: 'tick' } });
        else if (key === 'voter') voter(run, { type: 'tick' });
        else if (key === 'client') run.queue.push({ to: 'client', event: { type: 'tick' } });
        else if (key.startsWith('mirror:')) run.queue.push({ to: 'mirror', module: key.slice(7), event: { type: 'tick' } });
        else if (key.startsWith('primary:')) run.queue.push({ to: 'primary', module: key.slice(8), event: { type: 'tick' } });
      }
      return;
    case 'receive':
      receive(run, input.from, input.message);
      return;
    case 'app-started':
      if (s.modules[input.module]) run.queue.push({ to: 'mirror', module: input.module, event: { type: 'app-started' } });
      return;
    case 'app-stopped':
      if (s.modules[input.module]) run.queue.push({ to: 'mirror', module: input.module, event: { type: 'app-stopped', ...(input.unshipped !== undefined ? { unshipped: input.unshipped } : {}) } });
      return;
    case 'given-up':
      if (s.modules[input.module]) run.queue.push({ to: 'mirror', module: input.module, event: { type: 'given-up', reason: input.reason } });
      return;
    case 'change': {
      const slot = s.modules[input.module];
      if (!servesWrites(slot)) {
        run.actions.push({ type: 'change-refused', module: input.module, reason: reason('NOT_PRIMARY', `${s.config.self} is not the primary of ${input.module}`) });
        return;
      }
      run.queue.push({ to: 'primary', module: input.module, event: { type: 'change', data: input.data } });
      run.queue.push({ to: 'persist', module: input.module });
      return;
    }
    case 'barrier': {
      const slot = s.modules[input.module];
      if (!servesWrites(slot)) {
        run.actions.push({ type: 'barrier-done', module: input.module, id: input.id, ok: false, reason: reason('NOT_PRIMARY', `${s.config.self} is not the primary of ${input.module}`) });
        return;
      }
      run.queue.push({ to: 'primary', module: input.module, event: { type: 'barrier', id: input.id, deadline: input.deadline } });
      return;
    }
    case 'link':
      for (const [name, slot] of Object.entries(s.modules)) {
        if (input.module !== undefined && input.module !== name) continue;
        if (slot.primary) run.queue.push({ to: 'primary', module: name, event: { type: 'link', node: input.peer, what: input.what } });
        else if (input.what === 'reconnected' && slot.secondary.primary === input.peer) run.queue.push({ to: 'secondary', module: name, event: { type: 'reconnected', node: input.peer } });
      }
      return;
    case 'snapshot-sent':
      if (s.modules[input.module]?.primary) run.queue.push({ to: 'primary', module: input.module, event: { type: 'snapshot-sent', node: input.to } });
      return;
    case 'operator': {
      if (!s.modules[input.module]) return;
      const event: MirrorEvent = input.command === 'switchover' ? { type: 'switchover', ...(input.to ? { to: input.to } : {}) } : input.command === 'force-failover' ? { type: 'force-failover' } : { type: 'reset' };
      run.queue.push({ to: 'mirror', module: input.module, event });
      return;
    }
  }
}

function receive(run: Run, from: string, msg: MemberMessage): void {
  const s = run.state;
  switch (msg.type) {
    case 'heartbeat':
      run.queue.push({ to: 'membership', event: { type: 'heartbeat', ...msg.heartbeat } });
      return;
    case 'lease-acquire':
    case 'lease-renew':
    case 'lease-transfer':
    case 'lease-release':
    case 'voter-sync-request':
    case 'voter-sync-reply':
      voter(run, { type: 'receive', from, message: msg });
      return;
    case 'lease-reply':
      if (s.client) run.queue.push({ to: 'client', event: { type: 'receive', from, message: msg } });
      return;
    case 'announce':
      if (!s.modules[msg.module]) return;
      run.queue.push({ to: 'mirror', module: msg.module, event: { type: 'announce', from, epoch: msg.epoch, inSync: msg.inSync } });
      if (from !== s.config.self) run.queue.push({ to: 'secondary', module: msg.module, event: { type: 'primary', node: from, epoch: msg.epoch, inSync: msg.inSync } });
      // Else the primary would fail back to this node (in sync, preferred) only to be refused: a needless stop and
      // start of the application there.
      if (from !== s.config.self && s.modules[msg.module]!.mirror.role === 'out-of-service') run.actions.push({ type: 'send', to: from, message: { type: 'out-of-service', module: msg.module, epoch: msg.epoch } });
      return;
    case 'hand-over': {
      const slot = s.modules[msg.module];
      if (!slot) return;
      // The final barrier made the old primary's changes durable here; a disk lost or replaced since (a restart
      // in between) holds less, and taking over with it would lose them.
      const local = slot.secondary;
      const lacks = local.dataEpoch !== msg.dataEpoch || local.applied < msg.seq ? `the data on ${s.config.self} is at ${local.dataEpoch}:${local.applied}, not at ${from}'s ${msg.dataEpoch}:${msg.seq}` : undefined;
      run.queue.push({ to: 'mirror', module: msg.module, event: { type: 'hand-over', from, epoch: msg.epoch, inSync: msg.inSync, ...(msg.stay ? { stay: true } : {}), ...(msg.senderOutOfService ? { senderOutOfService: true } : {}), ...(lacks !== undefined ? { lacks } : {}) } });
      return;
    }
    case 'hand-over-refused':
      if (s.modules[msg.module]) run.queue.push({ to: 'mirror', module: msg.module, event: { type: 'hand-over-refused', from, epoch: msg.epoch } });
      return;
    case 'out-of-service':
      // An answer to this primary's own announcements only (a late one to an older primary says nothing now).
      if (s.modules[msg.module]?.primary?.epoch === msg.epoch) run.queue.push({ to: 'mirror', module: msg.module, event: { type: 'out-of-service', from } });
      return;
    case 'repl-ack':
    case 'repl-hello':
      if (s.modules[msg.module]?.primary) run.queue.push({ to: 'primary', module: msg.module, event: { type: 'receive', from, message: msg } });
      return;
    case 'repl-change':
    case 'repl-snapshot': {
      const slot = s.modules[msg.module];
      // A primary takes no changes from anyone; an older primary's message is refused by the secondary machine.
      if (slot && !slot.primary) run.queue.push({ to: 'secondary', module: msg.module, event: { type: 'receive', from, message: msg } });
      return;
    }
  }
}

function voter(run: Run, event: VoterEvent): void {
  const step = stepVoter(run.state.voter, event, run.now);
  run.state = { ...run.state, voter: step.state };
  for (const a of step.actions) {
    if (a.type === 'persist') run.actions.push({ type: 'persist-voter', disk: a.disk });
    else if (a.type === 'send') run.actions.push({ type: 'send', to: a.to, message: a.message });
    else run.state = { ...run.state, wakes: { ...run.state.wakes, voter: a.at } };
  }
}

function drain(run: Run): void {
  let guard = 0;
  while (run.queue.length > 0) {
    if (++guard > 10_000) throw new Error('internal: member machine did not settle');
    const w = run.queue.shift()!;
    switch (w.to) {
      case 'membership': {
        const step = stepMembership(run.state.membership, w.event, run.now);
        run.state = { ...run.state, membership: step.state };
        for (const a of step.actions) onMembership(run, a);
        break;
      }
      case 'client': {
        if (!run.state.client) break;
        const step = stepClient(run.state.client, w.event, run.now);
        run.state = { ...run.state, client: step.state };
        for (const a of step.actions) onClient(run, a);
        break;
      }
      case 'mirror': {
        const slot = run.state.modules[w.module];
        if (!slot) break;
        const step = stepMirror(slot.mirror, w.event, run.now);
        setSlot(run, w.module, { mirror: step.state });
        for (const a of step.actions) onMirror(run, w.module, a);
        break;
      }
      case 'primary': {
        const slot = run.state.modules[w.module];
        if (!slot?.primary) break;
        const step = stepReplicationPrimary(slot.primary, w.event, run.now);
        setSlot(run, w.module, { primary: step.state });
        for (const a of step.actions) onPrimary(run, w.module, a);
        break;
      }
      case 'persist':
        persistModule(run, w.module);
        break;
      case 'secondary': {
        const slot = run.state.modules[w.module];
        if (!slot) break;
        const before = slot.secondary;
        const step = stepReplicationSecondary(slot.secondary, w.event, run.now);
        setSlot(run, w.module, { secondary: step.state });
        for (const a of step.actions) onSecondary(run, w.module, a);
        if (step.state.epoch !== before.epoch) persistModule(run, w.module);
        break;
      }
    }
  }
}

function setSlot(run: Run, module: string, patch: Partial<ModuleSlot>): void {
  const slot = run.state.modules[module]!;
  const next = { ...slot, ...patch };
  if ('primary' in patch && patch.primary === undefined) delete next.primary;
  run.state = { ...run.state, modules: { ...run.state.modules, [module]: next } };
}

function persistModule(run: Run, module: string): void {
  const slot = run.state.modules[module]!;
  const epoch = Math.max(slot.mirror.epoch, slot.secondary.epoch, run.state.client?.knownEpoch[module] ?? 0);
  const data = slot.primary ? { dataEpoch: slot.primary.epoch, applied: slot.primary.seq } : { dataEpoch: slot.secondary.dataEpoch, applied: slot.secondary.applied };
  run.actions.push({ type: 'persist-module', module, epoch, ...data, fencing: Math.max(slot.mirror.epoch, slot.secondary.epoch, data.dataEpoch) });
  // The voter reports it with its votes: data that survives proves the cluster is not new.
  voter(run, { type: 'local-data', module, dataEpoch: data.dataEpoch });
}

function onMembership(run: Run, a: MembershipAction): void {
  switch (a.type) {
    case 'broadcast-heartbeat':
      for (const peer of run.state.membership.config.peers) run.actions.push({ type: 'send', to: peer, message: { type: 'heartbeat', heartbeat: a.heartbeat } });
      return;
    case 'wake':
      run.state = { ...run.state, wakes: { ...run.state.wakes, membership: a.at } };
      return;
    case 'member-changed': {
      run.actions.push({ type: 'event', reason: a.reason, data: { member: a.member, from: a.from, to: a.to } });
      run.actions.push({ type: 'member-status', member: a.member, status: a.to });
      if (a.to === 'unknown') return;
      for (const name of Object.keys(run.state.modules)) {
        run.queue.push({ to: 'mirror', module: name, event: { type: 'member', member: a.member, status: a.to } });
        if (a.to === 'dead' || a.to === 'alive') run.queue.push({ to: 'primary', module: name, event: { type: 'peer', node: a.member, status: a.to } });
      }
      return;
    }
    case 'incarnation-changed':
      run.actions.push({ type: 'event', reason: a.reason });
      return;
  }
}

function onClient(run: Run, a: ClientAction): void {
  switch (a.type) {
    case 'send':
      run.actions.push({ type: 'send', to: a.to, message: a.message });
      return;
    case 'wake':
      run.state = { ...run.state, wakes: { ...run.state.wakes, client: a.at } };
      return;
    case 'lease-acquired':
      if (run.state.modules[a.module]) setSlot(run, a.module, { grantedBy: a.grantedBy });
      run.queue.push({ to: 'mirror', module: a.module, event: { type: 'lease-acquired', epoch: a.epoch, inSync: a.record.inSync, forced: a.forced, reason: a.reason } });
      return;
    case 'lease-renewed': {
      if (run.state.modules[a.module]) setSlot(run, a.module, { grantedBy: a.grantedBy });
      const slot = run.state.modules[a.module];
      // The role no longer wants the lease (it stepped down meanwhile): keeping it would only block the others.
      // Unless it gave up and its application is still stopping: the lease is released when it is gone.
      if (slot && (slot.mirror.role === 'secondary' || slot.mirror.role === 'out-of-service') && !slot.mirror.releaseWhenStopped && !slot.mirror.releaseAfterBarrier) {
        run.queue.push({ to: 'client', event: { type: 'release', module: a.module } });
        return;
      }
      if (slot && slot.mirror.app !== 'stopped') run.actions.push({ type: 'extend-app', module: a.module, validUntil: a.validUntil });
      return;
    }
    case 'record-committed':
      run.actions.push({ type: 'event', module: a.module, reason: a.reason });
      run.queue.push({ to: 'mirror', module: a.module, event: { type: 'record-committed', inSync: a.record.inSync } });
      run.queue.push({ to: 'primary', module: a.module, event: { type: 'committed', inSync: a.record.inSync } });
      return;
    case 'lease-at-risk':
      run.actions.push({ type: 'event', module: a.module, reason: a.reason });
      return;
    case 'lease-lost':
      run.actions.push({ type: 'lease-ended', module: a.module, epoch: a.epoch, reason: a.reason });
      run.queue.push({ to: 'mirror', module: a.module, event: { type: 'lease-lost', epoch: a.epoch, reason: a.reason } });
      stepDownIfOutOfService(run, a.module);
      return;
    case 'acquire-failed':
      run.queue.push({ to: 'mirror', module: a.module, event: { type: 'lease-failed', reason: a.reason, ...(a.retryAfter !== undefined ? { retryAfter: a.retryAfter } : {}) } });
      return;
    case 'transferred':
      run.actions.push({ type: 'event', module: a.module, reason: a.reason });
      run.queue.push({ to: 'mirror', module: a.module, event: { type: 'lease-transferred', epoch: a.epoch, to: a.to } });
      return;
    case 'released':
      run.actions.push({ type: 'lease-ended', module: a.module, epoch: a.epoch, reason: a.reason });
      stepDownIfOutOfService(run, a.module);
      return;
  }
}

function onMirror(run: Run, module: string, a: MirrorAction): void {
  const slot = () => run.state.modules[module]!;
  switch (a.type) {
    case 'lease-acquire': {
      const sl = slot();
      const dataEpoch = sl.primary ? sl.primary.epoch : sl.secondary.dataEpoch;
      run.queue.push({ to: 'client', event: { type: 'acquire', module, force: a.force, dataEpoch } });
      return;
    }
    case 'lease-adopt':
      run.queue.push({ to: 'client', event: { type: 'adopt', module, epoch: a.epoch, inSync: a.inSync, dataEpoch: slot().secondary.dataEpoch } });
      return;
    case 'lease-transfer':
      // Asking for the transfer gives the lease away: voters may promise it to the target at once.
      run.actions.push({ type: 'lease-ended', module, epoch: slot().mirror.epoch, reason: reason('LEASE_TRANSFERRING', `handing the lease of ${module} to ${a.to}`) });
      run.queue.push({ to: 'client', event: { type: 'transfer', module, to: a.to } });
      return;
    case 'lease-release':
      run.queue.push({ to: 'client', event: { type: 'release', module } });
      return;
    case 'start-app': {
      const held = run.state.client ? heldLease(run.state.client, module) : undefined;
      // A lease whose end has come is no lease, even if the client has not yet been told the time.
      const lease = held && held.validUntil > run.now ? held : undefined;
      if (!lease) {
        // Never start without a lease in hand (the role machine should not ask; this is the last guard).
        // A lease past its end may still be in the client's hands: give it up, so that others need not wait.
        if (held) run.queue.push({ to: 'client', event: { type: 'release', module } });
        run.queue.push({ to: 'mirror', module, event: { type: 'lease-lost', epoch: a.epoch, reason: reason('NO_LEASE', 'no lease in hand at start') } });
        return;
      }
      // Serve from the local data: its history continues as this epoch's. After an aborted hand-over the
      // same epoch goes on: keep its numbering, or secondaries would take new changes for old ones.
      const spec = run.state.config.modules.find((m) => m.name === module)!;
      const existing = slot().primary;
      const primary = existing && existing.epoch === lease.epoch ? existing : initReplicationPrimary({ module, self: run.state.config.self, epoch: lease.epoch, secondaries: spec.nodes, inSync: lease.record.inSync, timings: run.state.config.replication, seq: 0 });
      setSlot(run, module, { primary, nextAnnounceAt: run.now });
      persistModule(run, module);
      run.actions.push({ type: 'quorum', module, epoch: lease.epoch, grantedBy: slot().grantedBy ?? [] });
      run.actions.push({ type: 'start-app', module, epoch: lease.epoch, validUntil: lease.validUntil, reason: a.reason });
      return;
    }
    case 'stop-app':
      run.actions.push({ type: 'stop-app', module, reason: a.reason });
      return;
    case 'final-barrier':
      // No replication primary (it stepped down meanwhile): nothing to wait for.
      if (!slot().primary) run.queue.push({ to: 'mirror', module, event: { type: 'barrier-done', ok: false, reason: reason('NOT_PRIMARY', `${module} has no replication primary here`) } });
      else run.queue.push({ to: 'primary', module, event: { type: 'barrier', id: FINAL_BARRIER, deadline: run.now + run.state.config.timings.lease, ...(a.to !== undefined ? { on: a.to } : {}) } });
      return;
    case 'send-hand-over': {
      // Where the data stands: still the primary's (the role changes after this action), else what it left behind.
      const sl = slot();
      const at = sl.primary ? { dataEpoch: sl.primary.epoch, seq: sl.primary.seq } : { dataEpoch: sl.secondary.dataEpoch, seq: sl.secondary.applied };
      run.actions.push({ type: 'send', to: a.to, message: { type: 'hand-over', module, epoch: a.epoch, inSync: a.inSync, ...at, ...(a.stay ? { stay: true } : {}), ...(a.senderOutOfService ? { senderOutOfService: true } : {}) } });
      // Given up meanwhile, the role stays out of service (no role change to step down on): the lease is the target's.
      stepDownIfOutOfService(run, module);
      return;
    }
    case 'refuse-hand-over': {
      run.actions.push({ type: 'event', module, reason: a.reason });
      // The voters promised the lease to us by the transfer: give it back, so the sender need not wait it out.
      const voters = [...run.state.config.nodes, ...run.state.config.witnesses];
      for (const v of voters) run.actions.push({ type: 'send', to: v, message: { type: 'lease-release', module, holder: run.state.config.self, epoch: a.epoch } });
      run.actions.push({ type: 'send', to: a.to, message: { type: 'hand-over-refused', module, epoch: a.epoch } });
      return;
    }
    case 'role-changed': {
      run.actions.push({ type: 'event', module, reason: a.reason, data: { from: a.from, to: a.to, epoch: a.epoch } });
      // Told at once, not at the primary's next announcement: meanwhile it could start a failback here (stop its
      // application) only to be refused.
      const known = slot().mirror.primary;
      if (a.to === 'out-of-service' && known && known.node !== run.state.config.self) run.actions.push({ type: 'send', to: known.node, message: { type: 'out-of-service', module, epoch: known.epoch } });
      // A give-up keeps serving the stopping application's writes, and then its final barrier, until the lease is
      // released (or lost).
      if (a.to === 'out-of-service' && (slot().mirror.releaseWhenStopped || slot().mirror.releaseAfterBarrier)) return;
      if (a.to === 'secondary' || a.to === 'out-of-service' || a.to === 'acquiring') stepDown(run, module);
      return;
    }
    case 'refused':
      run.actions.push({ type: 'event', module, reason: a.reason });
      return;
    case 'wake':
      run.state = { ...run.state, wakes: { ...run.state.wakes, [`mirror:${module}`]: a.at } };
      return;
  }
}

/** No longer primary: the local data continues the history we served. */
function stepDown(run: Run, module: string): void {
  const slot = run.state.modules[module];
  const p = slot?.primary;
  if (!slot || !p) return;
  setSlot(run, module, { primary: undefined, nextAnnounceAt: Infinity, secondary: { ...slot.secondary, dataEpoch: p.epoch, applied: p.seq, epoch: Math.max(slot.secondary.epoch, p.epoch) } });
  delete run.state.wakes[`primary:${module}`];
  persistModule(run, module);
  // Its barriers can no longer be answered: they fail now rather than never (the caller would wait for ever).
  for (const b of p.barriers) {
    const why = reason('NOT_PRIMARY', `${run.state.config.self} is no longer the primary of ${module}: the barrier cannot be answered`);
    if (b.id === FINAL_BARRIER) run.queue.push({ to: 'mirror', module, event: { type: 'barrier-done', ok: false, reason: why } });
    else run.actions.push({ type: 'barrier-done', module, id: b.id, ok: false, reason: why });
  }
}

/** The lease of a module that gave up is gone: what it served until now is done. */
function stepDownIfOutOfService(run: Run, module: string): void {
  if (run.state.modules[module]?.mirror.role === 'out-of-service') stepDown(run, module);
}

function onPrimary(run: Run, module: string, a: ReplicationPrimaryAction): void {
  switch (a.type) {
    case 'send':
      run.actions.push({ type: 'send', to: a.to, message: a.message });
      return;
    case 'send-snapshot':
      run.actions.push({ type: 'send-snapshot', module, to: a.to, epoch: run.state.modules[module]!.primary!.epoch, seq: a.seq, dataEpoch: a.dataEpoch, applied: a.applied });
      return;
    case 'propose-in-sync':
      run.actions.push({ type: 'event', module, reason: a.reason });
      run.queue.push({ to: 'client', event: { type: 'set-in-sync', module, inSync: a.inSync } });
      return;
    case 'barrier-done':
      if (a.id === FINAL_BARRIER) run.queue.push({ to: 'mirror', module, event: { type: 'barrier-done', ok: a.ok, reason: a.reason } });
      else run.actions.push({ type: 'barrier-done', module, id: a.id, ok: a.ok, reason: a.reason });
      return;
    case 'wake':
      run.state = { ...run.state, wakes: { ...run.state.wakes, [`primary:${module}`]: a.at } };
      return;
  }
}

function onSecondary(run: Run, module: string, a: ReplicationSecondaryAction): void {
  const sec = run.state.modules[module]!.secondary;
  switch (a.type) {
    // The data and its position are made durable together: a restart resumes exactly there.
    case 'apply':
      run.actions.push({ type: 'apply', module, dataEpoch: sec.dataEpoch, seq: a.seq, data: a.data });
      persistModule(run, module);
      return;
    case 'apply-snapshot':
      run.actions.push({ type: 'apply-snapshot', module, dataEpoch: sec.dataEpoch, seq: a.seq, data: a.data });
      persistModule(run, module);
      return;
    case 'send':
      run.actions.push({ type: 'send', to: a.to, message: a.message });
      return;
  }
}

/** The primary tells the module's other nodes, every renew interval, that it is primary and who is in sync. */
function announce(run: Run): void {
  for (const [name, slot] of Object.entries(run.state.modules)) {
    if (!slot.primary || run.now < slot.nextAnnounceAt) continue;
    const spec = run.state.config.modules.find((m) => m.name === name)!;
    for (const n of spec.nodes) {
      if (n !== run.state.config.self) run.actions.push({ type: 'send', to: n, message: { type: 'announce', module: name, epoch: slot.primary.epoch, inSync: slot.mirror.inSync } });
    }
    setSlot(run, name, { nextAnnounceAt: run.now + run.state.config.timings.renewInterval });
  }
}
