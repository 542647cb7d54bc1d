/**
 * The real decision core (src/logic/member.ts) as a simulated member: the
 * same machine the agent drives, with the simulator's clock, network, disk
 * and keeper as its effects. One mirror module, `db`, on every node. A
 * client (the application) writes numbered records and waits on a barrier
 * for each; the checkers then verify the guarantees of DESIGN.md.
 *
 * The application takes time to start and to stop, as a real one does (a
 * random delay for each), and writes whenever its process runs: while it
 * starts (the role is still `promoting`), while it runs, and while its stop
 * script runs (a restart, a give-up, a switchover's `handing-over`). A start
 * asked for while the previous run is still stopping waits for it, as the
 * agent's MirrorModule does; when the lease ends, the agent kills what still
 * runs, and the keeper does at the lease's deadline if the agent cannot.
 * An application failure (`app-fail`) gives the module up on that node: a
 * run stops the normal way (writing while it stops), later starts fail until
 * an operator repairs it (`app-repair`, and at the heal). The agent keeps the
 * failure in memory only: a restarted agent has forgotten it.
 *
 * Broken variants (each must be caught; a checker that cannot fail proves
 * nothing):
 * - `no-drift-margin`: the timings carry no drift margin, so a voter grants a
 *   new lease the instant the old one ends on its clock and the holder keeps
 *   its application to the very end of its own: drifting clocks overlap them;
 * - `promote-out-of-sync`: an operator forces every failover, so a secondary
 *   that is not in sync is promoted: acknowledged writes get lost;
 * - `keep-serving`: the application keeps running after the lease is lost
 *   (no keeper, stop requests ignored): two primaries;
 * - `stop-early`: the supervisor takes the application for stopped when it
 *   asks for the stop, not when the process is gone (one that trusts its stop
 *   script's exit): it disarms the keeper, tells the machine, and has nothing
 *   to kill when the lease ends, so a switchover moves the lease while the old
 *   run still writes: two primaries.
 */
import { PROFILES } from '../../config/profiles.js';
import { initMember, stepMember, type MemberAction, type MemberConfig, type MemberDisk, type MemberInput, type MemberMessage, type MemberState } from '../../logic/member.js';
import type { LeaseRecord } from '../../logic/lease/messages.js';
import type { BootInfo, ClusterInfo, DiskValue, Fuse, MemberInfo, ProcessContext, SimModel, SimProcess } from '../process.js';

export const SKYHA_VARIANTS = ['correct', 'no-drift-margin', 'promote-out-of-sync', 'keep-serving', 'stop-early'] as const;
export type SkyhaVariant = (typeof SKYHA_VARIANTS)[number];

