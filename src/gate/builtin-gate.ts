/**
 * The built-in gate engine: a reverse proxy for one farm module, written for
 * Node.js on plain sockets (see http/head.ts for why not node:http). It
 * listens on the module's public port and sends each request (HTTP mode) or
 * connection (TCP mode) to a backend that takes new requests, by the
 * cluster's word (health up, admin ready, weight > 0) and by its own
 * observation (no run of connection failures, recent p99 under `slow_p99`).
 *
 * When every backend the cluster offers is judged failing or slow by the
 * gate itself, it still uses them: its own judgement only ranks nodes, it
 * never empties the pool by itself.
 */
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from '../observe/log.js';
import { defaultCookieName, type BackendState, type GateEngine, type GateReport } from './backend.js';
import { BackendSlot } from './backend-slot.js';
import { Balancer, type BalanceKind } from './balancer.js';
import { ClientConnection } from './http/client-connection.js';
import type { Observed } from './observed-health.js';
import { TcpTunnel } from './tcp-tunnel.js';

export interface BuiltinGateOptions {
  module: string;
  bind: string;
  port: number;
  mode: 'http' | 'tcp';
  balance: BalanceKind;
  connectTimeout: number;
  /** Time from the request's last byte to the response's head. */
  responseTimeout: number;
  /** Client connections held at once; more are refused until some close. */
  maxConnections: number;
  /** Connections to one backend; requests beyond wait in a queue of `maxQueue`. */
  backendConnections?: number;
  maxQueue?: number;
  /** A client connection idle this long (no request in progress) is closed. */
  clientIdleTimeout?: number;
  idempotentHeader?: string;
  slowP99?: number;
  /** Consecutive connection failures after which the gate itself stops sending to a backend (trials go on). */
  errorLimit?: number;
  cookieName?: string;
  tls?: { cert: string; key: string };
  logger?: Logger;
  /** The gate's own judgement of a backend changed. */
  onObserved?: (node: string, from: Observed, to: Observed, why: string) => void;
}

export interface PickContext {
  readonly clientKey: string;
  readonly affinity: string | undefined;
  readonly tried: ReadonlySet<string> | undefined;
  /** Trials of failing or slow backends ride on requests that may be retried. */
  readonly mayTrial: boolean;
}

const SWEEP_EVERY = 100;
/**
 * Upstream connections idle longer than this are closed by the gate before a
 * backend closes them itself (Node's http server does after 5 s): reusing a
 * connection at the moment the backend closes it would fail a request.
 */
