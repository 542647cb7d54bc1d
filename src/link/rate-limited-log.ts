/**
 * A log that cannot be flooded. Whatever a remote party can trigger (garbage
 * bytes, bad certificates, a peer that flaps) is logged through this: at most
 * one line per key per interval, and the next line that gets through says how
 * many were suppressed in between, so nothing is silent and nothing floods.
 *
 * Key by reason for anything a stranger can cause (a stranger can vary every
 * other field); key by reason and peer only where the peers are a known set.
 * No timers: suppressed counts are reported by the next line or by flush().
 */
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../observe/log.js';

export type RateLimitedLevel = 'debug' | 'info' | 'warn' | 'error';

export const DEFAULT_LOG_INTERVAL_MS = 5_000;

interface Slot {
  lastAt: number;
  suppressed: number;
  level: RateLimitedLevel;
  reason: string;
}

export class RateLimitedLog {
  private readonly slots = new Map<string, Slot>();
  private readonly intervalMs: number;
  private readonly clock: Pick<Clock, 'now'>;

  constructor(
    private readonly logger: Logger,
    options: { intervalMs?: number; clock?: Pick<Clock, 'now'> } = {},
  ) {
    this.intervalMs = options.intervalMs ?? DEFAULT_LOG_INTERVAL_MS;
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Logs `msg` with `fields` and `reason` unless a line with the same key
   * (default: the reason) went out less than the interval ago. Returns whether
   * the line was written.
   */
  log(level: RateLimitedLevel, reason: string, fields: Record<string, unknown>, msg: string, key: string = reason): boolean {
    const now = this.clock.now();
    const slot = this.slots.get(key);
    if (slot && now - slot.lastAt < this.intervalMs) {
      slot.suppressed++;
      return false;
    }
    const suppressed = slot?.suppressed ?? 0;
    this.slots.set(key, { lastAt: now, suppressed: 0, level, reason });
    this.logger[level]({ ...fields, reason, ...(suppressed > 0 ? { suppressed } : {}) }, suppressed > 0 ? `${msg} (${suppressed} similar lines suppressed)` : msg);
    return true;
  }

  /** Reports every count still suppressed (at shutdown, so the last burst is not lost). */
  flush(): void {
    for (const [key, slot] of this.slots) {
      if (slot.suppressed === 0) continue;
      this.logger[slot.level]({ reason: slot.reason, suppressed: slot.suppressed, key }, `${slot.suppressed} similar lines suppressed`);
      slot.suppressed = 0;
    }
  }
}
