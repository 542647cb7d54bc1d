/**
 * The systemd units in packaging/systemd are what docs/install.md tells
 * operators to install: systemd's own checker must accept them (with the
 * binary path pointed at this checkout's), and they must run the commands the
 * CLI has.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const UNITS = fileURLToPath(new URL('../../../packaging/systemd/', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/skyha.js', import.meta.url));
const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;

for (const [unit, instance, command] of [['skyha-agent@.service', 'aws-1', 'agent --config /etc/skyha/skyha.yaml --node %i'], ['skyha-witness@.service', 'witness-1', 'witness --config /etc/skyha/skyha.yaml --name %i']] as const) {
  test(`${unit} runs \`skyha ${command.split(' ')[0]}\`, restarts, stops with SIGTERM`, () => {
    const text = readFileSync(join(UNITS, unit), 'utf8');
    assert.match(text, new RegExp(`^ExecStart=/usr/local/bin/skyha ${command.replaceAll('/', '\\/')}`, 'm'));
    assert.match(text, /^Restart=always$/m);
    assert.match(text, /^NoNewPrivileges=yes$/m);
    assert.match(text, /^StateDirectory=skyha$/m, 'the state directory is the default data_dir, /var/lib/skyha');
  });

  test(`${unit} passes systemd-analyze verify`, { skip: analyze ? false : 'systemd-analyze is not installed' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'skyha-units-'));
    try {
      const file = join(dir, unit.replace('@', `@${instance}`));
      writeFileSync(file, readFileSync(join(UNITS, unit), 'utf8').replaceAll('/usr/local/bin/skyha', `${process.execPath} ${BIN}`));
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      const problems = (r.stderr + r.stdout).split('\n').filter((l) => l.includes(unit.replace('@.service', '')));
      assert.deepEqual(problems, [], 'systemd-analyze verify reports nothing about the unit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('the launcher gives the agent 16 file system threads unless UV_THREADPOOL_SIZE is set, before anything can start the pool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-pool-'));
  try {
    // A CommonJS preload starts no thread pool; it reports what the process had at its end.
    const preload = join(dir, 'report.cjs');
    writeFileSync(preload, "process.on('exit', () => require('node:fs').writeSync(2, `POOL=${process.env.UV_THREADPOOL_SIZE}\\n`));\n");
    const pool = (size: string | undefined): string => {
      const env = { ...process.env };
      if (size === undefined) delete env.UV_THREADPOOL_SIZE;
      else env.UV_THREADPOOL_SIZE = size;
      const r = spawnSync(process.execPath, ['--require', preload, BIN, '--version'], { encoding: 'utf8', env });
      assert.equal(r.status, 0, r.stderr);
      return /POOL=(\S*)/.exec(r.stderr)?.[1] ?? '';
    };
    assert.equal(pool(undefined), '16');
    assert.equal(pool('6'), '6', "the operator's size stays");
    // An ES module entry would be read through the pool before it could set the size: the launcher is CommonJS.
    assert.equal(JSON.parse(readFileSync(join(BIN, '..', 'package.json'), 'utf8')).type, 'commonjs');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
