/**
 * Change capture with the real watcher (python3, inotify) on real
 * directories: each kind of change marks its path, directories created
 * faster than watches can be added lose nothing, a barrier's flush waits
 * for every earlier change, and a kernel queue overflow marks the whole
 * directory instead of dropping changes silently.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeCapture, WATCH_SCRIPT, type DirtyPath } from '../../../src/replication/change-capture.js';
import { waitFor } from '../../../src/testing/wait.js';

const noPython = spawnSync('python3', ['-c', 'import ctypes']).status !== 0 ? 'python3 is not installed' : false;
const dirs: string[] = [];
const captures: ChangeCapture[] = [];
after(async () => {
  for (const c of captures) await c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function capture(roots = 1, capturing = true): Promise<{ c: ChangeCapture; roots: string[]; taken: DirtyPath[]; overflows: number[]; sentinelDir: string }> {
  const base = mkdtempSync(join(tmpdir(), 'skyha-cap-'));
  dirs.push(base);
  const rootDirs = Array.from({ length: roots }, (_, i) => join(base, `r${i}`));
  for (const r of rootDirs) mkdirSync(r);
  const overflows: number[] = [];
  const sentinelDir = join(base, 'sentinel');
  // A sentinel an earlier, killed agent left behind.
  mkdirSync(sentinelDir);
  writeFileSync(join(sentinelDir, '1-1'), '');
  const c = new ChangeCapture({ roots: rootDirs, sentinelDir, capturing, onDirty: () => undefined, onOverflow: (r) => overflows.push(r) });
  captures.push(c);
  await c.start();
  return { c, roots: rootDirs, taken: [], overflows, sentinelDir };
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

/** Keeps the event loop busy, so that the watcher's records for what happened meanwhile are read in one go. */
function hold(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('capture(on) takes effect at an exact point of the event stream, however late the watcher reports', { skip: noPython }, async () => {
  const { c, roots } = await capture(1, false);
  const at = (name: string) => join(roots[0]!, name);
  // What a secondary's applier writes is not captured; a promotion's first writes are, though the watcher
  // reports both together (the loop is busy meanwhile).
  writeFileSync(at('applied'), 'a');
  c.capture(true);
  writeFileSync(at('first-write'), 'b');
  hold(150);
  assert.deepEqual(await dirty(c), new Set(['0:first-write']));
  // And back: what came before the stop is captured, what came after is not.
  writeFileSync(at('last-write'), 'c');
  c.capture(false);
  writeFileSync(at('applied-later'), 'd');
  hold(150);
  assert.deepEqual(await dirty(c), new Set(['0:last-write']));
  writeFileSync(at('applied'), 'e');
  assert.deepEqual(await dirty(c), new Set());
});

test('the watcher itself says nothing of changes while quiet, from its .off sentinel to its .on one', { skip: noPython }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'skyha-cap-quiet-'));
  dirs.push(base);
  const [root, sentinel] = [join(base, 'r'), join(base, 's')];
  mkdirSync(root);
  mkdirSync(sentinel);
  const child = spawn('python3', [WATCH_SCRIPT, '--sentinel', sentinel, '--quiet', root], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const records = () => out.split('\0').filter(Boolean);
    await waitFor('the watcher to be ready', () => records().includes('R'), { deadline: 10_000 });
    writeFileSync(join(root, 'quiet'), 'x');
    mkdirSync(join(root, 'quiet-dir'));
    writeFileSync(join(sentinel, '1.on'), '');
    writeFileSync(join(root, 'heard'), 'y');
    writeFileSync(join(sentinel, '2.off'), '');
    writeFileSync(join(root, 'quiet-again'), 'z');
    writeFileSync(join(sentinel, '3'), '');
    await waitFor('the last sentinel', () => records().includes('S 3'), { deadline: 10_000 });
    const changed = records().filter((r) => r.startsWith('C ')).map((r) => r.slice(2 + root.length + 1));
    assert.deepEqual([...new Set(changed)], ['heard']);
  } finally {
    child.stdin.end();
    await exited;
  }
});

test('a promotion that cannot write its sentinel starts capture at once, in the watcher too', { skip: noPython }, async () => {
  const { c, roots, sentinelDir } = await capture(1, false);
  rmSync(sentinelDir, { recursive: true });
  c.capture(true);
  writeFileSync(join(roots[0]!, 'first-write'), 'x');
  await waitFor('the first write to be captured', () => c.pending > 0, { deadline: 5000 });
  assert.deepEqual(c.take().map((d) => d.path), ['first-write']);
  await assert.rejects(c.flush(), /ENOENT/, 'a barrier without its sentinel fails at once, clearly');
});

