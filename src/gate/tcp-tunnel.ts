/**
 * TCP mode: one client connection, one backend connection, bytes both ways.
 * The backend is picked per connection (client address hashing keeps a
 * client on one node when `balance: client_address`); a connection that
 * cannot be made is tried on another node, since nothing was sent yet. Once
 * connected there is no retry: the gate cannot know what the bytes meant.
 */
import { connect, type Socket } from 'node:net';
import type { BackendSlot, InFlight } from './backend-slot.js';
import type { BuiltinGate } from './builtin-gate.js';

export class TcpTunnel implements InFlight {
  private upstream: Socket | null = null;
  private slot: BackendSlot | null = null;
  private tried: Set<string> | undefined;
  private done = false;
  /** Client bytes that arrived before the backend connection was up. */
  private early: Buffer[] = [];
  private readonly clientAddress: string;

  constructor(
    private readonly gate: BuiltinGate,
    private readonly client: Socket,
  ) {
    const addr = client.remoteAddress ?? '';
    this.clientAddress = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
    gate.connections.add(this);
    gate.requests++;
    client.on('error', () => undefined);
    client.on('close', () => this.end());
    client.on('data', (d: Buffer) => {
      if (this.upstream === null) {
        this.early.push(d);
        client.pause();
      } else if (!this.upstream.write(d)) client.pause();
    });
    client.on('end', () => this.upstream?.end());
    this.dial();
  }

  destroy(): void {
    this.client.destroy();
  }

  abort(): void {
    this.end();
  }

  private dial(): void {
    const slot = this.gate.pick({ clientKey: this.clientAddress, affinity: undefined, tried: this.tried, mayTrial: false });
    if (slot === undefined) {
      this.gate.failed++;
      this.end();
      return;
    }
    this.slot = slot;
    slot.requests++;
    slot.lastRequestAt = Date.now();
    slot.inFlight.add(this);
    const socket = connect({ host: slot.state.host, port: slot.state.port, noDelay: true });
    const started = performance.now();
    socket.setTimeout(this.gate.options.connectTimeout);
    const failed = (): void => {
      socket.destroy();
      if (this.done) return;
      slot.inFlight.delete(this);
      slot.errors++;
      slot.observed.failure();
      (this.tried ??= new Set()).add(slot.node);
      this.gate.retries++;
      slot.retries++;
      this.dial();
    };
    socket.once('timeout', failed);
    socket.once('error', failed);
    socket.once('connect', () => {
      socket.removeListener('timeout', failed);
      socket.removeListener('error', failed);
      socket.setTimeout(0);
      socket.on('error', () => undefined);
      if (this.done) {
        socket.destroy();
        return;
      }
      slot.observed.success(performance.now() - started);
      this.upstream = socket;
      for (const d of this.early) socket.write(d);
      this.early = [];
      if (this.client.isPaused()) this.client.resume();
      socket.on('data', (d: Buffer) => {
        if (!this.client.write(d)) socket.pause();
      });
      socket.on('drain', () => this.client.resume());
      this.client.on('drain', () => socket.resume());
      socket.on('end', () => this.client.end());
      socket.on('close', () => this.end());
    });
  }

  private end(): void {
    if (this.done) return;
    this.done = true;
    this.gate.connections.delete(this);
    this.slot?.inFlight.delete(this);
    this.upstream?.destroy();
    this.client.destroy();
  }
}
