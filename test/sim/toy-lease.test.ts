/**
 * The toy lease model end to end: the correct variant survives hundreds of
 * fault schedules, and each broken variant is caught, by the checker that
 * guards the guarantee it breaks.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { CheckerName } from '../../src/sim/checkers.js';
import { TOY_VARIANTS, toyLeaseModel, toyMaxDrift, TOY_TIMINGS, type ToyVariant } from '../../src/sim/models/toy-lease.js';
import { formatFailure, runMany, type ManyOptions } from '../../src/sim/runner.js';

function mustPass(t: TestContext, options: Omit<ManyOptions<unknown>, 'model'> & { variant?: ToyVariant }): void {
  const s = runMany({ ...options, model: toyLeaseModel(options.variant ?? 'correct') });
  const f = s.failures[0];
  if (f) assert.fail(`seed ${f.seed} failed:\n${formatFailure(f.result, { tail: 40 })}`);
  assert.equal(s.runs, options.schedules);
  t.diagnostic(`${s.runs} schedules on ${String(options.shape)}${options.harsh ? ' (harsh)' : ''}: ${s.totals.faults} faults, ${s.totals.events} events, ${s.totals.sent} messages; out of scope: ${JSON.stringify(s.totals.skipped)}`);
}

describe('toy lease model', () => {
  it('claims the drift bound its margin covers', () => {
    const rho = toyMaxDrift(TOY_TIMINGS);
    const { lease, driftMargin } = TOY_TIMINGS;
    assert.ok(lease * (1 + rho) < (lease + driftMargin) * (1 - rho));
    assert.ok(rho > 0.04, 'the test timings tolerate a few percent: schedules draw drifts up to it');
  });

  it('correct: 500 gentle schedules over three shapes, no violation', (t) => {
    mustPass(t, { schedules: 200, seed: 1, shape: '3n' });
    mustPass(t, { schedules: 150, seed: 2, shape: '2n+w' });
    mustPass(t, { schedules: 150, seed: 3, shape: '5v' });
  });

  it('correct: harsh schedules and fifo links, no violation', (t) => {
    mustPass(t, { schedules: 100, seed: 4, shape: '3n', harsh: true });
    mustPass(t, { schedules: 100, seed: 5, shape: '2n+w', harsh: true, linkModel: 'fifo' });
  });

  const expected: Record<Exclude<ToyVariant, 'correct'>, { shape: string; caughtBy: readonly CheckerName[] }> = {
    'no-margin': { shape: '2n+w', caughtBy: ['noTwoPrimaries', 'leaseExclusive'] },
    'keeps-running': { shape: '3n', caughtBy: ['noTwoPrimaries'] },
    'no-keeper': { shape: '2n+w', caughtBy: ['noTwoPrimaries'] },
    'forgetful-voter': { shape: '3n', caughtBy: ['noTwoPrimaries', 'leaseExclusive'] },
    'early-ack': { shape: '3n', caughtBy: ['noLostAckedWrite'] },
    minority: { shape: '3n', caughtBy: ['quorumBeforePrimary'] },
  };

  for (const variant of TOY_VARIANTS) {
    if (variant === 'correct') continue;
    const { shape, caughtBy } = expected[variant];
    it(`${variant}: caught within 500 schedules by ${caughtBy.join(' or ')}`, (t) => {
      const s = runMany({ schedules: 500, seed: 11, shape, model: toyLeaseModel(variant) });
      const f = s.failures[0];
      assert.ok(f, `the ${variant} bug survived 500 schedules: the simulator or a checker is too weak`);
      const checkers = new Set(f.result.violations.map((v) => v.checker));
      assert.ok(caughtBy.some((c) => checkers.has(c)), `caught, but by ${[...checkers].join(', ')}`);
      t.diagnostic(`caught after ${s.runs} schedules: seed ${f.seed} (npm run sim -- --replay --seed ${f.seed} --model toy-lease:${variant} --shape ${shape})`);
      t.diagnostic(f.result.violations[0]?.text ?? '');
    });
  }

  it('no-margin is only caught because clocks drift: with perfect clocks it passes', () => {
    const s = runMany({ schedules: 100, seed: 11, shape: '2n+w', model: toyLeaseModel('no-margin'), faults: { maxDrift: 0 } });
    assert.deepEqual(s.failures.map((f) => f.seed), []);
  });
});
