/**
 * Change capture with the real watcher (python3, inotify) on real
 * directories: each kind of change marks its path, directories created
 * faster than watches can be added lose nothing, a barrier's flush waits
 * for every earlier change, and a kernel queue overflow marks the whole
 * directory instead of dropping changes silently.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeCapture, type DirtyPath } from '../../../src/replication/change-capture.js';
import { waitFor } from '../../../src/testing/wait.js';

const noPython = spawnSync('python3', ['-c', 'import ctypes']).status !== 0 ? 'python3 is not installed' : false;
const dirs: string[] = [];
const captures: ChangeCapture[] = [];
after(async () => {
  for (const c of captures) await c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function capture(roots = 1): Promise<{ c: ChangeCapture; roots: string[]; taken: DirtyPath[]; overflows: number[] }> {
  const base = mkdtempSync(join(tmpdir(), 'skyha-cap-'));
  dirs.push(base);
  const rootDirs = Array.from({ length: roots }, (_, i) => join(base, `r${i}`));
  for (const r of rootDirs) mkdirSync(r);
  const overflows: number[] = [];
  const c = new ChangeCapture({ roots: rootDirs, sentinelDir: join(base, 'sentinel'), onDirty: () => undefined, onOverflow: (r) => overflows.push(r) });
  captures.push(c);
  await c.start();
  return { c, roots: rootDirs, taken: [], overflows };
}

/** Flushes (barrier) and takes every dirty path as `root:path`. */
async function dirty(c: ChangeCapture): Promise<Set<string>> {
  await c.flush();
  return new Set(c.take().map((d) => `${d.root}:${d.path}`));
}

test('each kind of change marks its path: create, write, truncate, chmod, rename across directories, symlink, empty directory, delete', { skip: noPython }, async () => {
  const { c, roots } = await capture(2);
  const [a, b] = roots as [string, string];
  writeFileSync(join(a, 'f'), 'x');
  mkdirSync(join(a, 'd'));
  assert.deepEqual(await dirty(c), new Set(['0:f', '0:d']));
  writeFileSync(join(a, 'd', 'g'), 'y', { flag: 'a' });
  truncateSync(join(a, 'f'), 0);
  chmodSync(join(b), 0o750);
  assert.deepEqual(await dirty(c), new Set(['0:d/g', '0:f', '1:']));
  renameSync(join(a, 'd', 'g'), join(a, 'g2'));
  symlinkSync('f', join(a, 'l'));
  mkdirSync(join(b, 'empty'));
  assert.deepEqual(await dirty(c), new Set(['0:d/g', '0:g2', '0:l', '1:empty']));
  rmSync(join(a, 'd'), { recursive: true });
  rmSync(join(a, 'f'));
  assert.deepEqual(await dirty(c), new Set(['0:d', '0:f']));
  // A directory moved in brings its contents; one moved out is forgotten (no events from it any more).
  const outside = mkdtempSync(join(tmpdir(), 'skyha-cap-out-'));
  dirs.push(outside);
  mkdirSync(join(outside, 'in', 'deep'), { recursive: true });
  writeFileSync(join(outside, 'in', 'deep', 'h'), 'z');
  renameSync(join(outside, 'in'), join(a, 'in'));
  assert.deepEqual(await dirty(c), new Set(['0:in', '0:in/deep', '0:in/deep/h']));
  renameSync(join(a, 'in'), join(outside, 'back'));
  writeFileSync(join(outside, 'back', 'deep', 'h'), 'after');
  assert.deepEqual(await dirty(c), new Set(['0:in']));
  assert.equal(c.watchedDirectories >= 3, true, `${c.watchedDirectories} watched`);
});

test('a path changed many times is one dirty path, in the order first seen', { skip: noPython }, async () => {
  const { c, roots } = await capture();
  for (let i = 0; i < 50; i++) {
    writeFileSync(join(roots[0]!, 'a'), String(i));
    writeFileSync(join(roots[0]!, 'b'), String(i));
  }
  await c.flush();
  assert.deepEqual(c.take().map((d) => d.path), ['a', 'b']);
  assert.equal(c.pending, 0);
});

test('trees created faster than watches can be added: no file is missed', { skip: noPython }, async () => {
  const { c, roots } = await capture();
  const expected = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const d = join(roots[0]!, `t${i}`, 'a', 'b');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'f'), String(i));
    expected.add(`0:t${i}/a/b/f`);
  }
  const seen = new Set<string>();
  await waitFor('every file of every new tree marked dirty', async () => {
    for (const p of await dirty(c)) seen.add(p);
    return [...expected].every((p) => seen.has(p));
  }, { deadline: 20_000, every: 50 });
});

test('the kernel dropping events (queue overflow) marks the whole directory dirty, never silence', { skip: noPython || (process.getuid?.() !== 0 ? 'needs root to lower fs.inotify.max_queued_events for one watcher' : false) }, async () => {
  // The limit is taken when the watcher's inotify instance is made: lowered only around its start.
  const sysctl = '/proc/sys/fs/inotify/max_queued_events';
  const original = readFileSync(sysctl, 'utf8').trim();
  let started: Awaited<ReturnType<typeof capture>>;
  writeFileSync(sysctl, '16');
  try {
    started = await capture();
  } finally {
    writeFileSync(sysctl, original);
  }
  const { c, roots, overflows } = started;
  mkdirSync(join(roots[0]!, 'sub'));
  for (let i = 0; i < 500; i++) writeFileSync(join(roots[0]!, 'sub', `f${i}`), 'x');
  await waitFor('the overflow to be reported', () => c.overflows > 0, { deadline: 10_000 });
  assert.deepEqual(overflows.slice(0, 1), [0]);
  const marked = new Set(c.take().map((d) => d.path));
  for (let i = 0; i < 500; i++) assert.ok(marked.has(`sub/f${i}`), `sub/f${i} is dirty after the overflow`);
});

test('close() ends the watcher; a watcher that cannot start says why', { skip: noPython }, async () => {
  const { c } = await capture();
  await c.close();
  const bad = new ChangeCapture({ roots: ['/nonexistent'], sentinelDir: join(tmpdir(), `skyha-cap-none-${process.pid}`), onDirty: () => undefined, python: '/nonexistent/python3' });
  dirs.push(join(tmpdir(), `skyha-cap-none-${process.pid}`));
  await assert.rejects(bad.start(), /SKYHA_ERR_REPLICATION_WATCH|cannot start the change watcher/);
});
