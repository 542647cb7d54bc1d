/**
 * The world: a simulated cluster on one virtual timeline. It owns the event
 * queue (a discrete-event scheduler on global µs), the members (each with its
 * local clock, disk, keeper, timers and current process), the network, the
 * history and the trace. It knows nothing of leases or modules: it delivers
 * messages and timers, applies faults, and records what members observe.
 *
 * Tests drive a world directly (`boot`, `crash`, `partition`, `runUntil`…),
 * the way hashicorp/raft's tests drive an InmemTransport; the runner drives it
 * from a generated fault schedule.
 */
import { EventQueue, LocalClock, msToUs, usToMs, formatUs, type Scheduled } from './clock.js';
import { SimDisk } from './disk.js';
import type { FaultEvent } from './faults.js';
import { ALL_MEMBERS, History, type CrashKind, type DiskState, type Entry, type FreezeScope, type Observation } from './history.js';
import { Network, type LinkModel, type LinkParams, type NetworkStats } from './network.js';
import type { ClusterInfo, Fuse, Keeper, MemberInfo, ProcessContext, SimModel, SimProcess } from './process.js';
import { Random } from './random.js';
import { clusterInfo, type ClusterShape } from './shape.js';
import { Trace, TraceKind, describeJson } from './trace.js';

export interface WorldOptions<Msg> {
  seed: number;
  shape: ClusterShape;
  model: SimModel<Msg>;
  /** Default quality of every link. */
  link?: Partial<LinkParams>;
  linkModel?: LinkModel;
  /** Trace entries kept (the most recent); Infinity keeps all, 0 none. Default 2000. */
  traceLimit?: number;
  /** A run that processes more events than this fails (a model that loops on timers). Default 5,000,000. */
  maxEvents?: number;
}

export interface WorldStats {
  /** Events taken off the queue (including stale timers). */
  events: number;
  timers: number;
  keeperActions: number;
  observations: number;
  faults: number;
  diskWrites: number;
  /** Messages still on the wire when the stats were taken. */
  inFlight: number;
  messages: NetworkStats;
  virtualMs: number;
}

/** An error raised by a model inside the world, or by the world's own limits. */
export class SimulationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SimulationError';
  }
}

const EV_DELIVER = 0;
const EV_TIMER = 1;
const EV_KEEPER = 2;
const EV_KEEPER_NOTIFY = 3;
const EV_FAULT = 4;
const EV_CALL = 5;

class SimEvent implements Scheduled {
  at = 0;
  seq = 0;
  constructor(
    readonly kind: number,
    /** The member the event happens to. */
    readonly member: number,
    /** The sender of a message. */
    readonly peer: number,
    /** The incarnation (agent events) or boot (keeper events) the event belongs to. */
    readonly inc: number,
    /** Timer or fuse generation; for a buffered message, 1 = already arrived. */
    public gen: number,
    readonly tag: string,
    readonly payload: unknown,
  ) {}
}

interface MemberState<Msg> {
  readonly index: number;
  readonly info: MemberInfo;
  readonly name: string;
  /** The agent process runs. */
  agentUp: boolean;
  /** The machine runs (applications, keeper). */
  nodeUp: boolean;
  frozen: FreezeScope | null;
  incarnation: number;
  bootId: number;
  clock: LocalClock;
  disk: SimDisk;
  process: SimProcess<Msg> | null;
  ctx: ProcessContext<Msg> | null;
  timers: Map<string, number>;
  timerGen: number;
  fuses: Map<string, { gen: number; fuse: Fuse }>;
  /** Events that came due while frozen, in order. */
  buffer: SimEvent[];
  rng: Random;
  diskWritesBefore: number;
}

export interface MemberStatus {
  agentUp: boolean;
  nodeUp: boolean;
  frozen: FreezeScope | null;
  incarnation: number;
  drift: number;
}

export class World<Msg> {
  readonly cluster: ClusterInfo;
  readonly network: Network;
  readonly history = new History();
  readonly trace: Trace;
  readonly rng: Random;
  readonly model: SimModel<Msg>;
  private nowUs = 0;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly members: MemberState<Msg>[];
  private readonly byName = new Map<string, MemberState<Msg>>();
  private readonly names: string[];
  private readonly describeMsg: (msg: unknown) => string;
  private readonly maxEvents: number;
  private booted = false;
  private ended = false;
  private counts = { events: 0, timers: 0, keeperActions: 0, observations: 0, faults: 0 };

