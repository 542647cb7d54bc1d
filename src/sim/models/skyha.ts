/**
 * The real decision core (src/logic/member.ts) as a simulated member: the
 * same machine the agent drives, with the simulator's clock, network, disk
 * and keeper as its effects. One mirror module, `db`, on every node. A
 * client on the primary writes numbered records and waits on a barrier for
 * each; the checkers then verify the guarantees of DESIGN.md.
 *
 * Broken variants (each must be caught; a checker that cannot fail proves
 * nothing):
 * - `no-drift-margin`: the timings carry no drift margin, so a voter grants a
 *   new lease the instant the old one ends on its clock and the holder keeps
 *   its application to the very end of its own: drifting clocks overlap them;
 * - `promote-out-of-sync`: an operator forces every failover, so a secondary
 *   that is not in sync is promoted: acknowledged writes get lost;
 * - `keep-serving`: the application keeps running after the lease is lost
 *   (no keeper, stop requests ignored): two primaries.
 */
import { PROFILES } from '../../config/profiles.js';
import { initMember, stepMember, type MemberAction, type MemberConfig, type MemberDisk, type MemberInput, type MemberMessage, type MemberState } from '../../logic/member.js';
import type { LeaseRecord } from '../../logic/lease/messages.js';
import type { BootInfo, ClusterInfo, DiskValue, Fuse, MemberInfo, ProcessContext, SimModel, SimProcess } from '../process.js';

export const SKYHA_VARIANTS = ['correct', 'no-drift-margin', 'promote-out-of-sync', 'keep-serving'] as const;
export type SkyhaVariant = (typeof SKYHA_VARIANTS)[number];

const MODULE = 'db';
const FUSE = `app:${MODULE}`;
/** The client on the primary writes this often. */
const WRITE_INTERVAL = 37;

type Ctx = ProcessContext<MemberMessage>;

export function skyhaModel(variant: SkyhaVariant = 'correct'): SimModel<MemberMessage> {
  const base = PROFILES.test;
  const timings = variant === 'no-drift-margin' ? { ...base, driftMargin: 0 } : base;
  return {
    name: variant === 'correct' ? 'skyha' : `skyha:${variant}`,
    modules: [MODULE],
    lease: timings.lease,
    // From healing to a primary, at worst: failure detection, an old lease running out (lease + margin), a
    // rebooted voter's quarantine (lease + margin), a not-in-sync node's back-off (a lease), a duel or two.
    livenessBudget: 5 * (timings.lease + timings.driftMargin) + timings.deadAfter,
    // Failback in the quiet period: stop, final barrier, transfer, hand-over, commit — a few link round trips.
    plannedGap: 10 * timings.heartbeatInterval,
    // Clock rates may differ by up to half of what the margin covers over a lease.
    maxDrift: base.driftMargin / base.lease / 2,
    create: (member: MemberInfo, cluster: ClusterInfo) =>
      new SkyhaProcess(member, {
        self: member.name,
        nodes: cluster.nodes,
        witnesses: cluster.witnesses,
        timings,
        replication: { lagTimeout: timings.lease / 2, retransmitInterval: timings.heartbeatInterval, maxLog: 10_000 },
        modules: [{ name: MODULE, nodes: cluster.nodes, ...(cluster.nodes[0] ? { preferredNode: cluster.nodes[0] } : {}), failback: 'automatic' }],
      }, variant),
    describe: (m: MemberMessage) => describeMessage(m),
  };
}

function describeMessage(m: MemberMessage): string {
  switch (m.type) {
    case 'heartbeat':
      return `heartbeat inc=${m.heartbeat.incarnation}`;
    case 'lease-reply':
      return `lease-reply #${m.requestId} ${m.granted ? 'granted' : `refused ${m.refusal}`} maxEpoch=${m.maxEpoch}${m.amnesiac ? ' amnesiac' : ''}${m.record ? ` record=${describeRecord(m.record)}` : ''}`;
    case 'lease-acquire':
      return `lease-acquire #${m.requestId} epoch=${m.epoch}`;
    case 'lease-renew':
      return `lease-renew #${m.requestId} epoch=${m.epoch} inSync=[${m.record?.inSync.join(',') ?? ''}] v${m.record?.version ?? ''}`;
    case 'repl-change':
      return `repl-change epoch=${m.epoch} seq=${m.seq} ${m.data}`;
    case 'repl-snapshot':
      return `repl-snapshot epoch=${m.epoch} seq=${m.seq}`;
    default:
      return JSON.stringify(m);
  }
}

