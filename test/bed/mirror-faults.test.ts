/**
 * Guarantee 2 with real faults: no write acknowledged by a barrier is lost.
 * A writer application (test/fixtures/apps/writer-app.mjs) runs as the
 * mirror primary on namespace hosts (two nodes and a witness, LAN profile):
 * it appends checksummed records and a file per batch, calls the barrier,
 * and only then lists the batch in an acknowledgement log outside the
 * replicated tree. Each scenario kills, cuts off or outdates the primary
 * and checks, on the node that serves next, that every listed batch is
 * there and intact.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { writeClusterFiles, type ClusterSpec } from '../../src/testing/cluster-files.js';
import { ClusterRunner } from '../../src/testing/cluster-runner.js';
import { BedLauncher } from '../../src/testing/bed-launcher.js';
import { TestBed, bedUnavailable } from '../../src/testing/bed/bed.js';
import { holdsFor, waitFor } from '../../src/testing/wait.js';
import { runCli } from '../helpers/cli.js';

const WRITER_APP = fileURLToPath(new URL('../../../test/fixtures/apps/writer-app.mjs', import.meta.url));
const RECORD = 64;
const PER_BATCH = 8;
const KILLS = Number(process.env.SKYHA_TEST_KILLS ?? 20);
const SEED = Number(process.env.SKYHA_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

const skip = bedUnavailable();
if (skip) process.stdout.write(`# skipping the namespace tests: ${skip}\n`);

/** The writer's record `index` of `batch` written by `run` (the same function as the writer's). */
function line(batch: number, index: number, run: string): string {
  const body = `b=${String(batch).padStart(8, '0')} r=${index} w=${run} `;
  const sum = createHash('sha256').update(body).digest('hex').slice(0, RECORD - body.length - 1);
  return `${body}${sum}\n`;
}

