/**
 * The CoordinationStore contract (src/coordination/store.ts), run against
 * every implementation. A new backend (etcd) joins by adding its kind here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoordinationError, type LeaseEvent } from '../../src/coordination/store.js';
import { makeCoordinationCluster, type CoordinationKind } from '../../src/testing/coordination-cluster.js';

const KINDS: CoordinationKind[] = ['memory', 'majority'];

async function rejection(c: { clock: { wait<T>(p: Promise<T>): Promise<T> } }, p: Promise<unknown>): Promise<CoordinationError> {
  try {
    await c.clock.wait(p);
  } catch (e) {
    assert.ok(e instanceof CoordinationError, `expected a CoordinationError, got ${e}`);
    return e;
  }
  assert.fail('expected the call to be rejected');
}

for (const kind of KINDS) {
  describe(`CoordinationStore conformance: ${kind}`, () => {
    async function ready() {
      const c = makeCoordinationCluster(kind, ['a', 'b'], ['w']);
      await c.clock.advance(c.settleTime);
      return c;
    }

    it('acquire gives one holder epoch 1 and an empty in-sync set; a second candidate is told who holds it', async () => {
      const c = await ready();
      const lease = await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      assert.equal(lease.holder, 'a');
      assert.equal(lease.epoch, 1);
      assert.deepEqual(lease.record.inSync, []);
      assert.ok(lease.validUntil > c.clock.now());
      const err = await rejection(c, c.store('b').acquire('db', { dataEpoch: 1 }));
      assert.equal(err.code, 'SKYHA_ERR_COORD_HELD');
      assert.equal(err.holder, 'a');
      assert.ok((err.retryAfter ?? 0) > 0);
    });

    it('renews by itself: the lease stays held for many lease lengths', async () => {
      const c = await ready();
      const events: LeaseEvent[] = [];
      c.store('a').watch((e) => events.push(e));
      await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      await c.clock.advance(c.timings.lease * 5);
      assert.ok(c.store('a').held('db'), 'still held');
      assert.ok(events.filter((e) => e.type === 'renewed').length >= 15);
      assert.equal(events.filter((e) => e.type === 'lost').length, 0);
    });

    it('an isolated holder loses the lease at its deadline; another node gets it only after, with a higher epoch', async () => {
      const c = await ready();
      const lostAt: number[] = [];
      c.store('a').watch((e) => e.type === 'lost' && lostAt.push(c.clock.now()));
      await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      await c.clock.wait(c.store('a').commitInSync('db', ['b']));
      c.isolate('a');
      const deadline = c.store('a').held('db')!.validUntil;
      let acquiredAt: number | undefined;
      let epoch = 0;
      while (acquiredAt === undefined) {
        assert.ok(c.clock.now() < deadline + 5 * c.timings.lease, 'b never became primary');
        try {
          epoch = (await c.clock.wait(c.store('b').acquire('db', { dataEpoch: 1 }))).epoch;
          acquiredAt = c.clock.now();
        } catch (e) {
          assert.ok(e instanceof CoordinationError);
          await c.clock.advance(10);
        }
      }
      assert.deepEqual(lostAt, [deadline], 'a reports the loss exactly at its deadline');
      assert.ok(acquiredAt >= deadline + c.timings.driftMargin, `b acquired at ${acquiredAt}, a's deadline ${deadline}`);
      assert.equal(epoch, 2);
      assert.equal(c.store('a').held('db'), undefined);
    });

    it('a node outside the committed in-sync set is refused; force takes it and says data may be lost', async () => {
      const c = makeCoordinationCluster(kind, ['a', 'b', 'c'], ['w']);
      await c.clock.advance(c.settleTime);
      await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      await c.clock.wait(c.store('a').commitInSync('db', ['b']));
      await c.crash('a');
      await c.clock.advance(c.timings.lease * 2);
      // c holds epoch 1 data but lagged: it was never in the in-sync set.
      const err = await rejection(c, c.store('c').acquire('db', { dataEpoch: 1 }));
      assert.equal(err.code, 'SKYHA_ERR_COORD_NOT_IN_SYNC');
      const forced = await c.clock.wait(c.store('c').acquire('db', { dataEpoch: 1, force: true }));
      assert.equal(forced.forced, true);
      // Higher than every earlier epoch; a refused attempt may have used one up at the voters.
      assert.ok(forced.epoch > 1, `epoch ${forced.epoch}`);
    });

    it('a node named in sync whose data does not continue that epoch (a lost disk) is refused', async () => {
      const c = await ready();
      await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      await c.clock.wait(c.store('a').commitInSync('db', ['b']));
      await c.crash('a');
      await c.clock.advance(c.timings.lease * 2);
      const err = await rejection(c, c.store('b').acquire('db', { dataEpoch: 0 }));
      assert.equal(err.code, 'SKYHA_ERR_COORD_NOT_IN_SYNC');
      assert.match(err.message, /continues epoch 0, not epoch 1/);
    });

    it('commitInSync needs the lease, and the committed set survives the holder', async () => {
      const c = await ready();
      assert.equal((await rejection(c, c.store('b').commitInSync('db', ['a']))).code, 'SKYHA_ERR_COORD_NOT_HOLDER');
      await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      const record = await c.clock.wait(c.store('a').commitInSync('db', ['b']));
      assert.deepEqual(record.inSync, ['b']);
      assert.equal(record.version, 2);
      await c.crash('a');
      await c.clock.advance(c.timings.lease * 2);
      assert.equal((await c.clock.wait(c.store('b').acquire('db', { dataEpoch: 1 }))).epoch, 2, 'the in-sync secondary may take over');
    });

    it('transfer hands the lease to the target at the next epoch, which adopts it', async () => {
      const c = await ready();
      await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      await c.clock.wait(c.store('a').commitInSync('db', ['b']));
      const epoch = await c.clock.wait(c.store('a').transfer('db', 'b'));
      assert.equal(epoch, 2);
      assert.equal(c.store('a').held('db'), undefined);
      const lease = await c.clock.wait(c.store('b').adopt('db', epoch, ['a'], 1));
      assert.equal(lease.epoch, 2);
      assert.deepEqual(lease.record.inSync, ['a']);
      assert.equal((await rejection(c, c.store('a').transfer('db', 'a'))).code, 'SKYHA_ERR_COORD_NOT_HOLDER');
    });

    it('release frees the lease at once for an in-sync node', async () => {
      const c = await ready();
      await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      await c.clock.wait(c.store('a').commitInSync('db', ['b']));
      await c.clock.wait(c.store('a').release('db'));
      assert.equal(c.store('a').held('db'), undefined);
      await c.clock.advance(5);
      const lease = await c.clock.wait(c.store('b').acquire('db', { dataEpoch: 1 }));
      assert.equal(lease.epoch, 2);
    });

    it('epochs grow with every change of holder, across many failovers', async () => {
      const c = await ready();
      let holder = 'a';
      let last = 0;
      for (let i = 0; i < 6; i++) {
        const lease = await c.clock.wait(c.store(holder).acquire('db', { dataEpoch: last }));
        assert.ok(lease.epoch > last, `epoch ${lease.epoch} after ${last}`);
        last = lease.epoch;
        const other = holder === 'a' ? 'b' : 'a';
        await c.clock.wait(c.store(holder).commitInSync('db', [other]));
        await c.clock.wait(c.store(holder).release('db'));
        await c.clock.advance(5);
        holder = other;
      }
    });

    it('modules are independent', async () => {
      const c = await ready();
      await c.clock.wait(c.store('a').acquire('db', { dataEpoch: 0 }));
      const web = await c.clock.wait(c.store('b').acquire('queue', { dataEpoch: 0 }));
      assert.equal(web.holder, 'b');
      assert.equal(web.epoch, 1);
    });
  });
}