export const UPSTREAM_IDLE_TIMEOUT = 4000;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export class BuiltinGate implements GateEngine {
  readonly slots = new Map<string, BackendSlot>();
  readonly balancer: Balancer;
  /** Same picks over every backend the cluster offers, for when the gate's own judgement leaves none. */
  private readonly fallback: Balancer;
  readonly connections = new Set<{ destroy(): void; expire?(now: number): void }>();
  /** performance.now() as of the last sweep (100 ms resolution): for timeouts, which need no better. */
  clock = performance.now();
  private sweeper: NodeJS.Timeout | undefined;
  readonly options: Required<Pick<BuiltinGateOptions, 'backendConnections' | 'maxQueue' | 'clientIdleTimeout' | 'errorLimit' | 'cookieName'>> & BuiltinGateOptions;
  readonly markHeader: string | undefined;
  requests = 0;
  failed = 0;
  retries = 0;
  private server: Server | undefined;
  private boundPort = 0;
  private readonly active = (node: string): number => this.slots.get(node)?.active ?? 0;

  constructor(options: BuiltinGateOptions) {
    this.options = {
      backendConnections: 1024,
      maxQueue: 1024,
      clientIdleTimeout: 60_000,
      errorLimit: 3,
      cookieName: defaultCookieName(options.module),
      ...options,
    };
    this.markHeader = options.idempotentHeader?.toLowerCase();
    this.balancer = new Balancer(options.balance);
    this.fallback = new Balancer(options.balance);
  }

  get port(): number {
    return this.boundPort;
  }

  /** Listens on `bind:port` (in a gate worker, on the socket the agent bound for all its workers). */
  async start(): Promise<void> {
    const o = this.options;
    const onConnection = (socket: Socket): void => this.accept(socket);
    if (o.tls) {
      const tls = { cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) };
      this.server = createTlsServer({ ...tls, minVersion: 'TLSv1.2' }, onConnection);
    } else {
      this.server = createTcpServer({ noDelay: true }, onConnection);
    }
    this.server.maxConnections = o.maxConnections;
    this.server.on('tlsClientError', () => undefined);
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const ready = (): void => {
        server.removeListener('error', reject);
        resolve();
      };
      server.listen({ host: o.bind, port: o.port, backlog: 1024 }, ready);
    });
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : o.port;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY);
    this.sweeper.unref();
  }

  /** Timeouts by timestamp: idle pooled connections, response timeouts, idle clients. */
  private sweep(): void {
    const now = (this.clock = performance.now());
    for (const slot of this.slots.values()) {
      slot.pool.sweep(now);
      for (const f of slot.inFlight) f.expire?.(now);
    }
    for (const c of this.connections) c.expire?.(now);
  }

  update(backends: readonly BackendState[]): void {
    const seen = new Set<string>();
    // In-flight work on backends that went out is aborted only once the balancer knows the new set, so that its retries find the nodes that came in.
    const aborts: Array<{ slot: BackendSlot; why: string }> = [];
    for (const b of backends) {
      seen.add(b.node);
      let slot = this.slots.get(b.node);
      if (slot && (slot.state.host !== b.host || slot.state.port !== b.port)) {
        // A moved backend is a new one: the old connections go to the old address.
        this.slots.delete(slot.node);
        aborts.push({ slot, why: `${b.node} moved to ${b.host}:${b.port}` });
        slot = undefined;
      }
      if (!slot) {
        this.slots.set(b.node, this.createSlot(b));
        continue;
      }
      const wasOpen = slot.keepsOpen;
      const wasDown = slot.state.health === 'down';
      slot.state = b;
      if (wasDown && b.health === 'up') slot.observed.reset(`${b.node} is up again by the cluster's checkers`);
      if (wasOpen && !slot.keepsOpen) {
        slot.pool.drainIdle();
        aborts.push({ slot, why: b.admin === 'maint' ? `${b.node} went into maintenance` : `${b.node} is down` });
      } else if (!slot.takesNew) {
        // Draining: open requests finish; idle connections will not be used again.
        slot.pool.drainIdle();
      }
    }
    for (const slot of [...this.slots.values()]) {
      if (seen.has(slot.node)) continue;
      this.slots.delete(slot.node);
      aborts.push({ slot, why: `${slot.node} is no longer a backend of ${this.options.module}` });
    }
    this.rebalance();
    for (const { slot, why } of aborts) {
      slot.abortAll(why);
      if (this.slots.get(slot.node) !== slot) slot.pool.close();
    }
  }

  /**
   * The backend for a new request or connection, or undefined. Trials of a
   * failing or slow backend come first when one is due, then the balancer
   * over the backends that are fine, then over all that the cluster offers.
   */
  pick(ctx: PickContext): BackendSlot | undefined {
    if (ctx.mayTrial) {
      for (const slot of this.slots.values()) {
        if (slot.takesNew && slot.observed.state !== 'ok' && !ctx.tried?.has(slot.node) && slot.observed.admitTrial()) return slot;
      }
    }
    let node = this.balancer.pick(ctx.clientKey, ctx.affinity, ctx.tried, this.active);
    if (node === undefined) node = this.fallback.pick(ctx.clientKey, ctx.affinity, ctx.tried, this.active);
    return node === undefined ? undefined : this.slots.get(node);
  }

  isIdempotent(method: string, marked: boolean): boolean {
    return marked || IDEMPOTENT.has(method);
  }

  report(): GateReport {
    return {
      module: this.options.module,
      engine: 'builtin',
      port: this.boundPort,
      requests: this.requests,
      failed: this.failed,
      retries: this.retries,
      activeConnections: this.connections.size,
      backends: [...this.slots.values()].map((s) => s.report()),
    };
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (this.sweeper) clearInterval(this.sweeper);
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const c of [...this.connections]) c.destroy();
    for (const slot of this.slots.values()) {
      slot.abortAll('the gate is closing');
      slot.pool.close();
    }
    await closed;
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    if (this.options.mode === 'http') new ClientConnection(this, socket, this.options.tls ? 'https' : 'http');
    else new TcpTunnel(this, socket);
  }

  private createSlot(b: BackendState): BackendSlot {
    const o = this.options;
    const slot = new BackendSlot(
      b,
      { maxConnections: o.backendConnections, maxQueue: o.maxQueue, connectTimeout: o.connectTimeout, idleTimeout: UPSTREAM_IDLE_TIMEOUT },
      { errorLimit: o.errorLimit, trialEvery: 500, samples: 256, window: 10_000, minSamples: 20, recoverAfter: 3, ...(o.slowP99 !== undefined ? { slowP99: o.slowP99 } : {}) },
      () => performance.now(),
    );
    slot.observed.onChange = (from, to, why) => {
      this.rebalance();
      this.options.onObserved?.(b.node, from, to, why);
      this.options.logger?.[to === 'ok' ? 'info' : 'warn']({ module: o.module, backend: b.node, from, to }, `gate: ${o.module} on ${b.node} ${to === 'ok' ? 'recovered' : `is ${to}`}: ${why}`);
    };
    return slot;
  }

  private rebalance(): void {
    const offered = [...this.slots.values()].filter((s) => s.takesNew);
    this.balancer.setBackends(offered.filter((s) => s.observed.state === 'ok').map((s) => ({ node: s.node, weight: s.state.weight })));
    this.fallback.setBackends(offered.map((s) => ({ node: s.node, weight: s.state.weight })));
  }
}
