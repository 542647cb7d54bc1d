/**
 * Mirror replication between real agents on loopback (two nodes and a
 * witness, separate processes, real TLS links, the real watcher): files
 * written in the primary's directory reach the secondary, `skyha barrier`
 * returns only once they are durable there, the secondary takes over with
 * them after kill -9 of the primary, and the old primary, back as a
 * secondary, is resynced to the new primary's tree (its extra file gone).
 * Each node keeps its data in its own directory (`{node}` in the path).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
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

/** Every entry under `dir` (staging excluded): kind, mode, content or target. */
function tree(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    if (rel === '' && name === '.skyha-staging') continue;
    const path = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, path));
    if (st.isSymbolicLink()) out[path] = `-> ${readlinkSync(join(dir, path))}`;
    else if (st.isDirectory()) Object.assign(out, { [path]: `dir ${(st.mode & 0o777).toString(8)}` }, tree(dir, path));
    else out[path] = `file ${(st.mode & 0o777).toString(8)} ${readFileSync(join(dir, path)).toString('base64').slice(0, 64)} ${st.size}`;
  }
  return out;
}

describe('mirror replication between agents on loopback', { skip: noPython }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-repl-'));
  const data = (node: string) => join(dir, node, 'data');
  const spec: ClusterSpec = {
    name: 'repl',
    profile: 'lan',
    nodes: [
      { name: 'n1', address: `${net}.1` },
      { name: 'n2', address: `${net}.2` },
    ],
    witnesses: [{ name: 'w', address: `${net}.3` }],
    modules: {
      db: {
        kind: 'mirror', start: sampleAppCommand(), environment: { APP_PORT: String(APP_PORT) }, directories: [join(dir, '{node}', 'data')], stop_timeout: '2s', checkers: [{ kind: 'process' }],
        // An application that writes while it stops (when the test asks): its last write must go with the role.
        stop: `if [ -e ${join(dir, 'write-while-stopping')} ]; then printf 'written at epoch %s while stopping' "$SKYHA_EPOCH" > "\${SKYHA_DIRECTORIES%%:*}/written-while-stopping.txt"; fi`,
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

  const barrier = (timeout = '3s') => runCli(['barrier', 'db', '--config', runner.files.config, '--timeout', timeout]);

  /** A barrier that succeeds: the secondary is in sync and has every change made before it. */
  async function barrierOk(): Promise<void> {
    await waitFor('a barrier to succeed (the secondary in sync)', async () => (await barrier('1s')).code === 0, { deadline: 30_000, every: 200 });
  }

  async function resyncSent(node: string): Promise<{ mode: string; bytes: number; records: number } | undefined> {
    const st = await runner.status(node, 2000);
    return st?.modules.find((m) => m.name === 'db')?.replication?.resyncsSent.last;
  }

  it('files written on the primary are on the secondary once a barrier returns', async () => {
    const primary = await runner.waitPrimary('db', { deadline: 20_000 });
    const secondary = primary === 'n1' ? 'n2' : 'n1';
    await barrierOk();
    const p = data(primary);
    mkdirSync(join(p, 'orders', '2026'), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(join(p, 'orders', '2026', `order-${i}.json`), JSON.stringify({ id: i, item: 'x'.repeat(i * 10) }));
    writeFileSync(join(p, 'big.db'), Buffer.alloc(3 * 1024 * 1024, 5), { mode: 0o640 });
    symlinkSync('orders/2026/order-1.json', join(p, 'latest'));
    mkdirSync(join(p, 'empty'));
    const r = await barrier();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(tree(data(secondary)), tree(p));

    // A few blocks of the big file, a delete, a rename: again exactly the primary's tree after the barrier.
    const fd = openSync(join(p, 'big.db'), 'r+');
    writeSync(fd, Buffer.alloc(100, 9), 0, 100, 1_000_000);
    closeSync(fd);
    rmSync(join(p, 'orders', '2026', 'order-0.json'));
    rmSync(join(p, 'empty'), { recursive: true });
    const again = await barrier();
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(tree(data(secondary)), tree(p));
    assert.deepEqual(readFileSync(join(data(secondary), 'big.db')), readFileSync(join(p, 'big.db')));
  });

  it('skyha switchover moves the primary to the other node with every file; a failover without --force is refused', async () => {
    const primary = await runner.waitPrimary('db');
    const other = primary === 'n1' ? 'n2' : 'n1';
    await barrierOk();
    writeFileSync(join(data(primary), 'before-switchover.txt'), 'moved with the role');
    // The secondary's directory is read-only for everyone but its agent (a read-only bind mount), and says so.
    assert.throws(() => writeFileSync(join(data(other), 'stray.txt'), 'x'), /EROFS/);
    const readOnly = async (node: string) => (await runner.status(node))?.modules[0]?.replication?.readOnly.readOnly;
    assert.equal(await readOnly(other), true);
    assert.equal(await readOnly(primary), false);
    const shown = await runCli(['status', '--config', runner.files.config]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`db\\s+${other}\\s+\\d+:\\d+\\s+read-only`), 'skyha status shows the secondary protected');
    const epoch = (await runner.status(primary))?.modules[0]?.epoch;
    writeFileSync(join(dir, 'write-while-stopping'), '');
    const r = await runCli(['switchover', 'db', '--config', runner.files.config, '--json']);
    rmSync(join(dir, 'write-while-stopping'));
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { primary: string; from: string };
    assert.deepEqual([out.from, out.primary], [primary, other]);
    // No barrier was called: the switchover's final barrier carried the file over, and what the application wrote
    // while it stopped.
    assert.equal(readFileSync(join(data(other), 'before-switchover.txt'), 'utf8'), 'moved with the role');
    assert.equal(readFileSync(join(data(other), 'written-while-stopping.txt'), 'utf8'), `written at epoch ${epoch} while stopping`);
    // The protection follows the roles.
    writeFileSync(join(data(other), 'after-switchover.txt'), 'the new primary writes');
    await waitFor(`${primary} read-only as a secondary`, async () => (await readOnly(primary)) === true);
    assert.throws(() => writeFileSync(join(data(primary), 'stray.txt'), 'x'), /EROFS/);
    const noForce = await runCli(['failover', 'db', '--to', primary, '--config', runner.files.config]);
    assert.equal(noForce.code, 2);
    assert.match(noForce.stderr, /--force/);
    const badTarget = await runCli(['switchover', 'db', '--to', 'nowhere', '--config', runner.files.config]);
    assert.equal(badTarget.code, 2);
    assert.match(badTarget.stderr, /--to: expected a node that runs db/);
    const toItself = await runCli(['switchover', 'db', '--to', other, '--config', runner.files.config]);
    assert.equal(toItself.code, 1, toItself.stderr);
    assert.match(toItself.stderr, /already the primary/);
  });

  it('a barrier on a node that is not the primary, or with a bad timeout, fails clearly', async () => {
    const bad = await runCli(['barrier', 'db', '--config', runner.files.config, '--timeout', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--timeout: expected a duration/);
    const unknown = await runCli(['barrier', 'nope', '--config', runner.files.config]);
    assert.equal(unknown.code, 2);
  });

  it('after kill -9 of the primary the secondary serves the data; the old primary comes back and is resynced to it', async () => {
    const primary = await runner.waitPrimary('db');
    const other = primary === 'n1' ? 'n2' : 'n1';
    writeFileSync(join(data(primary), 'last-before-crash.txt'), 'acknowledged');
    assert.equal((await barrier()).code, 0);
    const pid = await runner.appPid(primary, 'db');
    await runner.kill(primary);
    if (pid) process.kill(pid, 'SIGKILL');
    assert.equal(await runner.waitPrimary('db', { not: primary, deadline: 15_000 }), other);
    assert.equal(readFileSync(join(data(other), 'last-before-crash.txt'), 'utf8'), 'acknowledged');
    // The old primary had a write nobody acknowledged; the new primary changes things meanwhile.
    writeFileSync(join(data(primary), 'never-replicated.txt'), 'lost with the node');
    writeFileSync(join(data(other), 'after-failover.txt'), 'new history');
    runner.start(primary);
    await barrierOk();
    assert.deepEqual(tree(data(primary)), tree(data(other)), 'the returning node has exactly the new primary\'s tree');
    // Its own write is not lost silently: moved aside into a dated conflict folder, and reported.
    const conflicts = join(dir, 'data', primary, 'modules', 'db', 'conflicts');
    const [when] = readdirSync(conflicts);
    assert.equal(readFileSync(join(conflicts, when!, '0', 'never-replicated.txt'), 'utf8'), 'lost with the node');
    // Only that: files it had changed that the new primary has too (the last ones before the crash) are not conflicts.
    assert.deepEqual(Object.keys(tree(join(conflicts, when!))), ['0', '0/never-replicated.txt']);
    assert.equal((await resyncSent(other))?.mode, 'history', 'the new primary knew from its history what to send');
  });

  /** Kills a node's agent and its application (kill -9 of the whole node). */
  async function crash(node: string): Promise<void> {
    const pid = await runner.appPid(node, 'db');
    await runner.kill(node);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone with its keeper
      }
    }
  }

  /** Changes `blocks` 4 KiB blocks of each file; returns the bytes changed. */
  function scribble(dir: string, files: string[], blocks: number, byte: number): number {
    let changed = 0;
    for (const [i, f] of files.entries()) {
      const fd = openSync(join(dir, f), 'r+');
      for (let b = 0; b < blocks; b++) {
        writeSync(fd, Buffer.alloc(4096, byte + b), 0, 4096, ((i * 7 + b * 61) % 256) * 4096);
        changed += 4096;
      }
      closeSync(fd);
    }
    return changed;
  }

  it('a secondary away while a few blocks changed, the primary restarted meanwhile: only those blocks cross (from the history)', async () => {
    const primary = await runner.waitPrimary('db');
    const secondary = primary === 'n1' ? 'n2' : 'n1';
    await barrierOk();
    const files = Array.from({ length: 20 }, (_, i) => `blob-${i}.bin`);
    mkdirSync(join(data(primary), 'blobs'), { recursive: true });
    for (const f of files) writeFileSync(join(data(primary), 'blobs', f), Buffer.alloc(1024 * 1024, f.length));
    assert.equal((await barrier()).code, 0);
    await crash(secondary);
    const changed = scribble(join(data(primary), 'blobs'), files, 3, 40);
    // Shipped into the history (no secondary acknowledges: the barrier fails, after capture was flushed and read).
    assert.equal((await barrier('1s')).code, 1);
    // The primary's memory of what it shipped goes with it: only the history on disk knows what the secondary lacks.
    await crash(primary);
    runner.start(primary);
    assert.equal(await runner.waitPrimary('db', { deadline: 20_000 }), primary);
    runner.start(secondary);
    await barrierOk();
    assert.deepEqual(tree(data(secondary)), tree(data(primary)));
    const sent = await resyncSent(primary);
    assert.equal(sent?.mode, 'history');
    assert.ok(sent.bytes >= changed && sent.bytes <= 1.1 * changed, `resync sent ${sent.bytes} bytes for ${changed} changed`);
  });

  it('a secondary whose history is lost is resynced by comparing block hashes; its differing files are kept aside', async () => {
    const primary = await runner.waitPrimary('db');
    const secondary = primary === 'n1' ? 'n2' : 'n1';
    await barrierOk();
    await crash(secondary);
    const files = Array.from({ length: 20 }, (_, i) => `blob-${i}.bin`);
    const changed = scribble(join(data(primary), 'blobs'), files.slice(0, 5), 2, 90);
    assert.equal((await barrier('1s')).code, 1);
    // A restarted primary cannot resume the secondary from memory: a resync it is.
    await crash(primary);
    rmSync(join(dir, 'data', secondary, 'modules', 'db', 'history'));
    runner.start(primary);
    assert.equal(await runner.waitPrimary('db', { deadline: 20_000 }), primary);
    runner.start(secondary);
    await barrierOk();
    assert.deepEqual(tree(data(secondary)), tree(data(primary)));
    const sent = await resyncSent(primary);
    assert.equal(sent?.mode, 'full');
    assert.ok(sent.bytes >= changed && sent.bytes <= 1.1 * changed + 64 * 1024, `resync sent ${sent.bytes} bytes for ${changed} changed`);
    // One resync: a hello that crossed its snapshot does not start a second, which would compare every path again.
    const count = (await runner.status(primary, 2000))?.modules.find((m) => m.name === 'db')?.replication?.resyncsSent.count;
    assert.equal(count, 1);
    // Without a history the secondary cannot tell its writes from missed ones: every differing file is kept aside.
    const st = await runner.status(secondary, 2000);
    const received = st?.modules.find((m) => m.name === 'db')?.replication?.resyncsReceived.last;
    assert.equal(received?.full, true);
    const aside = received?.folder ? Object.keys(tree(received.folder)) : [];
    assert.equal(received?.conflicts, 5, `kept aside: ${aside.join(', ')}`);
  });
});
