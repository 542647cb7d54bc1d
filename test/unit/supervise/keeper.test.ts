import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { Keeper, monotonicNow, toMonotonic, type KeeperEvents, type KeeperState } from '../../../src/supervise/keeper.js';
import { groupAlive, processAlive } from '../../../src/supervise/script.js';
import { waitFor } from '../../../src/testing/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'skyha-keeper-'));
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups) c();
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
interface Seen {
  ev: keyof KeeperEvents;
  at: number;
  data: unknown;
}

/** A keeper with every event recorded (with the monotonic time it arrived). */
function keeper(): { k: Keeper; seen: Seen[]; stateFile: string; log: string; evs: () => string[] } {
  const name = `m${++seq}`;
  const stateFile = join(dir, `${name}.keeper.json`);
  const k = Keeper.spawn({ module: name, stateFile });
  const seen: Seen[] = [];
  for (const ev of ['started', 'exited', 'gone', 'fenced', 'stopped', 'error'] as const) k.on(ev, (data?: unknown) => void seen.push({ ev, at: monotonicNow(), data }));
  cleanups.push(() => k.kill());
  return { k, seen, stateFile, log: join(dir, `${name}.log`), evs: () => seen.map((s) => s.ev) };
}

function find(seen: Seen[], ev: string): Seen | undefined {
  return seen.find((s) => s.ev === ev);
}

/** `sleep` with a background child: the whole group must go, not only the top process. */
const APP = 'sleep 1000 & exec sleep 1000';

describe('keeper: deadline', () => {
  it('fences an application whose deadline passes unrenewed, then reports gone and removes its state file', async () => {
    const { k, seen, stateFile, log, evs } = keeper();
    // Room for the keeper to boot (a Node process) before the deadline.
    const until = monotonicNow() + 600;
    k.start({ command: APP, cwd: dir, env, until, log });
    await waitFor('started', () => find(seen, 'started'), { deadline: 5000 });
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as KeeperState;
    assert.equal(state.keeperPid, k.pid);
    assert.equal(state.appPid, k.appPid);
    assert.equal(state.pgid, k.pgid);
    assert.equal(state.module, `m${seq}`);
    assert.match(state.startedAt, /^\d{4}-\d\d-\d\dT/);
    assert.ok(processAlive(k.appPid!));

    await waitFor('gone', () => find(seen, 'gone'), { deadline: 5000 });
    const fenced = find(seen, 'fenced')!;
    assert.ok(fenced, `events: ${evs().join(', ')}`);
    assert.ok(fenced.at >= until, `fenced ${until - fenced.at} ms before the deadline`);
    assert.ok(fenced.at < until + 500, `fenced ${fenced.at - until} ms after the deadline`);
    assert.ok((fenced.data as { lateMs: number }).lateMs < 500);
    assert.deepEqual(evs().filter((e) => e !== 'exited'), ['started', 'fenced', 'gone']);
    assert.equal(processAlive(k.appPid!), false);
    assert.equal(groupAlive(k.pgid!), false);
    assert.equal(existsSync(stateFile), false);
    await waitFor('the keeper to exit', () => !k.alive, { deadline: 3000 });
    assert.match(readFileSync(log, 'utf8'), /fenced: the deadline passed unrenewed/);
  });

  it('keeps running past the first deadline while extended', async () => {
    const { k, seen, evs } = keeper();
    const first = monotonicNow() + 600;
    k.start({ command: APP, cwd: dir, env, until: first });
    await waitFor('started', () => find(seen, 'started'), { deadline: 5000 });
    const extender = setInterval(() => k.extend(monotonicNow() + 400), 100);
    cleanups.push(() => clearInterval(extender));
    await waitFor('well past the first deadline', () => monotonicNow() > first + 400, { deadline: 5000 });
    assert.ok(processAlive(k.appPid!), `events: ${evs().join(', ')}`);
    assert.equal(find(seen, 'fenced'), undefined);
    clearInterval(extender);
    const lastUntil = monotonicNow() + 400;
    await waitFor('fenced once the extends stop', () => find(seen, 'fenced'), { deadline: 3000 });
    assert.ok(find(seen, 'fenced')!.at <= lastUntil + 500);
    await waitFor('gone', () => find(seen, 'gone'), { deadline: 3000 });
    assert.equal(groupAlive(k.pgid!), false);
  });

  it('ignores an extend to an earlier time', async () => {
    const { k, seen } = keeper();
    const until = monotonicNow() + 1500;
    k.start({ command: APP, cwd: dir, env, until });
    await waitFor('started', () => find(seen, 'started'), { deadline: 5000 });
    k.extend(monotonicNow() + 10);
    await waitFor('fenced', () => find(seen, 'fenced'), { deadline: 5000 });
    assert.ok(find(seen, 'fenced')!.at >= until, 'not fenced at the earlier time');
    await k.whenGone();
  });

  it('does not start an application whose deadline already passed', async () => {
    const { k, seen, evs } = keeper();
    k.start({ command: APP, cwd: dir, env, until: monotonicNow() - 5 });
    await waitFor('gone', () => find(seen, 'gone'), { deadline: 5000 });
    assert.deepEqual(evs(), ['fenced', 'gone']);
  });

  it('converts a deadline from another monotonic clock', () => {
    const now = performance.now();
    const converted = toMonotonic(now, now + 1000);
    assert.ok(Math.abs(converted - (monotonicNow() + 1000)) < 50);
  });
});

