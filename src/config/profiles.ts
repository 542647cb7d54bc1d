/**
 * Timing profiles. Each profile is a complete set of timings; a config file
 * picks one with `cluster.profile` and may override single values with
 * `cluster.timings`. All values are milliseconds. The cross-field rules in
 * rules.ts hold for every profile (a unit test checks it).
 */

export type ProfileName = 'lan' | 'wan' | 'local' | 'test';

export interface Timings {
  /** How often each member sends a heartbeat on every link. */
  heartbeatInterval: number;
  /** Silence after which a peer becomes suspect. */
  suspectAfter: number;
  /** Silence after which a suspect peer is dead; confirmations from other members shorten it. */
  deadAfter: number;
  /** Length of a primary lease granted by a majority of voters. */
  lease: number;
  /** How often a primary renews its lease. */
  renewInterval: number;
  /** Bound on clock drift between two members over one lease. */
  driftMargin: number;
  /** Promise: a lost mirror primary is replaced within this. */
  failoverBudget: number;
  /** Promise: a failed farm node leaves the gate within this. */
  gateBudget: number;
  /** Default checker interval. */
  checkInterval: number;
  /** Default checker timeout. */
  checkTimeout: number;
}

export const PROFILES: Readonly<Record<ProfileName, Readonly<Timings>>> = {
  // One site or zone: RTT well under 1 ms. A crashed primary's lease ends at most
  // 600 ms after its last renewal; with the 100 ms margin the voters grant it to
  // another node 550-700 ms after the crash, which leaves the application time to
  // start within 1 s (bench:failover), far under the 2 s promise of DESIGN.md.
  // A primary rides out a stall of up to ~350 ms (lease - drift - one renewal).
  lan: {
    heartbeatInterval: 100,
    suspectAfter: 300, // three missed heartbeats
    deadAfter: 600,
    lease: 600,
    renewInterval: 150, // three renewals may be lost before the lease ends
    driftMargin: 100,
    failoverBudget: 2000,
    gateBudget: 1000,
    checkInterval: 250,
    checkTimeout: 200, // checker interval x fall (3) = 750 ms, inside the gate budget
  },
  // Across clouds: RTT 20-150 ms with jitter; fewer false suspicions beat speed.
  wan: {
    heartbeatInterval: 500,
    suspectAfter: 1500,
    deadAfter: 3000,
    lease: 5000,
    renewInterval: 1000,
    driftMargin: 500,
    failoverBudget: 10_000,
    gateBudget: 3000,
    checkInterval: 1000,
    checkTimeout: 800,
  },
  // The demo on one machine, often a busy laptop: relaxed so a slow event loop is not a failure.
  local: {
    heartbeatInterval: 200,
    suspectAfter: 1000,
    deadAfter: 2000,
    lease: 3000,
    renewInterval: 500,
    driftMargin: 250,
    failoverBudget: 6000,
    gateBudget: 2000,
    checkInterval: 500,
    checkTimeout: 400,
  },
  // Tests and the simulator: fast, on loopback or a virtual clock.
  test: {
    heartbeatInterval: 50,
    suspectAfter: 150,
    deadAfter: 300,
    lease: 400,
    renewInterval: 100,
    driftMargin: 50,
    failoverBudget: 1000,
    gateBudget: 500,
    checkInterval: 100,
    checkTimeout: 80,
  },
};

/** The config file's key for each timing (snake_case, as under `cluster.timings`). */
export const TIMING_KEYS: Readonly<Record<keyof Timings, string>> = {
  heartbeatInterval: 'heartbeat_interval',
  suspectAfter: 'suspect_after',
  deadAfter: 'dead_after',
  lease: 'lease',
  renewInterval: 'renew_interval',
  driftMargin: 'drift_margin',
  failoverBudget: 'failover_budget',
  gateBudget: 'gate_budget',
  checkInterval: 'check_interval',
  checkTimeout: 'check_timeout',
};
