/**
 * A Clock that moves only when a test says so. `advance` fires due timers in
 * time order and lets promises settle between them, so async drivers behave
 * as they would in real time, only deterministic and instant.
 */
import type { CancelTimer, Clock } from '../core/clock.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): CancelTimer {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    await settle();
    for (;;) {
      const next = this.nextDue(until);
      if (!next) break;
      this.timers = this.timers.filter((x) => x !== next);
      this.t = Math.max(this.t, next.at);
      next.fn();
      await settle();
    }
    this.t = until;
    await settle();
  }

  /** Advances in small steps until `predicate` holds; throws after `deadline` ms of virtual time. */
  async until(predicate: () => boolean, { deadline = 10_000, step = 1 } = {}): Promise<number> {
    const start = this.t;
    while (!predicate()) {
      if (this.t - start >= deadline) throw new Error(`condition not met within ${deadline}ms of virtual time`);
      await this.advance(step);
    }
    return this.t - start;
  }

  /** Advances time until `promise` settles (as a driver's call would, in real time); fails after `deadline` ms. */
  async wait<T>(promise: Promise<T>, { deadline = 10_000, step = 1 } = {}): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => (settled = true));
    watched.catch(() => undefined);
    const start = this.t;
    await settle();
    while (!settled) {
      if (this.t - start >= deadline) throw new Error(`call did not settle within ${deadline}ms of virtual time`);
      await this.advance(step);
    }
    return watched;
  }

  private nextDue(until: number): Timer | undefined {
    let best: Timer | undefined;
    for (const x of this.timers) {
      if (x.at > until) continue;
      if (!best || x.at < best.at || (x.at === best.at && x.seq < best.seq)) best = x;
    }
    return best;
  }
}

/** Lets queued promise callbacks run (a few macrotask turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}
