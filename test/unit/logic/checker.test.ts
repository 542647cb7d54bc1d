import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CHECKER_REASONS as R,
  initChecker,
  moduleHealth,
  stepChecker,
  type CheckerAction,
  type CheckerMachineConfig,
  type CheckerState,
  type CheckerStatus,
} from '../../../src/logic/checker.js';

const CONFIG: CheckerMachineConfig = { checker: 'http', module: 'web', node: 'aws-1', rise: 2, fall: 3 };
const URL = 'http://10.0.0.1:8080/health';
const ok = { type: 'result', ok: true, detail: `http 200 from ${URL}` } as const;
const bad = { type: 'result', ok: false, detail: `http 503 from ${URL}` } as const;

/** Feeds results ('+' ok, '-' failure) one per 250 ms; returns the status after each and the changes as "from->to CODE". */
function run(results: string, state: CheckerState = initChecker(CONFIG, 0)): { state: CheckerState; statuses: CheckerStatus[]; changes: string[]; actions: CheckerAction[] } {
  const statuses: CheckerStatus[] = [];
  const actions: CheckerAction[] = [];
  let now = 0;
  for (const c of results) {
    now += 250;
    const r = stepChecker(state, c === '+' ? ok : bad, now);
    state = r.state;
    statuses.push(state.status);
    actions.push(...r.actions);
  }
  return { state, statuses, changes: actions.map((a) => `${a.from}->${a.to} ${a.reason.code}`), actions };
}

describe('checker: rise and fall (rise 2, fall 3)', () => {
  const table: [results: string, statuses: string, changes: string[]][] = [
    ['', '', []],
    ['+', 'unknown', []],
    ['++', 'unknown healthy', ['unknown->healthy CHECKER_UP']],
    ['-', 'unknown', []],
    ['--', 'unknown unknown', []],
    ['---', 'unknown unknown failed', ['unknown->failed CHECKER_DOWN']],
    ['+-+-+-', 'unknown unknown unknown unknown unknown unknown', []],
    // fall − 1 failures, then a success: the run starts over.
    ['++--+--', 'unknown healthy healthy healthy healthy healthy healthy', ['unknown->healthy CHECKER_UP']],
    ['++---', 'unknown healthy healthy healthy failed', ['unknown->healthy CHECKER_UP', 'healthy->failed CHECKER_DOWN']],
    // rise − 1 successes, then a failure: still failed.
    ['---+-+', 'unknown unknown failed failed failed failed', ['unknown->failed CHECKER_DOWN']],
    ['---++', 'unknown unknown failed failed healthy', ['unknown->failed CHECKER_DOWN', 'failed->healthy CHECKER_UP']],
    ['++++++', 'unknown healthy healthy healthy healthy healthy', ['unknown->healthy CHECKER_UP']],
  ];
  for (const [results, statuses, changes] of table) {
    it(`${results || '(nothing)'} → ${changes.join(', ') || 'no change'}`, () => {
      const r = run(results);
      assert.deepEqual(r.statuses, statuses === '' ? [] : statuses.split(' '));
      assert.deepEqual(r.changes, changes);
    });
  }

  it('says why, with the detail of the last result', () => {
    const { actions } = run('++---');
    assert.deepEqual(actions[1], {
      type: 'checker-changed',
      checker: 'http',
      module: 'web',
      node: 'aws-1',
      from: 'healthy',
      to: 'failed',
      detail: `http 503 from ${URL}`,
      reason: { code: R.CHECKER_DOWN, text: `checker http of web on aws-1 down: 3 failures in a row, last: http 503 from ${URL}` },
    });
    assert.equal(actions[0]?.reason.text, `checker http of web on aws-1 up: 2 successes in a row, last: http 200 from ${URL}`);
  });

  it('with rise 1 and fall 1 follows every result', () => {
    const r = run('+-+', initChecker({ ...CONFIG, rise: 1, fall: 1 }, 0));
    assert.deepEqual(r.changes, ['unknown->healthy CHECKER_UP', 'healthy->failed CHECKER_DOWN', 'failed->healthy CHECKER_UP']);
    assert.match(r.actions[1]!.reason.text, /down: 1 failure in a row/);
  });

  it('remembers when the status changed and the last result', () => {
    const { state } = run('++-');
    assert.equal(state.since, 500);
    assert.deepEqual(state.last, { ok: false, detail: `http 503 from ${URL}`, at: 750 });
  });
});

describe('checker: reset', () => {
  it('goes back to unknown with a reason, and must rise again', () => {
    const healthy = run('++').state;
    const r = stepChecker(healthy, { type: 'reset', detail: 'web restarted' }, 1000);
    assert.equal(r.state.status, 'unknown');
    assert.deepEqual(r.actions.map((a) => `${a.from}->${a.to} ${a.reason.code} ${a.reason.text}`), [
      'healthy->unknown CHECKER_RESET checker http of web on aws-1 reset to unknown: web restarted',
    ]);
    assert.deepEqual(run('+', r.state).changes, []);
  });

  it('is silent when already unknown, but clears a run in progress', () => {
    const half = run('--').state;
    const r = stepChecker(half, { type: 'reset', detail: 'web restarted' }, 1000);
    assert.deepEqual(r.actions, []);
    assert.deepEqual(run('-', r.state).statuses, ['unknown']);
  });
});

describe('checker: module health', () => {
  const table: [CheckerStatus[], CheckerStatus][] = [
    [[], 'healthy'],
    [['healthy'], 'healthy'],
    [['healthy', 'healthy'], 'healthy'],
    [['healthy', 'unknown'], 'unknown'],
    [['unknown', 'failed'], 'failed'],
    [['healthy', 'failed'], 'failed'],
  ];
  for (const [statuses, expected] of table) {
    it(`[${statuses.join(', ')}] → ${expected}`, () => assert.equal(moduleHealth(statuses), expected));
  }
});

describe('checker: property', () => {
  it('never flips to healthy without rise successes in a row, nor to failed without fall failures in a row', () => {
    const step = fc.oneof({ weight: 9, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constant('reset' as const) });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.array(fc.tuple(fc.nat(1000), step), { maxLength: 100 }), (rise, fall, steps) => {
        let state = initChecker({ ...CONFIG, rise, fall }, 0);
        let now = 0;
        let okRun = 0;
        let badRun = 0;
        for (const [dt, s] of steps) {
          now += dt;
          const before = state.status;
          const r = stepChecker(state, s === 'reset' ? { type: 'reset', detail: 'reset' } : { type: 'result', ok: s, detail: s ? 'ok' : 'bad' }, now);
          state = r.state;
          if (s === 'reset') [okRun, badRun] = [0, 0];
          else if (s) [okRun, badRun] = [okRun + 1, 0];
          else [okRun, badRun] = [0, badRun + 1];
          assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
          assert.ok(r.actions.length <= 1);
          for (const a of r.actions) {
            assert.equal(a.from, before);
            assert.equal(a.to, state.status);
            assert.ok(Object.values(R).includes(a.reason.code as never));
          }
          if (state.status === 'healthy' && before !== 'healthy') assert.ok(okRun >= rise, `healthy after ${okRun} successes`);
          if (state.status === 'failed' && before !== 'failed') assert.ok(badRun >= fall, `failed after ${badRun} failures`);
          // And the other way round: the runs are acted upon.
          if (okRun >= rise) assert.equal(state.status, 'healthy');
          if (badRun >= fall) assert.equal(state.status, 'failed');
          if (s === 'reset') assert.equal(state.status, 'unknown');
        }
      }),
      { numRuns: 500 },
    );
  });
});
