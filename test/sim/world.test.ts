import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { toyLeaseModel } from '../../src/sim/models/toy-lease.js';
import { runSchedule } from '../../src/sim/runner.js';
import { formatSchedule } from '../../src/sim/schedule.js';
import { SimulationError } from '../../src/sim/world.js';
import { probeWorld } from './probe.js';

function traceHash(seed: number, shape = '2n+w'): { hash: string; schedule: string; lines: number } {
  const r = runSchedule({ seed, model: toyLeaseModel(), shape, traceLimit: Infinity });
  const text = r.trace.text();
  return { hash: createHash('sha256').update(text).digest('hex'), schedule: formatSchedule(r.schedule), lines: r.trace.total };
}

describe('simulation kernel', () => {
  it('is deterministic: the same seed gives the same trace, byte for byte; another seed another trace', () => {
    const a = traceHash(1234);
    const b = traceHash(1234);
    assert.ok(a.lines > 1000, 'a real run, not an empty one');
    assert.equal(a.hash, b.hash);
    assert.equal(a.schedule, b.schedule);
    const c = traceHash(1235);
    assert.notEqual(c.hash, a.hash);
    assert.notEqual(c.schedule, a.schedule);
  });

  it('keeps only the most recent trace entries when bounded, and the same ones', () => {
    const full = runSchedule({ seed: 99, model: toyLeaseModel(), shape: '3n', traceLimit: Infinity });
    const ring = runSchedule({ seed: 99, model: toyLeaseModel(), shape: '3n', traceLimit: 300 });
    assert.equal(ring.trace.total, full.trace.total);
    assert.deepEqual(ring.trace.lines(), full.trace.lines().slice(-300));
    assert.deepEqual(ring.trace.lines(10), full.trace.lines().slice(-10));
    const none = runSchedule({ seed: 99, model: toyLeaseModel(), shape: '3n', traceLimit: 0 });
    assert.equal(none.trace.lines().length, 0);
    assert.deepEqual(none.violations, full.violations);
    assert.deepEqual(none.stats, full.stats, 'tracing changes nothing in the run');
  });

  it('boots every member with a new disk and incarnation 1, and restarts with a higher incarnation', () => {
    const { world, probe } = probeWorld();
    world.boot();
    assert.deepEqual(probe('n1').boot, { incarnation: 1, disk: 'new' });
    world.crash('n1', 'node');
    world.restart('n1', 'kept');
    assert.deepEqual(probe('n1').boot, { incarnation: 2, disk: 'kept' });
    world.crash('n1', 'agent');
    world.restart('n1', 'wiped');
    assert.deepEqual(probe('n1').boot, { incarnation: 3, disk: 'wiped' });
    assert.deepEqual(
      world.history.entries.filter((e) => e.member === 'n1').map((e) => e.type),
      ['boot', 'crash', 'boot', 'crash', 'boot'],
    );
  });

  it('keeps the disk across a crash, loses it on a wiped restart, and freezes what it stores', () => {
    const { world, probe } = probeWorld();
    world.boot();
    probe('n1').ctx.disk.set('k', { a: [1, 2] });
    const stored = probe('n1').ctx.disk.get('k') as { a: number[] };
    assert.throws(() => stored.a.push(3), TypeError);
    world.crash('n1', 'node');
    world.restart('n1', 'kept');
    assert.deepEqual(probe('n1').ctx.disk.get('k'), { a: [1, 2] });
    world.crash('n1', 'node');
    world.restart('n1', 'wiped');
    assert.equal(probe('n1').ctx.disk.get('k'), undefined);
    assert.equal(probe('n1').ctx.disk.size, 0);
  });

  it('loses timers and in-memory state at a crash; a stale context refuses to act', () => {
    const { world, probe, incarnations } = probeWorld();
    world.boot();
    probe('n1').ctx.setTimer('t', probe('n1').ctx.now() + 10);
    world.at(5, () => world.crash('n1', 'node'));
    world.at(6, () => world.restart('n1', 'kept'));
    world.runUntil(100);
    assert.equal(incarnations('n1')[0]?.fired.length, 0);
    assert.equal(probe('n1').fired.length, 0);
    const old = incarnations('n1')[0];
    assert.throws(() => old?.ctx.send('n2', { seq: 1, from: 'n1' }), SimulationError);
  });

  it('replaces a timer with the same tag and cancels one', () => {
    const { world, probe } = probeWorld();
    world.boot();
    const ctx = probe('n1').ctx;
    ctx.setTimer('a', ctx.now() + 10);
    ctx.setTimer('a', ctx.now() + 30);
    ctx.setTimer('b', ctx.now() + 20);
    ctx.cancelTimer('b');
    world.runUntil(100);
    assert.deepEqual(probe('n1').fired.map((f) => f.tag), ['a']);
    assert.ok(Math.abs((probe('n1').fired[0]?.local ?? 0) - (ctx.now() - 70)) < 0.01);
  });

  it('the keeper acts at its deadline after an agent crash, and dies with the node', () => {
    const stop = { type: 'app-stop', module: 'db', reason: 'keeper' } as const;
    const { world, probe } = probeWorld();
    world.boot();
    for (const m of ['n1', 'n2']) probe(m).ctx.keeper.arm('lease', probe(m).ctx.now() + 50, stop);
    world.at(10, () => world.crash('n1', 'agent'));
    world.at(10, () => world.crash('n2', 'node'));
    world.at(20, () => world.restart('n1', 'kept'));
    world.at(21, () => assert.deepEqual(probe('n1').ctx.keeper.armed().map((f) => f.tag), ['lease'], 'the new agent sees the armed fuse'));
    world.runUntil(100);
    const stops = world.history.entries.filter((e) => e.type === 'app-stop');
    assert.deepEqual(stops.map((e) => [e.member, e.at]), [['n1', 50]]);
    assert.equal(probe('n1').keeper.length, 1, 'the current agent hears of it');
  });

  it('a disarmed or re-armed fuse does not act at its old deadline', () => {
    const stop = { type: 'app-stop', module: 'db' } as const;
    const { world, probe } = probeWorld();
    world.boot();
    const c1 = probe('n1').ctx;
    c1.keeper.arm('f', c1.now() + 10, stop);
    c1.keeper.arm('f', c1.now() + 40, stop);
    const c2 = probe('n2').ctx;
    c2.keeper.arm('f', c2.now() + 10, stop);
    c2.keeper.disarm('f');
    world.runUntil(100);
    assert.deepEqual(world.history.entries.filter((e) => e.type === 'app-stop').map((e) => [e.member, e.at]), [['n1', 40]]);
  });

  it('a frozen agent misses its timers until it thaws; its keeper still acts, unless the whole node is frozen', () => {
    const stop = { type: 'app-stop', module: 'db' } as const;
    const { world, probe } = probeWorld();
    world.boot();
    for (const m of ['n1', 'n2']) {
      const ctx = probe(m).ctx;
      ctx.setTimer('t', ctx.now() + 20);
      ctx.keeper.arm('lease', ctx.now() + 30, stop);
    }
    world.at(10, () => world.freeze('n1', 'agent'));
    world.at(10, () => world.freeze('n2', 'node'));
    world.at(100, () => world.thaw('n1'));
    world.at(100, () => world.thaw('n2'));
    world.runUntil(200);
    const stops = world.history.entries.filter((e) => e.type === 'app-stop').map((e) => [e.member, e.at]);
    assert.deepEqual(stops, [['n1', 30], ['n2', 100]]);
    for (const m of ['n1', 'n2']) {
      assert.equal(probe(m).fired.length, 1);
      assert.ok(Math.abs((probe(m).fired[0]?.local ?? 0) - (probe(m).ctx.now() - 100)) < 0.01, 'the timer fired at the thaw');
      assert.equal(probe(m).keeper.length, 1, 'the agent hears of the keeper once it runs');
    }
  });

  it('records lease-held deadlines in global time, as the holder believes them', () => {
    const { world, probe } = probeWorld();
    world.setClock('n1', -0.5, 0); // a clock at half speed: 100 local ms take 200 global ms
    world.boot();
    world.at(10, () => probe('n1').ctx.observe({ type: 'lease-held', module: 'db', until: probe('n1').ctx.now() + 100 }));
    world.runUntil(20);
    const e = world.history.entries.find((x) => x.type === 'lease-held');
    assert.ok(e && e.type === 'lease-held');
    assert.equal(e.at, 10);
    assert.equal(e.until, 210);
    assert.equal(e.untilLocal, 105);
  });

  it('reports a model that throws as a simulation error naming the member and the event', () => {
    const { world, probe } = probeWorld({
      setup: (p, member) => {
        if (member === 'n2') {
          p.onReceive = () => {
            throw new Error('boom');
          };
        }
      },
    });
    world.boot();
    world.at(1, () => probe('n1').ctx.send('n2', { seq: 7, from: 'n1' }));
    assert.throws(() => world.runUntil(10), (err: unknown) => err instanceof SimulationError && /^n2 threw in onMessage handling #7 from n1 at \d+\.\d{3} ms: boom$/.test(err.message));
  });

  it('stops a model that loops on timers with a clear error', () => {
    const { world, probe } = probeWorld({ maxEvents: 1000, setup: (p) => (p.onFire = (q) => q.ctx.setTimer('again', q.ctx.now())) });
    world.boot();
    probe('n1').ctx.setTimer('again', probe('n1').ctx.now());
    assert.throws(() => world.runUntil(10), /more than 1000 events/);
  });
});
