/**
 * A give-up on the primary between real agents on loopback (two nodes and a
 * witness, separate processes, real TLS, the real watcher): the
 * application's checker fails while it still runs, the restart policy gives
 * it up (max_restarts 0), its stop script takes longer than a lease and
 * writes a last file meanwhile. The given-up primary keeps its lease while
 * the application stops, ships that last file, makes it durable on the
 * secondary with a final barrier, and only then releases the lease: the
 * secondary takes over with the file. Before, the first renewal after the
 * give-up released the lease, the stop script was killed halfway, and what
 * it had written stayed behind on the old primary.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeClusterFiles, type ClusterSpec } from '../../src/testing/cluster-files.js';
import { ClusterRunner, LocalLauncher } from '../../src/testing/cluster-runner.js';
import { waitFor } from '../../src/testing/wait.js';
import { sampleAppCommand } from '../../src/testing/sample-app.js';
import { runCli } from '../helpers/cli.js';

const net = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
const APP_PORT = 19_000 + Math.floor(Math.random() * 1000);
const noPython = spawnSync('python3', ['-c', 'import ctypes']).status !== 0 ? 'python3 is not installed (the change watcher needs it)' : false;

describe('a mirror module given up on its primary', { skip: noPython }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-giveup-'));
  const data = (node: string) => join(dir, node, 'data');
  const unhealthy = (node: string) => join(dir, `unhealthy-${node}`);
  const spec: ClusterSpec = {
    name: 'giveup',
    profile: 'lan',
    nodes: [
      { name: 'n1', address: `${net}.1` },
      { name: 'n2', address: `${net}.2` },
    ],
    witnesses: [{ name: 'w', address: `${net}.3` }],
    modules: {
      db: {
        kind: 'mirror', start: sampleAppCommand(), environment: { APP_PORT: String(APP_PORT) }, directories: [join(dir, '{node}', 'data')], preferred_node: 'n1',
        // Fails while the process still runs, once the test says so; the first failure gives the module up.
        checkers: [{ kind: 'command', command: `test ! -e ${join(dir, 'unhealthy-')}"$SKYHA_NODE"`, interval: '100ms', timeout: '100ms', fall: 1, rise: 1 }],
        restart: { max_restarts: 0, window: '1m' },
        // Longer than a lease (600 ms), and writing as it goes: its last write must go with the role.
        stop: `sleep 1; printf 'written at epoch %s while giving up' "$SKYHA_EPOCH" > "\${SKYHA_DIRECTORIES%%:*}/written-while-giving-up.txt"; sleep 0.3`,
        stop_timeout: '5s',
      },
    },
  };
  let runner: ClusterRunner;

  before(async () => {
    runner = new ClusterRunner(await writeClusterFiles(dir, spec), spec, new LocalLauncher());
    runner.startAll();
  });

  after(async () => {
    await runner?.stopAll();
    if (process.env.SKYHA_TEST_KEEP) process.stdout.write(`# kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  });

  it('stops under its lease, ships what the stop script wrote, and only then lets the secondary take over', async () => {
    await runner.waitPrimary('db', { deadline: 20_000 });
    // The preferred node may take the role back first (a failback right after the start): wait until it is done.
    await runner.waitSettled();
    const primary = await runner.waitPrimary('db');
    const other = primary === 'n1' ? 'n2' : 'n1';
    await waitFor('a barrier to succeed (the secondary in sync)', async () => (await runCli(['barrier', 'db', '--config', runner.files.config, '--timeout', '1s'])).code === 0, { deadline: 30_000, every: 200 });
    const givenUpAt = Date.now();
    writeFileSync(unhealthy(primary), '');
    assert.equal(await runner.waitPrimary('db', { not: primary, deadline: 20_000 }), other);
    await runner.waitSettled();
    const path = join(data(other), 'written-while-giving-up.txt');
    assert.ok(existsSync(path), 'the stop script\'s last write is on the new primary');
    assert.match(readFileSync(path, 'utf8'), /^written at epoch \d+ while giving up$/);
    const given = (await runner.status(primary))?.modules.find((m) => m.name === 'db');
    assert.equal(given?.role, 'out-of-service');
    assert.ok(given?.restarts.givenUp);
    // The secondary took over once, and only after the stop script had written (the lease was kept, renewed, while
    // it ran). Before, the lease went at the first renewal: the secondary was promoted while the old primary's stop
    // script still wrote, and the roles moved back and forth after it.
    const written = statSync(join(data(primary), 'written-while-giving-up.txt')).mtimeMs;
    const promoted = ((await runner.status(other))?.events ?? []).filter((e) => e.module === 'db' && e.reason === 'PROMOTED' && Date.parse(e.at) >= givenUpAt);
    assert.equal(promoted.length, 1, `one promotion of ${other}: ${JSON.stringify(promoted)}`);
    assert.ok(Date.parse(promoted[0]!.at) >= written, `${other} was promoted at ${promoted[0]!.at}, after the stop script wrote at ${new Date(written).toISOString()}`);
  });
});