function describeRecord(r: LeaseRecord): string {
  const extra = `${r.baseEpoch !== undefined ? ` base=${r.baseEpoch}` : ''}${r.lastInSync ? ` last=[${r.lastInSync.join(',')}]` : ''}${r.previous ? ` prev=${describeRecord(r.previous)}` : ''}`;
  return `{${r.holder}@${r.epoch}v${r.version} inSync=[${r.inSync.join(',')}]${extra}}`;
}

class SkyhaProcess implements SimProcess<MemberMessage> {
  private state!: MemberState;
  private running = false;
  private writes: string[] = [];
  private written = 0;
  private pending = new Set<string>();
  private announcedInSync = false;
  private knows: boolean | undefined;

  constructor(
    private readonly member: MemberInfo,
    private readonly config: MemberConfig,
    private readonly variant: SkyhaVariant,
  ) {}

  start(ctx: Ctx, boot: BootInfo): void {
    this.writes = this.loadData(ctx);
    this.state = initMember(this.config, boot.disk === 'kept' ? this.loadMember(ctx) : undefined, ctx.now());
    // An application still running from before the agent restarted has no lease behind it now: stop it.
    if (ctx.keeper.armed().some((f) => f.tag === FUSE)) {
      ctx.keeper.disarm(FUSE);
      ctx.observe({ type: 'app-stop', module: MODULE, reason: 'agent restarted without a lease' });
    }
    this.feed(ctx, { type: 'tick' });
    if (this.config.nodes.includes(this.member.name)) ctx.setTimer('client', ctx.now() + WRITE_INTERVAL);
    this.reportKnowledge(ctx);
  }

  /** Tells the checkers whether this voter knows the module's record (they scope liveness by it after lost disks). */
  private reportKnowledge(ctx: Ctx): void {
    const v = this.state.voter;
    const m = v.modules[MODULE];
    const knows = m ? !m.amnesiac : !v.amnesiac;
    if (knows !== this.knows) {
      this.knows = knows;
      ctx.observe({ type: 'voter-knows', module: MODULE, knows });
    }
  }

  onMessage(ctx: Ctx, from: string, msg: MemberMessage): void {
    // The primary's word that this node is in the committed in-sync set (the checkers scope data loss by it).
    if (msg.type === 'announce' && msg.inSync.includes(this.member.name) && !this.announcedInSync) {
      this.announcedInSync = true;
      ctx.observe({ type: 'in-sync', module: msg.module });
    }
    this.feed(ctx, { type: 'receive', from, message: msg });
  }

  onTimer(ctx: Ctx, tag: string): void {
    if (tag === 'wake') this.feed(ctx, { type: 'tick' });
    else if (tag === 'client') {
      ctx.setTimer('client', ctx.now() + WRITE_INTERVAL);
      this.clientWrite(ctx);
    }
  }

  onKeeper(ctx: Ctx, fuse: Fuse): void {
    if (fuse.tag !== FUSE) return;
    this.running = false;
    this.feed(ctx, { type: 'app-stopped', module: MODULE });
  }

  onEnd(ctx: Ctx): void {
    if (this.config.nodes.includes(this.member.name)) ctx.observe({ type: 'final-data', module: MODULE, writes: [...this.writes] });
  }

  /** The application on the primary writes a record, then waits on a barrier for it. */
  private clientWrite(ctx: Ctx): void {
    const slot = this.state.modules[MODULE];
    if (!this.running || slot?.mirror.role !== 'primary') return;
    const id = `${this.member.name}.${ctx.incarnation}.${++this.written}`;
    this.appendData(ctx, id);
    this.feed(ctx, { type: 'change', module: MODULE, data: id });
    this.pending.add(id);
    this.feed(ctx, { type: 'barrier', module: MODULE, id, deadline: ctx.now() + this.config.timings.lease });
  }

  /** The module's data: one key per record and a count, so that a write costs one record, not the whole list. */
  private loadData(ctx: Ctx): string[] {
    const n = (ctx.disk.get('data:n') as number | undefined) ?? 0;
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(ctx.disk.get(`data:${i}`) as string);
    return out;
  }

  private appendData(ctx: Ctx, id: string): void {
    this.writes.push(id);
    ctx.disk.set(`data:${this.writes.length - 1}`, id);
    ctx.disk.set('data:n', this.writes.length);
  }

  private replaceData(ctx: Ctx, writes: string[]): void {
    const old = this.writes.length;
    this.writes = writes;
    writes.forEach((w, i) => ctx.disk.set(`data:${i}`, w));
    for (let i = writes.length; i < old; i++) ctx.disk.delete(`data:${i}`);
    ctx.disk.set('data:n', writes.length);
  }

