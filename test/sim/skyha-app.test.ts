/**
 * The application's own stretches of time in the skyha model, scripted on one
 * seeded world with no other fault: an application that fails for good on the
 * primary is given up there, stopped the normal way (it writes while its stop
 * script runs), and only then is the lease released. What it wrote while
 * stopping reaches the node that takes over: before the member kept serving
 * a given-up primary's writes, they were refused, and the first lease renewal
 * released the lease and killed the stop script halfway.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAll } from '../../src/sim/checkers.js';
import type { HistoryEntry } from '../../src/sim/history.js';
import type { MemberMessage } from '../../src/logic/member.js';
import { skyhaModel } from '../../src/sim/models/skyha.js';
import type { SimProcess } from '../../src/sim/process.js';
import { parseShape } from '../../src/sim/shape.js';
import { World } from '../../src/sim/world.js';

/** The model's client counts the records it wrote (ids `member.incarnation.n`) and keeps the barriers not yet answered. */
type Writer = SimProcess<MemberMessage> & { written: number; pending: Set<string> };

function world(seed: number): { world: World<MemberMessage>; writer: (member: string) => Writer } {
  const model = skyhaModel('correct');
  const processes = new Map<string, Writer>();
  const create = model.create;
  const w = new World<MemberMessage>({
    seed,
    shape: parseShape('2n+w'),
    model: {
      ...model,
      create: (member, cluster) => {
        const p = create(member, cluster) as Writer;
        processes.set(member.name, p);
        return p;
      },
    },
  });
  return { world: w, writer: (m) => processes.get(m) as Writer };
}

const of = (entries: readonly HistoryEntry[], member: string, type: HistoryEntry['type'], after = -Infinity) => entries.filter((e) => e.member === member && e.type === type && e.at > after);

describe('skyha model: an application given up on the primary', () => {
  it('stops the normal way, ships what it wrote while stopping, then releases the lease (20 seeds)', () => {
    let stoppedWriting = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { world: w, writer } = world(seed);
      w.boot();
      w.runUntil(2000);
      const history = w.history.entries;
      assert.equal(of(history, 'n1', 'app-start').length, 1, `seed ${seed}: n1, the preferred node, is primary`);
      assert.equal(of(history, 'n1', 'app-stop').length, 0);
      const failAt = w.now;
      w.appFault('n1', 'fail');
      const before = writer('n1').written;
      w.runUntil(5000);
      w.finish();

      const [stop] = of(history, 'n1', 'app-stop', failAt);
      assert.equal(stop?.type === 'app-stop' && stop.reason, 'RESTART_GIVE_UP', `seed ${seed}: stopped by its stop, not fenced or killed by the keeper`);
      const released = of(history, 'n1', 'lease-released', failAt);
      assert.ok(released.length > 0 && released[0]!.at >= stop!.at, `seed ${seed}: the lease is released once the application is gone`);
      const taken = of(history, 'n2', 'app-start', failAt);
      assert.ok(taken.length > 0 && taken[0]!.at >= stop!.at, `seed ${seed}: n2 takes over after n1 stopped`);

      const total = writer('n1').written;
      if (total > before) stoppedWriting++;
      const [final] = of(history, 'n2', 'final-data');
      const held = new Set(final?.type === 'final-data' ? final.writes : []);
      const missing = Array.from({ length: total }, (_, i) => `n1.1.${i + 1}`).filter((id) => !held.has(id));
      assert.deepEqual(missing, [], `seed ${seed}: every record n1 wrote, to its last, is on the new primary`);

      const violations = checkAll(history, { voters: ['n1', 'n2', 'w1'], nodes: ['n1', 'n2'], modules: ['db'], lease: 400, livenessBudget: 10_000 }).flatMap((r) => r.violations);
      assert.deepEqual(violations, [], `seed ${seed}`);
    }
    // The stop takes a random time, the client writes every 37 ms: some runs write while stopping, some do not.
    assert.ok(stoppedWriting >= 5, `only ${stoppedWriting} of 20 runs wrote while the application stopped`);
  });
});

describe('skyha model: a primary cut off from everyone', () => {
  it('answers every barrier it took, even those still waiting when its lease ran out (5 seeds)', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const { world: w, writer } = world(seed);
      w.boot();
      w.runUntil(2000);
      assert.equal(of(w.history.entries, 'n1', 'app-start').length, 1, `seed ${seed}: n1 is primary`);
      w.isolate('n1');
      w.runUntil(3500);
      const stopped = of(w.history.entries, 'n1', 'app-stop', 2000);
      assert.ok(stopped.length > 0, `seed ${seed}: n1 stopped its application when its lease ran out`);
      // Its client writes every 37 ms and a barrier waits up to a lease: some were waiting when it stepped down.
      assert.deepEqual([...writer('n1').pending], [], `seed ${seed}: every barrier of n1 was answered (failed, here)`);
    }
  });
});