  constructor(options: WorldOptions<Msg>) {
    this.model = options.model;
    this.cluster = clusterInfo(options.shape);
    this.rng = new Random(options.seed);
    this.names = this.cluster.members.map((m) => m.name);
    this.network = new Network(this.names, this.rng.fork('network'), { link: options.link, model: options.linkModel });
    const describe = options.model.describe;
    this.describeMsg = describe ? (msg) => describe(msg as Msg) : describeJson;
    this.trace = new Trace(options.traceLimit ?? 2000, this.names, this.describeMsg);
    this.maxEvents = options.maxEvents ?? 5_000_000;
    this.members = this.cluster.members.map((info, index) => {
      const m: MemberState<Msg> = {
        index,
        info,
        name: info.name,
        agentUp: false,
        nodeUp: false,
        frozen: null,
        incarnation: 0,
        bootId: 0,
        clock: new LocalClock(),
        disk: new SimDisk(),
        process: null,
        ctx: null,
        timers: new Map(),
        timerGen: 0,
        fuses: new Map(),
        buffer: [],
        rng: this.rng,
        diskWritesBefore: 0,
      };
      this.byName.set(info.name, m);
      return m;
    });
  }

  // ---- time -------------------------------------------------------------

  /** Global time in ms. */
  get now(): number {
    return usToMs(this.nowUs);
  }

  get nowMicros(): number {
    return this.nowUs;
  }

  /** A member's local clock reading, in ms. */
  localNow(member: string): number {
    return this.get(member).clock.localMs(this.nowUs);
  }

  status(member: string): MemberStatus {
    const m = this.get(member);
    return { agentUp: m.agentUp, nodeUp: m.nodeUp, frozen: m.frozen, incarnation: m.incarnation, drift: m.clock.drift };
  }

  /** Boots every member (incarnation 1, new disk). Clocks set with `setClock` before this apply from time 0. */
  boot(): void {
    if (this.booted) throw new Error('world already booted');
    this.booted = true;
    for (const m of this.members) {
      m.nodeUp = true;
      m.bootId++;
      m.incarnation++;
      this.bootMember(m, 'new');
    }
  }

