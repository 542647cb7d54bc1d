/**
 * A deliberately small "primary by majority lease" protocol, to test the
 * simulator and its checkers before the real member logic exists. One module
 * (`db`), mirrored on every node; witnesses only vote.
 *
 * Lease (every member is a voter):
 * - A node that is not primary asks every voter for the lease (`req`), noting
 *   its local send time s. A voter grants if it has promised no one else, or
 *   its promise has run out on its own clock, and promises the asker
 *   exclusivity for `lease + driftMargin` local ms from when it grants. A
 *   voter that (re)boots grants nothing for `lease + driftMargin` (it may have
 *   forgotten a promise).
 * - With grants for one request from a majority, the asker holds the lease
 *   until s + lease on its own clock: every grant was given after s, and the
 *   margin covers the clocks' disagreement. It starts its application, arms
 *   its keeper to stop the application at that deadline, and renews every
 *   `renewInterval`. If the deadline passes without a renewal, it stops the
 *   application (and the keeper would have anyway).
 * - An ask that gets no majority in `attemptTimeout` is abandoned (with every
 *   older one) and its grants released, unless the keeper still guards an
 *   application an earlier incarnation left running; then it is retried after
 *   a random backoff.
 *
 * Data: the primary makes a write every `writeInterval` ms, stores it and
 * sends it to every other node; a write is acknowledged once every node has
 * stored it ("sync to all"). Nodes refuse writes from an older epoch. A node
 * restarted on a wiped disk is `stale`: it never asks for the lease until a
 * primary has sent it a full copy.
 *
 * Variants, each one bug that a schedule should catch:
 * - `correct`;
 * - `no-margin`: voters promise only `lease` (no drift margin): caught when
 *   clocks drift;
 * - `keeps-running`: a primary whose lease ran out keeps its application
 *   running (and no keeper): caught by partitions;
 * - `no-keeper`: the agent stops its application itself but arms no keeper:
 *   caught when the agent crashes or freezes while the application runs;
 * - `forgetful-voter`: a rebooted voter grants at once: caught when a voter
 *   restarts quickly during a primary's lease;
 * - `early-ack`: a write is acknowledged once stored on the primary only:
 *   caught when the primary is lost before replicating;
 * - `minority`: counts ⌊voters/2⌋ grants as a majority (one short): caught
 *   by quorumBeforePrimary at once, and by partitions.
 */
import type { BootInfo, ClusterInfo, Fuse, MemberInfo, ProcessContext, SimModel, SimProcess } from '../process.js';

export const TOY_VARIANTS = ['correct', 'no-margin', 'keeps-running', 'no-keeper', 'forgetful-voter', 'early-ack', 'minority'] as const;
export type ToyVariant = (typeof TOY_VARIANTS)[number];

export interface ToyTimings {
  lease: number;
  driftMargin: number;
  renewInterval: number;
  attemptTimeout: number;
  retryMin: number;
  retryMax: number;
  writeInterval: number;
}

/** The `test` timing profile's lease numbers (src/config/profiles.ts). */
export const TOY_TIMINGS: Readonly<ToyTimings> = {
  lease: 400,
  driftMargin: 50,
  renewInterval: 100,
  attemptTimeout: 50,
  retryMin: 50,
  retryMax: 250,
  writeInterval: 50,
};

export type ToyMsg =
  | { t: 'req'; id: number; epoch: number }
  | { t: 'grant'; id: number; ok: boolean; epoch: number }
  | { t: 'release'; id: number }
  | { t: 'write'; epoch: number; id: string }
  | { t: 'wack'; id: string; stale: boolean }
  | { t: 'snapshot'; epoch: number; writes: readonly string[] };

const MODULE = 'db';
const LEASE_FUSE = 'lease';

interface Request {
  sentAt: number;
  granted: string[];
  epochMax: number;
  reached: boolean;
  abandoned: boolean;
}

class ToyMember implements SimProcess<ToyMsg> {
  private readonly me: string;
  private readonly isNode: boolean;
  private readonly peers: readonly string[];
  private readonly otherNodes: readonly string[];
  private readonly nodeCount: number;
  private readonly majority: number;