const MODULE = 'db';
const FUSE = `app:${MODULE}`;
/** The client on the primary writes this often. */
const WRITE_INTERVAL = 37;
/** The application's start (until it reports started) and its stop script each take up to this, ms. */
const APP_DELAY_MAX = 100;
/** An application that failed for good may take much longer to stop (well past a lease: the renewals go on); its repair (at the heal too) ends that stop. */
const GIVEN_UP_STOP_MAX = 1500;

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
    // And the application's start, twice (a promotion may be retried), and a stop before it.
    livenessBudget: 5 * (timings.lease + timings.driftMargin) + timings.deadAfter + 3 * APP_DELAY_MAX,
    // Failback in the quiet period: stop, final barrier, transfer, hand-over, commit — a few link round trips —
    // plus the old run's stop and the new run's start.
    plannedGap: 10 * timings.heartbeatInterval + 2 * APP_DELAY_MAX,
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
      return `lease-acquire #${m.requestId} epoch=${m.epoch} dataEpoch=${m.dataEpoch}${m.force ? " force" : ""}`;
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
  /** The application's process on this node, as its supervisor sees it. */
  private app: 'stopped' | 'starting' | 'running' | 'stopping' = 'stopped';
  /** A start the machine asked for while the previous run was still stopping. */
  private pendingStart: { epoch: number; validUntil: number } | undefined;
  /** `stop-early`: the machine was already told that the stopping run stopped. */
  private stopReported = false;
  /** Why the stopping run is being stopped (for its `app-stop` observation). */
  private stopReason = '';
  /** The application fails here until it is repaired: every start fails and gives the module up. */
  private broken = false;
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
    this.feed(ctx, { type: 'receive', from, message: msg });
    // The primary's word that this node is in the committed in-sync set (the checkers scope data loss by it), once
    // its data is at that epoch: an announcement sent before the primary noticed this node lost its disk still
    // lists it, and the checkers would take a node that holds nothing for one that holds everything.
    if (msg.type === 'announce' && msg.inSync.includes(this.member.name) && !this.announcedInSync && this.state.modules[MODULE]?.secondary.dataEpoch === msg.epoch) {
      this.announcedInSync = true;
      ctx.observe({ type: 'in-sync', module: msg.module });
    }
  }

  onTimer(ctx: Ctx, tag: string): void {
    if (tag === 'wake') this.feed(ctx, { type: 'tick' });
    else if (tag === 'client') {
      ctx.setTimer('client', ctx.now() + WRITE_INTERVAL);
      this.clientWrite(ctx);
    } else if (tag === 'app-up' && this.app === 'starting') {
      if (this.broken) {
        // It dies as it starts, again and again: the restart policy gives it up.
        ctx.keeper.disarm(FUSE);
        ctx.observe({ type: 'app-stop', module: MODULE, reason: 'the application failed to start' });
        this.app = 'stopped';
        this.pendingStart = undefined;
        this.feed(ctx, this.givenUp());
        return;
      }
      this.app = 'running';
      this.feed(ctx, { type: 'app-started', module: MODULE });
    } else if (tag === 'app-down' && this.app === 'stopping') {
      ctx.keeper.disarm(FUSE);
      ctx.observe({ type: 'app-stop', module: MODULE, reason: this.stopReason });
      this.feedAll(ctx, this.gone(ctx));
    }
  }

  onAppFault(ctx: Ctx, fault: 'fail' | 'repair'): void {
    if (fault === 'fail') {
      this.broken = true;
      // A running application that fails for good is given up: it is stopped (and may write while it stops).
      if (this.app === 'starting' || this.app === 'running') this.feed(ctx, this.givenUp());
      return;
    }
    this.broken = false;
    // Repaired while its slow stop still runs: that stop ends now.
    if (this.app === 'stopping' && this.stopReason === 'RESTART_GIVE_UP') ctx.setTimer('app-down', ctx.now());
    if (this.state.modules[MODULE]?.mirror.role === 'out-of-service') this.feed(ctx, { type: 'operator', module: MODULE, command: 'reset' });
  }

  private givenUp(): MemberInput {
    return { type: 'given-up', module: MODULE, reason: { code: 'RESTART_GIVE_UP', text: `the application of ${MODULE} failed for good on ${this.member.name}` } };
  }

  onKeeper(ctx: Ctx, fuse: Fuse): void {
    if (fuse.tag !== FUSE) return;
    this.feedAll(ctx, this.gone(ctx));
  }

  onEnd(ctx: Ctx): void {
    if (this.config.nodes.includes(this.member.name)) ctx.observe({ type: 'final-data', module: MODULE, writes: [...this.writes] });
  }

  /**
   * The application writes a record, then waits on a barrier for it: whenever its process runs, whatever the
   * role says. A write the machine refuses is this node's own (the agent keeps it as a suspect for the next
   * resync); it is never acknowledged.
   */
  private clientWrite(ctx: Ctx): void {
    if (this.app === 'stopped') return;
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

  /** Starts a run of the application under the lease: its process exists from now, it reports started later. */
  private launch(ctx: Ctx, epoch: number, validUntil: number): void {
    ctx.observe({ type: 'app-start', module: MODULE, role: 'primary', epoch });
    ctx.observe({ type: 'lease-held', module: MODULE, until: validUntil });
    if (this.variant !== 'keep-serving') ctx.keeper.arm(FUSE, validUntil, { type: 'app-stop', module: MODULE, reason: 'keeper: lease deadline passed' });
    this.app = 'starting';
    this.stopReported = false;
    ctx.setTimer('app-up', ctx.now() + ctx.random() * APP_DELAY_MAX);
  }

  /**
   * The run's process is gone (its `app-stop` is observed): a start asked for meanwhile goes ahead, else the
   * machine is told (unless `stop-early` told it already). Returns the inputs for the machine.
   */
  private gone(ctx: Ctx): MemberInput[] {
    this.app = 'stopped';
    ctx.cancelTimer('app-up');
    ctx.cancelTimer('app-down');
    const pending = this.pendingStart;
    this.pendingStart = undefined;
    if (pending) {
      this.launch(ctx, pending.epoch, pending.validUntil);
      return [];
    }
    return this.stopReported ? [] : [{ type: 'app-stopped', module: MODULE }];
  }

  private feed(ctx: Ctx, first: MemberInput): void {
    this.feedAll(ctx, [first]);
  }

  private feedAll(ctx: Ctx, inputs: MemberInput[]): void {
    // The keeper may have stopped the application while this agent was frozen (onKeeper is not called then).
    if (this.app !== 'stopped' && !this.stopReported && this.variant !== 'keep-serving' && !ctx.keeper.armed().some((f) => f.tag === FUSE)) {
      inputs.unshift(...this.gone(ctx));
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
        if (this.app === 'stopped') this.launch(ctx, a.epoch, a.validUntil);
        else this.pendingStart = { epoch: a.epoch, validUntil: a.validUntil };
        return;
      case 'extend-app':
        if (this.pendingStart) this.pendingStart.validUntil = Math.max(this.pendingStart.validUntil, a.validUntil);
        if (this.app === 'stopped') return;
        ctx.observe({ type: 'lease-held', module: a.module, until: a.validUntil });
        if (this.variant !== 'keep-serving') ctx.keeper.arm(FUSE, a.validUntil, { type: 'app-stop', module: a.module, reason: 'keeper: lease deadline passed' });
        return;
      case 'stop-app':
        this.pendingStart = undefined;
        if (this.variant === 'keep-serving' && a.reason.code === 'DEMOTED_LEASE_LOST') return;
        if (this.app === 'stopped') inputs.push({ type: 'app-stopped', module: a.module });
        else if (this.app !== 'stopping') {
          // The stop script runs; the application may still write until it ends.
          ctx.cancelTimer('app-up');
          this.app = 'stopping';
          this.stopReason = a.reason.code;
          ctx.setTimer('app-down', ctx.now() + ctx.random() * (a.reason.code === 'RESTART_GIVE_UP' ? GIVEN_UP_STOP_MAX : APP_DELAY_MAX));
          if (this.variant === 'stop-early') {
            this.stopReported = true;
            ctx.keeper.disarm(FUSE);
            inputs.push({ type: 'app-stopped', module: a.module });
          }
        }
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
        // Nothing may run under a lease that ended, not even the rest of a stop script: the agent kills it.
        this.pendingStart = undefined;
        if (this.app !== 'stopped' && !this.stopReported && this.variant !== 'keep-serving') {
          ctx.keeper.disarm(FUSE);
          ctx.observe({ type: 'app-stop', module: a.module, reason: 'fenced: the lease ended' });
          inputs.push(...this.gone(ctx));
        }
        return;
      case 'event':
        if (a.data?.to !== undefined && a.module) ctx.observe({ type: 'role', module: a.module, role: String(a.data.to), reason: a.reason.code });
        return;
      case 'change-refused':
        return;
    }
  }
}
