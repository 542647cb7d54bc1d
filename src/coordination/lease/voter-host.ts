/**
 * Runs a member's voter (src/logic/lease/voter.ts): answers lease requests
 * and persists its promises before it replies, as the machine asks.
 */
import type { Clock } from '../../core/clock.js';
import type { LeaseReply, LeaseRequest } from '../../logic/lease/messages.js';
import { initVoter, stepVoter, type VoterDisk, type VoterState, type VoterTimings } from '../../logic/lease/voter.js';

/** Durable storage of a voter's state: `save` returns once the data is durable. */
export interface VoterDiskStore {
  load(): VoterDisk | undefined;
  save(disk: VoterDisk): void;
}

export class MemoryVoterDisk implements VoterDiskStore {
  disk: VoterDisk | undefined;
  load(): VoterDisk | undefined {
    return this.disk && structuredClone(this.disk);
  }
  save(disk: VoterDisk): void {
    this.disk = structuredClone(disk);
  }
}

export class VoterHost {
  private state: VoterState;

  constructor(
    readonly self: string,
    timings: VoterTimings,
    private readonly clock: Clock,
    private readonly disk: VoterDiskStore,
    private readonly reply: (to: string, message: LeaseReply) => void,
  ) {
    this.state = initVoter(self, timings, disk.load(), clock.now());
  }

  handle(from: string, request: LeaseRequest): void {
    const step = stepVoter(this.state, { type: 'receive', from, message: request }, this.clock.now());
    this.state = step.state;
    for (const action of step.actions) {
      if (action.type === 'persist') this.disk.save(action.disk);
      else this.reply(action.to, action.message);
    }
  }
}
