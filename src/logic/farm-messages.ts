/**
 * Messages about farm modules between nodes. Each node is the authority on
 * its own part of a farm module (its application's health, whether its
 * restart policy gave up, the admin state an operator set there) and tells
 * the module's other nodes whenever that changes, so that every gate follows
 * the cluster as it changes instead of polling.
 */
import type { CheckerStatus } from './checker.js';
import type { AdminState } from './farm-pool.js';

export type FarmMessage =
  /**
   * The sender's state of `module`. `run` names the sender's process run
   * (its start time) and `seq` orders reports within it: a report older
   * than one already applied is dropped (the links may reorder across
   * reconnects).
   */
  | { type: 'farm-report'; module: string; run: number; seq: number; health: CheckerStatus; givenUp: boolean; admin: AdminState }
  /** An operator on another node asks the receiver to set its admin state for `module`. */
  | { type: 'farm-admin'; module: string; admin: AdminState; by: string };

/** Whether report (run, seq) is newer than the last applied one. */
export function newerReport(last: { run: number; seq: number } | undefined, next: { run: number; seq: number }): boolean {
  if (last === undefined) return true;
  return next.run > last.run || (next.run === last.run && next.seq > last.seq);
}
