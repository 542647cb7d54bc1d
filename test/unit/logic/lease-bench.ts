/**
 * A small deterministic bench for the lease machines: voters and clients on
 * one virtual timeline, messages delivered after a fixed delay unless a
 * member is down or cut off. Unit tests drive scenarios through it.
 */
import { initClient, stepClient, type ClientAction, type ClientEvent, type ClientState, type ClientTimings } from '../../../src/logic/lease/client.js';
import type { LeaseMessage } from '../../../src/logic/lease/messages.js';
import { initVoter, stepVoter, type VoterDisk, type VoterEvent, type VoterState } from '../../../src/logic/lease/voter.js';

export const TIMINGS: ClientTimings = { lease: 800, renewInterval: 200, driftMargin: 100, requestTimeout: 200 };

interface Pending {
  at: number;
  seq: number;
  kind: 'message' | 'wake' | 'voter-wake';
  from: string;
  to: string;
  message?: LeaseMessage;
}

export interface Logged {
  at: number;
  member: string;
  action: ClientAction;
}

export class LeaseBench {
  now = 0;
  readonly voters = new Map<string, VoterState>();
  readonly disks = new Map<string, VoterDisk>();
  readonly clients = new Map<string, ClientState>();
  readonly down = new Set<string>();
  /** Directed links that drop everything: "a>b". */
  readonly cut = new Set<string>();
  readonly log: Logged[] = [];
  private queue: Pending[] = [];
  private seq = 0;

  constructor(readonly members: string[], readonly nodes: string[], readonly delay = 1, readonly timings = TIMINGS) {
    for (const m of members) this.boot(m, true);
  }

  /** (Re)start a member: its voter from disk (or without), its client if it is a node. */
  boot(member: string, withDisk: boolean): void {
    this.down.delete(member);
    this.voters.set(member, initVoter(member, this.members, this.timings, withDisk ? this.disks.get(member) ?? { modules: {} } : undefined, this.now));
    this.voterTick(member);
    if (!withDisk) this.disks.delete(member);
    if (this.nodes.includes(member)) this.clients.set(member, initClient(member, this.members, this.timings));
  }

  crash(member: string): void {
    this.down.add(member);
    this.queue = this.queue.filter((p) => p.to !== member);
  }

  isolate(member: string): void {
    for (const o of this.members) if (o !== member) this.cut.add(`${member}>${o}`).add(`${o}>${member}`);
  }

  heal(): void {
    this.cut.clear();
  }

  client(member: string, event: ClientEvent): ClientAction[] {
    if (this.down.has(member)) return [];
    const step = stepClient(this.clients.get(member)!, event, this.now);
    this.clients.set(member, step.state);
    for (const a of step.actions) {
      if (a.type === 'send') this.post(member, a.to, a.message);
      else if (a.type === 'wake') this.push({ at: a.at, seq: 0, kind: 'wake', from: member, to: member });
      else this.log.push({ at: this.now, member, action: a });
    }
    return step.actions;
  }

  private post(from: string, to: string, message: LeaseMessage): void {
    if (this.cut.has(`${from}>${to}`)) return;
    this.push({ at: this.now + (from === to ? 0 : this.delay), seq: 0, kind: 'message', from, to, message });
  }

  private push(p: Pending): void {
    p.seq = this.seq++;
    this.queue.push(p);
  }

  /** Process everything due up to `until`, in time order. */
  runUntil(until: number): void {
    for (;;) {
      let best = -1;
      for (let i = 0; i < this.queue.length; i++) {
        const q = this.queue[i]!;
        if (q.at > until) continue;
        const b = this.queue[best];
        if (best < 0 || q.at < b!.at || (q.at === b!.at && q.seq < b!.seq)) best = i;
      }
      if (best < 0) break;
      const p = this.queue.splice(best, 1)[0]!;
      this.now = Math.max(this.now, p.at);
      if (this.down.has(p.to)) continue;
      if (p.kind === 'wake') {
        this.client(p.to, { type: 'tick' });
        continue;
      }
      if (p.kind === 'voter-wake') {
        this.voterTick(p.to);
        continue;
      }
      const msg = p.message!;
      if (msg.type === 'lease-reply') {
        this.client(p.to, { type: 'receive', from: p.from, message: msg });
      } else {
        this.voterStep(p.to, { type: 'receive', from: p.from, message: msg });
      }
    }
    this.now = Math.max(this.now, until);
  }

  private voterTick(member: string): void {
    this.voterStep(member, { type: 'tick' });
  }

  private voterStep(member: string, event: VoterEvent): void {
    const step = stepVoter(this.voters.get(member)!, event, this.now);
    this.voters.set(member, step.state);
    for (const a of step.actions) {
      if (a.type === 'persist') this.disks.set(member, a.disk);
      else if (a.type === 'send') this.post(member, a.to, a.message);
      else this.push({ at: a.at, seq: 0, kind: 'voter-wake', from: member, to: member });
    }
  }

  /** The actions of one kind a member reported, in order. */
  reported<T extends ClientAction['type']>(member: string, type: T): Extract<ClientAction, { type: T }>[] {
    return this.log.filter((l) => l.member === member && l.action.type === type).map((l) => l.action as Extract<ClientAction, { type: T }>);
  }

  /** Time at which a member reported the first action of a kind (after `after`). */
  firstAt(member: string, type: ClientAction['type'], after = -1): number | undefined {
    return this.log.find((l) => l.member === member && l.action.type === type && l.at > after)?.at;
  }
}
