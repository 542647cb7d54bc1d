/**
 * The agent's side of the built-in gate: forks `workers` gate worker
 * processes (gate-worker-main.ts), pushes every change of the backends to all
 * of them, and merges their reports. A worker that dies is started again
 * (with a short back-off) with the current backends: the gate must stay up.
 *
 * Workers are node:cluster workers with SCHED_NONE scheduling: the agent
 * binds the public port once (a bind error reaches the worker's listen call)
 * and every worker accepts on that same socket, the kernel spreading
 * connections; the agent itself never accepts. A worker started again later
 * gets the same socket, which stays bound while any worker holds it.
 */
import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../observe/log.js';
import type { BackendReport, BackendState, GateEngine, GateReport } from './backend.js';
import type { BuiltinGateOptions } from './builtin-gate.js';
import type { Observed } from './observed-health.js';
import type { WorkerReport, WorkerRequest } from './gate-worker-main.js';

const WORKER_MAIN = fileURLToPath(new URL('./gate-worker-main.js', import.meta.url));
const RESTART_BACKOFF = [100, 250, 500, 1000, 2000];

export interface GateProcessOptions extends Omit<BuiltinGateOptions, 'logger' | 'onObserved'> {
  /** Worker processes sharing the port; one per core gives the most throughput. */
  workers: number;
}

interface Worker {
  child: ClusterWorker;
  report: GateReport | undefined;
  ready: boolean;
}

let clusterSetUp = false;
function setUpCluster(): void {
  if (clusterSetUp) return;
  clusterSetUp = true;
  // Before the first fork: every worker accepts on the shared socket itself.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: WORKER_MAIN, args: [], execArgv: [], serialization: 'json' });
}

export class GateProcess implements GateEngine {
  private readonly workers: (Worker | undefined)[] = [];
  private backends: readonly BackendState[] = [];
  private closing = false;
  private failures = 0;
  private boundPort = 0;

  constructor(
    readonly options: GateProcessOptions,
    private readonly logger: Logger,
    private readonly onObserved?: (node: string, from: Observed, to: Observed, why: string) => void,
  ) {}

  get port(): number {
    return this.boundPort;
  }

  /** The worker PIDs (tests and status). */
  get pids(): number[] {
    return this.workers.flatMap((w) => (w?.child.process.pid !== undefined ? [w.child.process.pid] : []));
  }

  async start(): Promise<void> {
    setUpCluster();
    // The first worker binds (port 0 gets a port); the others share what it bound.
    await this.spawn(0, this.options.port);
    const rest = Array.from({ length: Math.max(1, this.options.workers) - 1 }, (_, i) => this.spawn(i + 1, this.boundPort));
    await Promise.all(rest);
  }

  update(backends: readonly BackendState[]): void {
    this.backends = backends;
    for (const w of this.workers) if (w?.ready) send(w.child, { op: 'update', backends });
  }
  report(): GateReport {
    const reports = this.workers.flatMap((w) => (w?.report ? [w.report] : []));
    const byNode = new Map<string, BackendReport>();
    for (const r of reports) {
      for (const b of r.backends) {
        const seen = byNode.get(b.node);
        byNode.set(b.node, seen ? mergeBackend(seen, b) : b);
      }
    }
    for (const b of this.backends) if (!byNode.has(b.node)) byNode.set(b.node, { node: b.node, health: b.health, admin: b.admin, observed: 'ok', activeRequests: 0, requests: 0, errors: 0, retries: 0 });
    return {
      module: this.options.module,
      engine: 'builtin',
      port: this.boundPort,
      requests: sum(reports, (r) => r.requests),
      failed: sum(reports, (r) => r.failed),
      retries: sum(reports, (r) => r.retries),
      activeConnections: sum(reports, (r) => r.activeConnections),
      backends: [...byNode.values()].sort((a, b) => (a.node < b.node ? -1 : 1)),
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.workers.map(async (w) => {
        const proc = w?.child.process;
        if (!w || !proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        send(w.child, { op: 'close' });
        const timer = setTimeout(() => proc.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private spawn(index: number, port: number): Promise<void> {
    const child = cluster.fork();
    const worker: Worker = { child, report: undefined, ready: false };
    this.workers[index] = worker;
    return new Promise<void>((resolve, reject) => {
      child.on('message', (msg: WorkerReport) => {
        switch (msg.ev) {
          case 'hello': {
            const { workers: _workers, ...options } = this.options;
            send(child, { op: 'start', options: { ...options, port }, backends: this.backends });
            return;
          }
          case 'ready':
            worker.ready = true;
            this.failures = 0;
            this.boundPort = msg.port;
            // Changes that came while it started.
            send(child, { op: 'update', backends: this.backends });
            resolve();
            return;
          case 'report':
            worker.report = msg.report;
            return;
          case 'observed':
            this.onObserved?.(msg.node, msg.from, msg.to, msg.why);
            return;
          case 'error':
            this.logger.error({ module: this.options.module, worker: child.process.pid }, `gate worker of ${this.options.module}: ${msg.message}`);
            reject(new Error(msg.message));
            return;
        }
      });
      child.once('exit', (code, signal) => {
        if (this.workers[index] === worker) this.workers[index] = undefined;
        if (this.closing) return;
        if (!worker.ready) {
          reject(new Error(`gate worker exited (${signal ?? code}) before it was ready`));
          return;
        }
        this.logger.error({ module: this.options.module, worker: child.process.pid, code, signal }, `gate worker ${child.process.pid} of ${this.options.module} exited (${signal ?? code}); starting another`);
        const delay = RESTART_BACKOFF[Math.min(this.failures++, RESTART_BACKOFF.length - 1)]!;
        setTimeout(() => {
          if (!this.closing) this.spawn(index, this.boundPort).catch((err: Error) => this.logger.error({ module: this.options.module }, `gate worker of ${this.options.module} did not start again: ${err.message}`));
        }, delay).unref();
      });
    });
  }
}

function send(child: ClusterWorker, msg: WorkerRequest): void {
  if (child.isConnected()) child.send(msg);
}

function sum<T>(items: readonly T[], f: (t: T) => number): number {
  return items.reduce((n, t) => n + f(t), 0);
}

function mergeBackend(a: BackendReport, b: BackendReport): BackendReport {
  // The worst judgement of any worker, the highest p99: an operator wants to know if any part of the gate sees trouble.
  const rank = { ok: 0, slow: 1, failing: 2 } as const;
  const p99 = Math.max(a.p99 ?? -1, b.p99 ?? -1);
  const lastRequestAt = Math.max(a.lastRequestAt ?? 0, b.lastRequestAt ?? 0);
  return {
    node: a.node,
    health: a.health,
    admin: a.admin,
    observed: rank[b.observed] > rank[a.observed] ? b.observed : a.observed,
    activeRequests: a.activeRequests + b.activeRequests,
    requests: a.requests + b.requests,
    errors: a.errors + b.errors,
    retries: a.retries + b.retries,
    ...(lastRequestAt > 0 ? { lastRequestAt } : {}),
    ...(p99 >= 0 ? { p99 } : {}),
  };
}
