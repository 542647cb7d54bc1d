/**
 * The real links on loopback, with real TLS: certificates are made here with
 * the cluster's own functions (cluster "test"). Conditions are awaited with a
 * deadline (waitFor), never with sleeps.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Writable } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';
import { after, afterEach, before, describe, it } from 'node:test';
import type { SkyhaError } from '../../../src/core/errors.js';
import { createCa, issueMemberCert, type PemPair } from '../../../src/link/certificates.js';
import { encodeFrame, FrameDecoder, type Envelope } from '../../../src/link/frame.js';
import { RateLimitedLog } from '../../../src/link/rate-limited-log.js';
import { LINK_REASONS, TlsLinks, type LinkStats, type PeerAddress, type TlsLinksOptions } from '../../../src/link/tls-links.js';
import { createLogger } from '../../../src/observe/log.js';
import { waitFor } from '../../../src/testing/wait.js';

interface Msg {
  n: number;
  text?: string;
}

const HOST = '127.0.0.1';
/** Listens on a free loopback port with a full accept queue (one connection never accepted): SYNs to it are dropped. */
const BLACK_HOLE = [
  'import socket, sys',
  's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
  'c = socket.create_connection(s.getsockname())',
  'print(s.getsockname()[1], flush=True)',
  'sys.stdin.read()',
].join('\n');
/** Fast timings so that every test stays well under a second or two. */
const FAST = { keepaliveInterval: 50, idleTimeout: 500, backoff: { min: 10, max: 200 }, handshakeTimeout: 1000 } as const;

interface LogCapture {
  lines(): Array<Record<string, unknown>>;
}

function captureLog(): { logger: ReturnType<typeof createLogger>; capture: LogCapture } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ format: 'json', stream, level: 'debug' });
  return {
    logger,
    capture: {
      lines: () =>
        chunks
          .join('')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
    },
  };
}

// ---- certificates ----

let ca: PemPair;
let otherCa: PemPair;
const certs: Record<string, PemPair> = {};
let otherCaB: PemPair; // "b" of cluster test, signed by another CA
let otherClusterB: PemPair; // "b" of cluster "other", signed by our CA
let strangerD: PemPair; // a member of cluster test that no member lists as a peer

before(async () => {
  ca = await createCa('test');
  otherCa = await createCa('test');
  for (const n of ['a', 'b', 'c']) certs[n] = await issueMemberCert(ca, n, 'test');
  otherCaB = await issueMemberCert(otherCa, 'b', 'test');
  otherClusterB = await issueMemberCert(ca, 'b', 'other');
  strangerD = await issueMemberCert(ca, 'd', 'test');
});

// ---- members and cleanup ----

interface Member {
  name: string;
  links: TlsLinks<Msg>;
  got: Array<{ from: string; message: Msg }>;
  log: LogCapture;
  addr(): PeerAddress;
}

const open: Array<{ close(): unknown }> = [];

afterEach(async () => {
  const all = open.splice(0);
  await Promise.all(all.map((o) => o.close()));
});

function member(name: string, pem: PemPair, peers: Record<string, PeerAddress>, extra: Partial<TlsLinksOptions<Msg>> = {}, port = 0): Member {
  const { logger, capture } = captureLog();
  const links = new TlsLinks<Msg>({ self: name, cluster: 'test', tls: { ca: ca.certPem, cert: pem.certPem, key: pem.keyPem }, listen: { host: HOST, port }, peers, logger, ...FAST, ...extra });
  const got: Member['got'] = [];
  links.onReceive((from, message) => got.push({ from, message }));
  open.push(links);
  return { name, links, got, log: capture, addr: () => ({ host: HOST, port: links.port }) };
}

/** Starts members on free ports, then tells each where the others are. */
async function cluster(names: string[], extra: Partial<TlsLinksOptions<Msg>> = {}): Promise<Record<string, Member>> {
  const out: Record<string, Member> = {};
  for (const n of names) out[n] = member(n, certs[n]!, Object.fromEntries(names.filter((o) => o !== n).map((o) => [o, { host: HOST, port: 0 }])), extra);
  await Promise.all(Object.values(out).map((m) => m.links.start()));
  for (const m of Object.values(out)) for (const o of Object.values(out)) if (o !== m) m.links.setPeerAddress(o.name, o.addr());
  return out;
}

