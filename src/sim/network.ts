/**
 * The in-memory network: one directed link per ordered pair of members, each
 * with its own delay, jitter, loss, duplication and reordering, and a set of
 * cut links (partitions). Like hashicorp/raft's InmemTransport, it is driven
 * by the world: the world asks it what happens to each message it sends
 * (`transmit`) and whether a link is cut at delivery time (`isCut`); the
 * network keeps the counts.
 *
 * Two link models:
 * - `datagram` (the default, harsher than reality): each copy of a message
 *   gets its own delay, so messages overtake each other; loss, duplication and
 *   extra holding-back ("reorder") apply per message.
 * - `fifo`: a link delivers in the order it was given messages, never
 *   duplicates, and `reorder` is ignored (a TCP connection; `loss` then stands
 *   for messages lost with a broken connection).
 *
 * A cut link drops every message sent on it, and every message already in
 * flight on it when it is delivered: cutting a cable loses what is on it.
 */
import { msToUs } from './clock.js';
import type { Random } from './random.js';

export interface LinkParams {
  /** Base one-way delay, ms. */
  delay: number;
  /** Extra delay, uniform in [0, jitter), ms. */
  jitter: number;
  /** Probability that a message is lost. */
  loss: number;
  /** Probability that a message is delivered twice (datagram links only). */
  duplicate: number;
  /** Probability that a message is held back by up to 10 × (delay + jitter) more, so later ones overtake it (datagram links only). */
  reorder: number;
}

export const DEFAULT_LINK: Readonly<LinkParams> = { delay: 1, jitter: 1, loss: 0, duplicate: 0, reorder: 0 };

export type LinkModel = 'datagram' | 'fifo';

export type DropReason = 'loss' | 'partition' | 'down' | 'restarted';
export const DROP_REASONS: readonly DropReason[] = ['loss', 'partition', 'down', 'restarted'];

export interface NetworkStats {
  /** Messages handed to the network by `send`. */
  sent: number;
  /** Extra copies made by duplication. */
  duplicated: number;
  /** Copies handed to a receiving process. */
  delivered: number;
  /** Copies dropped, whatever the reason. */
  dropped: number;
  droppedBy: Record<DropReason, number>;
}

export function emptyNetworkStats(): NetworkStats {
  return { sent: 0, duplicated: 0, delivered: 0, dropped: 0, droppedBy: { loss: 0, partition: 0, down: 0, restarted: 0 } };
}

export class Network {
  readonly members: readonly string[];
  readonly model: LinkModel;
  readonly stats: NetworkStats = emptyNetworkStats();
  private readonly n: number;
  private readonly index = new Map<string, number>();
  private readonly defaults: LinkParams;
  private readonly links: LinkParams[];
  private readonly cut: Uint8Array;
  private readonly lastDeliveryUs: Float64Array;
  private readonly rng: Random;
  /** Delivery times (µs) of the copies decided by the last `transmit`. */
  readonly copies = new Float64Array(2);

  constructor(members: readonly string[], rng: Random, options: { link?: Partial<LinkParams>; model?: LinkModel } = {}) {
    this.members = members;
    this.n = members.length;
    members.forEach((m, i) => this.index.set(m, i));
    this.defaults = { ...DEFAULT_LINK, ...options.link };
    this.model = options.model ?? 'datagram';
    this.links = Array.from({ length: this.n * this.n }, () => ({ ...this.defaults }));
    this.cut = new Uint8Array(this.n * this.n);
    this.lastDeliveryUs = new Float64Array(this.n * this.n);
    this.rng = rng;
  }

  indexOf(member: string): number {
    const i = this.index.get(member);
    if (i === undefined) throw new Error(`unknown member "${member}" (members: ${this.members.join(', ')})`);
    return i;
  }

  // ---- partitions -------------------------------------------------------

  /** Cuts every link between group `a` and group `b`, both ways. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) {
      this.cutLink(x, y);
      this.cutLink(y, x);
    }
  }

  /** Cuts every link to and from `member`. */
  isolate(member: string): void {
    this.partition([member], this.members.filter((m) => m !== member));
  }

  /** Cuts the one directed link `from` → `to`. */
  cutLink(from: string, to: string): void {
    if (from !== to) this.cut[this.indexOf(from) * this.n + this.indexOf(to)] = 1;
  }

  /** Restores the one directed link `from` → `to`. */
  connectLink(from: string, to: string): void {
    this.cut[this.indexOf(from) * this.n + this.indexOf(to)] = 0;
  }

  /** Restores every link. */
  heal(): void {
    this.cut.fill(0);
  }

  isCut(from: number, to: number): boolean {
    return this.cut[from * this.n + to] === 1;
  }

  /** The cut directed links, as "a→b" strings in member order. */
  cutLinks(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.n; i++) for (let j = 0; j < this.n; j++) if (this.isCut(i, j)) out.push(`${this.members[i]}→${this.members[j]}`);
    return out;
  }

  // ---- link quality -----------------------------------------------------

  /** Changes the parameters of the link `from` → `to`; `'*'` stands for every member. */
  setLink(from: string, to: string, params: Partial<LinkParams>): void {
    for (let i = 0; i < this.n; i++) {
      if (from !== '*' && this.members[i] !== from) continue;
      for (let j = 0; j < this.n; j++) {
        if (to !== '*' && this.members[j] !== to) continue;
        Object.assign(this.links[i * this.n + j] as LinkParams, params);
      }
    }
    if (from !== '*') this.indexOf(from);
    if (to !== '*') this.indexOf(to);
  }

  link(from: string, to: string): Readonly<LinkParams> {
    return this.links[this.indexOf(from) * this.n + this.indexOf(to)] as LinkParams;
  }

  /** Puts every link back to the defaults. */
  resetLinks(): void {
    for (const l of this.links) Object.assign(l, this.defaults);
  }

  // ---- one message ------------------------------------------------------

  /**
   * Decides the fate of one message sent at `nowUs`: counts it, and returns
   * how many copies arrive (0, 1 or 2) with their delivery times in
   * `this.copies`. A cut link returns 0 (dropped: partition).
   */
  transmit(from: number, to: number, nowUs: number): number {
    const s = this.stats;
    s.sent++;
    if (this.isCut(from, to)) {
      this.drop('partition');
      return 0;
    }
    const k = from * this.n + to;
    const l = this.links[k] as LinkParams;
    if (l.loss > 0 && this.rng.chance(l.loss)) {
      this.drop('loss');
      return 0;
    }
    if (this.model === 'fifo') {
      let at = nowUs + msToUs(l.delay + this.rng.float() * l.jitter);
      const last = this.lastDeliveryUs[k] as number;
      if (at < last) at = last;
      this.lastDeliveryUs[k] = at;
      this.copies[0] = at;
      return 1;
    }
    this.copies[0] = nowUs + this.delayUs(l);
    if (l.duplicate > 0 && this.rng.chance(l.duplicate)) {
      s.duplicated++;
      this.copies[1] = nowUs + this.delayUs(l);
      return 2;
    }
    return 1;
  }

  /** Counts a copy dropped for `reason`. */
  drop(reason: DropReason): void {
    this.stats.dropped++;
    this.stats.droppedBy[reason]++;
  }

  private delayUs(l: LinkParams): number {
    let ms = l.delay + this.rng.float() * l.jitter;
    if (l.reorder > 0 && this.rng.chance(l.reorder)) ms += this.rng.float() * 10 * (l.delay + l.jitter);
    return msToUs(ms);
  }
}
