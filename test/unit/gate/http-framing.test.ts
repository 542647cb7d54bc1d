import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BodyFramer } from '../../../src/gate/http/body-framer.js';
import { cookieValue, HeadError, parseRequestHead, parseResponseHead } from '../../../src/gate/http/head.js';

function req(text: string, mark?: string) {
  const buf = Buffer.from(text, 'latin1');
  const end = buf.indexOf('\r\n\r\n');
  assert.ok(end >= 0, 'test head must end with CRLF CRLF');
  return parseRequestHead(buf, end, mark);
}

function res(text: string, method = 'GET') {
  const buf = Buffer.from(text, 'latin1');
  return parseResponseHead(buf, buf.indexOf('\r\n\r\n'), method);
}

function refused(text: string, status: number): void {
  assert.throws(
    () => req(text),
    (err: unknown) => err instanceof HeadError && err.status === status,
    `expected ${status} for ${JSON.stringify(text)}`,
  );
}

test('a plain GET: method, target, keep-alive, no body, forwarded lines kept in order', () => {
  const h = req('GET /a?b=1 HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\nX-Trace: 7\r\n\r\n');
  assert.equal(h.method, 'GET');
  assert.equal(h.target, '/a?b=1');
  assert.equal(h.minor, 1);
  assert.equal(h.keepAlive, true);
  assert.deepEqual(h.framing, { kind: 'none' });
  assert.equal(h.host, 'shop');
  assert.equal(h.forwardLines, 'Host: shop\r\nAccept: */*\r\nX-Trace: 7\r\n');
});

test('hop-by-hop headers and the ones Connection names are not forwarded; client forwarding claims are collected', () => {
  const h = req('GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nForwarded: for=10.0.0.1\r\nAccept: x\r\n\r\n');
  assert.equal(h.forwardLines, 'Host: a\r\nAccept: x\r\n');
  assert.equal(h.xForwardedFor, '10.0.0.1');
  assert.equal(h.forwarded, 'for=10.0.0.1');
});

test('Connection: close and HTTP/1.0 decide persistence', () => {
  assert.equal(req('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n').keepAlive, false);
  assert.equal(req('GET / HTTP/1.0\r\n\r\n').keepAlive, false);
  assert.equal(req('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').keepAlive, true);
});

test('body framing: Content-Length, chunked, repeated equal lengths', () => {
  assert.deepEqual(req('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n').framing, { kind: 'length', length: 12 });
  assert.deepEqual(req('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n').framing, { kind: 'length', length: 5 });
  assert.deepEqual(req('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n').framing, { kind: 'chunked' });
  assert.deepEqual(req('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n').framing, { kind: 'none' });
});

test('smuggling shapes and malformed heads are refused before anything is forwarded', () => {
  refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 400);
  refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400);
  refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400);
  refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n', 400);
  refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400);
  refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 400);
  refused('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400);
  refused('GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n', 400);
  refused('GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n', 400);
  refused('GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n', 400);
  refused('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400);
  refused('GET / HTTP/1.1\r\nAccept: x\r\n\r\n', 400);
  refused('GET /\r\n\r\n', 400);
  refused('GE(T / HTTP/1.1\r\nHost: a\r\n\r\n', 400);
  refused('GET / HTTP/2.0\r\nHost: a\r\n\r\n', 501);
});

test('an upgrade keeps Connection: upgrade and the Upgrade header', () => {
  const h = req('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n');
  assert.equal(h.upgrade, true);
  assert.match(h.forwardLines, /Connection: upgrade\r\n/);
  assert.match(h.forwardLines, /Upgrade: websocket\r\n/);
  assert.match(h.forwardLines, /Sec-WebSocket-Key: k\r\n/);
});

test('the idempotent mark header is seen case-insensitively', () => {
  assert.equal(req('POST / HTTP/1.1\r\nHost: a\r\nX-Idempotent: 1\r\n\r\n', 'x-idempotent').marked, true);
  assert.equal(req('POST / HTTP/1.1\r\nHost: a\r\n\r\n', 'x-idempotent').marked, false);
});