function allLinked(members: Member[]): boolean {
  return members.every((m) => Object.values(m.links.peerStatus()).every((s) => s.outbound === 'connected' && s.inbound));
}

/** A hand-driven TLS client: completes the handshake with any certificate and writes whatever frames a test crafts. */
interface RawClient {
  socket: TLSSocket;
  frames: Envelope[];
  closed: boolean;
  write(bytes: Buffer): void;
  close(): void;
}

async function rawClient(port: number, pem: PemPair | undefined, trust: string = ca.certPem): Promise<RawClient> {
  const socket = tls.connect({
    host: HOST,
    port,
    ca: trust,
    ...(pem ? { cert: pem.certPem, key: pem.keyPem } : {}),
    servername: 'a',
    minVersion: 'TLSv1.3',
    checkServerIdentity: () => undefined,
  });
  const decoder = new FrameDecoder();
  const c: RawClient = {
    socket,
    frames: [],
    closed: false,
    write: (bytes) => void socket.write(bytes),
    close: () => socket.destroy(),
  };
  socket.on('data', (chunk: Buffer) => c.frames.push(...decoder.push(chunk).frames));
  socket.on('error', () => undefined);
  socket.on('close', () => (c.closed = true));
  open.push({ close: () => socket.destroy() });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('close', () => reject(new Error('closed before the TLS handshake finished')));
  });
  return c;
}

function frame(from: string, body: Msg | undefined, over: Partial<Envelope> = {}): Buffer {
  return encodeFrame({ cluster: 'test', from, to: 'a', kind: body === undefined ? 'ping' : 'msg', ...(body === undefined ? {} : { body }), ...over });
}

/** A lone member "a" whose peers b and c are not running (not dialed): a target for hostile clients. */
async function target(extra: Partial<TlsLinksOptions<Msg>> = {}): Promise<Member> {
  const a = member('a', certs.a!, { b: { host: HOST, port: 0 }, c: { host: HOST, port: 0 } }, extra);
  await a.links.start();
  return a;
}

function refusedTotal(s: LinkStats): number {
  return Object.values(s.refused).reduce((x, y) => x + y, 0);
}

// ---- tests ----

