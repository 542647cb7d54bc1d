/**
 * The status one member reports about itself (`GET /v1/status`): its view of
 * the members, and for each module it runs, its role, epoch, lease, process
 * and checkers. `skyha status` asks every member and merges the answers
 * (src/cli/commands/status.ts): each node is the authority on its own role.
 */
import type { CheckerStatus } from '../logic/checker.js';
import type { AdminState, PoolPosition } from '../logic/farm-pool.js';
import type { GateReport } from '../gate/backend.js';
import type { MemberStatus } from '../logic/membership.js';
import { VERSION } from '../core/version.js';
import type { SkyhaEvent } from '../observe/events.js';
import type { Agent } from './agent.js';
import type { ReplicationPrimaryState } from '../logic/replication-primary.js';
import type { ReplicationReport } from './mirror-replication.js';

export interface CheckerReport {
  name: string;
  kind: string;
  status: CheckerStatus;
  detail?: string;
  /** How long ago the last result came, ms. */
  lastAgoMs?: number;
}

export interface SecondaryReport {
  node: string;
  connected: boolean;
  inSync: boolean;
  /** The last change it made durable (seq in this epoch; -1: none yet). */
  ackedSeq: number;
  /** Changes sent or to send that it has not acknowledged, their bytes, and the age of the oldest, ms. */
  lagChanges: number;
  lagBytes: number;
  lagMs: number;
}

export interface ModuleReport {
  name: string;
  kind: 'farm' | 'mirror';
  /** Mirror: secondary | acquiring | promoting | primary | handing-over | out-of-service. Farm: active | given-up | stopped. */
  role: string;
  epoch: number;
  /** Mirror: who this node believes is primary. */
  primary?: { node: string; epoch: number };
  inSync?: readonly string[];
  /** Mirror, on the primary: each secondary's replication as the primary counts it. */
  secondaries?: SecondaryReport[];
  /** Mirror, on the holder: time left on the lease, ms. */
  leaseLeftMs?: number;
  app: { status: string; pid?: number; health: CheckerStatus };
  checkers: CheckerReport[];
  restarts: { inWindow: number; max: number; givenUp: boolean; lastFailure?: string };
  /** Mirror: the replication on this node (history position, capture, resyncs). */
  replication?: ReplicationReport;
  /** An operator stopped the module on this node (`skyha stop`): by whom, when. */
  stopped?: { by: string; at: string };
  /** What /health/MODULE answers here. */
  health: { code: number; why: string };
  /** Farm, where this node runs the module's gate: its pool (the cluster's word) and its engine's view of each backend. */
  gate?: GateReport & { pool: Array<{ node: string; position: PoolPosition; sinceAgoMs: number; admin: AdminState; member: MemberStatus; health: CheckerStatus; givenUp: boolean }> };
}

export interface MemberStatusReport {
  cluster: string;
  member: string;
  role: 'node' | 'witness';
  version: string;
  labels: Readonly<Record<string, string>>;
  uptimeMs: number;
  /** This member's view of every other member. */
  members: Array<{ name: string; role: 'node' | 'witness'; labels: Readonly<Record<string, string>>; liveness: MemberStatus; lastHeardAgoMs?: number; link: { outbound: string; inbound: boolean } }>;
  /** The voter's records: who holds each module's lease at which epoch, as this voter knows it. */
  votes: Array<{ module: string; holder?: string; epoch: number; inSync?: readonly string[] }>;
  modules: ModuleReport[];
  links: unknown;
  events: SkyhaEvent[];
}

