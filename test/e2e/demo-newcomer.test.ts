/**
 * The README's first command, run as a newcomer would: a fresh clone of this
 * checkout, the command copied from the README and run as it is (install,
 * build from scratch, `skyha demo`); then the console answers, a node is
 * killed through the CLI (`npx skyha demo --kill aws-1`), the API shows the
 * mirror module's failover to azure-1, and Ctrl-C stops everything, leaving
 * no process behind.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { waitFor } from '../../src/testing/wait.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const hasGit = spawnSync('git', ['-C', ROOT, 'rev-parse', '--git-dir'], { encoding: 'utf8' }).status === 0;

/** The first shell block under "The two commands that matter". */
export function firstCommand(readme: string): string {
  const section = readme.slice(readme.indexOf('## The two commands that matter'));
  const m = /```sh\n([^\n]+)\n```/.exec(section);
  assert.ok(m, 'the README has a command block under "The two commands that matter"');
  return m[1]!;
}

/** Every process whose parent chain leads to `root` (read from /proc). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(safeRead(`/proc/${pid}/stat`));
const safeRead = (f: string) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};

describe('the README\'s demo command, as a newcomer runs it', { skip: hasGit ? false : 'not a git checkout (the test clones it); .ci/run runs from one' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-newcomer-'));
  const clone = join(dir, 'skyha');
  let shell: ReturnType<typeof spawn> | undefined;

  after(() => {
    if (shell?.pid && alive(shell.pid)) process.kill(-shell.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs, builds, runs the demo; a killed node fails over; Ctrl-C leaves nothing behind', { timeout: 600_000 }, async () => {
    const cloned = spawnSync('git', ['clone', '--quiet', ROOT, clone], { encoding: 'utf8' });
    assert.equal(cloned.status, 0, cloned.stderr);
    const command = firstCommand(readFileSync(join(clone, 'README.md'), 'utf8'));
    assert.match(command, /skyha demo/);
    let out = '';
    // Its own process group, as a terminal would make it: Ctrl-C goes to the whole group.
    shell = spawn('bash', ['-c', command], { cwd: clone, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' } });
    shell.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    shell.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => shell!.once('exit', (code, signal) => r({ code, signal })));

    const token = await waitFor('the demo to print its token', async () => /token\s+(skyha_\S+)/.exec(out)?.[1] ?? (shell!.exitCode !== null ? Promise.reject(new Error(`the command exited:\n${out}`)) : undefined), { deadline: 480_000, every: 500 });
    const page = await fetch('http://127.0.0.1:7401/');
    assert.equal(page.status, 200);
    assert.match(await page.text(), /skyha console/);
    const api = async <T>(host: string, path: string): Promise<T> => {
      const res = await fetch(`http://${host}:7401${path}`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200, path);
      return (await res.json()) as T;
    };
    type Cluster = { modules: Array<{ name: string; nodes: Array<{ node: string; role?: string }> }> };
    const primaryOf = (c: Cluster) => c.modules.find((m) => m.name === 'kv')!.nodes.find((n) => n.role === 'primary')?.node;
    await waitFor('kv primary on aws-1 (its preferred node)', async () => (primaryOf(await api<Cluster>('127.0.0.2', '/v1/cluster')) === 'aws-1' ? true : undefined), { deadline: 60_000 });
    const processes = descendants(shell.pid!);
    assert.ok(processes.length >= 5, `the demo runs its members and applications (${processes.length} processes)`);

    const kill = spawnSync('npx', ['skyha', 'demo', '--kill', 'aws-1'], { cwd: clone, encoding: 'utf8', env: { ...process.env, npm_config_prefer_offline: 'true' } });
    assert.equal(kill.status, 0, kill.stderr);
    assert.match(kill.stdout, /aws-1 killed/);
    await waitFor('kv primary on azure-1', async () => (primaryOf(await api<Cluster>('127.0.0.2', '/v1/cluster')) === 'azure-1' ? true : undefined), { deadline: 30_000 });
    const events = await api<{ events: Array<{ member: string; module?: string; reason: string }> }>('127.0.0.2', '/v1/events?module=kv&limit=2000');
    assert.ok(events.events.some((e) => e.member === 'azure-1' && e.reason === 'PRIMARY_RUNNING'), 'the failover is in the events');

    process.kill(-shell.pid!, 'SIGINT');
    // The wrapping shell (and npx) end by the same Ctrl-C; what matters is that the demo stopped in order.
    const end = await exited;
    assert.ok(end.code === 0 || end.code === 130 || end.signal === 'SIGINT', `ended with ${JSON.stringify(end)}:\n${out.slice(-2000)}`);
    assert.match(out, /stopped; the files stay in/);
    const left = [...processes, ...descendants(shell.pid!)].filter(alive);
    assert.deepEqual(left, [], 'no process left behind');
  });
});