function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('mirror: no acknowledged write lost (writer application, namespace bed)', { skip }, () => {
  let bed: TestBed;
  let runner: ClusterRunner;
  let dir: string;
  let acks: string;

  before(async () => {
    process.stdout.write(`# seed ${SEED} (SKYHA_TEST_SEED=${SEED} replays the kill timings)\n`);
    bed = await TestBed.create({ hosts: ['n1', 'n2', 'w'], label: 'mirror' });
    dir = mkdtempSync(join(tmpdir(), 'skyha-bed-mirror-'));
    acks = join(dir, 'acks.log');
    const spec: ClusterSpec = {
      name: 'bed',
      profile: 'lan',
      nodes: [
        { name: 'n1', address: bed.host('n1').address },
        { name: 'n2', address: bed.host('n2').address },
      ],
      witnesses: [{ name: 'w', address: bed.host('w').address }],
      modules: {
        db: {
          kind: 'mirror',
          start: `exec "${process.execPath}" "${WRITER_APP}"`,
          environment: { WRITER_ACK_LOG: acks },
          directories: [join(dir, '{node}', 'data')],
          stop_timeout: '2s',
          checkers: [{ kind: 'process' }],
        },
      },
    };
    runner = new ClusterRunner(await writeClusterFiles(dir, spec), spec, new BedLauncher(bed));
    runner.startAll();
  });

  after(async () => {
    await runner?.stopAll(10_000).catch(() => undefined);
    await bed?.destroy();
    if (process.env.SKYHA_TEST_KEEP) process.stdout.write(`# kept ${dir}\n`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Batches the writers listed as acknowledged, as "BATCH RUN". */
  function acknowledged(): Set<string> {
    return readAcks(acks);
  }

  /** Every batch in `batches` is in `node`'s data, intact: its records in the journal, its file with their checksum. */
  function assertHas(node: string, batches: Set<string>, when: string): void {
    const data = join(dir, node, 'data');
    const journal = readFileSync(join(data, 'journal.log'), 'utf8');
    const records = new Set<string>();
    for (let at = 0; at + RECORD <= journal.length; at += RECORD) records.add(journal.slice(at, at + RECORD));
    const missing: string[] = [];
    // The newest batch file of each number is checked only if no later writer rewrote that number (it may, after a loss
    // of unacknowledged batches): the journal keeps every writer's records.
    const newest = new Map<number, string>();
    for (const entry of batches) {
      const [b, run] = entry.split(' ') as [string, string];
      newest.set(Number(b), run);
    }
    for (const entry of batches) {
      const [bs, run] = entry.split(' ') as [string, string];
      const b = Number(bs);
      let text = '';
      for (let i = 0; i < PER_BATCH; i++) {
        text += line(b, i, run);
        if (!records.has(line(b, i, run))) missing.push(`record ${b}.${i} of ${run}`);
      }
      const file = join(data, 'batches', `b-${b}.json`);
      if (!existsSync(file)) missing.push(`batches/b-${b}.json`);
      else if (newest.get(b) === run) {
        const got = JSON.parse(readFileSync(file, 'utf8')) as { run: string; sum: string };
        if (got.run === run && got.sum !== createHash('sha256').update(text).digest('hex')) missing.push(`batches/b-${b}.json (wrong content)`);
      }
    }
    assert.deepEqual(missing.slice(0, 10), [], `${when}: ${missing.length} acknowledged piece(s) missing or damaged on ${node}`);
  }

  async function killNode(node: string): Promise<void> {
    const pid = await runner.appPid(node, 'db');
    await runner.kill(node);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone with its keeper already
      }
    }
  }

  async function primaryWithSecondaryInSync(): Promise<{ primary: string; other: string }> {
    const primary = await runner.waitPrimary('db', { deadline: 30_000 });
    const other = primary === 'n1' ? 'n2' : 'n1';
    await waitFor(`${other} in sync`, async () => (await runner.status(primary))?.modules[0]?.inSync?.includes(other), { deadline: 30_000 });
    return { primary, other };
  }

  async function rejoin(node: string): Promise<void> {
    if (!runner.running.has(node)) runner.start(node);
    await waitFor(`${node} back as secondary`, async () => (await runner.status(node))?.modules[0]?.role === 'secondary', { deadline: 20_000 });
  }

  it(`the whole primary node dies (link down, kill -9 of everything) at random moments, ${KILLS} times: every acknowledged batch is on the new primary`, async () => {
    const rnd = random(SEED);
    let checked = 0;
    for (let k = 0; k < KILLS; k++) {
      const { primary, other } = await primaryWithSecondaryInSync();
      const before = acknowledged().size;
      await waitFor('the writer acknowledging batches', () => acknowledged().size >= before + 2, { deadline: 20_000, every: 10 });
      // The fault's timing: a random point in the writer's stream (not a synchronisation).
      await new Promise((r) => setTimeout(r, Math.floor(rnd() * 400)));
      // The machine dies: its link first (what sat in its socket buffers never leaves), then every process.
      await bed.linkDown(primary);
      await killNode(primary);
      const acked = acknowledged();
      assert.equal(await runner.waitPrimary('db', { not: primary, deadline: 10_000, every: 10 }), other);
      assertHas(other, acked, `kill ${k + 1}/${KILLS} of ${primary}`);
      checked = acked.size;
      await bed.linkUp(primary);
      await rejoin(primary);
    }
    assert.ok(checked > 2 * KILLS, `the writer acknowledged ${checked} batches`);
  });

  it('partition of the primary: what it acknowledged is on the other node, which takes over; the old primary rejoins', async () => {
    const { primary, other } = await primaryWithSecondaryInSync();
    const before = acknowledged().size;
    await waitFor('the writer acknowledging batches', () => acknowledged().size >= before + 2, { deadline: 20_000, every: 10 });
    await bed.partition(primary, [other, 'w']);
    try {
      assert.equal(await runner.waitPrimary('db', { not: primary, deadline: 10_000, every: 10 }), other);
      // Cut off, the old primary cannot acknowledge anything more (its barrier needs the other node).
      assertHas(other, acknowledged(), `partition of ${primary}`);
    } finally {
      await bed.heal(primary);
    }
    await rejoin(primary);
    await primaryWithSecondaryInSync();
  });

  it('the secondary left the in-sync set and the primary died: nothing was acknowledged without it, so it may serve, with every acknowledged batch', async () => {
    const { primary, other } = await primaryWithSecondaryInSync();
    await killNode(other);
    // Without the secondary no barrier succeeds: nothing is acknowledged while the writer goes on.
    await waitFor(`${other} out of sync`, async () => !(await runner.status(primary))?.modules[0]?.inSync?.includes(other), { deadline: 10_000 });
    const acked = acknowledged();
    const journal = join(dir, primary, 'data', 'journal.log');
    const size = readFileSync(journal).length;
    await waitFor('unacknowledged writes on the primary', () => readFileSync(journal).length > size, { deadline: 10_000 });
    assert.deepEqual(acknowledged(), acked, 'no barrier succeeded without the secondary');
    await killNode(primary);
    runner.start(other);
    assert.equal(await runner.waitPrimary('db', { deadline: 20_000 }), other);
    assertHas(other, acked, `${other} after the primary died`);
    await rejoin(primary);
    await primaryWithSecondaryInSync();
  });
});

describe('mirror: a secondary that missed acknowledged writes is not promoted (three nodes, two witnesses)', { skip }, () => {
  let bed: TestBed;
  let runner: ClusterRunner;
  let dir: string;
  let acks: string;

  before(async () => {
    bed = await TestBed.create({ hosts: ['n1', 'n2', 'n3', 'w1', 'w2'], label: 'mirror3' });
    dir = mkdtempSync(join(tmpdir(), 'skyha-bed-mirror3-'));
    acks = join(dir, 'acks.log');
    const spec: ClusterSpec = {
      name: 'bed3',
      profile: 'lan',
      nodes: ['n1', 'n2', 'n3'].map((n) => ({ name: n, address: bed.host(n).address })),
      witnesses: ['w1', 'w2'].map((w) => ({ name: w, address: bed.host(w).address })),
      modules: {
        db: {
          kind: 'mirror',
          start: `exec "${process.execPath}" "${WRITER_APP}"`,
          environment: { WRITER_ACK_LOG: acks },
          directories: [join(dir, '{node}', 'data')],
          preferred_node: 'n1',
          stop_timeout: '2s',
          checkers: [{ kind: 'process' }],
        },
      },
    };
    runner = new ClusterRunner(await writeClusterFiles(dir, spec), spec, new BedLauncher(bed));
    runner.startAll();
  });

  after(async () => {
    await runner?.stopAll(10_000).catch(() => undefined);
    await bed?.destroy();
    if (process.env.SKYHA_TEST_KEEP) process.stdout.write(`# kept ${dir}\n`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('n3 away while n1 and n2 acknowledge writes; n1 and n2 die: n3 with the witnesses has a majority but does not take the role', async () => {
    let seen = '';
    await waitFor('n1 primary with n2 and n3 in sync', async () => {
      const st = await runner.status('n1');
      seen = JSON.stringify({ role: st?.modules[0]?.role, inSync: st?.modules[0]?.inSync, primary: st?.modules[0]?.primary, replication: st?.modules[0]?.replication?.resyncsSent });
      return st?.modules[0]?.role === 'primary' && ['n2', 'n3'].every((n) => st.modules[0]?.inSync?.includes(n));
    }, { deadline: 60_000 }).catch((err: Error) => {
      throw new Error(`${err.message}; n1 reported ${seen}`);
    });
    const pid3 = await runner.appPid('n3', 'db');
    assert.equal(pid3, undefined, 'n3 runs no application');
    await runner.kill('n3');
    await waitFor('n3 out of sync', async () => !(await runner.status('n1'))?.modules[0]?.inSync?.includes('n3'), { deadline: 10_000 });
    const before = readAcks(acks).size;
    await waitFor('batches acknowledged without n3', () => readAcks(acks).size >= before + 3, { deadline: 20_000, every: 10 });
    for (const n of ['n1', 'n2']) {
      const pid = await runner.appPid(n, 'db');
      await runner.kill(n);
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone with its keeper
        }
      }
    }
    runner.start('n3');
    await waitFor('n3 up as secondary', async () => (await runner.status('n3'))?.modules[0]?.role === 'secondary', { deadline: 20_000 });
    // Several leases: a majority of voters is alive (n3, w1, w2), and still n3 never takes the role.
    await holdsFor('n3 not promoted', async () => (await runner.status('n3'))?.modules[0]?.role !== 'primary', { duration: 3000, every: 50 });
    // An operator who accepts the loss forces it, and the cluster says so.
    const forced = await runCli(['failover', 'db', '--to', 'n3', '--force', '--config', runner.files.config, '--timeout', '20s']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /n3 is the primary of db .*forced/);
    const events = (await runner.status('n3'))?.events ?? [];
    assert.ok(events.some((e) => e.reason === 'OPERATOR_FORCE_FAILOVER'), 'the operator\'s command is an event');
    assert.ok(events.some((e) => e.reason === 'PROMOTED_FORCED' && /data may be lost/.test(e.text)), 'the promotion says data may be lost');
  });
});

function readAcks(file: string): Set<string> {
  if (!existsSync(file)) return new Set();
  return new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean));
}
