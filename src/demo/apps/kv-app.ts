/**
 * The demo's mirror application: a tiny key-value store that keeps each key
 * in a file of its replicated directory and, before it answers a write,
 * makes the file durable (fsync) and calls the barrier, so that an answered
 * write survives the loss of this node. It runs on the primary only.
 *
 *   PUT /kv/KEY   (body: the value)   201 once durable here and on every in-sync secondary
 *   GET /kv/KEY                       200 with the value, or 404
 *   GET /kv                           200 {"node", "keys": [...]}
 *
 * Listens on the node's address (SKYHA_NODE_ADDRESS) and KV_PORT; keeps its
 * files in the first of SKYHA_DIRECTORIES.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { BarrierClient } from '../../client/barrier.js';

const node = process.env.SKYHA_NODE ?? 'unknown';
const module = process.env.SKYHA_MODULE ?? 'kv';
const host = process.env.SKYHA_NODE_ADDRESS ?? '127.0.0.1';
const port = Number(process.env.KV_PORT ?? 8090);
const dir = (process.env.SKYHA_DIRECTORIES ?? '').split(':')[0];
if (!dir) {
  process.stderr.write('kv-app: SKYHA_DIRECTORIES is empty: run me as a mirror module of skyha\n');
  process.exit(2);
}
const barrier = new BarrierClient({ socketPath: process.env.SKYHA_CONTROL_SOCKET!, timeoutMs: 5000 });
const KEY = /^[A-Za-z0-9_.-]{1,100}$/;

function put(key: string, value: Buffer): void {
  // Temp file, fsync, rename, fsync the directory: a crash leaves the old value or the new one.
  const tmp = join(dir!, `.${key}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, value);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir!, key));
  const d = openSync(dir!, 'r');
  try {
    fsyncSync(d);
  } finally {
    closeSync(d);
  }
}

const server = createServer((req, res) => {
  const send = (code: number, body: unknown) => res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body) + '\n');
  const url = new URL(req.url ?? '/', 'http://kv');
  if (url.pathname === '/kv' && req.method === 'GET') return send(200, { node, keys: readdirSync(dir!).filter((k) => !k.startsWith('.')).sort() });
  const m = /^\/kv\/(.+)$/.exec(url.pathname);
  if (!m || !KEY.test(m[1]!)) return send(404, { error: 'use /kv/KEY (letters, digits, _ . -)' });
  const key = m[1]!;
  if (req.method === 'GET') {
    try {
      return res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(readFileSync(join(dir!, key)));
    } catch {
      return send(404, { error: `no key ${key}` });
    }
  }
  if (req.method !== 'PUT') return send(405, { error: 'GET or PUT' });
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= 1024 * 1024) chunks.push(c);
  });
  req.on('end', () => {
    if (size > 1024 * 1024) return send(413, { error: 'at most 1 MiB' });
    try {
      put(key, Buffer.concat(chunks));
    } catch (err) {
      return send(500, { error: `not written: ${(err as Error).message}` });
    }
    barrier.barrier(module).then(
      () => send(201, { node, key, durable: 'here and on every in-sync secondary' }),
      (err: Error) => send(503, { node, key, error: `written here, but not acknowledged by the secondaries: ${err.message}` }),
    );
  });
});
server.listen(port, host);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    barrier.close();
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
}