describe('tls links: messages between members', () => {
  it('three members link up and exchange messages both ways; a message to self arrives on the next tick', async () => {
    const m = await cluster(['a', 'b', 'c']);
    const members = Object.values(m);
    await waitFor('every member linked both ways to every other', () => allLinked(members));
    let n = 0;
    for (const from of members) for (const to of members) if (from !== to) from.links.send(to.name, { n: n++, text: `${from.name}->${to.name}` });
    await waitFor('6 messages delivered', () => members.every((x) => x.got.length === 2));
    for (const x of members) {
      assert.deepEqual(
        x.got.map((g) => `${g.from}:${g.message.text}`).sort(),
        members.filter((o) => o !== x).map((o) => `${o.name}:${o.name}->${x.name}`),
      );
      const s = x.links.stats();
      assert.equal(s.sent, 2);
      assert.equal(s.received, 2);
      assert.equal(s.connects, 2);
      assert.equal(refusedTotal(s), 0);
      for (const st of Object.values(x.links.peerStatus())) assert.equal(typeof st.lastReceivedAt, 'number');
    }

    const a = m.a!;
    const before = a.got.length;
    const sent: Msg = { n: 99, text: 'self' };
    a.links.send('a', sent);
    assert.equal(a.got.length, before, 'not delivered synchronously');
    await waitFor('message to self', () => a.got.length === before + 1);
    assert.deepEqual(a.got.at(-1), { from: 'a', message: sent });
    assert.notEqual(a.got.at(-1)!.message, sent, 'a copy, as over the wire');
  });

  it('drops and counts what cannot be sent now: no connection, unknown peer, too large, backpressure', async () => {
    const lone = member('a', certs.a!, { b: { host: HOST, port: 0 } });
    lone.links.send('b', { n: 1 });
    lone.links.send('nobody', { n: 2 });
    assert.equal(lone.links.stats().dropped.notConnected, 2);

    const m = await cluster(['a', 'b'], { maxFrameBytes: 64 * 1024, maxPendingBytes: 20_000 });
    await waitFor('a and b linked', () => allLinked([m.a!, m.b!]));
    m.a!.links.send('b', { n: 0, text: 'x'.repeat(70_000) });
    assert.equal(m.a!.links.stats().dropped.tooLarge, 1);
    // Written in one turn of the event loop, 100 KB cannot all leave: the rest is over the bound.
    for (let i = 0; i < 20; i++) m.a!.links.send('b', { n: i, text: 'y'.repeat(5_000) });
    const s = m.a!.links.stats();
    assert.ok(s.dropped.backpressure > 0, `some dropped for backpressure: ${JSON.stringify(s.dropped)}`);
    assert.equal(s.sent + s.dropped.backpressure, 20);
    await waitFor('what was sent arrives', () => m.b!.got.length === s.sent);
    assert.deepEqual(m.b!.got.map((g) => g.message.n), [...Array(s.sent).keys()]);
  });

  it('a member that restarts on the same port is reconnected and receives again', async () => {
    const m = await cluster(['a', 'b']);
    const a = m.a!;
    await waitFor('a and b linked', () => allLinked([a, m.b!]));
    a.links.send('b', { n: 1 });
    await waitFor('b got the first message', () => m.b!.got.length === 1);

    const port = m.b!.links.port;
    await m.b!.links.close();
    await waitFor('a sees the link to b down', () => a.links.peerStatus().b?.outbound !== 'connected' && !a.links.peerStatus().b?.inbound);
    a.links.send('b', { n: 2 });
    assert.equal(a.links.stats().dropped.notConnected, 1);

    const b2 = member('b', certs.b!, { a: a.addr() }, {}, port);
    await b2.links.start();
    await waitFor('a and the new b linked', () => allLinked([a, b2]));
    a.links.send('b', { n: 3 });
    b2.links.send('a', { n: 4 });
    await waitFor('both directions work again', () => b2.got.length === 1 && a.got.some((g) => g.message.n === 4));
    assert.deepEqual(b2.got, [{ from: 'a', message: { n: 3 } }]);
    assert.equal(a.links.stats().reconnects, 1);
  });

  it('onUp tells each time the link to a peer comes up, and a message sent then arrives', async () => {
    const m = await cluster(['a', 'b']);
    const a = m.a!;
    const ups: string[] = [];
    a.links.onUp((peer) => {
      ups.push(peer);
      a.links.send(peer, { n: 100 + ups.length });
    });
    await waitFor('b got what a sent when its link came up', () => m.b!.got.some((g) => g.message.n === 101));
    const port = m.b!.links.port;
    await m.b!.links.close();
    await waitFor('a sees the link to b down', () => a.links.peerStatus().b?.outbound !== 'connected');
    const b2 = member('b', certs.b!, { a: a.addr() }, {}, port);
    await b2.links.start();
    await waitFor('the new b got what a sent when the link came up again', () => b2.got.some((g) => g.message.n === 102));
    assert.deepEqual(ups, ['b', 'b']);
  });

  it('start() rejects with the listen error when the port is taken, and close() still resolves', async () => {
    const a = await target();
    const twin = member('a', certs.a!, {}, {}, a.links.port);
    await assert.rejects(twin.links.start(), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
    await twin.links.close();
  });

  it('refuses unusable TLS material at construction with a clear error', () => {
    const { logger } = captureLog();
    const base = { self: 'a', cluster: 'test', listen: { host: HOST, port: 0 }, peers: {}, logger };
    assert.throws(() => new TlsLinks({ ...base, tls: { ca: ca.certPem, cert: certs.a!.certPem, key: 'not a key' } }), (e: SkyhaError) => e.code === 'SKYHA_ERR_CONFIG_TLS' && /links/.test(e.message));
    assert.throws(() => new TlsLinks({ ...base, tls: { ca: ca.certPem, cert: certs.a!.certPem, key: certs.b!.keyPem } }), (e: SkyhaError) => e.code === 'SKYHA_ERR_CONFIG_TLS');
    assert.throws(() => new TlsLinks({ ...base, tls: { ca: ca.certPem, cert: certs.a!.certPem, key: certs.a!.keyPem }, keepaliveInterval: 500, idleTimeout: 500 }), RangeError);
  });

  it('close() leaves no handle behind: no socket, server, timer or immediate', async () => {
    const kinds = ['TCPSocketWrap', 'TCPServerWrap', 'TCPWRAP', 'TLSWRAP', 'Timeout', 'Immediate'];
    const count = (): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const k of process.getActiveResourcesInfo()) if (kinds.includes(k)) out[k] = (out[k] ?? 0) + 1;
      return out;
    };
    await waitFor('earlier tests released their handles', () => Object.keys(count()).length === 0);
    const m = await cluster(['a', 'b', 'c']);
    await waitFor('linked', () => allLinked(Object.values(m)));
    m.a!.links.send('a', { n: 1 }); // an immediate still pending at close
    m.a!.links.send('b', { n: 2 });
    assert.ok((count().TCPServerWrap ?? 0) >= 3);
    await Promise.all(Object.values(m).map((x) => x.links.close()));
    await waitFor(`no handle left (${JSON.stringify(count())})`, () => Object.keys(count()).length === 0, { deadline: 1000 });
    await m.a!.links.close(); // idempotent
  });
});

