import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReplicationMessage } from '../../../src/logic/replication-messages.js';
import { initReplicationPrimary, MAX_LAG_TIMEOUTS, REPLICATION_REASONS as R, stepReplicationPrimary, type ReplicationPrimaryAction, type ReplicationPrimaryEvent, type ReplicationPrimaryState } from '../../../src/logic/replication-primary.js';
import { initReplicationSecondary, stepReplicationSecondary, type ReplicationSecondaryState } from '../../../src/logic/replication-secondary.js';

const TIMINGS = { lagTimeout: 500, retransmitInterval: 100, maxLog: 1000 };

/** A primary `a` and secondaries; messages go through `deliver`, which a test may hold back. */
class Rig {
  now = 0;
  primary: ReplicationPrimaryState;
  secondaries = new Map<string, ReplicationSecondaryState>();
  data = new Map<string, string[]>();
  outbox: { from: string; to: string; message: ReplicationMessage }[] = [];
  results: ReplicationPrimaryAction[] = [];
  blocked = new Set<string>();

  constructor(names: string[], inSync: string[] = [], timings: ReplicationPrimaryState['timings'] = TIMINGS) {
    this.primary = initReplicationPrimary({ module: 'db', self: 'a', epoch: 1, secondaries: names, inSync, timings });
    this.data.set('a', []);
    for (const n of names) {
      this.secondaries.set(n, initReplicationSecondary({ module: 'db', self: n, dataEpoch: 1, applied: 0 }));
      this.data.set(n, []);
      this.toPrimary(n, { type: 'repl-hello', module: 'db', epoch: 1, dataEpoch: 1, applied: 0 });
    }
    this.flush();
  }

  p(event: ReplicationPrimaryEvent): void {
    const step = stepReplicationPrimary(this.primary, event, this.now);
    this.primary = step.state;
    for (const a of step.actions) {
      if (a.type === 'send') this.outbox.push({ from: 'a', to: a.to, message: a.message });
      else if (a.type === 'send-snapshot') this.outbox.push({ from: 'a', to: a.to, message: { type: 'repl-snapshot', module: 'db', epoch: this.primary.epoch, seq: a.seq, data: JSON.stringify(this.data.get('a')) } });
      else if (a.type !== 'wake') this.results.push(a);
    }
  }

  write(id: string): void {
    this.data.get('a')!.push(id);
    this.p({ type: 'change', data: id });
  }

  toPrimary(from: string, message: ReplicationMessage): void {
    this.outbox.push({ from, to: 'a', message });
  }

  flush(): void {
    while (this.outbox.length) {
      const m = this.outbox.shift()!;
      if (this.blocked.has(m.from) || this.blocked.has(m.to)) continue;
      if (m.to === 'a') this.p({ type: 'receive', from: m.from, message: m.message });
      else {
        const step = stepReplicationSecondary(this.secondaries.get(m.to)!, { type: 'receive', from: m.from, message: m.message }, this.now);
        this.secondaries.set(m.to, step.state);
        for (const a of step.actions) {
          if (a.type === 'apply') this.data.get(m.to)!.push(String(a.data));
          else if (a.type === 'apply-snapshot') this.data.set(m.to, JSON.parse(String(a.data)));
          else this.outbox.push({ from: m.to, to: a.to, message: a.message });
        }
      }
    }
  }

  at(now: number): void {
    this.now = now;
    this.p({ type: 'tick' });
    this.flush();
  }

  proposals(): string[] {
    return this.results.filter((r) => r.type === 'propose-in-sync').map((r) => (r.type === 'propose-in-sync' ? r.inSync.join(',') : ''));
  }

  barrier(id: string) {
    return this.results.find((r) => r.type === 'barrier-done' && r.id === id) as Extract<ReplicationPrimaryAction, { type: 'barrier-done' }> | undefined;
  }
}

/**
 * A primary `a` with one secondary `b`, stepped directly: `step` returns the
 * send-snapshot actions of the step; proposed in-sync sets collect in
 * `proposals`.
 */
