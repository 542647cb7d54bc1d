/**
 * Keep-alive connections from the gate to one backend. A request takes an
 * idle connection if there is one (most recently used first: the one least
 * likely to have been closed by the backend's idle timeout), else opens a
 * new one while under the limit, else waits in a bounded queue.
 *
 * Each connection gets its listeners once, for its whole life, and they
 * forward to whoever uses it now (an exchange), or handle it while idle.
 * Idle and response timeouts are not socket timers re-armed per request:
 * the gate sweeps every 100 ms and compares timestamps (see BuiltinGate),
 * which measured cheaper per request than Node's socket timeouts.
 */
import { connect, type Socket } from 'node:net';

export interface PoolLimits {
  /** Connections to this backend, busy and idle together. */
  readonly maxConnections: number;
  /** Requests waiting for a connection; beyond it, acquire fails at once. */
  readonly maxQueue: number;
  readonly connectTimeout: number;
  /** An idle connection unused this long is closed (before the backend closes it itself). */
  readonly idleTimeout: number;
}

export type AcquireError = 'connect-refused' | 'connect-timeout' | 'connect-error' | 'queue-full' | 'closed';

export interface Acquirer {
  onConnection(socket: UpstreamSocket): void;
  onConnectFailed(error: AcquireError, detail: string): void;
}

/** Who uses a connection now; its events go there. */
export interface UpstreamUser {
  onUpstreamData(d: Buffer): void;
  /** The connection ended (the backend closed it, reset it, or it was destroyed). */
  onUpstreamClose(): void;
  onUpstreamDrain(): void;
}

export interface UpstreamSocket extends Socket {
  user: UpstreamUser | null;
  pool: UpstreamPool;
  idleSince: number;
}

export class UpstreamPool {
  private readonly idle: UpstreamSocket[] = [];
  private readonly waiting: Acquirer[] = [];
  private total = 0;
  private closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly limits: PoolLimits,
  ) {}

  get connections(): number {
    return this.total;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  get queued(): number {
    return this.waiting.length;
  }

  acquire(who: Acquirer): void {
    if (this.closed) return who.onConnectFailed('closed', 'the backend was removed');
    const socket = this.idle.pop();
    if (socket) return who.onConnection(socket);
    if (this.total < this.limits.maxConnections) return this.open(who);
    if (this.waiting.length >= this.limits.maxQueue) return who.onConnectFailed('queue-full', `${this.waiting.length} requests already wait for a connection to ${this.host}:${this.port}`);
    this.waiting.push(who);
  }

  /** Withdraws a waiting acquirer (its request was aborted). */
  cancel(who: Acquirer): void {
    const i = this.waiting.indexOf(who);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** Gives back a connection that finished an exchange cleanly and may carry another. */
  release(socket: UpstreamSocket, now: number): void {
    socket.user = null;
    if (this.closed || socket.destroyed) return this.discard(socket);
    const next = this.waiting.shift();
    if (next) return next.onConnection(socket);
    socket.idleSince = now;
    this.idle.push(socket);
  }

  /** A connection that must not be reused: destroyed; its close frees its place. */
  discard(socket: UpstreamSocket): void {
    socket.user = null;
    socket.destroy();
  }

  /** Closes idle connections and fails the queue (the backend left the pool, or the gate stops). */
  close(): void {
    this.closed = true;
    this.drainIdle();
    for (const w of this.waiting.splice(0)) w.onConnectFailed('closed', 'the backend was removed');
  }

  /** Closes the idle connections only (the backend is draining, or out). */
  drainIdle(): void {
    for (const s of this.idle.splice(0)) s.destroy();
  }

  /** Closes connections idle longer than the limit; called by the gate's sweep. */
  sweep(now: number): void {
    // The oldest are first: release pushes at the end.
    let n = 0;
    while (n < this.idle.length && now - this.idle[n]!.idleSince > this.limits.idleTimeout) n++;
    if (n > 0) for (const s of this.idle.splice(0, n)) s.destroy();
  }

  private unidle(socket: UpstreamSocket): void {
    const i = this.idle.indexOf(socket);
    if (i >= 0) this.idle.splice(i, 1);
  }

  private closedSocket(socket: UpstreamSocket): void {
    this.total--;
    this.unidle(socket);
    const user = socket.user;
    socket.user = null;
    user?.onUpstreamClose();
    // A place is free: open a connection for the next waiter.
    const next = this.waiting.shift();
    if (next) this.acquire(next);
  }

  private open(who: Acquirer): void {
    this.total++;
    // Reads land in one buffer shared by all connections (JS runs one callback at a time) and are copied
    // out at their exact size: cheaper than a fresh 64 KiB allocation per read and the stream machinery.
    const socket = connect({
      host: this.host,
      port: this.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          const d = Buffer.allocUnsafe(n);
          d.set(buf.subarray(0, n));
          onData.call(socket, d);
          return true;
        },
      },
    }) as UpstreamSocket;
    socket.user = null;
    socket.pool = this;
    socket.idleSince = 0;
    let connected = false;
    socket.setTimeout(this.limits.connectTimeout);
    socket.once('timeout', () => {
      if (connected) return;
      socket.destroy();
      who.onConnectFailed('connect-timeout', `no connection to ${this.host}:${this.port} within ${this.limits.connectTimeout} ms`);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (connected) return;
      connected = true; // settled
      who.onConnectFailed(err.code === 'ECONNREFUSED' ? 'connect-refused' : 'connect-error', `${this.host}:${this.port}: ${err.code ?? err.message}`);
    });
    socket.on('close', onClose);
    socket.once('connect', () => {
      if (connected) return;
      connected = true;
      socket.setTimeout(0);
      socket.on('end', onEnd);
      socket.on('drain', onDrain);
      who.onConnection(socket);
    });
  }

  /** @internal the listeners below */
  static closed(socket: UpstreamSocket): void {
    socket.pool.closedSocket(socket);
  }

  static idleData(socket: UpstreamSocket): void {
    // While idle, any byte from the backend is a protocol error.
    socket.pool.unidle(socket);
    socket.destroy();
  }
}

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

// One set of listeners per connection for its whole life; `this` is the socket.
function onData(this: UpstreamSocket, d: Buffer): void {
  if (this.user !== null) this.user.onUpstreamData(d);
  else UpstreamPool.idleData(this);
}
function onEnd(this: UpstreamSocket): void {
  // The backend finished sending; for a close-delimited body that is its end. Idle: it closed the connection.
  if (this.user !== null) this.user.onUpstreamClose();
  else this.destroy();
}
function onClose(this: UpstreamSocket): void {
  UpstreamPool.closed(this);
}
function onDrain(this: UpstreamSocket): void {
  this.user?.onUpstreamDrain();
}
