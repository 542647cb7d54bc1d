import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LEASE_REASONS as R, stepClient } from '../../../src/logic/lease/client.js';
import { initVoter, stepVoter } from '../../../src/logic/lease/voter.js';
import type { LeaseRecord } from '../../../src/logic/lease/messages.js';
import { LeaseBench, TIMINGS } from './lease-bench.js';

const Q = TIMINGS.lease + TIMINGS.driftMargin; // voters' start-up quarantine

/** a and b are nodes, w a witness; a becomes primary of `db` right after the quarantine. */
function primaryOnA(): LeaseBench {
  const bench = new LeaseBench(['a', 'b', 'w'], ['a', 'b']);
  bench.runUntil(Q);
  bench.client('a', { type: 'acquire', module: 'db', dataEpoch: 0 });
  bench.runUntil(Q + 10);
  assert.equal(bench.reported('a', 'lease-acquired').length, 1, 'a acquires the lease');
  return bench;
}

describe('majority lease: voter', () => {
  it('refuses every acquisition during its start-up quarantine, then grants', () => {
    const v0 = initVoter('w', ['a', 'b', 'w'], TIMINGS, { modules: {} }, 1000);
    const early = stepVoter(v0, { type: 'receive', from: 'a', message: { type: 'lease-acquire', module: 'db', requestId: 1, candidate: 'a', epoch: 1, dataEpoch: 0 } }, 1000 + Q - 1);
    assert.deepEqual(early.actions.map((a) => a.type), ['send']);
    const reply = early.actions[0]!.type === 'send' ? early.actions[0]!.message : undefined;
    assert.equal(reply?.type === 'lease-reply' && reply.granted, false);
    assert.equal(reply?.type === 'lease-reply' && reply.refusal, 'QUARANTINE');
    const late = stepVoter(v0, { type: 'receive', from: 'a', message: { type: 'lease-acquire', module: 'db', requestId: 2, candidate: 'a', epoch: 1, dataEpoch: 0 } }, 1000 + Q);
    assert.deepEqual(late.actions.map((a) => a.type), ['persist', 'send'], 'persists the promise before replying');
    assert.equal(late.actions[1]!.type === 'send' && late.actions[1]!.message.type === 'lease-reply' && late.actions[1]!.message.granted, true);
  });

  it('stays amnesiac across a restart until it caught up, even after persisting a promise', () => {
    let v = initVoter('w', ['a', 'b', 'w'], TIMINGS, undefined, 0);
    const step = stepVoter(v, { type: 'receive', from: 'a', message: { type: 'lease-acquire', module: 'db', requestId: 1, candidate: 'a', epoch: 3, dataEpoch: 0 } }, Q);
    const persisted = step.actions.find((a) => a.type === 'persist');
    assert.ok(persisted?.type === 'persist');
    v = initVoter('w', ['a', 'b', 'w'], TIMINGS, persisted.disk, 5000);
    assert.equal(v.amnesiac, true);
    assert.equal(v.modules.db?.amnesiac, true);
  });

  it('refuses, promising nothing, a candidate that its record says may not take over — unless its record is the stale one', () => {
    const record = { holder: 'a', epoch: 3, inSync: ['b'], version: 2, baseEpoch: 2 };
    const v = initVoter('w', ['a', 'b', 'c', 'w', 'x'], TIMINGS, { modules: { db: { record, maxEpoch: 3 } } }, 0);
    const ask = (candidate: string, dataEpoch: number, force?: boolean) => {
      const step = stepVoter(v, { type: 'receive', from: candidate, message: { type: 'lease-acquire', module: 'db', requestId: 1, candidate, epoch: 4, dataEpoch, ...(force ? { force } : {}) } }, Q);
      const send = step.actions.find((a) => a.type === 'send');
      return { reply: send?.type === 'send' && send.message.type === 'lease-reply' ? send.message : undefined, persisted: step.actions.some((a) => a.type === 'persist') };
    };
    const lagging = ask('c', 3);
    assert.equal(lagging.reply?.refusal, 'NOT_IN_SYNC');
    assert.equal(lagging.persisted, false, 'no promise made');
    assert.equal(ask('b', 3).reply?.granted, true, 'an in-sync node is granted');
    assert.equal(ask('c', 5).reply?.granted, true, 'data from a later epoch shows the voter\'s record is stale: the candidate decides with the majority');
    assert.equal(ask('c', 3, true).reply?.granted, true, 'an operator may force');
  });

  it('takes a newer record that a candidate carries before judging it, and ignores an older one', () => {
    // Found by the simulator (3n+w, seed 2116425407): voters split two and two between records v2 and v18 of the
    // same holder; each half refused the other's in-sync node, and no primary came back until an operator acted.
    const stale = { holder: 'b', epoch: 3, inSync: ['c'], version: 2, baseEpoch: 2 };
    const newer = { holder: 'b', epoch: 3, inSync: ['a'], version: 18, baseEpoch: 2 };
    const v = initVoter('w', ['a', 'b', 'c', 'w'], TIMINGS, { modules: { db: { record: stale, maxEpoch: 21 } } }, 0);
    const ask = (candidate: string, record?: typeof stale) => {
      const step = stepVoter(v, { type: 'receive', from: candidate, message: { type: 'lease-acquire', module: 'db', requestId: 1, candidate, epoch: 22, dataEpoch: 3, ...(record ? { record } : {}) } }, Q);
      const send = step.actions.find((x) => x.type === 'send');
      return { reply: send?.type === 'send' && send.message.type === 'lease-reply' ? send.message : undefined, state: step.state };
    };
    assert.equal(ask('a').reply?.refusal, 'NOT_IN_SYNC', 'by its own (stale) record, a is not in sync');
    const told = ask('a', newer);
    assert.equal(told.reply?.granted, true);
    assert.equal(told.state.modules.db!.record!.version, 18, 'it keeps the newer record');
    assert.equal(told.reply?.record?.version, 18, 'and replies with it');
    const older = ask('c', { ...stale, version: 1, inSync: ['a'] });
    assert.equal(older.state.modules.db!.record!.version, 2, 'an older record changes nothing');
  });

  it('refuses a stale epoch and reports the highest it has seen', () => {
    let v = initVoter('w', ['a', 'b', 'w'], TIMINGS, { modules: { db: { maxEpoch: 5 } } }, 0);
    const r = stepVoter(v, { type: 'receive', from: 'a', message: { type: 'lease-acquire', module: 'db', requestId: 1, candidate: 'a', epoch: 5, dataEpoch: 0 } }, Q);
    v = r.state;
    const reply = r.actions.find((a) => a.type === 'send');
    assert.equal(reply?.type === 'send' && reply.message.type === 'lease-reply' && reply.message.refusal, 'STALE_EPOCH');
    assert.equal(reply?.type === 'send' && reply.message.type === 'lease-reply' && reply.message.maxEpoch, 5);
  });

  it('keeps a promise until it expired plus the drift margin, on its own clock', () => {
    let v = initVoter('w', ['a', 'b', 'w'], TIMINGS, { modules: {} }, 0);
    v = stepVoter(v, { type: 'receive', from: 'a', message: { type: 'lease-acquire', module: 'db', requestId: 1, candidate: 'a', epoch: 1, dataEpoch: 0 } }, Q).state;
    const ask = (at: number) => {
      const s = stepVoter(v, { type: 'receive', from: 'b', message: { type: 'lease-acquire', module: 'db', requestId: 2, candidate: 'b', epoch: 2, dataEpoch: 0 } }, at);
      const send = s.actions.find((a) => a.type === 'send');
      return send?.type === 'send' && send.message.type === 'lease-reply' ? send.message : undefined;
    };
    assert.equal(ask(Q + TIMINGS.lease + TIMINGS.driftMargin - 1)?.refusal, 'PROMISED');
    assert.equal(ask(Q + TIMINGS.lease + TIMINGS.driftMargin)?.granted, true);
  });
});

