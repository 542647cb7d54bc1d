import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { groupAlive, processAlive, runScript } from '../../../src/supervise/script.js';
import { waitFor } from '../../../src/testing/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'skyha-script-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

describe('runScript', () => {
  it('reports success and exit codes', async () => {
    const ok = await runScript('true', { cwd: dir, env, timeout: 5000 });
    assert.equal(ok.ok, true);
    assert.equal(ok.code, 0);
    assert.equal(ok.timedOut, false);

    const bad = await runScript('echo failing >&2; exit 3', { cwd: dir, env, timeout: 5000 });
    assert.equal(bad.ok, false);
    assert.equal(bad.code, 3);
    assert.equal(bad.signal, null);
    assert.match(bad.outputTail, /failing/);
  });

  it('runs in the given directory with the given environment only', async () => {
    const r = await runScript('echo "$SKYHA_X $HOME" ; pwd', { cwd: dir, env: { ...env, SKYHA_X: 'hello' }, timeout: 5000 });
    assert.equal(r.ok, true);
    assert.equal(r.outputTail, `hello \n${dir}\n`);
  });

  it('keeps only a bounded tail of stdout and stderr', async () => {
    const r = await runScript('i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; echo END >&2', { cwd: dir, env, timeout: 10_000 });
    assert.equal(r.ok, true);
    assert.ok(r.outputTail.length <= 4096, `tail of ${r.outputTail.length} bytes`);
    assert.match(r.outputTail, /line 1999\nEND\n$/);
    assert.doesNotMatch(r.outputTail, /line 0\n/);

    const small = await runScript('echo 0123456789', { cwd: dir, env, timeout: 5000, tailBytes: 4 });
    assert.equal(small.outputTail, '789\n');
  });

  it('kills the whole process group on timeout, background children included', async () => {
    const pidFile = join(dir, 'bg.pid');
    const r = await runScript(`sleep 1000 & echo $! > ${pidFile}; sleep 1000`, { cwd: dir, env, timeout: 300 });
    assert.equal(r.ok, false);
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(r.durationMs >= 290 && r.durationMs < 3000, `took ${r.durationMs} ms`);
    const bg = Number(readFileSync(pidFile, 'utf8'));
    await waitFor('the background child to be gone', () => !processAlive(bg), { deadline: 2000 });
    await waitFor('the group to be gone', () => !groupAlive(bg), { deadline: 2000 });
  });

  it('leaves nothing behind when the script exits on its own', async () => {
    const r = await runScript('sleep 1000 & echo $!', { cwd: dir, env, timeout: 5000 });
    assert.equal(r.ok, true);
    const bg = Number(r.outputTail.trim());
    assert.ok(bg > 1);
    await waitFor('the background child to be gone', () => !processAlive(bg), { deadline: 2000 });
  });

  it('reports a directory that does not exist as a failure, not a throw', async () => {
    const r = await runScript('true', { cwd: join(dir, 'missing'), env, timeout: 1000 });
    assert.equal(r.ok, false);
    assert.equal(r.code, null);
    assert.match(r.outputTail, /ENOENT/);
  });

  it('kills the group at once when aborted', async () => {
    const controller = new AbortController();
    const pending = runScript('sleep 1000', { cwd: dir, env, timeout: 10_000, signal: controller.signal });
    setImmediate(() => controller.abort());
    const r = await pending;
    assert.equal(r.ok, false);
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(r.durationMs < 3000);
  });
});