  // voter
  private promise: { holder: string; id: number; until: number } | null = null;
  private bootUntil = 0;
  private maxEpoch = 0;

  // candidate / primary
  private incarnation = 0;
  private nextId = 0;
  private readonly requests = new Map<number, Request>();
  private attemptId = -1;
  private leaseUntil = -Infinity;
  private primary = false;
  private appStartedAt = -Infinity;
  private epoch = 0;
  private writeSeq = 0;
  private readonly pending = new Map<string, Set<string>>();
  private readonly snapshotSentAt = new Map<string, number>();
  private stale = false;

  constructor(
    member: MemberInfo,
    cluster: ClusterInfo,
    private readonly variant: ToyVariant,
    private readonly timings: ToyTimings,
  ) {
    this.me = member.name;
    this.isNode = member.kind === 'node';
    this.peers = cluster.voters.filter((v) => v !== member.name);
    this.otherNodes = cluster.nodes.filter((n) => n !== member.name);
    this.nodeCount = cluster.nodes.length;
    this.majority = variant === 'minority' ? Math.max(1, Math.floor(cluster.voters.length / 2)) : Math.floor(cluster.voters.length / 2) + 1;
  }

  start(ctx: ProcessContext<ToyMsg>, boot: BootInfo): void {
    const now = ctx.now();
    this.incarnation = boot.incarnation;
    this.maxEpoch = numberOr(ctx.disk.get('epoch'), 0);
    this.bootUntil = this.variant === 'forgetful-voter' ? now : now + this.timings.lease + this.timings.driftMargin;
    if (!this.isNode) return;
    if (boot.disk === 'wiped') ctx.disk.set('stale', true);
    this.stale = ctx.disk.get('stale') === true;
    this.scheduleAttempt(ctx);
  }

  onMessage(ctx: ProcessContext<ToyMsg>, from: string, msg: ToyMsg): void {
    switch (msg.t) {
      case 'req':
        return ctx.send(from, this.vote(ctx, from, msg.id, msg.epoch));
      case 'grant':
        return this.onGrant(ctx, from, msg.id, msg.ok, msg.epoch);
      case 'release':
        return this.release(from, msg.id);
      case 'write':
        return this.onWrite(ctx, from, msg.epoch, msg.id);
      case 'wack':
        return this.onWriteAck(ctx, from, msg.id, msg.stale);
      case 'snapshot':
        return this.onSnapshot(ctx, msg.epoch, msg.writes);
    }
  }

  onTimer(ctx: ProcessContext<ToyMsg>, tag: string): void {
    switch (tag) {
      case 'attempt':
        return this.attempt(ctx);
      case 'attempt-timeout':
        return this.attemptTimedOut(ctx);
      case 'renew':
        return this.renew(ctx);
      case 'lease-end':
        return this.leaseEnded(ctx);
      case 'write':
        return this.write(ctx);
    }
  }

  onKeeper(ctx: ProcessContext<ToyMsg>, fuse: Fuse): void {
    if (fuse.tag !== LEASE_FUSE || !this.primary) return;
    // News of the keeper can come late (this agent was paused): if the application was started
    // again after the keeper stopped it, that start stands.
    if (this.appStartedAt >= fuse.atLocal) return;
    // The keeper stopped the application (its app-stop is recorded): step down.
    this.stepDown(ctx, 'the keeper stopped the application at the lease deadline', false);
  }

  onEnd(ctx: ProcessContext<ToyMsg>): void {
    if (!this.isNode) return;
    ctx.observe({ type: 'final-data', module: MODULE, writes: this.allWrites(ctx) });
  }

  // ---- voter ------------------------------------------------------------

