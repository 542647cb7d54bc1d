import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeClusterFiles } from '../../src/testing/cluster-files.js';
import { runCli, REPO_ROOT } from '../helpers/cli.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));

describe('skyha CLI', () => {
  it('--version prints the package version and exits 0', async () => {
    const r = await runCli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('--help lists the commands and the exit codes', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    for (const cmd of ['validate', 'init']) assert.match(r.stdout, new RegExp(`\\b${cmd}\\b`));
    assert.match(r.stdout, /Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad config/);
  });

  it('COMMAND --help shows the options of that command', async () => {
    const r = await runCli(['validate', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--node <name>/);
    assert.match(r.stdout, /FILE:LINE:COL: KEY\.PATH/);
  });

  it('an unknown command exits 2 with a suggestion', async () => {
    const r = await runCli(['valdate', 'x.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'valdate'/);
    assert.match(r.stderr, /Did you mean validate\?/);
  });

  it('an unknown option and a missing argument exit 2', async () => {
    assert.equal((await runCli(['validate', 'x.yaml', '--nod', 'a'])).code, 2);
    const missing = await runCli(['validate']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument 'file'/);
  });

  it('validate of a missing file exits 2 naming the file', async () => {
    const r = await runCli(['validate', '/nonexistent/skyha.yaml', '--json']);
    assert.equal(r.code, 2);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ok, false);
    assert.equal(out.code, 'SKYHA_ERR_CONFIG_READ');
    assert.match(out.errors[0], /^\/nonexistent\/skyha\.yaml: cannot read the config file: no such file$/);
  });

  it('validate --node with an unknown member exits 2 and lists the members', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skyha-cli-'));
    try {
      const file = join(dir, 'c.yaml');
      writeFileSync(file, 'cluster: {name: c}\nnodes:\n  a: {address: 127.0.0.1}\n  b: {address: 127.0.0.2}\nwitnesses:\n  w: {address: 127.0.0.3}\ntls: {ca: /nonexistent/ca.crt}\n');
      const r = await runCli(['validate', file, '--node', 'zz', '--json']);
      assert.equal(r.code, 2);
      const out = JSON.parse(r.stdout);
      assert.equal(out.code, 'SKYHA_ERR_CONFIG_UNKNOWN_MEMBER');
      assert.match(out.errors[0], /no member named "zz"; the config defines a, b, w/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('skyha agent, witness and status: usage errors', () => {
  // A cluster on loopback addresses where nothing listens.
  const dir = mkdtempSync(join(tmpdir(), 'skyha-cli-agent-'));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const files = writeClusterFiles(dir, {
    name: 'lone',
    nodes: [{ name: 'n1', address: '127.0.0.1', linkPort: port, apiPort: port + 1 }, { name: 'n2', address: '127.0.0.1', linkPort: port + 2, apiPort: port + 3 }],
    witnesses: [{ name: 'w', address: '127.0.0.1', linkPort: port + 4, apiPort: port + 5 }],
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a witness name given to `skyha agent` is a usage error (exit 2) that names the right command', async () => {
    const r = await runCli(['agent', '--config', (await files).config, '--node', 'w']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /w is a witness .* run: skyha witness --config .* --name w/);
  });

  it('an unknown node is a config error (exit 2)', async () => {
    const r = await runCli(['agent', '--config', (await files).config, '--node', 'nobody']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /SKYHA_ERR_CONFIG_UNKNOWN_MEMBER/);
  });

  it('`skyha status` with no member answering exits 1 and says who did not answer', async () => {
    const r = await runCli(['status', '--config', (await files).config, '--timeout', '300ms']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /SKYHA_ERR_STATUS_UNREACHABLE/);
    assert.match(r.stderr, /^n1: ECONNREFUSED$/m);
  });
});
