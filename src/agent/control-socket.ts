/**
 * The agent's local control socket, `<data_dir>/run/control.sock` (mode
 * 0600: whoever may read the agent's data may operate it). Commands run on a
 * node (`skyha drain`, and later `skyha barrier`) reach their agent here
 * without credentials of the HTTPS API. One JSON object per line each way.
 */
import { chmodSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { AdminState } from '../logic/farm-pool.js';

/** What an operator may ask of a mirror module (see mirror-role.ts): a switchover, a forced failover, a reset of an out-of-service node. */
export type MirrorCommand = 'switchover' | 'force-failover' | 'reset';

export type ControlRequest =
  | { op: 'admin'; module: string; node: string; state: AdminState; by: string }
  | { op: 'barrier'; module: string; timeoutMs: number }
  /** `node`: the switchover's target (optional), the node to promote (force-failover) or to reset. */
  | { op: 'mirror'; module: string; command: MirrorCommand; node?: string; by: string }
  /** Stop a module (it stays stopped, across restarts) or start it again: on `node`, or on every node of the module (the API fans it out). */
  | { op: 'module'; module: string; command: 'stop' | 'start'; node?: string; by: string }
  /** Restart the module's application on `node` (a given-up or out-of-service module: clear that and start again). */
  | { op: 'restart'; module: string; node: string; by: string }
  | { op: 'whoami' };

export type ControlReply = { ok: true; member: string; detail?: string } | { ok: false; error: string };

export type ControlHandler = (request: ControlRequest) => ControlReply | Promise<ControlReply>;

export class ControlSocket {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly handle: ControlHandler,
  ) {}

  async start(): Promise<void> {
    // A socket file left by a killed agent would make listen fail; it is ours to replace.
    rmSync(this.path, { force: true });
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const lines = createInterface({ input: socket });
    // readline re-emits the socket's errors: a client gone before its answer (an application stopped while its
    // barrier waited, EPIPE) must not take the agent down with an unhandled 'error'.
    lines.on('error', () => undefined);
    lines.on('line', (line) => {
      void (async () => {
        let reply: ControlReply;
        try {
          reply = await this.handle(parse(line));
        } catch (err) {
          reply = { ok: false, error: (err as Error).message };
        }
        if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(reply) + '\n');
      })();
    });
  }
}

function parse(line: string): ControlRequest {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    throw new Error('expected one JSON object per line');
  }
  const r = req as Record<string, unknown>;
  if (r?.op === 'whoami') return { op: 'whoami' };
  if (r?.op === 'barrier') {
    if (typeof r.module !== 'string') throw new Error('barrier: expected a string "module"');
    if (typeof r.timeoutMs !== 'number' || !(r.timeoutMs > 0) || r.timeoutMs > 600_000) throw new Error('barrier: expected "timeoutMs" between 1 and 600000');
    return { op: 'barrier', module: r.module, timeoutMs: r.timeoutMs };
  }
  if (r?.op === 'mirror') {
    for (const k of ['module', 'by'] as const) if (typeof r[k] !== 'string') throw new Error(`mirror: expected a string "${k}"`);
    if (r.command !== 'switchover' && r.command !== 'force-failover' && r.command !== 'reset') throw new Error('mirror: expected "command" to be switchover, force-failover or reset');
    if (r.node !== undefined && typeof r.node !== 'string') throw new Error('mirror: expected "node" to be a string');
    if (r.command !== 'switchover' && r.node === undefined) throw new Error(`mirror: ${r.command} needs "node"`);
    return r as ControlRequest;
  }
  if (r?.op === 'module') {
    for (const k of ['module', 'by'] as const) if (typeof r[k] !== 'string') throw new Error(`module: expected a string "${k}"`);
    if (r.command !== 'stop' && r.command !== 'start') throw new Error('module: expected "command" to be stop or start');
    if (r.node !== undefined && typeof r.node !== 'string') throw new Error('module: expected "node" to be a string');
    return r as ControlRequest;
  }
  if (r?.op === 'restart') {
    for (const k of ['module', 'node', 'by'] as const) if (typeof r[k] !== 'string') throw new Error(`restart: expected a string "${k}"`);
    return r as ControlRequest;
  }
  if (r?.op === 'admin') {
    for (const k of ['module', 'node', 'by'] as const) if (typeof r[k] !== 'string') throw new Error(`admin: expected a string "${k}"`);
    if (r.state !== 'ready' && r.state !== 'drain' && r.state !== 'maint') throw new Error('admin: expected "state" to be ready, drain or maint');
    return r as ControlRequest;
  }
  throw new Error(`unknown op ${JSON.stringify(r?.op)}`);
}

/** Sends one request to the control socket at `path` and returns the reply. */
export function controlRequest(path: string, request: ControlRequest, timeout = 5000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer on ${path} within ${timeout} ms`));
      }, timeout);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => socket.write(JSON.stringify(request) + '\n'));
      const lines = createInterface({ input: socket });
      // readline re-emits the socket's errors (a stale socket file: ECONNREFUSED); the socket's handler answers them.
      lines.on('error', () => undefined);
      lines.once('line', (line) => {
        clearTimeout(timer);
        socket.end();
        try {
          resolve(JSON.parse(line) as ControlReply);
        } catch {
          reject(new Error(`a malformed answer on ${path}`));
        }
      });
    }
  });
}