  private vote(ctx: ProcessContext<ToyMsg>, from: string, id: number, epoch: number): ToyMsg & { t: 'grant' } {
    const now = ctx.now();
    this.learnEpoch(ctx, epoch);
    const p = this.promise;
    const ok = now >= this.bootUntil && (p === null || p.holder === from || p.until <= now);
    if (ok) {
      const margin = this.variant === 'no-margin' ? 0 : this.timings.driftMargin;
      const until = now + this.timings.lease + margin;
      // A late copy of an older request from the same holder must not replace the promise's id:
      // a release of that older request would then cancel the promise that covers a newer lease.
      this.promise = p !== null && p.holder === from && p.until > now ? { holder: from, id: Math.max(p.id, id), until: Math.max(p.until, until) } : { holder: from, id, until };
    }
    return { t: 'grant', id, ok, epoch: this.maxEpoch };
  }

  private release(from: string, id: number): void {
    if (this.promise !== null && this.promise.holder === from && this.promise.id === id) this.promise = null;
  }

  private learnEpoch(ctx: ProcessContext<ToyMsg>, epoch: number): void {
    if (epoch > this.maxEpoch) {
      this.maxEpoch = epoch;
      ctx.disk.set('epoch', epoch);
    }
  }

  // ---- candidate and primary ----------------------------------------------

  private scheduleAttempt(ctx: ProcessContext<ToyMsg>): void {
    const { retryMin, retryMax } = this.timings;
    ctx.setTimer('attempt', ctx.now() + retryMin + ctx.random() * (retryMax - retryMin));
  }

  private ask(ctx: ProcessContext<ToyMsg>): number {
    const id = this.incarnation * 1_000_000 + ++this.nextId;
    const req: Request = { sentAt: ctx.now(), granted: [], epochMax: this.maxEpoch, reached: false, abandoned: false };
    this.requests.set(id, req);
    for (const [k, r] of this.requests) if (r.sentAt < req.sentAt - 2 * this.timings.lease) this.requests.delete(k);
    for (const v of this.peers) ctx.send(v, { t: 'req', id, epoch: this.maxEpoch });
    const own = this.vote(ctx, this.me, id, this.maxEpoch);
    this.onGrant(ctx, this.me, id, own.ok, own.epoch);
    return id;
  }

  private attempt(ctx: ProcessContext<ToyMsg>): void {
    if (this.primary || this.stale) return;
    this.attemptId = this.ask(ctx);
    if (!this.primary) ctx.setTimer('attempt-timeout', ctx.now() + this.timings.attemptTimeout);
  }

  private attemptTimedOut(ctx: ProcessContext<ToyMsg>): void {
    if (this.primary) return;
    const req = this.requests.get(this.attemptId);
    if (req !== undefined && !req.reached) {
      // A release cancels a voter's whole promise to this member (its id is the newest it granted),
      // so no older request may be counted either once this one is released.
      for (const [id, r] of this.requests) if (id <= this.attemptId) r.abandoned = true;
      if (this.mayRelease(ctx)) for (const v of req.granted) {
        if (v === this.me) this.release(this.me, this.attemptId);
        else ctx.send(v, { t: 'release', id: this.attemptId });
      }
    }
    this.scheduleAttempt(ctx);
  }

  /**
   * While the keeper still guards an application started by an earlier
   * incarnation of this agent, a voter's promise to this member may be what
   * covers it: releasing would let another member start too. Let promises
   * run out instead.
   */
  private mayRelease(ctx: ProcessContext<ToyMsg>): boolean {
    return ctx.keeper.armed().length === 0;
  }

  private onGrant(ctx: ProcessContext<ToyMsg>, from: string, id: number, ok: boolean, epoch: number): void {
    this.learnEpoch(ctx, epoch);
    const req = this.requests.get(id);
    if (req === undefined || !ok) return;
    if (req.abandoned) {
      if (from !== this.me && this.mayRelease(ctx)) ctx.send(from, { t: 'release', id });
      return;
    }
    if (req.granted.includes(from)) return;
    req.granted.push(from);
    req.epochMax = Math.max(req.epochMax, epoch);
    if (req.reached || req.granted.length < this.majority) return;
    req.reached = true;
    const now = ctx.now();
    const until = req.sentAt + this.timings.lease;
    if (until <= now) return; // too late to be of use
    ctx.observe({ type: 'quorum', module: MODULE, granted: [...req.granted] });
    this.leaseUntil = Math.max(this.leaseUntil, until);
    ctx.observe({ type: 'lease-held', module: MODULE, until: this.leaseUntil });
    if (!this.primary) this.becomePrimary(ctx, req);
    this.guardLease(ctx);
  }