test('responses: framing by status and method, persistence, hop-by-hop removed', () => {
  const a = res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n\r\n');
  assert.equal(a.status, 200);
  assert.deepEqual(a.framing, { kind: 'length', length: 3 });
  assert.equal(a.keepAlive, true);
  assert.equal(a.forwardLines, 'Content-Length: 3\r\nX-A: 1\r\n');
  assert.deepEqual(res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n', 'HEAD').framing, { kind: 'none' });
  assert.deepEqual(res('HTTP/1.1 204 No Content\r\n\r\n').framing, { kind: 'none' });
  assert.deepEqual(res('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n').framing, { kind: 'none' });
  const untilClose = res('HTTP/1.1 200 OK\r\n\r\n');
  assert.deepEqual(untilClose.framing, { kind: 'close' });
  assert.equal(untilClose.keepAlive, false);
  assert.equal(res('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n').keepAlive, false);
  assert.equal(res('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n').keepAlive, false);
  const both = res('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n');
  assert.deepEqual(both.framing, { kind: 'chunked' });
  assert.doesNotMatch(both.forwardLines, /content-length/i);
  assert.equal(res('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').reasonPhrase, '');
  assert.throws(() => res('HTTP/1.1 2000 OK\r\n\r\n'), HeadError);
  assert.throws(() => res('ICY 200 OK\r\n\r\n'), HeadError);
});

test('cookieValue finds one cookie among several', () => {
  assert.equal(cookieValue('a=1; skyha_web=aws-1; b=2', 'skyha_web'), 'aws-1');
  assert.equal(cookieValue('skyha_webx=1', 'skyha_web'), undefined);
  assert.equal(cookieValue(undefined, 'x'), undefined);
});

/** Runs a framer over `stream` cut at `cuts`; returns the end offset in the whole stream, or -1. */
function endOf(framer: BodyFramer, stream: Buffer, cuts: number[]): number {
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < stream.length).sort((a, b) => a - b), stream.length]) {
    if (cut <= at) continue;
    const end = framer.feed(stream.subarray(at, cut));
    if (end >= 0) return at + end;
    at = cut;
  }
  return -1;
}

function chunked(parts: Buffer[], trailer = ''): Buffer {
  const pieces: Buffer[] = [];
  for (const p of parts) if (p.length > 0) pieces.push(Buffer.from(`${p.length.toString(16)};ext=1\r\n`), p, Buffer.from('\r\n'));
  pieces.push(Buffer.from(`0\r\n${trailer}\r\n`));
  return Buffer.concat(pieces);
}

test('the chunked framer finds the end of the body wherever the stream is cut (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 0, maxLength: 40 }), { maxLength: 6 }),
      fc.boolean(),
      fc.array(fc.nat(400), { maxLength: 8 }),
      fc.uint8Array({ maxLength: 10 }),
      (parts, withTrailer, cuts, after) => {
        const body = chunked(parts.map((p) => Buffer.from(p)), withTrailer ? 'X-Sum: 1\r\n' : '');
        const stream = Buffer.concat([body, Buffer.from(after)]);
        assert.equal(endOf(new BodyFramer({ kind: 'chunked' }), stream, cuts), body.length);
      },
    ),
    { numRuns: 500 },
  );
});

test('the length framer ends exactly after Content-Length bytes', () => {
  const f = new BodyFramer({ kind: 'length', length: 5 });
  assert.equal(f.feed(Buffer.from('abc')), -1);
  assert.equal(f.feed(Buffer.from('deXYZ')), 2);
  assert.equal(f.done, true);
});

test('malformed chunked bodies are errors, not guesses', () => {
  for (const bad of ['zz\r\n', '5\nabcde\r\n0\r\n\r\n', '3\r\nabcX\r\n', '1000000000000\r\n', '0\r\nX: 1\n\r\n']) {
    assert.throws(() => new BodyFramer({ kind: 'chunked' }, 'request').feed(Buffer.from(bad)), HeadError, bad);
  }
});
