/**
 * An in-memory CoordinationStore: one shared object stands for the
 * coordination service, each node gets a view of it. Atomic by construction
 * (single process), with the same timing rules as the real stores — a lease
 * is valid until renewal + lease - drift_margin and free for others at
 * renewal + lease — so that the conformance suite holds it to the contract.
 * For tests and for embedding; not a way to run a real cluster.
 */
import type { CancelTimer, Clock } from '../../core/clock.js';
import type { ClientTimings } from '../../logic/lease/client.js';
import { mayTakeOver, newHolderRecord, withInSync, type LeaseRecord } from '../../logic/lease/messages.js';
import { reason } from '../../logic/step.js';
import { CoordinationError, type AcquireOptions, type CoordinationStore, type Lease, type LeaseEvent } from '../store.js';

interface Entry {
  holder?: string;
  epoch: number;
  /** Free for others from this instant (shared clock). */
  freeAt: number;
  record?: LeaseRecord;
}

export class MemoryCoordination {
  readonly entries = new Map<string, Entry>();
  readonly unreachable = new Set<string>();

  constructor(
    readonly clock: Clock,
    readonly timings: ClientTimings,
  ) {}

  store(self: string): MemoryCoordinationStore {
    return new MemoryCoordinationStore(self, this);
  }

  entry(module: string): Entry {
    let e = this.entries.get(module);
    if (!e) this.entries.set(module, (e = { epoch: 0, freeAt: -Infinity }));
    return e;
  }
}

export class MemoryCoordinationStore implements CoordinationStore {
  private leases = new Map<string, Lease>();
  private timers = new Map<string, CancelTimer[]>();
  private listeners = new Set<(e: LeaseEvent) => void>();
  private closed = false;

  constructor(
    readonly self: string,
    private readonly service: MemoryCoordination,
  ) {}

  private get now(): number {
    return this.service.clock.now();
  }