function lone(epoch: number, inSync: string[]) {
  const o = {
    p: initReplicationPrimary({ module: 'db', self: 'a', epoch, secondaries: ['b'], inSync, timings: TIMINGS }),
    proposals: [] as string[],
    step(event: ReplicationPrimaryEvent, now: number): ReplicationPrimaryAction[] {
      const r = stepReplicationPrimary(o.p, event, now);
      o.p = r.state;
      for (const a of r.actions) if (a.type === 'propose-in-sync') o.proposals.push(a.inSync.join());
      return r.actions.filter((a) => a.type === 'send-snapshot');
    },
  };
  return o;
}

describe('replication: primary and secondaries', () => {
  it('ships changes in order, secondaries apply and acknowledge, and caught-up secondaries are proposed in sync', () => {
    const rig = new Rig(['b', 'c']);
    assert.deepEqual(rig.proposals(), ['b', 'b,c'], 'each secondary is proposed once it caught up (nothing to catch up here)');
    rig.p({ type: 'committed', inSync: ['b', 'c'] });
    for (const id of ['w1', 'w2', 'w3']) rig.write(id);
    rig.flush();
    assert.deepEqual(rig.data.get('b'), ['w1', 'w2', 'w3']);
    assert.deepEqual(rig.data.get('c'), ['w1', 'w2', 'w3']);
  });

  it('a barrier returns only when every committed in-sync secondary made the changes durable', () => {
    const rig = new Rig(['b', 'c']);
    rig.p({ type: 'committed', inSync: ['b', 'c'] });
    rig.blocked.add('c');
    rig.write('w1');
    rig.p({ type: 'barrier', id: 'x', deadline: 10_000 });
    rig.flush();
    assert.equal(rig.barrier('x'), undefined, 'c has not acknowledged');
    rig.blocked.delete('c');
    rig.at(150); // retransmission reaches c
    assert.equal(rig.barrier('x')?.ok, true);
    assert.equal(rig.barrier('x')?.reason.code, R.BARRIER_DONE);
  });

  it('a lagging secondary is proposed out of sync, and the barrier waits for that commit before returning without it', () => {
    const rig = new Rig(['b', 'c']);
    rig.p({ type: 'committed', inSync: ['b', 'c'] });
    rig.blocked.add('c');
    rig.write('w1');
    rig.p({ type: 'barrier', id: 'x', deadline: 10_000 });
    rig.flush();
    rig.at(TIMINGS.lagTimeout + 1);
    const last = rig.results.filter((r) => r.type === 'propose-in-sync').at(-1);
    assert.equal(last?.type === 'propose-in-sync' && last.inSync.join(), 'b');
    assert.equal(last?.type === 'propose-in-sync' && last.reason.code, R.SECONDARY_LAGGING);
    assert.equal(rig.barrier('x'), undefined, 'not before the removal of c is committed');
    rig.p({ type: 'committed', inSync: ['b'] });
    assert.equal(rig.barrier('x')?.ok, true);
  });

  it('a secondary slower than the writes but still acknowledging stays in sync; once it stops for lagTimeout it is lagging', () => {
    const { step, proposals } = lone(1, ['b']);
    step({ type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 1, dataEpoch: 1, applied: 0 } }, 0);
    for (let i = 0; i < 10; i++) step({ type: 'change', data: `w${i + 1}` }, 0);
    // One acknowledgement every 200 ms: its oldest unacknowledged change is soon older than lagTimeout (500 ms).
    for (let seq = 1; seq <= 5; seq++) step({ type: 'receive', from: 'b', message: { type: 'repl-ack', module: 'db', epoch: 1, seq } }, seq * 200);
    step({ type: 'tick' }, 1000 + TIMINGS.lagTimeout - 1);
    assert.deepEqual(proposals, [], 'still in sync: it keeps making progress');
    step({ type: 'tick' }, 1000 + TIMINGS.lagTimeout);
    assert.deepEqual(proposals, [''], 'no progress for lagTimeout: out of sync');
  });

  it('a secondary that keeps acknowledging but falls MAX_LAG_TIMEOUTS lagTimeouts behind is lagging all the same', () => {
    const { step, proposals } = lone(1, ['b']);
    step({ type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 1, dataEpoch: 1, applied: 0 } }, 0);
    const total = 2 * MAX_LAG_TIMEOUTS * 2;
    for (let i = 0; i < total; i++) step({ type: 'change', data: `w${i + 1}` }, 0);
    // One acknowledgement per half lagTimeout: never stalled, ever further behind the change it has not acknowledged.
    let seq = 0;
    for (let now = TIMINGS.lagTimeout / 2; now < MAX_LAG_TIMEOUTS * TIMINGS.lagTimeout; now += TIMINGS.lagTimeout / 2) step({ type: 'receive', from: 'b', message: { type: 'repl-ack', module: 'db', epoch: 1, seq: Math.min(++seq, total - 1) } }, now);
    assert.deepEqual(proposals, []);
    step({ type: 'tick' }, MAX_LAG_TIMEOUTS * TIMINGS.lagTimeout);
    assert.deepEqual(proposals, [''], 'too far behind: out of sync');
  });

  it('a barrier also waits for the members of a proposed in-sync set that is not committed yet', () => {
    const rig = new Rig(['b', 'c']);
    rig.p({ type: 'committed', inSync: ['c'] }); // b's addition (proposed) is not committed
    assert.deepEqual(rig.primary.outstanding, ['b', 'c']);
    rig.blocked.add('b');
    rig.write('w1');
    rig.p({ type: 'barrier', id: 'x', deadline: 10_000 });
    rig.flush();
    assert.equal(rig.barrier('x'), undefined, 'b was proposed in sync: a candidate could read that proposal');
    rig.p({ type: 'committed', inSync: ['b', 'c'] });
    rig.blocked.delete('b');
    rig.at(150);
    assert.equal(rig.barrier('x')?.ok, true);
  });

  it('a secondary whose unacknowledged changes already left the window is lagging only once the window\'s oldest is lagTimeout old', () => {
    // Big changes (parts of large files) leave a small window while still in flight: the secondary was counted
    // lagging at once, then caught up at its next ack — flapping, with a record commit each time.
    // (No retransmission meanwhile: one would find w2 gone and start a snapshot, which is lagging at once.)
    const rig = new Rig(['b'], [], { ...TIMINGS, maxLogBytes: 4, retransmitInterval: 10_000 });
    rig.p({ type: 'committed', inSync: ['b'] });
    rig.blocked.add('b');
    for (const id of ['w1', 'w2', 'w3', 'w4']) rig.write(id); // 2 bytes each: w1, w2 are out of the window
    rig.flush();
    assert.deepEqual(rig.primary.log.map((c) => c.seq), [3, 4]);
    rig.at(TIMINGS.lagTimeout - 1);
    assert.deepEqual(rig.proposals().at(-1), 'b', 'still in sync: nothing in the window is lagTimeout old');
    rig.at(TIMINGS.lagTimeout);
    assert.deepEqual(rig.proposals().at(-1), '', 'lagging now');
  });

  it("a hand-over's final barrier waits for its target itself, and for the target's return to the committed in-sync set", () => {
    // Found by the simulator (3n, seed 648988185): the role still counted a lagging target in sync while the
    // commit removing it was in flight; the barrier returned on the other secondary alone and the lease went
    // to a node without the last acknowledged changes.
    const rig = new Rig(['b', 'c']);
    rig.p({ type: 'committed', inSync: ['b', 'c'] });
    rig.blocked.add('b');
    rig.write('w1');
    rig.flush();
    rig.at(TIMINGS.lagTimeout + 1);
    rig.p({ type: 'committed', inSync: ['c'] });
    rig.p({ type: 'barrier', id: 'plain', deadline: 10_000 });
    rig.p({ type: 'barrier', id: 'final', deadline: 10_000, on: 'b' });
    assert.equal(rig.barrier('plain')?.ok, true, 'durable on the committed in-sync set [c]');
    assert.equal(rig.barrier('final'), undefined, 'b, the target, does not hold w1');
    rig.blocked.delete('b');
    rig.at(TIMINGS.lagTimeout + 400); // the next retransmission (backed off): b catches up and is proposed in sync again
    assert.equal(rig.primary.secondaries['b']!.acked, 1);
    assert.equal(rig.barrier('final'), undefined, 'b holds w1 but its return is not committed: the voters would refuse the transfer');
    rig.p({ type: 'committed', inSync: ['b', 'c'] });
    assert.equal(rig.barrier('final')?.ok, true);
  });

  it("a hand-over's final barrier fails at its deadline when the target does not catch up, naming it", () => {
    const rig = new Rig(['b', 'c']);
    rig.p({ type: 'committed', inSync: ['c'] });
    rig.blocked.add('b');
    rig.write('w1');
    rig.p({ type: 'barrier', id: 'final', deadline: 300, on: 'b' });
    rig.at(300);
    assert.equal(rig.barrier('final')?.ok, false);
    assert.match(rig.barrier('final')!.reason.text, /b is not in sync/);
  });

  it('with no secondary in sync a barrier fails at its deadline, saying so', () => {
    const rig = new Rig(['b']);
    rig.blocked.add('b');
    rig.write('w1');
    rig.p({ type: 'barrier', id: 'x', deadline: 300 });
    rig.at(299);
    assert.equal(rig.barrier('x'), undefined);
    rig.at(300);
    assert.equal(rig.barrier('x')?.ok, false);
    assert.equal(rig.barrier('x')?.reason.code, R.BARRIER_NO_IN_SYNC);
  });

  it('changes are pipelined: each goes out at once, without waiting for the acknowledgement of the one before', () => {
    const rig = new Rig(['b']);
    rig.p({ type: 'committed', inSync: ['b'] });
    rig.outbox = [];
    for (const w of ['w1', 'w2', 'w3']) rig.write(w);
    assert.deepEqual(rig.outbox.map((m) => (m.message.type === 'repl-change' ? m.message.seq : -1)), [1, 2, 3]);
    // Acknowledgements that advance are progress: no retransmission while they keep coming.
    rig.now = TIMINGS.retransmitInterval - 1;
    rig.flush();
    rig.now = 2 * TIMINGS.retransmitInterval - 2;
    rig.write('w4');
    const sent = rig.outbox.length;
    rig.p({ type: 'tick' });
    assert.equal(rig.outbox.length, sent, 'nothing sent again: b acknowledged within the interval');
    rig.flush();
    assert.deepEqual(rig.data.get('b'), ['w1', 'w2', 'w3', 'w4']);
  });

  it('a lost change is sent again; the secondary never applies out of order', () => {
    const rig = new Rig(['b']);
    rig.secondaries.set('b', stepReplicationSecondary(rig.secondaries.get('b')!, { type: 'primary', node: 'a', epoch: 1 }, 0).state);
    rig.outbox = [];
    rig.p({ type: 'committed', inSync: ['b'] });
    rig.write('w1');
    rig.outbox = []; // w1 lost on the wire
    rig.write('w2'); // sent at once (pipelined): b sees the gap, applies nothing and says where it is
    assert.equal(rig.outbox.length, 1);
    rig.flush();
    assert.deepEqual(rig.data.get('b'), []);
    rig.at(TIMINGS.retransmitInterval);
    assert.deepEqual(rig.data.get('b'), ['w1', 'w2']);
  });

  it('a new connection: what was in flight on the old one goes again at once, long before the retransmission timer', () => {
    const rig = new Rig(['b'], [], { ...TIMINGS, retransmitInterval: 10_000 });
    rig.p({ type: 'committed', inSync: ['b'] });
    rig.write('w1');
    rig.outbox = []; // lost with the connection that carried them
    rig.write('w2');
    rig.outbox = [];
    rig.now = 50;
    rig.p({ type: 'link', node: 'b', what: 'reconnected' });
    assert.deepEqual(rig.outbox.map((m) => (m.message.type === 'repl-change' ? m.message.seq : -1)), [1, 2]);
    rig.flush();
    assert.deepEqual(rig.data.get('b'), ['w1', 'w2']);
    // Everything acknowledged: a later reconnection sends nothing.
    rig.p({ type: 'link', node: 'b', what: 'reconnected' });
    assert.equal(rig.outbox.length, 0);
  });

  it('a change the link dropped goes again with the next progress, and later changes wait behind it', () => {
    const rig = new Rig(['b'], [], { ...TIMINGS, retransmitInterval: 10_000 });
    rig.p({ type: 'committed', inSync: ['b'] });
    rig.write('w1'); // in flight, arrives
    rig.write('w2');
    rig.outbox.pop(); // w2 dropped by the link (a full buffer), which says so
    rig.p({ type: 'link', node: 'b', what: 'dropped' });
    assert.equal(rig.outbox.length, 1, 'nothing sent again at once: the link is full');
    rig.write('w3');
    assert.equal(rig.outbox.length, 1, 'w3 is not sent past the gap');
    rig.flush(); // w1 arrives; its acknowledgement is progress, and the rest follows in order
    assert.deepEqual(rig.data.get('b'), ['w1', 'w2', 'w3']);
  });

  it('changes dropped while the link was down go at once when it comes up', () => {
    const rig = new Rig(['b'], [], { ...TIMINGS, retransmitInterval: 10_000 });
    rig.p({ type: 'committed', inSync: ['b'] });
    rig.write('w1');
    rig.write('w2');
    rig.outbox = []; // no connection: both dropped, and the link says so
    rig.p({ type: 'link', node: 'b', what: 'dropped' });
    rig.p({ type: 'link', node: 'b', what: 'dropped' });
    rig.now = 20;
    rig.p({ type: 'link', node: 'b', what: 'reconnected' });
    assert.deepEqual(rig.outbox.map((m) => (m.message.type === 'repl-change' ? m.message.seq : -1)), [1, 2]);
    rig.flush();
    assert.deepEqual(rig.data.get('b'), ['w1', 'w2']);
  });

  it('a secondary whose link to its primary is new acknowledges again: the last acknowledgement may have been lost', () => {
    let sec = initReplicationSecondary({ module: 'db', self: 'b', dataEpoch: 1, applied: 0 });
    sec = stepReplicationSecondary(sec, { type: 'primary', node: 'a', epoch: 1 }, 0).state;
    for (const seq of [1, 2]) sec = stepReplicationSecondary(sec, { type: 'receive', from: 'a', message: { type: 'repl-change', module: 'db', epoch: 1, seq, data: `w${seq}` } }, 0).state;
    const again = stepReplicationSecondary(sec, { type: 'reconnected', node: 'a' }, 0);
    assert.deepEqual(again.actions, [{ type: 'send', to: 'a', message: { type: 'repl-ack', module: 'db', epoch: 1, seq: 2 } }]);
    assert.deepEqual(stepReplicationSecondary(sec, { type: 'reconnected', node: 'c' }, 0).actions, [], 'not its primary');
  });

  it('a hello from where the primary thought the secondary stood does not bring what is already on the link again', () => {
    const rig = new Rig(['b'], [], { ...TIMINGS, retransmitInterval: 10_000 });
    rig.p({ type: 'committed', inSync: ['b'] });
    rig.write('w1');
    rig.write('w2');
    const inFlight = rig.outbox.splice(0);
    // b (restarted) heard the primary's announcement first and says hello from where it was: seq 0.
    rig.p({ type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 1, dataEpoch: 1, applied: 0 } });
    assert.equal(rig.outbox.length, 0, 'w1 and w2 are on the link already');
    rig.outbox.push(...inFlight);
    rig.flush();
    assert.deepEqual(rig.data.get('b'), ['w1', 'w2']);
    // A hello from further back still gets everything it lacks.
    rig.p({ type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 1, dataEpoch: 1, applied: 1 } });
    assert.deepEqual(rig.outbox.map((m) => (m.message.type === 'repl-change' ? m.message.seq : -1)), [2]);
  });

  it('a hello that crossed the snapshot it asked for starts no second resync; one a retransmission interval later does', () => {
    const rig = lone(3, []);
    const step = rig.step;
    const hello = (applied: number): ReplicationPrimaryEvent => ({ type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 3, dataEpoch: 2, applied } });
    step({ type: 'change', data: 'w1' }, 0);
    assert.deepEqual(step(hello(7), 0), [{ type: 'send-snapshot', to: 'b', seq: 1, dataEpoch: 2, applied: 7 }]);
    // Hellos repeat while the resync runs: asked again, the driver runs one at a time.
    assert.equal(step(hello(7), 5).length, 1);
    step({ type: 'snapshot-sent', node: 'b' }, 10);
    assert.deepEqual(step(hello(7), 20), [], 'the snapshot is on the link, before anything b says after it');
    assert.equal(step(hello(6), 30).length, 1, 'from elsewhere: a resync it is');
    step({ type: 'snapshot-sent', node: 'b' }, 40);
    // The snapshot was lost after all (the network here loses messages without a word): asked again later.
    assert.equal(step(hello(6), 40 + TIMINGS.retransmitInterval).length, 1);
    // Acknowledged: done, and a later hello from before it is an ordinary one again.
    step({ type: 'receive', from: 'b', message: { type: 'repl-ack', module: 'db', epoch: 3, seq: 1 } }, 150);
    assert.equal(rig.p.secondaries.b!.snapshotting, false);
    assert.equal(step(hello(6), 160).length, 1);
  });

  it('a new connection during a resync starts it over from where the secondary stood: records on the old one may be lost; one already done is not', () => {
    const rig = lone(3, []);
    const step = rig.step;
    step({ type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 3, dataEpoch: 2, applied: 7 } }, 0);
    step({ type: 'change', data: 'w1' }, 1);
    assert.deepEqual(step({ type: 'link', node: 'b', what: 'reconnected' }, 2), [{ type: 'send-snapshot', to: 'b', seq: 1, dataEpoch: 2, applied: 7 }]);
    // One already done is not started again (its snapshot may have arrived), but a hello from the same place then asks
    // for a new one at once: the snapshot may have gone with the old connection.
    step({ type: 'snapshot-sent', node: 'b' }, 3);
    assert.deepEqual(step({ type: 'link', node: 'b', what: 'reconnected' }, 4), []);
    assert.equal(rig.p.secondaries.b!.snapshotSentAt, undefined);
    assert.equal(step({ type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 3, dataEpoch: 2, applied: 7 } }, 5).length, 1);
    assert.deepEqual(step({ type: 'link', node: 'b', what: 'dropped' }, 6), [], 'a dropped change is not a lost resync');
  });

  it('a restarted secondary applies the change that continues its data at once, and says hello for any other', () => {
    const restarted = initReplicationSecondary({ module: 'db', self: 'b', dataEpoch: 3, applied: 7, epoch: 3 });
    const next = stepReplicationSecondary(restarted, { type: 'receive', from: 'a', message: { type: 'repl-change', module: 'db', epoch: 3, seq: 8, data: 'w8' } }, 0);
    assert.deepEqual(next.actions, [{ type: 'apply', seq: 8, data: 'w8' }, { type: 'send', to: 'a', message: { type: 'repl-ack', module: 'db', epoch: 3, seq: 8 } }]);
    assert.equal(next.state.primary, 'a');
    assert.equal(next.state.applied, 8);
    // Its durable position is older than what the primary resends (written at most once a second): hello, nothing applied.
    const gap = stepReplicationSecondary(restarted, { type: 'receive', from: 'a', message: { type: 'repl-change', module: 'db', epoch: 3, seq: 12, data: 'w12' } }, 0);
    assert.deepEqual(gap.actions, [{ type: 'send', to: 'a', message: { type: 'repl-hello', module: 'db', epoch: 3, dataEpoch: 3, applied: 7 } }]);
    // Data of another history: hello, whatever the seq.
    const other = stepReplicationSecondary(initReplicationSecondary({ module: 'db', self: 'b', dataEpoch: 2, applied: 7, epoch: 2 }), { type: 'receive', from: 'a', message: { type: 'repl-change', module: 'db', epoch: 3, seq: 8, data: 'w8' } }, 0);
    assert.equal(other.actions[0]?.type === 'send' && other.actions[0].message.type, 'repl-hello');
  });

  it('fencing: a secondary refuses changes of an older epoch, and the primary ignores stale acknowledgements', () => {
    let sec = initReplicationSecondary({ module: 'db', self: 'b', dataEpoch: 2, applied: 5, epoch: 2 });
    const step = stepReplicationSecondary(sec, { type: 'receive', from: 'old', message: { type: 'repl-change', module: 'db', epoch: 1, seq: 6, data: 'x' } }, 0);
    sec = step.state;
    assert.deepEqual(step.actions, []);
    assert.equal(sec.refusedStale, 1);
    const rig = new Rig(['b']);
    rig.p({ type: 'receive', from: 'b', message: { type: 'repl-ack', module: 'db', epoch: 0, seq: 99 } });
    assert.equal(rig.primary.refusedStale, 1);
    assert.equal(rig.primary.secondaries.b!.acked, 0);
  });

  it('a late or duplicated snapshot never takes a secondary back', () => {
    let sec = initReplicationSecondary({ module: 'db', self: 'b', dataEpoch: 2, applied: 0, epoch: 2 });
    const snap = (seq: number) => ({ type: 'receive' as const, from: 'a', message: { type: 'repl-snapshot' as const, module: 'db', epoch: 2, seq, data: `[${seq}]` } });
    sec = stepReplicationSecondary(sec, { type: 'primary', node: 'a', epoch: 2 }, 0).state;
    const first = stepReplicationSecondary(sec, snap(24), 0);
    assert.deepEqual(first.actions.map((a) => a.type), ['apply-snapshot', 'send']);
    const late = stepReplicationSecondary(first.state, snap(23), 0);
    assert.deepEqual(late.actions.map((a) => a.type), ['send'], 'no apply');
    assert.equal(late.state.applied, 24);
    const ack = late.actions[0];
    assert.equal(ack?.type === 'send' && ack.message.type === 'repl-ack' && ack.message.seq, 24);
  });

  it('a secondary whose data continues another epoch is resynced by a snapshot', () => {
    const rig = new Rig([]);
    rig.primary = initReplicationPrimary({ module: 'db', self: 'a', epoch: 3, secondaries: ['b'], inSync: [], timings: TIMINGS });
    rig.data.set('a', ['w1', 'w2']);
    rig.secondaries.set('b', initReplicationSecondary({ module: 'db', self: 'b', dataEpoch: 2, applied: 7 }));
    rig.data.set('b', ['w1', 'stray']);
    rig.p({ type: 'change', data: 'w3' });
    rig.data.get('a')!.push('w3');
    rig.secondaries.set('b', stepReplicationSecondary(rig.secondaries.get('b')!, { type: 'primary', node: 'a', epoch: 3 }, 0).state);
    rig.toPrimary('b', { type: 'repl-hello', module: 'db', epoch: 3, dataEpoch: 2, applied: 7 });
    rig.flush();
    assert.deepEqual(rig.data.get('b'), ['w1', 'w2', 'w3']);
    assert.deepEqual(rig.proposals().at(-1), 'b');
  });

  it('the log keeps at most maxLogBytes of change data (always the newest change); a secondary behind it gets a snapshot', () => {
    let p = initReplicationPrimary({ module: 'db', self: 'a', epoch: 1, secondaries: ['b'], inSync: [], timings: { ...TIMINGS, maxLogBytes: 10 } });
    for (const data of [Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(30)]) p = stepReplicationPrimary(p, { type: 'change', data }, 0).state;
    assert.deepEqual(p.log.map((c) => c.seq), [4], 'the 30-byte change alone, over the bound but the newest');
    p = initReplicationPrimary({ module: 'db', self: 'a', epoch: 1, secondaries: ['b'], inSync: [], timings: { ...TIMINGS, maxLogBytes: 10 } });
    for (let i = 0; i < 5; i++) p = stepReplicationPrimary(p, { type: 'change', data: 'abcd' }, 0).state;
    assert.deepEqual(p.log.map((c) => c.seq), [4, 5]);
    assert.equal(p.logBytes, 8);
    const step = stepReplicationPrimary(p, { type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 1, dataEpoch: 1, applied: 2 } }, 0);
    assert.ok(step.actions.some((a) => a.type === 'send-snapshot'), 'seq 3 is gone from the log: a snapshot');
  });
  it('a secondary catching up from the log gets a window of maxResendBytes, reopened by each acknowledgement that advances', () => {
    let p = initReplicationPrimary({ module: 'db', self: 'a', epoch: 1, secondaries: ['b'], inSync: [], timings: { ...TIMINGS, maxResendBytes: 10 } });
    for (let i = 0; i < 6; i++) p = stepReplicationPrimary(p, { type: 'change', data: 'abcd' }, 0).state;
    const seqs = (actions: ReplicationPrimaryAction[]) => actions.flatMap((a) => (a.type === 'send' && a.message.type === 'repl-change' ? [a.message.seq] : []));
    let step = stepReplicationPrimary(p, { type: 'receive', from: 'b', message: { type: 'repl-hello', module: 'db', epoch: 1, dataEpoch: 1, applied: 0 } }, 1);
    assert.deepEqual(seqs(step.actions), [1, 2], '8 bytes fit in the window of 10, 12 would not');
    step = stepReplicationPrimary(step.state, { type: 'receive', from: 'b', message: { type: 'repl-ack', module: 'db', epoch: 1, seq: 1 } }, 2);
    assert.deepEqual(seqs(step.actions), [3], 'at once, not a retransmit interval later: 2 and 3 in flight');
    step = stepReplicationPrimary(step.state, { type: 'receive', from: 'b', message: { type: 'repl-ack', module: 'db', epoch: 1, seq: 3 } }, 3);
    assert.deepEqual(seqs(step.actions), [4, 5]);
    step = stepReplicationPrimary(step.state, { type: 'receive', from: 'b', message: { type: 'repl-ack', module: 'db', epoch: 1, seq: 3 } }, 4);
    assert.deepEqual(seqs(step.actions), [], 'a duplicate acknowledgement is no progress');
  });

  it('retransmissions without progress back off, doubling up to 8 intervals; progress resets them', () => {
    const rig = new Rig(['b']);
    rig.p({ type: 'committed', inSync: ['b'] });
    rig.blocked.add('b');
    rig.write('w1');
    rig.flush();
    const resentAt: number[] = [];
    for (let t = 1; t <= 40 * TIMINGS.retransmitInterval; t += 10) {
      rig.now = t;
      rig.outbox = [];
      rig.p({ type: 'tick' });
      if (rig.outbox.some((m) => m.message.type === 'repl-change')) resentAt.push(t);
    }
    const gaps = resentAt.slice(1).map((t, i) => t - resentAt[i]!);
    assert.deepEqual(gaps.slice(0, 4), [200, 400, 800, 800], `resent at ${resentAt.join(', ')}`);
    rig.blocked.clear();
    rig.outbox = [];
    rig.now += 800;
    rig.p({ type: 'tick' });
    rig.flush();
    assert.deepEqual(rig.data.get('b'), ['w1']);
    rig.blocked.add('b');
    rig.write('w2');
    const first = rig.now;
    let again = 0;
    for (let t = first + 10; again === 0; t += 10) {
      rig.now = t;
      rig.outbox = [];
      rig.p({ type: 'tick' });
      if (rig.outbox.some((m) => m.message.type === 'repl-change')) again = t;
    }
    assert.equal(again - first, TIMINGS.retransmitInterval, 'after progress, one interval again');
  });
});
