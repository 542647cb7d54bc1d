import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckResult } from '../../../src/logic/checker.js';
import { CheckerRunner } from '../../../src/supervise/checker-runner.js';
import { ManualClock } from '../../../src/testing/manual-clock.js';
import { waitFor } from '../../../src/testing/wait.js';

const OK: CheckResult = { ok: true, detail: 'fine' };

/** A probe the test finishes by hand, recording when each one started. */
function manualProbe(clock: ManualClock): { run: () => Promise<CheckResult>; starts: number[]; finish: (r?: CheckResult) => void; inFlight: () => number } {
  const starts: number[] = [];
  const pending: Array<(r: CheckResult) => void> = [];
  return {
    starts,
    run: () => {
      starts.push(clock.now());
      return new Promise((resolve) => pending.push(resolve));
    },
    finish: (r = OK) => pending.shift()?.(r),
    inFlight: () => pending.length,
  };
}

describe('CheckerRunner', () => {
  it('probes first after the random warm-up, then every interval start to start', async () => {
    const clock = new ManualClock(1000);
    const starts: number[] = [];
    const results: CheckResult[] = [];
    const runner = new CheckerRunner({ interval: 100, warmup: 400 }, async () => (starts.push(clock.now()), OK), (r) => results.push(r), { clock, random: () => 0.5 });
    runner.start();
    await clock.advance(199);
    assert.deepEqual(starts, []);
    await clock.advance(1);
    assert.deepEqual(starts, [1200]);
    await clock.advance(300);
    assert.deepEqual(starts, [1200, 1300, 1400, 1500]);
    assert.equal(results.length, 4);
    runner.stop();
  });

  it('keeps the warm-up within [0, warmup]', async () => {
    for (const r of [0, 0.999999]) {
      const clock = new ManualClock(0);
      const starts: number[] = [];
      const runner = new CheckerRunner({ interval: 1000, warmup: 300 }, async () => (starts.push(clock.now()), OK), () => {}, { clock, random: () => r });
      runner.start();
      await clock.advance(300);
      assert.equal(starts.length, 1);
      assert.ok(starts[0]! >= 0 && starts[0]! <= 300);
      runner.stop();
    }
  });

  it('never runs two probes at once: a slow probe delays the next one', async () => {
    const clock = new ManualClock(0);
    const probe = manualProbe(clock);
    const results: CheckResult[] = [];
    const runner = new CheckerRunner({ interval: 100, warmup: 0 }, probe.run, (r) => results.push(r), { clock });
    runner.start();
    await clock.advance(0);
    assert.deepEqual(probe.starts, [0]);
    await clock.advance(350); // the probe hangs for 3.5 intervals
    assert.deepEqual(probe.starts, [0]);
    assert.equal(probe.inFlight(), 1);
    probe.finish({ ok: false, detail: 'slow' });
    await clock.advance(0);
    assert.deepEqual(probe.starts, [0, 350], 'the next probe starts as soon as the slow one ended');
    assert.deepEqual(results, [{ ok: false, detail: 'slow' }]);
    probe.finish();
    await clock.advance(100);
    assert.deepEqual(probe.starts, [0, 350, 450]);
    runner.stop();
  });

  it('delivers nothing and starts nothing after stop, even for a probe in flight', async () => {
    const clock = new ManualClock(0);
    const probe = manualProbe(clock);
    const results: CheckResult[] = [];
    const runner = new CheckerRunner({ interval: 100, warmup: 0 }, probe.run, (r) => results.push(r), { clock });
    runner.start();
    await clock.advance(0);
    runner.stop();
    probe.finish();
    await clock.advance(1000);
    assert.deepEqual(probe.starts, [0]);
    assert.deepEqual(results, []);
  });

  it('reset starts a new warm-up and waits for a probe of the old schedule to end', async () => {
    const clock = new ManualClock(0);
    const probe = manualProbe(clock);
    const results: CheckResult[] = [];
    const runner = new CheckerRunner({ interval: 100, warmup: 50 }, probe.run, (r) => results.push(r), { clock, random: () => 1 });
    runner.start();
    await clock.advance(50);
    assert.deepEqual(probe.starts, [50]);
    runner.reset();
    await clock.advance(100); // the new warm-up is over, but the old probe still runs
    assert.deepEqual(probe.starts, [50]);
    probe.finish({ ok: false, detail: 'old application' });
    await clock.advance(0);
    assert.deepEqual(probe.starts, [50, 150]);
    assert.deepEqual(results, [], 'the result about the old application is dropped');
    probe.finish();
    await clock.advance(0);
    assert.deepEqual(results, [OK]);
    runner.stop();
  });

  it('turns a probe that throws into a failed result', async () => {
    const clock = new ManualClock(0);
    const results: CheckResult[] = [];
    const runner = new CheckerRunner({ interval: 100, warmup: 0 }, () => Promise.reject(new Error('boom')), (r) => results.push(r), { clock });
    runner.start();
    await clock.advance(100);
    assert.deepEqual(results[0], { ok: false, detail: 'probe failed: boom' });
    runner.stop();
  });

  it('keeps its spacing on real timers (loose bounds)', async () => {
    const starts: number[] = [];
    const runner = new CheckerRunner({ interval: 50, warmup: 20 }, async () => (starts.push(performance.now()), OK), () => {});
    const t0 = performance.now();
    runner.start();
    await waitFor('six probes', () => starts.length >= 6, { deadline: 5000, every: 5 });
    runner.stop();
    const count = starts.length;
    assert.ok(starts[0]! - t0 <= 20 + 1000, `first probe after ${starts[0]! - t0} ms`);
    for (let i = 1; i < 6; i++) {
      const gap = starts[i]! - starts[i - 1]!;
      assert.ok(gap >= 45 && gap < 1000, `gap ${gap} ms`);
    }
    const stoppedAt = performance.now();
    await waitFor('well past the next interval', () => performance.now() - stoppedAt > 150, { every: 10 });
    assert.equal(starts.length, count, 'no probe after stop');
  });
});