  /** Resolves after the request timeout when the service cannot be reached, else at once. */
  private call<T>(module: string, f: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new CoordinationError('SKYHA_ERR_COORD_NO_MAJORITY', reason('LEASE_NO_MAJORITY', 'the store is closed')));
    if (this.service.unreachable.has(this.self)) {
      return new Promise((_, reject) =>
        this.service.clock.setTimer(this.service.timings.requestTimeout, () =>
          reject(new CoordinationError('SKYHA_ERR_COORD_NO_MAJORITY', reason('LEASE_NO_MAJORITY', `could not reach the coordination service about ${module}`))),
        ),
      );
    }
    try {
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  acquire(module: string, options: AcquireOptions): Promise<Lease> {
    const held = this.held(module);
    if (held) return Promise.resolve(held);
    return this.call(module, () => {
      const e = this.service.entry(module);
      if (e.holder && e.holder !== this.self && this.now < e.freeAt) {
        throw new CoordinationError('SKYHA_ERR_COORD_HELD', reason('LEASE_PROMISED_ELSEWHERE', `could not become primary of ${module}: held by ${e.holder}`), { holder: e.holder, retryAfter: e.freeAt - this.now });
      }
      const r = e.record;
      const named = !!r && (r.holder === this.self || r.inSync.includes(this.self) || (r.inSync.length === 0 && (r.lastInSync ?? []).includes(this.self)));
      const eligible = !r || mayTakeOver(r, this.self, options.dataEpoch);
      if (!eligible && !options.force) {
        const why = named ? `the local data continues epoch ${options.dataEpoch}, not epoch ${r!.epoch}` : `not in the in-sync set [${r!.inSync.join(', ')}] of ${r!.holder} at epoch ${r!.epoch}`;
        throw new CoordinationError('SKYHA_ERR_COORD_NOT_IN_SYNC', reason('LEASE_NOT_IN_SYNC', `may not become primary: ${why}`));
      }
      e.epoch += 1;
      e.holder = this.self;
      e.record = newHolderRecord(this.self, e.epoch, options.dataEpoch, [], r, !eligible);
      const forced = !eligible;
      return this.hold(module, e, forced, forced ? 'LEASE_ACQUIRED_FORCED' : 'LEASE_ACQUIRED', forced ? `became primary of ${module} at epoch ${e.epoch} by operator force: data may be lost (not proven in sync)` : `became primary of ${module} at epoch ${e.epoch}`);
    });
  }

  adopt(module: string, epoch: number, inSync: readonly string[], dataEpoch: number): Promise<Lease> {
    return this.call(module, () => {
      const e = this.service.entry(module);
      if (e.holder !== this.self || e.epoch !== epoch) throw this.notHolder(module);
      e.record = { holder: this.self, epoch, inSync: [...inSync].filter((n) => n !== this.self).sort(), version: 1, baseEpoch: dataEpoch };
      return this.hold(module, e, false, 'LEASE_ACQUIRED', `became primary of ${module} at epoch ${epoch} by switchover`);
    });
  }

  commitInSync(module: string, inSync: readonly string[]): Promise<LeaseRecord> {
    return this.call(module, () => {
      const e = this.service.entry(module);
      const lease = this.held(module);
      if (!lease || e.holder !== this.self || e.epoch !== lease.epoch || !e.record) throw this.notHolder(module);
      const want = [...inSync].filter((n) => n !== this.self).sort();
      if (want.join() === e.record.inSync.join()) return e.record;
      e.record = withInSync(e.record, want);
      this.leases.set(module, { ...lease, record: e.record });
      this.emit({ type: 'record-committed', module, record: e.record, reason: reason('IN_SYNC_COMMITTED', `committed the in-sync set of ${module}: [${want.join(', ')}]`) });
      return e.record;
    });
  }

  transfer(module: string, to: string): Promise<number> {
    return this.call(module, () => {
      const e = this.service.entry(module);
      const lease = this.held(module);
      if (!lease || e.holder !== this.self || e.epoch !== lease.epoch) throw this.notHolder(module);
      e.epoch += 1;
      e.holder = to;
      e.freeAt = this.now + this.service.timings.lease;
      this.drop(module);
      this.emit({ type: 'transferred', module, epoch: e.epoch, to, reason: reason('LEASE_TRANSFERRED', `handed the lease of ${module} to ${to} at epoch ${e.epoch}`) });
      return e.epoch;
    });
  }

  async release(module: string): Promise<void> {
    const lease = this.leases.get(module);
    if (!lease) return;
    const e = this.service.entry(module);
    if (!this.service.unreachable.has(this.self) && e.holder === this.self && e.epoch === lease.epoch) e.freeAt = this.now;
    this.drop(module);
    this.emit({ type: 'released', module, epoch: lease.epoch, reason: reason('LEASE_RELEASED', `released the lease of ${module} at epoch ${lease.epoch}`) });
  }

  held(module: string): Lease | undefined {
    const lease = this.leases.get(module);
    return lease && lease.validUntil > this.now ? lease : undefined;
  }

  watch(listener: (event: LeaseEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const m of [...this.timers.keys()]) this.cancel(m);
  }

  private emit(event: LeaseEvent): void {
    for (const l of this.listeners) l(event);
  }

  private notHolder(module: string): CoordinationError {
    return new CoordinationError('SKYHA_ERR_COORD_NOT_HOLDER', reason('LEASE_NOT_HOLDER', `${this.self} does not hold the lease of ${module}`));
  }

  private hold(module: string, e: Entry, forced: boolean, code: string, text: string): Lease {
    const t = this.service.timings;
    e.freeAt = this.now + t.lease;
    const lease: Lease = { module, holder: this.self, epoch: e.epoch, validUntil: this.now + t.lease - t.driftMargin, record: e.record!, forced };
    this.leases.set(module, lease);
    this.schedule(module);
    this.emit({ type: 'acquired', lease, reason: reason(code, text) });
    return lease;
  }

  /** Renewal every renew_interval and the deadline, as the real stores do. */
  private schedule(module: string): void {
    this.cancel(module);
    const lease = this.leases.get(module);
    if (!lease || this.closed) return;
    const t = this.service.timings;
    const renew = this.service.clock.setTimer(t.renewInterval, () => {
      const e = this.service.entry(module);
      const current = this.leases.get(module);
      if (!current) return;
      if (!this.service.unreachable.has(this.self) && e.holder === this.self && e.epoch === current.epoch) {
        e.freeAt = this.now + t.lease;
        this.leases.set(module, { ...current, validUntil: this.now + t.lease - t.driftMargin, record: e.record ?? current.record });
        this.emit({ type: 'renewed', module, epoch: current.epoch, validUntil: this.now + t.lease - t.driftMargin });
      }
      this.schedule(module);
    });
    const deadline = this.service.clock.setTimer(lease.validUntil - this.now, () => {
      const current = this.leases.get(module);
      if (!current || current.validUntil > this.now) return;
      this.drop(module);
      this.emit({ type: 'lost', module, epoch: current.epoch, reason: reason('LEASE_EXPIRED', `stopped being primary of ${module}: the lease was not renewed before its end`) });
    });
    this.timers.set(module, [renew, deadline]);
  }

  private cancel(module: string): void {
    for (const c of this.timers.get(module) ?? []) c();
    this.timers.delete(module);
  }

  private drop(module: string): void {
    this.cancel(module);
    this.leases.delete(module);
  }
}
