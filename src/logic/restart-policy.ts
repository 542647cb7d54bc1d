/**
 * Restart policy: what a node does when its application (one module on this
 * node) fails. Restart it locally while fewer than `maxRestarts` restarts
 * happened within the last `window`; otherwise give the module up on this node
 * (farm: it leaves the pool; mirror: it fails over).
 *
 * A given-up module stays given up until an operator clears it, like SafeKit
 * and Pacemaker (`crm_resource --cleanup`): an application that failed
 * `maxRestarts` times in a row is broken, and bringing it back by itself would
 * only flap the pool or the primary. An operator may opt in to `autoResetAfter`:
 * that long after the give-up the node tries again (its restart history is not
 * cleared, only aged by `window`, so with `autoResetAfter` < `window` one more
 * failure gives it up at once). `operator-reset` always clears the history.
 *
 * Restarts count when they are decided (the `restart-app` action), whatever
 * their outcome. A restart at time r counts while now − r < window. Failures
 * the driver reports while a restart is in progress count too: the driver
 * reports each failure once (checker down edges are de-duplicated by the
 * checker machine, and it resets its checkers when it restarts the
 * application). `app-started` and `app-healthy` only move the status shown to
 * people; they never clear the history, so an application that starts, passes
 * its checks and dies again is still given up after `maxRestarts`.
 *
 * When a timer is pending (only with `autoResetAfter`), a step ends with one
 * `wake` action: call `stepRestartPolicy` with `{type:'tick'}` at that time.
 */
import { formatDuration } from '../core/duration.js';
import { reason, type Reason, type Step } from './step.js';

export const RESTART_REASONS = {
  /** A restart within the budget of the window. */
  RESTART_APP: 'RESTART_APP',
  /** The budget is spent: the module is given up on this node. */
  RESTART_GIVE_UP: 'RESTART_GIVE_UP',
  /** An operator cleared the policy: history emptied and, if given up, the application is started again. */
  RESTART_RESET: 'RESTART_RESET',
  /** `autoResetAfter` passed since the give-up: the application is started again. */
  RESTART_AUTO_RESET: 'RESTART_AUTO_RESET',
} as const;
export type RestartReasonCode = (typeof RESTART_REASONS)[keyof typeof RESTART_REASONS];

/**
 * `starting`: a start or restart was decided and not yet reported done;
 * `started`: the process runs, its checkers have not yet said healthy;
 * `healthy`: its checkers say healthy; `given-up`: this node no longer runs it.
 */
export type RestartStatus = 'starting' | 'started' | 'healthy' | 'given-up';

export interface RestartPolicyConfig {
  readonly module: string;
  readonly node: string;
  readonly maxRestarts: number;
  readonly window: number;
  /** Optional: leave `given-up` by itself this long after the give-up. Unset: only an operator clears it. */
  readonly autoResetAfter?: number;
}

export interface RestartPolicyState {
  readonly config: RestartPolicyConfig;
  readonly status: RestartStatus;
  /** When `status` last changed. */
  readonly since: number;
  /** The times of the restarts still inside the window, oldest first. */
  readonly restarts: readonly number[];
  readonly lastFailure?: { readonly detail: string; readonly at: number };
  readonly givenUpAt?: number;
}

export type RestartPolicyEvent =
  | { readonly type: 'app-failed'; readonly detail: string }
  | { readonly type: 'app-started' }
  | { readonly type: 'app-healthy' }
  /** `by` names the operator or API client, for the sentence. */
  | { readonly type: 'operator-reset'; readonly by?: string }
  | { readonly type: 'tick' };

interface Target {
  readonly module: string;
  readonly node: string;
}
export type RestartPolicyAction =
  /** Stop (if still running) and start the application; `attempt` of `maxRestarts` within the window. */
  | (Target & { readonly type: 'restart-app'; readonly attempt: number; readonly reason: Reason })
  /** Stop the application and keep it stopped on this node. */
  | (Target & { readonly type: 'give-up'; readonly reason: Reason })
  /** Start the application again after a give-up was cleared. */
  | (Target & { readonly type: 'start-app'; readonly reason: Reason })
  /** The restart history was cleared while the module was not given up; nothing to start. */
  | (Target & { readonly type: 'restarts-cleared'; readonly reason: Reason })
  | { readonly type: 'wake'; readonly at: number };

