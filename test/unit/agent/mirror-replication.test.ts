/**
 * The file replication of a mirror module on one node around its role
 * changes, with the real watcher: a promotion captures the application's
 * first writes (not what the applier wrote before), and what changes here
 * after the node stopped being primary is kept in its history as its own,
 * for the next resync to compare.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MirrorModuleConfig } from '../../../src/config/model.js';
import { MirrorReplication } from '../../../src/agent/mirror-replication.js';
import { createLogger } from '../../../src/observe/log.js';
import { pathKey } from '../../../src/replication/history.js';
import { decodeManifest } from '../../../src/replication/manifest.js';
import { decodeRecord } from '../../../src/replication/record.js';
import type { ResyncMessage } from '../../../src/replication/resync-messages.js';
import { waitFor } from '../../../src/testing/wait.js';

const noPython = spawnSync('python3', ['-c', 'import ctypes']).status !== 0 ? 'python3 is not installed' : false;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function node(): Promise<{ repl: MirrorReplication; root: string; shipped: string[]; sent: ResyncMessage[] }> {
  const base = mkdtempSync(join(tmpdir(), 'skyha-mrepl-'));
  cleanups.push(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, 'data');
  mkdirSync(root);
  // The agent makes the module's private directory.
  mkdirSync(join(base, 'state'));
  const module: MirrorModuleConfig = {
    kind: 'mirror', name: 'db', nodes: ['n1', 'n2'], start: 'true', startTimeout: 1000, stopTimeout: 1000, workingDir: base, environment: {}, checkers: [],
    restart: { maxRestarts: 0, window: 60_000 }, directories: [root], failback: 'manual', readOnlyOnSecondaries: false,
  };
  const shipped: string[] = [];
  const sent: ResyncMessage[] = [];
  let seq = 0;
  const repl = new MirrorReplication({
    module, roots: [root], stateDir: join(base, 'state'), log: createLogger({ level: 'silent', format: 'json' }),
    change: (data) => {
      seq++;
      shipped.push(decodeRecord(data, 1).path);
    },
    seq: () => seq,
    connection: () => undefined,
    send: (_to, message) => sent.push(message) > 0,
    writable: async () => true,
    writableAll: async () => undefined,
    inFlightRoom: async () => undefined,
    emit: () => undefined,
  });
  await repl.start();
  cleanups.push(() => repl.close());
  return { repl, root, shipped, sent };
}

/** The new primary's resync of this node, announced and begun as the agent does (common point 1:`seq`). */
function beginResync(repl: MirrorReplication, seq: number): Promise<void> {
  repl.resyncAnnounced('r1');
  return repl.resyncBegin('n2', { type: 'repl-resync-begin', module: 'db', epoch: 2, id: 'r1', common: [1, seq], data: Buffer.alloc(0), last: true });
}

/** Keeps the event loop busy, so that the watcher's records of what happened meanwhile are read in one go. */
function hold(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('a promotion captures the application\'s first writes, not what the applier wrote before, however late the watcher reports', { skip: noPython }, async () => {
  const { repl, root, shipped } = await node();
  writeFileSync(join(root, 'applied'), 'from the old primary');
  repl.becomePrimary(1, { epoch: 0, seq: 0 });
  // The application starts at once and writes; the agent's loop is busy meanwhile.
  writeFileSync(join(root, 'first-write'), 'the application');
  hold(150);
  await repl.shipAll();
  assert.deepEqual(shipped, ['first-write']);
});

test('what changes after the node stopped being primary is its own: suspects in its history, until its application has stopped', { skip: noPython }, async () => {
  const { repl, root, shipped } = await node();
  repl.becomePrimary(1, { epoch: 0, seq: 0 });
  repl.appState(true);
  writeFileSync(join(root, 'shipped'), '1');
  await repl.shipAll();
  assert.deepEqual(shipped, ['shipped']);
  // The lease ends; the application is still stopping and writes once more.
  repl.stopPrimary();
  writeFileSync(join(root, 'while-stopping'), '2');
  await waitFor('the write made while stopping to be a suspect', () => repl.history.changesSince({ epoch: 1, seq: 1 })?.get(pathKey(0, 'while-stopping')) === 'all', { deadline: 5000 });
  assert.equal(repl.report().suspects, 1);
  // Stopped: from now on only the applier writes here.
  repl.appState(false);
  writeFileSync(join(root, 'applied'), '3');
  await repl.capture.flush();
  assert.deepEqual([...(repl.history.changesSince({ epoch: 1, seq: 1 })?.keys() ?? [])], [pathKey(0, 'while-stopping')]);
  assert.deepEqual(shipped, ['shipped']);
});

test('a small file reported again as the secondaries have it is not sent again; a change of its content or metadata is', { skip: noPython }, async () => {
  const { repl, root, shipped } = await node();
  repl.becomePrimary(1, { epoch: 0, seq: 0 });
  const f = join(root, 'f');
  writeFileSync(f, 'one');
  await repl.shipAll();
  // A later event of the same write (close after create and modify) comes after the file was read and sent.
  repl.capture.mark(0, 'f');
  await repl.shipAll();
  assert.deepEqual(shipped, ['f']);
  chmodSync(f, 0o600);
  await repl.shipAll();
  assert.deepEqual(shipped, ['f', 'f'], 'a new mode is sent');
  utimesSync(f, 1000, 1000);
  await repl.shipAll();
  assert.deepEqual(shipped, ['f', 'f', 'f'], 'a new mtime is sent');
  writeFileSync(f, 'two');
  utimesSync(f, 1000, 1000);
  await repl.shipAll();
  assert.deepEqual(shipped, ['f', 'f', 'f', 'f'], 'new content with the same size and mtime is sent');
});

test('a resync does not begin while the application of a node no longer primary may still write; then its last writes are its own', { skip: noPython }, async () => {
  const { repl, root, sent } = await node();
  repl.becomePrimary(1, { epoch: 0, seq: 0 });
  repl.appState(true);
  writeFileSync(join(root, 'shipped'), '1');
  await repl.shipAll();
  repl.stopPrimary();
  let begun = false;
  const begin = beginResync(repl, 1).then(() => (begun = true));
  writeFileSync(join(root, 'last-write'), '2');
  await repl.capture.flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(begun, false, 'no resync under a running application');
  repl.appState(false);
  await begin;
  const manifest = sent.filter((m) => m.type === 'repl-resync-manifest').flatMap((m) => decodeManifest(m.data, 1));
  assert.deepEqual(manifest.filter((e) => e.own).map((e) => e.path), ['last-write']);
});

test('a resync begin that waited for the application is dropped if the node was promoted again meanwhile', { skip: noPython }, async () => {
  const { repl, sent } = await node();
  repl.becomePrimary(1, { epoch: 0, seq: 0 });
  repl.appState(true);
  repl.stopPrimary();
  const begin = beginResync(repl, 0);
  repl.becomePrimary(3, { epoch: 1, seq: 0 });
  await begin;
  assert.deepEqual(sent.filter((m) => m.type === 'repl-resync-manifest'), [], 'no manifest from a primary');
});
