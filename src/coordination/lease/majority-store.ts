/**
 * The built-in CoordinationStore: the majority lease among nodes and
 * witnesses (docs/design/lease.md). It drives the pure lease client with a
 * Clock and a Transport, turns its actions into messages, timers, events and
 * settled promises. Every member also runs a VoterHost on the same transport.
 */
import type { CancelTimer, Clock } from '../../core/clock.js';
import type { ErrorCode } from '../../core/errors.js';
import type { Transport } from '../../link/memory-network.js';
import { initClient, LEASE_REASONS, stepClient, type ClientAction, type ClientEvent, type ClientState, type ClientTimings } from '../../logic/lease/client.js';
import type { LeaseMessage, LeaseRecord } from '../../logic/lease/messages.js';
import { reason } from '../../logic/step.js';
import { CoordinationError, type AcquireOptions, type CoordinationStore, type Lease, type LeaseEvent } from '../store.js';
import { VoterHost, type VoterDiskStore } from './voter-host.js';

const ERROR_FOR: Record<string, ErrorCode> = {
  [LEASE_REASONS.LEASE_PROMISED_ELSEWHERE]: 'SKYHA_ERR_COORD_HELD',
  [LEASE_REASONS.LEASE_NO_MAJORITY]: 'SKYHA_ERR_COORD_NO_MAJORITY',
  [LEASE_REASONS.LEASE_NOT_IN_SYNC]: 'SKYHA_ERR_COORD_NOT_IN_SYNC',
  [LEASE_REASONS.LEASE_UNKNOWN_STATE]: 'SKYHA_ERR_COORD_UNKNOWN_STATE',
};

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

export interface MajorityMemberOptions {
  self: string;
  /** Every voter of the cluster: nodes and witnesses. */
  voters: readonly string[];
  timings: ClientTimings;
  clock: Clock;
  transport: Transport<LeaseMessage>;
  disk: VoterDiskStore;
  /** Nodes run a lease client; witnesses only vote. */
  isNode: boolean;
}

/** One member of the majority lease: its voter, and (on nodes) its store. */
export function startMajorityMember(options: MajorityMemberOptions): { voter: VoterHost; store?: MajorityLeaseStore } {
  const voter = new VoterHost(options.self, options.voters, options.timings, options.clock, options.disk, (to, m) => options.transport.send(to, m));
  const store = options.isNode ? new MajorityLeaseStore(options) : undefined;
  options.transport.onReceive((from, message) => {
    if (message.type === 'lease-reply') store?.receive(from, message);
    else voter.handle(from, message);
  });
  return store ? { voter, store } : { voter };
}

export class MajorityLeaseStore implements CoordinationStore {
  readonly self: string;
  private state: ClientState;
  private wake: CancelTimer | undefined;
  private closed = false;
  private listeners = new Set<(e: LeaseEvent) => void>();
  private leases = new Map<string, Lease>();
  private acquiring = new Map<string, Waiter<Lease>>();
  private committing = new Map<string, { inSync: string; waiter: Waiter<LeaseRecord> }[]>();
  private transferring = new Map<string, Waiter<number>>();

  constructor(private readonly options: MajorityMemberOptions) {
    this.self = options.self;
    this.state = initClient(options.self, options.voters, options.timings);
  }

  acquire(module: string, opts: AcquireOptions): Promise<Lease> {
    const held = this.leases.get(module);
    if (held) return Promise.resolve(held);
    return this.wait(this.acquiring, module, { type: 'acquire', module, dataEpoch: opts.dataEpoch, force: opts.force ?? false });
  }

  adopt(module: string, epoch: number, inSync: readonly string[], dataEpoch: number): Promise<Lease> {
    return this.wait(this.acquiring, module, { type: 'adopt', module, epoch, inSync, dataEpoch });
  }

  commitInSync(module: string, inSync: readonly string[]): Promise<LeaseRecord> {
    const lease = this.leases.get(module);
    if (!lease) return Promise.reject(this.notHolder(module));
    const want = [...inSync].filter((n) => n !== this.self).sort();
    if (want.join() === lease.record.inSync.join()) return Promise.resolve(lease.record);
    return new Promise((resolve, reject) => {
      const list = this.committing.get(module) ?? [];
      list.push({ inSync: want.join(), waiter: { resolve, reject } });
      this.committing.set(module, list);
      this.dispatch({ type: 'set-in-sync', module, inSync: want });
    });
  }

  transfer(module: string, to: string): Promise<number> {
    if (!this.leases.has(module)) return Promise.reject(this.notHolder(module));
    return this.wait(this.transferring, module, { type: 'transfer', module, to });
  }