export function buildStatus(agent: Agent): MemberStatusReport {
  const now = agent.clock.now();
  const cfg = agent.config;
  const state = agent.member.current;
  const peers = agent.linkSet.peerStatus();
  const members: MemberStatusReport['members'] = [];
  for (const m of [...cfg.nodes, ...cfg.witnesses]) {
    if (m.name === agent.self.name) continue;
    const rec = state.membership.peers[m.name];
    const link = peers[m.name];
    members.push({
      name: m.name,
      role: m.role,
      labels: m.labels,
      liveness: rec?.status ?? 'unknown',
      ...(rec && rec.status !== 'unknown' ? { lastHeardAgoMs: Math.round(now - rec.lastHeard) } : {}),
      link: { outbound: link?.outbound ?? 'backoff', inbound: link?.inbound ?? false },
    });
  }
  const votes: MemberStatusReport['votes'] = Object.entries(state.voter.modules).map(([module, v]) => ({
    module,
    epoch: Math.max(v.maxEpoch, v.record?.epoch ?? 0),
    ...(v.record ? { holder: v.record.holder, inSync: v.record.inSync } : {}),
  }));

  const modules: ModuleReport[] = [];
  for (const [name, farm] of agent.farms) {
    const h = agent.health(name);
    modules.push({
      name,
      kind: 'farm',
      role: farm.held ? 'stopped' : farm.givenUp ? 'given-up' : farm.app.status === 'running' ? 'active' : farm.app.status,
      epoch: 0,
      app: { status: farm.app.status, ...(farm.app.pid ? { pid: farm.app.pid } : {}), health: farm.app.health },
      checkers: checkers(farm.app, now),
      restarts: restarts(farm.policy, now),
      health: { code: h.code, why: h.why },
      ...stoppedOf(agent, name),
      ...gateOf(agent, name, now),
    });
  }
  for (const [name, mirror] of agent.mirrors) {
    const slot = state.modules[name];
    const lease = state.client?.modules[name];
    const h = agent.health(name);
    modules.push({
      name,
      kind: 'mirror',
      role: slot?.mirror.role ?? 'secondary',
      epoch: slot?.mirror.epoch ?? 0,
      ...(slot?.mirror.primary ? { primary: { node: slot.mirror.primary.node, epoch: slot.mirror.primary.epoch } } : {}),
      ...(slot ? { inSync: slot.mirror.inSync } : {}),
      ...(slot?.primary ? { secondaries: secondariesOf(slot.primary, now) } : {}),
      ...(lease && lease.phase === 'holding' ? { leaseLeftMs: Math.max(0, Math.round(lease.validUntil - now)) } : {}),
      app: { status: mirror.app.status, ...(mirror.app.pid ? { pid: mirror.app.pid } : {}), health: mirror.app.health },
      checkers: checkers(mirror.app, now),
      restarts: restarts(mirror.policy, now),
      health: { code: h.code, why: h.why },
      ...stoppedOf(agent, name),
      ...(agent.replications.get(name) ? { replication: agent.replications.get(name)!.report() } : {}),
    });
  }
  return {
    cluster: cfg.name,
    member: agent.self.name,
    role: agent.self.role,
    version: VERSION,
    labels: agent.self.labels,
    uptimeMs: Math.round(now - agent.startedAt),
    members,
    votes,
    modules,
    links: agent.linkSet.stats(),
    events: agent.events.recent(50),
  };
}

function stoppedOf(agent: Agent, module: string): { stopped?: { by: string; at: string } } {
  const s = agent.stoppedBy(module);
  return s ? { stopped: s } : {};
}

function secondariesOf(p: ReplicationPrimaryState, now: number): SecondaryReport[] {
  return Object.entries(p.secondaries).map(([node, t]) => {
    const behind = p.log.filter((e) => e.seq > t.acked);
    const unknown = t.acked < p.seq && behind.length === 0;
    return {
      node,
      connected: t.connected,
      inSync: p.committedInSync.includes(node),
      ackedSeq: t.acked,
      lagChanges: Math.max(0, p.seq - Math.max(t.acked, 0)),
      // Past the log window the bytes are not known here: the resync will tell.
      lagBytes: unknown ? -1 : behind.reduce((n, e) => n + e.data.length, 0),
      lagMs: behind.length > 0 ? Math.round(now - behind[0]!.at) : 0,
    };
  });
}

function gateOf(agent: Agent, module: string, now: number): { gate?: ModuleReport['gate'] } {
  const pool = agent.gates?.pool(module);
  const report = agent.gates?.reports().find((r) => r.module === module);
  if (!pool || !report) return {};
  return {
    gate: {
      ...report,
      pool: Object.entries(pool.nodes).map(([node, p]) => ({ node, position: p.position, sinceAgoMs: Math.round(now - p.since), admin: p.inputs.admin, member: p.inputs.member, health: p.inputs.health, givenUp: p.inputs.givenUp })),
    },
  };
}

function checkers(app: { checkers: Record<string, import('../logic/checker.js').CheckerState>; module: { checkers: readonly { name: string; kind: string }[] } }, now: number): CheckerReport[] {
  return app.module.checkers.map((c) => {
    const s = app.checkers[c.name]!;
    return { name: c.name, kind: c.kind, status: s.status, ...(s.last ? { detail: s.last.detail, lastAgoMs: Math.round(now - s.last.at) } : {}) };
  });
}

function restarts(policy: import('../logic/restart-policy.js').RestartPolicyState, now: number): ModuleReport['restarts'] {
  return {
    inWindow: policy.restarts.filter((r) => now - r < policy.config.window).length,
    max: policy.config.maxRestarts,
    givenUp: policy.status === 'given-up',
    ...(policy.lastFailure ? { lastFailure: policy.lastFailure.detail } : {}),
  };
}
