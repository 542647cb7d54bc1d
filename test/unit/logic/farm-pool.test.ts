import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  POOL_REASONS as R,
  inRotation,
  initFarmPool,
  keepingExisting,
  poolSeat,
  stepFarmPool,
  type AdminState,
  type FarmPoolEvent,
  type FarmPoolState,
  type PoolInputs,
} from '../../../src/logic/farm-pool.js';
import type { CheckerStatus } from '../../../src/logic/checker.js';
import type { MemberStatus } from '../../../src/logic/membership.js';

const NODES = ['aws-1', 'azure-1', 'aws-2'];
const FIT: PoolInputs = { member: 'alive', health: 'healthy', givenUp: false, admin: 'ready' };

function feed(state: FarmPoolState, events: readonly FarmPoolEvent[], now = 0): { state: FarmPoolState; changes: string[] } {
  const changes: string[] = [];
  for (const e of events) {
    const r = stepFarmPool(state, e, now);
    state = r.state;
    for (const a of r.actions) changes.push(`${a.node} ${a.from}->${a.to} ${a.reason.code}`);
  }
  return { state, changes };
}

/** aws-1 in the pool; the others not heard from. */
function aws1In(): FarmPoolState {
  const r = feed(initFarmPool({ module: 'web', nodes: NODES }, 0), [
    { type: 'member', node: 'aws-1', status: 'alive' },
    { type: 'health', node: 'aws-1', health: 'healthy' },
  ]);
  assert.deepEqual(r.changes, ['aws-1 out->in POOL_JOIN']);
  return r.state;
}

describe('farm pool: the rule', () => {
  const table: [Partial<PoolInputs>, position: string, acceptsNew: boolean, keepsExisting: boolean][] = [
    [{}, 'in', true, true],
    [{ member: 'suspect' }, 'in', true, true],
    [{ member: 'dead' }, 'out', false, false],
    [{ member: 'unknown' }, 'out', false, false],
    [{ health: 'failed' }, 'out', false, false],
    [{ health: 'unknown' }, 'out', false, false],
    [{ givenUp: true }, 'out', false, false],
    [{ admin: 'drain' }, 'draining', false, true],
    [{ admin: 'maint' }, 'out', false, false],
    [{ admin: 'drain', health: 'failed' }, 'out', false, false],
    [{ admin: 'drain', member: 'dead' }, 'out', false, false],
  ];
  for (const [patch, position, acceptsNew, keepsExisting] of table) {
    it(`${JSON.stringify(patch)} → ${position}`, () => {
      const seat = poolSeat({ ...FIT, ...patch });
      assert.deepEqual([seat.position, seat.acceptsNew, seat.keepsExisting], [position, acceptsNew, keepsExisting]);
    });
  }

  it('lists every blocker, in reporting order', () => {
    assert.deepEqual(poolSeat({ member: 'dead', health: 'failed', givenUp: true, admin: 'maint' }).blockers, ['not-alive', 'given-up', 'checker', 'maint']);
  });
});

