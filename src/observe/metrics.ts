/**
 * Prometheus metrics of one member (`GET /metrics`), with prom-client. Most
 * are read from the member's status report when Prometheus scrapes, so they
 * cannot drift from what `skyha status` shows; counters of things that happen
 * (promotions, restarts, events, barriers) are counted as they happen. The
 * names and labels are listed in the README; each is documented in its help.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MemberStatusReport } from '../agent/status.js';
import type { SkyhaEvent } from './events.js';

export const MIRROR_ROLES = ['secondary', 'acquiring', 'promoting', 'primary', 'handing-over', 'out-of-service'] as const;
export const FARM_ROLES = ['active', 'given-up', 'starting', 'stopping', 'stopped'] as const;

export class MemberMetrics {
  readonly registry = new Registry();
  private readonly events: Counter<'reason'>;
  private readonly promotions: Counter<'module' | 'forced'>;
  private readonly restarts: Counter<'module'>;
  private readonly barrier: Histogram<'module' | 'outcome'>;
  /** The status of this scrape: read once, shared by every gauge's collect. */
  private snapshot: MemberStatusReport | undefined;

  constructor(private readonly status: () => MemberStatusReport) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    const self = this;
    const report = (): MemberStatusReport => (self.snapshot ??= self.status());

    this.events = new Counter({ name: 'skyha_events_total', help: 'Events this member emitted, by reason code.', labelNames: ['reason'], registers: [r] });
    this.promotions = new Counter({ name: 'skyha_promotions_total', help: 'Times this node started a mirror module as primary (failover, switchover or failback); forced="true" for operator-forced failovers.', labelNames: ['module', 'forced'], registers: [r] });
    this.restarts = new Counter({ name: 'skyha_restarts_total', help: 'Local restarts of a module\'s application by its restart policy on this node.', labelNames: ['module'], registers: [r] });
    this.barrier = new Histogram({ name: 'skyha_barrier_duration_seconds', help: 'Time from a barrier call on this node to its answer, by outcome (ok, failed).', labelNames: ['module', 'outcome'], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [r] });

    new Gauge({
      name: 'skyha_member_info',
      help: 'This member: its name, role (node or witness), cluster and version; always 1.',
      labelNames: ['member', 'role', 'cluster', 'version'],
      registers: [r],
      collect() {
        const s = report();
        this.reset();
        this.set({ member: s.member, role: s.role, cluster: s.cluster, version: s.version }, 1);
      },
    });
    new Gauge({
      name: 'skyha_member_alive',
      help: 'Whether this member hears each peer: 1 alive, 0.5 suspect, 0 dead or never heard (this member\'s view).',
      labelNames: ['peer'],
      registers: [r],
      collect() {
        const s = report();
        this.reset();
        for (const m of s.members) this.set({ peer: m.name }, m.liveness === 'alive' ? 1 : m.liveness === 'suspect' ? 0.5 : 0);
      },
    });
    new Gauge({
      name: 'skyha_module_role',
      help: 'The role of each module on this node: 1 for the current role, 0 for the others.',
      labelNames: ['module', 'kind', 'role'],
      registers: [r],
      collect() {
        const s = report();
        this.reset();
        for (const m of s.modules) for (const role of m.kind === 'mirror' ? MIRROR_ROLES : FARM_ROLES) this.set({ module: m.name, kind: m.kind, role }, m.role === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'skyha_module_epoch',
      help: 'The epoch of each mirror module as this node knows it (grows with every change of primary).',
      labelNames: ['module'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) if (m.kind === 'mirror') this.set({ module: m.name }, m.epoch);
      },
    });
    new Gauge({
      name: 'skyha_lease_remaining_seconds',
      help: 'Time left on the lease of a mirror module that this node holds (absent when it holds none).',
      labelNames: ['module'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) if (m.leaseLeftMs !== undefined) this.set({ module: m.name }, m.leaseLeftMs / 1000);
      },
    });
    new Gauge({
      name: 'skyha_module_healthy',
      help: 'What /health/MODULE answers on this node: 1 for 200, 0 otherwise.',
      labelNames: ['module'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) this.set({ module: m.name }, m.health.code === 200 ? 1 : 0);
      },
    });
    new Gauge({
      name: 'skyha_checker_healthy',
      help: 'Each checker of each module on this node: 1 healthy, 0 failed, -1 not yet known.',
      labelNames: ['module', 'checker', 'kind'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) for (const c of m.checkers) this.set({ module: m.name, checker: c.name, kind: c.kind }, c.status === 'healthy' ? 1 : c.status === 'failed' ? 0 : -1);
      },
    });
    new Gauge({
      name: 'skyha_replication_in_sync',
      help: 'On a mirror primary: whether each secondary is in sync (1) or not (0).',
      labelNames: ['module', 'secondary'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) for (const sec of m.secondaries ?? []) this.set({ module: m.name, secondary: sec.node }, sec.inSync ? 1 : 0);
      },
    });
    new Gauge({
      name: 'skyha_replication_lag_changes',
      help: 'On a mirror primary: changes each secondary has not acknowledged.',
      labelNames: ['module', 'secondary'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) for (const sec of m.secondaries ?? []) this.set({ module: m.name, secondary: sec.node }, sec.lagChanges);
      },
    });
    new Gauge({
      name: 'skyha_replication_lag_bytes',
      help: 'On a mirror primary: bytes of change data each secondary has not acknowledged (-1: beyond the log window, a resync will send them).',
      labelNames: ['module', 'secondary'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) for (const sec of m.secondaries ?? []) this.set({ module: m.name, secondary: sec.node }, sec.lagBytes);
      },
    });
    new Gauge({
      name: 'skyha_replication_lag_seconds',
      help: 'On a mirror primary: age of the oldest change each secondary has not acknowledged.',
      labelNames: ['module', 'secondary'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) for (const sec of m.secondaries ?? []) this.set({ module: m.name, secondary: sec.node }, sec.lagMs / 1000);
      },
    });
    new Gauge({
      name: 'skyha_replication_pending_paths',
      help: 'On a mirror primary: paths captured and not yet shipped.',
      labelNames: ['module'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) if (m.replication) this.set({ module: m.name }, m.replication.pending);
      },
    });
    new Gauge({
      name: 'skyha_replication_watched_directories',
      help: 'Directories the change capture watches on this node (the primary), and watcher overflows in overflows.',
      labelNames: ['module'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) if (m.replication) this.set({ module: m.name }, m.replication.watchedDirectories);
      },
    });
    const gateCounter = (name: string, help: string, pick: (b: { requests: number; errors: number; retries: number }) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['module', 'backend'],
        registers: [r],
        collect() {
          // The gate counts since it started; a counter that restarts with it is what Prometheus expects.
          this.reset();
          for (const m of report().modules) for (const b of m.gate?.backends ?? []) this.inc({ module: m.name, backend: b.node }, pick(b));
        },
      });
    };
    gateCounter('skyha_gate_requests_total', 'Requests (or TCP connections) the gate on this node sent to each backend.', (b) => b.requests);
    gateCounter('skyha_gate_errors_total', 'Requests to each backend that failed (connect errors, resets, timeouts, 5xx from the gate).', (b) => b.errors);
    gateCounter('skyha_gate_retries_total', 'Idempotent requests retried on another backend after failing on this one.', (b) => b.retries);
    new Gauge({
      name: 'skyha_gate_backend_up',
      help: 'Whether the gate on this node sends new requests to each backend: 1 yes (up and ready), 0 no.',
      labelNames: ['module', 'backend', 'health', 'admin'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of report().modules) for (const b of m.gate?.backends ?? []) this.set({ module: m.name, backend: b.node, health: b.health, admin: b.admin }, b.health === 'up' && b.admin === 'ready' ? 1 : 0);
      },
    });
  }

  /** Counts what the member's events tell. */
  onEvent(e: SkyhaEvent): void {
    this.events.inc({ reason: e.reason });
    if (!e.module) return;
    if (e.reason === 'PROMOTED' || e.reason === 'PROMOTED_FORCED') this.promotions.inc({ module: e.module, forced: String(e.reason === 'PROMOTED_FORCED') });
    else if (e.reason === 'RESTART_APP') this.restarts.inc({ module: e.module });
  }

  observeBarrier(module: string, ok: boolean, seconds: number): void {
    this.barrier.observe({ module, outcome: ok ? 'ok' : 'failed' }, seconds);
  }

  async text(): Promise<{ contentType: string; text: string }> {
    this.snapshot = undefined;
    try {
      return { contentType: this.registry.contentType, text: await this.registry.metrics() };
    } finally {
      this.snapshot = undefined;
    }
  }
}
