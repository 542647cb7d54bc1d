/**
 * An in-memory network for drivers under test: members exchange messages
 * through it with a fixed delay on a Clock, and a test can crash members or
 * cut links. The links of the real agent (mutual TLS) offer the same
 * `Transport` face.
 */
import type { Clock } from '../core/clock.js';

export interface Transport<M> {
  readonly self: string;
  send(to: string, message: M): void;
  onReceive(handler: (from: string, message: M) => void): void;
}

export class MemoryNetwork<M> {
  private handlers = new Map<string, (from: string, message: M) => void>();
  readonly down = new Set<string>();
  private cut = new Set<string>();
  delivered = 0;
  dropped = 0;

  constructor(
    private readonly clock: Clock,
    private readonly delay = 1,
  ) {}

  transport(self: string): Transport<M> {
    return {
      self,
      send: (to, message) => this.send(self, to, message),
      onReceive: (handler) => void this.handlers.set(self, handler),
    };
  }

  private send(from: string, to: string, message: M): void {
    if (this.down.has(from) || this.cut.has(`${from}>${to}`)) {
      this.dropped++;
      return;
    }
    // A copy, as a wire would make: nobody shares objects across members.
    const copy = structuredClone(message);
    this.clock.setTimer(from === to ? 0 : this.delay, () => {
      const handler = this.handlers.get(to);
      if (!handler || this.down.has(to) || this.cut.has(`${from}>${to}`)) {
        this.dropped++;
        return;
      }
      this.delivered++;
      handler(from, copy);
    });
  }

  /** Cuts every link between `member` and the others, both ways. */
  isolate(member: string, others: Iterable<string>): void {
    for (const o of others) if (o !== member) this.cut.add(`${member}>${o}`).add(`${o}>${member}`);
  }

  heal(): void {
    this.cut.clear();
  }
}
