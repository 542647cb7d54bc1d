import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initMirror, MIRROR_REASONS as R, stepMirror, type MirrorAction, type MirrorEvent, type MirrorState } from '../../../src/logic/mirror-role.js';
import { reason } from '../../../src/logic/step.js';

const T = { lease: 800, renewInterval: 200 };
const why = reason('TEST', 'test');

/** Feeds events in order; returns the final state and every action, without wakes. */
function run(state: MirrorState, events: [number, MirrorEvent][]): { state: MirrorState; actions: MirrorAction[] } {
  const actions: MirrorAction[] = [];
  for (const [now, e] of events) {
    const step = stepMirror(state, e, now);
    state = step.state;
    actions.push(...step.actions.filter((a) => a.type !== 'wake'));
  }
  return { state, actions };
}
const types = (as: MirrorAction[]) => as.map((a) => (a.type === 'role-changed' ? `role:${a.to}` : a.type));

function primaryA(): MirrorState {
  const s = initMirror({ module: 'db', self: 'a', nodes: ['a', 'b'], preferredNode: 'a', failback: 'automatic', timings: T, now: 0 });
  return run(s, [
    [0, { type: 'tick' }],
    [5, { type: 'lease-acquired', epoch: 1, inSync: [], forced: false, reason: why }],
    [6, { type: 'app-started' }],
  ]).state;
}

/** b took over while a, the preferred node, was dead; a is alive again, not yet in sync. */
function primaryAwayFromPreferred(): MirrorState {
  const b = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], preferredNode: 'a', failback: 'automatic', timings: T, now: 0 });
  return run(b, [
    [0, { type: 'member', member: 'a', status: 'dead' }],
    [300, { type: 'tick' }],
    [305, { type: 'lease-acquired', epoch: 2, inSync: [], forced: false, reason: why }],
    [310, { type: 'app-started' }],
    [320, { type: 'member', member: 'a', status: 'alive' }],
  ]).state;
}