describe('tls links: who may talk', () => {
  it('refuses a member whose certificate another CA signed: counted on the receiving side, nothing delivered', async () => {
    const a = await target();
    // Trusts our CA (so it accepts a's certificate), but presents a certificate of another CA.
    const evil = member('b', otherCaB, { a: a.addr() });
    await evil.links.start();
    await waitFor('a counted the refusal', () => a.links.stats().refused.unauthenticated >= 1);
    evil.links.send('a', { n: 1 });
    assert.notEqual(evil.links.peerStatus().a?.outbound, 'connected', 'a never said hello to it');
    assert.equal(evil.links.stats().connects, 0);
    assert.equal(a.got.length, 0);
    assert.equal(a.links.peerStatus().b?.inbound, false);
    const lines = a.log.lines().filter((l) => l.reason === LINK_REASONS.unauthenticated);
    assert.ok(lines.length >= 1);
    assert.match(String(lines[0]!.msg), /UNABLE_TO_VERIFY|certificate/);
  });

  it('refuses a certificate of another cluster (same CA, O mismatch), one of no known peer, and a client without one', async () => {
    const a = await target();
    const foreign = await rawClient(a.links.port, otherClusterB);
    foreign.write(frame('b', { n: 1 }));
    await waitFor('other cluster refused and closed', () => foreign.closed && a.links.stats().refused.unauthenticated === 1);
    const stranger = await rawClient(a.links.port, strangerD);
    stranger.write(frame('d', { n: 2 }));
    await waitFor('stranger refused and closed', () => stranger.closed && a.links.stats().refused.unauthenticated === 2);
    const anonymous = await rawClient(a.links.port, undefined);
    anonymous.write(frame('b', { n: 3 }));
    await waitFor('anonymous refused and closed', () => anonymous.closed && a.links.stats().refused.unauthenticated === 3);
    assert.equal(a.got.length, 0);
    assert.equal(foreign.frames.length + stranger.frames.length + anonymous.frames.length, 0, 'no hello for refused clients');
    assert.match(a.log.lines().map((l) => String(l.msg)).join('\n'), /cluster "other", not test/);
  });

  it('refuses garbage bytes and a silent client, and the links keep working undisturbed', async () => {
    const m = await cluster(['a', 'b'], { handshakeTimeout: 300 });
    const a = m.a!;
    const b = m.b!;
    await waitFor('a and b linked', () => allLinked([a, b]));
    const garbage = net.connect(a.links.port, HOST);
    garbage.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    const noise = net.connect(a.links.port, HOST);
    noise.write(Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919) % 256)));
    const silent = net.connect(a.links.port, HOST);
    for (const s of [garbage, noise, silent]) {
      s.on('error', () => undefined);
      open.push({ close: () => s.destroy() });
    }
    await waitFor('three handshakes refused', () => a.links.stats().refused.handshakeFailed === 3);
    await waitFor('and their sockets closed', () => garbage.closed && noise.closed && silent.closed);

    b.links.send('a', { n: 7 });
    a.links.send('b', { n: 8 });
    await waitFor('both got their message', () => a.got.length === 1 && b.got.length === 1);
    assert.deepEqual(a.got, [{ from: 'b', message: { n: 7 } }]);
    assert.deepEqual(b.got, [{ from: 'a', message: { n: 8 } }]);
    assert.equal(a.links.stats().connects + b.links.stats().connects, 2, 'no link was cut');
  });

  it('logs refusals at a rate limit: one line per reason, then the count of suppressed ones', async () => {
    const a = await target();
    for (let i = 0; i < 12; i++) {
      const s = net.connect(a.links.port, HOST);
      s.on('error', () => undefined);
      s.end('garbage');
      open.push({ close: () => s.destroy() });
    }
    await waitFor('12 refused', () => a.links.stats().refused.handshakeFailed === 12);
    const lines = () => a.log.lines().filter((l) => l.reason === LINK_REASONS.handshakeFailed);
    assert.equal(lines().length, 1);
    await a.links.close(); // flushes the suppressed count
    assert.equal(lines().length, 2);
    assert.equal(lines()[1]!.suppressed, 11);
  });

  it('bounds inbound connections per source', async () => {
    const a = await target({ maxInbound: { perSource: 2, total: 64 } });
    const sockets = [0, 1, 2].map(() => {
      const s = net.connect(a.links.port, HOST);
      s.on('error', () => undefined);
      open.push({ close: () => s.destroy() });
      return s;
    });
    await waitFor('one of the three refused', () => a.links.stats().refused.overLimit === 1 && sockets.some((s) => s.closed));
    assert.equal(sockets.filter((s) => s.closed).length, 1);
  });

  it('the dialer refuses a listener that is not the peer it dialed', async () => {
    const m = await cluster(['a', 'c']);
    const a = member('a', certs.a!, { b: { host: HOST, port: m.c!.links.port } }, {}, 0);
    await a.links.start();
    await waitFor('a refused c posing as b', () => a.links.stats().refused.unauthenticated >= 1);
    assert.notEqual(a.links.peerStatus().b?.outbound, 'connected');
    a.links.send('b', { n: 1 });
    assert.equal(a.links.stats().dropped.notConnected, 1);
  });
});

