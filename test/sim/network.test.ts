import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { probeWorld, type Probe } from './probe.js';

/** `from` sends `count` numbered messages to `to`, one every 0.1 ms from now. */
function burst(p: Probe, count: number, from = 'n1', to = 'n2'): void {
  const t0 = p.world.now;
  for (let i = 0; i < count; i++) p.world.at(t0 + i / 10, () => p.probe(from).ctx.send(to, { seq: i, from }));
}

function inversions(seqs: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < seqs.length; i++) if ((seqs[i] as number) < (seqs[i - 1] as number)) n++;
  return n;
}

describe('in-memory network', () => {
  it('delivers every message on a clean link, with base delay plus jitter', () => {
    const p = probeWorld({ link: { delay: 5, jitter: 2 } });
    p.world.boot();
    burst(p, 1000);
    p.world.runUntil(1000);
    const s = p.world.stats().messages;
    assert.equal(s.sent, 1000);
    assert.equal(s.delivered, 1000);
    assert.equal(s.dropped, 0);
    const recv = p.world.trace.lines().filter((l) => / recv /.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
    for (let i = 0; i < recv.length; i++) assert.ok((recv[i] as number) >= 5, 'never faster than the base delay');
    assert.ok(Math.max(...recv) <= 99.9 + 7.001);
  });

  it('loses the expected share on a lossy link, and counts it', () => {
    const p = probeWorld();
    p.world.boot();
    p.world.network.setLink('n1', 'n2', { loss: 0.3 });
    burst(p, 10_000);
    p.world.runUntil(2000);
    const s = p.world.stats().messages;
    assert.equal(s.sent, 10_000);
    assert.equal(s.delivered + s.dropped, 10_000);
    assert.equal(s.droppedBy.loss, s.dropped);
    assert.ok(Math.abs(s.dropped - 3000) < 200, `dropped ${s.dropped}`);
    assert.equal(p.probe('n2').received.length, s.delivered);
  });

  it('duplicates on a datagram link, never on a fifo link', () => {
    for (const linkModel of ['datagram', 'fifo'] as const) {
      const p = probeWorld({ linkModel });
      p.world.boot();
      p.world.network.setLink('*', '*', { duplicate: 0.2 });
      burst(p, 5000);
      p.world.runUntil(2000);
      const s = p.world.stats().messages;
      if (linkModel === 'datagram') {
        assert.ok(Math.abs(s.duplicated - 1000) < 120, `duplicated ${s.duplicated}`);
        assert.equal(s.delivered, 5000 + s.duplicated);
      } else {
        assert.equal(s.duplicated, 0);
        assert.equal(s.delivered, 5000);
      }
    }
  });

  it('reorders on a datagram link with jitter or holding back, keeps order on a fifo link', () => {
    const order = (linkModel: 'datagram' | 'fifo', reorder: number): number[] => {
      const p = probeWorld({ linkModel, link: { delay: 1, jitter: 3, reorder } });
      p.world.boot();
      burst(p, 2000);
      p.world.runUntil(2000);
      return p.probe('n2').received.map((r) => r.msg.seq);
    };
    const jitterOnly = order('datagram', 0);
    const heldBack = order('datagram', 0.3);
    assert.ok(inversions(jitterOnly) > 0);
    assert.ok(inversions(heldBack) > inversions(jitterOnly));
    assert.equal(inversions(order('fifo', 0.3)), 0);
    assert.equal(order('fifo', 0.3).length, 2000);
  });

  it('drops everything across a partition, both ways, and nothing once healed', () => {
    const p = probeWorld();
    p.world.boot();
    p.world.partition(['n1'], ['n2', 'n3']);
    burst(p, 100, 'n1', 'n2');
    burst(p, 100, 'n3', 'n1');
    burst(p, 100, 'n2', 'n3');
    p.world.runUntil(100);
    let s = p.world.stats().messages;
    assert.equal(s.droppedBy.partition, 200);
    assert.equal(p.probe('n3').received.length, 100, 'the majority side still talks');
    p.world.heal();
    burst(p, 100, 'n1', 'n2');
    p.world.runUntil(200);
    s = p.world.stats().messages;
    assert.equal(s.droppedBy.partition, 200);
    assert.equal(p.probe('n2').received.length, 100);
  });

  it('cuts one direction only, isolates a member, and loses what is on the wire when a link is cut', () => {
    const p = probeWorld({ link: { delay: 10, jitter: 0 } });
    p.world.boot();
    p.world.network.cutLink('n1', 'n2');
    burst(p, 10, 'n1', 'n2');
    burst(p, 10, 'n2', 'n1');
    p.world.runUntil(50);
    assert.equal(p.probe('n2').received.length, 0);
    assert.equal(p.probe('n1').received.length, 10);
    assert.deepEqual(p.world.network.cutLinks(), ['n1→n2']);
    p.world.heal();
    p.world.at(60, () => p.probe('n3').ctx.send('n1', { seq: 99, from: 'n3' })); // in flight until 70
    p.world.at(65, () => p.world.isolate('n1'));
    p.world.runUntil(100);
    assert.equal(p.probe('n1').received.filter((r) => r.msg.seq === 99).length, 0);
    assert.equal(p.world.stats().messages.droppedBy.partition, 11);
  });

  it('drops messages to a crashed member, and those sent to an earlier incarnation', () => {
    const p = probeWorld({ link: { delay: 10, jitter: 0 } });
    p.world.boot();
    p.world.at(0, () => p.probe('n1').ctx.send('n2', { seq: 1, from: 'n1' }));
    p.world.at(5, () => p.world.crash('n2', 'node'));
    p.world.at(20, () => p.probe('n1').ctx.send('n2', { seq: 2, from: 'n1' }));
    p.world.at(25, () => p.world.restart('n2', 'kept'));
    p.world.at(40, () => p.probe('n1').ctx.send('n2', { seq: 3, from: 'n1' }));
    p.world.runUntil(100);
    const s = p.world.stats().messages;
    assert.equal(s.droppedBy.down, 1);
    assert.equal(s.droppedBy.restarted, 1);
    assert.deepEqual(p.probe('n2').received.map((r) => r.msg.seq), [3]);
    assert.equal(s.sent, s.delivered + s.dropped + p.world.stats().inFlight);
  });

  it('holds messages for a frozen member and delivers them, in order, when it thaws', () => {
    const p = probeWorld({ link: { delay: 1, jitter: 0 } });
    p.world.boot();
    p.world.at(0, () => p.world.freeze('n2', 'agent'));
    burst(p, 20);
    p.world.at(50, () => {
      assert.equal(p.probe('n2').received.length, 0);
      assert.equal(p.world.stats().inFlight, 20, 'buffered messages count as in flight');
      p.world.thaw('n2');
    });
    p.world.runUntil(100);
    assert.deepEqual(p.probe('n2').received.map((r) => r.msg.seq), Array.from({ length: 20 }, (_, i) => i));
    assert.equal(p.world.stats().messages.delivered, 20);
  });
});