describe('farm pool: transitions and reasons', () => {
  it('starts with every node out, in name order', () => {
    const s = initFarmPool({ module: 'web', nodes: NODES }, 0);
    assert.deepEqual(Object.keys(s.nodes), ['aws-1', 'aws-2', 'azure-1']);
    assert.deepEqual(inRotation(s), []);
  });

  const table: [title: string, events: FarmPoolEvent[], changes: string[]][] = [
    ['a failed checker takes it out', [{ type: 'health', node: 'aws-1', health: 'failed' }], ['aws-1 in->out POOL_LEAVE_CHECKER']],
    ['a checker reset (health unknown) takes it out', [{ type: 'health', node: 'aws-1', health: 'unknown' }], ['aws-1 in->out POOL_LEAVE_CHECKER']],
    ['death takes it out', [{ type: 'member', node: 'aws-1', status: 'dead' }], ['aws-1 in->out POOL_LEAVE_DEAD']],
    ['suspicion keeps it in', [{ type: 'member', node: 'aws-1', status: 'suspect' }], []],
    ['a give-up takes it out', [{ type: 'given-up', node: 'aws-1', givenUp: true }], ['aws-1 in->out POOL_LEAVE_GIVEN_UP']],
    ['drain keeps existing connections', [{ type: 'admin', node: 'aws-1', admin: 'drain' }], ['aws-1 in->draining POOL_DRAIN']],
    ['maint takes it out', [{ type: 'admin', node: 'aws-1', admin: 'maint' }], ['aws-1 in->out POOL_MAINT']],
    ['drain then ready', [{ type: 'admin', node: 'aws-1', admin: 'drain' }, { type: 'admin', node: 'aws-1', admin: 'ready' }], ['aws-1 in->draining POOL_DRAIN', 'aws-1 draining->in POOL_READY']],
    ['maint then ready', [{ type: 'admin', node: 'aws-1', admin: 'maint' }, { type: 'admin', node: 'aws-1', admin: 'ready' }], ['aws-1 in->out POOL_MAINT', 'aws-1 out->in POOL_READY']],
    ['drain then maint', [{ type: 'admin', node: 'aws-1', admin: 'drain' }, { type: 'admin', node: 'aws-1', admin: 'maint' }], ['aws-1 in->draining POOL_DRAIN', 'aws-1 draining->out POOL_MAINT']],
    ['a draining node that fails', [{ type: 'admin', node: 'aws-1', admin: 'drain' }, { type: 'health', node: 'aws-1', health: 'failed' }], ['aws-1 in->draining POOL_DRAIN', 'aws-1 draining->out POOL_LEAVE_CHECKER']],
    ['a failed node that recovers joins again', [{ type: 'health', node: 'aws-1', health: 'failed' }, { type: 'health', node: 'aws-1', health: 'healthy' }], ['aws-1 in->out POOL_LEAVE_CHECKER', 'aws-1 out->in POOL_JOIN']],
    ['a given-up node cleared by an operator joins again', [{ type: 'given-up', node: 'aws-1', givenUp: true }, { type: 'given-up', node: 'aws-1', givenUp: false }], ['aws-1 in->out POOL_LEAVE_GIVEN_UP', 'aws-1 out->in POOL_JOIN']],
    ['a dead node that returns joins again', [{ type: 'member', node: 'aws-1', status: 'dead' }, { type: 'member', node: 'aws-1', status: 'alive' }], ['aws-1 in->out POOL_LEAVE_DEAD', 'aws-1 out->in POOL_JOIN']],
    ['a second reason while out changes nothing', [{ type: 'member', node: 'aws-1', status: 'dead' }, { type: 'health', node: 'aws-1', health: 'failed' }, { type: 'admin', node: 'aws-1', admin: 'maint' }], ['aws-1 in->out POOL_LEAVE_DEAD']],
    ['ready while still dead changes nothing', [{ type: 'admin', node: 'aws-1', admin: 'maint' }, { type: 'member', node: 'aws-1', status: 'dead' }, { type: 'admin', node: 'aws-1', admin: 'ready' }], ['aws-1 in->out POOL_MAINT']],
    ['unknown nodes are ignored', [{ type: 'member', node: 'gcp-1', status: 'alive' }], []],
    ['the same input twice is reported once', [{ type: 'health', node: 'aws-1', health: 'failed' }, { type: 'health', node: 'aws-1', health: 'failed' }], ['aws-1 in->out POOL_LEAVE_CHECKER']],
  ];
  for (const [title, events, changes] of table) {
    it(title, () => assert.deepEqual(feed(aws1In(), events).changes, changes));
  }

  it('says why, with the checker detail when there is one', () => {
    const r = stepFarmPool(aws1In(), { type: 'health', node: 'aws-1', health: 'failed', detail: 'http 503 from http://10.0.0.1:8080/health' }, 500);
    assert.deepEqual(r.actions, [
      {
        type: 'pool-changed',
        module: 'web',
        node: 'aws-1',
        from: 'in',
        to: 'out',
        acceptsNew: false,
        keepsExisting: false,
        reason: { code: R.POOL_LEAVE_CHECKER, text: 'web on aws-1 left the pool: its checkers report it failed (http 503 from http://10.0.0.1:8080/health)' },
      },
    ]);
    assert.equal(r.state.nodes['aws-1']!.since, 500);
    const drain = stepFarmPool(aws1In(), { type: 'admin', node: 'aws-1', admin: 'drain' }, 0).actions[0]!;
    assert.deepEqual([drain.acceptsNew, drain.keepsExisting, drain.reason.text], [false, true, 'web on aws-1 draining: keeps its existing connections, takes no new requests']);
    const dead = stepFarmPool(aws1In(), { type: 'member', node: 'aws-1', status: 'dead' }, 0).actions[0]!;
    assert.equal(dead.reason.text, 'web on aws-1 left the pool: aws-1 is dead');
  });

  it('drain keeps the node among those keeping existing connections; maint does not', () => {
    const drained = feed(aws1In(), [{ type: 'admin', node: 'aws-1', admin: 'drain' }]).state;
    assert.deepEqual([inRotation(drained), keepingExisting(drained)], [[], ['aws-1']]);
    const maint = feed(aws1In(), [{ type: 'admin', node: 'aws-1', admin: 'maint' }]).state;
    assert.deepEqual([inRotation(maint), keepingExisting(maint)], [[], []]);
  });

  it('a bulk update reports changes in node name order, with the highest-priority reason', () => {
    const s = feed(initFarmPool({ module: 'web', nodes: NODES }, 0), [
      { type: 'inputs', nodes: { 'azure-1': { member: 'alive', health: 'healthy' }, 'aws-2': { member: 'alive', health: 'healthy' }, 'aws-1': { member: 'alive', health: 'healthy' } } },
    ]);
    assert.deepEqual(s.changes, ['aws-1 out->in POOL_JOIN', 'aws-2 out->in POOL_JOIN', 'azure-1 out->in POOL_JOIN']);
    assert.deepEqual(inRotation(s.state), ['aws-1', 'aws-2', 'azure-1']);
    const r = feed(s.state, [
      { type: 'inputs', nodes: { 'azure-1': { member: 'dead', health: 'failed', admin: 'maint' }, 'aws-1': { givenUp: true, health: 'failed' } } },
    ]);
    assert.deepEqual(r.changes, ['aws-1 in->out POOL_LEAVE_GIVEN_UP', 'azure-1 in->out POOL_LEAVE_DEAD']);
  });
});