describe('tls links: what an authenticated member may send', () => {
  async function linkedB(extra: Partial<TlsLinksOptions<Msg>> = {}): Promise<{ a: Member; b: RawClient }> {
    const a = await target(extra);
    const b = await rawClient(a.links.port, certs.b!);
    await waitFor('a says hello to b', () => b.frames.length >= 1);
    assert.deepEqual(b.frames[0], { cluster: 'test', from: 'a', to: 'b', kind: 'ping' });
    return { a, b };
  }

  it('drops envelopes with a forged from, another cluster or another addressee; the connection stays', async () => {
    const { a, b } = await linkedB();
    b.write(frame('c', { n: 1 }));
    b.write(frame('b', { n: 2 }, { cluster: 'other' }));
    b.write(frame('b', { n: 3 }, { to: 'c' }));
    b.write(frame('c', undefined)); // even a ping must be honest
    b.write(frame('b', { n: 4 }));
    await waitFor('the honest message arrives', () => a.got.length === 1);
    assert.deepEqual(a.got, [{ from: 'b', message: { n: 4 } }]);
    const s = a.links.stats();
    assert.deepEqual({ impersonation: s.refused.impersonation, wrongCluster: s.refused.wrongCluster, misaddressed: s.refused.misaddressed }, { impersonation: 2, wrongCluster: 1, misaddressed: 1 });
    assert.equal(s.received, 1);
    assert.equal(b.closed, false);
    assert.equal(a.links.peerStatus().b?.inbound, true);
  });

  it('closes the connection on an oversized frame, before reading its payload', async () => {
    const { a, b } = await linkedB({ maxFrameBytes: 1024 });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1_000_000, 0);
    b.write(header);
    await waitFor('malformed counted and closed', () => a.links.stats().refused.malformed === 1 && b.closed);
    assert.equal(a.links.peerStatus().b?.inbound, false);
  });

  it('closes the connection on a frame of bad JSON, after delivering the good frames before it', async () => {
    const { a, b } = await linkedB();
    const bad = Buffer.from([0, 0, 0, 6, 1, 0x7b, 0x6e, 0x6f, 0x70, 0x65]);
    b.write(Buffer.concat([frame('b', { n: 1 }), bad, frame('b', { n: 2 })]));
    await waitFor('malformed counted and closed', () => a.links.stats().refused.malformed === 1 && b.closed);
    assert.deepEqual(a.got, [{ from: 'b', message: { n: 1 } }]);
  });

  it('with a validator, drops a body of the wrong shape and keeps the connection', async () => {
    const isMsg = (x: unknown): x is Msg => typeof x === 'object' && x !== null && typeof (x as Msg).n === 'number';
    const { a, b } = await linkedB({ validate: isMsg });
    b.write(encodeFrame({ cluster: 'test', from: 'b', to: 'a', kind: 'msg', body: { nope: true } }));
    b.write(frame('b', { n: 5 }));
    await waitFor('the valid one arrives', () => a.got.length === 1);
    assert.equal(a.links.stats().refused.malformed, 1);
    assert.equal(b.closed, false);
  });

  it('a receive handler that throws is logged and does not break the link', async () => {
    const { a, b } = await linkedB();
    let calls = 0;
    a.links.onReceive(() => {
      calls++;
      throw new Error('bug in the receiver');
    });
    b.write(Buffer.concat([frame('b', { n: 1 }), frame('b', { n: 2 })]));
    await waitFor('both handled', () => calls === 2);
    assert.equal(b.closed, false);
    assert.ok(a.log.lines().some((l) => l.reason === LINK_REASONS.handlerFailed));
  });
});

