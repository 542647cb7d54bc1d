/**
 * A farm module on this node: the application runs here whenever this node
 * is in service, restarted by the restart policy when it fails and given up
 * after `max_restarts` failures within `window` (it then stays stopped until
 * an operator resets it). The gate and the pool (issue: farm modules) read
 * `inService` and the checkers' health.
 */
import type { Clock, CancelTimer } from '../core/clock.js';
import type { FarmModuleConfig } from '../config/model.js';
import { initRestartPolicy, stepRestartPolicy, type RestartPolicyEvent, type RestartPolicyState } from '../logic/restart-policy.js';
import type { Reason } from '../logic/step.js';
import type { AppSupervisor } from './app-supervisor.js';

export class FarmModule {
  policy: RestartPolicyState;
  private wake: CancelTimer | undefined;
  private stopping = false;
  /** Stopped by an operator (`skyha stop`): not started, not restarted, out of the gates, until released. */
  held = false;

  constructor(
    readonly config: FarmModuleConfig,
    readonly app: AppSupervisor,
    node: string,
    private readonly clock: Clock,
    private readonly emit: (module: string, reason: Reason, data?: Record<string, string | number>) => void,
  ) {
    this.policy = initRestartPolicy({ module: config.name, node, maxRestarts: config.restart.maxRestarts, window: config.restart.window }, clock.now());
  }

  get givenUp(): boolean {
    return this.policy.status === 'given-up';
  }

  /** In service here: running, healthy and not given up. What `/health/MODULE` answers for a farm module. */
  get inService(): boolean {
    return !this.held && !this.givenUp && this.app.status === 'running' && this.app.health === 'healthy';
  }

  start(): void {
    if (this.held) return;
    this.app.start({ role: 'active', epoch: 0 });
  }

  /** An operator stops the module here: the application stops and stays stopped. */
  async hold(why: string): Promise<void> {
    this.held = true;
    this.wake?.();
    await this.app.stop(why);
  }

  /** An operator starts it again (a module given up here is given a fresh restart history). */
  release(by: string): void {
    if (!this.held) return;
    this.held = false;
    if (this.givenUp) this.reset(by);
    else if (this.app.status === 'stopped') this.start();
  }

  onStarted(): void {
    this.feed({ type: 'app-started' });
  }

  onHealthy(): void {
    this.feed({ type: 'app-healthy' });
  }

  onFailed(detail: string): void {
    if (this.stopping || this.held) return;
    this.feed({ type: 'app-failed', detail });
  }

  /** Operator: clear the restart history and, if given up, start again. */
  reset(by?: string): void {
    this.feed({ type: 'operator-reset', ...(by ? { by } : {}) });
  }

  async shutdown(why: string): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.app.stop(why);
  }

  private feed(event: RestartPolicyEvent): void {
    const step = stepRestartPolicy(this.policy, event, this.clock.now());
    this.policy = step.state;
    for (const a of step.actions) {
      switch (a.type) {
        case 'restart-app':
          this.emit(this.config.name, a.reason, { attempt: a.attempt });
          void this.app.stop(a.reason.text).then(() => {
            if (!this.stopping && !this.held && !this.givenUp && this.app.status === 'stopped') this.app.start({ role: 'active', epoch: 0 });
          });
          break;
        case 'give-up':
          this.emit(this.config.name, a.reason);
          void this.app.stop(a.reason.text);
          break;
        case 'start-app':
          this.emit(this.config.name, a.reason);
          if (this.app.status === 'stopped' && !this.held) this.app.start({ role: 'active', epoch: 0 });
          break;
        case 'restarts-cleared':
          this.emit(this.config.name, a.reason);
          break;
        case 'wake':
          this.wake?.();
          this.wake = this.clock.setTimer(a.at - this.clock.now(), () => this.feed({ type: 'tick' }));
          break;
      }
    }
  }
}