test('sentinels are removed once seen, and those of an earlier run at start', { skip: noPython }, async () => {
  const { c, sentinelDir } = await capture();
  assert.deepEqual(readdirSync(sentinelDir), [], 'a sentinel left by an earlier run is gone');
  for (let i = 0; i < 50; i++) await c.flush();
  c.capture(false);
  await waitFor('no sentinel file left after 50 barriers', () => readdirSync(sentinelDir).length === 0, { deadline: 5000 });
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

const needsRoot = process.getuid?.() !== 0 ? 'needs root to lower fs.inotify.max_queued_events for one watcher' : false;

/** A capture whose kernel queue holds 16 events: it overflows at once under a burst. */
async function smallQueueCapture(capturing = true): ReturnType<typeof capture> {
  // The limit is taken when the watcher's inotify instance is made: lowered only around its start.
  const sysctl = '/proc/sys/fs/inotify/max_queued_events';
  const original = readFileSync(sysctl, 'utf8').trim();
  writeFileSync(sysctl, '16');
  try {
    return await capture(1, capturing);
  } finally {
    writeFileSync(sysctl, original);
  }
}

test('the kernel dropping events (queue overflow) marks the whole directory dirty, never silence; a barrier waits until all of it is marked', { skip: noPython || needsRoot }, async () => {
  const { c, roots, overflows } = await smallQueueCapture();
  // Enough directories that listing them takes several time slices (the marking lets the event loop run).
  for (let i = 0; i < 3000; i++) mkdirSync(join(roots[0]!, 'many', `d${i}`), { recursive: true });
  mkdirSync(join(roots[0]!, 'sub'));
  // A barrier in the middle of it, its sentinel's event among those dropped (the watcher stopped meanwhile): it
  // must not wait in vain.
  process.kill(c.watcherPid!, 'SIGSTOP');
  for (let i = 0; i < 500; i++) writeFileSync(join(roots[0]!, 'sub', `f${i}`), 'x');
  const barrier = c.flush();
  process.kill(c.watcherPid!, 'SIGCONT');
  await barrier;
  await waitFor('the overflow to be reported', () => c.overflows > 0, { deadline: 10_000 });
  assert.deepEqual(overflows.slice(0, 1), [0]);
  await c.flush();
  const marked = new Set(c.take().map((d) => d.path));
  for (let i = 0; i < 500; i++) assert.ok(marked.has(`sub/f${i}`), `sub/f${i} is dirty after the overflow`);
  for (let i = 0; i < 3000; i++) assert.ok(marked.has(`many/d${i}`), `many/d${i} is dirty after the overflow`);
  // Directories made while events were dropped are watched too: what changes in them later is captured.
  for (let i = 0; i < 3000; i += 100) writeFileSync(join(roots[0]!, 'many', `d${i}`, 'later'), 'y');
  const later = await dirty(c);
  for (let i = 0; i < 3000; i += 100) assert.ok(later.has(`0:many/d${i}/later`), `many/d${i}/later is dirty`);
});

test('a promotion whose sentinel the kernel dropped still starts capture, in the watcher too', { skip: noPython || needsRoot }, async () => {
  const { c, roots } = await smallQueueCapture(false);
  // Stopped, the watcher reads nothing: the queue fills with the applier's writes, and the sentinel's event is dropped.
  process.kill(c.watcherPid!, 'SIGSTOP');
  for (let i = 0; i < 200; i++) writeFileSync(join(roots[0]!, `applied${i}`), 'x');
  c.capture(true);
  for (let i = 0; i < 200; i++) writeFileSync(join(roots[0]!, `app${i}`), 'y');
  process.kill(c.watcherPid!, 'SIGCONT');
  await waitFor('the overflow to be reported', () => c.overflows > 0, { deadline: 10_000 });
  const during = await dirty(c);
  for (let i = 0; i < 200; i++) assert.ok(during.has(`0:app${i}`), `app${i} is dirty`);
  writeFileSync(join(roots[0]!, 'after'), 'z');
  assert.deepEqual(await dirty(c), new Set(['0:after']), 'the watcher reports again');
});

test('close() ends the watcher; a watcher that cannot start says why', { skip: noPython }, async () => {
  const { c } = await capture();
  await c.close();
  const bad = new ChangeCapture({ roots: ['/nonexistent'], sentinelDir: join(tmpdir(), `skyha-cap-none-${process.pid}`), onDirty: () => undefined, python: '/nonexistent/python3' });
  dirs.push(join(tmpdir(), `skyha-cap-none-${process.pid}`));
  await assert.rejects(bad.start(), /SKYHA_ERR_REPLICATION_WATCH|cannot start the change watcher/);
});
