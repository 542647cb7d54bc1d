/**
 * The deterministic simulator (docs/design/simulator.md): what a member model
 * implements, and how to run and check schedules.
 */
export type { BootInfo, ClusterInfo, Disk, DiskValue, Fuse, Keeper, MemberInfo, MemberKind, ProcessContext, SimModel, SimProcess } from './process.js';
export type { CrashKind, DiskState, Entry, FreezeScope, HistoryEntry, Marker, Observation } from './history.js';
export type { FaultEvent } from './faults.js';
export type { LinkModel, LinkParams, NetworkStats } from './network.js';
export { CHECKERS, checkAll, leaseExclusive, liveness, noLostAckedWrite, noTwoPrimaries, primaryIntervals, quorumBeforePrimary, type CheckerName, type CheckParams, type CheckResult, type Violation } from './checkers.js';
export { formatFailure, runMany, runSchedule, scheduleFor, type ManyOptions, type ManySummary, type RunOptions, type RunResult } from './runner.js';
export { GENTLE, HARSH, formatSchedule, generateSchedule, type FaultOptions, type Schedule } from './schedule.js';
export { parseShape, type ClusterShape } from './shape.js';
export { Random, deriveSeed } from './random.js';
export { SimulationError, World, type WorldOptions, type WorldStats } from './world.js';
