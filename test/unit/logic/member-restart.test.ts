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
