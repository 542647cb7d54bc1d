/**
 * The REST API against a running cluster (two nodes and a witness as real
 * processes on loopback, HTTPS with the cluster CA): every route with no
 * credentials (401), the wrong role (403, nothing changes), unknown module
 * (404), bad bodies (400 naming the field); reads validated against
 * schema/openapi.json; actions asked of one node and carried out by another,
 * seen in the event stream with who asked; Prometheus metrics.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiClient, type ApiCredentials } from '../../src/api/client.js';
import { hashToken, newToken } from '../../src/api/auth.js';
import { OPENAPI_TEXT } from '../../src/api/openapi.js';
import type { ClusterConfig, MemberConfig } from '../../src/config/model.js';
import { requireConfig } from '../../src/config/load.js';
import { createCa, issueMemberCert } from '../../src/link/certificates.js';
import type { ClusterEvent } from '../../src/observe/cluster-events.js';
import { writeClusterFiles, type ClusterSpec } from '../../src/testing/cluster-files.js';
import { ClusterRunner, LocalLauncher } from '../../src/testing/cluster-runner.js';
import { sampleAppCommand } from '../../src/testing/sample-app.js';
import { holdsFor, waitFor } from '../../src/testing/wait.js';
import { OPERATIONS, assertDocumented } from '../helpers/openapi.js';

const net = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
const APP_PORT = 19_000 + Math.floor(Math.random() * 500);
const GATE_PORT = APP_PORT + 500;

describe('REST API on a running cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-api-'));
  const tokens = { mon: newToken(), ops: newToken(), root: newToken() };
  const spec: ClusterSpec = {
    name: 'api',
    profile: 'lan',
    nodes: [
      { name: 'n1', address: `${net}.1`, labels: { cloud: 'aws' } },
      { name: 'n2', address: `${net}.2`, labels: { cloud: 'azure' } },
    ],
    witnesses: [{ name: 'w', address: `${net}.3`, labels: { cloud: 'gcp' } }],
    api: {
      users: {
        mon: { role: 'monitor', token_sha256: hashToken(tokens.mon) },
        ops: { role: 'control', token_sha256: hashToken(tokens.ops) },
        root: { role: 'admin', token_sha256: hashToken(tokens.root) },
        carol: { role: 'control' },
      },
    },
    modules: {
      db: { kind: 'mirror', start: sampleAppCommand(), environment: { APP_PORT: String(APP_PORT) }, directories: [join(dir, '{node}', 'db')], stop_timeout: '2s', checkers: [{ kind: 'process' }] },
      web: {
        kind: 'farm',
        start: sampleAppCommand(),
        environment: { APP_PORT: String(APP_PORT + 1) },
        port: APP_PORT + 1,
        gate: { port: GATE_PORT },
        stop_timeout: '2s',
        checkers: [{ kind: 'tcp', port: APP_PORT + 1 }],
      },
    },
  };
  let runner: ClusterRunner;
  let config: ClusterConfig;
  const clients: ApiClient[] = [];
  const as = (credentials: ApiCredentials): ApiClient => {
    const c = new ApiClient(config, credentials);
    clients.push(c);
    return c;
  };
  let anonymous: ApiClient, mon: ApiClient, ops: ApiClient, carol: ApiClient;
  const member = (name: string): MemberConfig => [...config.nodes, ...config.witnesses].find((m) => m.name === name)!;

  before(async () => {
    const files = await writeClusterFiles(dir, spec);
    config = requireConfig(files.config, { checkTls: false }).config;
    runner = new ClusterRunner(files, spec, new LocalLauncher());
    runner.startAll();
    anonymous = as({});
    mon = as({ token: tokens.mon });
    ops = as({ token: tokens.ops });
    const ca = { certPem: files.ca.certPem, keyPem: files.ca.keyPem };
    const carolCert = await issueMemberCert(ca, 'carol', 'api');
    carol = as({ cert: Buffer.from(carolCert.certPem), key: Buffer.from(carolCert.keyPem) });
    await runner.waitPrimary('db', { deadline: 20_000 });
    await waitFor('web in service on both nodes', async () => ((await runner.healthyNodes('web')).length === 2 ? true : undefined), { deadline: 20_000 });
  });

  after(async () => {
    for (const c of clients) c.close();
    await runner?.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A concrete path for each documented route. */
  const concrete = (path: string) => path.replace('{module}', 'db').replace('{node}', 'n1');

  it('serves its OpenAPI document without credentials, and asks credentials on every other route', async () => {
    const doc = await anonymous.request(member('n1'), 'GET', '/v1/openapi.json', undefined, 2000);
    assert.equal(doc.status, 200);
    assert.deepEqual(doc.body, JSON.parse(OPENAPI_TEXT));
    assert.deepEqual(JSON.parse(OPENAPI_TEXT), JSON.parse(readFileSync(new URL('../../../schema/openapi.json', import.meta.url), 'utf8')));
    for (const [id, { method, path, op }] of OPERATIONS) {
      const answer = await anonymous.request(member('n2'), method, concrete(path), method === 'GET' ? undefined : {}, 3000);
      if (op.security?.length === 0) {
        assert.notEqual(answer.status, 401, `${id} is public`);
        continue;
      }
      assert.equal(answer.status, 401, `${id} without credentials: ${JSON.stringify(answer.body)}`);
      assertDocumented(id, 401, answer.body);
      assert.match((answer.body as { error: { message: string } }).error.message, /no credentials/);
    }
  });

  it('refuses a wrong token and a certificate of another CA, saying why', async () => {
    const wrong = await as({ token: newToken() }).request(member('n1'), 'GET', '/v1/status', undefined, 2000);
    assert.equal(wrong.status, 401);
    assert.match(JSON.stringify(wrong.body), /not one of api.users/);
    const otherCa = await createCa('elsewhere');
    const forged = await issueMemberCert(otherCa, 'n1', 'api');
    const answer = await as({ cert: Buffer.from(forged.certPem), key: Buffer.from(forged.keyPem) }).request(member('n1'), 'GET', '/v1/status', undefined, 2000);
    assert.equal(answer.status, 401);
    assert.match(JSON.stringify(answer.body), /not signed by the cluster CA/);
  });

  it('lets monitor read the member, the cluster, members, modules and events, each as documented', async () => {
    for (const [id, path] of [['getMemberStatus', '/v1/status'], ['getCluster', '/v1/cluster'], ['listMembers', '/v1/members'], ['listModules', '/v1/modules'], ['getModule', '/v1/modules/db'], ['getModule', '/v1/modules/web'], ['listEvents', '/v1/events?limit=500']] as const) {
      for (const m of ['n1', 'n2', 'w']) {
        const answer = await mon.request(member(m), 'GET', path, undefined, 5000);
        assert.equal(answer.status, 200, `${path} on ${m}: ${JSON.stringify(answer.body).slice(0, 300)}`);
        assertDocumented(id, 200, answer.body);
      }
    }
    // Any member's view covers the whole cluster: the witness knows both nodes' roles and events.
    const cluster = (await mon.request<{ members: Array<{ name: string; answered: boolean }>; modules: Array<{ name: string; nodes: Array<{ node: string; role?: string }> }> }>(member('w'), 'GET', '/v1/cluster', undefined, 5000)).body;
    assert.deepEqual(cluster.members.map((m) => [m.name, m.answered]), [['n1', true], ['n2', true], ['w', true]]);
    const roles = cluster.modules.find((m) => m.name === 'db')!.nodes.map((n) => n.role).sort();
    assert.deepEqual(roles, ['primary', 'secondary']);
    const events = await waitFor('events of both nodes on the witness', async () => {
      const e = (await mon.request<{ events: ClusterEvent[] }>(member('w'), 'GET', '/v1/events?limit=2000', undefined, 2000)).body.events;
      return ['n1', 'n2', 'w'].every((m) => e.some((x) => x.member === m && x.reason === 'MEMBER_STARTED')) ? e : undefined;
    }, { deadline: 10_000 });
    assert.ok(events.some((e) => e.reason === 'PROMOTED'), 'the promotion is in the cluster timeline');
  });

  it('refuses every action to monitor with 403, and nothing changes', async () => {
    const primary = await runner.waitPrimary('db');
    const before = (await mon.request<{ events: ClusterEvent[] }>(member('n1'), 'GET', '/v1/events?limit=1', undefined, 2000)).body.events.at(-1)?.id ?? 0;
    for (const [id, { method, path, op }] of OPERATIONS) {
      if (op['x-skyha-role'] !== 'control') continue;
      const body = id === 'failoverModule' ? { to: 'n2', force: true } : id === 'setNodeAdminState' ? { state: 'maint' } : {};
      const answer = await mon.request(member('n1'), method, concrete(path).replace('/modules/db/nodes', id === 'setNodeAdminState' ? '/modules/web/nodes' : '/modules/db/nodes'), body, 3000);
      assert.equal(answer.status, 403, `${id} as monitor: ${JSON.stringify(answer.body)}`);
      assertDocumented(id, 403, answer.body);
      assert.match((answer.body as { error: { message: string } }).error.message, /needs the role control; mon has monitor/);
    }
    assert.equal(await runner.waitPrimary('db'), primary);
    const after = (await mon.request<{ events: ClusterEvent[] }>(member('n1'), 'GET', `/v1/events?after=${before}&limit=2000`, undefined, 2000)).body.events;
    assert.deepEqual(after.filter((e) => /^OPERATOR_|ADMIN_STATE_SET/.test(e.reason)), [], 'no action was taken');
  });

  it('answers 404 for an unknown module or node and 400 naming the field of a bad body', async () => {
    const cases: Array<[string, string, string, unknown, number, string?]> = [
      ['switchoverModule', 'POST', '/v1/modules/nope/switchover', {}, 404],
      ['getModule', 'GET', '/v1/modules/nope', undefined, 404],
      ['barrierModule', 'POST', '/v1/modules/nope/barrier', {}, 404],
      ['restartModuleOnNode', 'POST', '/v1/modules/web/nodes/n9/restart', {}, 404],
      ['setNodeAdminState', 'PUT', '/v1/modules/nope/nodes/n1/admin', { state: 'drain' }, 404],
      ['switchoverModule', 'POST', '/v1/modules/db/switchover', { to: 'n9' }, 400, 'to'],
      ['switchoverModule', 'POST', '/v1/modules/db/switchover', { target: 'n2' }, 400, 'target'],
      ['failoverModule', 'POST', '/v1/modules/db/failover', { to: 'n2' }, 400, 'force'],
      ['failoverModule', 'POST', '/v1/modules/db/failover', { force: true }, 400, 'to'],
      ['barrierModule', 'POST', '/v1/modules/db/barrier', { timeout: 'soon' }, 400, 'timeout'],
      ['setNodeAdminState', 'PUT', '/v1/modules/web/nodes/n1/admin', { state: 'asleep' }, 400, 'state'],
      ['setNodeAdminState', 'PUT', '/v1/modules/db/nodes/n1/admin', { state: 'drain' }, 409],
      ['switchoverModule', 'POST', '/v1/modules/web/switchover', {}, 409],
      ['listEvents', 'GET', '/v1/events?limit=0', undefined, 400, 'limit'],
    ];
    for (const [id, method, path, body, status, field] of cases) {
      const answer = await ops.request(member('n2'), method, path, body, 3000);
      assert.equal(answer.status, status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`);
      assertDocumented(id, status, answer.body);
      if (field) assert.equal((answer.body as { error: { field?: string } }).error.field, field);
    }
  });

  it('answers /health over plain HTTP on the API port, and keeps the API to HTTPS', async () => {
    const plain = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: `${net}.1`, port: 7401, path, headers: { Authorization: `Bearer ${tokens.root}` } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const health = await plain('/health/web');
    assert.equal(health.status, 200);
    assertDocumented('getHealth', 200, JSON.parse(health.body));
    const status = await plain('/v1/status');
    assert.equal(status.status, 403);
    assert.match(status.body, /HTTPS only/);
  });

  it('drains a farm node through another node; the event names who asked and reaches every member', async () => {
    const seen: ClusterEvent[] = [];
    const abort = new AbortController();
    // From the last event the witness has now: the stream then misses nothing that follows, however soon.
    const last = (await ops.request<{ events: ClusterEvent[] }>(member('w'), 'GET', '/v1/events?limit=1', undefined, 2000)).body.events.at(-1)?.id ?? 0;
    const stream = ops.stream(member('w'), `/v1/events?after=${last}`, (data) => seen.push(JSON.parse(data) as ClusterEvent), { signal: abort.signal });
    const drained = await ops.request(member('n1'), 'PUT', '/v1/modules/web/nodes/n2/admin', { state: 'drain' }, 3000);
    assert.equal(drained.status, 202, JSON.stringify(drained.body));
    assertDocumented('setNodeAdminState', 202, drained.body);
    const event = await waitFor('ADMIN_STATE_SET from n2 on the witness stream', async () => seen.find((e) => e.reason === 'ADMIN_STATE_SET' && e.member === 'n2'), { deadline: 5000 });
    assert.match(event.text, /^ops set web on n2 to drain/);
    assert.equal(event.data?.by, 'ops');
    const ready = await ops.request(member('n1'), 'PUT', '/v1/modules/web/nodes/n2/admin', { state: 'ready' }, 3000);
    assert.equal(ready.status, 202);
    await waitFor('web ready on n2 in the stream', async () => seen.some((e) => e.reason === 'ADMIN_STATE_SET' && e.member === 'n2' && /to ready/.test(e.text)) || undefined, { deadline: 5000 });
    abort.abort();
    assert.equal((await stream).status, 200);
  });

  it('restarts the farm application on n2 when n1 is asked', async () => {
    const pidOf = async () => (await runner.status('n2', 2000))?.modules.find((m) => m.name === 'web')?.app.pid;
    const before = await pidOf();
    assert.ok(before);
    const answer = await ops.request(member('n1'), 'POST', '/v1/modules/web/nodes/n2/restart', undefined, 5000);
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    assertDocumented('restartModuleOnNode', 202, answer.body);
    assert.equal((answer.body as { member: string }).member, 'n2');
    await waitFor('a new web process on n2', async () => {
      const pid = await pidOf();
      return pid && pid !== before ? pid : undefined;
    }, { deadline: 10_000 });
    const events = (await mon.request<{ events: ClusterEvent[] }>(member('n1'), 'GET', '/v1/events?module=web&limit=2000', undefined, 2000)).body.events;
    assert.ok(events.some((e) => e.reason === 'OPERATOR_RESTART' && e.member === 'n2' && /^ops asked/.test(e.text)), 'n1 has the restart event of n2');
  });

  it('stops a module on every node, keeps it stopped across an agent restart, and starts it again', async () => {
    const stopWeb = await ops.request(member('n1'), 'POST', '/v1/modules/web/stop', undefined, 8000);
    assert.equal(stopWeb.status, 202, JSON.stringify(stopWeb.body));
    assertDocumented('stopModule', 202, stopWeb.body);
    assert.match((stopWeb.body as { detail: string }).detail, /^web stopped on n1, n2$/);
    const stopDb = await ops.request(member('w'), 'POST', '/v1/modules/db/stop', undefined, 8000);
    assert.equal(stopDb.status, 202, JSON.stringify(stopDb.body));
    await waitFor('web and db served nowhere', async () => ((await runner.healthyNodes('web')).length === 0 && (await runner.healthyNodes('db')).length === 0) || undefined, { deadline: 15_000 });
    const why = await ops.request<{ why: string }>(member('n2'), 'GET', '/health/web', undefined, 2000);
    assert.match(why.body.why, /^web was stopped on n2 by ops at /);
    const refused = await ops.request(member('n1'), 'POST', '/v1/modules/web/nodes/n2/restart', undefined, 5000);
    assert.equal(refused.status, 409, 'a stopped module is started, not restarted');
    // An agent that restarts keeps the module stopped: no primary of db, no web on n2.
    await runner.kill('n2');
    runner.start('n2');
    await waitFor('n2 back', async () => (await runner.status('n2', 1000)) ?? undefined, { deadline: 20_000 });
    await holdsFor('db and web stay stopped', async () => (await runner.healthyNodes('web')).length === 0 && (await runner.healthyNodes('db')).length === 0, { duration: 3000, every: 200 });
    const n2 = (await runner.status('n2'))!;
    assert.deepEqual(n2.modules.map((m) => [m.name, m.role, m.stopped?.by]).sort(), [['db', 'out-of-service', 'ops'], ['web', 'stopped', 'ops']]);
    for (const mod of ['web', 'db']) {
      const started = await ops.request(member('n2'), 'POST', `/v1/modules/${mod}/start`, undefined, 8000);
      assert.equal(started.status, 202, JSON.stringify(started.body));
      assertDocumented('startModule', 202, started.body);
    }
    await waitFor('web on both nodes and one db primary', async () => ((await runner.healthyNodes('web')).length === 2 && (await runner.healthyNodes('db')).length === 1) || undefined, { deadline: 30_000 });
    const events = (await mon.request<{ events: ClusterEvent[] }>(member('w'), 'GET', '/v1/events?limit=2000', undefined, 2000)).body.events;
    for (const reason of ['OPERATOR_STOPPED', 'OPERATOR_STARTED']) assert.ok(events.some((e) => e.reason === reason && e.member === 'n1' && e.module === 'db' && /^ops /.test(e.text)), `${reason} of db on n1, naming ops`);
  });

  it('passes a barrier asked of the secondary to the primary', async () => {
    const primary = await runner.waitPrimary('db');
    const secondary = primary === 'n1' ? 'n2' : 'n1';
    const answer = await ops.request(member(secondary), 'POST', '/v1/modules/db/barrier', { timeout: '5s' }, 8000);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assertDocumented('barrierModule', 200, answer.body);
    assert.equal((answer.body as { primary: string }).primary, primary);
  });

  it('switches the primary over for a user with a client certificate', async () => {
    const primary = await runner.waitPrimary('db');
    const answer = await carol.request(member('w'), 'POST', '/v1/modules/db/switchover', {}, 5000);
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    assertDocumented('switchoverModule', 202, answer.body);
    const next = await runner.waitPrimary('db', { not: primary, deadline: 15_000 });
    assert.notEqual(next, primary);
    const events = (await mon.request<{ events: ClusterEvent[] }>(member('w'), 'GET', '/v1/events?module=db&limit=2000', undefined, 2000)).body.events;
    assert.ok(events.some((e) => e.reason === 'OPERATOR_SWITCHOVER' && /^carol asked/.test(e.text)), 'the switchover names carol');
  });

  it('serves Prometheus metrics to monitor, not to strangers', async () => {
    assert.equal((await anonymous.request(member('n1'), 'GET', '/metrics', undefined, 2000)).status, 401);
    const primary = await runner.waitPrimary('db');
    assert.equal((await ops.request(member(primary), 'POST', '/v1/modules/db/barrier', {}, 8000)).status, 200);
    const answer = await mon.request<string>(member(primary), 'GET', '/metrics', undefined, 3000);
    assert.equal(answer.status, 200);
    const text = answer.body;
    assert.match(text, /skyha_module_role\{module="db",kind="mirror",role="primary"\} 1/);
    assert.match(text, /skyha_module_role\{module="web",kind="farm",role="active"\} 1/);
    assert.match(text, /skyha_replication_in_sync\{module="db",secondary="n[12]"\} 1/);
    assert.match(text, /skyha_lease_remaining_seconds\{module="db"\} 0\.\d+/);
    assert.match(text, /skyha_barrier_duration_seconds_count\{module="db",outcome="ok"\} [1-9]/);
    assert.match(text, /skyha_promotions_total\{module="db",forced="false"\} [1-9]/);
    assert.match(text, /skyha_gate_requests_total\{module="web",backend="n[12]"\} \d+/);
    assert.match(text, /skyha_member_alive\{peer="w"\} 1/);
    assert.match(text, /^process_cpu_seconds_total /m);
  });
});
