import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventQueue, LocalClock, formatUs } from '../../src/sim/clock.js';
import { Random, deriveSeed } from '../../src/sim/random.js';
import { drawDrift, generateSchedule } from '../../src/sim/schedule.js';
import { clusterInfo, parseShape } from '../../src/sim/shape.js';
import { probeWorld } from './probe.js';

describe('seeded random', () => {
  it('is a pure function of its seed', () => {
    const a = new Random(42);
    const b = new Random(42);
    const xs = Array.from({ length: 100 }, () => a.nextU32());
    assert.deepEqual(Array.from({ length: 100 }, () => b.nextU32()), xs);
    assert.notDeepEqual(Array.from({ length: 100 }, () => new Random(43).nextU32()), xs);
    assert.equal(new Set(xs).size, 100);
  });

  it('forks independent streams by label, whatever the parent has drawn', () => {
    const a = new Random(7);
    const before = a.fork('network').float();
    for (let i = 0; i < 50; i++) a.float();
    assert.equal(a.fork('network').float(), before);
    assert.notEqual(a.fork('faults').float(), before);
  });

  it('keeps its helpers in range and roughly uniform', () => {
    const r = new Random(1);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) {
      const f = r.float();
      assert.ok(f >= 0 && f < 1);
      counts[r.int(4)]! += 1;
      const k = r.intBetween(3, 5);
      assert.ok(k >= 3 && k <= 5 && Number.isInteger(k));
    }
    for (const c of counts) assert.ok(Math.abs(c - 10_000) < 600, `bucket ${c}`);
    let hits = 0;
    for (let i = 0; i < 10_000; i++) if (r.chance(0.25)) hits++;
    assert.ok(Math.abs(hits - 2500) < 200, `chance ${hits}`);
    assert.equal(r.chance(0), false);
    const items = [1, 2, 3, 4, 5, 6];
    assert.deepEqual([...r.shuffle([...items])].sort(), items);
    assert.ok(items.includes(r.pick(items)));
    assert.throws(() => r.pick([]));
    const l = r.logBetween(10, 1000);
    assert.ok(l >= 10 && l < 1000);
  });

  it('derives distinct per-schedule seeds from a master seed', () => {
    const seeds = new Set(Array.from({ length: 10_000 }, (_, i) => deriveSeed(1, i)));
    assert.equal(seeds.size, 10_000);
    assert.equal(deriveSeed(1, 5), deriveSeed(1, 5));
    assert.notEqual(deriveSeed(1, 5), deriveSeed(2, 5));
  });
});

describe('virtual time', () => {
  it('orders events by time, then by the order they were scheduled in', () => {
    const q = new EventQueue<{ at: number; seq: number; name: string }>();
    const r = new Random(3);
    const pushed: Array<{ at: number; seq: number; name: string }> = [];
    for (let i = 0; i < 500; i++) {
      const e = { at: r.int(50), seq: 0, name: `e${i}` };
      pushed.push(e);
      q.push(e);
    }
    const out: string[] = [];
    for (let e = q.pop(); e; e = q.pop()) out.push(e.name);
    const expected = [...pushed].sort((a, b) => a.at - b.at || a.seq - b.seq).map((e) => e.name);
    assert.deepEqual(out, expected);
    // Ties keep insertion order.
    const ties = pushed.filter((e) => e.at === 7).map((e) => e.name);
    assert.deepEqual(out.filter((n) => ties.includes(n)), ties);
  });

  it('converts a local deadline to the first global microsecond at which the local clock reaches it', () => {
    const r = new Random(9);
    for (let i = 0; i < 2000; i++) {
      const drift = r.between(-0.06, 0.06);
      const clock = new LocalClock(drift, r.between(0, 1e12));
      const now = r.int(1e10);
      const target = clock.localMs(now) + r.between(0, 5000);
      const g = clock.globalUsAt(target, now);
      assert.ok(clock.localMs(g) >= target, 'never early');
      assert.ok(g === now || clock.localMs(g - 1) < target, 'never late');
    }
    const c = new LocalClock(0.01, 0);
    assert.equal(c.globalUsAt(-5, 1234), 1234, 'a past deadline fires now');
    assert.throws(() => c.globalUsAt(Number.NaN, 0), RangeError);
  });

  it('keeps a local clock continuous when its rate changes', () => {
    const c = new LocalClock(1e-4, 5e9);
    const before = c.localMs(1_000_000);
    c.setDrift(1_000_000, -0.05);
    assert.ok(Math.abs(c.localMs(1_000_000) - before) < 1e-6);
    assert.ok(Math.abs(c.localMs(2_000_000) - before - 950) < 1e-6);
  });

  it('formats microseconds as exact milliseconds', () => {
    assert.equal(formatUs(0), '0.000');
    assert.equal(formatUs(1_234_567), '1234.567');
    assert.equal(formatUs(5), '0.005');
  });

  it('draws clock drifts within the bound, and at the bound, for every member', () => {
    const cluster = clusterInfo(parseShape('5v'));
    const maxDrift = 0.05;
    let extremes = 0;
    for (let seed = 0; seed < 200; seed++) {
      const s = generateSchedule(seed, cluster, { maxDrift, redrift: 1 });
      const drifts = s.events.flatMap((f) => (f.type === 'clock' ? [f.drift] : f.type === 'restart' && f.drift !== undefined ? [f.drift] : []));
      assert.ok(drifts.length >= cluster.members.length);
      for (const d of drifts) {
        assert.ok(Math.abs(d) <= maxDrift, `drift ${d}`);
        if (Math.abs(d) === maxDrift) extremes++;
      }
    }
    assert.ok(extremes > 100, 'the extremes, where the bugs are, are drawn often');
    const r = new Random(1);
    for (let i = 0; i < 1000; i++) assert.ok(Math.abs(drawDrift(r, 1e-4)) <= 1e-4);
  });

  it('fires a member timer when its drifted local clock reaches the deadline', () => {
    const { world, probe } = probeWorld();
    world.setClock('n1', 0.05, 1_000_000); // 5% fast
    world.setClock('n2', -0.05, 3); // 5% slow
    world.boot();
    world.at(0, () => {
      for (const m of ['n1', 'n2', 'n3']) probe(m).ctx.setTimer('t', probe(m).ctx.now() + 1000);
    });
    world.runUntil(2000);
    const at = (m: string): number => probe(m).fired[0]?.local ?? Number.NaN;
    assert.ok(at('n1') >= 1_001_000 && at('n1') < 1_001_000.002);
    // 1000 local ms on a clock 5% fast take 1000/1.05 global ms; 5% slow, 1000/0.95.
    const trace = world.trace.lines().filter((l) => / timer /.test(l));
    assert.deepEqual(
      trace.map((l) => l.trim().split(/\s+/).slice(0, 2).join(' ')),
      ['952.381 n1', '1000.000 n3', '1052.632 n2'],
    );
  });
});
