/**
 * Events: every role change, restart, give-up, fence and checker change is a
 * typed event with a reason code (DESIGN.md, guarantee 5). They go to the log
 * into a bounded ring that the status reads, and to the member's event file
 * (event-log.ts), from which a restarted member continues its numbering. The
 * ring forgets the oldest first; the log keeps everything.
 */
import type { EventLog } from './event-log.js';
import type { Logger } from './log.js';

export interface SkyhaEvent {
  seq: number;
  /** Wall-clock time, for people. */
  at: string;
  member: string;
  module?: string;
  reason: string;
  text: string;
  data?: Record<string, string | number>;
}

export class EventRing {
  private readonly items: SkyhaEvent[] = [];
  private seq = 0;
  private readonly listeners = new Set<(e: SkyhaEvent) => void>();

  constructor(
    private readonly member: string,
    private readonly log: Logger,
    private readonly capacity = 500,
    private readonly disk?: EventLog,
  ) {
    if (disk) {
      this.items.push(...disk.load(capacity));
      this.seq = this.items.at(-1)?.seq ?? 0;
    }
  }

  emit(e: { module?: string; reason: string; text: string; data?: Record<string, string | number>; level?: 'info' | 'warn' | 'error' }): SkyhaEvent {
    const event: SkyhaEvent = { seq: ++this.seq, at: new Date().toISOString(), member: this.member, ...(e.module ? { module: e.module } : {}), reason: e.reason, text: e.text, ...(e.data ? { data: e.data } : {}) };
    this.items.push(event);
    this.disk?.append(event);
    if (this.items.length > this.capacity) this.items.shift();
    this.log[e.level ?? 'info']({ event: true, reason: e.reason, ...(e.module ? { module: e.module } : {}), ...(e.data ? { data: e.data } : {}) }, e.text);
    for (const l of this.listeners) l(event);
    return event;
  }

  recent(limit = 100): SkyhaEvent[] {
    return this.items.slice(-limit);
  }

  /** Kept events with a seq above `seq`, oldest first. */
  after(seq: number): SkyhaEvent[] {
    return this.items.filter((e) => e.seq > seq);
  }

  subscribe(listener: (e: SkyhaEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
}
