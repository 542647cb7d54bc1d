/**
 * Builds a cluster of CoordinationStores of one kind on a ManualClock, with
 * the faults the conformance suite needs: isolate a member, heal, crash.
 */
import { MemoryCoordination } from '../coordination/memory/memory-store.js';
import { MemoryVoterDisk } from '../coordination/lease/voter-host.js';
import { startMajorityMember } from '../coordination/lease/majority-store.js';
import type { CoordinationStore } from '../coordination/store.js';
import { MemoryNetwork } from '../link/memory-network.js';
import type { ClientTimings } from '../logic/lease/client.js';
import type { LeaseMessage } from '../logic/lease/messages.js';
import { ManualClock } from './manual-clock.js';

export type CoordinationKind = 'memory' | 'majority';

export interface CoordinationCluster {
  kind: CoordinationKind;
  clock: ManualClock;
  timings: ClientTimings;
  stores: Map<string, CoordinationStore>;
  store(node: string): CoordinationStore;
  /** Cut a member off from every other member (or from the service). */
  isolate(member: string): void;
  heal(): void;
  /** The member stops: no renewals, no votes. */
  crash(member: string): Promise<void>;
  /** Time until a fresh cluster can grant its first lease. */
  readonly settleTime: number;
}

export const TEST_TIMINGS: ClientTimings = { lease: 400, renewInterval: 100, driftMargin: 50, requestTimeout: 100 };

export function makeCoordinationCluster(kind: CoordinationKind, nodes: string[], witnesses: string[], timings = TEST_TIMINGS): CoordinationCluster {
  const clock = new ManualClock(1000);
  const stores = new Map<string, CoordinationStore>();
  const base = { kind, clock, timings, stores, store: (n: string) => stores.get(n)! };
  if (kind === 'memory') {
    const service = new MemoryCoordination(clock, timings);
    for (const n of nodes) stores.set(n, service.store(n));
    return {
      ...base,
      settleTime: 0,
      isolate: (m) => void service.unreachable.add(m),
      heal: () => service.unreachable.clear(),
      crash: async (m) => {
        service.unreachable.add(m);
        await stores.get(m)?.close();
      },
    };
  }
  const net = new MemoryNetwork<LeaseMessage>(clock, 1);
  const voters = [...nodes, ...witnesses];
  const voterHosts = new Map<string, { close(): void }>();
  for (const self of voters) {
    const member = startMajorityMember({ self, voters, timings, clock, transport: net.transport(self), disk: new MemoryVoterDisk(), isNode: nodes.includes(self) });
    voterHosts.set(self, member.voter);
    if (member.store) stores.set(self, member.store);
  }
  return {
    ...base,
    settleTime: timings.lease + timings.driftMargin,
    isolate: (m) => net.isolate(m, voters),
    heal: () => net.heal(),
    crash: async (m) => {
      net.down.add(m);
      await stores.get(m)?.close();
      voterHosts.get(m)?.close();
    },
  };
}
