/**
 * The schedule of one checker on one node: a first probe after a random
 * warm-up (so that checkers started together, and nodes restarted together,
 * do not probe in step), then one every `interval`, measured start to start.
 * A probe slower than the interval delays the next one: never two probes of
 * the same checker at once, so a hanging application is not buried in probes.
 */
import type { CheckerConfig } from '../config/model.js';
import { systemClock, type CancelTimer, type Clock } from '../core/clock.js';
import type { CheckResult } from '../logic/checker.js';

export interface CheckerRunnerOptions {
  clock?: Clock;
  /** In [0, 1); picks the warm-up delay. */
  random?: () => number;
}

export class CheckerRunner {
  private readonly clock: Clock;
  private readonly random: () => number;
  private cancel: CancelTimer | undefined;
  /** Bumped by start, stop and reset: a timer or a result of an older schedule is dropped. */
  private generation = 0;
  private running = false;
  private inFlight: Promise<unknown> | undefined;

  constructor(
    private readonly checker: Pick<CheckerConfig, 'interval' | 'warmup'>,
    private readonly run: () => Promise<CheckResult>,
    private readonly onResult: (result: CheckResult) => void,
    options: CheckerRunnerOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  get started(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** No probe starts and no result is delivered after this. */
  stop(): void {
    this.running = false;
    this.generation++;
    this.cancel?.();
    this.cancel = undefined;
  }

  /** A new schedule with a new warm-up (the application was restarted); a probe in flight is ignored. */
  reset(): void {
    if (!this.running) return;
    this.stop();
    this.start();
  }

  private schedule(): void {
    const generation = ++this.generation;
    const warmup = Math.max(0, this.checker.warmup) * this.random();
    this.cancel = this.clock.setTimer(warmup, () => void this.tick(generation));
  }

  private async tick(generation: number): Promise<void> {
    this.cancel = undefined;
    // A probe of an older schedule (before a reset) may still run: it finishes first.
    if (this.inFlight) await this.inFlight;
    if (generation !== this.generation) return;
    const startedAt = this.clock.now();
    const probe = Promise.resolve().then(this.run).then(
      (r) => r,
      (err: unknown): CheckResult => ({ ok: false, detail: `probe failed: ${err instanceof Error ? err.message : String(err)}` }),
    );
    this.inFlight = probe;
    const result = await probe;
    if (this.inFlight === probe) this.inFlight = undefined;
    if (generation !== this.generation) return;
    const next = Math.max(0, startedAt + Math.max(1, this.checker.interval) - this.clock.now());
    this.cancel = this.clock.setTimer(next, () => void this.tick(generation));
    this.onResult(result);
  }
}