describe('tls links: liveness of connections', () => {
  /** A TLS listener with b's certificate that completes handshakes but sends nothing (or one hello). */
  async function silentServer(hello: boolean): Promise<{ port: number; accepted: () => number }> {
    let accepted = 0;
    const sockets = new Set<TLSSocket>();
    const server = tls.createServer({ requestCert: true, rejectUnauthorized: true, ca: ca.certPem, cert: certs.b!.certPem, key: certs.b!.keyPem, minVersion: 'TLSv1.3' }, (s) => {
      accepted++;
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
      if (hello) s.write(encodeFrame({ cluster: 'test', from: 'b', to: 'a', kind: 'ping' }));
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    open.push({
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    });
    return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted };
  }

  it('the dialer destroys a connection on which nothing arrives for idleTimeout, then redials', async () => {
    const srv = await silentServer(true);
    const a = member('a', certs.a!, { b: { host: HOST, port: srv.port } }, { keepaliveInterval: 50, idleTimeout: 300 });
    await a.links.start();
    await waitFor('connected on the hello', () => a.links.peerStatus().b?.outbound === 'connected');
    const upAt = Date.now();
    await waitFor('dropped for silence', () => a.links.peerStatus().b?.outbound !== 'connected', { deadline: 3000 });
    const downAfter = Date.now() - upAt;
    assert.ok(downAfter >= 150 && downAfter < 1500, `down after ${downAfter} ms`);
    await waitFor('redialed', () => srv.accepted() >= 2 && a.links.stats().connects >= 2, { deadline: 3000 });
    assert.ok(a.log.lines().some((l) => l.reason === LINK_REASONS.idleTimeout));
  });

  it('the dialer gives up a server that never says hello after handshakeTimeout, then redials', async () => {
    const srv = await silentServer(false);
    const a = member('a', certs.a!, { b: { host: HOST, port: srv.port } }, { handshakeTimeout: 200 });
    await a.links.start();
    await waitFor('redialed after the timeout', () => srv.accepted() >= 2, { deadline: 3000 });
    assert.equal(a.links.stats().connects, 0);
    assert.ok(a.log.lines().some((l) => l.reason === LINK_REASONS.dialFailed));
  });

  it('a dial whose SYN was lost is started over as soon as the peer is heard, not when TCP sends it again', async () => {
    // A listener whose accept queue is full drops every SYN, as a partition does; TCP resends one only after a second.
    // The peer must be heard within that second, or TCP's own resend connects first and the attempt proves nothing:
    // on a loaded machine (both cores busy) b's start and handshake took that long. Such an attempt is said and
    // tried again, three times at most; one in time that does not restart the dial fails.
    for (let attempt = 1; ; attempt++) {
      const hole = spawn('python3', ['-c', BLACK_HOLE], { stdio: ['pipe', 'pipe', 'inherit'] });
      open.push({ close: () => hole.kill('SIGKILL') });
      const port = Number(await new Promise<string>((resolve) => hole.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim()))));
      const a = member('a', certs.a!, { b: { host: HOST, port } }, { handshakeTimeout: 10_000, connectTimeout: 10_000 });
      const dialedAt = performance.now();
      await a.links.start();
      await waitFor('a dialing b', () => a.links.peerStatus().b?.outbound === 'connecting');
      // The partition heals: the port now has b behind it, and b speaks to a first.
      const b = member('b', certs.b!, { a: a.addr() }, {}, port);
      hole.kill('SIGKILL');
      await new Promise((resolve) => hole.once('exit', resolve));
      await b.links.start();
      await waitFor('b linked to a', () => b.links.peerStatus().a?.outbound === 'connected');
      b.links.send('a', { n: 1 });
      const heardAfter = performance.now() - dialedAt;
      await waitFor('a linked to b', () => a.links.peerStatus().b?.outbound === 'connected', { deadline: 5000 });
      const restarted = a.links.stats().dialsRestarted;
      await Promise.all([a.links.close(), b.links.close()]);
      // Also inconclusive: the dial failed instead (under load the hole had not filled its accept queue yet, so the SYN
      // was taken, and its close reset the connection).
      const dialFailed = a.log.lines().some((l) => l.reason === LINK_REASONS.dialFailed);
      if ((heardAfter > 800 || dialFailed) && restarted === 0 && attempt < 3) {
        process.stdout.write(`# attempt ${attempt}: b heard ${Math.round(heardAfter)} ms after a's dial${dialFailed ? ', which had failed' : ''}: nothing to tell; again\n`);
        continue;
      }
      assert.equal(restarted, 1, `the lost dial was started over when b was heard (${Math.round(heardAfter)} ms after it)`);
      assert.equal(a.links.stats().connects, 1);
      break;
    }
  });

  it('the listener closes an inbound connection that goes silent, and pings the ones that do not', async () => {
    const a = await target({ keepaliveInterval: 50, idleTimeout: 300 });
    const b = await rawClient(a.links.port, certs.b!);
    await waitFor('a pings b while idle', () => b.frames.length >= 3);
    assert.ok(b.frames.every((f) => f.kind === 'ping' && f.from === 'a' && f.to === 'b'));
    await waitFor('a closes the silent connection', () => b.closed, { deadline: 3000 });
    assert.equal(a.links.peerStatus().b?.inbound, false);
  });
});