  /** Runs every event up to and including global time `ms`. */
  runUntil(ms: number): void {
    const untilUs = msToUs(ms);
    const q = this.queue;
    for (;;) {
      const next = q.peek();
      if (next === undefined || next.at > untilUs) break;
      q.pop();
      this.nowUs = next.at;
      if (++this.counts.events > this.maxEvents) {
        throw new SimulationError(`more than ${this.maxEvents} events by ${formatUs(this.nowUs)} ms: a model that sets timers in a loop?`);
      }
      this.dispatch(next);
    }
    if (untilUs > this.nowUs) this.nowUs = untilUs;
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Calls `fn` at global time `ms` (for scripted tests). */
  at(ms: number, fn: () => void): void {
    this.push(new SimEvent(EV_CALL, -1, -1, 0, 0, '', fn), this.notPast(ms));
  }

  /** Applies `fault` at its time. */
  schedule(fault: FaultEvent): void {
    this.push(new SimEvent(EV_FAULT, -1, -1, 0, 0, '', fault), this.notPast(fault.at));
  }

  /** Ends the run: every member that is up reports its final facts (`onEnd`), then an `end` marker. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    for (const m of this.members) {
      if (m.agentUp && m.frozen === null && m.process?.onEnd && m.ctx) {
        const p = m.process;
        const ctx = m.ctx;
        this.guard(m, 'onEnd', () => p.onEnd?.(ctx));
      }
    }
    this.mark(-1, { type: 'end' });
  }

  stats(): WorldStats {
    let inFlight = 0;
    for (const e of this.queue.items()) if (e.kind === EV_DELIVER) inFlight++;
    for (const m of this.members) for (const e of m.buffer) if (e.kind === EV_DELIVER) inFlight++;
    return {
      ...this.counts,
      diskWrites: this.members.reduce((n, m) => n + m.diskWritesBefore + m.disk.writes, 0),
      inFlight,
      messages: structuredClone(this.network.stats),
      virtualMs: this.now,
    };
  }

  // ---- faults -----------------------------------------------------------

  apply(f: FaultEvent): void {
    this.counts.faults++;
    switch (f.type) {
      case 'clock':
        this.trace.add(TraceKind.fault, this.nowUs, -1, -1, f);
        return this.setClock(f.member, f.drift, f.offset);
      case 'crash':
        return this.crash(f.member, f.kind);
      case 'restart':
        return this.restart(f.member, f.disk, f.drift);
      case 'freeze':
        return this.freeze(f.member, f.scope);
      case 'thaw':
        return this.thaw(f.member);
      case 'heal-all':
        return this.healAll();
      case 'app-fail':
      case 'app-repair':
        return this.appFault(f.member, f.type === 'app-fail' ? 'fail' : 'repair');
    }
    this.trace.add(TraceKind.fault, this.nowUs, -1, -1, f);
    switch (f.type) {
      case 'partition':
        return this.network.partition(f.groups[0], f.groups[1]);
      case 'isolate':
        return this.network.isolate(f.member);
      case 'cut':
        return this.network.cutLink(f.from, f.to);
      case 'heal':
        return this.network.heal();
      case 'link':
        return this.network.setLink(f.from, f.to, f.params);
      case 'links-reset':
        return this.network.resetLinks();
    }
  }

  /**
   * Sets a member's clock. Before `boot`: rate error `drift` and local
   * reading `offset` ms at global 0. After: only the rate changes, from now
   * on, and the reading stays continuous (allowed while the agent is down).
   */
  setClock(member: string, drift: number, offset = 0): void {
    const m = this.get(member);
    if (!this.booted) {
      m.clock = new LocalClock(drift, msToUs(offset));
      return;
    }
    if (m.agentUp) throw new Error(`setClock(${member}): change a running member's clock rate only while its agent is down`);
    m.clock.setDrift(this.nowUs, drift);
    // Armed fuses keep their local deadlines: re-time them on the new rate.
    for (const [tag, f] of m.fuses) this.armFuse(m, tag, f.fuse.atLocal, f.fuse.observation);
  }

  /** Kills a member: the agent only, or the whole node (agent, keeper and applications). */
  crash(member: string, kind: CrashKind): void {
    const m = this.get(member);
    if (!m.agentUp && (kind === 'agent' || !m.nodeUp)) return;
    this.mark(m.index, { type: 'crash', kind });
    m.agentUp = false;
    m.process = null;
    m.ctx = null;
    m.timers.clear();
    m.frozen = null;
    // What waited for a thaw dies with the agent; a surviving keeper's due actions happen now.
    const buffered = m.buffer.splice(0);
    if (kind === 'agent') for (const e of buffered) if (e.kind === EV_KEEPER) this.push(e, this.nowUs);
    if (kind === 'node') {
      m.nodeUp = false;
      m.fuses.clear();
    }
  }

  /** Restarts a crashed member's agent (and machine, after a node crash), with its disk or on an empty one. */
  restart(member: string, disk: 'kept' | 'wiped', drift?: number): void {
    const m = this.get(member);
    if (m.agentUp) return;
    if (drift !== undefined) this.setClock(member, drift);
    if (!m.nodeUp) {
      m.nodeUp = true;
      m.bootId++;
    }
    if (disk === 'wiped') {
      m.diskWritesBefore += m.disk.writes;
      m.disk = new SimDisk();
    }
    m.incarnation++;
    this.bootMember(m, disk);
  }

  /** Pauses a member: its timers and messages wait until it thaws (SIGSTOP of the agent, or a paused VM). */
  freeze(member: string, scope: FreezeScope): void {
    const m = this.get(member);
    if (!m.agentUp || m.frozen !== null) return;
    m.frozen = scope;
    this.mark(m.index, { type: 'freeze', scope });
  }

  thaw(member: string): void {
    const m = this.get(member);
    if (m.frozen === null) return;
    m.frozen = null;
    this.mark(m.index, { type: 'thaw' });
    for (const e of m.buffer) this.push(e, this.nowUs);
    m.buffer.length = 0;
  }

  partition(a: readonly string[], b: readonly string[]): void {
    this.network.partition(a, b);
  }

  isolate(member: string): void {
    this.network.isolate(member);
  }

  heal(): void {
    this.network.heal();
  }

  /** Ends every fault: network healed, links back to defaults, members thawed and restarted with their disks. */
  healAll(): void {
    this.mark(-1, { type: 'healed' });
    this.network.heal();
    this.network.resetLinks();
    for (const m of this.members) if (m.frozen !== null) this.thaw(m.name);
    for (const m of this.members) if (!m.agentUp) this.restart(m.name, 'kept');
    // After what the thaws let through (a failure a paused agent has yet to hear): nothing stays failed.
    for (const m of this.members) if (m.info.kind === 'node') this.at(this.now, () => this.appFault(m.name, 'repair'));
  }

  /** A member's application fails for good, or is repaired: its agent is told (at its thaw if paused; never if down). */
  appFault(member: string, fault: 'fail' | 'repair'): void {
    const m = this.get(member);
    const f = { at: this.now, type: fault === 'fail' ? 'app-fail' : 'app-repair', member } as const;
    if (!m.agentUp) {
      this.trace.add(TraceKind.drop, this.nowUs, m.index, -1, f, 'down');
      return;
    }
    if (m.frozen !== null) {
      const inc = m.incarnation;
      m.buffer.push(new SimEvent(EV_CALL, m.index, -1, inc, 0, '', () => m.incarnation === inc && this.appFault(member, fault)));
      return;
    }
    this.trace.add(TraceKind.fault, this.nowUs, -1, -1, f);
    this.guard(m, `onAppFault(${fault})`, () => m.process?.onAppFault?.(m.ctx as ProcessContext<Msg>, fault));
  }

  // ---- internals ----------------------------------------------------------

  private get(member: string): MemberState<Msg> {
    const m = this.byName.get(member);
    if (m === undefined) throw new Error(`unknown member "${member}" (members: ${this.names.join(', ')})`);
    return m;
  }

  private notPast(ms: number): number {
    const us = msToUs(ms);
    if (us < this.nowUs) throw new Error(`cannot schedule at ${ms} ms: the world is already at ${this.now} ms`);
    return us;
  }

  private push(e: SimEvent, atUs: number): void {
    e.at = atUs;
    this.queue.push(e);
  }

  private mark(member: number, e: Entry): void {
    const entry = this.history.record(this.now, member < 0 ? ALL_MEMBERS : (this.names[member] as string), e);
    this.trace.add(TraceKind.world, this.nowUs, member, -1, entry);
  }

  private bootMember(m: MemberState<Msg>, disk: DiskState): void {
    m.agentUp = true;
    m.frozen = null;
    m.rng = this.rng.fork(`process:${m.name}:${m.incarnation}`);
    let created: SimProcess<Msg> | undefined;
    this.guard(m, 'create', () => (created = this.model.create(m.info, this.cluster)));
    const process = created as SimProcess<Msg>;
    const ctx = this.makeContext(m, m.incarnation);
    m.process = process;
    m.ctx = ctx;
    this.mark(m.index, { type: 'boot', incarnation: m.incarnation, disk });
    this.guard(m, 'start', () => process.start(ctx, { incarnation: m.incarnation, disk }));
  }

  private makeContext(m: MemberState<Msg>, incarnation: number): ProcessContext<Msg> {
    const check = (what: string): void => {
      if (m.incarnation !== incarnation || !m.agentUp) {
        throw new SimulationError(`${m.name} (incarnation ${incarnation}) called ${what} after it crashed: a process must not keep its context`);
      }
    };
    const disk = m.disk;
    const keeper: Keeper = {
      arm: (tag, atLocal, observation) => {
        check('keeper.arm');
        this.armFuse(m, tag, atLocal, observation);
      },
      disarm: (tag) => {
        check('keeper.disarm');
        m.fuses.delete(tag);
      },
      armed: () => [...m.fuses.values()].map((f) => f.fuse),
    };
    return {
      member: m.name,
      incarnation,
      disk,
      keeper,
      now: () => m.clock.localMs(this.nowUs),
      random: () => m.rng.float(),
      send: (to, msg) => {
        check('send');
        this.send(m, to, msg);
      },
      setTimer: (tag, atLocal) => {
        check('setTimer');
        const gen = ++m.timerGen;
        m.timers.set(tag, gen);
        this.push(new SimEvent(EV_TIMER, m.index, -1, incarnation, gen, tag, undefined), m.clock.globalUsAt(atLocal, this.nowUs));
      },
      cancelTimer: (tag) => {
        check('cancelTimer');
        m.timers.delete(tag);
      },
      observe: (o) => {
        check('observe');
        this.observe(m, o);
      },
    };
  }

  private armFuse(m: MemberState<Msg>, tag: string, atLocal: number, observation: Observation): void {
    const gen = ++m.timerGen;
    m.fuses.set(tag, { gen, fuse: { tag, atLocal, observation } });
    this.push(new SimEvent(EV_KEEPER, m.index, -1, m.bootId, gen, tag, undefined), m.clock.globalUsAt(atLocal, this.nowUs));
  }

  private observe(m: MemberState<Msg>, o: Observation): void {
    this.counts.observations++;
    let e: Entry = o;
    if (o.type === 'lease-held') {
      e = { ...o, until: usToMs(m.clock.globalUsAt(o.until, -Infinity)), untilLocal: o.until };
    }
    const entry = this.history.record(this.now, m.name, e);
    this.trace.add(TraceKind.obs, this.nowUs, m.index, -1, entry);
  }

  private send(m: MemberState<Msg>, to: string, msg: Msg): void {
    const j = this.network.indexOf(to);
    const net = this.network;
    const n = net.transmit(m.index, j, this.nowUs);
    if (n <= 0) {
      this.trace.add(TraceKind.drop, this.nowUs, j, m.index, msg, net.isCut(m.index, j) ? 'partition' : 'loss');
      return;
    }
    const dest = this.members[j] as MemberState<Msg>;
    for (let c = 0; c < n; c++) {
      this.push(new SimEvent(EV_DELIVER, j, m.index, dest.incarnation, 0, '', msg), net.copies[c] as number);
    }
  }

  private dispatch(e: SimEvent): void {
    switch (e.kind) {
      case EV_DELIVER:
        return this.deliver(e);
      case EV_TIMER:
        return this.fireTimer(e);
      case EV_KEEPER:
        return this.fireKeeper(e);
      case EV_KEEPER_NOTIFY:
        return this.notifyKeeper(e);
      case EV_FAULT:
        return this.apply(e.payload as FaultEvent);
      case EV_CALL:
        return (e.payload as () => void)();
    }
  }

  private deliver(e: SimEvent): void {
    const d = this.members[e.member] as MemberState<Msg>;
    const net = this.network;
    let reason: 'partition' | 'down' | 'restarted' | undefined;
    if (e.gen === 0 && net.isCut(e.peer, e.member)) reason = 'partition';
    else if (!d.agentUp) reason = 'down';
    else if (d.incarnation !== e.inc) reason = 'restarted';
    if (reason !== undefined) {
      net.drop(reason);
      this.trace.add(TraceKind.drop, this.nowUs, e.member, e.peer, e.payload, reason);
      return;
    }
    if (d.frozen !== null) {
      e.gen = 1; // arrived: sits in the socket buffer until the thaw
      d.buffer.push(e);
      return;
    }
    net.stats.delivered++;
    this.trace.add(TraceKind.recv, this.nowUs, e.member, e.peer, e.payload);
    try {
      (d.process as SimProcess<Msg>).onMessage(d.ctx as ProcessContext<Msg>, this.names[e.peer] as string, e.payload as Msg);
    } catch (err) {
      throw this.failure(d, 'onMessage', err, e.payload);
    }
  }

  private fireTimer(e: SimEvent): void {
    const d = this.members[e.member] as MemberState<Msg>;
    if (!d.agentUp || d.incarnation !== e.inc || d.timers.get(e.tag) !== e.gen) return; // cancelled, replaced or crashed
    if (d.frozen !== null) {
      d.buffer.push(e);
      return;
    }
    d.timers.delete(e.tag);
    this.counts.timers++;
    this.trace.add(TraceKind.timer, this.nowUs, e.member, -1, e.tag);
    try {
      (d.process as SimProcess<Msg>).onTimer(d.ctx as ProcessContext<Msg>, e.tag);
    } catch (err) {
      throw this.failure(d, `onTimer(${e.tag})`, err);
    }
  }

  private fireKeeper(e: SimEvent): void {
    const d = this.members[e.member] as MemberState<Msg>;
    if (!d.nodeUp || d.bootId !== e.inc) return;
    const f = d.fuses.get(e.tag);
    if (f === undefined || f.gen !== e.gen) return;
    if (d.frozen === 'node') {
      d.buffer.push(e);
      return;
    }
    d.fuses.delete(e.tag);
    this.counts.keeperActions++;
    this.trace.add(TraceKind.keeper, this.nowUs, e.member, -1, e.tag);
    this.observe(d, f.fuse.observation);
    if (!d.agentUp) return;
    const notify = new SimEvent(EV_KEEPER_NOTIFY, d.index, -1, d.incarnation, 0, e.tag, f.fuse);
    if (d.frozen !== null) d.buffer.push(notify);
    else this.notifyKeeper(notify);
  }

  private notifyKeeper(e: SimEvent): void {
    const d = this.members[e.member] as MemberState<Msg>;
    if (!d.agentUp || d.incarnation !== e.inc) return;
    if (d.frozen !== null) {
      d.buffer.push(e);
      return;
    }
    const p = d.process as SimProcess<Msg>;
    if (!p.onKeeper) return;
    const ctx = d.ctx as ProcessContext<Msg>;
    this.guard(d, 'onKeeper', () => p.onKeeper?.(ctx, e.payload as Fuse));
  }

  private guard(m: MemberState<Msg>, what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      throw this.failure(m, what, err);
    }
  }

  private failure(m: MemberState<Msg>, what: string, err: unknown, msg?: unknown): SimulationError {
    if (err instanceof SimulationError) return err;
    const detail = msg === undefined ? '' : ` handling ${this.describeMsg(msg)}`;
    return new SimulationError(`${m.name} threw in ${what}${detail} at ${formatUs(this.nowUs)} ms: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
