/**
 * What the gate's tests on loopback share, whatever the engine: Node http
 * backends that say who answered, a client that collects the reply, an
 * echo server behind an upgrade, a TCP echo server. Everything made here is
 * closed when the test file ends.
 */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { writeFileSync } from 'node:fs';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { BackendState } from '../../src/gate/backend.js';
import { createCa, issueMemberCert } from '../../src/link/certificates.js';
import { waitFor } from '../../src/testing/wait.js';

export const HOST = '127.0.0.1';

export interface Backend {
  name: string;
  port: number;
  hits: number;
  /** The default answer: JSON naming the backend, with the request's method, url, body and headers. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  server: http.Server;
  close(): Promise<void>;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const open: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close().catch(() => undefined);
});

/** Closed, in reverse order of registration, when the test file ends. */
export function closeLater<T extends { close(): Promise<void> }>(thing: T): T {
  open.push(thing);
  return thing;
}

export async function backend(name: string, handler?: (req: IncomingMessage, res: ServerResponse, b: Backend) => void): Promise<Backend> {
  const b = {} as Backend;
  b.name = name;
  b.hits = 0;
  b.handler = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('x-backend', name);
      res.end(JSON.stringify({ backend: name, method: req.method, url: req.url, body: Buffer.concat(chunks).toString(), headers: req.headers }));
    });
  };
  const server = http.createServer((req, res) => {
    b.hits++;
    if (handler) handler(req, res, b);
    else b.handler(req, res);
  });
  // Longer than a gate keeps idle upstream connections, so that no request meets a connection the backend is closing.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  b.server = server;
  b.port = (server.address() as AddressInfo).port;
  b.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return closeLater(b);
}

export function state(b: { name: string; port: number }, patch: Partial<BackendState> = {}): BackendState {
  return { node: b.name, host: HOST, port: b.port, weight: 1, health: 'up', admin: 'ready', ...patch };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
after(() => agent.destroy());

/** One request through the gate (a shared keep-alive agent unless told otherwise); `chunked` sends the body in two writes without a length. */
export function request(port: number, path: string, opts: { method?: string; body?: string | Buffer; headers?: Record<string, string>; chunked?: boolean; agent?: http.Agent | false } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: opts.agent === undefined ? agent : opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.chunked && opts.body !== undefined) {
      const body = Buffer.from(opts.body);
      const half = Math.floor(body.length / 2);
      req.write(body.subarray(0, half));
      req.end(body.subarray(half));
    } else {
      req.end(opts.body);
    }
  });
}

/** Which backend answered (the default handler's JSON). */
export function servedBy(r: Reply): string {
  return JSON.parse(r.body).backend as string;
}

/** A backend that accepts `Upgrade: echo` and then answers every byte in upper case. */
export async function upgradeEchoBackend(node: string): Promise<BackendState> {
  const server = http.createServer();
  // An upgraded socket is no longer the server's: closeAllConnections() does not end it, so it is closed here.
  const tunnels = new Set<Socket>();
  server.on('upgrade', (_req, socket: Socket) => {
    tunnels.add(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(Buffer.from(d.toString().toUpperCase())));
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  closeLater({ close: () => new Promise<void>((resolve) => (tunnels.forEach((t) => t.destroy()), server.closeAllConnections(), server.close(() => resolve()))) });
  return { node, host: HOST, port: (server.address() as AddressInfo).port, weight: 1, health: 'up', admin: 'ready' };
}

/** Upgrades a connection through the gate on `port` and checks that bytes go both ways through the tunnel. */
export async function assertTunnel(port: number): Promise<void> {
  const c = connect(port, HOST);
  let got = '';
  c.on('data', (d: Buffer) => (got += d.toString()));
  c.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  await waitFor('the 101', () => got.includes('\r\n\r\n'), { deadline: 5000 });
  assert.match(got, /^HTTP\/1\.1 101 /);
  c.write('hello tunnel');
  await waitFor('the echo through the tunnel', () => got.includes('HELLO TUNNEL'), { deadline: 5000 });
  c.destroy();
}

/** A TCP server that sends back what it gets. */
export async function tcpEchoBackend(node: string): Promise<BackendState> {
  const echo = createTcpServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, HOST, resolve));
  closeLater({ close: () => new Promise<void>((resolve) => echo.close(() => resolve())) });
  return { node, host: HOST, port: (echo.address() as AddressInfo).port, weight: 1, health: 'up', admin: 'ready' };
}

/** Connects `times` times through the gate on `port` (TCP mode) and checks each echo. */
export async function assertTcpEcho(port: number, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const c = connect(port, HOST);
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.write(`ping ${i}`);
    await waitFor('the echo', () => got === `ping ${i}`, { deadline: 5000 });
    c.destroy();
  }
}

/** A certificate for the gate (name `gate`) and its key in `dir`, and the CA that signed them. */
export async function gateCertificate(dir: string): Promise<{ caPem: string; cert: string; key: string }> {
  const ca = await createCa('gate-test');
  const pair = await issueMemberCert(ca, 'gate', 'gate-test');
  writeFileSync(join(dir, 'cert.pem'), pair.certPem);
  writeFileSync(join(dir, 'key.pem'), pair.keyPem, { mode: 0o600 });
  return { caPem: ca.certPem, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

/** One GET over TLS to the gate on `port`, trusting `caPem`; the raw answer. */
export async function tlsGet(port: number, caPem: string): Promise<string> {
  const s = tlsConnect({ host: HOST, port, ca: caPem, servername: 'gate' });
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString()));
  s.write('GET /tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  await new Promise((resolve) => s.on('close', resolve));
  return got;
}
