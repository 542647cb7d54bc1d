/**
 * When a mirror node takes its application's changes and barriers: while it
 * holds the lease with its application possibly writing — primary,
 * promoting (started, not yet reported running; restarting after a crash),
 * handing over until its application has stopped, given up (out of service)
 * with the lease kept until its application has stopped — and never otherwise.
 * A change refused makes the agent stop shipping for the rest of the epoch,
 * so refusing one while promoting lost every later write of that epoch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROFILES } from '../../../src/config/profiles.js';
import { initMember, stepMember, type MemberAction, type MemberConfig, type MemberState } from '../../../src/logic/member.js';
import type { MirrorState } from '../../../src/logic/mirror-role.js';
import { initReplicationPrimary } from '../../../src/logic/replication-primary.js';

const config: MemberConfig = {
  self: 'n1',
  nodes: ['n1', 'n2'],
  witnesses: ['w'],
  timings: PROFILES.lan,
  replication: { lagTimeout: 300, retransmitInterval: 100, maxLog: 100 },
  modules: [{ name: 'db', nodes: ['n1', 'n2'], failback: 'manual' }],
};

function holding(role: MirrorState['role'], app: MirrorState['app']): MemberState {
  const state = initMember(config, undefined, 0);
  const slot = state.modules.db!;
  const primary = initReplicationPrimary({ module: 'db', self: 'n1', epoch: 3, secondaries: ['n1', 'n2'], inSync: ['n2'], timings: config.replication });
  return { ...state, modules: { ...state.modules, db: { ...slot, mirror: { ...slot.mirror, role, app, epoch: 3 }, primary } } };
}

function takes(state: MemberState): { change: boolean; barrier: boolean } {
  const change = stepMember(state, { type: 'change', module: 'db', data: Buffer.from('x') }, 10);
  const barrier = stepMember(state, { type: 'barrier', module: 'db', id: 'b1', deadline: 1000 }, 10);
  return {
    change: !change.actions.some((a) => a.type === 'change-refused') && change.state.modules.db!.primary!.seq === 1,
    barrier: !barrier.actions.some((a) => a.type === 'barrier-done' && !a.ok),
  };
}

test('changes and barriers are taken while primary, promoting, and handing over until the application stopped', () => {
  assert.deepEqual(takes(holding('primary', 'running')), { change: true, barrier: true });
  assert.deepEqual(takes(holding('promoting', 'starting')), { change: true, barrier: true });
  assert.deepEqual(takes(holding('handing-over', 'stopping')), { change: true, barrier: true });
  assert.deepEqual(takes(holding('out-of-service', 'stopping')), { change: true, barrier: true });
});

test('and refused once the hand-over\'s application stopped, or without the lease', () => {
  assert.deepEqual(takes(holding('handing-over', 'stopped')), { change: false, barrier: false });
  assert.deepEqual(takes(holding('out-of-service', 'stopped')), { change: false, barrier: false });
  assert.deepEqual(takes(initMember(config, undefined, 0)), { change: false, barrier: false });
});

test('a give-up keeps the lease and serves the stopping application\'s writes; the lease goes once it stopped', () => {
  const step = stepMember(holding('primary', 'running'), { type: 'given-up', module: 'db', reason: { code: 'RESTART_GIVE_UP', text: 'x' } }, 10);
  const slot = step.state.modules.db!;
  assert.equal(slot.mirror.role, 'out-of-service');
  assert.ok(step.actions.some((a) => a.type === 'stop-app'));
  assert.ok(slot.primary, 'still the primary of its lease while the application stops');
  assert.equal(slot.mirror.releaseWhenStopped, true);
  assert.deepEqual(takes(step.state), { change: true, barrier: true });
  const stopped = stepMember(step.state, { type: 'app-stopped', module: 'db' }, 20);
  assert.equal(stopped.state.modules.db!.mirror.releaseWhenStopped, false);
  assert.deepEqual(takes(stopped.state), { change: false, barrier: false }, 'the application is gone: nothing more to take');
});

test('an out-of-service node answers the primary\'s announcements, so that it is not failed back to', () => {
  const state = initMember(config, undefined, 0);
  const slot = state.modules.db!;
  const given: MemberState = { ...state, modules: { ...state.modules, db: { ...slot, mirror: { ...slot.mirror, role: 'out-of-service' } } } };
  const step = stepMember(given, { type: 'receive', from: 'n2', message: { type: 'announce', module: 'db', epoch: 4, inSync: ['n1'] } }, 10);
  assert.deepEqual(step.actions.filter((a) => a.type === 'send' && a.message.type === 'out-of-service').map((a) => a.type === 'send' && [a.to, a.message]), [['n2', { type: 'out-of-service', module: 'db', epoch: 4 }]]);
  const inService = stepMember(state, { type: 'receive', from: 'n2', message: { type: 'announce', module: 'db', epoch: 4, inSync: ['n1'] } }, 10);
  assert.deepEqual(inService.actions.filter((a) => a.type === 'send' && a.message.type === 'out-of-service'), []);
});

test('a primary heeds an out-of-service answer to its own announcements only, not one to an older primary\'s', () => {
  const primary = holding('primary', 'running');
  const answer = (epoch: number) => stepMember(primary, { type: 'receive', from: 'n2', message: { type: 'out-of-service', module: 'db', epoch } }, 10).state.modules.db!.mirror.declined?.n2;
  assert.ok((answer(3) ?? 0) > 10, 'its epoch: no failback to n2 for now');
  assert.equal(answer(2), undefined, 'an older epoch\'s: nothing');
});

test('a secondary that gives up tells the primary at once, not at its next announcement (a failback meanwhile would be refused)', () => {
  const heard = stepMember(initMember(config, undefined, 0), { type: 'receive', from: 'n2', message: { type: 'announce', module: 'db', epoch: 4, inSync: ['n1'] } }, 10).state;
  const step = stepMember(heard, { type: 'given-up', module: 'db', reason: { code: 'OPERATOR_STOPPED', text: 'x' } }, 20);
  assert.equal(step.state.modules.db!.mirror.role, 'out-of-service');
  assert.deepEqual(step.actions.filter((a) => a.type === 'send' && a.message.type === 'out-of-service').map((a) => a.type === 'send' && [a.to, a.message]), [['n2', { type: 'out-of-service', module: 'db', epoch: 4 }]]);
  // A primary that gives up has no one to tell: it is the one others would hear from.
  const primary = holding('primary', 'running');
  const db = primary.modules.db!;
  const self: MemberState = { ...primary, modules: { db: { ...db, mirror: { ...db.mirror, primary: { node: 'n1', epoch: 3, heardAt: 5 } } } } };
  const own = stepMember(self, { type: 'given-up', module: 'db', reason: { code: 'RESTART_GIVE_UP', text: 'x' } }, 20);
  assert.deepEqual(own.actions.filter((a) => a.type === 'send' && a.message.type === 'out-of-service'), []);
});

test('given up while its lease transfer is under way: no release; the target gets the hand-over, and this node stops being the replication primary', () => {
  // The final barrier to n2 returned, the transfer went to the voters, and then the application is given up.
  const base = holding('handing-over', 'stopped');
  const db = base.modules.db!;
  const record = { holder: 'n1', epoch: 3, inSync: ['n2'], version: 2, baseEpoch: 2 };
  let s: MemberState = {
    ...base,
    client: { ...base.client!, modules: { db: { phase: 'transferring', epoch: 3, to: 'n2', record, validUntil: 500, requestId: 7, sentAt: 5, replies: {} } } },
    modules: { db: { ...db, mirror: { ...db.mirror, primary: { node: 'n1', epoch: 3, heardAt: 5 }, inSync: ['n2'], handOverTo: 'n2', transferAsked: true } } },
  };
  const actions: MemberAction[] = [];
  const given = stepMember(s, { type: 'given-up', module: 'db', reason: { code: 'RESTART_GIVE_UP', text: 'x' } }, 18);
  s = given.state;
  actions.push(...given.actions);
  assert.equal(s.client!.modules.db!.phase, 'transferring', 'the transfer is not cut short by a release');
  assert.ok(!actions.some((a) => a.type === 'send' && a.message.type === 'lease-release'));
  for (const voter of ['n2', 'w']) {
    const step = stepMember(s, { type: 'receive', from: voter, message: { type: 'lease-reply', module: 'db', requestId: 7, voter, granted: true, amnesiac: false, maxEpoch: 4 } }, 20);
    s = step.state;
    actions.push(...step.actions);
  }
  const handOver = actions.find((a) => a.type === 'send' && a.message.type === 'hand-over');
  assert.ok(handOver?.type === 'send' && handOver.to === 'n2' && handOver.message.type === 'hand-over' && handOver.message.epoch === 4 && handOver.message.senderOutOfService === true, 'n2 is told it holds the lease, and that n1 is out of service');
  assert.equal(s.modules.db!.mirror.role, 'out-of-service');
  assert.equal(s.modules.db!.primary, undefined, 'no longer announcing or shipping as primary');
  assert.equal(s.modules.db!.secondary.dataEpoch, 3, 'its data continues the epoch it served');
});
