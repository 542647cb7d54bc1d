/**
 * Supervision and the links on real hosts (network namespaces, LAN profile):
 * restart policy of a crashing application (mirror: move; farm: leave
 * service), a lossy, slow link that must not cause a failover, and peers that
 * must be refused (another CA, garbage bytes) while the cluster keeps working.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCa, issueMemberCert } from '../../src/link/certificates.js';
import { writeClusterFiles, type ClusterSpec } from '../../src/testing/cluster-files.js';
import { ClusterRunner } from '../../src/testing/cluster-runner.js';
import { BedLauncher } from '../../src/testing/bed-launcher.js';
import { TestBed, bedUnavailable } from '../../src/testing/bed/bed.js';
import { assertNoOverlap, primaryIntervals, readObserver } from '../../src/testing/bed/observer.js';
import { holdsFor, waitFor } from '../../src/testing/wait.js';
import { sampleAppCommand } from '../../src/testing/sample-app.js';

const APP_PORT = 8080;
const skip = bedUnavailable();

async function cluster(hosts: { nodes: string[]; witnesses: string[] }, modules: (observer: string, dir: string) => Record<string, unknown>) {
  const bed = await TestBed.create({ hosts: [...hosts.nodes, ...hosts.witnesses], label: 'modules' });
  const dir = mkdtempSync(join(tmpdir(), 'skyha-bed-'));
  const observer = join(dir, 'observer.jsonl');
  const spec: ClusterSpec = {
    name: 'bed',
    profile: 'lan',
    nodes: hosts.nodes.map((n) => ({ name: n, address: bed.host(n).address })),
    witnesses: hosts.witnesses.map((w) => ({ name: w, address: bed.host(w).address })),
    modules: modules(observer, dir),
  };
  const files = await writeClusterFiles(dir, spec);
  const runner = new ClusterRunner(files, spec, new BedLauncher(bed));
  runner.startAll();
  return {
    bed,
    runner,
    observer,
    dir,
    async destroy() {
      await runner.stopAll(10_000).catch(() => undefined);
      await bed.destroy();
      // SKYHA_TEST_KEEP=1 keeps the members' logs and data for a post-mortem.
      if (process.env.SKYHA_TEST_KEEP) process.stdout.write(`# kept ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('restart policy with a crashing application', { skip }, () => {
  let c: Awaited<ReturnType<typeof cluster>>;
  before(async () => {
    c = await cluster({ nodes: ['n1', 'n2'], witnesses: ['w'] }, (observer, dir) => ({
      // On n1 the application dies 300 ms after every start.
      db: {
        kind: 'mirror',
        start: sampleAppCommand(),
        environment: { APP_PORT: String(APP_PORT), SKYHA_TEST_OBSERVER: observer, APP_FAIL_AFTER_MS: '300', APP_FAIL_NODES: 'n1' },
        directories: [join(dir, '{node}', 'db')],
        // Whoever wins the first election, n1 gets db: n2 fails it back to its preferred node.
        preferred_node: 'n1',
        failback: 'automatic',
        restart: { max_restarts: 2, window: '1m' },
        stop_timeout: '1s',
      },
      web: {
        kind: 'farm',
        start: sampleAppCommand(),
        port: APP_PORT + 1,
        environment: { APP_PORT: String(APP_PORT + 1), APP_FAIL_AFTER_MS: '300', APP_FAIL_NODES: 'n2' },
        restart: { max_restarts: 2, window: '1m' },
        stop_timeout: '1s',
        checkers: [{ kind: 'process', interval: '100ms', timeout: '100ms', rise: 1, fall: 1 }],
      },
    }));
  });
  after(() => c?.destroy());

  it('mirror: restarted on n1 up to max_restarts, then given up there; n2 becomes primary', async () => {
    const s = await waitFor('n1 gives db up', async () => {
      const r = await c.runner.status('n1');
      const m = r?.modules.find((x) => x.name === 'db');
      return m?.restarts.givenUp ? m : undefined;
    }, { deadline: 20_000 });
    assert.equal(await c.runner.waitPrimary('db', { deadline: 10_000 }), 'n2');
    assert.equal(s.role, 'out-of-service');
    assert.equal(s.restarts.inWindow, 2);
    const starts = readObserver(c.observer).filter((r) => r.node === 'n1' && r.event === 'start');
    assert.equal(starts.length, 3, 'one start and two restarts on n1');
    assertNoOverlap(primaryIntervals(readObserver(c.observer), { slackMs: 10 }));
  });

  it('farm: restarted on n2 up to max_restarts, then out of service there while n1 serves', async () => {
    await waitFor('n2 gives web up', async () => (await c.runner.status('n2'))?.modules.find((x) => x.name === 'web')?.restarts.givenUp);
    assert.equal(await c.runner.health('n2', 'web'), 503);
    assert.equal(await c.runner.health('n1', 'web'), 200);
    const web = (await c.runner.status('n2'))!.modules.find((m) => m.name === 'web')!;
    assert.equal(web.restarts.inWindow, 2, 'two restarts, then the give-up');
    assert.equal(web.role, 'given-up');
    assert.match(web.restarts.lastFailure ?? '', /exited with code 1|no process/);
  });
});

describe('three nodes and a witness, one slow and lossy link (30 % loss, 100 ms delay)', { skip }, () => {
  let c: Awaited<ReturnType<typeof cluster>>;
  before(async () => {
    c = await cluster({ nodes: ['n1', 'n2', 'n3'], witnesses: ['w'] }, (observer, dir) => ({
      // No preferred node: a failback would be a legitimate move, and this test wants none.
      db: { kind: 'mirror', start: sampleAppCommand(), environment: { APP_PORT: String(APP_PORT), SKYHA_TEST_OBSERVER: observer }, directories: [join(dir, '{node}', 'db')], stop_timeout: '1s' },
    }));
  });
  after(() => c?.destroy());

  it('no failover: the primary stays, the epoch does not move', async () => {
    const primary = await c.runner.waitPrimary('db', { deadline: 20_000 });
    await c.runner.waitSettled();
    const victim = ['n1', 'n2', 'n3'].find((n) => n !== primary)!;
    const epoch = (await c.runner.status(primary))!.modules[0]!.epoch;
    await c.bed.impair(victim, { delayMs: 100, lossPct: 30 });
    const sinceSeq = Math.max(0, ...(await c.runner.status(primary))!.events.map((e) => e.seq));
    try {
      // Sampled every 100 ms for 8 s: the primary never says 503 (a probe that times out on this busy
      // machine proves nothing either way; the epoch and the events below catch any move).
      await holdsFor('the primary keeps serving', async () => (await c.runner.health(primary, 'db', 1000)) !== 503, { duration: 8000, every: 100 });
    } finally {
      await c.bed.clearImpair(victim);
    }
    const after = (await c.runner.status(primary))!;
    assert.equal(after.modules[0]!.epoch, epoch);
    assert.equal(after.modules[0]!.role, 'primary');
    const moves = after.events.filter((e) => e.seq > sinceSeq && e.module === 'db' && /PROMOTED|PRIMARY_RUNNING|DEMOTED|LEASE_EXPIRED|LEASE_LOST|FAILBACK|SWITCHOVER/.test(e.reason));
    assert.deepEqual(moves, [], 'no role change on the primary');
    assert.deepEqual(await c.runner.healthyNodes('db'), [primary]);
    // One continuous run of the application, on the primary only.
    const runs = readObserver(c.observer).filter((r) => r.event === 'start');
    assert.equal(runs.length, 1, runs.map((r) => `${r.node} pid ${r.pid}`).join(', '));
    assertNoOverlap(primaryIntervals(readObserver(c.observer), { slackMs: 10 }));
  });
});

describe('links refuse strangers and keep working', { skip }, () => {
  let c: Awaited<ReturnType<typeof cluster>>;
  before(async () => {
    c = await cluster({ nodes: ['n1', 'n2'], witnesses: ['w'] }, (observer, dir) => ({
      db: { kind: 'mirror', start: sampleAppCommand(), environment: { APP_PORT: String(APP_PORT), SKYHA_TEST_OBSERVER: observer }, directories: [join(dir, '{node}', 'db')], stop_timeout: '1s' },
    }));
  });
  after(() => c?.destroy());

  it('a member certificate from another CA and a client sending garbage are refused and counted', async () => {
    const primary = await c.runner.waitPrimary('db', { deadline: 20_000 });
    const target = c.runner.member(primary);
    const refusedBefore = ((await c.runner.status(primary))!.links as { refused: { handshakeFailed: number; unauthenticated: number } }).refused;

    // A stranger: a valid-looking member "n2" whose certificate another CA signed.
    const otherCa = await createCa('bed');
    const forged = await issueMemberCert(otherCa, 'n2', 'bed');
    const ca = readFileSync(join(c.dir, 'certs', 'ca.crt'));
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host: target.address, port: 7400, cert: forged.certPem, key: forged.keyPem, ca, servername: primary, rejectUnauthorized: false });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.on('secureConnect', () => s.write(Buffer.from([0, 0, 0, 5, 1, 0x7b, 0x7d, 0x7b, 0x7d])));
    });
    // Garbage bytes on the link port.
    await new Promise<void>((resolve) => {
      const s = tcpConnect({ host: target.address, port: 7400 }, () => s.end(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage')));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });

    await waitFor('both refusals counted', async () => {
      const r = ((await c.runner.status(primary))!.links as { refused: { handshakeFailed: number; unauthenticated: number } }).refused;
      return r.handshakeFailed + r.unauthenticated >= refusedBefore.handshakeFailed + refusedBefore.unauthenticated + 2;
    });
    // Still one primary, the same, and every member alive.
    assert.deepEqual(await c.runner.healthyNodes('db'), [primary]);
    const view = (await c.runner.status(primary))!.members;
    assert.ok(view.every((m) => m.liveness === 'alive'), JSON.stringify(view));
  });
});
