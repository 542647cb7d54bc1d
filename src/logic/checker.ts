/**
 * Checker: the rise/fall verdict of one probe of a module on one node, with
 * HAProxy's and keepalived's semantics. The driver runs the probe every
 * `interval` and feeds each result here; this machine only decides.
 *
 * - It starts `unknown`: neither healthy nor failed, so a node that just came
 *   up is not in rotation until it has proven itself.
 * - `rise` successes in a row make it `healthy`; `fall` failures in a row make
 *   it `failed`. Any result of the other kind resets the run, so `fall − 1`
 *   failures followed by a success change nothing.
 * - `reset` puts it back to `unknown` (the driver does so when it restarts the
 *   application, so the new process must prove itself and a down edge of the
 *   old one is not reported twice).
 */
import { reason, type Reason, type Step } from './step.js';

export const CHECKER_REASONS = {
  /** `rise` successes in a row. */
  CHECKER_UP: 'CHECKER_UP',
  /** `fall` failures in a row. */
  CHECKER_DOWN: 'CHECKER_DOWN',
  /** Back to `unknown` on the driver's request (the application was restarted). */
  CHECKER_RESET: 'CHECKER_RESET',
} as const;
export type CheckerReasonCode = (typeof CHECKER_REASONS)[keyof typeof CHECKER_REASONS];

export type CheckerStatus = 'unknown' | 'healthy' | 'failed';

export interface CheckerMachineConfig {
  /** The checker's name in the module's config. */
  readonly checker: string;
  readonly module: string;
  readonly node: string;
  readonly rise: number;
  readonly fall: number;
}

export interface CheckResult {
  readonly ok: boolean;
  /** What the probe saw, for people: "http 503 from http://10.0.0.1:8080/health". */
  readonly detail: string;
}

export interface CheckerState {
  readonly config: CheckerMachineConfig;
  readonly status: CheckerStatus;
  /** Consecutive successes (capped at `rise`) and failures (capped at `fall`); at most one is non-zero. */
  readonly successes: number;
  readonly failures: number;
  /** When `status` last changed. */
  readonly since: number;
  readonly last?: CheckResult & { readonly at: number };
}

export type CheckerEvent =
  | ({ readonly type: 'result' } & CheckResult)
  | { readonly type: 'reset'; readonly detail: string };

export interface CheckerChanged {
  readonly type: 'checker-changed';
  readonly checker: string;
  readonly module: string;
  readonly node: string;
  readonly from: CheckerStatus;
  readonly to: CheckerStatus;
  /** The detail of the result (or reset) that made the change. */
  readonly detail: string;
  readonly reason: Reason;
}
export type CheckerAction = CheckerChanged;

export function initChecker(config: CheckerMachineConfig, now: number): CheckerState {
  // rise/fall below 1 would mean "changes without evidence"; the schema forbids it, this keeps the machine total.
  return { config: { ...config, rise: Math.max(1, config.rise), fall: Math.max(1, config.fall) }, status: 'unknown', successes: 0, failures: 0, since: now };
}

export function stepChecker(state: CheckerState, event: CheckerEvent, now: number): Step<CheckerState, CheckerAction> {
  const { config } = state;
  const what = `checker ${config.checker} of ${config.module} on ${config.node}`;
  if (event.type === 'reset') {
    const next: CheckerState = { config, status: 'unknown', successes: 0, failures: 0, since: state.status === 'unknown' ? state.since : now, ...(state.last ? { last: state.last } : {}) };
    if (state.status === 'unknown') return { state: next, actions: [] };
    return { state: next, actions: [changed(state, 'unknown', event.detail, reason(CHECKER_REASONS.CHECKER_RESET, `${what} reset to unknown: ${event.detail}`))] };
  }

  const last = { ok: event.ok, detail: event.detail, at: now };
  const successes = event.ok ? Math.min(state.successes + 1, config.rise) : 0;
  const failures = event.ok ? 0 : Math.min(state.failures + 1, config.fall);
  let to = state.status;
  if (successes >= config.rise) to = 'healthy';
  else if (failures >= config.fall) to = 'failed';

  const next: CheckerState = { config, status: to, successes, failures, since: to === state.status ? state.since : now, last };
  if (to === state.status) return { state: next, actions: [] };
  const why =
    to === 'healthy'
      ? reason(CHECKER_REASONS.CHECKER_UP, `${what} up: ${plural(config.rise, 'success', 'successes')} in a row, last: ${event.detail}`)
      : reason(CHECKER_REASONS.CHECKER_DOWN, `${what} down: ${plural(config.fall, 'failure', 'failures')} in a row, last: ${event.detail}`);
  return { state: next, actions: [changed(state, to, event.detail, why)] };
}

/**
 * A module's health on a node from all its checkers: `failed` if any failed,
 * `healthy` if all are healthy, else `unknown`. A module without checkers is
 * `healthy` here: the driver supervises its process and reports an exit as
 * `app-failed` to the restart policy.
 */
export function moduleHealth(statuses: readonly CheckerStatus[]): CheckerStatus {
  if (statuses.includes('failed')) return 'failed';
  return statuses.every((s) => s === 'healthy') ? 'healthy' : 'unknown';
}

function changed(state: CheckerState, to: CheckerStatus, detail: string, why: Reason): CheckerChanged {
  const { checker, module, node } = state.config;
  return { type: 'checker-changed', checker, module, node, from: state.status, to, detail, reason: why };
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
