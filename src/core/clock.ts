/**
 * Time for the drivers. The decision core never reads a clock; drivers give
 * it `now` from a Clock and wake it with the Clock's timers. Production uses
 * the monotonic system clock; tests use a ManualClock (src/testing/).
 */

export type CancelTimer = () => void;

export interface Clock {
  /** Milliseconds on a monotonic clock (never goes back, unrelated to wall time). */
  now(): number;
  /** Runs `fn` once, `ms` from now. */
  setTimer(ms: number, fn: () => void): CancelTimer;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(t);
  },
};
