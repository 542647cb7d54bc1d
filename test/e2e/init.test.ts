/**
 * `skyha init`, end to end: the built CLI in child processes, real files,
 * real TLS handshakes, and real faults (a read-only tmpfs, a full tmpfs, a
 * busy mount point, a file where a directory should be).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tls from 'node:tls';
import { parse } from 'yaml';

const CLI = fileURLToPath(new URL('../../../bin/skyha.js', import.meta.url));
const execFileP = promisify(execFile);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function skyha(args: readonly string[], cwd?: string): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, as a promise: lets several validations run at once. */
async function skyhaAsync(args: readonly string[]): Promise<Run> {
  try {
    const r = await execFileP(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { status: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const show = (r: Run) => `exit ${r.status}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

/** A scratch directory for one test; `defer` registers cleanups, run last-in first-out before the directory goes. */
function scratch(t: TestContext): { dir: string; defer(fn: () => void): void } {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-init-test-'));
  const cleanups: (() => void)[] = [];
  t.after(() => {
    for (const fn of cleanups.reverse()) fn();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, defer: (fn) => cleanups.push(fn) };
}

function umount(target: string): void {
  const r = spawnSync('umount', [target], { encoding: 'utf8' });
  if (r.status !== 0) spawnSync('umount', ['-l', target]);
}

/** Runs `mount ARGS`; when mounting is not permitted here, marks the test skipped and returns false. */
function mount(t: TestContext, s: ReturnType<typeof scratch>, args: string[], target: string): boolean {
  if (process.platform !== 'linux') {
    t.skip('needs Linux to mount a tmpfs');
    return false;
  }
  const r = spawnSync('mount', [...args, target], { encoding: 'utf8' });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim();
    t.diagnostic(`skipped: mount is not permitted here (${why})`);
    t.skip(`mount is not permitted here (needs root): ${why}`);
    return false;
  }
  s.defer(() => umount(target));
  return true;
}

/** Every entry under dir: type, mode and a hash of the content, by relative path. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? join(rel, name) : name;
      const st = lstatSync(join(dir, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[r] = `dir ${mode}`;
        walk(r);
      } else {
        out[r] = `file ${mode} ${createHash('sha256').update(readFileSync(join(dir, r))).digest('hex')}`;
      }
    }
  };
  walk('');
  return out;
}

function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('.skyha-init-'));
}

/** `validate FILE` and `validate FILE --node M` for each member, at once; all must print ok. */
async function assertValidates(configFile: string, members: readonly string[]): Promise<void> {
  const runs = await Promise.all([skyhaAsync(['validate', configFile]), ...members.map((m) => skyhaAsync(['validate', configFile, '--node', m]))]);
  runs.forEach((r, i) => {
    const what = i === 0 ? 'validate' : `validate --node ${members[i - 1]}`;
    assert.equal(r.status, 0, `${what}: ${show(r)}`);
    assert.equal(r.stdout, 'ok\n', `${what}: ${show(r)}`);
  });
}

function initOk(args: readonly string[], cwd?: string): Run {
  const r = skyha(['init', ...args], cwd);
  assert.equal(r.status, 0, show(r));
  return r;
}

function certsOf(dir: string): string[] {
  return readdirSync(join(dir, 'certs')).sort();
}

const expectedCerts = (members: readonly string[]) => ['ca.crt', 'ca.key', ...members.flatMap((m) => [`${m}.crt`, `${m}.key`])].sort();

const readConfig = (dir: string) => parse(readFileSync(join(dir, 'skyha.yaml'), 'utf8')) as Record<string, any>;

// ---------------------------------------------------------------------------
// The output validates

test('defaults: skyha.yaml and certs/ for aws-1, azure-1 and witness-1 that validate for every member', async (t) => {
  const s = scratch(t);
  const r = initOk([], s.dir); // --dir defaults to the working directory
  const members = ['aws-1', 'azure-1', 'witness-1'];
  assert.deepEqual(certsOf(s.dir), expectedCerts(members));
  assert.deepEqual(leftovers(s.dir), []);
  for (const p of ['skyha.yaml', 'certs/ca.crt', 'certs/ca.key', 'certs/aws-1.key', 'certs/witness-1.crt']) assert.match(r.stdout, new RegExp(p.replace('.', '\\.')), `the report names ${p}`);
  assert.match(r.stdout, /skyha validate skyha\.yaml/);
  assert.match(r.stdout, /skyha agent --config skyha\.yaml --node aws-1/);
  assert.match(r.stdout, /skyha witness --config skyha\.yaml --name witness-1/);

  const config = readConfig(s.dir);
  assert.equal(config.cluster.name, 'skyha');
  assert.equal(config.cluster.two_node_policy, undefined);
  assert.deepEqual(Object.keys(config.nodes), ['aws-1', 'azure-1']);
  assert.deepEqual(Object.keys(config.witnesses), ['witness-1']);
  assert.deepEqual(config.nodes['aws-1'].labels, { cloud: 'aws', region: 'eu-west-1', zone: 'eu-west-1a' });
  assert.deepEqual(config.nodes['azure-1'].labels, { cloud: 'azure', region: 'westeurope', zone: 'westeurope-1' });
  assert.equal(config.witnesses['witness-1'].labels.cloud, 'onprem');
  assert.deepEqual([config.nodes['aws-1'].address, config.nodes['azure-1'].address, config.witnesses['witness-1'].address], ['192.0.2.10', '198.51.100.10', '203.0.113.10']);
  assert.equal(config.modules.web.kind, 'farm');
  assert.equal(config.modules.web.checkers[0].kind, 'http');
  assert.ok(config.modules.web.gate.port);
  assert.equal(config.modules.db.kind, 'mirror');
  assert.equal(config.modules.db.preferred_node, 'aws-1');
  assert.ok(config.modules.db.directories.length > 0);
  const text = readFileSync(join(s.dir, 'skyha.yaml'), 'utf8');
  assert.match(text, /replace with the address the other members use/);

  await assertValidates(join(s.dir, 'skyha.yaml'), members);
});

test('custom --cluster, --nodes and --witness, in a --dir that does not exist yet', async (t) => {
  const s = scratch(t);
  const dir = join(s.dir, 'deep', 'prod');
  initOk(['--dir', dir, '--cluster', 'prod', '--nodes', 'aws-1,aws-2,gcp-1,dc-3', '--witness', 'w1']);
  const members = ['aws-1', 'aws-2', 'gcp-1', 'dc-3', 'w1'];
  assert.deepEqual(certsOf(dir), expectedCerts(members));
  const config = readConfig(dir);
  assert.equal(config.cluster.name, 'prod');
  assert.deepEqual(Object.keys(config.nodes), ['aws-1', 'aws-2', 'gcp-1', 'dc-3']);
  assert.deepEqual(Object.keys(config.witnesses), ['w1']);
  assert.equal(config.nodes['dc-3'].labels.cloud, 'onprem');
  assert.equal(config.modules.db.preferred_node, 'aws-1');
  for (const m of members) {
    const cert = new X509Certificate(readFileSync(join(dir, 'certs', `${m}.crt`)));
    assert.match(cert.subject, new RegExp(`^CN=${m}$`, 'm'));
    assert.match(cert.subject, /^O=prod$/m, 'the cluster name is in the subject');
  }
  assert.match(new X509Certificate(readFileSync(join(dir, 'certs', 'ca.crt'))).subject, /CN=skyha CA prod/);
  await assertValidates(join(dir, 'skyha.yaml'), members);
});

test('--no-witness with two nodes sets two_node_policy: stop_when_alone and explains the choice', async (t) => {
  const s = scratch(t);
  initOk(['--dir', s.dir, '--nodes', 'site-a,site-b', '--no-witness']);
  const config = readConfig(s.dir);
  assert.equal(config.cluster.two_node_policy, 'stop_when_alone');
  assert.equal(config.witnesses, undefined);
  const text = readFileSync(join(s.dir, 'skyha.yaml'), 'utf8');
  assert.match(text, /preferred_node_wins/, 'the comment names the alternative');
  assert.deepEqual(certsOf(s.dir), expectedCerts(['site-a', 'site-b']));
  await assertValidates(join(s.dir, 'skyha.yaml'), ['site-a', 'site-b']);
});

test('other shapes validate as written: one node alone, three nodes without a witness, two witnesses', async (t) => {
  const s = scratch(t);
  const shapes: { args: string[]; members: string[]; check(c: Record<string, any>): void }[] = [
    {
      args: ['--nodes', 'solo', '--no-witness'],
      members: ['solo'],
      check: (c) => {
        assert.equal(c.cluster.two_node_policy, undefined);
        assert.equal(c.modules.db, undefined, 'no mirror module on one node');
      },
    },
    { args: ['--nodes', 'a,b,c', '--no-witness'], members: ['a', 'b', 'c'], check: (c) => assert.equal(c.cluster.two_node_policy, undefined) },
    { args: ['--nodes', 'aws-1,azure-1', '--witness', 'w1,w2'], members: ['aws-1', 'azure-1', 'w1', 'w2'], check: (c) => assert.deepEqual(Object.keys(c.witnesses), ['w1', 'w2']) },
  ];
  for (const [i, shape] of shapes.entries()) {
    const dir = join(s.dir, String(i));
    initOk(['--dir', dir, ...shape.args]);
    shape.check(readConfig(dir));
    assert.deepEqual(certsOf(dir), expectedCerts(shape.members));
    // Every member's files were checked above; here the shape matters: the config, a node and the last member.
    await assertValidates(join(dir, 'skyha.yaml'), [...new Set([shape.members[0]!, shape.members[shape.members.length - 1]!])]);
  }
});

// ---------------------------------------------------------------------------
// The certificates

test('certificates: a P-256 CA, member certificates it signed whose SAN names the member, matching 0600 keys', (t) => {
  const s = scratch(t);
  initOk(['--dir', s.dir, '--cluster', 'blue']);
  const certs = join(s.dir, 'certs');
  const ca = new X509Certificate(readFileSync(join(certs, 'ca.crt')));
  assert.equal(ca.ca, true, 'the CA is a CA');
  assert.equal(ca.subject, ca.issuer, 'self-signed');
  assert.ok(ca.checkIssued(ca) && ca.verify(ca.publicKey));
  assert.match(ca.subject, /^CN=skyha CA blue$/m);
  const years = (c: X509Certificate) => (Date.parse(c.validTo) - Date.now()) / (365.25 * 86_400_000);
  assert.ok(Math.abs(years(ca) - 10) < 0.01, `CA valid 10 years, found ${years(ca)}`);

  const serials = new Set<string>([ca.serialNumber]);
  for (const name of ['ca', 'aws-1', 'azure-1', 'witness-1']) {
    const keyFile = join(certs, `${name}.key`);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, `${name}.key has mode 0600`);
    const keyText = readFileSync(keyFile, 'utf8');
    assert.match(keyText, /^-----BEGIN PRIVATE KEY-----\n/, `${name}.key is PKCS#8 PEM`);
    const key = createPrivateKey(keyText);
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1', `${name}.key is P-256`);
    const cert = name === 'ca' ? ca : new X509Certificate(readFileSync(join(certs, `${name}.crt`)));
    assert.ok(createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(cert.publicKey.export({ type: 'spki', format: 'der' })), `${name}.key belongs to ${name}.crt`);
    if (name === 'ca') continue;
    assert.ok(cert.checkIssued(ca), `${name}.crt names the CA as issuer`);
    assert.ok(cert.verify(ca.publicKey), `${name}.crt is signed by the CA`);
    assert.equal(cert.ca, false);
    assert.equal(cert.subjectAltName, `DNS:${name}`, 'the SAN names the member');
    assert.match(cert.subject, /^O=blue$/m);
    assert.deepEqual([...(cert.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth and clientAuth');
    assert.ok(Math.abs(years(cert) - 2) < 0.01, `member certificate valid 2 years, found ${years(cert)}`);
    assert.ok(Date.parse(cert.validFrom) <= Date.now());
    serials.add(cert.serialNumber);
  }
  assert.equal(serials.size, 4, 'every certificate has its own serial');
});

interface Side {
  peer?: string;
  authorized?: boolean;
  error?: Error;
  data?: string;
}

/** One TLS connection: a server with `server`'s identity that requires client certificates, and a client with `client`'s. */
async function handshake(server: { cert: Buffer; key: Buffer; ca: Buffer }, client: { cert: Buffer; key: Buffer; ca: Buffer; servername: string }): Promise<{ server: Side; client: Side }> {
  const srv = tls.createServer({ ...server, requestCert: true, rejectUnauthorized: true });
  const serverSide = new Promise<Side>((resolve) => {
    srv.once('secureConnection', (sock) => {
      const side: Side = { peer: sock.getPeerCertificate().subjectaltname, authorized: sock.authorized };
      sock.on('error', () => {});
      sock.end('hello from the server', () => resolve(side));
    });
    srv.once('tlsClientError', (error) => resolve({ error }));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = srv.address() as AddressInfo;
    const clientSide = new Promise<Side>((resolve) => {
      const side: Side = { data: '' };
      const sock = tls.connect({ host: '127.0.0.1', port, ...client });
      sock.once('secureConnect', () => {
        side.peer = sock.getPeerCertificate().subjectaltname;
        side.authorized = sock.authorized;
      });
      sock.on('data', (d: Buffer) => (side.data += d.toString()));
      sock.once('error', (error) => (side.error = error));
      sock.once('close', () => resolve(side));
    });
    const [c, s] = await Promise.all([clientSide, serverSide]);
    return { server: s, client: c };
  } finally {
    srv.close();
  }
}

test('a real mutual-TLS handshake between two members; a member of another CA is refused', async (t) => {
  const s = scratch(t);
  const one = join(s.dir, 'one');
  const other = join(s.dir, 'other');
  initOk(['--dir', one]);
  initOk(['--dir', other]);
  const read = (dir: string, f: string) => readFileSync(join(dir, 'certs', f));
  const aws = { cert: read(one, 'aws-1.crt'), key: read(one, 'aws-1.key'), ca: read(one, 'ca.crt') };
  const azure = { cert: read(one, 'azure-1.crt'), key: read(one, 'azure-1.key'), ca: read(one, 'ca.crt'), servername: 'aws-1' };

  const ok = await handshake(aws, azure);
  assert.equal(ok.server.error, undefined, String(ok.server.error));
  assert.equal(ok.client.error, undefined, String(ok.client.error));
  assert.equal(ok.server.authorized, true);
  assert.equal(ok.server.peer, 'DNS:azure-1', 'the server sees the client is azure-1');
  assert.equal(ok.client.authorized, true);
  assert.equal(ok.client.peer, 'DNS:aws-1', 'the client sees the server is aws-1');
  assert.equal(ok.client.data, 'hello from the server');

  // An impostor: the same name, a certificate of another cluster's CA.
  const impostor = { cert: read(other, 'azure-1.crt'), key: read(other, 'azure-1.key'), ca: read(one, 'ca.crt'), servername: 'aws-1' };
  const refused = await handshake(aws, impostor);
  assert.ok(refused.server.error, 'the server refuses the handshake');
  assert.equal(refused.server.peer, undefined);
  assert.equal(refused.client.data, '', 'the impostor gets nothing');

  // And a client of the other cluster does not accept this cluster's server.
  const stranger = { cert: read(other, 'azure-1.crt'), key: read(other, 'azure-1.key'), ca: read(other, 'ca.crt'), servername: 'aws-1' };
  const distrust = await handshake(aws, stranger);
  assert.ok(distrust.client.error, 'the client refuses a server its CA did not sign');
  assert.equal(distrust.client.data, '');
});

// ---------------------------------------------------------------------------
// Never overwrite by accident; --force replaces

test('refuses to overwrite without --force, and leaves the files byte-identical', (t) => {
  const s = scratch(t);
  initOk(['--dir', s.dir]);
  const before = snapshot(s.dir);
  const r = skyha(['init', '--dir', s.dir, '--cluster', 'other']);
  assert.equal(r.status, 2, show(r));
  assert.match(r.stderr, /SKYHA_ERR_INIT_EXISTS/);
  assert.ok(r.stderr.includes(join(s.dir, 'skyha.yaml')), `names the existing config: ${r.stderr}`);
  assert.ok(r.stderr.includes(join(s.dir, 'certs')), `names the existing certs: ${r.stderr}`);
  assert.match(r.stderr, /--force/);
  assert.equal(r.stdout, '');
  assert.deepEqual(snapshot(s.dir), before);

  // certs/ alone is enough to refuse, and so is skyha.yaml alone.
  rmSync(join(s.dir, 'skyha.yaml'));
  const onlyCerts = snapshot(s.dir);
  const r2 = skyha(['init', '--dir', s.dir]);
  assert.equal(r2.status, 2, show(r2));
  assert.match(r2.stderr, /SKYHA_ERR_INIT_EXISTS/);
  assert.deepEqual(snapshot(s.dir), onlyCerts);
  rmSync(join(s.dir, 'certs'), { recursive: true });
  writeFileSync(join(s.dir, 'skyha.yaml'), 'my own config\n');
  const r3 = skyha(['init', '--dir', s.dir]);
  assert.equal(r3.status, 2, show(r3));
  assert.equal(readFileSync(join(s.dir, 'skyha.yaml'), 'utf8'), 'my own config\n');
  assert.deepEqual(readdirSync(s.dir), ['skyha.yaml']);
});

test('--force replaces skyha.yaml and certs/ with a new cluster that validates', async (t) => {
  const s = scratch(t);
  initOk(['--dir', s.dir]);
  const oldCa = readFileSync(join(s.dir, 'certs', 'ca.crt'), 'utf8');
  writeFileSync(join(s.dir, 'certs', 'stray.txt'), 'left over\n');
  writeFileSync(join(s.dir, 'notes.txt'), 'not init\'s\n');
  initOk(['--dir', s.dir, '--force', '--cluster', 'green', '--nodes', 'n1,n2', '--witness', 'w1']);
  assert.notEqual(readFileSync(join(s.dir, 'certs', 'ca.crt'), 'utf8'), oldCa, 'a new CA');
  assert.deepEqual(certsOf(s.dir), expectedCerts(['n1', 'n2', 'w1']), 'the old certs/ is gone as a whole');
  assert.equal(readConfig(s.dir).cluster.name, 'green');
  assert.equal(readFileSync(join(s.dir, 'notes.txt'), 'utf8'), 'not init\'s\n', 'other files in DIR are not touched');
  assert.deepEqual(leftovers(s.dir), []);
  await assertValidates(join(s.dir, 'skyha.yaml'), ['n1', 'n2', 'w1']);
});

// ---------------------------------------------------------------------------
// Interrupted init leaves nothing (real faults; mounting needs root)

test('a read-only file system: exit 1, nothing created', (t) => {
  const s = scratch(t);
  const mnt = join(s.dir, 'ro');
  mkdirSync(mnt);
  if (!mount(t, s, ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs'], mnt)) return;
  const r = skyha(['init', '--dir', join(mnt, 'x')]);
  assert.equal(r.status, 1, show(r));
  assert.match(r.stderr, /SKYHA_ERR_INIT_WRITE/);
  assert.match(r.stderr, /read-only|EROFS/);
  assert.deepEqual(readdirSync(mnt), []);
});

/** tmpfs gives each file whole pages. */
const PAGE = Number(spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).stdout?.trim()) || 4096;

/** Pages that the files of a default init take on a tmpfs. */
function pagesOfDefaultInit(t: TestContext): number {
  const s = scratch(t);
  initOk(['--dir', s.dir]);
  let pages = 0;
  for (const f of ['skyha.yaml', ...certsOf(s.dir).map((c) => join('certs', c))]) pages += Math.ceil(statSync(join(s.dir, f)).size / PAGE);
  return pages;
}

test('a file system that fills up midway: exit 1, the temp dir and the directories init created are gone', (t) => {
  const s = scratch(t);
  const mnt = join(s.dir, 'tiny');
  mkdirSync(mnt);
  const pages = 4; // 16k with 4 KiB pages
  if (!mount(t, s, ['-t', 'tmpfs', '-o', `size=${(pages * PAGE) / 1024}k`, 'tmpfs'], mnt)) return;
  const needed = pagesOfDefaultInit(t);
  assert.ok(needed > pages + 2, `the files (${needed} pages) must not fit in ${pages} pages, and fail past the first ones`);

  for (const dir of [mnt, join(mnt, 'new', 'dir')]) {
    const r = skyha(['init', '--dir', dir]);
    assert.equal(r.status, 1, show(r));
    assert.match(r.stderr, /SKYHA_ERR_INIT_WRITE/);
    assert.match(r.stderr, /ENOSPC/);
    assert.match(r.stderr, /certs[/\\][a-z0-9-]+\.(crt|key)/, `fails midway, while writing certificates: ${r.stderr}`);
    assert.deepEqual(readdirSync(mnt), [], `nothing left in the mount after init --dir ${dir}`);
  }
});

test('--force over an earlier init on a file system that fills up: the earlier files stay intact and valid', async (t) => {
  const s = scratch(t);
  const mnt = join(s.dir, 'small');
  mkdirSync(mnt);
  const needed = pagesOfDefaultInit(t);
  assert.ok(needed > 4 + 2);
  const size = ((needed + 4) * PAGE) / 1024; // KiB: the earlier init fits, a second copy does not
  if (!mount(t, s, ['-t', 'tmpfs', '-o', `size=${size}k`, 'tmpfs'], mnt)) return;
  initOk(['--dir', mnt]);
  const before = snapshot(mnt);
  const r = skyha(['init', '--dir', mnt, '--force', '--cluster', 'new']);
  assert.equal(r.status, 1, show(r));
  assert.match(r.stderr, /SKYHA_ERR_INIT_WRITE/);
  assert.match(r.stderr, /ENOSPC/);
  assert.deepEqual(snapshot(mnt), before, 'byte-identical, no temp dir');
  await assertValidates(join(mnt, 'skyha.yaml'), ['aws-1', 'azure-1', 'witness-1']);
});

test('--force that fails during the swap (skyha.yaml is a busy mount point): certs/ is moved back', async (t) => {
  const s = scratch(t);
  initOk(['--dir', s.dir]);
  const config = join(s.dir, 'skyha.yaml');
  // certs/ is moved aside first; then renaming the bind-mounted skyha.yaml fails with EBUSY.
  if (!mount(t, s, ['--bind', config], config)) return;
  const before = snapshot(s.dir);
  const r = skyha(['init', '--dir', s.dir, '--force']);
  assert.equal(r.status, 1, show(r));
  assert.match(r.stderr, /SKYHA_ERR_INIT_WRITE/);
  assert.match(r.stderr, /EBUSY/);
  assert.deepEqual(snapshot(s.dir), before, 'byte-identical, no temp dir');
  await assertValidates(config, ['aws-1', 'azure-1', 'witness-1']);
});

test('--dir below a regular file: a clear error, nothing created', (t) => {
  const s = scratch(t);
  writeFileSync(join(s.dir, 'file'), 'a file\n');
  for (const dir of [join(s.dir, 'file'), join(s.dir, 'file', 'x', 'y')]) {
    const r = skyha(['init', '--dir', dir]);
    assert.ok(r.status === 1 || r.status === 2, show(r));
    assert.match(r.stderr, /not a directory|is a file/);
    assert.match(r.stderr, /SKYHA_ERR_/);
    assert.deepEqual(readdirSync(s.dir), ['file']);
    assert.equal(readFileSync(join(s.dir, 'file'), 'utf8'), 'a file\n');
  }
});

test('a temp dir left by a killed init is cleaned up, and files it had moved aside are put back', async (t) => {
  const s = scratch(t);
  const deadPid = 2_147_483_000; // above any pid_max
  // A run killed while writing: only staging/.
  const writing = join(s.dir, `.skyha-init-${deadPid}-aaaaaa`);
  mkdirSync(join(writing, 'staging', 'certs'), { recursive: true });
  writeFileSync(join(writing, 'staging', 'skyha.yaml'), 'half\n');
  initOk(['--dir', s.dir]);
  assert.deepEqual(leftovers(s.dir), []);
  const good = snapshot(s.dir);

  // A run with --force killed in the middle of the swap: the previous certs/ moved aside, nothing moved in yet.
  const swapping = join(s.dir, `.skyha-init-${deadPid}-bbbbbb`);
  mkdirSync(join(swapping, 'new', 'certs'), { recursive: true });
  writeFileSync(join(swapping, 'new', 'skyha.yaml'), 'newer\n');
  mkdirSync(join(swapping, 'old'));
  renameSync(join(s.dir, 'certs'), join(swapping, 'old', 'certs'));
  assert.ok(!existsSync(join(s.dir, 'certs')));
  const r = skyha(['init', '--dir', s.dir]);
  assert.equal(r.status, 2, `restored, then refused because the files exist: ${show(r)}`);
  assert.match(r.stderr, /SKYHA_ERR_INIT_EXISTS/);
  assert.match(r.stderr, /restored certs/);
  assert.deepEqual(snapshot(s.dir), good, 'the previous files are back, byte-identical');
  await assertValidates(join(s.dir, 'skyha.yaml'), ['aws-1', 'azure-1', 'witness-1']);
});

// ---------------------------------------------------------------------------
// Bad usage

test('bad usage: exit 2 with a clear message, nothing written', (t) => {
  const s = scratch(t);
  const dir = join(s.dir, 'out');
  const cases: { args: string[]; says: RegExp }[] = [
    { args: ['--nodes', 'Bad_Name'], says: /--nodes: expected a name of lowercase letters.*"Bad_Name"/ },
    { args: ['--nodes', 'a,-b'], says: /"-b"/ },
    { args: ['--nodes', `a,${'x'.repeat(64)}`], says: /at most 63 characters/ },
    { args: ['--nodes', 'a,a'], says: /--nodes: expected each name once, found "a" twice/ },
    { args: ['--nodes', 'a,b', '--witness', 'b'], says: /"b" both as a node and as a witness/ },
    { args: ['--nodes', ''], says: /--nodes: expected at least one node name, found an empty list/ },
    { args: ['--nodes', 'a,,b'], says: /empty name/ },
    { args: ['--witness', ''], says: /--witness: expected at least one witness name/ },
    { args: ['--nodes', 'ca,b'], says: /other than "ca"/ },
    { args: ['--cluster', 'My Cluster'], says: /--cluster: expected a name/ },
    { args: ['--witness', 'w', '--no-witness'], says: /contradict/ },
  ];
  for (const c of cases) {
    const r = skyha(['init', '--dir', dir, ...c.args]);
    assert.equal(r.status, 2, `${c.args.join(' ')}: ${show(r)}`);
    assert.match(r.stderr, /SKYHA_ERR_USAGE_BAD_ARGUMENT/, c.args.join(' '));
    assert.match(r.stderr, c.says, `${c.args.join(' ')}: ${r.stderr}`);
    assert.ok(!existsSync(dir), `${c.args.join(' ')}: nothing written`);
  }
  for (const args of [['--bogus'], ['extra-argument'], ['--nodes']]) {
    const r = skyha(['init', '--dir', dir, ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${show(r)}`);
    assert.match(r.stderr, /unknown option|too many arguments|excess argument|argument missing/i, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(!existsSync(dir), `${args.join(' ')}: nothing written`);
  }
});

test('init --help documents every option', () => {
  const r = skyha(['init', '--help']);
  assert.equal(r.status, 0, show(r));
  for (const opt of ['--dir', '--cluster', '--nodes', '--witness', '--no-witness', '--force']) assert.ok(r.stdout.includes(opt), `help names ${opt}`);
  assert.match(r.stdout, /stop_when_alone/);
  assert.match(r.stdout, /aws-1,azure-1/);
  assert.match(r.stdout, /witness-1/);
});