  private loadMember(ctx: Ctx): MemberDisk | undefined {
    const voter = ctx.disk.get('voter') as unknown as MemberDisk['voter'];
    const modules: MemberDisk['modules'] = {};
    for (const key of ctx.disk.keys()) if (key.startsWith('module:')) modules[key.slice(7)] = ctx.disk.get(key) as unknown as MemberDisk['modules'][string];
    return voter === undefined && Object.keys(modules).length === 0 ? undefined : { ...(voter ? { voter } : {}), modules };
  }

  private feed(ctx: Ctx, first: MemberInput): void {
    const inputs: MemberInput[] = [first];
    // The keeper may have stopped the application while this agent was frozen (onKeeper is not called then).
    if (this.running && this.variant !== 'keep-serving' && !ctx.keeper.armed().some((f) => f.tag === FUSE)) {
      this.running = false;
      inputs.unshift({ type: 'app-stopped', module: MODULE });
    }
    while (inputs.length) {
      const step = stepMember(this.state, inputs.shift()!, ctx.now());
      this.state = step.state;
      for (const a of step.actions) this.carryOut(ctx, a, inputs);
    }
    this.reportKnowledge(ctx);
    if (this.variant === 'promote-out-of-sync') {
      const slot = this.state.modules[MODULE];
      if (slot && slot.mirror.role === 'secondary' && !slot.mirror.forceNext) {
        const step = stepMember(this.state, { type: 'operator', module: MODULE, command: 'force-failover' }, ctx.now());
        this.state = step.state;
        for (const a of step.actions) this.carryOut(ctx, a, inputs);
      }
    }
  }

  private carryOut(ctx: Ctx, a: MemberAction, inputs: MemberInput[]): void {
    switch (a.type) {
      case 'send':
        ctx.send(a.to, a.message);
        return;
      case 'wake':
        ctx.setTimer('wake', a.at);
        return;
      case 'persist-voter':
        ctx.disk.set('voter', a.disk as unknown as DiskValue);
        return;
      case 'persist-module':
        ctx.disk.set(`module:${a.module}`, { epoch: a.epoch, dataEpoch: a.dataEpoch, applied: a.applied, fencing: a.fencing });
        return;
      case 'start-app':
        ctx.observe({ type: 'app-start', module: a.module, role: 'primary', epoch: a.epoch });
        ctx.observe({ type: 'lease-held', module: a.module, until: a.validUntil });
        if (this.variant !== 'keep-serving') ctx.keeper.arm(FUSE, a.validUntil, { type: 'app-stop', module: a.module, reason: 'keeper: lease deadline passed' });
        this.running = true;
        inputs.push({ type: 'app-started', module: a.module });
        return;
      case 'extend-app':
        ctx.observe({ type: 'lease-held', module: a.module, until: a.validUntil });
        if (this.variant !== 'keep-serving' && this.running) ctx.keeper.arm(FUSE, a.validUntil, { type: 'app-stop', module: a.module, reason: 'keeper: lease deadline passed' });
        return;
      case 'stop-app':
        if (this.variant === 'keep-serving' && a.reason.code === 'DEMOTED_LEASE_LOST') return;
        if (this.running) {
          ctx.keeper.disarm(FUSE);
          ctx.observe({ type: 'app-stop', module: a.module, reason: a.reason.code });
          this.running = false;
        }
        inputs.push({ type: 'app-stopped', module: a.module });
        return;
      // The simulator's changes are labels (strings): the write log the checkers compare.
      case 'apply':
        this.appendData(ctx, String(a.data));
        return;
      case 'apply-snapshot':
        this.replaceData(ctx, JSON.parse(String(a.data)) as string[]);
        return;
      case 'send-snapshot':
        ctx.send(a.to, { type: 'repl-snapshot', module: a.module, epoch: a.epoch, seq: a.seq, data: JSON.stringify(this.writes) });
        // As the agent does once the resync is on the link (the simulated network may still lose it).
        inputs.push({ type: 'snapshot-sent', module: a.module, to: a.to });
        return;
      case 'barrier-done':
        if (this.pending.delete(a.id) && a.ok) ctx.observe({ type: 'write-acked', module: a.module, writeId: a.id });
        return;
      case 'quorum':
        ctx.observe({ type: 'quorum', module: a.module, granted: a.grantedBy });
        return;
      case 'lease-ended':
        ctx.observe({ type: 'lease-released', module: a.module });
        return;
      case 'event':
        if (a.data?.to !== undefined && a.module) ctx.observe({ type: 'role', module: a.module, role: String(a.data.to), reason: a.reason.code });
        return;
      case 'change-refused':
        return;
    }
  }
}
