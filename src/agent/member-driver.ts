/**
 * Drives the pure member machine (src/logic/member.ts) on a real clock: it
 * feeds inputs one at a time, keeps one timer for the machine's next wake, and
 * hands every action, in order, to the agent's effects. The simulator drives
 * the same machine; only this file and the effects differ.
 *
 * Actions are executed synchronously and in order: a voter's promise is on
 * disk before the reply that makes it is sent (persist-voter comes first).
 */
import type { Clock, CancelTimer } from '../core/clock.js';
import { initMember, stepMember, type MemberAction, type MemberConfig, type MemberDisk, type MemberInput, type MemberState } from '../logic/member.js';

export type ActionHandler = (action: MemberAction) => void;

export class MemberDriver {
  private state: MemberState;
  private timer: CancelTimer | undefined;
  private timerAt = Infinity;
  private busy = false;
  private readonly pending: MemberInput[] = [];
  private stopped = false;

  constructor(
    config: MemberConfig,
    disk: MemberDisk | undefined,
    private readonly clock: Clock,
    private readonly onAction: ActionHandler,
  ) {
    this.state = initMember(config, disk, clock.now());
  }

  /** The machine's state, read-only, for status and health. */
  get current(): MemberState {
    return this.state;
  }

  start(): void {
    this.input({ type: 'tick' });
  }

  stop(): void {
    this.stopped = true;
    this.timer?.();
    this.timer = undefined;
  }

  /**
   * Feeds one input. Re-entrant calls (an effect that reports back at once,
   * e.g. an application that stopped already) are queued and run after the
   * current step, so each step sees a consistent state.
   */
  input(input: MemberInput): void {
    if (this.stopped) return;
    this.pending.push(input);
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.pending.length > 0) {
        const next = this.pending.shift()!;
        const step = stepMember(this.state, next, this.clock.now());
        this.state = step.state;
        let wake: number | undefined;
        for (const a of step.actions) {
          if (a.type === 'wake') wake = a.at;
          else this.onAction(a);
        }
        if (wake !== undefined) this.schedule(wake);
      }
    } finally {
      this.busy = false;
    }
  }

  private schedule(at: number): void {
    if (this.stopped) return;
    // The machine reports its earliest wake after every step: the newest answer replaces the old timer.
    if (this.timer && at === this.timerAt) return;
    this.timer?.();
    this.timerAt = at;
    this.timer = this.clock.setTimer(at - this.clock.now(), () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.input({ type: 'tick' });
    });
  }
}
