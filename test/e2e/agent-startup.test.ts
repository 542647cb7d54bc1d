/**
 * An agent whose start-up is slow (a mirror module's directory holds tens of
 * thousands of directories: the watcher adds a watch to each) while its
 * peers are up and would give it the lease at once. Nothing may reach its
 * member machine before the agent has started: a lease won earlier started
 * the application as primary, and the end of replication's start then put
 * the read-only view over the primary's own directory (docs/design/agent.md,
 * "Start-up order").
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { writeClusterFiles, type ClusterSpec } from '../../src/testing/cluster-files.js';
import { ClusterRunner, LocalLauncher } from '../../src/testing/cluster-runner.js';
import { waitFor } from '../../src/testing/wait.js';
import { sampleAppCommand } from '../../src/testing/sample-app.js';

const net = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
const APP_PORT = 20_000 + Math.floor(Math.random() * 1000);
const noPython = spawnSync('python3', ['-c', 'import ctypes']).status !== 0 ? 'python3 is not installed (the change watcher needs it)' : false;
/** Enough directories that the watcher's start takes a second or more here, several lease rounds. */
const DIRS = 20_000;

/** The reason codes of a member's events, in the order its log has them from byte `from` on. */
function reasons(logFile: string, from: number): string[] {
  const out: string[] = [];
  for (const line of readFileSync(logFile).subarray(from).toString('utf8').split('\n')) {
    try {
      const j = JSON.parse(line) as { event?: boolean; reason?: string };
      if (j.event && j.reason) out.push(j.reason);
    } catch {
      // not a JSON line
    }
  }
  return out;
}

describe('an agent that starts slowly while the witness would give it the lease at once', { skip: noPython }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-startup-'));
  const data = (node: string) => join(dir, node, 'data');
  const spec: ClusterSpec = {
    name: 'startup',
    profile: 'lan',
    log: { format: 'json' },
    nodes: [
      { name: 'n1', address: `${net}.1` },
      { name: 'n2', address: `${net}.2` },
    ],
    witnesses: [{ name: 'w', address: `${net}.3` }],
    modules: {
      db: { kind: 'mirror', start: sampleAppCommand(), environment: { APP_PORT: String(APP_PORT) }, directories: [join(dir, '{node}', 'data')], preferred_node: 'n1', stop_timeout: '2s', checkers: [{ kind: 'process' }] },
    },
  };
  let runner: ClusterRunner;
  /** Where n1's log of its slow start begins. */
  let logFrom = 0;

  before(async () => {
    runner = new ClusterRunner(await writeClusterFiles(dir, spec), spec, new LocalLauncher());
    runner.startAll();
    await waitFor('n1, the preferred node, primary', async () => (await runner.status('n1'))?.modules.find((m) => m.name === 'db')?.role === 'primary', { deadline: 30_000, every: 200 });
    // n2 goes first (n1 keeps the lease with the witness), then n1 releases it: n1 alone holds the latest data.
    await runner.kill('n2', 'SIGTERM');
    await runner.kill('n1', 'SIGTERM');
    for (let i = 0; i < DIRS / 200; i++) for (let j = 0; j < 200; j++) mkdirSync(join(data('n1'), `d${i}`, `e${j}`), { recursive: true });
    // With the witness it holds a majority: the lease is n1's in the first rounds it asks, long before its watcher is up.
    logFrom = statSync(runner.logFile('n1')).size;
    runner.start('n1');
  });

  after(async () => {
    await runner?.stopAll();
    if (process.env.SKYHA_TEST_KEEP) process.stdout.write(`# kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  });

  it('is promoted only once it has started, and its directory stays writable as the primary', async () => {
    assert.equal(await runner.waitPrimary('db', { deadline: 30_000 }), 'n1');
    const order = reasons(runner.logFile('n1'), logFrom);
    const started = order.indexOf('MEMBER_STARTED');
    const promoted = order.indexOf('PROMOTED');
    assert.ok(started >= 0 && promoted > started, `n1's events: ${order.join(', ')}`);
    // What the application would write lands: the read-only view is the secondary's, not the primary's.
    writeFileSync(join(data('n1'), 'written-by-the-primary.txt'), 'ok');
    const st = await runner.status('n1', 2000);
    assert.equal(st?.modules.find((m) => m.name === 'db')?.replication?.readOnly.readOnly, false);
    // And it reaches n2 once that one is back (after the resync of the new directories).
    runner.start('n2');
    await waitFor('the file on n2', () => {
      try {
        return readFileSync(join(data('n2'), 'written-by-the-primary.txt'), 'utf8') === 'ok';
      } catch {
        return false;
      }
    }, { deadline: 60_000, every: 200 });
  });
});
