/** Messages of the majority lease between lease clients (nodes) and voters (nodes and witnesses). */

/** What a majority has committed about a module: its primary, epoch and in-sync secondaries. */
export interface LeaseRecord {
  holder: string;
  epoch: number;
  /** Secondaries that have applied everything the primary acknowledged. */
  inSync: readonly string[];
  /** Grows with every committed change within an epoch. */
  version: number;
}

export type LeaseRequest =
  | { type: 'lease-acquire'; module: string; requestId: number; candidate: string; epoch: number }
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
  | 'NOT_HOLDER';

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
  /** Whom the voter currently promises the lease to, and for how much longer (ms, its clock). */
  promise?: { holder: string; epoch: number; remaining: number };
}

export type LeaseMessage = LeaseRequest | LeaseReply;

/** Newer of two records by (epoch, version). */
export function newerRecord(a: LeaseRecord | undefined, b: LeaseRecord | undefined): LeaseRecord | undefined {
  if (!a) return b;
  if (!b) return a;
  if (b.epoch !== a.epoch) return b.epoch > a.epoch ? b : a;
  return b.version > a.version ? b : a;
}
