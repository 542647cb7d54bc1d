/**
 * Cooperative time slices for long loops of small steps. A loop whose steps
 * are synchronous system calls and microtasks (lstat, a record encoded, a
 * write that fits the socket's buffer) never lets the event loop run:
 * heartbeats, lease renewals and incoming messages wait until it ends. A
 * resync of 40,000 directories did that for seconds, and the primary lost
 * its lease. Such a loop calls `pause()` after each step; it yields to the
 * event loop once the slice is used up.
 */
import { setImmediate as immediate } from 'node:timers/promises';

/** Long enough that yielding costs little, short against the tightest heartbeat (LAN: 100 ms). */
export const SLICE_MS = 10;

export class TimeSlice {
  private startedAt = performance.now();

  constructor(private readonly sliceMs = SLICE_MS) {}

  /** Resolves at once inside the slice; after it, on the next turn of the event loop (timers and I/O ran). */
  async pause(): Promise<void> {
    if (performance.now() - this.startedAt < this.sliceMs) return;
    await immediate();
    this.startedAt = performance.now();
  }
}
