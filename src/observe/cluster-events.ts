/**
 * Every member's events as one timeline, on every member: a member sends each
 * of its events to its peers over the links as it emits it, and asks a peer
 * for what it missed (a link that was down, an agent that restarted). The API
 * and console of any node thus show the whole cluster's story. Each event
 * gets a local `id` in order of arrival, which the event stream resumes from
 * (`Last-Event-ID`); `member` and `seq` identify it across the cluster.
 */
import type { SkyhaEvent } from './events.js';

export interface ClusterEvent extends SkyhaEvent {
  id: number;
}

export interface EventFilter {
  module?: string;
  member?: string;
}

export class ClusterEvents {
  private readonly items: ClusterEvent[] = [];
  private nextId = 1;
  private readonly last = new Map<string, { seq: number; at: string }>();
  private readonly listeners = new Set<(e: ClusterEvent) => void>();

  constructor(private readonly capacity = 2000) {}

  /** Adds an event unless it is known; returns it with its local id, or undefined for a duplicate. */
  add(event: SkyhaEvent): ClusterEvent | undefined {
    const last = this.last.get(event.member);
    // A member whose numbering went back and whose clock went forward lost its event file: a new series.
    if (last && event.seq <= last.seq && !(event.at > last.at && event.seq === 1)) return undefined;
    this.last.set(event.member, { seq: event.seq, at: event.at });
    const e: ClusterEvent = { ...event, id: this.nextId++ };
    this.items.push(e);
    if (this.items.length > this.capacity) this.items.shift();
    for (const l of this.listeners) l(e);
    return e;
  }

  /** The highest seq seen from `member` (0: none). */
  lastSeq(member: string): number {
    return this.last.get(member)?.seq ?? 0;
  }

  /** Events after local id `afterId`, oldest first, at most `limit` (the newest ones). */
  since(afterId: number, filter: EventFilter = {}, limit = 500): ClusterEvent[] {
    return this.items.filter((e) => e.id > afterId && matches(e, filter)).slice(-limit);
  }

  subscribe(listener: (e: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
}

export function matches(e: SkyhaEvent, filter: EventFilter): boolean {
  return (filter.module === undefined || e.module === filter.module) && (filter.member === undefined || e.member === filter.member);
}
