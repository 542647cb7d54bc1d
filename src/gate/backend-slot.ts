/**
 * Everything the built-in gate keeps about one backend: what the cluster
 * says (health, admin state, weight), what the gate saw itself (observed
 * health: consecutive failures, latency), its connection pool, the requests
 * in flight on it, and its counters.
 */
import { type BackendReport, type BackendState, keepsOpen, takesNew } from './backend.js';
import { ObservedHealth, type ObservedHealthConfig } from './observed-health.js';
import { UpstreamPool, type PoolLimits } from './upstream-pool.js';

/** Something in flight on a backend that must end if the backend goes out (an HTTP exchange, a TCP tunnel). */
export interface InFlight {
  /** The backend may no longer serve it: retry elsewhere if still possible, else close. */
  abort(why: string): void;
  /** The gate's sweep (every 100 ms): end it if it waited too long. */
  expire?(now: number): void;
}

export class BackendSlot {
  state: BackendState;
  readonly pool: UpstreamPool;
  readonly observed: ObservedHealth;
  readonly inFlight = new Set<InFlight>();
  requests = 0;
  errors = 0;
  retries = 0;
  /** Wall clock, ms: when a request last went to this backend (0: never). */
  lastRequestAt = 0;

  constructor(state: BackendState, limits: PoolLimits, observed: ObservedHealthConfig, now: () => number) {
    this.state = state;
    this.pool = new UpstreamPool(state.host, state.port, limits);
    this.observed = new ObservedHealth(observed, now);
  }

  get node(): string {
    return this.state.node;
  }

  /** Eligible for new requests by the cluster's say (the gate's own judgement comes on top). */
  get takesNew(): boolean {
    return takesNew(this.state);
  }

  get keepsOpen(): boolean {
    return keepsOpen(this.state);
  }

  get active(): number {
    return this.inFlight.size;
  }

  /** Ends everything in flight (the backend went down or into maintenance). */
  abortAll(why: string): void {
    for (const f of [...this.inFlight]) f.abort(why);
  }

  report(): BackendReport {
    const p99 = this.observed.p99();
    return {
      node: this.node,
      health: this.state.health,
      admin: this.state.admin,
      observed: this.observed.state,
      activeRequests: this.inFlight.size,
      requests: this.requests,
      errors: this.errors,
      retries: this.retries,
      ...(this.lastRequestAt > 0 ? { lastRequestAt: this.lastRequestAt } : {}),
      ...(p99 !== undefined ? { p99 } : {}),
    };
  }
}
