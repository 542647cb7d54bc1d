/**
 * A mirror module on this node: the bridge between the member machine (who
 * is primary, under which lease) and the application supervisor (the process
 * and its keeper). The machine asks to start, extend, stop; this reports
 * back started and stopped, and runs the restart policy on failures: a
 * restart is a stop followed by `app-stopped` (the role machine starts it
 * again under the lease it still holds), a give-up is `given-up` (the role
 * machine stops it and releases the lease, so an in-sync secondary takes
 * over).
 *
 * A stop is reported only once what the application wrote before it is
 * shipped (`hooks.settle`): a switchover's final barrier, which the report
 * starts, then covers its last writes, and a restart does not leave them
 * behind. If they could not all be shipped, the report says why, and the
 * role machine aborts a hand-over rather than move the role without them. A start asked for meanwhile waits for it, like one asked for
 * while the application was still stopping.
 */
import type { Clock } from '../core/clock.js';
import type { MirrorModuleConfig } from '../config/model.js';
import type { MemberInput } from '../logic/member.js';
import { initRestartPolicy, stepRestartPolicy, type RestartPolicyEvent, type RestartPolicyState } from '../logic/restart-policy.js';
import type { Reason } from '../logic/step.js';
import type { AppSupervisor } from './app-supervisor.js';

export class MirrorModule {
  policy: RestartPolicyState;
  /** A start the machine asked for while the previous run was still stopping. */
  private pendingStart: { epoch: number; validUntil: number } | undefined;
  /** The member machine has been told the application started and not yet that it stopped. */
  private reportedRunning = false;
  /**
   * A run was started and its stop is not yet reported to the machine: from the start until the supervisor's
   * `stopped`, then while its last writes are shipped. The supervisor says `stopped` only after its failure
   * (which may give up, and the machine then asks for a stop): that stop too waits for the report.
   */
  private stopOwed = false;
  epoch = 0;

  constructor(
    readonly config: MirrorModuleConfig,
    readonly app: AppSupervisor,
    node: string,
    private readonly clock: Clock,
    private readonly input: (input: MemberInput) => void,
    private readonly emit: (module: string, reason: Reason, data?: Record<string, string | number>) => void,
    private readonly hooks: {
      /** Ships what the stopped application wrote; resolves when done (undefined) or given up (why), never rejects. */
      settle(): Promise<string | undefined>;
      /** The application may be running (a start is under way) or is surely stopped. */
      running(maybe: boolean): void;
    } = { settle: () => Promise.resolve(undefined), running: () => undefined },
  ) {
    this.policy = initRestartPolicy({ module: config.name, node, maxRestarts: config.restart.maxRestarts, window: config.restart.window }, clock.now());
  }

  get givenUp(): boolean {
    return this.policy.status === 'given-up';
  }

  // --- from the member machine ---

  startApp(epoch: number, validUntil: number): void {
    this.epoch = epoch;
    if (this.app.status === 'stopped' && !this.stopOwed) this.start({ role: 'primary', epoch, validUntil });
    else this.pendingStart = { epoch, validUntil };
  }

  private start(run: { role: 'primary'; epoch: number; validUntil: number }): void {
    // Before the process exists: its writes are this node's own from the first one.
    this.hooks.running(true);
    this.stopOwed = true;
    this.app.start(run);
  }

  extendApp(validUntil: number): void {
    if (this.pendingStart) this.pendingStart.validUntil = Math.max(this.pendingStart.validUntil, validUntil);
    this.app.extend(validUntil);
  }

  stopApp(why: Reason): void {
    this.pendingStart = undefined;
    if (this.app.status === 'stopped') {
      // Nothing runs: say so at once, or the role machine waits for a stop that never comes (a run's stop still
      // owed is said when its last writes are shipped).
      if (!this.stopOwed) this.input({ type: 'app-stopped', module: this.config.name });
      return;
    }
    void this.app.stop(why.text);
  }

  /** The lease is no longer held: nothing may run under it, not even a stop script's worth. */
  leaseEnded(why: Reason): void {
    this.pendingStart = undefined;
    if (this.app.status !== 'stopped') void this.app.fence(why.text);
  }

  // --- from the application supervisor ---

  onStarted(): void {
    this.feed({ type: 'app-started' });
    this.reportedRunning = true;
    this.input({ type: 'app-started', module: this.config.name });
  }

  onHealthy(): void {
    this.feed({ type: 'app-healthy' });
  }

  onStopped(): void {
    void this.hooks.settle().then((unshipped) => {
      this.stopOwed = false;
      const pending = this.pendingStart;
      this.pendingStart = undefined;
      if (pending) {
        this.start({ role: 'primary', epoch: pending.epoch, validUntil: pending.validUntil });
        return;
      }
      this.hooks.running(this.app.status !== 'stopped');
      this.reportedRunning = false;
      this.input({ type: 'app-stopped', module: this.config.name, ...(unshipped !== undefined ? { unshipped } : {}) });
    });
  }

  onFailed(detail: string): void {
    this.feed({ type: 'app-failed', detail });
  }

  reset(by?: string): void {
    this.feed({ type: 'operator-reset', ...(by ? { by } : {}) });
    this.input({ type: 'operator', module: this.config.name, command: 'reset' });
  }

  get running(): boolean {
    return this.reportedRunning;
  }

  private feed(event: RestartPolicyEvent): void {
    const step = stepRestartPolicy(this.policy, event, this.clock.now());
    this.policy = step.state;
    for (const a of step.actions) {
      switch (a.type) {
        case 'restart-app':
          this.emit(this.config.name, a.reason, { attempt: a.attempt });
          // Stopped, the role machine (still primary under its lease) asks for a new start.
          if (this.app.status !== 'stopped') void this.app.stop(a.reason.text);
          break;
        case 'give-up':
          this.emit(this.config.name, a.reason);
          this.input({ type: 'given-up', module: this.config.name, reason: a.reason });
          break;
        case 'start-app':
        case 'restarts-cleared':
          this.emit(this.config.name, a.reason);
          break;
        case 'wake':
          break;
      }
    }
  }
}