describe('mirror role', () => {
  it('the preferred node asks for the lease first; the others wait their rank', () => {
    const a = stepMirror(initMirror({ module: 'db', self: 'a', nodes: ['b', 'a'], preferredNode: 'a', timings: T, now: 0 }), { type: 'tick' }, 0);
    assert.deepEqual(types(a.actions.filter((x) => x.type !== 'wake')), ['role:acquiring', 'lease-acquire']);
    const b0 = stepMirror(initMirror({ module: 'db', self: 'b', nodes: ['b', 'a'], preferredNode: 'a', timings: T, now: 0 }), { type: 'tick' }, 0);
    assert.deepEqual(types(b0.actions), ['wake']);
    assert.equal(b0.actions[0]!.type === 'wake' && b0.actions[0]!.at, T.renewInterval);
  });

  it('starts the application only once the lease is acquired, and becomes primary when it runs', () => {
    const s = primaryA();
    assert.equal(s.role, 'primary');
    assert.equal(s.app, 'running');
    assert.equal(s.epoch, 1);
  });

  it('stops the application the moment the lease is lost (fencing), whatever the role', () => {
    const { state, actions } = run(primaryA(), [[900, { type: 'lease-lost', epoch: 1, reason: reason('LEASE_EXPIRED', 'not renewed') }]]);
    assert.deepEqual(types(actions), ['stop-app', 'role:secondary']);
    assert.equal(actions[0]!.type === 'stop-app' && actions[0]!.reason.code, R.DEMOTED_LEASE_LOST);
    assert.equal(state.role, 'secondary');
    // And an application start that completes after the loss is stopped again.
    const late = run(state, [[901, { type: 'app-started' }]]);
    assert.deepEqual(types(late.actions), ['stop-app']);
  });

  it('an application that stops by itself on the primary is started again under the lease', () => {
    const r = run(primaryA(), [[100, { type: 'app-stopped' }]]);
    assert.deepEqual(types(r.actions), ['role:promoting', 'start-app']);
    assert.equal(r.actions[0]!.type === 'role-changed' && r.actions[0]!.reason.code, R.APP_STOPPED);
    // A stop the machine asked for is not a failure.
    const asked = run(primaryA(), [[100, { type: 'lease-lost', epoch: 1, reason: why }], [101, { type: 'app-stopped' }]]);
    assert.deepEqual(types(asked.actions), ['stop-app', 'role:secondary']);
  });

  it('a secondary that stops hearing the primary tries for the lease after a lease length', () => {
    let s = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], preferredNode: 'a', timings: T, now: 0 });
    s = run(s, [[10, { type: 'announce', from: 'a', epoch: 1, inSync: ['b'] }]]).state;
    assert.deepEqual(types(run(s, [[10 + T.lease - 1, { type: 'tick' }]]).actions), []);
    const later = run(s, [[10 + T.lease + T.renewInterval, { type: 'tick' }]]);
    assert.deepEqual(types(later.actions), ['role:acquiring', 'lease-acquire']);
  });

  it('a primary reported dead makes the secondary try at once, not after the silence', () => {
    let s = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], timings: T, now: 0 });
    s = run(s, [[10, { type: 'announce', from: 'a', epoch: 1, inSync: ['b'] }]]).state;
    const r = run(s, [[300, { type: 'member', member: 'a', status: 'dead' }]]);
    assert.deepEqual(types(r.actions), ['role:acquiring', 'lease-acquire']);
  });

  it('refuses an announcement from an older epoch', () => {
    let s = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], timings: T, now: 0 });
    s = run(s, [[10, { type: 'announce', from: 'c', epoch: 3, inSync: [] }]]).state;
    const r = run(s, [[20, { type: 'announce', from: 'a', epoch: 2, inSync: [] }]]);
    assert.equal(r.actions[0]?.type === 'refused' && r.actions[0].reason.code, R.STALE_EPOCH_REFUSED);
    assert.equal(r.state.primary?.node, 'c');
  });

  it('switchover: stop, final barrier, transfer, hand-over; the target adopts and starts', () => {
    let a = primaryA();
    a = run(a, [[50, { type: 'record-committed', inSync: ['b'] }]]).state;
    a = { ...a, failback: 'manual' };
    const r = run(a, [
      [100, { type: 'switchover', to: 'b' }],
      [110, { type: 'app-stopped' }],
      [120, { type: 'barrier-done', ok: true }],
      [130, { type: 'lease-transferred', epoch: 2, to: 'b' }],
    ]);
    assert.deepEqual(types(r.actions), ['role:handing-over', 'stop-app', 'final-barrier', 'lease-transfer', 'send-hand-over', 'role:secondary']);
    const handOver = r.actions.find((x) => x.type === 'send-hand-over');
    assert.deepEqual(handOver?.type === 'send-hand-over' && handOver.inSync, ['a']);
    let b = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], timings: T, now: 0 });
    b = run(b, [[10, { type: 'announce', from: 'a', epoch: 1, inSync: ['b'] }]]).state;
    const rb = run(b, [
      [131, { type: 'hand-over', from: 'a', epoch: 2, inSync: ['a'] }],
      [135, { type: 'lease-acquired', epoch: 2, inSync: ['a'], forced: false, reason: why }],
      [140, { type: 'app-started' }],
    ]);
    assert.deepEqual(types(rb.actions), ['role:acquiring', 'lease-adopt', 'role:promoting', 'start-app', 'role:primary']);
  });

  it('refuses a switchover to a node that is not in sync, and aborts cleanly when the final barrier fails', () => {
    const a = primaryA();
    const refused = run({ ...a, failback: 'manual' }, [[100, { type: 'switchover', to: 'b' }]]);
    assert.deepEqual(types(refused.actions), ['refused']);
    assert.equal(refused.state.app, 'running');
    const synced = run({ ...a, failback: 'manual' }, [[50, { type: 'record-committed', inSync: ['b'] }]]).state;
    const aborted = run(synced, [
      [100, { type: 'switchover' }],
      [110, { type: 'app-stopped' }],
      [120, { type: 'barrier-done', ok: false, reason: reason('BARRIER_TIMEOUT', 'b did not acknowledge') }],
    ]);
    assert.deepEqual(types(aborted.actions).slice(-2), ['role:promoting', 'start-app']);
  });

  it('aborts a hand-over whose last writes could not all be shipped: no final barrier, the application runs here again', () => {
    const synced = run({ ...primaryA(), failback: 'manual' }, [[50, { type: 'record-committed', inSync: ['b'] }]]).state;
    const aborted = run(synced, [
      [100, { type: 'switchover', to: 'b' }],
      [110, { type: 'app-stopped', unshipped: 'not done within 800 ms' }],
    ]);
    assert.deepEqual(types(aborted.actions), ['role:handing-over', 'stop-app', 'role:promoting', 'start-app']);
    const role = aborted.actions.find((x) => x.type === 'role-changed' && x.to === 'promoting');
    assert.match(role?.type === 'role-changed' ? role.reason.text : '', /last writes could not be shipped to b: not done within 800 ms/);
    assert.equal(aborted.state.handOverTo, undefined);
    // Outside a hand-over the same report is an ordinary stop.
    const restart = run(synced, [[100, { type: 'app-stopped', unshipped: 'x' }]]);
    assert.deepEqual(types(restart.actions), ['role:promoting', 'start-app'], 'it stopped by itself: started again');
  });

  it('fails back to the preferred node once it is in sync (automatic failback)', () => {
    const b = primaryAwayFromPreferred();
    assert.equal(b.role, 'primary', 'a is alive but not yet in sync: no failback');
    const r = run(b, [[5000, { type: 'record-committed', inSync: ['a'] }]]);
    assert.deepEqual(types(r.actions), ['role:handing-over', 'stop-app']);
    assert.equal(r.actions[0]!.type === 'role-changed' && r.actions[0]!.reason.code, R.FAILBACK);
  });

  it('a failback that was aborted is not tried again at once (each try stops and starts the application)', () => {
    const b = primaryAwayFromPreferred();
    const back = run(b, [[500, { type: 'record-committed', inSync: ['a'] }], [510, { type: 'app-stopped', unshipped: 'a file could not be read' }], [520, { type: 'app-started' }], [2000, { type: 'tick' }]]);
    assert.deepEqual(types(back.actions), ['role:handing-over', 'stop-app', 'role:promoting', 'start-app', 'role:primary'], 'no second hand-over right after the abort');
    // An operator may still ask for it.
    assert.deepEqual(types(run(back.state, [[2100, { type: 'switchover', to: 'a' }]]).actions), ['role:handing-over', 'stop-app']);
  });

  it('a switchover without a target prefers a node that has not declined, else takes the one there is', () => {
    const three = (): MirrorState => {
      const s = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b', 'c'], timings: T, now: 0 });
      return run(s, [[0, { type: 'tick' }], [5, { type: 'lease-acquired', epoch: 1, inSync: [], forced: false, reason: why }], [6, { type: 'app-started' }], [10, { type: 'record-committed', inSync: ['a', 'c'] }]]).state;
    };
    // a refused a hand-over a moment ago (its data lacked changes then): held off from failbacks, not from operators.
    const declined = run({ ...three(), declined: { a: 10_000 } }, [[30, { type: 'switchover' }]]);
    assert.equal(declined.state.handOverTo, 'c', 'a declined: c');
    const onlyA = run({ ...three(), inSync: ['a'], declined: { a: 10_000 } }, [[30, { type: 'switchover' }]]);
    assert.equal(onlyA.state.handOverTo, 'a', 'no other in-sync node: the operator asked, it is tried');
    const outOfService = run(three(), [[20, { type: 'out-of-service', from: 'a' }], [30, { type: 'switchover' }]]);
    assert.equal(outOfService.state.handOverTo, 'c', 'a said it is out of service: c');
  });

  it('refuses at once a switchover to a node that says it is out of service: it would refuse the hand-over after the stop', () => {
    const b = run({ ...primaryAwayFromPreferred(), failback: 'manual' }, [[400, { type: 'record-committed', inSync: ['a'] }]]).state;
    const told = run(b, [[410, { type: 'out-of-service', from: 'a' }]]).state;
    for (const to of ['a', undefined]) {
      const r = run(told, [[420, { type: 'switchover', ...(to ? { to } : {}) }]]);
      assert.deepEqual(types(r.actions), ['refused'], `switchover ${to ? `--to ${to}` : 'without a target'}`);
      assert.equal(r.state.app, 'running', 'the application was not stopped');
      const refusal = r.actions[0]!;
      assert.equal(refusal.type === 'refused' && refusal.reason.code, R.SWITCHOVER_ABORTED);
      if (to) assert.match(refusal.type === 'refused' ? refusal.reason.text : '', /out of service there .*skyha restart db --node a/);
    }
    // Reset there, it stops answering: the word lapses and the switchover goes ahead.
    const later = run(told, [[410 + 2 * T.lease + 1, { type: 'switchover', to: 'a' }]]);
    assert.deepEqual(types(later.actions), ['role:handing-over', 'stop-app']);
  });

  it('no failback to a preferred node that says it is out of service, until it stops saying so', () => {
    const b = run(primaryAwayFromPreferred(), [[400, { type: 'out-of-service', from: 'a' }]]).state;
    const held = run(b, [[500, { type: 'record-committed', inSync: ['a'] }], [900, { type: 'out-of-service', from: 'a' }], [1500, { type: 'tick' }]]);
    assert.deepEqual(types(held.actions), [], 'a answers every announcement: no hand-over that it would refuse');
    const lapsed = run(held.state, [[900 + 2 * T.lease + 1, { type: 'tick' }]]);
    assert.deepEqual(types(lapsed.actions), ['role:handing-over', 'stop-app'], 'reset, it no longer answers: failback');
  });

  it('an operator\'s switchover away from the preferred node holds: no failback until the next switchover or failover', () => {
    const synced = run(primaryA(), [[50, { type: 'record-committed', inSync: ['b'] }]]).state;
    const a = run(synced, [
      [100, { type: 'switchover', to: 'b' }],
      [110, { type: 'app-stopped' }],
      [120, { type: 'barrier-done', ok: true }],
      [130, { type: 'lease-transferred', to: 'b', epoch: 2 }],
    ]);
    const handOver = a.actions.find((x) => x.type === 'send-hand-over');
    assert.ok(handOver && handOver.type === 'send-hand-over' && handOver.stay === true, 'the hand-over says the move is meant to stay');
    let b = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], preferredNode: 'a', failback: 'automatic', timings: T, now: 0 });
    b = run(b, [
      [0, { type: 'announce', from: 'a', epoch: 1, inSync: ['b'] }],
      [130, { type: 'hand-over', from: 'a', epoch: 2, inSync: ['a', 'b'], stay: true }],
      [135, { type: 'lease-acquired', epoch: 2, inSync: ['a', 'b'], forced: false, reason: why }],
      [140, { type: 'app-started' }],
    ]).state;
    assert.equal(b.role, 'primary');
    const later = run(b, [[5000, { type: 'record-committed', inSync: ['a'] }], [9000, { type: 'tick' }]]);
    assert.equal(later.state.role, 'primary', 'a is in sync, but b stays where the operator put it');
    // A failback by itself (stay absent) fails back as before.
    const failback = run({ ...b, failbackHeld: false }, [[5000, { type: 'record-committed', inSync: ['a'] }]]);
    assert.deepEqual(types(failback.actions), ['role:handing-over', 'stop-app']);
  });

  it('given up by the restart policy: stops, a final barrier, releases the lease, takes no role until reset', () => {
    const given = run(primaryA(), [[100, { type: 'given-up', reason: reason('RESTART_GIVE_UP', '3 restarts in 5m did not help') }]]);
    assert.deepEqual(types(given.actions), ['stop-app', 'role:out-of-service'], 'no release while the application may still run');
    const stopped = run(given.state, [[120, { type: 'app-stopped' }]]);
    assert.deepEqual(types(stopped.actions), ['final-barrier'], 'what it wrote goes to the in-sync secondaries first');
    assert.equal(stopped.actions[0]?.type === 'final-barrier' && stopped.actions[0].to, undefined, 'to the in-sync set, no target of its own');
    // Done or failed, the lease goes: the module must not stay down for it.
    for (const ok of [true, false]) {
      const released = run(stopped.state, [[130, { type: 'barrier-done', ok }]]);
      assert.deepEqual(types(released.actions), ['lease-release']);
    }
    const r = run(stopped.state, [[130, { type: 'barrier-done', ok: true }]]);
    const idle = run(r.state, [[10_000, { type: 'tick' }]]);
    assert.deepEqual(types(idle.actions), []);
    const back = run(r.state, [[10_000, { type: 'reset' }], [10_000 + T.lease, { type: 'tick' }]]);
    assert.deepEqual(types(back.actions), ['role:secondary', 'role:acquiring', 'lease-acquire']);
    // Given up with the application already stopped (it crashed once too often): the same barrier, then the release.
    const crashed = run({ ...primaryA(), app: 'stopped' }, [[101, { type: 'given-up', reason: reason('RESTART_GIVE_UP', 'x') }]]);
    assert.deepEqual(types(crashed.actions).slice(-2), ['final-barrier', 'role:out-of-service']);
  });

  it('a reset while the given-up application still stops, or while its lease is being released, waits for the release', () => {
    const given = run(primaryA(), [[100, { type: 'given-up', reason: reason('RESTART_GIVE_UP', 'x') }]]).state;
    const early = run(given, [[110, { type: 'reset' }]]);
    assert.deepEqual(types(early.actions), [], 'still out of service: a secondary that holds the lease would try for it for ever');
    const done = run(early.state, [[120, { type: 'app-stopped' }], [130, { type: 'barrier-done', ok: true }]]);
    assert.deepEqual(types(done.actions), ['final-barrier', 'lease-release', 'role:secondary']);
    // A give-up after the reset (an operator's stop) cancels it: the later word wins.
    const stoppedAgain = run(early.state, [[115, { type: 'given-up', reason: reason('OPERATOR_STOPPED', 'stopped by ops') }], [120, { type: 'app-stopped' }], [130, { type: 'barrier-done', ok: true }]]);
    assert.equal(stoppedAgain.state.role, 'out-of-service');
    assert.ok(!types(stoppedAgain.actions).includes('role:secondary'));
    // The same when the lease is lost meanwhile.
    const lost = run(early.state, [[120, { type: 'lease-lost', epoch: 1, reason: reason('LEASE_EXPIRED', 'x') }]]);
    assert.equal(lost.state.role, 'secondary');
    assert.equal(lost.state.releaseWhenStopped, false);
  });

  it('given up after the lease transfer was asked for: no barrier, no release; the target still gets the hand-over, this node stays out of service', () => {
    const synced = run(primaryA(), [[50, { type: 'record-committed', inSync: ['b'] }]]).state;
    // An operator's switchover away from the preferred node a: the move is meant to stay.
    const transferring = run(synced, [[100, { type: 'switchover', to: 'b' }], [110, { type: 'app-stopped' }], [120, { type: 'barrier-done', ok: true }]]).state;
    assert.equal(transferring.transferAsked, true);
    const given = run(transferring, [[125, { type: 'given-up', reason: reason('RESTART_GIVE_UP', 'x') }]]);
    assert.deepEqual(types(given.actions), ['role:out-of-service'], 'the lease may be b\'s already: nothing to barrier or release');
    const done = run(given.state, [[130, { type: 'lease-transferred', epoch: 2, to: 'b' }]]);
    assert.deepEqual(types(done.actions), ['send-hand-over']);
    const handOver = done.actions[0]!;
    assert.ok(handOver.type === 'send-hand-over' && handOver.stay === true && handOver.senderOutOfService === true, 'the move stays, and b hears that a is out of service');
    assert.equal(done.state.role, 'out-of-service', 'the give-up holds');
    assert.deepEqual(done.state.primary && { node: done.state.primary.node, epoch: done.state.primary.epoch }, { node: 'b', epoch: 2 });
    assert.equal(done.state.transferAsked, false);
    assert.equal(done.state.handOverTo, undefined);
    // The transfer fails instead: the lease is lost, and the node stays out of service.
    const lost = run(given.state, [[130, { type: 'lease-lost', epoch: 1, reason: reason('LEASE_REFUSED', 'x') }]]);
    assert.equal(lost.state.role, 'out-of-service');
    assert.equal(lost.state.transferAsked, false);
    // A reset asked meanwhile takes effect once the transfer is done.
    const reset = run(given.state, [[126, { type: 'reset' }], [130, { type: 'lease-transferred', epoch: 2, to: 'b' }]]);
    assert.equal(reset.state.role, 'secondary');
    // The target takes the lease, and fails back to a only once a no longer says it is out of service.
    let b = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], preferredNode: 'a', failback: 'automatic', timings: T, now: 0 });
    b = run(b, [[10, { type: 'announce', from: 'a', epoch: 1, inSync: ['b'] }]]).state;
    const took = run(b, [[131, { type: 'hand-over', from: 'a', epoch: 2, inSync: ['a'], senderOutOfService: true }], [135, { type: 'lease-acquired', epoch: 2, inSync: ['a'], forced: false, reason: why }], [140, { type: 'app-started' }]]);
    assert.equal(took.state.role, 'primary', 'no failback to a at once, although it is preferred and in sync');
    assert.deepEqual(types(run(took.state, [[140 + 2 * T.lease + 1, { type: 'switchover', to: 'a' }]]).actions), ['role:handing-over', 'stop-app'], 'once the word lapses, a switchover to a goes ahead');
  });

  it('a switchover with every in-sync secondary out of service says so', () => {
    const synced = run({ ...primaryA(), failback: 'manual' }, [[50, { type: 'record-committed', inSync: ['b'] }], [60, { type: 'out-of-service', from: 'b' }]]).state;
    const r = run(synced, [[70, { type: 'switchover' }]]);
    assert.deepEqual(types(r.actions), ['refused']);
    assert.match(r.actions[0]!.type === 'refused' ? r.actions[0]!.reason.text : '', /every in-sync, live secondary is out of service \(\[b\], given up\)/);
  });

  it('a copy of a hand-over this node already took is ignored, even out of service: refusing it would release its own lease', () => {
    let b = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], timings: T, now: 0 });
    b = run(b, [
      [10, { type: 'announce', from: 'a', epoch: 1, inSync: ['b'] }],
      [20, { type: 'hand-over', from: 'a', epoch: 2, inSync: ['a'] }],
      [25, { type: 'lease-acquired', epoch: 2, inSync: ['a'], forced: false, reason: why }],
      [30, { type: 'app-started' }],
      [40, { type: 'given-up', reason: reason('RESTART_GIVE_UP', 'x') }],
    ]).state;
    const dup = run(b, [[50, { type: 'hand-over', from: 'a', epoch: 2, inSync: ['a'] }]]);
    assert.deepEqual(types(dup.actions), []);
  });

  it('an operator force asks for the lease without proof of sync', () => {
    let b = initMirror({ module: 'db', self: 'b', nodes: ['a', 'b'], timings: T, now: 0 });
    b = run(b, [[10, { type: 'announce', from: 'a', epoch: 1, inSync: [] }], [20, { type: 'member', member: 'a', status: 'dead' }]]).state;
    b = run(b, [[30, { type: 'lease-failed', reason: reason('LEASE_NOT_IN_SYNC', 'not in sync') }]]).state;
    const r = run(b, [[40, { type: 'force-failover' }]]);
    const acquire = r.actions.find((x) => x.type === 'lease-acquire');
    assert.equal(acquire?.type === 'lease-acquire' && acquire.force, true);
  });
});
