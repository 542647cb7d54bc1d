/**
 * Real agents and a witness as separate processes on loopback addresses:
 * election, /health/MODULE, `skyha status`, failover after kill -9, and a
 * clean SIGTERM. The same scenarios with real network faults run in the
 * namespace test bed (test/bed/); this file is the quick one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeClusterFiles, type ClusterSpec } from '../../src/testing/cluster-files.js';
import { ClusterRunner, LocalLauncher } from '../../src/testing/cluster-runner.js';
import { assertNoOverlap, primaryIntervals, readObserver } from '../../src/testing/bed/observer.js';
import { waitFor } from '../../src/testing/wait.js';
import { runCli } from '../helpers/cli.js';
import { sampleAppCommand } from '../../src/testing/sample-app.js';

const net = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
const APP_PORT = 18_000 + Math.floor(Math.random() * 1000);

describe('agent on loopback: two nodes and a witness', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-agent-'));
  const observer = join(dir, 'observer.jsonl');
  const spec: ClusterSpec = {
    name: 'loop',
    profile: 'lan',
    nodes: [
      { name: 'n1', address: `${net}.1`, labels: { cloud: 'aws' } },
      { name: 'n2', address: `${net}.2`, labels: { cloud: 'azure' } },
    ],
    witnesses: [{ name: 'w', address: `${net}.3`, labels: { cloud: 'gcp' } }],
    modules: {
      db: {
        kind: 'mirror',
        start: sampleAppCommand(),
        environment: { APP_PORT: String(APP_PORT), SKYHA_TEST_OBSERVER: observer },
        directories: [join(dir, '{node}', 'db-data')],
        stop_timeout: '2s',
        checkers: [{ kind: 'process' }],
      },
    },
  };
  let runner: ClusterRunner;

  before(async () => {
    const files = await writeClusterFiles(dir, spec);
    runner = new ClusterRunner(files, spec, new LocalLauncher());
    runner.startAll();
  });

  after(async () => {
    await runner?.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('elects exactly one primary, which alone answers 200 on /health/db', async () => {
    const primary = await runner.waitPrimary('db', { deadline: 20_000 });
    const other = primary === 'n1' ? 'n2' : 'n1';
    assert.equal(await runner.health(other, 'db'), 503);
    assert.equal(await runner.health('w', 'db'), 404);
    const res = await fetch(runner.url(primary, '/health/db'), { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
    // The application answers on the primary's address.
    const app = await fetch(`http://${runner.member(primary).address}:${APP_PORT}/`);
    assert.equal(((await app.json()) as { node: string }).node, primary);
  });

  it('skyha status shows members, labels, liveness and the role of db on each node', async () => {
    await waitFor('every member seen alive by the others', async () => {
      const r = await runCli(['status', '--config', runner.files.config, '--json']);
      const s = JSON.parse(r.stdout) as { members: Array<{ name: string; seenAliveBy: string[] }> };
      return s.members.every((m) => m.seenAliveBy.length === 2);
    });
    const table = await runCli(['status', '--config', runner.files.config]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /cluster loop \(profile lan\)/);
    assert.match(table.stdout, /n1\s+node\s+cloud=aws\s+up, seen alive by 2\/2/);
    assert.match(table.stdout, /w\s+witness\s+cloud=gcp/);
    assert.match(table.stdout, /db\s+mirror\s+n\d\s+primary\s+\d+\s+running \(pid \d+\)\s+200\s+process-\d:healthy\s+0\/3\s+holder, \d+ ms left/);
    assert.match(table.stdout, /db\s+mirror\s+n\d\s+secondary/);
  });

  it('after kill -9 of the primary agent and its application, the other node serves db; primaries never overlap', async () => {
    const primary = await runner.waitPrimary('db');
    const other = primary === 'n1' ? 'n2' : 'n1';
    const pid = await runner.appPid(primary, 'db');
    assert.ok(pid);
    await runner.kill(primary);
    process.kill(pid, 'SIGKILL');
    assert.equal(await runner.waitPrimary('db', { not: primary, deadline: 10_000 }), other);
    assertNoOverlap(primaryIntervals(readObserver(observer), { slackMs: 10 }));
    // The old node comes back as a secondary.
    runner.start(primary);
    await waitFor(`${primary} back as secondary`, async () => (await runner.status(primary))?.modules[0]?.role === 'secondary', { deadline: 15_000 });
    assert.deepEqual(await runner.healthyNodes('db'), [other]);
  });

  it('a clean stop (SIGTERM) of the primary stops its application and hands db over', async () => {
    const primary = await runner.waitPrimary('db');
    const pid = await runner.appPid(primary, 'db');
    const proc = runner.running.get(primary)!;
    proc.kill('SIGTERM');
    const exit = await proc.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.throws(() => process.kill(pid!, 0), /ESRCH/, 'the application is gone when the agent has exited');
    await runner.waitPrimary('db', { not: primary, deadline: 10_000 });
    assertNoOverlap(primaryIntervals(readObserver(observer), { slackMs: 10 }));
  });
});