describe('keeper: stop', () => {
  it('runs the stop command with its environment, and reports how the application ended', async () => {
    const { k, seen, stateFile } = keeper();
    const pidFile = join(dir, 'stop-app.pid');
    const marker = join(dir, 'stop-marker');
    k.start({ command: `echo $$ > ${pidFile}; exec sleep 1000`, cwd: dir, env, until: null });
    await waitFor('started', () => find(seen, 'started'), { deadline: 5000 });
    await waitFor('the pid file', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '');
    await k.stop({ command: `echo "$SKYHA_WHY" > ${marker}; kill $(cat ${pidFile})`, timeout: 3000, env: { ...env, SKYHA_WHY: 'switchover' } });
    assert.deepEqual(find(seen, 'stopped')?.data, { how: 'script' });
    assert.equal(readFileSync(marker, 'utf8'), 'switchover\n');
    assert.deepEqual(seen.map((s) => s.ev).slice(-2), ['stopped', 'gone']);
    assert.equal(groupAlive(k.pgid!), false);
    assert.equal(existsSync(stateFile), false);
  });

  it('kills a stop command that hangs, then stops the application with SIGTERM', async () => {
    const { k, seen } = keeper();
    const stopPid = join(dir, 'hanging-stop.pid');
    k.start({ command: APP, cwd: dir, env, until: null });
    await waitFor('started', () => find(seen, 'started'), { deadline: 5000 });
    const t0 = monotonicNow();
    await k.stop({ command: `echo $$ > ${stopPid}; sleep 1000`, timeout: 300, env });
    const took = monotonicNow() - t0;
    assert.deepEqual(find(seen, 'stopped')?.data, { how: 'term' });
    assert.ok(took >= 300 && took < 3000, `stop took ${took} ms`);
    assert.equal(groupAlive(Number(readFileSync(stopPid, 'utf8'))), false, 'the stop command left nothing');
    assert.equal(groupAlive(k.pgid!), false);
  });

  it('SIGKILLs an application that ignores SIGTERM after the timeout', async () => {
    const { k, seen } = keeper();
    const ready = join(dir, 'ignores-term.ready');
    k.start({ command: `trap '' TERM; touch ${ready}; exec sleep 1000`, cwd: dir, env, until: null });
    await waitFor('the trap to be set', () => find(seen, 'started') && existsSync(ready), { deadline: 5000 });
    const t0 = monotonicNow();
    await k.stop({ command: null, timeout: 300, env });
    const took = monotonicNow() - t0;
    assert.deepEqual(find(seen, 'stopped')?.data, { how: 'kill' });
    assert.deepEqual(find(seen, 'exited')?.data, { code: null, signal: 'SIGKILL' });
    assert.ok(took >= 300 && took < 3000, `stop took ${took} ms`);
    assert.equal(groupAlive(k.pgid!), false);
  });

  it('reports an application that ends by itself: exited, then gone', async () => {
    const { k, seen, evs } = keeper();
    k.start({ command: 'exit 7', cwd: dir, env, until: null });
    await waitFor('gone', () => find(seen, 'gone'), { deadline: 5000 });
    assert.deepEqual(evs(), ['started', 'exited', 'gone']);
    assert.deepEqual(find(seen, 'exited')?.data, { code: 7, signal: null });
  });

  it('stops the application when the keeper itself gets SIGTERM', async () => {
    const { k, seen, evs } = keeper();
    k.start({ command: APP, cwd: dir, env, until: monotonicNow() + 60_000 });
    await waitFor('started', () => find(seen, 'started'), { deadline: 5000 });
    process.kill(k.pid!, 'SIGTERM');
    await waitFor('gone', () => find(seen, 'gone'), { deadline: 5000 });
    assert.deepEqual(find(seen, 'stopped')?.data, { how: 'term' }, `events: ${evs().join(', ')}`);
    assert.equal(groupAlive(k.pgid!), false);
  });

  it('reports a start that cannot run (missing directory) as an error, then gone', async () => {
    const { k, seen, evs } = keeper();
    k.start({ command: APP, cwd: join(dir, 'missing'), env, until: null });
    await waitFor('gone', () => find(seen, 'gone'), { deadline: 5000 });
    assert.deepEqual(evs(), ['error', 'gone']);
    assert.match((find(seen, 'error')!.data as { message: string }).message, /cannot start the application in .*missing/);
  });

  it('cleans up after a keeper killed with -9: the group is killed, gone is reported', async () => {
    const { k, seen, stateFile } = keeper();
    k.start({ command: APP, cwd: dir, env, until: null });
    await waitFor('started', () => find(seen, 'started'), { deadline: 5000 });
    process.kill(k.pid!, 'SIGKILL');
    await waitFor('gone', () => find(seen, 'gone'), { deadline: 5000 });
    assert.ok(find(seen, 'error'));
    assert.equal(groupAlive(k.pgid!), false);
    assert.equal(existsSync(stateFile), false);
  });
});

