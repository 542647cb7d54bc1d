/** Messages of the majority lease between lease clients (nodes) and voters (nodes and witnesses). */

/** What a majority has committed about a module: its primary, epoch and in-sync secondaries. */
export interface LeaseRecord {
  holder: string;
  epoch: number;
  /** Secondaries that have applied everything the primary acknowledged. */
  inSync: readonly string[];
  /** Grows with every committed change within an epoch. */
  version: number;
  /**
   * The epoch whose history the holder's data continued when it took the
   * lease. Until the holder's first change reaches them, its secondaries'
   * data still continues this epoch, and that is the same history.
   */
  baseEpoch?: number;
  /**
   * When `inSync` became empty: the members it held just before. Nothing is
   * acknowledged without an in-sync secondary, so they still hold every
   * acknowledged change — in sync in the sense of DESIGN.md — and may take over.
   */
  lastInSync?: readonly string[];
  /**
   * The record this one replaced, kept while this one has never had an
   * in-sync secondary: until then nothing was acknowledged in this epoch, so
   * whoever held every acknowledged change then still does.
   */
  previous?: LeaseRecord;
  /** Taken by operator force: its holder was not proven to hold every acknowledged change. */
  forced?: boolean;
}

/** How many superseded records a record keeps (failovers in a row without ever getting a secondary in sync). */
const MAX_PREVIOUS = 4;

/** The record a new holder commits at `epoch`, keeping the one it replaces while nothing is acknowledged. */
export function newHolderRecord(holder: string, epoch: number, baseEpoch: number, inSync: readonly string[], replaced: LeaseRecord | undefined, forced = false): LeaseRecord {
  const record: LeaseRecord = { holder, epoch, inSync: [...inSync].sort(), version: 1, baseEpoch, ...(forced ? { forced: true } : {}) };
  if (replaced && inSync.length === 0) record.previous = trim(replaced, MAX_PREVIOUS - 1);
  return record;
}

function trim(record: LeaseRecord, depth: number): LeaseRecord {
  const { previous, ...rest } = record;
  return previous && depth > 0 ? { ...rest, previous: trim(previous, depth - 1) } : rest;
}

/** The record after a change of the in-sync set (remembers who was last in sync when it empties). */
export function withInSync(record: LeaseRecord, inSync: readonly string[]): LeaseRecord {
  const { lastInSync: _old, previous, ...rest } = record;
  const next: LeaseRecord = { ...rest, inSync: [...inSync], version: record.version + 1 };
  // With an in-sync secondary, acknowledgements may follow: the superseded record no longer covers them.
  if (inSync.length === 0 && previous && record.inSync.length === 0 && !record.lastInSync) next.previous = previous;
  if (inSync.length === 0) {
    const last = record.inSync.length > 0 ? record.inSync : record.lastInSync ?? [];
    if (last.length > 0) next.lastInSync = [...last];
  }
  return next;
}

/**
 * A record of a history that began empty and never had an in-sync secondary, nor had the records it replaced: it
 * acknowledged nothing (a barrier needs an in-sync secondary).
 */
export function acknowledgedNothing(record: LeaseRecord): boolean {
  return record.baseEpoch === 0 && record.inSync.length === 0 && !record.lastInSync && !record.forced && (!record.previous || acknowledgedNothing(record.previous));
}

/** May `node`, whose data continues epoch `dataEpoch`, take over from this record without losing an acknowledged change? */
export function holdsAcknowledged(record: LeaseRecord, node: string, dataEpoch: number): boolean {
  const neverInSync = record.inSync.length === 0 && !record.lastInSync;
  // A history that began empty and never had an in-sync secondary acknowledged nothing: no data holds all of it.
  if (dataEpoch === 0 && acknowledgedNothing(record)) return true;
  // Otherwise no data (a new node, or one that lost its disk) continues no history.
  if (dataEpoch <= 0) return false;
  // The first contact at a new epoch is a full snapshot of the holder, who held every acknowledged change when it
  // took over; with no in-sync secondary since, nothing more was acknowledged: whoever has this epoch's data has it all.
  if (neverInSync && !record.forced && dataEpoch === record.epoch) return true;
  // Nothing is acknowledged at a new epoch before every in-sync member applied it (and so moved to that epoch).
  if (dataEpoch !== record.epoch && dataEpoch !== record.baseEpoch) return false;
  if (record.holder === node || record.inSync.includes(node)) return true;
  return record.inSync.length === 0 && (record.lastInSync ?? []).includes(node);
}