  private becomePrimary(ctx: ProcessContext<ToyMsg>, req: Request): void {
    this.primary = true;
    this.epoch = Math.max(req.epochMax, this.maxEpoch) + 1;
    this.learnEpoch(ctx, this.epoch);
    ctx.cancelTimer('attempt');
    ctx.cancelTimer('attempt-timeout');
    ctx.observe({ type: 'role', module: MODULE, role: 'primary', reason: `lease granted by ${req.granted.join(', ')}` });
    ctx.observe({ type: 'app-start', module: MODULE, role: 'primary', epoch: this.epoch });
    this.appStartedAt = ctx.now();
    ctx.setTimer('renew', ctx.now() + this.timings.renewInterval);
    ctx.setTimer('write', ctx.now() + this.timings.writeInterval);
  }

  /** Stop the application at the lease deadline: the agent's own timer, and the keeper in case the agent cannot. */
  private guardLease(ctx: ProcessContext<ToyMsg>): void {
    ctx.setTimer('lease-end', this.leaseUntil);
    if (this.variant === 'keeps-running' || this.variant === 'no-keeper') return;
    ctx.keeper.arm(LEASE_FUSE, this.leaseUntil, { type: 'app-stop', module: MODULE, reason: 'keeper: lease deadline passed' });
  }

  private renew(ctx: ProcessContext<ToyMsg>): void {
    if (!this.primary) return;
    this.ask(ctx);
    // Resend the oldest unacknowledged writes (a bounded batch per renewal).
    let budget = 16;
    for (const [id, acked] of this.pending) {
      if (budget-- === 0) break;
      for (const n of this.otherNodes) if (!acked.has(n)) ctx.send(n, { t: 'write', epoch: this.epoch, id });
    }
    ctx.setTimer('renew', ctx.now() + this.timings.renewInterval);
  }

  private leaseEnded(ctx: ProcessContext<ToyMsg>): void {
    if (!this.primary || ctx.now() < this.leaseUntil) return;
    if (this.variant === 'keeps-running') return; // the bug: the application keeps running on an expired lease
    this.stepDown(ctx, 'lease expired', true);
  }

  private stepDown(ctx: ProcessContext<ToyMsg>, reason: string, stopApp: boolean): void {
    this.primary = false;
    this.pending.clear();
    ctx.cancelTimer('renew');
    ctx.cancelTimer('write');
    ctx.cancelTimer('lease-end');
    ctx.keeper.disarm(LEASE_FUSE);
    if (stopApp) ctx.observe({ type: 'app-stop', module: MODULE, reason });
    ctx.observe({ type: 'role', module: MODULE, role: 'secondary', reason });
    this.scheduleAttempt(ctx);
  }

  // ---- data ---------------------------------------------------------------

  private write(ctx: ProcessContext<ToyMsg>): void {
    if (!this.primary) return;
    const id = `${this.me}.${this.incarnation}.${++this.writeSeq}`;
    ctx.disk.set(`w:${id}`, true);
    const acked = new Set([this.me]);
    if (this.variant === 'early-ack') ctx.observe({ type: 'write-acked', module: MODULE, writeId: id });
    if (acked.size >= this.nodeCount) this.acknowledge(ctx, id);
    else {
      this.pending.set(id, acked);
      for (const n of this.otherNodes) ctx.send(n, { t: 'write', epoch: this.epoch, id });
    }
    ctx.setTimer('write', ctx.now() + this.timings.writeInterval);
  }

  private acknowledge(ctx: ProcessContext<ToyMsg>, id: string): void {
    if (this.variant !== 'early-ack') ctx.observe({ type: 'write-acked', module: MODULE, writeId: id });
  }

