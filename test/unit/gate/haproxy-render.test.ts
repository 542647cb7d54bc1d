/**
 * The HAProxy engine's pure parts: the rendered haproxy.cfg, the parsers of
 * the runtime API's answers, and the plan of runtime commands that takes a
 * server from what HAProxy has to what it should have. (The e2e tests run
 * all of it against the real HAProxy.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendState } from '../../../src/gate/backend.js';
import { leavesPool, planServer, serverMatches, type ServerTarget } from '../../../src/gate/haproxy/haproxy-gate.js';
import { defaultCookieName, renderHaproxyConfig, type HaproxyConfigInput } from '../../../src/gate/haproxy/render-config.js';
import { parseAnswer, parseServersState, parseShowStat, splitCsv, type ServerStateRow } from '../../../src/gate/haproxy/runtime-api.js';
import { isSkyhaError } from '../../../src/core/errors.js';

function b(node: string, patch: Partial<BackendState> = {}): BackendState {
  return { node, host: '10.0.0.1', port: 8080, weight: 1, health: 'up', admin: 'ready', ...patch };
}

function input(patch: Partial<HaproxyConfigInput> = {}): HaproxyConfigInput {
  return {
    module: 'shop',
    bind: '0.0.0.0',
    port: 8443,
    mode: 'http',
    balance: 'round_robin',
    backends: [b('aws-1'), b('azure-1', { host: '10.1.0.1', weight: 3 })],
    connectTimeout: 2000,
    responseTimeout: 30_000,
    maxConnections: 5000,
    socketPath: '/run/skyha/haproxy-shop.sock',
    ...patch,
  };
}

function lines(cfg: string): string[] {
  return cfg.split('\n').map((l) => l.trim());
}

test('http round robin: listener, limits, timeouts, weights, retries for idempotent requests only, forwarding headers', () => {
  const cfg = renderHaproxyConfig(input({ idempotentHeader: 'X-Idempotent' }));
  const l = lines(cfg);
  for (const want of [
    'global',
    'maxconn 5032',
    'stats socket /run/skyha/haproxy-shop.sock mode 600 level admin',
    'mode http',
    'timeout connect 2000ms',
    'timeout server 30000ms',
    'timeout client 60000ms',
    'timeout http-keep-alive 60000ms',
    'listen shop',
    'bind ipv4@0.0.0.0:8443',
    'maxconn 5000',
    'balance roundrobin',
    'retries 3',
    'option redispatch 1',
    'retry-on conn-failure empty-response',
    'acl skyha_idempotent method GET HEAD OPTIONS PUT DELETE TRACE',
    'acl skyha_marked req.hdr(X-Idempotent) -m found',
    'http-request disable-l7-retry unless skyha_idempotent || skyha_marked',
    'option forwardfor',
    'http-request set-header X-Forwarded-Proto http',
    'server aws-1 ipv4@10.0.0.1:8080 weight 1',
    'server azure-1 ipv4@10.1.0.1:8080 weight 3',
  ]) {
    assert.ok(l.includes(want), `missing line: ${want}\n${cfg}`);
  }
  assert.ok(l.includes('http-request add-header Forwarded "for=%[src];proto=http"'));
  // No health checks: the cluster says health, through the runtime API.
  assert.doesNotMatch(cfg, /\bcheck\b/);
  assert.doesNotMatch(cfg, /cookie |\blog\b|ssl/);
  assert.equal(renderHaproxyConfig(input({ idempotentHeader: 'X-Idempotent' })), cfg, 'the same input renders the same text');
});

test('a backend that should take nothing at start is rendered disabled', () => {
  const cfg = renderHaproxyConfig(input({ backends: [b('a'), b('b', { health: 'down' }), b('c', { admin: 'drain' }), b('d', { admin: 'maint' })] }));
  const servers = lines(cfg).filter((x) => x.startsWith('server '));
  assert.deepEqual(servers, [
    'server a ipv4@10.0.0.1:8080 weight 1',
    'server b ipv4@10.0.0.1:8080 weight 1 disabled',
    'server c ipv4@10.0.0.1:8080 weight 1 disabled',
    'server d ipv4@10.0.0.1:8080 weight 1 disabled',
  ]);
});

test('balance kinds: leastconn, source with consistent hashing, cookie insert with a per-server cookie and the drained-cookie rule', () => {
  assert.ok(lines(renderHaproxyConfig(input({ balance: 'least_connections' }))).includes('balance leastconn'));
  const source = lines(renderHaproxyConfig(input({ balance: 'client_address' })));
  assert.ok(source.includes('balance source') && source.includes('hash-type consistent'));
  const cookie = renderHaproxyConfig(input({ balance: 'cookie' }));
  const l = lines(cookie);
  assert.ok(l.includes('balance roundrobin'));
  assert.ok(l.includes('cookie SKYHA_SHOP insert indirect nocache httponly attr "SameSite=Lax"'));
  assert.ok(l.includes('server aws-1 ipv4@10.0.0.1:8080 weight 1 cookie aws-1'));
  assert.ok(l.includes(`http-request replace-header Cookie '^(.*;\\s*)?SKYHA_SHOP=aws-1(\\s*;.*)?$' '\\1SKYHA_SHOP=-\\2' if { srv_weight(shop/aws-1) eq 0 }`), cookie);
  assert.ok(lines(renderHaproxyConfig(input({ balance: 'cookie', cookieName: 'sticky' }))).includes('cookie sticky insert indirect nocache httponly attr "SameSite=Lax"'));
  assert.equal(defaultCookieName('web-app.eu'), 'SKYHA_WEB_APP_EU');
});

test('tcp mode: pass-through, retries of connection failures only, no HTTP rules', () => {
  const cfg = renderHaproxyConfig(input({ mode: 'tcp', balance: 'cookie', idempotentHeader: 'X-Idempotent', samples: true }));
  const l = lines(cfg);
  assert.ok(l.includes('mode tcp'));
  assert.ok(l.includes('balance roundrobin'), 'no cookies in TCP: round robin, as the built-in gate');
  assert.ok(l.includes('retries 3') && l.includes('option redispatch 1'));
  assert.doesNotMatch(cfg, /retry-on|http-request|forwardfor|cookie|http-keep-alive|\blog\b/);
});

test('TLS, latency samples, IPv6 and host names', () => {
  const cfg = renderHaproxyConfig(input({ bind: '::', tlsPem: '/run/skyha/haproxy-shop.pem', samples: true, backends: [b('a', { host: 'fd00::5' }), b('b', { host: 'node-b.internal' })] }));
  const l = lines(cfg);
  assert.ok(l.includes('bind ipv6@:::8443 ssl crt /run/skyha/haproxy-shop.pem'));
  assert.ok(l.includes('ssl-default-bind-options ssl-min-ver TLSv1.2'));
  assert.ok(l.includes('http-request set-header X-Forwarded-Proto https'));
  assert.ok(l.includes('log stdout format raw daemon') && l.includes('log-format "skyha-sample %s %Tr"'));
  assert.ok(l.includes('server a ipv6@fd00::5:8080 weight 1'));
  assert.ok(l.includes('server b node-b.internal:8080 weight 1 init-addr libc,none'));
});

test('values HAProxy could not take are refused with SKYHA_ERR_HAPROXY, naming the value', () => {
  const refused = (patch: Partial<HaproxyConfigInput>, what: RegExp): void =>
    assert.throws(
      () => renderHaproxyConfig(input(patch)),
      (err: unknown) => isSkyhaError(err) && err.code === 'SKYHA_ERR_HAPROXY' && what.test(err.message),
    );
  refused({ module: 'my shop' }, /module name "my shop"/);
  refused({ backends: [b('a b')] }, /node name "a b"/);
  refused({ backends: [b('a'), b('a')] }, /node a is listed twice/);
  refused({ backends: [b('a', { weight: 300 })] }, /weight 300 of a/);
  refused({ backends: [b('a', { host: 'x y' })] }, /address "x y" of a/);
  refused({ port: 0 }, /port 0/);
  refused({ socketPath: `/tmp/${'x'.repeat(120)}.sock` }, /longer than 107 bytes/);
  refused({ idempotentHeader: 'X Bad' }, /idempotent header/);
  refused({ balance: 'cookie', cookieName: 'a;b' }, /cookie name/);
});

// `show stat` as HAProxy 2.6 writes it (columns cut after the ones the gate reads; a quoted field).
const STAT = [
  '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,',
  'web,FRONTEND,,,3,5,1000,40,1,2,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,1,0,5,,,,0,38,0,0,2,0,,1,5,40,,,0,0,0,0,,,,,,,,,,,,',
  'web,a,0,0,2,3,,25,1,2,,0,,1,2,3,1,UP,2,1,0,,0,10,0,,1,2,1,,25,,2,0,,4,,,,0,24,0,0,1,0,,,,25,0,1,,,,,0,,,0,0,12,20,,,,"Layer4 check passed, ok",',
  'web,b,0,0,1,2,,15,1,2,,0,,0,0,0,0,MAINT,1,1,0,,0,10,0,,1,2,2,,15,,2,0,,4,,,,0,14,0,0,0,0,,,,15,0,0,,,,,0,,,0,0,7,9,,,,,',
  'web,BACKEND,0,0,3,5,100,40,1,2,0,0,,1,2,3,1,UP,3,2,0,,0,10,0,,1,2,0,,40,,1,0,,4,,,,0,38,0,0,1,0,,,,40,0,1,0,0,0,0,0,,,0,0,10,16,,,,,',
  '',
].join('\n');

test('show stat CSV: one row per frontend, server and backend, numbers read, quoted fields kept whole', () => {
  const rows = parseShowStat(STAT);
  assert.deepEqual(
    rows.map((r) => r.name),
    ['FRONTEND', 'a', 'b', 'BACKEND'],
  );
  const a = rows[1]!;
  assert.equal(a.proxy, 'web');
  assert.equal(a.status, 'UP');
  assert.deepEqual([a.scur, a.stot, a.econ, a.eresp, a.wretr, a.wredis, a.rtime, a.weight, a.responses, a.hrsp5xx, a.srvAbrt], [2, 25, 1, 2, 3, 1, 12, 2, 25, 1, 1]);
  assert.equal(a.fields.check_desc, 'Layer4 check passed, ok');
  assert.equal(rows[2]!.status, 'MAINT');
  assert.deepEqual([rows[0]!.reqTot, rows[0]!.hrsp5xx, rows[0]!.econ], [40, 2, 0]);
  assert.deepEqual(splitCsv('a,"b,""c""",,d'), ['a', 'b,"c"', '', 'd']);
  assert.throws(() => parseShowStat('Unknown command\n'), (err: unknown) => isSkyhaError(err) && err.code === 'SKYHA_ERR_HAPROXY');
});

test('show servers state: operational state and admin flags as health and admin state', () => {
  const text = [
    '1',
    '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port',
    '2 web 1 a 127.0.0.1 2 0 1 1 4 1 0 0 0 0 0 0 - 18081 - 0 0 - - 0',
    '2 web 2 b 127.0.0.1 0 4 1 1 5 1 0 0 0 0 0 0 - 18082 - 0 0 - - 0',
    '2 web 3 c 127.0.0.1 0 5 2 1 5 1 0 0 0 0 0 0 - 18083 - 0 0 - - 0',
    '2 web 4 d 127.0.0.1 2 8 0 1 5 1 0 0 0 0 0 0 - 18084 - 0 0 - - 0',
    '',
  ].join('\n');
  assert.deepEqual(
    parseServersState(text).map((r) => [r.server, r.health, r.admin, r.weight, r.addr, r.port]),
    [
      ['a', 'up', 'ready', 1, '127.0.0.1', 18081],
      // 0x04 only says the config had `disabled`: the server has left maintenance since.
      ['b', 'down', 'ready', 1, '127.0.0.1', 18082],
      ['c', 'down', 'maint', 2, '127.0.0.1', 18083],
      ['d', 'up', 'drain', 0, '127.0.0.1', 18084],
    ],
  );
});

test('runtime API answers: severity prefixes stripped; errors (level 3 or less, unknown command) thrown with HAProxy\'s words', () => {
  assert.equal(parseAnswer(['set server web/a health up'], '\n\n'), '\n');
  assert.equal(parseAnswer(['set server web/a addr 10.0.0.2 port 80'], "\n[4]: IP changed from '10.0.0.1' to '10.0.0.2' by 'stats socket command'\n\n"), "IP changed from '10.0.0.1' to '10.0.0.2' by 'stats socket command'\n");
  assert.throws(
    () => parseAnswer(['set server web/zz health up'], '\n[3]: No such server.\n\n'),
    (err: unknown) => isSkyhaError(err) && err.code === 'SKYHA_ERR_HAPROXY' && /"set server web\/zz health up": No such server\./.test(err.message),
  );
  assert.throws(() => parseAnswer(['bogus'], '\n[6]: Unknown command, but maybe one of the following ones is a better match:\n  help\n\n'), /Unknown command/);
});

function row(patch: Partial<ServerStateRow> = {}): ServerStateRow {
  return { proxy: 'web', server: 'a', addr: '10.0.0.1', port: 80, health: 'up', admin: 'ready', weight: 1, ...patch };
}

function target(patch: Partial<ServerTarget> = {}): ServerTarget {
  return { health: 'up', admin: 'ready', weight: 1, addr: '10.0.0.1', port: 80, ...patch };
}

test('planServer: restrictions before relaxations, weight lowered first and raised last, sessions shut at once only when the server moves', () => {
  const s = 'set server web/a';
  assert.deepEqual(planServer('web', row(), target()), []);
  assert.deepEqual(planServer('web', row(), target({ health: 'down' })), [`${s} health down`]);
  assert.deepEqual(planServer('web', row(), target({ admin: 'maint' })), [`${s} state maint`]);
  // Drain keeps open requests; weight 0 so that affinity cookies leave the server too.
  assert.deepEqual(planServer('web', row(), target({ admin: 'drain' })), [`${s} weight 0`, `${s} state drain`]);
  assert.deepEqual(planServer('web', row({ admin: 'drain', weight: 0 }), target({ weight: 4 })), [`${s} state ready`, `${s} weight 4`]);
  assert.deepEqual(planServer('web', row({ health: 'down' }), target({ admin: 'drain' })), [`${s} weight 0`, `${s} state drain`, `${s} health up`]);
  assert.deepEqual(planServer('web', row({ health: 'down', admin: 'maint' }), target()), [`${s} state ready`]);
  // Leaving maintenance makes a server without checks UP: one that must be down goes through drain at weight 0.
  assert.deepEqual(planServer('web', row({ admin: 'maint', weight: 2 }), target({ health: 'down', weight: 2 })), [`${s} weight 0`, `${s} state drain`, `${s} health down`, `${s} state ready`, `${s} weight 2`]);
  assert.deepEqual(planServer('web', row(), target({ addr: '10.0.0.9', port: 81 })), [`${s} addr 10.0.0.9 port 81`, 'shutdown sessions server web/a']);
  assert.deepEqual(planServer('web', row(), target({ addr: undefined, port: 81 })), [], 'an address not resolved yet is left alone');
  assert.deepEqual(planServer('web', row({ health: 'down' }), target({ health: 'down', admin: 'maint' })), [`${s} state maint`]);
});

test('leavesPool: a server that kept its sessions open and no longer does (their shutdown waits a connect timeout)', () => {
  assert.equal(leavesPool(row(), target({ health: 'down' })), true);
  assert.equal(leavesPool(row(), target({ admin: 'maint' })), true);
  assert.equal(leavesPool(row(), target({ admin: 'drain' })), false, 'drain lets open requests finish');
  assert.equal(leavesPool(row({ health: 'down' }), target({ health: 'down', admin: 'maint' })), false, 'nothing open to shut');
  assert.equal(leavesPool(row({ admin: 'maint' }), target({ health: 'down' })), false);
  assert.equal(leavesPool(row(), target()), false);
});

test('serverMatches: what the poll compares before it asks for a sync', () => {
  assert.equal(serverMatches(row(), target()), true);
  assert.equal(serverMatches(row({ admin: 'maint', health: 'down', weight: 1 }), target({ admin: 'maint', health: 'up' })), true, 'health does not matter in maintenance');
  assert.equal(serverMatches(row({ admin: 'drain' }), target({ admin: 'drain' })), false, 'a drained server has weight 0');
  assert.equal(serverMatches(row({ admin: 'drain', weight: 0 }), target({ admin: 'drain' })), true);
  assert.equal(serverMatches(row({ health: 'down' }), target()), false);
  assert.equal(serverMatches(row({ port: 81 }), target()), false);
});
