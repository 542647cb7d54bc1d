/** When a voter's reply may leave: only what is durable, a renewal's grant at once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planVoterReply } from '../../../src/agent/voter-replies.js';
import type { LeaseRecord, LeaseReply } from '../../../src/logic/lease/messages.js';
import type { VoterDisk } from '../../../src/logic/lease/voter.js';

const v3: LeaseRecord = { holder: 'n1', epoch: 2, inSync: ['n2'], version: 3, baseEpoch: 1 };
const v4: LeaseRecord = { ...v3, inSync: [], version: 4 };
const grant = (record: LeaseRecord = v4): LeaseReply => ({ type: 'lease-reply', module: 'db', requestId: 7, voter: 'w', granted: true, amnesiac: false, maxEpoch: 2, record, promise: { holder: 'n1', epoch: 2, remaining: 600 } });
const disk = (record: LeaseRecord = v3, promise = { holder: 'n1', epoch: 2 }): VoterDisk => ({ modules: { db: { record, maxEpoch: 2, promise } } });

describe('voter replies', () => {
  it('a renewal grant while a new record is being written: at once naming the durable record, then the reply itself', () => {
    const plan = planVoterReply(grant(), disk());
    assert.equal(plan.now?.granted, true);
    assert.equal(plan.now?.record?.version, 3, 'names only what is on disk');
    assert.equal(plan.afterWrite, true, 'the reply naming version 4 follows the write');
  });

  it('a renewal grant naming what is already durable goes at once, and only once', () => {
    const plan = planVoterReply(grant(v3), disk());
    assert.equal(plan.now?.record?.version, 3);
    assert.equal(plan.afterWrite, false);
  });

  it('waits for the write: a grant whose promise is not on disk yet (an acquisition, a transfer), a refusal, an amnesiac voter', () => {
    assert.deepEqual(planVoterReply(grant(), disk(v3, { holder: 'n2', epoch: 1 })), { afterWrite: true }, 'a new promise');
    assert.deepEqual(planVoterReply(grant(), { modules: {} }), { afterWrite: true }, 'nothing durable');
    assert.deepEqual(planVoterReply({ ...grant(), granted: false, refusal: 'PROMISED' }, disk()), { afterWrite: true });
    assert.deepEqual(planVoterReply({ ...grant(), amnesiac: true }, disk()), { afterWrite: true });
    assert.deepEqual(planVoterReply(grant(), { ...disk(), amnesiac: true }), { afterWrite: true });
  });
});
