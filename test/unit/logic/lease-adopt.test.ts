/**
 * Rules found on real hosts (the namespace bed), each kept safe by the
 * simulator: a voter that missed an acquisition adopts the holder's renewals;
 * a node that sees no majority does not try; refusals say when the voter will
 * grant again (drift margin included); a secondary whose hello was lost says
 * it again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LeaseMessage, LeaseRecord } from '../../../src/logic/lease/messages.js';
import { initVoter, stepVoter, type VoterState } from '../../../src/logic/lease/voter.js';
import { initReplicationSecondary, stepReplicationSecondary } from '../../../src/logic/replication-secondary.js';
import { initMirror, stepMirror, type MirrorState } from '../../../src/logic/mirror-role.js';
import { TIMINGS } from './lease-bench.js';

const Q = TIMINGS.lease + TIMINGS.driftMargin;
const VOTERS = ['a', 'b', 'w'];

function ask(v: VoterState, from: string, message: LeaseMessage, now: number) {
  const step = stepVoter(v, { type: 'receive', from, message }, now);
  const send = step.actions.find((a) => a.type === 'send');
  return { state: step.state, reply: send?.type === 'send' && send.message.type === 'lease-reply' ? send.message : undefined };
}

const record = (holder: string, epoch: number): LeaseRecord => ({ holder, epoch, inSync: [], version: 1, baseEpoch: epoch - 1 });
const renew = (holder: string, epoch: number, withRecord = true): LeaseMessage => ({ type: 'lease-renew', module: 'db', requestId: 9, holder, epoch, ...(withRecord ? { record: record(holder, epoch) } : {}) });
const acquire = (candidate: string, epoch: number): LeaseMessage => ({ type: 'lease-acquire', module: 'db', requestId: 1, candidate, epoch, dataEpoch: 0 });

describe('majority lease: a voter that missed the acquisition', () => {
  it('adopts the holder\'s renewal of an epoch newer than any it knows, and stores its record', () => {
    const v = initVoter('w', VOTERS, TIMINGS, { modules: { db: { maxEpoch: 3, record: record('b', 3) } } }, 0);
    const r = ask(v, 'a', renew('a', 4), Q);
    assert.equal(r.reply?.granted, true);
    assert.equal(r.state.modules.db?.promise?.holder, 'a');
    assert.equal(r.state.modules.db?.record?.epoch, 4);
    // From then on it binds like any promise: another candidate is refused.
    assert.equal(ask(r.state, 'b', acquire('b', 5), Q + 10).reply?.refusal, 'PROMISED');
  });

  it('adopts past a failed attempt (maxEpoch raised, nothing held), refuses a holder older than the newest held', () => {
    const attempt = initVoter('b', VOTERS, TIMINGS, { modules: { db: { maxEpoch: 6, record: record('b', 3) } } }, 0);
    assert.equal(ask(attempt, 'a', renew('a', 4), Q).reply?.granted, true, 'epoch 6 was only asked for');
    const v = initVoter('w', VOTERS, TIMINGS, { modules: { db: { maxEpoch: 5, record: record('b', 5) } } }, 0);
    assert.equal(ask(v, 'a', renew('a', 4), Q).reply?.refusal, 'NOT_HOLDER', 'epoch 5 was held: a holder of 4 is stale');
  });

  it('refuses during quarantine, without a record, or while promised to another', () => {
    const fresh = initVoter('w', VOTERS, TIMINGS, { modules: { db: { maxEpoch: 3 } } }, 0);
    assert.equal(ask(fresh, 'a', renew('a', 4), Q - 1).reply?.refusal, 'NOT_HOLDER', 'quarantine');
    assert.equal(ask(fresh, 'a', renew('a', 4, false), Q).reply?.refusal, 'NOT_HOLDER', 'no record in hand');
    const promised = ask(fresh, 'b', acquire('b', 4), Q).state;
    assert.equal(ask(promised, 'a', renew('a', 4), Q + 1).reply?.refusal, 'NOT_HOLDER');
  });

  it('an amnesiac voter does not adopt (it would take the holder\'s record for knowledge it lacks)', () => {
    const v = initVoter('w', VOTERS, TIMINGS, undefined, 0);
    assert.equal(ask(v, 'a', renew('a', 4), Q).reply?.refusal, 'NOT_HOLDER');
  });
});

describe('mirror role: quorum before action', () => {
  it('a node that sees no majority of voters alive does not ask for the lease, and asks again once it does', () => {
    // b is second in rank: its first attempt would be 200 ms in; both others die before.
    let m = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], timings: { lease: 800, renewInterval: 200 }, voters: 3, now: 0 });
    m = stepMirror(m, { type: 'member', member: 'a', status: 'dead' }, 10).state;
    let step = stepMirror(m, { type: 'member', member: 'w', status: 'dead' }, 20);
    assert.equal(step.state.role, 'secondary');
    step = stepMirror(step.state, { type: 'tick' }, 5000);
    assert.equal(step.state.role, 'secondary', 'alone of three voters: no attempt');
    assert.ok(!step.actions.some((a) => a.type === 'lease-acquire'));
    const wake = step.actions.find((a) => a.type === 'wake');
    assert.ok(wake?.type === 'wake' && wake.at > 5000, 'no busy loop: the next look is later');
    step = stepMirror(step.state, { type: 'member', member: 'w', status: 'alive' }, 5300);
    assert.ok(step.actions.some((a) => a.type === 'lease-acquire'), 'with the witness back, a majority is alive');
  });
});

describe('majority lease: refusals say when the voter grants again', () => {
  it('remaining includes the drift margin the promise binds past its end', () => {
    const v = ask(initVoter('w', VOTERS, TIMINGS, { modules: {} }, 0), 'a', acquire('a', 1), Q).state;
    const r = ask(v, 'b', acquire('b', 2), Q + 100);
    assert.equal(r.reply?.refusal, 'PROMISED');
    const remaining = r.reply!.promise!.remaining;
    assert.equal(remaining, TIMINGS.lease + TIMINGS.driftMargin - 100);
    assert.equal(ask(v, 'b', acquire('b', 2), Q + 100 + remaining - 1).reply?.refusal, 'PROMISED');
    assert.equal(ask(v, 'b', acquire('b', 2), Q + 100 + remaining).reply?.granted, true);
  });
});

describe('replication: a secondary whose hello was lost', () => {
  it('says hello again with each announcement until the primary has sent something or counts it in sync', () => {
    let s = initReplicationSecondary({ module: 'db', self: 'b', dataEpoch: 1, applied: 0 });
    const first = stepReplicationSecondary(s, { type: 'primary', node: 'a', epoch: 2, inSync: [] }, 0);
    assert.deepEqual(first.actions.map((a) => a.type === 'send' && a.message.type), ['repl-hello']);
    s = first.state;
    let again = stepReplicationSecondary(s, { type: 'primary', node: 'a', epoch: 2, inSync: [] }, 150);
    for (let i = 2; i <= 3; i++) {
      assert.deepEqual(again.actions, [], 'a resync the hello started gets time to begin');
      again = stepReplicationSecondary(again.state, { type: 'primary', node: 'a', epoch: 2, inSync: [] }, 150 * i);
    }
    assert.deepEqual(again.actions, []);
    again = stepReplicationSecondary(again.state, { type: 'primary', node: 'a', epoch: 2, inSync: [] }, 600);
    assert.deepEqual(again.actions.map((a) => a.type === 'send' && a.message.type), ['repl-hello'], 'the first may have been lost: again after four announcements');
    assert.deepEqual(stepReplicationSecondary(s, { type: 'primary', node: 'a', epoch: 2, inSync: ['b'] }, 200).actions, [], 'in sync: nothing to say');
    s = stepReplicationSecondary(s, { type: 'receive', from: 'a', message: { type: 'repl-snapshot', module: 'db', epoch: 2, seq: 0, data: '' } }, 210).state;
    assert.deepEqual(stepReplicationSecondary(s, { type: 'primary', node: 'a', epoch: 2, inSync: [] }, 400).actions, [], 'the primary is talking to us');
  });
});

describe('mirror role: failback to a node that is out of service', () => {
  const T = { lease: 600, renewInterval: 150 };
  it('the out-of-service node refuses the hand-over; the old primary takes the lease back and does not offer it again soon', () => {
    // n1 preferred, given up (out of service); n2 handed it over anyway because n1 is in sync.
    let n1 = initMirror({ module: 'db', self: 'n1', nodes: ['n1', 'n2'], preferredNode: 'n1', failback: 'automatic', timings: T, voters: 3, now: 0 });
    n1 = stepMirror(n1, { type: 'given-up', reason: { code: 'RESTART_GIVE_UP', text: 'x' } }, 10).state;
    const refused = stepMirror(n1, { type: 'hand-over', from: 'n2', epoch: 5, inSync: ['n1'] }, 20);
    assert.equal(refused.state.role, 'out-of-service');
    assert.deepEqual(refused.actions.filter((a) => a.type === 'refuse-hand-over').map((a) => a.type === 'refuse-hand-over' && [a.to, a.epoch]), [['n2', 5]]);

    // n2 after its hand-over to n1: it believes n1 is primary now.
    let n2: MirrorState = { ...initMirror({ module: 'db', self: 'n2', nodes: ['n1', 'n2'], preferredNode: 'n1', failback: 'automatic', timings: T, voters: 3, epoch: 5, now: 0 }), primary: { node: 'n1', epoch: 5, heardAt: 25 } };
    assert.deepEqual(stepMirror(n2, { type: 'hand-over-refused', from: 'x', epoch: 5 }, 30).actions.filter((a) => a.type === 'lease-acquire'), [], 'only from the node handed over to');
    const back = stepMirror(n2, { type: 'hand-over-refused', from: 'n1', epoch: 5 }, 30);
    assert.ok(back.actions.some((a) => a.type === 'lease-acquire'), 'asks for the lease at once');
    n2 = stepMirror(back.state, { type: 'lease-acquired', epoch: 6, inSync: ['n1'], forced: false, reason: { code: 'LEASE_ACQUIRED', text: 'x' } }, 40).state;
    const running = stepMirror(n2, { type: 'app-started' }, 50);
    assert.equal(running.state.role, 'primary');
    assert.ok(!running.actions.some((a) => a.type === 'stop-app'), 'no failback to n1 during the hold-off');
    const later = stepMirror(running.state, { type: 'tick' }, 50 + 101 * T.lease);
    assert.equal(later.state.role, 'handing-over', 'after the hold-off, failback is offered again');
  });
});