/**
 * An agent in a child process that spawns a keeper for `command` and prints
 * what the keeper started; the test then kills or freezes that agent.
 */
async function agentChild(command: string, until: number | null, stateFile: string): Promise<{ agent: ChildProcess; keeperPid: number; pid: number; pgid: number }> {
  const keeperUrl = new URL('../../../src/supervise/keeper.js', import.meta.url).href;
  const code = `
    import { Keeper } from ${JSON.stringify(keeperUrl)};
    const [command, until, stateFile, cwd, env] = JSON.parse(process.argv[1]);
    const k = Keeper.spawn({ module: 'agent-test', stateFile });
    k.on('started', (e) => process.stdout.write(JSON.stringify({ keeperPid: k.pid, ...e }) + '\\n'));
    k.start({ command, cwd, env, until });
    setInterval(() => {}, 60_000);
  `;
  const agent = spawn(process.execPath, ['--input-type=module', '-e', code, JSON.stringify([command, until, stateFile, dir, env])], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => agent.kill('SIGKILL'));
  const lines = createInterface({ input: agent.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    agent.once('exit', (c) => reject(new Error(`the agent child exited (${c}) before its keeper started`)));
  });
  const started = JSON.parse(first) as { keeperPid: number; pid: number; pgid: number };
  cleanups.push(() => {
    for (const pid of [started.keeperPid, -started.pgid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  return { agent, ...started };
}

/** Alive all along until shortly before the deadline, gone shortly after it. */
async function assertFencedAt(pgid: number, until: number): Promise<void> {
  await waitFor('shortly before the deadline', () => {
    assert.ok(groupAlive(pgid), `the application ended ${Math.round(until - monotonicNow())} ms before its deadline`);
    return monotonicNow() >= until - 100;
  }, { deadline: 10_000, every: 20 });
  assert.ok(groupAlive(pgid));
  await waitFor('the application to be gone', () => !groupAlive(pgid), { deadline: 10_000, every: 10 });
  const goneAt = monotonicNow();
  assert.ok(goneAt >= until, `gone ${Math.round(until - goneAt)} ms before the deadline`);
  assert.ok(goneAt < until + 1000, `gone ${Math.round(goneAt - until)} ms after the deadline`);
}

describe('keeper: the agent dies or freezes', () => {
  it('with a deadline: the application runs until the deadline, then is fenced', async () => {
    const stateFile = join(dir, 'dead-agent.keeper.json');
    const until = monotonicNow() + 2000;
    const { agent, keeperPid, pgid } = await agentChild(APP, until, stateFile);
    agent.kill('SIGKILL');
    await assertFencedAt(pgid, until);
    await waitFor('the keeper to exit', () => !processAlive(keeperPid), { deadline: 3000 });
    assert.equal(existsSync(stateFile), false);
  });

  it('without a deadline (farm): the application is stopped at once', async () => {
    const stateFile = join(dir, 'dead-farm-agent.keeper.json');
    const { agent, keeperPid, pgid } = await agentChild(APP, null, stateFile);
    assert.ok(groupAlive(pgid));
    const t0 = monotonicNow();
    agent.kill('SIGKILL');
    await waitFor('the application to be gone', () => !groupAlive(pgid), { deadline: 3000, every: 10 });
    assert.ok(monotonicNow() - t0 < 2000);
    await waitFor('the keeper to exit', () => !processAlive(keeperPid), { deadline: 3000 });
    assert.equal(existsSync(stateFile), false);
  });

  it('a frozen agent (SIGSTOP) does not keep the keeper from fencing', async () => {
    const stateFile = join(dir, 'frozen-agent.keeper.json');
    const until = monotonicNow() + 2000;
    const { agent, keeperPid, pgid } = await agentChild(APP, until, stateFile);
    agent.kill('SIGSTOP');
    try {
      await assertFencedAt(pgid, until);
      await waitFor('the keeper to exit', () => !processAlive(keeperPid), { deadline: 3000 });
    } finally {
      agent.kill('SIGKILL');
    }
  });
});
