/**
 * A member restarted from its disk fences by the epochs it knows were
 * granted, not by epochs it only tried: a secondary that once attempted a
 * lease it did not get (its persisted `epoch` above the primary's) still
 * follows the primary that holds it, instead of refusing it forever.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROFILES } from '../../../src/config/profiles.js';
import { initMember, stepMember, type MemberConfig, type MemberDisk } from '../../../src/logic/member.js';

const config: MemberConfig = {
  self: 'n2',
  nodes: ['n1', 'n2'],
  witnesses: ['w'],
  timings: PROFILES.lan,
  replication: { lagTimeout: 300, retransmitInterval: 100, maxLog: 100 },
  modules: [{ name: 'db', nodes: ['n1', 'n2'], failback: 'manual' }],
};

function afterAnnouncement(disk: MemberDisk): { primary?: string; refused: boolean } {
  let state = initMember(config, disk, 0);
  const step = stepMember(state, { type: 'receive', from: 'n1', message: { type: 'announce', module: 'db', epoch: 1, inSync: ['n2'] } }, 10);
  state = step.state;
  const refused = step.actions.some((a) => a.type === 'event' && a.reason.code === 'STALE_EPOCH_REFUSED');
  const primary = state.modules.db?.mirror.primary?.node;
  return { ...(primary ? { primary } : {}), refused };
}

test('a restarted secondary that once tried epoch 2 in vain follows the primary of epoch 1', () => {
  const got = afterAnnouncement({ modules: { db: { epoch: 2, dataEpoch: 1, applied: 40, fencing: 1 } } });
  assert.deepEqual(got, { primary: 'n1', refused: false });
});

test('one that knows epoch 2 was granted refuses the older primary', () => {
  const got = afterAnnouncement({ modules: { db: { epoch: 2, dataEpoch: 1, applied: 40, fencing: 2 } } });
  assert.equal(got.refused, true);
  assert.notEqual(got.primary, 'n1');
});

test('a disk from before `fencing` fences by its data epoch', () => {
  const got = afterAnnouncement({ modules: { db: { epoch: 2, dataEpoch: 1, applied: 40 } } });
  assert.deepEqual(got, { primary: 'n1', refused: false });
});

/** What n2 does with n1's hand-over of epoch 2, after n1's final barrier saw its data at 1:40. */
function onHandOver(disk: MemberDisk | undefined): { refused: boolean; acquiring: boolean; text?: string } {
  const state = initMember(config, disk, 0);
  const step = stepMember(state, { type: 'receive', from: 'n1', message: { type: 'hand-over', module: 'db', epoch: 2, inSync: ['n1'], dataEpoch: 1, seq: 40 } }, 10);
  const refusal = step.actions.find((a) => a.type === 'event' && a.reason.code === 'HAND_OVER_REFUSED');
  const told = step.actions.some((a) => a.type === 'send' && a.to === 'n1' && a.message.type === 'hand-over-refused');
  return { refused: Boolean(refusal) && told, acquiring: step.state.modules.db!.mirror.role === 'acquiring', ...(refusal?.type === 'event' ? { text: refusal.reason.text } : {}) };
}

test('a hand-over target holding the old primary\'s data takes the lease', () => {
  assert.deepEqual(onHandOver({ modules: { db: { epoch: 1, dataEpoch: 1, applied: 40, fencing: 1 } } }), { refused: false, acquiring: true });
});

test('a hand-over target that lost its disk after the final barrier refuses, saying where its data stands', () => {
  // Found by the simulator (3n, seed 3392909758): the target crashed and came back with an empty disk between
  // the final barrier and the transfer, adopted the lease, and resynced everyone from its empty data.
  const wiped = onHandOver(undefined);
  assert.equal(wiped.refused, true);
  assert.equal(wiped.acquiring, false);
  assert.match(wiped.text ?? '', /at 0:0, not at n1's 1:40/);
  assert.equal(onHandOver({ modules: { db: { epoch: 1, dataEpoch: 1, applied: 39, fencing: 1 } } }).refused, true, 'one change short');
});