describe('majority lease: client and voters together', () => {
  it('acquires with a majority, commits its record, then renews every renew_interval', () => {
    const bench = primaryOnA();
    const acquired = bench.reported('a', 'lease-acquired')[0]!;
    assert.equal(acquired.epoch, 1);
    assert.equal(acquired.reason.code, R.LEASE_ACQUIRED);
    assert.deepEqual(acquired.record, { holder: 'a', epoch: 1, inSync: [], version: 1, baseEpoch: 0 });
    bench.runUntil(Q + 2000);
    const renewals = bench.reported('a', 'lease-renewed');
    assert.ok(renewals.length >= 9, `renewed ${renewals.length} times in 2 s`);
    assert.equal(bench.reported('a', 'lease-lost').length, 0);
  });

  it('a second candidate is refused while the primary renews, and learns who holds it', () => {
    const bench = primaryOnA();
    bench.runUntil(Q + 500);
    bench.client('b', { type: 'acquire', module: 'db', dataEpoch: 1 });
    bench.runUntil(Q + 520);
    const failed = bench.reported('b', 'acquire-failed')[0]!;
    assert.equal(failed.reason.code, R.LEASE_PROMISED_ELSEWHERE);
    assert.equal(failed.holder, 'a');
    assert.ok(failed.retryAfter !== undefined && failed.retryAfter > 0);
  });

  it('after the primary crashes, a new holder gets the lease only after the old deadline plus the margin', () => {
    const bench = primaryOnA();
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: ['b'] });
    bench.runUntil(Q + 300);
    assert.equal(bench.reported('a', 'record-committed').at(-1)?.record.inSync.join(), 'b');
    bench.crash('a');
    const crashAt = bench.now;
    const lastValidUntil = Math.max(...[...bench.reported('a', 'lease-renewed').map((r) => r.validUntil), bench.reported('a', 'lease-acquired')[0]!.validUntil]);
    // b tries again and again, as the role logic would.
    let acquiredAt: number | undefined;
    for (let t = crashAt; t < crashAt + 3000 && acquiredAt === undefined; t += 50) {
      bench.client('b', { type: 'acquire', module: 'db', dataEpoch: 1 });
      bench.runUntil(t + 50);
      acquiredAt = bench.firstAt('b', 'lease-acquired');
    }
    assert.ok(acquiredAt !== undefined, 'b became primary');
    assert.ok(acquiredAt >= lastValidUntil + TIMINGS.driftMargin, `b acquired at ${acquiredAt}, a's deadline was ${lastValidUntil}`);
    assert.ok(acquiredAt - crashAt <= TIMINGS.lease + TIMINGS.driftMargin + 100, `failover took ${acquiredAt - crashAt}ms`);
    assert.equal(bench.reported('b', 'lease-acquired')[0]!.epoch, 2);
  });

  it('a node that is not in the in-sync set is refused, unless forced (which says data may be lost)', () => {
    const bench = new LeaseBench(['a', 'b', 'c', 'w', 'x'], ['a', 'b', 'c']);
    bench.runUntil(Q);
    bench.client('a', { type: 'acquire', module: 'db', dataEpoch: 0 });
    bench.runUntil(Q + 10);
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: ['b'] });
    bench.runUntil(Q + 300);
    bench.crash('a');
    bench.runUntil(Q + 300 + Q);
    // c holds epoch 1 data but lagged: it was never in the in-sync set.
    bench.client('c', { type: 'acquire', module: 'db', dataEpoch: 1 });
    bench.runUntil(bench.now + 50);
    const refused = bench.reported('c', 'acquire-failed').at(-1)!;
    assert.equal(refused.reason.code, R.LEASE_NOT_IN_SYNC);
    assert.equal(bench.reported('c', 'lease-acquired').length, 0);
    bench.client('c', { type: 'acquire', module: 'db', dataEpoch: 1, force: true });
    bench.runUntil(bench.now + 50);
    const forced = bench.reported('c', 'lease-acquired')[0]!;
    assert.equal(forced.forced, true);
    assert.equal(forced.reason.code, R.LEASE_ACQUIRED_FORCED);
    assert.match(forced.reason.text, /data may be lost/);
    assert.equal(forced.record.forced, true);
  });

  it('an amnesiac voter cannot make a stale in-sync record look current', () => {
    // a is primary with b in sync; b is cut off; a commits inSync [] (b lagging) on a and w only.
    const bench = primaryOnA();
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: ['b'] });
    bench.runUntil(Q + 100);
    bench.isolate('b');
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: [] });
    bench.runUntil(Q + 300);
    assert.deepEqual(bench.reported('a', 'record-committed').at(-1)?.record.inSync, []);
    // Then a dies and w restarts without its disk: only b's own voter still says "b is in sync".
    bench.crash('a');
    bench.crash('w');
    bench.boot('w', false);
    bench.heal();
    bench.runUntil(bench.now + Q + 10);
    bench.client('b', { type: 'acquire', module: 'db', dataEpoch: 1 });
    bench.runUntil(bench.now + 500);
    assert.equal(bench.reported('b', 'lease-acquired').length, 0, 'b must not become primary from a stale record');
    assert.ok(bench.reported('b', 'acquire-failed').length >= 1);
  });

  it('a voter that lost its disk catches up from a majority of knowing voters, so failover still works', () => {
    const bench = primaryOnA();
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: ['b'] });
    bench.runUntil(Q + 100);
    bench.crash('w');
    bench.boot('w', false);
    bench.runUntil(Q + 400);
    assert.equal(bench.voters.get('w')!.amnesiac, false, 'w learned the record from a and b');
    assert.deepEqual(bench.voters.get('w')!.modules.db?.record?.inSync, ['b']);
    bench.crash('a');
    let acquired = false;
    for (let t = bench.now; t < bench.now + 3000 && !acquired; t += 50) {
      bench.client('b', { type: 'acquire', module: 'db', dataEpoch: 1 });
      bench.runUntil(t + 50);
      acquired = bench.reported('b', 'lease-acquired').length > 0;
    }
    assert.ok(acquired, 'b, in sync, takes over with the votes of b and the caught-up w');
  });

  it('when the in-sync set empties, its last members still hold every acknowledged change and may take over', () => {
    const bench = primaryOnA();
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: ['b'] });
    bench.runUntil(Q + 100);
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: [] });
    bench.runUntil(Q + 200);
    const record = bench.reported('a', 'record-committed').at(-1)!.record;
    assert.deepEqual(record.inSync, []);
    assert.deepEqual(record.lastInSync, ['b']);
    bench.crash('a');
    bench.runUntil(Q + 200 + Q);
    bench.client('b', { type: 'acquire', module: 'db', dataEpoch: 1 });
    bench.runUntil(bench.now + 50);
    assert.equal(bench.reported('b', 'lease-acquired').length, 1);
  });

  it('a node named in the record whose data does not continue its epoch (a lost disk) is refused', () => {
    const bench = primaryOnA();
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: ['b'] });
    bench.runUntil(Q + 100);
    bench.crash('a');
    bench.runUntil(Q + 100 + Q);
    bench.client('b', { type: 'acquire', module: 'db', dataEpoch: 0 });
    bench.runUntil(bench.now + 50);
    const refused = bench.reported('b', 'acquire-failed').at(-1)!;
    assert.equal(refused.reason.code, R.LEASE_NOT_IN_SYNC);
    assert.match(refused.reason.text, /continues epoch 0, not epoch 1/);
    // The same holds for the old holder itself after it lost its disk.
    bench.boot('a', false);
    bench.runUntil(bench.now + Q);
    bench.client('a', { type: 'acquire', module: 'db', dataEpoch: 0 });
    bench.runUntil(bench.now + 50);
    assert.equal(bench.reported('a', 'lease-acquired').length, 1, 'only the first acquisition, before the loss');
  });

  it('a primary cut off from the majority reports the lease lost at its deadline, never later', () => {
    const bench = primaryOnA();
    bench.runUntil(Q + 400);
    bench.isolate('a');
    const lastValid = bench.reported('a', 'lease-renewed').at(-1)!.validUntil;
    bench.runUntil(Q + 3000);
    const lostAt = bench.firstAt('a', 'lease-lost');
    assert.equal(lostAt, lastValid);
    assert.equal(bench.reported('a', 'lease-lost')[0]!.reason.code, R.LEASE_EXPIRED);
    assert.ok(bench.reported('a', 'lease-at-risk').length >= 1, 'warned before the end');
  });

  it('switchover: transfer to an in-sync node, which adopts the next epoch; the old holder cannot renew', () => {
    const bench = primaryOnA();
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: ['b'] });
    bench.runUntil(Q + 100);
    bench.client('a', { type: 'transfer', module: 'db', to: 'b' });
    bench.runUntil(Q + 110);
    const transferred = bench.reported('a', 'transferred')[0]!;
    assert.equal(transferred.epoch, 2);
    bench.client('b', { type: 'adopt', module: 'db', epoch: 2, inSync: ['a'], dataEpoch: 1 });
    bench.runUntil(Q + 120);
    const adopted = bench.reported('b', 'lease-acquired')[0]!;
    assert.equal(adopted.epoch, 2);
    assert.deepEqual(adopted.record.inSync, ['a']);
    // a is idle now: a stray renewal of epoch 1 would be refused by every voter.
    assert.equal(bench.clients.get('a')!.modules.db!.phase, 'idle');
  });

  it('a transfer to a node that the holder\'s record does not count in sync is refused, and the holder keeps the promise', () => {
    const record = { holder: 'a', epoch: 3, inSync: ['c'], version: 4, baseEpoch: 2 };
    const v = initVoter('w', ['a', 'b', 'c', 'w'], TIMINGS, { modules: { db: { record, maxEpoch: 3, promise: { holder: 'a', epoch: 3 } } } }, 0);
    const transfer = (to: string) => {
      const step = stepVoter(v, { type: 'receive', from: 'a', message: { type: 'lease-transfer', module: 'db', requestId: 9, holder: 'a', epoch: 3, to } }, Q);
      const send = step.actions.find((x) => x.type === 'send');
      return { reply: send?.type === 'send' && send.message.type === 'lease-reply' ? send.message : undefined, step };
    };
    const lagging = transfer('b');
    assert.equal(lagging.reply?.granted, false);
    assert.equal(lagging.reply?.refusal, 'NOT_IN_SYNC');
    assert.equal(lagging.step.state.modules.db!.promise!.holder, 'a', 'the promise stays with the holder');
    const inSync = transfer('c');
    assert.equal(inSync.reply?.granted, true);
    assert.deepEqual([inSync.step.state.modules.db!.promise!.holder, inSync.step.state.modules.db!.promise!.epoch], ['c', 4]);
  });

  it('a grant renews the lease at once; a record is committed only by grants that name it (stored durably)', () => {
    // A voter behind a busy disk grants a renewal naming the record it holds for certain, and names the new one
    // once it is written: the lease never waits for that fsync, the commit does.
    const bench = primaryOnA();
    let client = bench.clients.get('a')!;
    const step = (event: Parameters<typeof stepClient>[1], at: number) => {
      const r = stepClient(client, event, at);
      client = r.state;
      return r.actions;
    };
    const t0 = bench.now;
    const renewals = step({ type: 'set-in-sync', module: 'db', inSync: ['b'] }, t0).filter((a) => a.type === 'send');
    const renew = renewals[0]!.type === 'send' ? renewals[0]!.message : undefined;
    assert.ok(renew?.type === 'lease-renew' && renew.record?.inSync.join() === 'b');
    const held = client.modules.db!;
    assert.ok(held.phase === 'holding');
    const old = held.record;
    const reply = (voter: string, record: typeof old, requestId: number) => ({ type: 'receive' as const, from: voter, message: { type: 'lease-reply' as const, module: 'db', requestId, voter, granted: true, amnesiac: false, maxEpoch: 1, record, promise: { holder: 'a', epoch: 1, remaining: 800 } } });
    const first = [...step(reply('a', old, renew.requestId), t0 + 1), ...step(reply('w', old, renew.requestId), t0 + 2)];
    assert.deepEqual(first.filter((a) => a.type !== 'wake' && a.type !== 'send').map((a) => a.type), ['lease-renewed'], 'renewed, not committed');
    const after = client.modules.db!;
    assert.ok(after.phase === 'holding' && after.record.version === old.version && after.pending?.inSync.join() === 'b', 'the record stays pending');
    const again = step({ type: 'tick' }, t0 + TIMINGS.renewInterval).find((a) => a.type === 'send');
    const renew2 = again?.type === 'send' ? again.message : undefined;
    assert.ok(renew2?.type === 'lease-renew' && renew2.record?.inSync.join() === 'b', 'the next renewal carries it again');
    // The voters' first answers to it name the old record again; the replies naming the new one follow their
    // writes, in the same round, and commit it then — without another renewal interval.
    const granted = [...step(reply('a', old, renew2.requestId), t0 + 201), ...step(reply('w', old, renew2.requestId), t0 + 202)];
    assert.deepEqual(granted.filter((a) => a.type === 'lease-renewed' || a.type === 'record-committed').map((a) => a.type), ['lease-renewed']);
    const second = [...step(reply('a', renew2.record!, renew2.requestId), t0 + 230), ...step(reply('w', renew2.record!, renew2.requestId), t0 + 231)];
    assert.deepEqual(second.filter((a) => a.type === 'record-committed').map((a) => (a.type === 'record-committed' ? a.record.inSync.join() : '')), ['b']);
    assert.equal(second.filter((a) => a.type === 'lease-renewed').length, 0, 'renewed once per round');
    const next = step({ type: 'tick' }, t0 + 2 * TIMINGS.renewInterval).filter((a) => a.type === 'lease-at-risk');
    assert.deepEqual(next, [], 'a round that was granted is not a renewal at risk');
  });

  it('release lets another node acquire at once, without waiting for the lease to run out', () => {
    const bench = primaryOnA();
    bench.client('a', { type: 'set-in-sync', module: 'db', inSync: ['b'] });
    bench.runUntil(Q + 100);
    bench.client('a', { type: 'release', module: 'db' });
    bench.runUntil(Q + 105);
    bench.client('b', { type: 'acquire', module: 'db', dataEpoch: 1 });
    bench.runUntil(Q + 120);
    assert.equal(bench.reported('b', 'lease-acquired')[0]?.epoch, 2);
  });

  it('voters of a new cluster learn from each other that there is nothing to catch up on', () => {
    const bench = new LeaseBench(['a', 'b', 'w'], ['a', 'b']);
    for (const m of ['a', 'b', 'w']) bench.boot(m, false);
    bench.runUntil(50);
    for (const m of ['a', 'b', 'w']) assert.equal(bench.voters.get(m)!.amnesiac, false, m);
  });

  it('no record anywhere is not a new cluster while a member still holds data', () => {
    // Every voter lost its record (or never had one), but b's member still holds epoch-3 data.
    const bench = new LeaseBench(['a', 'b', 'w'], ['a', 'b']);
    for (const m of ['a', 'b', 'w']) bench.boot(m, false);
    bench.voters.set('b', stepVoter(bench.voters.get('b')!, { type: 'local-data', module: 'db', dataEpoch: 3 }, 0).state);
    bench.runUntil(Q);
    for (const m of ['a', 'b', 'w']) assert.equal(bench.voters.get(m)!.amnesiac, true, `${m} must not conclude the cluster is new`);
    bench.client('a', { type: 'acquire', module: 'db', dataEpoch: 0 });
    bench.runUntil(Q + 300);
    assert.equal(bench.reported('a', 'lease-acquired').length, 0, 'a, with no data, must not start an empty history over b\'s data');
    assert.equal(bench.reported('a', 'acquire-failed').at(-1)?.reason.code, R.LEASE_UNKNOWN_STATE);
  });

  // Found by the simulator (2n+w, seed 2801785463): at the cluster's birth w learned first that nobody held a record;
  // b's first lease was stored on w alone and lapsed. a and b, never knowing, each waited for a majority of knowing
  // others, and no candidate could ever tell who was in sync.
  for (const [story, record, dataOf, elected] of [
    ['a first lease stored on one voter only, nobody holding data: still a new cluster', { holder: 'b', epoch: 1, inSync: [], version: 1, baseEpoch: 0 }, undefined, true],
    ['also after a second such lease that replaced the first', { holder: 'a', epoch: 2, inSync: [], version: 1, baseEpoch: 0, previous: { holder: 'b', epoch: 1, inSync: [], version: 1, baseEpoch: 0 } }, undefined, true],
    ['not once that record had an in-sync secondary (acknowledged writes may exist)', { holder: 'b', epoch: 1, inSync: ['a'], version: 2, baseEpoch: 0 }, undefined, false],
    ['nor once a member holds data', { holder: 'b', epoch: 1, inSync: [], version: 1, baseEpoch: 0 }, 'b', false],
  ] as const) {
    it(story, () => {
      const bench = new LeaseBench(['a', 'b', 'w'], ['a', 'b']);
      for (const m of ['a', 'b']) bench.boot(m, false);
      bench.voters.set('w', initVoter('w', ['a', 'b', 'w'], TIMINGS, { modules: { db: { record: structuredClone(record) as LeaseRecord, maxEpoch: record.epoch } } }, 0));
      if (dataOf) bench.voters.set(dataOf, stepVoter(bench.voters.get(dataOf)!, { type: 'local-data', module: 'db', dataEpoch: 1 }, 0).state);
      bench.runUntil(Q);
      for (const m of ['a', 'b']) assert.equal(bench.voters.get(m)!.amnesiac, true, `${m} has not caught up: one knowing voter is not a majority`);
      bench.client('a', { type: 'acquire', module: 'db', dataEpoch: 0 });
      bench.runUntil(Q + 300);
      assert.equal(bench.reported('a', 'lease-acquired').length, elected ? 1 : 0);
      if (!elected) assert.equal(bench.reported('a', 'acquire-failed').at(-1)?.reason.code, R.LEASE_UNKNOWN_STATE);
      else {
        // Its renewals teach a and b the record: the cluster knows itself again.
        bench.runUntil(Q + 300 + TIMINGS.lease);
        for (const m of ['a', 'b']) assert.equal(bench.voters.get(m)!.modules.db?.amnesiac, false, `${m} knows db`);
      }
    });
  }

  it('a new cluster bootstraps only when every voter answered', () => {
    const bench = new LeaseBench(['a', 'b', 'w'], ['a', 'b']);
    for (const m of ['a', 'b', 'w']) bench.boot(m, false); // fresh data dirs look like lost disks
    bench.crash('w');
    bench.runUntil(Q);
    bench.client('a', { type: 'acquire', module: 'db', dataEpoch: 0 });
    bench.runUntil(Q + 300);
    assert.equal(bench.reported('a', 'lease-acquired').length, 0, 'two of three voters cannot prove there is no record');
    bench.boot('w', false);
    bench.runUntil(bench.now + Q);
    bench.client('a', { type: 'acquire', module: 'db', dataEpoch: 0 });
    bench.runUntil(bench.now + 50);
    assert.equal(bench.reported('a', 'lease-acquired').length, 1);
  });
});