describe('rate-limited log', () => {
  it('writes one line per key per interval and reports what it suppressed', () => {
    const { logger, capture } = captureLog();
    let t = 0;
    const log = new RateLimitedLog(logger, { intervalMs: 5000, clock: { now: () => t } });
    assert.equal(log.log('warn', 'R1', { x: 1 }, 'first'), true);
    assert.equal(log.log('warn', 'R1', { x: 2 }, 'second'), false);
    assert.equal(log.log('warn', 'R2', {}, 'other reason'), true);
    t = 4999;
    assert.equal(log.log('warn', 'R1', {}, 'third'), false);
    t = 5000;
    assert.equal(log.log('error', 'R1', { x: 3 }, 'fourth'), true);
    assert.equal(log.log('info', 'R1', {}, 'p1', 'R1:peer-b'), true, 'an explicit key has its own budget');
    log.log('info', 'R1', {}, 'p1 again', 'R1:peer-b');
    log.flush();
    log.flush();
    const lines = capture.lines();
    assert.deepEqual(
      lines.map((l) => [l.reason, l.msg, l.suppressed]),
      [
        ['R1', 'first', undefined],
        ['R2', 'other reason', undefined],
        ['R1', 'fourth (2 similar lines suppressed)', 2],
        ['R1', 'p1', undefined],
        ['R1', '1 similar lines suppressed', 1],
      ],
    );
    assert.equal(lines[2]!.level, 50);
    assert.equal(lines[2]!.x, 3);
  });
});

after(() => {
  // Nothing may outlive the tests: afterEach closed every member and client.
  assert.equal(open.length, 0);
});