/** holdsAcknowledged, also through the superseded records when nothing was acknowledged since. */
export function mayTakeOver(record: LeaseRecord, node: string, dataEpoch: number): boolean {
  if (holdsAcknowledged(record, node, dataEpoch)) return true;
  const neverInSync = record.inSync.length === 0 && !record.lastInSync;
  return neverInSync && !!record.previous && mayTakeOver(record.previous, node, dataEpoch);
}

export type LeaseRequest =
  /**
   * `dataEpoch`/`force`: so that a voter that knows the record refuses a candidate that may not take over, promising
   * nothing. `record`: the newest record the candidate heard of (from voters' replies); a voter with an older one
   * takes it first — else voters split between two records could refuse every candidate for good.
   */
  | { type: 'lease-acquire'; module: string; requestId: number; candidate: string; epoch: number; dataEpoch: number; force?: boolean; record?: LeaseRecord }
  | { type: 'lease-renew'; module: string; requestId: number; holder: string; epoch: number; record?: LeaseRecord }
  | { type: 'lease-transfer'; module: string; requestId: number; holder: string; epoch: number; to: string }
  | { type: 'lease-release'; module: string; holder: string; epoch: number };

export type Refusal =
  /** The voter promised the lease to someone else, and the promise has not expired (plus margin). */
  | 'PROMISED'
  /** The voter started less than lease + drift_margin ago. */
  | 'QUARANTINE'
  /** The proposed epoch is not above every epoch the voter has seen. */
  | 'STALE_EPOCH'
  /** A renewal or transfer from someone the voter's promise is not to. */
  | 'NOT_HOLDER'
  /** By the record this voter knows, the candidate does not hold every acknowledged change. */
  | 'NOT_IN_SYNC';

export interface LeaseReply {
  type: 'lease-reply';
  module: string;
  requestId: number;
  voter: string;
  granted: boolean;
  refusal?: Refusal;
  /** The voter's committed record, if it knows one. */
  record?: LeaseRecord;
  /** True when the voter lost its state and has not yet learned the module's record. */
  amnesiac: boolean;
  maxEpoch: number;
  /** Whom the voter currently promises the lease to, and how long until it grants to anyone else (ms, its clock: the promise plus the drift margin). */
  promise?: { holder: string; epoch: number; remaining: number };
  /** The epoch whose history the data on the voter's own member continues (0: none, e.g. a witness). */
  dataEpoch?: number;
}

/** Voter to voter: a voter that lost its state asks the others what they know (docs/design/lease.md). */
export type VoterSync =
  | { type: 'voter-sync-request' }
  /** `amnesiac`: for modules not listed; each listed module says whether this voter knows it. */
  | { type: 'voter-sync-reply'; voter: string; amnesiac: boolean; modules: Record<string, { record?: LeaseRecord; maxEpoch: number; amnesiac?: boolean }>; data?: Record<string, number> };

export type LeaseMessage = LeaseRequest | LeaseReply | VoterSync;

/** Newer of two records by (epoch, version). */
export function newerRecord(a: LeaseRecord | undefined, b: LeaseRecord | undefined): LeaseRecord | undefined {
  if (!a) return b;
  if (!b) return a;
  if (b.epoch !== a.epoch) return b.epoch > a.epoch ? b : a;
  return b.version > a.version ? b : a;
}