describe('farm pool: property', () => {
  const node = fc.constantFrom('aws-1', 'aws-2', 'azure-1', 'gcp-9');
  const member = fc.constantFrom<MemberStatus>('unknown', 'alive', 'suspect', 'dead');
  const health = fc.constantFrom<CheckerStatus>('unknown', 'healthy', 'failed');
  const admin = fc.constantFrom<AdminState>('ready', 'drain', 'maint');
  const event: fc.Arbitrary<FarmPoolEvent> = fc.oneof(
    fc.record({ type: fc.constant('member' as const), node, status: member }),
    fc.record({ type: fc.constant('health' as const), node, health }),
    fc.record({ type: fc.constant('given-up' as const), node, givenUp: fc.boolean() }),
    fc.record({ type: fc.constant('admin' as const), node, admin }),
    fc.record({
      type: fc.constant('inputs' as const),
      nodes: fc.dictionary(node, fc.record({ member, health, givenUp: fc.boolean(), admin }, { requiredKeys: [] })),
    }),
  );

  it('a node is in rotation exactly when alive, healthy, not given up and ready; every change is reported once, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(1000), event), { maxLength: 100 }), (steps) => {
        let state = initFarmPool({ module: 'web', nodes: NODES }, 0);
        let now = 0;
        for (const [dt, ev] of steps) {
          now += dt;
          const before = state;
          const r = stepFarmPool(state, ev, now);
          state = r.state;
          assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
          const names = r.actions.map((a) => a.node);
          assert.deepEqual(names, [...names].sort(), 'node name order');
          assert.equal(new Set(names).size, names.length);
          for (const a of r.actions) {
            assert.equal(a.from, before.nodes[a.node]!.position);
            assert.equal(a.to, state.nodes[a.node]!.position);
            assert.ok(Object.values(R).includes(a.reason.code as never));
            assert.ok(!a.acceptsNew || a.keepsExisting);
          }
          for (const [name, n] of Object.entries(state.nodes)) {
            const { member: m, health: h, givenUp, admin: ad } = n.inputs;
            const fit = (m === 'alive' || m === 'suspect') && h === 'healthy' && !givenUp;
            assert.equal(n.position, fit && ad === 'ready' ? 'in' : fit && ad === 'drain' ? 'draining' : 'out', name);
            if (n.position !== before.nodes[name]!.position) assert.ok(names.includes(name), `change of ${name} reported`);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
