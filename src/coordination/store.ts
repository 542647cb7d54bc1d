/**
 * CoordinationStore: the one place that decides who may be primary of a
 * mirror module. Two implementations today — memory (one process, for tests)
 * and the built-in majority lease among nodes and witnesses — and etcd later;
 * callers never know which. test/conformance/ runs the same suite on each.
 *
 * The contract, method by method (how critical each call is):
 *
 * - acquire(module, {dataEpoch})
 *                        ATOMIC. Resolves only when this node holds the lease
 *                        with an epoch above every earlier epoch, and only if it
 *                        is in the committed in-sync set or was its holder AND
 *                        its data continues that record's epoch (`dataEpoch`;
 *                        a node that lost its disk is in sync with nothing), or
 *                        no record exists, or `force`. Settles within the
 *                        request timeout; on rejection nothing is held.
 * - renewal              AUTOMATIC, inside the store, every renew interval.
 *                        A lease is valid until `validUntil` on this node's
 *                        clock; the caller must have stopped the application
 *                        by then. A renewal that fails is SOFT until
 *                        `validUntil`; then the store emits `lost`.
 * - commitInSync(set)    ATOMIC compare-and-set on (holder, epoch). Resolves
 *                        once a majority stored the new in-sync set; until then
 *                        the caller must not acknowledge writes that a removed
 *                        secondary lacks.
 * - transfer(to)         ATOMIC (holder, epoch) -> (to, epoch + 1). The caller
 *                        stopped its application and ran a final barrier first.
 * - adopt(epoch, set)    the transfer's target takes the lease it was given.
 * - release()            SOFT, best effort: the caller already stopped its
 *                        application; others need not wait for the lease to end.
 * - held(), watch()      local, never block; watch delivers every change of
 *                        this node's leases in order.
 *
 * Every failure is a CoordinationError with a SKYHA_ERR_COORD_* code and a
 * reason (stable code + sentence) from the decision core.
 */
import { SkyhaError, type ErrorCode } from '../core/errors.js';
import type { LeaseRecord } from '../logic/lease/messages.js';
import type { Reason } from '../logic/step.js';

export type { LeaseRecord };

export interface Lease {
  module: string;
  holder: string;
  epoch: number;
  /** This node's clock: the application must be stopped by then unless renewed. */
  validUntil: number;
  record: LeaseRecord;
  forced: boolean;
}

export type LeaseEvent =
  | { type: 'acquired'; lease: Lease; reason: Reason }
  | { type: 'renewed'; module: string; epoch: number; validUntil: number }
  | { type: 'at-risk'; module: string; epoch: number; validUntil: number; reason: Reason }
  | { type: 'lost'; module: string; epoch: number; reason: Reason }
  | { type: 'record-committed'; module: string; record: LeaseRecord; reason: Reason }
  | { type: 'transferred'; module: string; epoch: number; to: string; reason: Reason }
  | { type: 'released'; module: string; epoch: number; reason: Reason };

export interface AcquireOptions {
  /** The epoch whose history this node's data continues; 0 when it holds none. */
  dataEpoch: number;
  /** Take the lease without proof of being in sync (an operator's decision: data may be lost). */
  force?: boolean;
}

export interface CoordinationStore {
  readonly self: string;
  acquire(module: string, options: AcquireOptions): Promise<Lease>;
  /** `dataEpoch`: the epoch whose history this node's data continues (the old holder's). */
  adopt(module: string, epoch: number, inSync: readonly string[], dataEpoch: number): Promise<Lease>;
  commitInSync(module: string, inSync: readonly string[]): Promise<LeaseRecord>;
  transfer(module: string, to: string): Promise<number>;
  release(module: string): Promise<void>;
  held(module: string): Lease | undefined;
  watch(listener: (event: LeaseEvent) => void): () => void;
  /** Stops renewing; leases held lapse (call release first for a clean hand-over). */
  close(): Promise<void>;
}

export class CoordinationError extends SkyhaError {
  readonly reason: Reason;
  readonly holder: string | undefined;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, reason: Reason, extra: { holder?: string | undefined; retryAfter?: number | undefined } = {}) {
    super(code, reason.text);
    this.name = 'CoordinationError';
    this.reason = reason;
    this.holder = extra.holder;
    this.retryAfter = extra.retryAfter;
  }
}
