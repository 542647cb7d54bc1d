/**
 * The barrier for applications written in Node.js: after its own fsync, an
 * application on the primary asks its agent to wait until every change made
 * before the call is durable on every in-sync secondary.
 *
 *   import { BarrierClient } from 'skyha/client';
 *   const skyha = new BarrierClient({ dataDir: '/var/lib/skyha' });
 *   await skyha.barrier('db');          // throws BarrierError if it cannot
 *
 * It talks to the agent's control socket (`<data_dir>/run/control.sock`,
 * one JSON line each way) over one connection kept open between calls, so
 * a barrier costs one local round trip on top of the replication's. Calls
 * are answered in order. Applications in other languages write the same
 * line to the socket, or run `skyha barrier MODULE`.
 */
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export class BarrierError extends Error {
  readonly code = 'SKYHA_ERR_BARRIER';
}

export interface BarrierClientOptions {
  /** The agent's data_dir (the socket is `run/control.sock` in it), or the socket's path. */
  readonly dataDir?: string;
  readonly socketPath?: string;
  /** Default time a barrier may take, ms (5000). */
  readonly timeoutMs?: number;
}

interface Waiter {
  resolve: (detail: string) => void;
  reject: (err: Error) => void;
}

export class BarrierClient {
  private readonly path: string;
  private socket: Socket | undefined;
  private readonly waiting: Waiter[] = [];

  constructor(private readonly o: BarrierClientOptions) {
    if (!o.socketPath && !o.dataDir) throw new TypeError('BarrierClient: give dataDir or socketPath');
    this.path = o.socketPath ?? join(o.dataDir!, 'run', 'control.sock');
  }

  /** Resolves (with the agent's words) once every change made before the call is durable on every in-sync secondary. */
  barrier(module: string, timeoutMs = this.o.timeoutMs ?? 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = this.connection();
      this.waiting.push({ resolve, reject });
      socket.write(`${JSON.stringify({ op: 'barrier', module, timeoutMs })}\n`);
    });
  }

  close(): void {
    this.socket?.end();
    this.socket = undefined;
  }

  private connection(): Socket {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const socket = connect(this.path);
    this.socket = socket;
    const fail = (err: Error): void => {
      if (this.socket === socket) this.socket = undefined;
      for (const w of this.waiting.splice(0)) w.reject(new BarrierError(`barrier: the agent's control socket ${this.path}: ${err.message}`));
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('closed')));
    const lines = createInterface({ input: socket });
    lines.on('error', () => undefined); // the socket's own 'error' handler answers the waiting calls
    lines.on('line', (line) => {
      const w = this.waiting.shift();
      if (!w) return;
      let reply: { ok: boolean; detail?: string; error?: string };
      try {
        reply = JSON.parse(line) as typeof reply;
      } catch {
        w.reject(new BarrierError(`barrier: a malformed answer on ${this.path}`));
        return;
      }
      if (reply.ok) w.resolve(reply.detail ?? 'durable');
      else w.reject(new BarrierError(reply.error ?? 'barrier failed'));
    });
    return socket;
  }
}
