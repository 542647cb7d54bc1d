/**
 * What a gate engine is told about the nodes of one farm module, and what it
 * reports back. Both engines (the built-in one and HAProxy) take the same
 * input, so the agent's controller does not know which one runs.
 *
 * Two axes per backend, as HAProxy has them:
 * - `health`: `up` or `down`, from the cluster (membership, the node's own
 *   checkers, the restart policy) — the farm pool's position `out` for any
 *   reason but `maint`;
 * - `admin`: `ready`, `drain` (no new requests, open ones finish) or `maint`
 *   (out, open connections closed), set by an operator.
 * A backend gets new requests iff `up` and `ready`.
 */
import type { AdminState } from '../logic/farm-pool.js';

export type BackendHealth = 'up' | 'down';

export interface BackendSpec {
  /** The node's name: the backend's identity in logs, metrics and HAProxy's config. */
  readonly node: string;
  readonly host: string;
  readonly port: number;
  /** Round-robin weight, 0..256; 0 sends nothing new. */
  readonly weight: number;
}

export interface BackendState extends BackendSpec {
  readonly health: BackendHealth;
  readonly admin: AdminState;
}

/** The gate's own view of a backend, beyond what it was told. */
export interface BackendReport {
  readonly node: string;
  readonly health: BackendHealth;
  readonly admin: AdminState;
  /** The gate's passive judgement: `ok`, `failing` (consecutive errors) or `slow` (recent p99 above `slow_p99`). */
  readonly observed: 'ok' | 'failing' | 'slow';
  readonly activeRequests: number;
  readonly requests: number;
  readonly errors: number;
  readonly retries: number;
  /** When the gate last sent a request (or a TCP connection) to this backend, ms since the epoch; absent if never. Engine haproxy: to the second. */
  readonly lastRequestAt?: number;
  /** Recent p99 of time to response headers, ms; undefined until there are samples. */
  readonly p99?: number;
}

export interface GateReport {
  readonly module: string;
  readonly engine: 'builtin' | 'haproxy';
  readonly port: number;
  readonly requests: number;
  /** Requests answered with an error by the gate itself (no backend, all attempts failed, timeouts). */
  readonly failed: number;
  readonly retries: number;
  readonly activeConnections: number;
  readonly backends: readonly BackendReport[];
}

export interface GateEngine {
  start(): Promise<void>;
  /** The whole set of backends with their states; the engine applies what changed, without dropping what did not. */
  update(backends: readonly BackendState[]): void;
  report(): GateReport;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Whether a backend takes new requests, by the two axes. */
export function takesNew(b: Pick<BackendState, 'health' | 'admin' | 'weight'>): boolean {
  return b.health === 'up' && b.admin === 'ready' && b.weight > 0;
}

/** Whether a backend's open connections and requests may go on. */
export function keepsOpen(b: Pick<BackendState, 'health' | 'admin'>): boolean {
  return b.health === 'up' && b.admin !== 'maint';
}

/** The affinity cookie of `balance: cookie`, the same with both engines so that clients keep their node across a change of engine. */
export function defaultCookieName(module: string): string {
  return `SKYHA_${module.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}
