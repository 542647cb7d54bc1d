/**
 * The bridge between the role machine and the application supervisor: a
 * stop is reported to the machine only once what the application wrote
 * before it is shipped (a switchover's final barrier follows the report at
 * once), and a start asked for meanwhile waits for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MirrorModuleConfig } from '../../../src/config/model.js';
import { systemClock } from '../../../src/core/clock.js';
import type { AppSupervisor } from '../../../src/agent/app-supervisor.js';
import { MirrorModule } from '../../../src/agent/mirror-module.js';
import type { MemberInput } from '../../../src/logic/member.js';

const config: MirrorModuleConfig = {
  kind: 'mirror', name: 'db', nodes: ['n1', 'n2'], start: 'true', startTimeout: 1000, stopTimeout: 1000, workingDir: '/', environment: {}, checkers: [],
  restart: { maxRestarts: 3, window: 60_000 }, directories: ['/srv/db'], failback: 'manual', readOnlyOnSecondaries: false,
};

function bridge() {
  const app = {
    status: 'running' as string,
    starts: [] as Array<{ epoch: number }>,
    start(run: { epoch: number }) {
      this.status = 'starting';
      this.starts.push(run);
    },
    stop: async () => undefined,
    extend: () => undefined,
    fence: async () => undefined,
  };
  const inputs: MemberInput['type'][] = [];
  const said: MemberInput[] = [];
  const running: boolean[] = [];
  let settled!: (unshipped: string | undefined) => void;
  const settling: { started: number } = { started: 0 };
  const mirror = new MirrorModule(config, app as unknown as AppSupervisor, 'n1', systemClock, (i) => (inputs.push(i.type), said.push(i)), () => undefined, {
    settle: () => {
      settling.started++;
      return new Promise<string | undefined>((resolve) => (settled = resolve));
    },
    running: (maybe) => running.push(maybe),
  });
  return { app, inputs, said, running, mirror, settling, settle: async (unshipped?: string) => {
    settled(unshipped);
    await new Promise((r) => setImmediate(r));
  } };
}

/** A bridge whose application was started by the machine and has just stopped (the supervisor says so next). */
function stoppedRun() {
  const b = bridge();
  b.app.status = 'stopped';
  b.mirror.startApp(3, 10_000);
  b.app.status = 'stopped';
  return b;
}

test('a stop is reported once the last writes are shipped; the application is surely stopped then', async () => {
  const { inputs, running, mirror, settling, settle } = stoppedRun();
  mirror.onStopped();
  assert.equal(settling.started, 1);
  assert.deepEqual(inputs, [], 'not before the last writes are shipped');
  await settle();
  assert.deepEqual(inputs, ['app-stopped']);
  assert.deepEqual(running, [true, false]);
});

test('a stop whose last writes could not all be shipped says why (the role machine then aborts a hand-over)', async () => {
  const { said, mirror, settle } = stoppedRun();
  mirror.onStopped();
  await settle('not done within 600 ms');
  assert.deepEqual(said, [{ type: 'app-stopped', module: 'db', unshipped: 'not done within 600 ms' }]);
});

test('a stop asked for after a failure the supervisor reports before its stop (a give-up) waits for the same report', async () => {
  const { inputs, mirror, settle } = stoppedRun();
  mirror.stopApp({ code: 'GIVEN_UP', text: 'given up' });
  assert.deepEqual(inputs, [], 'the run\'s stop is still owed: its last writes are not shipped yet');
  mirror.onStopped();
  await settle();
  assert.deepEqual(inputs, ['app-stopped'], 'said once');
});

test('a start asked for while the last writes are shipped waits for them, and says the application may run before it exists', async () => {
  const { app, inputs, running, mirror, settle } = stoppedRun();
  mirror.onStopped();
  mirror.startApp(4, 10_000);
  assert.equal(app.starts.length, 1, 'no start before the stop has settled');
  await settle();
  assert.deepEqual(app.starts.map((r) => r.epoch), [3, 4]);
  assert.deepEqual(inputs, [], 'a restart under the same lease is not a stop for the machine');
  assert.deepEqual(running, [true, true]);
});
