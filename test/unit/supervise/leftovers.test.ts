import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { monotonicNow, type KeeperState } from '../../../src/supervise/keeper.js';
import { keeperStateFile, killLeftovers } from '../../../src/supervise/leftovers.js';
import { groupAlive, processAlive } from '../../../src/supervise/script.js';
import { waitFor } from '../../../src/testing/wait.js';

const root = mkdtempSync(join(tmpdir(), 'skyha-leftovers-'));
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const kills: number[] = [];
after(() => {
  for (const pid of kills) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});

let seq = 0;
function runDir(): string {
  const d = join(root, `run${++seq}`);
  mkdirSync(d);
  return d;
}

/** An agent (child Node process) whose keeper runs `command` with a distant deadline; resolves once it started. */
async function agentWithApp(stateFile: string, command: string): Promise<{ agent: ChildProcess; keeperPid: number; pgid: number }> {
  const keeperUrl = new URL('../../../src/supervise/keeper.js', import.meta.url).href;
  const code = `
    import { Keeper } from ${JSON.stringify(keeperUrl)};
    const [command, until, stateFile, env] = JSON.parse(process.argv[1]);
    const k = Keeper.spawn({ module: 'db', stateFile });
    k.on('started', (e) => process.stdout.write(JSON.stringify({ keeperPid: k.pid, ...e }) + '\\n'));
    k.start({ command, cwd: '/', env, until });
    setInterval(() => {}, 60_000);
  `;
  const agent = spawn(process.execPath, ['--input-type=module', '-e', code, JSON.stringify([command, monotonicNow() + 60_000, stateFile, env])], { stdio: ['ignore', 'pipe', 'inherit'] });
  kills.push(agent.pid!);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: agent.stdout! }).once('line', resolve);
    agent.once('exit', (c) => reject(new Error(`the agent child exited (${c}) before its keeper started`)));
  });
  const started = JSON.parse(line) as { keeperPid: number; pgid: number };
  kills.push(started.keeperPid, -started.pgid);
  return { agent, ...started };
}

async function killed(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

function sleeper(): ChildProcess {
  const child = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  kills.push(child.pid!);
  return child;
}

describe('killLeftovers', () => {
  it('kills a keeper and its application left by an agent killed with -9', async () => {
    const dir = runDir();
    const stateFile = keeperStateFile(dir, 'db');
    const { agent, keeperPid, pgid } = await agentWithApp(stateFile, 'sleep 1000 & exec sleep 1000');
    await killed(agent);
    assert.ok(processAlive(keeperPid), 'the keeper outlives its agent');
    assert.ok(groupAlive(pgid));
    writeFileSync(join(dir, 'db.log'), 'not a state file');

    const found = await killLeftovers(dir);
    assert.equal(found.length, 1);
    assert.equal(found[0]!.module, 'db');
    assert.equal(found[0]!.keeperPid, keeperPid);
    assert.equal(found[0]!.pgid, pgid);
    assert.equal(found[0]!.killedKeeper, true);
    assert.equal(found[0]!.gone, true);
    assert.equal(processAlive(keeperPid), false);
    assert.equal(groupAlive(pgid), false);
    assert.equal(existsSync(stateFile), false);
    assert.ok(existsSync(join(dir, 'db.log')), 'other files are left alone');
  });

  it('finds the processes of an application whose keeper was killed with -9 too, by the token in their environment', async () => {
    const dir = runDir();
    const stateFile = keeperStateFile(dir, 'db');
    const bgFile = join(dir, 'bg.pid');
    const { agent, keeperPid, pgid } = await agentWithApp(stateFile, `sleep 1000 & echo $! > ${bgFile}; exec sleep 1000`);
    await waitFor('the background pid', () => existsSync(bgFile) && readFileSync(bgFile, 'utf8').trim() !== '');
    const bg = Number(readFileSync(bgFile, 'utf8'));
    await killed(agent);
    process.kill(keeperPid, 'SIGKILL');
    // The top process dies with its keeper (parent-death signal); its background child does not.
    await waitFor('the top process to die with its keeper', () => !processAlive(pgid), { deadline: 3000 });
    assert.ok(processAlive(bg));

    const found = await killLeftovers(dir);
    assert.equal(found.length, 1);
    assert.equal(found[0]!.killedKeeper, false);
    assert.equal(found[0]!.killedGroup, true);
    assert.equal(found[0]!.gone, true);
    assert.equal(processAlive(bg), false);
    assert.equal(existsSync(stateFile), false);
  });

  it('ignores a state file whose keeper is dead or not a keeper, and removes garbled ones', async () => {
    const dir = runDir();
    const bystander = sleeper(); // an unrelated process group that must survive
    const ended = spawn('true');
    await once(ended, 'exit');
    const record = (keeperPid: number): KeeperState => ({ keeperPid, appPid: bystander.pid!, pgid: bystander.pid!, startedAt: new Date().toISOString(), module: 'x', token: 'f'.repeat(36) });
    writeFileSync(keeperStateFile(dir, 'dead'), JSON.stringify(record(ended.pid!)));
    writeFileSync(keeperStateFile(dir, 'stranger'), JSON.stringify(record(bystander.pid!)));
    writeFileSync(keeperStateFile(dir, 'garbled'), '{"keeperPid": ');
    writeFileSync(`${keeperStateFile(dir, 'half')}.tmp-123`, '{');

    const found = await killLeftovers(dir);
    assert.deepEqual(found, []);
    assert.ok(processAlive(bystander.pid!), 'a process that is not a keeper is left alone');
    for (const m of ['dead', 'stranger', 'garbled']) assert.equal(existsSync(keeperStateFile(dir, m)), false, `${m} removed`);
    assert.equal(existsSync(`${keeperStateFile(dir, 'half')}.tmp-123`), false);
    await killed(bystander);
  });

  it('is content with a directory that does not exist', async () => {
    assert.deepEqual(await killLeftovers(join(root, 'nowhere')), []);
  });
});
