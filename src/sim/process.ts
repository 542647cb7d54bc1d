/**
 * The contract between the simulator and a member model. A member (node or
 * witness) is a `SimProcess`: it reacts to its boot, to messages and to its
 * own timers, and acts only through its `ProcessContext`. The real agent's
 * driver will implement the same shape over sockets and the OS clock; the
 * decision core inside stays the same pure `step(state, event, now)`.
 *
 * Rules a process follows (the simulator relies on them for determinism):
 * - no I/O, no `Date.now()`, no `Math.random()`, no real timers, no promises
 *   that resolve later: every reaction is synchronous;
 * - time is `ctx.now()` (this member's local clock, in ms; it drifts);
 * - messages are treated as immutable once sent (a duplicate shares them);
 * - what must survive a crash goes to `ctx.disk` (a write is durable when
 *   the call returns; in-memory state is lost at a crash).
 */
import type { DiskState, Observation } from './history.js';

export type MemberKind = 'node' | 'witness';

export interface MemberInfo {
  readonly name: string;
  readonly kind: MemberKind;
}

export interface ClusterInfo {
  readonly members: readonly MemberInfo[];
  /** Members that run applications and hold data. */
  readonly nodes: readonly string[];
  readonly witnesses: readonly string[];
  /** Everyone with a vote: nodes and witnesses. */
  readonly voters: readonly string[];
}

/** What a disk can hold: plain data, frozen when stored. */
export type DiskValue = string | number | boolean | null | readonly DiskValue[] | { readonly [key: string]: DiskValue };

/**
 * A member's persistent key-value store. It survives a crash unless the
 * schedule restarts the member with a wiped disk. A `set` is durable when it
 * returns. Stored values are deep-frozen: a model that keeps mutating the
 * object it stored gets a TypeError instead of a disk that silently follows
 * its memory.
 */
export interface Disk {
  get(key: string): DiskValue | undefined;
  set(key: string, value: DiskValue): void;
  delete(key: string): void;
  has(key: string): boolean;
  keys(): IterableIterator<string>;
  readonly size: number;
}

export interface BootInfo {
  /** 1 at the first boot, +1 at each restart of the agent. */
  readonly incarnation: number;
  /** `new` at the first boot, `kept` after a restart with the disk, `wiped` after one without. */
  readonly disk: DiskState;
}

/** An armed keeper fuse (see `Keeper`). */
export interface Fuse {
  readonly tag: string;
  readonly atLocal: number;
  readonly observation: Observation;
}

/**
 * The keeper: a small process next to the agent whose only job is to act at a
 * deadline, independently of the agent. Arm a fuse with a local deadline and
 * the observation the keeper's action produces (e.g. `app-stop`): unless the
 * agent disarms or re-arms it first, at the deadline the keeper records that
 * observation, even if the agent crashed ('agent' crash) or is paused
 * ('agent' freeze). Fuses die with the machine ('node' crash) and pause with
 * it ('node' freeze). They survive an agent restart: the new agent sees them
 * in `armed()`.
 */
export interface Keeper {
  arm(tag: string, atLocal: number, observation: Observation): void;
  disarm(tag: string): void;
  armed(): readonly Fuse[];
}

export interface ProcessContext<Msg> {
  /** This member's name. */
  readonly member: string;
  readonly incarnation: number;
  /** This member's LOCAL clock in ms (drifted, arbitrary origin, monotonic). */
  now(): number;
  /** Sends `msg` to a member (possibly lost, delayed, duplicated, reordered, cut off). */
  send(to: string, msg: Msg): void;
  /** Calls `onTimer(tag)` when the local clock reaches `atLocal`; replaces a pending timer with the same tag. */
  setTimer(tag: string, atLocal: number): void;
  cancelTimer(tag: string): void;
  /** Records a fact for the checkers, at the current global time. */
  observe(o: Observation): void;
  /** The persisted disk. */
  readonly disk: Disk;
  /** The keeper next to this agent. */
  readonly keeper: Keeper;
  /** A float in [0, 1), seeded per member and incarnation. */
  random(): number;
}

export interface SimProcess<Msg> {
  /** The agent (re)boots. In-memory state starts empty; `ctx.disk` holds what survived. */
  start(ctx: ProcessContext<Msg>, boot: BootInfo): void;
  onMessage(ctx: ProcessContext<Msg>, from: string, msg: Msg): void;
  onTimer(ctx: ProcessContext<Msg>, tag: string): void;
  /** The keeper acted on fuse `tag` (its observation is already recorded). Called on the current incarnation, if the agent is up. */
  onKeeper?(ctx: ProcessContext<Msg>, fuse: Fuse): void;
  /**
   * The application on this member failed for good (`fail`: its restart budget is spent), or an operator
   * repaired and reset it (`repair`). Called when the agent runs; a paused agent hears it at its thaw.
   */
  onAppFault?(ctx: ProcessContext<Msg>, fault: 'fail' | 'repair'): void;
  /** The run is over: report final facts (e.g. `final-data`). Called on every member that is up. */
  onEnd?(ctx: ProcessContext<Msg>): void;
}

/**
 * A member model: how to make a member's process, and what the checkers need
 * to know about the protocol.
 */
export interface SimModel<Msg> {
  readonly name: string;
  /** The modules the model runs (the checkers look at each). */
  readonly modules: readonly string[];
  /** The lease length in ms: a quorum older than this does not justify an app-start. */
  readonly lease: number;
  /** After every fault is healed, a primary must run each module within this many ms. */
  readonly livenessBudget: number;
  /** The longest a planned move (switchover, failback) may leave a module without a primary once faults are healed, ms. */
  readonly plannedGap?: number;
  /** The largest clock rate error (e.g. 1e-4 = 100 ppm) the model claims to tolerate; schedules draw drifts up to it. */
  readonly maxDrift?: number;
  /** A new process for a member: at the first boot and at every restart. */
  create(member: MemberInfo, cluster: ClusterInfo): SimProcess<Msg>;
  /** One line for a message in the trace (default: compact JSON). */
  describe?(msg: Msg): string;
}