  private onWrite(ctx: ProcessContext<ToyMsg>, from: string, epoch: number, id: string): void {
    if (!this.isNode || epoch < this.maxEpoch) return; // fenced: an older primary
    this.learnEpoch(ctx, epoch);
    if (!ctx.disk.has(`w:${id}`)) ctx.disk.set(`w:${id}`, true);
    ctx.send(from, { t: 'wack', id, stale: this.stale });
  }

  private onWriteAck(ctx: ProcessContext<ToyMsg>, from: string, id: string, stale: boolean): void {
    if (!this.primary) return;
    const acked = this.pending.get(id);
    if (acked !== undefined) {
      acked.add(from);
      if (acked.size >= this.nodeCount) {
        this.pending.delete(id);
        this.acknowledge(ctx, id);
      }
    }
    if (stale) {
      const now = ctx.now();
      const last = this.snapshotSentAt.get(from) ?? -Infinity;
      if (now - last >= this.timings.renewInterval) {
        this.snapshotSentAt.set(from, now);
        ctx.send(from, { t: 'snapshot', epoch: this.epoch, writes: this.allWrites(ctx) });
      }
    }
  }

  private onSnapshot(ctx: ProcessContext<ToyMsg>, epoch: number, writes: readonly string[]): void {
    if (!this.isNode || epoch < this.maxEpoch) return;
    this.learnEpoch(ctx, epoch);
    for (const id of writes) if (!ctx.disk.has(`w:${id}`)) ctx.disk.set(`w:${id}`, true);
    if (this.stale) {
      this.stale = false;
      ctx.disk.delete('stale');
      ctx.observe({ type: 'in-sync', module: MODULE });
      this.scheduleAttempt(ctx);
    }
  }

  private allWrites(ctx: ProcessContext<ToyMsg>): string[] {
    const out: string[] = [];
    for (const k of ctx.disk.keys()) if (k.startsWith('w:')) out.push(k.slice(2));
    return out;
  }
}

function numberOr(v: unknown, d: number): number {
  return typeof v === 'number' ? v : d;
}

/**
 * The largest clock rate error for which the toy's margin holds: a holder's
 * lease (lease local ms from s) must end before any voter's promise
 * (lease + margin local ms from a later instant), i.e.
 * lease × (1 + ρ) ≤ (lease + margin) × (1 − ρ), so ρ ≤ margin / (2·lease + margin).
 * The model claims 90% of it.
 */
export function toyMaxDrift(t: Pick<ToyTimings, 'lease' | 'driftMargin'>): number {
  return (0.9 * t.driftMargin) / (2 * t.lease + t.driftMargin);
}

export function toyLeaseModel(variant: ToyVariant = 'correct', timings: Partial<ToyTimings> = {}): SimModel<ToyMsg> {
  const tm: ToyTimings = { ...TOY_TIMINGS, ...timings };
  return {
    name: variant === 'correct' ? 'toy-lease' : `toy-lease:${variant}`,
    modules: [MODULE],
    lease: tm.lease,
    // After healing: a rebooted voter waits lease + margin, then a few attempts.
    livenessBudget: 3 * (tm.lease + tm.driftMargin) + 2 * tm.retryMax,
    maxDrift: toyMaxDrift(tm),
    create: (member, cluster) => new ToyMember(member, cluster, variant, tm),
    describe: describeToyMsg,
  };
}

export function describeToyMsg(m: ToyMsg): string {
  switch (m.t) {
    case 'req':
      return `req#${m.id} e${m.epoch}`;
    case 'grant':
      return `${m.ok ? 'grant' : 'deny'}#${m.id} e${m.epoch}`;
    case 'release':
      return `release#${m.id}`;
    case 'write':
      return `write ${m.id} e${m.epoch}`;
    case 'wack':
      return `wack ${m.id}${m.stale ? ' stale' : ''}`;
    case 'snapshot':
      return `snapshot e${m.epoch} (${m.writes.length} writes)`;
  }
}
