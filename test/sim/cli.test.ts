/** `npm run sim`: the command people run, as a real child process. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/cli.js';

const SIM = join(REPO_ROOT, 'dist/src/sim/cli.js');

function sim(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SIM, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('sim command', () => {
  it('runs schedules, says they all passed and how fast', async () => {
    const r = await sim(['--schedules', '40', '--seed', '3', '--shape', '2n+w']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^40 schedules \(model toy-lease, shape 2n\+w, master seed 3\): all passed$/m);
    assert.match(r.stdout, /^ {2}\d+\.\d schedules\/s \(\d+\.\d\d s wall, 1 worker\)$/m);
  });

  it('on a failure prints the seed, a replay command, the schedule, the violations and the trace, and exits 1', async () => {
    const r = await sim(['--schedules', '300', '--seed', '1', '--model', 'toy-lease:keeps-running', '--shape', '3n', '--tail', '20']);
    assert.equal(r.code, 1, r.stderr);
    const seed = /^FAILED: seed (\d+) \(model toy-lease:keeps-running, shape 3n\)$/m.exec(r.stdout)?.[1];
    assert.ok(seed, r.stdout);
    assert.match(r.stdout, new RegExp(`^replay: npm run sim -- --replay --seed ${seed} --model toy-lease:keeps-running --shape 3n$`, 'm'));
    assert.match(r.stdout, /^schedule:\n {6}0\.000 {2}clock n1 /m);
    assert.match(r.stdout, /^violations:\n {2}\[noTwoPrimaries\] module db: two primaries for /m);
    assert.match(r.stdout, /^trace \(the 20 entries around the first violation at \d+\.\d{3} ms, of \d+\):$/m);
    assert.match(r.stdout, /1 failed\n/);

    const replay = await sim(['--replay', '--seed', seed, '--model', 'toy-lease:keeps-running', '--shape', '3n']);
    assert.equal(replay.code, 1);
    assert.match(replay.stdout, /^ {2}noTwoPrimaries: 1 violation\(s\)$/m);
    assert.match(replay.stdout, /^result: FAILED$/m);
  });

  it('replays one schedule with its whole trace, byte for byte the same every time', async () => {
    const args = ['--replay', '--seed', '2024', '--shape', '5v'];
    const a = await sim(args);
    const b = await sim(args);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    const entries = Number(/^trace \((\d+) entries\):$/m.exec(a.stdout)?.[1]);
    assert.ok(entries > 1000);
    assert.match(a.stdout, /^ +\d+\.\d{3} n1 +recv +\w+ → /m);
    assert.match(a.stdout, /^result: ok$/m);
    const other = await sim(['--replay', '--seed', '2025', '--shape', '5v']);
    assert.notEqual(other.stdout, a.stdout);
  });

  it('reports the same failing schedule whatever the number of workers', async () => {
    const args = ['--schedules', '400', '--seed', '11', '--model', 'toy-lease:no-margin', '--shape', '2n+w', '--tail', '5'];
    const one = await sim([...args, '--workers', '1']);
    const two = await sim([...args, '--workers', '2']);
    assert.equal(one.code, 1);
    assert.equal(two.code, 1);
    const report = (s: string): string => s.slice(s.indexOf('FAILED'), s.lastIndexOf('\n\n'));
    assert.equal(report(two.stdout), report(one.stdout));
  });

  it('rejects bad usage with exit code 2', async () => {
    for (const args of [['--bogus'], ['--shape', 'seven'], ['--model', 'nope'], ['--schedules', '-3'], ['--seed', 'x'], ['--checks', 'noSuchThing']]) {
      const r = await sim(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /^sim: /);
    }
    const help = await sim(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: npm run sim -- \[options\]/);
  });

  it('is wired as `npm run sim`', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.sim, 'node dist/src/sim/cli.js');
  });
});

describe('simulator purity', () => {
  it('reads no real time and no unseeded randomness anywhere in src/sim', () => {
    const forbidden = /Math\.random|Date\.now|new Date\(|setTimeout|setInterval|setImmediate|process\.hrtime|performance\.now/;
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const d of readdirSync(dir, { withFileTypes: true })) {
        if (d.isDirectory()) walk(join(dir, d.name));
        else if (d.name.endsWith('.ts')) files.push(join(dir, d.name));
      }
    };
    walk(join(REPO_ROOT, 'src/sim'));
    assert.ok(files.length >= 10);
    for (const file of files) {
      const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      const lines = code.split('\n').filter((l) => forbidden.test(l));
      // The command line may time the run to print its rate; nothing it times feeds the simulation.
      const allowed = file.endsWith('/src/sim/cli.ts') ? lines.filter((l) => !/performance\.now\(\)/.test(l)) : lines;
      assert.deepEqual(allowed, [], file);
    }
  });
});
