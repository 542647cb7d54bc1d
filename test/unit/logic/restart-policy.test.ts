import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  RESTART_REASONS as R,
  initRestartPolicy,
  restartsInWindow,
  stepRestartPolicy,
  type RestartPolicyAction,
  type RestartPolicyConfig,
  type RestartPolicyEvent,
  type RestartPolicyState,
} from '../../../src/logic/restart-policy.js';

const MIN = 60_000;
const CONFIG: RestartPolicyConfig = { module: 'web', node: 'aws-1', maxRestarts: 3, window: 5 * MIN };
const exited: RestartPolicyEvent = { type: 'app-failed', detail: 'process exited with code 1' };

function feed(state: RestartPolicyState, events: readonly [number, RestartPolicyEvent][]): { state: RestartPolicyState; actions: [number, RestartPolicyAction][] } {
  const actions: [number, RestartPolicyAction][] = [];
  for (const [now, event] of events) {
    const r = stepRestartPolicy(state, event, now);
    state = r.state;
    for (const a of r.actions) actions.push([now, a]);
  }
  return { state, actions };
}

/** "type CODE" of each action, wakes as "wake AT". */
function summary(actions: readonly [number, RestartPolicyAction][]): string[] {
  return actions.map(([, a]) => (a.type === 'wake' ? `wake ${a.at}` : `${a.type} ${a.reason.code}`));
}

describe('restart policy: counting within the window', () => {
  it('restarts up to maxRestarts times, then gives up, and says why', () => {
    const { state, actions } = feed(initRestartPolicy(CONFIG, 0), [
      [1000, exited],
      [2000, { type: 'app-started' }],
      [3000, { type: 'app-healthy' }],
      [MIN, exited],
      [2 * MIN, exited],
      [3 * MIN, { type: 'app-failed', detail: `checker http down: http 503 from http://10.0.0.1:8080/health` }],
    ]);
    assert.deepEqual(summary(actions), ['restart-app RESTART_APP', 'restart-app RESTART_APP', 'restart-app RESTART_APP', 'give-up RESTART_GIVE_UP']);
    assert.deepEqual(actions[1]![1], {
      type: 'restart-app',
      module: 'web',
      node: 'aws-1',
      attempt: 2,
      reason: { code: R.RESTART_APP, text: 'restarting web on aws-1 (restart 2 of 3 in 5m): process exited with code 1' },
    });
    const giveUp = actions[3]![1];
    assert.equal(
      giveUp.type === 'give-up' && giveUp.reason.text,
      'giving web up on aws-1: 3 restarts in 5m did not help; last failure: checker http down: http 503 from http://10.0.0.1:8080/health',
    );
    assert.equal(state.status, 'given-up');
    assert.equal(state.givenUpAt, 3 * MIN);
  });

  // Restarts at 0, 1m and 2m; the fourth failure comes just before or just when the first restart leaves the window.
  const boundary: [at: number, expected: string][] = [
    [5 * MIN - 1, 'give-up RESTART_GIVE_UP'],
    [5 * MIN, 'restart-app RESTART_APP'],
    [5 * MIN + 1, 'restart-app RESTART_APP'],
  ];
  for (const [at, expected] of boundary) {
    it(`a fourth failure at ${at}ms after the first restart → ${expected}`, () => {
      const { state, actions } = feed(initRestartPolicy(CONFIG, 0), [
        [0, exited],
        [MIN, exited],
        [2 * MIN, exited],
        [at, exited],
      ]);
      assert.deepEqual(summary(actions).slice(3), [expected]);
      if (expected.startsWith('restart-app')) {
        const a = actions[3]![1];
        assert.equal(a.type === 'restart-app' && a.attempt, 3, 'the first restart left the window: this is restart 3 of 3');
        assert.deepEqual(state.restarts, [MIN, 2 * MIN, at]);
      }
    });
  }

  it('healthy again does not clear the history: an application that keeps dying is given up', () => {
    const { actions } = feed(initRestartPolicy(CONFIG, 0), [
      [0, exited],
      [10, { type: 'app-started' }],
      [20, { type: 'app-healthy' }],
      [1000, exited],
      [1010, { type: 'app-healthy' }],
      [2000, exited],
      [2010, { type: 'app-healthy' }],
      [3000, exited],
    ]);
    assert.deepEqual(summary(actions).at(-1), 'give-up RESTART_GIVE_UP');
  });

  it('with max_restarts 0 gives up at the first failure', () => {
    const { actions } = feed(initRestartPolicy({ ...CONFIG, maxRestarts: 0 }, 0), [[5, exited]]);
    assert.deepEqual(summary(actions), ['give-up RESTART_GIVE_UP']);
    const a = actions[0]![1];
    assert.equal(a.type === 'give-up' && a.reason.text, 'giving web up on aws-1: restarts are off (max_restarts 0); failure: process exited with code 1');
  });

  it('tracks the status shown to people', () => {
    const steps: [RestartPolicyEvent, string][] = [
      [{ type: 'app-started' }, 'started'],
      [{ type: 'app-healthy' }, 'healthy'],
      [{ type: 'app-started' }, 'healthy'],
      [exited, 'starting'],
      [{ type: 'app-healthy' }, 'healthy'],
    ];
    let state = initRestartPolicy(CONFIG, 0);
    assert.equal(state.status, 'starting');
    steps.forEach(([event, status], i) => {
      state = stepRestartPolicy(state, event, i * 10).state;
      assert.equal(state.status, status, `after ${event.type}`);
    });
    assert.equal(restartsInWindow(state, 100), 1);
    assert.equal(restartsInWindow(state, 30 + 5 * MIN), 0);
  });
});

