import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CheckerConfig } from '../../../src/config/model.js';
import { probe } from '../../../src/supervise/probes.js';
import { processAlive } from '../../../src/supervise/script.js';
import { waitFor } from '../../../src/testing/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'skyha-probes-'));
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const ctx = { cwd: dir, env };
const base = { name: 'c', interval: 1000, timeout: 1000, rise: 1, fall: 1, warmup: 0 };

function check(partial: Partial<CheckerConfig> & Pick<CheckerConfig, 'kind'>): CheckerConfig {
  return { ...base, ...partial } as CheckerConfig;
}

/** A free port: one that was just closed. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function sleeper(): ChildProcess {
  const child = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  assert.ok(child.pid);
  return child;
}

async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

let http: Server;
let httpBase = '';
const hanging: Socket[] = [];
let silent: ReturnType<typeof createTcpServer>;
let silentUrl = '';

before(async () => {
  http = createServer((req, res) => {
    if (req.url === '/ok') res.end('all good here');
    else if (req.url === '/down') {
      res.statusCode = 503;
      res.end('down');
    } else if (req.url === '/moved') {
      res.statusCode = 302;
      res.setHeader('location', '/ok');
      res.end();
    } else if (req.url === '/big') {
      res.write('x'.repeat(200 * 1024));
      res.end('needle');
    } else res.end('other');
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  // Accepts connections and never answers.
  silent = createTcpServer((s) => hanging.push(s));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/health`;
});

after(async () => {
  for (const s of hanging) s.destroy();
  http.closeAllConnections();
  await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => silent.close(r))]);
  rmSync(dir, { recursive: true, force: true });
});

describe('probes: process', () => {
  it('sees a live process group, then its end', async () => {
    const app = sleeper();
    const c = check({ kind: 'process' });
    const up = await probe(c, { ...ctx, pgid: app.pid!, appPid: app.pid! });
    assert.equal(up.ok, true, up.detail);
    await stopped(app);
    const down = await probe(c, { ...ctx, pgid: app.pid!, appPid: app.pid! });
    assert.equal(down.ok, false);
    assert.match(down.detail, /no process of group \d+ is running/);
  });

  it('uses the application pid when there is no group', async () => {
    const app = sleeper();
    assert.equal((await probe(check({ kind: 'process' }), { ...ctx, appPid: app.pid! })).ok, true);
    await stopped(app);
    const down = await probe(check({ kind: 'process' }), { ...ctx, appPid: app.pid! });
    assert.equal(down.ok, false);
    assert.match(down.detail, /process \d+ is not running/);
    const none = await probe(check({ kind: 'process' }), ctx);
    assert.equal(none.ok, false);
    assert.match(none.detail, /not running/);
  });

  it('reads a pid file: alive, dead, missing, garbled', async () => {
    const app = sleeper();
    const pidFile = join(dir, 'app.pid');
    const c = check({ kind: 'process', pidFile });
    writeFileSync(pidFile, `${app.pid}\n`);
    const up = await probe(c, ctx);
    assert.equal(up.ok, true, up.detail);
    assert.match(up.detail, new RegExp(`process ${app.pid} from .*app.pid is running`));

    await stopped(app);
    const dead = await probe(c, ctx);
    assert.equal(dead.ok, false);
    assert.match(dead.detail, /is not running/);

    writeFileSync(pidFile, 'not a pid');
    const garbled = await probe(c, ctx);
    assert.equal(garbled.ok, false);
    assert.match(garbled.detail, /does not hold a pid \("not a pid"\)/);

    rmSync(pidFile);
    const missing = await probe(c, ctx);
    assert.equal(missing.ok, false);
    assert.match(missing.detail, /pid file .*app.pid is missing/);
  });
});

describe('probes: tcp', () => {
  it('connects to a listening port', async () => {
    const port = Number(new URL(httpBase).port);
    const r = await probe(check({ kind: 'tcp', host: '127.0.0.1', port }), ctx);
    assert.equal(r.ok, true, r.detail);
    assert.equal(r.detail, `tcp 127.0.0.1:${port} accepts connections`);
  });

  it('fails on a closed port', async () => {
    const port = await closedPort();
    const r = await probe(check({ kind: 'tcp', host: '127.0.0.1', port }), ctx);
    assert.equal(r.ok, false);
    assert.equal(r.detail, `tcp 127.0.0.1:${port}: connection refused`);
  });
});

describe('probes: http', () => {
  it('accepts the expected status and body', async () => {
    const r = await probe(check({ kind: 'http', url: `${httpBase}/ok`, method: 'GET', expectStatus: 200, expectBody: 'good' }), ctx);
    assert.equal(r.ok, true, r.detail);
    const head = await probe(check({ kind: 'http', url: `${httpBase}/ok`, method: 'HEAD', expectStatus: 200 }), ctx);
    assert.equal(head.ok, true, head.detail);
  });

  it('does not follow redirects', async () => {
    const r = await probe(check({ kind: 'http', url: `${httpBase}/moved`, method: 'GET', expectStatus: 302 }), ctx);
    assert.equal(r.ok, true, r.detail);
    const wants200 = await probe(check({ kind: 'http', url: `${httpBase}/moved`, method: 'GET', expectStatus: 200 }), ctx);
    assert.equal(wants200.ok, false);
    assert.match(wants200.detail, /^http 302 from /);
  });

  it('fails on another status, naming it', async () => {
    const url = `${httpBase}/down`;
    const r = await probe(check({ kind: 'http', url, method: 'GET', expectStatus: 200 }), ctx);
    assert.equal(r.ok, false);
    assert.match(r.detail, new RegExp(`^http 503 from ${url}`));
  });

  it('fails when the body does not contain the expected text, reading at most 64 KiB', async () => {
    const r = await probe(check({ kind: 'http', url: `${httpBase}/ok`, method: 'GET', expectStatus: 200, expectBody: 'ready' }), ctx);
    assert.equal(r.ok, false);
    assert.match(r.detail, /body does not contain "ready"/);
    const big = await probe(check({ kind: 'http', url: `${httpBase}/big`, method: 'GET', expectStatus: 200, expectBody: 'needle' }), ctx);
    assert.equal(big.ok, false, 'the needle is past 64 KiB');
  });

  it('fails on a closed port', async () => {
    const port = await closedPort();
    const r = await probe(check({ kind: 'http', url: `http://127.0.0.1:${port}/`, method: 'GET', expectStatus: 200 }), ctx);
    assert.equal(r.ok, false);
    assert.match(r.detail, /connection refused/);
  });

  it('times out against a server that never answers', async () => {
    const t0 = performance.now();
    const r = await probe(check({ kind: 'http', url: silentUrl, method: 'GET', expectStatus: 200, timeout: 200 }), ctx);
    const took = performance.now() - t0;
    assert.equal(r.ok, false);
    assert.match(r.detail, /^timeout after 200 ms/);
    assert.ok(took >= 190 && took < 1500, `took ${took} ms`);
  });
});

describe('probes: command', () => {
  it('is ok on exit 0 and fails otherwise, with the last line of output', async () => {
    const ok = await probe(check({ kind: 'command', command: 'echo "$SKYHA_TEST"; exit 0' }), { ...ctx, env: { ...env, SKYHA_TEST: 'fine' } });
    assert.deepEqual(ok, { ok: true, detail: 'command exited 0: fine' });
    const bad = await probe(check({ kind: 'command', command: 'echo broken >&2; exit 4' }), ctx);
    assert.deepEqual(bad, { ok: false, detail: 'command exited with code 4: broken' });
  });

  it('is killed with its children at the timeout', async () => {
    const pidFile = join(dir, 'probe-bg.pid');
    const t0 = performance.now();
    const r = await probe(check({ kind: 'command', command: `sleep 1000 & echo $! > ${pidFile}; wait`, timeout: 200 }), ctx);
    assert.equal(r.ok, false);
    assert.match(r.detail, /timeout after 200 ms|timed out after 200 ms/);
    assert.ok(performance.now() - t0 < 1500);
    const bg = Number(readFileSync(pidFile, 'utf8'));
    await waitFor('the probe child to be gone', () => !processAlive(bg), { deadline: 3000 });
  });
});
