/**
 * Makes every member's events everyone's (observe/cluster-events.ts): each
 * event goes to every peer as it is emitted, and every few seconds a member
 * asks each peer for events after the last one it has from it, which fills
 * what a down link or a restart lost. Events are rare; this costs little.
 */
import type { ClusterEvents } from '../observe/cluster-events.js';
import type { EventRing, SkyhaEvent } from '../observe/events.js';

/** `catchUp`: an answer to events-since (may start after a gap the peer's ring no longer holds), not a live event. */
export type EventRelayMessage = { type: 'events'; events: SkyhaEvent[]; catchUp?: boolean } | { type: 'events-since'; seq: number };

const CATCH_UP_INTERVAL = 5000;
const MAX_PER_MESSAGE = 200;

export class EventRelay {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly own: EventRing,
    private readonly all: ClusterEvents,
    private readonly peers: readonly string[],
    private readonly send: (to: string, message: EventRelayMessage) => boolean,
  ) {
    for (const e of own.recent(500)) all.add(e);
    own.subscribe((e) => {
      all.add(e);
      for (const p of this.peers) this.send(p, { type: 'events', events: [e] });
    });
  }

  start(): void {
    const catchUp = (): void => {
      for (const p of this.peers) {
        // The peer's seq we have: a gap after it is filled from its ring.
        this.send(p, { type: 'events-since', seq: this.all.lastSeq(p) });
      }
    };
    catchUp();
    this.timer = setInterval(catchUp, CATCH_UP_INTERVAL);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  onMessage(from: string, message: EventRelayMessage): void {
    if (message.type === 'events-since') {
      const missing = this.own.after(message.seq);
      // A peer that has more than we do saw an earlier life of ours (lost event file): send everything we keep.
      const send = message.seq > (this.own.recent(1)[0]?.seq ?? 0) ? this.own.recent(MAX_PER_MESSAGE) : missing.slice(0, MAX_PER_MESSAGE);
      if (send.length > 0) this.send(from, { type: 'events', events: send, catchUp: true });
      return;
    }
    for (const e of message.events) {
      if (e.member !== from) continue;
      const last = this.all.lastSeq(from);
      // A live event after a gap (a link that was down, events from before the link came up): the catch-up brings what is between, and this one.
      if (!message.catchUp && e.seq > last + 1) {
        this.send(from, { type: 'events-since', seq: last });
        continue;
      }
      this.all.add(e);
    }
  }
}
