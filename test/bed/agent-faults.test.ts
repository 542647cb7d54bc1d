/**
 * The guarantees with real faults: agents, a witness and the sample
 * application as separate processes on hosts made of network namespaces
 * (src/testing/bed/), LAN profile. Each scenario asserts from outside: which
 * node answers 200 on /health/db, and the observer file that every run of the
 * application writes (its primary intervals must never overlap).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { writeClusterFiles, type ClusterSpec } from '../../src/testing/cluster-files.js';
import { ClusterRunner } from '../../src/testing/cluster-runner.js';
import { BedLauncher } from '../../src/testing/bed-launcher.js';
import { TestBed, bedUnavailable } from '../../src/testing/bed/bed.js';
import { assertNoOverlap, primaryIntervals, readObserver } from '../../src/testing/bed/observer.js';
import { holdsFor, waitFor } from '../../src/testing/wait.js';
import { sampleAppCommand } from '../../src/testing/sample-app.js';

const APP_PORT = 8080;
const skip = bedUnavailable();
if (skip) process.stdout.write(`# skipping the namespace tests: ${skip}\n`);

interface Cluster {
  bed: TestBed;
  runner: ClusterRunner;
  observer: string;
  dir: string;
}

async function makeCluster(nodes: string[], witnesses: string[], modules: (observer: string, dir: string) => Record<string, unknown>): Promise<Cluster> {
  const bed = await TestBed.create({ hosts: [...nodes, ...witnesses], label: 'faults' });
  const dir = mkdtempSync(join(tmpdir(), 'skyha-bed-'));
  const observer = join(dir, 'observer.jsonl');
  const spec: ClusterSpec = {
    name: 'bed',
    profile: 'lan',
    nodes: nodes.map((n, i) => ({ name: n, address: bed.host(n).address, labels: { zone: `z${i + 1}` } })),
    witnesses: witnesses.map((w) => ({ name: w, address: bed.host(w).address, labels: { zone: 'witness' } })),
    modules: modules(observer, dir),
  };
  const files = await writeClusterFiles(dir, spec);
  const runner = new ClusterRunner(files, spec, new BedLauncher(bed));
  runner.startAll();
  return { bed, runner, observer, dir };
}

async function destroy(c: Cluster | undefined): Promise<void> {
  if (!c) return;
  await c.runner.stopAll(10_000).catch(() => undefined);
  await c.bed.destroy();
  // SKYHA_TEST_KEEP=1 keeps the members' logs and data for a post-mortem.
  if (process.env.SKYHA_TEST_KEEP) process.stdout.write(`# kept ${c.dir}\n`);
  else rmSync(c.dir, { recursive: true, force: true });
}

const mirrorDb = (observer: string, dir: string, extra: Record<string, unknown> = {}) => ({
  db: {
    kind: 'mirror',
    start: sampleAppCommand(),
    environment: { APP_PORT: String(APP_PORT), SKYHA_TEST_OBSERVER: observer },
    directories: [join(dir, '{node}', 'db-data')],
    stop_timeout: '2s',
    checkers: [{ kind: 'process' }],
    ...extra,
  },
});

function noOverlap(c: Cluster): void {
  assertNoOverlap(primaryIntervals(readObserver(c.observer), { slackMs: 10 }));
}

describe('namespace bed: two nodes and a witness (lan)', { skip }, () => {
  let c: Cluster;
  before(async () => {
    c = await makeCluster(['n1', 'n2'], ['w'], (o, d) => mirrorDb(o, d));
  });
  after(() => destroy(c));
  afterEach(() => noOverlap(c));

  async function primaryAndOther(): Promise<{ primary: string; other: string }> {
    const primary = await c.runner.waitPrimary('db', { deadline: 20_000 });
    const other = primary === 'n1' ? 'n2' : 'n1';
    // Eligible to take over: in the committed in-sync set.
    await waitFor(`${other} in sync`, async () => (await c.runner.status(primary))?.modules[0]?.inSync?.includes(other));
    await c.runner.waitSettled();
    return { primary, other };
  }

  async function rejoin(node: string): Promise<void> {
    if (!c.runner.running.has(node)) c.runner.start(node);
    await waitFor(`${node} back as secondary`, async () => (await c.runner.status(node))?.modules[0]?.role === 'secondary', { deadline: 15_000 });
  }

  it('kill -9 of the primary agent and application: the other node is primary within 2 s', async () => {
    const { primary, other } = await primaryAndOther();
    const pid = (await c.runner.appPid(primary, 'db'))!;
    const t0 = performance.now();
    await c.runner.kill(primary);
    process.kill(pid, 'SIGKILL');
    assert.equal(await c.runner.waitPrimary('db', { not: primary, deadline: 5000, every: 10 }), other);
    const took = performance.now() - t0;
    assert.ok(took < 2000, `failover took ${Math.round(took)} ms`);
    await rejoin(primary);
  });

  it('kill -9 of the primary agent alone: its keeper stops the application before the other node starts', async () => {
    const { primary, other } = await primaryAndOther();
    const pid = (await c.runner.appPid(primary, 'db'))!;
    await c.runner.kill(primary);
    assert.equal(await c.runner.waitPrimary('db', { not: primary, deadline: 5000, every: 10 }), other);
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the old application is gone');
    await rejoin(primary);
  });

  it('SIGSTOP of the primary agent alone (longer than the lease): the keeper fences, the other node takes over, the woken agent stays secondary', async () => {
    const { primary, other } = await primaryAndOther();
    const agent = c.runner.running.get(primary)!;
    agent.kill('SIGSTOP');
    try {
      assert.equal(await c.runner.waitPrimary('db', { not: primary, deadline: 5000, every: 10 }), other);
    } finally {
      agent.kill('SIGCONT');
    }
    await waitFor(`${primary} secondary after waking`, async () => (await c.runner.status(primary))?.modules[0]?.role === 'secondary');
    assert.deepEqual(await c.runner.healthyNodes('db'), [other]);
  });

  it('partition of the primary from the witness and the other node: it stops before its lease ends; after healing it rejoins as secondary', async () => {
    const { primary, other } = await primaryAndOther();
    await c.bed.partition(primary, [other, 'w']);
    try {
      assert.equal(await c.runner.waitPrimary('db', { not: primary, deadline: 5000, every: 10 }), other);
      // The cut-off node reports itself not primary (the test process still reaches it from the root namespace).
      await waitFor(`${primary} no longer primary`, async () => (await c.runner.health(primary, 'db')) === 503);
    } finally {
      await c.bed.heal(primary);
    }
    await waitFor(`${primary} secondary after healing`, async () => (await c.runner.status(primary))?.modules[0]?.role === 'secondary', { deadline: 10_000 });
    assert.deepEqual(await c.runner.healthyNodes('db'), [other]);
  });

  it('partition of the witness alone: no role changes', async () => {
    const { primary } = await primaryAndOther();
    const before = (await c.runner.status(primary))!.modules[0]!.epoch;
    await c.bed.partition('w', c.runner.members.filter((m) => m.name !== 'w').map((m) => m.name));
    try {
      // Over several lease lengths, the primary keeps serving without a single 503.
      await holdsFor('the primary keeps serving', async () => (await c.runner.health(primary, 'db', 1000)) !== 503, { duration: 2500, every: 50 });
    } finally {
      await c.bed.heal('w');
    }
    assert.equal((await c.runner.status(primary))!.modules[0]!.epoch, before);
  });
});
