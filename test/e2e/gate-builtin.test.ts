/**
 * The built-in gate on loopback, with real Node http backends and real
 * client connections: balancing, forwarding headers, bodies both ways,
 * retries (and where they must not happen), drain and maintenance, affinity,
 * upgrades, TCP mode, TLS termination, latency ejection, and the answers the
 * gate gives itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendState } from '../../src/gate/backend.js';
import { BuiltinGate, type BuiltinGateOptions } from '../../src/gate/builtin-gate.js';
import { waitFor } from '../../src/testing/wait.js';
import { HOST, assertTcpEcho, assertTunnel, backend, closeLater, gateCertificate, request, state, tcpEchoBackend, tlsGet, upgradeEchoBackend } from '../helpers/gate-fixtures.js';

async function gate(backends: BackendState[], options: Partial<BuiltinGateOptions> = {}): Promise<BuiltinGate> {
  const g = new BuiltinGate({ module: 'web', bind: HOST, port: 0, mode: 'http', balance: 'round_robin', connectTimeout: 500, responseTimeout: 5000, maxConnections: 1000, ...options });
  g.update(backends);
  await g.start();
  return closeLater(g);
}

test('round robin spreads requests by weight and adds the forwarding headers', async () => {
  const a = await backend('a');
  const b = await backend('b');
  const g = await gate([state(a, { weight: 2 }), state(b)]);
  const seen: string[] = [];
  for (let i = 0; i < 30; i++) {
    const r = await request(g.port, `/p${i}`);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body);
    seen.push(body.backend);
    assert.equal(body.url, `/p${i}`);
    assert.equal(body.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(body.headers['x-forwarded-proto'], 'http');
    assert.equal(body.headers.forwarded, 'for=127.0.0.1;proto=http');
  }
  assert.equal(seen.filter((s) => s === 'a').length, 20);
  assert.equal(seen.filter((s) => s === 'b').length, 10);
  assert.equal(g.report().requests, 30);
});

test('bodies pass both ways: small, large streamed, chunked; pipelined requests are answered in order', async () => {
  const a = await backend('a');
  const g = await gate([state(a)]);
  const small = await request(g.port, '/s', { method: 'POST', body: 'hello' });
  assert.equal(JSON.parse(small.body).body, 'hello');
  const big = 'x'.repeat(300_000);
  const large = await request(g.port, '/l', { method: 'PUT', body: big });
  assert.equal(JSON.parse(large.body).body.length, big.length);
  const ch = await request(g.port, '/c', { method: 'POST', body: 'abc'.repeat(1000), chunked: true });
  assert.equal(JSON.parse(ch.body).body, 'abc'.repeat(1000));

  // Three pipelined requests on one connection, written at once.
  const socket = connect(g.port, HOST);
  const got: Buffer[] = [];
  socket.on('data', (d: Buffer) => got.push(d));
  socket.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await new Promise((resolve) => socket.on('close', resolve));
  const text = Buffer.concat(got).toString();
  const urls = [...text.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(urls, ['/1', '/2', '/3']);
  assert.match(text, /"body":"hi"/);
});

test('no backend: 503 from the gate saying why', async () => {
  const a = await backend('a');
  const g = await gate([state(a, { health: 'down' })]);
  const r = await request(g.port, '/');
  assert.equal(r.status, 503);
  assert.match(r.body, /skyha gate: 503.*no node of web takes requests/);
  assert.equal(a.hits, 0);
});

test('a refused connection is retried on another node, whatever the method (nothing was sent)', async () => {
  const a = await backend('a');
  const dead = await backend('dead');
  await dead.close();
  const g = await gate([state(dead), state(a)]);
  for (let i = 0; i < 6; i++) {
    const r = i % 2 ? await request(g.port, '/', { method: 'POST', body: 'b' }) : await request(g.port, '/');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).backend, 'a');
  }
  assert.ok(g.report().retries >= 1);
});

test('a backend that resets before answering: GET is retried, POST is not, POST with the idempotent header is', async () => {
  const a = await backend('a');
  const reset = await backend('reset', (req) => req.socket.destroy());
  const g = await gate([state(reset), state(a)], { idempotentHeader: 'X-Idempotent', balance: 'round_robin', errorLimit: 1000 });
  // Send enough of each that both backends are picked first at least once.
  let postFailures = 0;
  for (let i = 0; i < 6; i++) {
    const get = await request(g.port, '/', { agent: false });
    assert.equal(get.status, 200, 'GET must be retried');
    const marked = await request(g.port, '/', { method: 'POST', body: 'x', headers: { 'X-Idempotent': '1' }, agent: false });
    assert.equal(marked.status, 200, 'a marked POST must be retried');
    const post = await request(g.port, '/', { method: 'POST', body: 'x', agent: false });
    if (post.status === 502) postFailures++;
    else assert.equal(post.status, 200);
  }
  assert.ok(postFailures >= 1, 'a plain POST that reached the resetting backend must fail, not be sent twice');
  assert.ok(reset.hits >= postFailures);
});

test('drain: the open request finishes, new requests go elsewhere; maint: in-flight GET is retried elsewhere', async () => {
  let release: (() => void) | undefined;
  const slow = await backend('slow', (_req, res) => {
    release = () => res.end('slow done');
  });
  const a = await backend('a');
  const g = await gate([state(slow), state(a, { health: 'down' })]);
  const pending = request(g.port, '/slow', { agent: false });
  await waitFor('the slow backend to get the request', () => release !== undefined, { deadline: 5000 });
  g.update([state(slow, { admin: 'drain' }), state(a)]);
  for (let i = 0; i < 4; i++) assert.equal(JSON.parse((await request(g.port, '/')).body).backend, 'a');
  release!();
  const done = await pending;
  assert.equal(done.status, 200);
  assert.equal(done.body, 'slow done');

  release = undefined;
  g.update([state(slow), state(a, { health: 'down' })]);
  const second = request(g.port, '/again', { agent: false });
  await waitFor('the second request to reach the slow backend', () => release !== undefined, { deadline: 5000 });
  g.update([state(slow, { admin: 'maint' }), state(a)]);
  const r = await second;
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).backend, 'a', 'the GET in flight on a backend put in maintenance is sent again elsewhere');
});

test('cookie affinity keeps a client on its node; client_address too', async () => {
  const a = await backend('a');
  const b = await backend('b');
  const g = await gate([state(a), state(b)], { balance: 'cookie' });
  const first = await request(g.port, '/');
  const cookie = String(first.headers['set-cookie']?.[0] ?? '');
  assert.match(cookie, /^SKYHA_WEB=(a|b); Path=\/; HttpOnly/);
  const node = /=(a|b);/.exec(cookie)![1];
  for (let i = 0; i < 6; i++) {
    const r = await request(g.port, '/', { headers: { Cookie: `other=1; SKYHA_WEB=${node}` } });
    assert.equal(JSON.parse(r.body).backend, node);
    assert.equal(r.headers['set-cookie'], undefined, 'no new cookie while the node serves');
  }
  const h = await gate([state(a), state(b)], { balance: 'client_address' });
  const by = new Set<string>();
  for (let i = 0; i < 6; i++) by.add(JSON.parse((await request(h.port, '/')).body).backend);
  assert.equal(by.size, 1);
});

test('an upgrade (websocket-style) becomes a tunnel both ways', async () => {
  const g = await gate([await upgradeEchoBackend('u')]);
  await assertTunnel(g.port);
});

test('tcp mode passes bytes and skips a refusing node', async () => {
  const dead = await backend('dead');
  await dead.close();
  const g = await gate([state(dead), await tcpEchoBackend('echo')], { mode: 'tcp' });
  await assertTcpEcho(g.port, 3);
});

test('TLS termination with the configured certificate', async () => {
  const tls = await gateCertificate(mkdtempSync(join(tmpdir(), 'skyha-gate-tls-')));
  const a = await backend('a');
  const g = await gate([state(a)], { tls: { cert: tls.cert, key: tls.key } });
  const got = await tlsGet(g.port, tls.caPem);
  assert.match(got, /^HTTP\/1\.1 200 /);
  assert.match(got, /"x-forwarded-proto":"https"/);
});

test('a backend slower than slow_p99 gets no new requests (latency ejection); the gate still uses it if it is the only one', async () => {
  const fast = await backend('fast');
  const slow = await backend('slow', (req, res, b) => setTimeout(() => b.handler(req, res), 150));
  const g = await gate([state(fast), state(slow)], { slowP99: 60 });
  const loadUntil = async (cond: () => boolean): Promise<void> => {
    await waitFor(
      'the slow backend to be judged slow',
      async () => {
        await Promise.all(Array.from({ length: 8 }, () => request(g.port, '/')));
        return cond();
      },
      { deadline: 20_000, every: 1 },
    );
  };
  await loadUntil(() => g.report().backends.find((x) => x.node === 'slow')?.observed === 'slow');
  const before = slow.hits;
  const results = await Promise.all(Array.from({ length: 40 }, () => request(g.port, '/')));
  assert.ok(results.every((r) => r.status === 200));
  // Only trials (one per 500 ms at most) may reach it now.
  assert.ok(slow.hits - before <= 2, `slow backend got ${slow.hits - before} of 40 requests after ejection`);
  g.update([state(fast, { health: 'down' }), state(slow)]);
  const only = await request(g.port, '/');
  assert.equal(JSON.parse(only.body).backend, 'slow', 'the only backend offered is used even when judged slow');
});

test('no response head within response_timeout: 504, not retried', async () => {
  const hang = await backend('hang', () => undefined);
  const a = await backend('a');
  const g = await gate([state(hang), state(a, { health: 'down' })], { responseTimeout: 300 });
  const r = await request(g.port, '/', { agent: false });
  assert.equal(r.status, 504);
  assert.equal(a.hits, 0);
});
