/**
 * The agent's control socket outlives its clients: an application stopped
 * while its barrier waited leaves a connection that errors (EPIPE) when the
 * answer comes. Found on namespace hosts: readline re-emitted the socket's
 * error and the agent died of an unhandled 'error' event.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ControlSocket } from '../../../src/agent/control-socket.js';
import { waitFor } from '../../../src/testing/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'skyha-control-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function ask(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let got = '';
    c.on('data', (b) => {
      got += b.toString();
      if (got.includes('\n')) {
        c.end();
        resolve(got.trim());
      }
    });
    c.on('error', reject);
    c.write(`${line}\n`);
  });
}

describe('control socket', () => {
  it('a client whose connection fails before its answer does not take the socket (or the agent) down', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const cs = new ControlSocket(join(dir, 'control.sock'), async (req) => {
      if (req.op === 'barrier') await held;
      return { ok: true, member: 'n1' };
    });
    await cs.start();
    try {
      const client = connect(cs.path);
      client.on('error', () => undefined);
      client.write(`${JSON.stringify({ op: 'barrier', module: 'db', timeoutMs: 1000 })}\n`);
      const sockets = (cs as unknown as { sockets: Set<Socket> }).sockets;
      await waitFor('the barrier request to be held', () => sockets.size === 1);
      // What the kernel reports when the answer is written to a connection whose client is gone.
      [...sockets][0]!.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      client.destroy();
      release();
      assert.match(await ask(cs.path, JSON.stringify({ op: 'whoami' })), /"ok":true/);
    } finally {
      await cs.close();
    }
  });
});