  async release(module: string): Promise<void> {
    this.dispatch({ type: 'release', module });
  }

  held(module: string): Lease | undefined {
    const lease = this.leases.get(module);
    return lease && lease.validUntil > this.options.clock.now() ? lease : undefined;
  }

  watch(listener: (event: LeaseEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
  }

  /** A reply from a voter, delivered by the member's transport. */
  receive(from: string, message: LeaseMessage): void {
    if (message.type === 'lease-reply') this.dispatch({ type: 'receive', from, message });
  }

  private wait<T>(map: Map<string, Waiter<T>>, module: string, event: ClientEvent): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const prior = map.get(module);
      map.set(module, {
        resolve: (v) => {
          prior?.resolve(v);
          resolve(v);
        },
        reject: (e) => {
          prior?.reject(e);
          reject(e);
        },
      });
      this.dispatch(event);
    });
  }

  private notHolder(module: string): CoordinationError {
    return new CoordinationError('SKYHA_ERR_COORD_NOT_HOLDER', reason('LEASE_NOT_HOLDER', `${this.self} does not hold the lease of ${module}`));
  }

  private dispatch(event: ClientEvent): void {
    if (this.closed) return;
    const step = stepClient(this.state, event, this.options.clock.now());
    this.state = step.state;
    for (const action of step.actions) this.carryOut(action);
  }

  private emit(event: LeaseEvent): void {
    for (const l of this.listeners) l(event);
  }

  private settle<T>(map: Map<string, Waiter<T>>, module: string, f: (w: Waiter<T>) => void): void {
    const w = map.get(module);
    if (!w) return;
    map.delete(module);
    f(w);
  }

  private carryOut(a: ClientAction): void {
    switch (a.type) {
      case 'send':
        this.options.transport.send(a.to, a.message);
        return;
      case 'wake': {
        this.wake?.();
        this.wake = this.options.clock.setTimer(a.at - this.options.clock.now(), () => this.dispatch({ type: 'tick' }));
        return;
      }
      case 'lease-acquired': {
        const lease: Lease = { module: a.module, holder: this.self, epoch: a.epoch, validUntil: a.validUntil, record: a.record, forced: a.forced };
        this.leases.set(a.module, lease);
        this.emit({ type: 'acquired', lease, reason: a.reason });
        this.settle(this.acquiring, a.module, (w) => w.resolve(lease));
        return;
      }
      case 'acquire-failed': {
        const err = new CoordinationError(ERROR_FOR[a.reason.code] ?? 'SKYHA_ERR_COORD_NO_MAJORITY', a.reason, { holder: a.holder, retryAfter: a.retryAfter });
        this.settle(this.acquiring, a.module, (w) => w.reject(err));
        return;
      }
      case 'lease-renewed': {
        const lease = this.leases.get(a.module);
        if (lease) this.leases.set(a.module, { ...lease, validUntil: a.validUntil });
        this.emit({ type: 'renewed', module: a.module, epoch: a.epoch, validUntil: a.validUntil });
        return;
      }
      case 'record-committed': {
        const lease = this.leases.get(a.module);
        if (lease) this.leases.set(a.module, { ...lease, record: a.record });
        this.emit({ type: 'record-committed', module: a.module, record: a.record, reason: a.reason });
        const list = this.committing.get(a.module) ?? [];
        const done = list.filter((c) => c.inSync === a.record.inSync.join());
        this.committing.set(a.module, list.filter((c) => !done.includes(c)));
        for (const c of done) c.waiter.resolve(a.record);
        return;
      }
      case 'lease-at-risk':
        this.emit({ type: 'at-risk', module: a.module, epoch: a.epoch, validUntil: a.validUntil, reason: a.reason });
        return;
      case 'lease-lost':
      case 'released':
      case 'transferred': {
        this.leases.delete(a.module);
        if (a.type === 'lease-lost') this.emit({ type: 'lost', module: a.module, epoch: a.epoch, reason: a.reason });
        else if (a.type === 'released') this.emit({ type: 'released', module: a.module, epoch: a.epoch, reason: a.reason });
        else {
          this.emit({ type: 'transferred', module: a.module, epoch: a.epoch, to: a.to, reason: a.reason });
          this.settle(this.transferring, a.module, (w) => w.resolve(a.epoch));
        }
        const err = new CoordinationError('SKYHA_ERR_COORD_NOT_HOLDER', a.reason);
        for (const c of this.committing.get(a.module) ?? []) c.waiter.reject(err);
        this.committing.delete(a.module);
        this.settle(this.transferring, a.module, (w) => w.reject(err));
        return;
      }
    }
  }
}
