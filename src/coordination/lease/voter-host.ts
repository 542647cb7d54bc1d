/**
 * Runs a member's voter (src/logic/lease/voter.ts): answers lease requests
 * and persists its promises before it replies, as the machine asks.
 */
import type { CancelTimer, Clock } from '../../core/clock.js';
import type { LeaseReply, LeaseRequest, VoterSync } from '../../logic/lease/messages.js';
import { initVoter, stepVoter, type VoterDisk, type VoterEvent, type VoterState, type VoterTimings } from '../../logic/lease/voter.js';

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
  private wake: CancelTimer | undefined;

  constructor(
    readonly self: string,
    voters: readonly string[],
    timings: VoterTimings,
    private readonly clock: Clock,
    private readonly disk: VoterDiskStore,
    private readonly send: (to: string, message: LeaseReply | VoterSync) => void,
  ) {
    this.state = initVoter(self, voters, timings, disk.load(), clock.now());
    this.dispatch({ type: 'tick' });
  }

  handle(from: string, message: LeaseRequest | VoterSync): void {
    this.dispatch({ type: 'receive', from, message });
  }

  /** Stops its timers (the member is shutting down). */
  close(): void {
    this.wake?.();
  }

  private dispatch(event: VoterEvent): void {
    const step = stepVoter(this.state, event, this.clock.now());
    this.state = step.state;
    for (const action of step.actions) {
      if (action.type === 'persist') this.disk.save(action.disk);
      else if (action.type === 'send') this.send(action.to, action.message);
      else {
        this.wake?.();
        this.wake = this.clock.setTimer(action.at - this.clock.now(), () => this.dispatch({ type: 'tick' }));
      }
    }
  }
}