describe('restart policy: given up', () => {
  function givenUp(config: RestartPolicyConfig = CONFIG): RestartPolicyState {
    const s = feed(initRestartPolicy(config, 0), [[0, exited], [1000, exited], [2000, exited], [3000, exited]]).state;
    assert.equal(s.status, 'given-up');
    return s;
  }

  it('stays given up, whatever happens, until an operator clears it (no timer without autoResetAfter)', () => {
    const { state, actions } = feed(givenUp(), [
      [4000, exited],
      [5000, { type: 'app-started' }],
      [6000, { type: 'app-healthy' }],
      [60 * MIN, { type: 'tick' }],
    ]);
    assert.deepEqual(actions, []);
    assert.equal(state.status, 'given-up');
  });

  it('an operator reset starts the application again with an empty history', () => {
    const { state, actions } = feed(givenUp(), [[10_000, { type: 'operator-reset', by: 'alice' }]]);
    assert.deepEqual(actions.map(([, a]) => a), [
      { type: 'start-app', module: 'web', node: 'aws-1', reason: { code: R.RESTART_RESET, text: 'alice cleared web on aws-1: starting it again' } },
    ]);
    assert.equal(state.status, 'starting');
    assert.deepEqual(state.restarts, []);
    assert.equal(state.givenUpAt, undefined);
    // Three fresh restarts are allowed again, in the same window.
    const again = feed(state, [[11_000, exited], [12_000, exited], [13_000, exited], [14_000, exited]]);
    assert.deepEqual(summary(again.actions), ['restart-app RESTART_APP', 'restart-app RESTART_APP', 'restart-app RESTART_APP', 'give-up RESTART_GIVE_UP']);
  });

  it('an operator reset before a give-up clears the history and says so; with nothing to clear it is silent', () => {
    const two = feed(initRestartPolicy(CONFIG, 0), [[0, exited], [1000, exited]]).state;
    const r = stepRestartPolicy(two, { type: 'operator-reset' }, 2000);
    assert.deepEqual(r.actions, [
      { type: 'restarts-cleared', module: 'web', node: 'aws-1', reason: { code: R.RESTART_RESET, text: 'an operator cleared the restart history of web on aws-1 (2 in 5m)' } },
    ]);
    assert.deepEqual(stepRestartPolicy(r.state, { type: 'operator-reset' }, 3000).actions, []);
  });

  it('with autoResetAfter, asks to be woken and starts the application again by itself', () => {
    const s = givenUp({ ...CONFIG, autoResetAfter: 30 * MIN });
    const early = stepRestartPolicy(s, { type: 'tick' }, 10 * MIN);
    assert.deepEqual(early.actions, [{ type: 'wake', at: 3000 + 30 * MIN }]);
    const due = stepRestartPolicy(early.state, { type: 'tick' }, 3000 + 30 * MIN);
    assert.deepEqual(summary([[0, due.actions[0]!]]), ['start-app RESTART_AUTO_RESET']);
    assert.equal(due.actions[0]?.type === 'start-app' && due.actions[0].reason.text, 'starting web on aws-1 again: 30m passed since it was given up (auto reset)');
    assert.equal(due.state.status, 'starting');
  });

  it('an auto reset does not clear history still inside the window: one more failure gives up at once', () => {
    const s = givenUp({ ...CONFIG, autoResetAfter: 1000 });
    const { actions } = feed(s, [[4000, { type: 'tick' }], [5000, exited]]);
    assert.deepEqual(summary(actions), ['start-app RESTART_AUTO_RESET', 'give-up RESTART_GIVE_UP', 'wake 6000']);
  });
});

describe('restart policy: property', () => {
  const event: fc.Arbitrary<RestartPolicyEvent> = fc.oneof(
    { weight: 6, arbitrary: fc.constant<RestartPolicyEvent>(exited) },
    fc.constant<RestartPolicyEvent>({ type: 'app-started' }),
    fc.constant<RestartPolicyEvent>({ type: 'app-healthy' }),
    fc.constant<RestartPolicyEvent>({ type: 'tick' }),
    { weight: 1, arbitrary: fc.constant<RestartPolicyEvent>({ type: 'operator-reset' }) },
  );

  it('never restarts more than maxRestarts times within any window (between operator resets)', () => {
    fc.assert(
      fc.property(
        fc.nat(5),
        fc.integer({ min: 1, max: 10_000 }),
        fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined }),
        fc.array(fc.tuple(fc.nat(3000), event), { maxLength: 150 }),
        (maxRestarts, window, autoResetAfter, steps) => {
          const config: RestartPolicyConfig = { module: 'web', node: 'aws-1', maxRestarts, window, ...(autoResetAfter !== undefined ? { autoResetAfter } : {}) };
          let state = initRestartPolicy(config, 0);
          let now = 0;
          let restarts: number[] = [];
          for (const [dt, ev] of steps) {
            now += dt;
            const r = stepRestartPolicy(state, ev, now);
            state = r.state;
            assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
            for (const a of r.actions) {
              if (a.type === 'wake') {
                assert.ok(a.at > now);
                continue;
              }
              assert.ok(Object.values(R).includes(a.reason.code as never));
              if (a.reason.code === R.RESTART_RESET) restarts = [];
              if (a.type === 'restart-app') {
                restarts.push(now);
                const inWindow = restarts.filter((t) => now - t < window).length;
                assert.ok(inWindow <= maxRestarts, `${inWindow} restarts within ${window}ms (max ${maxRestarts})`);
                assert.equal(a.attempt, inWindow);
              }
            }
            assert.ok(state.restarts.length <= maxRestarts);
            assert.equal(state.status === 'given-up', state.givenUpAt !== undefined);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