export function initRestartPolicy(config: RestartPolicyConfig, now: number): RestartPolicyState {
  return { config, status: 'starting', since: now, restarts: [] };
}

export function stepRestartPolicy(state: RestartPolicyState, event: RestartPolicyEvent, now: number): Step<RestartPolicyState, RestartPolicyAction> {
  const { config } = state;
  const { module, node } = config;
  const win = formatDuration(config.window);
  const restarts = state.restarts.filter((r) => now - r < config.window);
  let next: RestartPolicyState = { ...state, restarts };
  const actions: RestartPolicyAction[] = [];

  switch (event.type) {
    case 'app-failed': {
      if (state.status === 'given-up') break;
      const lastFailure = { detail: event.detail, at: now };
      if (restarts.length < config.maxRestarts) {
        const attempt = restarts.length + 1;
        next = { ...next, status: 'starting', since: now, restarts: [...restarts, now], lastFailure };
        actions.push({ type: 'restart-app', module, node, attempt, reason: reason(RESTART_REASONS.RESTART_APP, `restarting ${module} on ${node} (restart ${attempt} of ${config.maxRestarts} in ${win}): ${event.detail}`) });
      } else {
        const why =
          config.maxRestarts === 0
            ? `giving ${module} up on ${node}: restarts are off (max_restarts 0); failure: ${event.detail}`
            : `giving ${module} up on ${node}: ${restarts.length} restarts in ${win} did not help; last failure: ${event.detail}`;
        next = { ...next, status: 'given-up', since: now, lastFailure, givenUpAt: now };
        actions.push({ type: 'give-up', module, node, reason: reason(RESTART_REASONS.RESTART_GIVE_UP, why) });
      }
      break;
    }
    case 'app-started':
      if (state.status === 'starting') next = { ...next, status: 'started', since: now };
      break;
    case 'app-healthy':
      if (state.status === 'starting' || state.status === 'started') next = { ...next, status: 'healthy', since: now };
      break;
    case 'operator-reset': {
      const who = event.by ?? 'an operator';
      if (state.status === 'given-up') {
        next = restart(next, now, []);
        actions.push({ type: 'start-app', module, node, reason: reason(RESTART_REASONS.RESTART_RESET, `${who} cleared ${module} on ${node}: starting it again`) });
      } else if (restarts.length > 0) {
        next = { ...next, restarts: [] };
        actions.push({ type: 'restarts-cleared', module, node, reason: reason(RESTART_REASONS.RESTART_RESET, `${who} cleared the restart history of ${module} on ${node} (${restarts.length} in ${win})`) });
      }
      break;
    }
    case 'tick':
      break;
  }

  // The optional automatic reset, checked on every event so a late tick is harmless.
  const auto = config.autoResetAfter;
  if (next.status === 'given-up' && auto !== undefined && next.givenUpAt !== undefined) {
    if (now - next.givenUpAt >= auto) {
      next = restart(next, now, next.restarts);
      actions.push({ type: 'start-app', module, node, reason: reason(RESTART_REASONS.RESTART_AUTO_RESET, `starting ${module} on ${node} again: ${formatDuration(auto)} passed since it was given up (auto reset)`) });
    } else {
      actions.push({ type: 'wake', at: next.givenUpAt + auto });
    }
  }
  return { state: next, actions };
}

/** Restarts (with their times) inside the window at `now`. */
export function restartsInWindow(state: RestartPolicyState, now: number): number {
  return state.restarts.filter((r) => now - r < state.config.window).length;
}

function restart(state: RestartPolicyState, now: number, restarts: readonly number[]): RestartPolicyState {
  // Rebuilt rather than spread, so `givenUpAt` is gone (no undefined keys: the state stays JSON round-trippable).
  return { config: state.config, status: 'starting', since: now, restarts, ...(state.lastFailure ? { lastFailure: state.lastFailure } : {}) };
}
