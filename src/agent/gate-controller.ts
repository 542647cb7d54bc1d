/**
 * The gates of one node: for every farm module this node runs with a `gate`
 * section, the farm pool (which nodes take requests, src/logic/farm-pool.ts)
 * and the engine that routes by it (the built-in gate in worker processes,
 * or HAProxy).
 *
 * The pool's inputs arrive pushed, never polled:
 * - liveness of the other nodes, from the member machine's membership;
 * - each node's own farm report (health, given up, admin state), sent by
 *   that node over the links when it changes, when a peer comes back, and
 *   once a second as a safety net;
 * - this node's own state, from its supervisor, at once.
 * Every change of a node's position is an event with the pool's reason, and
 * goes to the engine as the new set of backends.
 */
import type { ClusterConfig, FarmModuleConfig, MemberConfig } from '../config/model.js';
import type { BackendState, GateEngine, GateReport } from '../gate/backend.js';
import type { CheckerStatus } from '../logic/checker.js';
import { newerReport, type FarmMessage } from '../logic/farm-messages.js';
import { initFarmPool, stepFarmPool, type AdminState, type FarmPoolState } from '../logic/farm-pool.js';
import type { MemberStatus } from '../logic/membership.js';
import type { Reason } from '../logic/step.js';
import type { Logger } from '../observe/log.js';
import type { FarmModule } from './farm-module.js';

const REPORT_EVERY = 1000;

export interface GateControllerDeps {
  config: ClusterConfig;
  self: MemberConfig;
  log: Logger;
  now: () => number;
  send: (to: string, message: FarmMessage) => void;
  emit: (module: string, reason: Reason | { code: string; text: string; level?: 'info' | 'warn' }, data?: Record<string, string | number>) => void;
  farm: (module: string) => FarmModule | undefined;
  adminOf: (module: string) => AdminState;
  persistAdmin: (module: string, admin: AdminState) => void;
  engine: (module: FarmModuleConfig, onObserved: (node: string, from: string, to: string, why: string) => void) => GateEngine;
}

interface GateSlot {
  readonly module: FarmModuleConfig;
  pool: FarmPoolState;
  readonly engine: GateEngine;
  /** The last report applied per node. */
  readonly seen: Map<string, { run: number; seq: number }>;
  /** What this node last reported. */
  own: { health: CheckerStatus; givenUp: boolean; admin: AdminState } | undefined;
}

export class GateController {
  readonly gates = new Map<string, GateSlot>();
  private readonly run: number;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: GateControllerDeps) {
    this.run = Date.now();
    const self = deps.self.name;
    for (const m of deps.config.modules) {
      if (m.kind !== 'farm' || !m.gate || !m.nodes.includes(self)) continue;
      const pool = initFarmPool({ module: m.name, nodes: m.nodes }, deps.now());
      const engine = deps.engine(m, (node, from, to, why) =>
        deps.emit(m.name, { code: to === 'ok' ? 'GATE_BACKEND_OK' : to === 'slow' ? 'GATE_BACKEND_SLOW' : 'GATE_BACKEND_FAILING', text: `gate of ${m.name} on ${self}: ${node} ${to === 'ok' ? 'is fine again' : `is ${to}`} (${why})`, level: to === 'ok' ? 'info' : 'warn' }, { node, from, to }),
      );
      this.gates.set(m.name, { module: m, pool, engine, seen: new Map(), own: undefined });
    }
  }

  async start(): Promise<void> {
    for (const g of this.gates.values()) {
      // This node is alive to itself; the others are unknown until membership says.
      this.feed(g, { type: 'member', node: this.deps.self.name, status: 'alive' });
      this.localChanged(g.module.name);
      g.engine.update(this.backends(g));
      await g.engine.start();
    }
    this.timer = setInterval(() => this.broadcastAll(), REPORT_EVERY);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.gates.values()].map((g) => g.engine.close().catch(() => undefined)));
  }

  /** Membership changed its mind about a member. */
  memberChanged(member: string, status: MemberStatus): void {
    for (const g of this.gates.values()) {
      if (!g.module.nodes.includes(member)) continue;
      if (status === 'dead') {
        // What a dead node last reported is void: when it comes back, it is in only after it says so again
        // (its next report, whatever its number, is newer than what we know now).
        g.seen.delete(member);
        this.feed(g, { type: 'inputs', nodes: { [member]: { member: status, health: 'unknown' } } });
      } else {
        this.feed(g, { type: 'member', node: member, status });
      }
      // A peer that comes (back) needs our state now, not at the next round.
      if (status === 'alive') this.sendReport(g, member);
    }
  }

  /** This node's own state of a farm module may have changed (app started/stopped, a checker, the restart policy, the admin state). */
  localChanged(module: string): void {
    const g = this.gates.get(module);
    if (!g) return;
    const farm = this.deps.farm(module);
    const health: CheckerStatus = !farm ? 'unknown' : farm.inService ? 'healthy' : farm.app.status === 'running' && farm.app.health === 'unknown' && !farm.givenUp ? 'unknown' : 'failed';
    const own = { health, givenUp: farm?.givenUp ?? false, admin: this.deps.adminOf(module) };
    if (g.own && g.own.health === own.health && g.own.givenUp === own.givenUp && g.own.admin === own.admin) return;
    g.own = own;
    this.seq++;
    this.feed(g, { type: 'inputs', nodes: { [this.deps.self.name]: own } });
    for (const n of g.module.nodes) if (n !== this.deps.self.name) this.sendReport(g, n);
  }

  onMessage(from: string, message: FarmMessage): void {
    const g = this.gates.get(message.module);
    if (!g || !g.module.nodes.includes(from)) return;
    switch (message.type) {
      case 'farm-report': {
        const last = g.seen.get(from);
        if (!newerReport(last, message)) return;
        g.seen.set(from, { run: message.run, seq: message.seq });
        this.feed(g, { type: 'inputs', nodes: { [from]: { health: message.health, givenUp: message.givenUp, admin: message.admin } } });
        return;
      }
      case 'farm-admin':
        this.setAdmin(message.module, this.deps.self.name, message.admin, message.by);
        return;
    }
  }

  /**
   * An operator sets the admin state of `module` on `node`: here if it is
   * this node, else passed to that node, which owns it (and keeps it across
   * restarts). Throws on an unknown module or node.
   */
  setAdmin(module: string, node: string, admin: AdminState, by: string): void {
    const g = this.gates.get(module);
    const m = this.deps.config.modules.find((x) => x.name === module);
    if (!m || m.kind !== 'farm') throw new Error(`no farm module named ${module}`);
    if (!m.nodes.includes(node)) throw new Error(`${node} does not run ${module}`);
    if (node !== this.deps.self.name) {
      this.deps.send(node, { type: 'farm-admin', module, admin, by });
      return;
    }
    const before = this.deps.adminOf(module);
    if (before === admin) return;
    this.deps.persistAdmin(module, admin);
    this.deps.emit(module, { code: 'ADMIN_STATE_SET', text: `${by} set ${module} on ${node} to ${admin} (was ${before})` }, { node, admin, by });
    if (g) this.localChanged(module);
  }

  reports(): GateReport[] {
    return [...this.gates.values()].map((g) => g.engine.report());
  }

  /** Where each node of `module` stands in this node's pool. */
  pool(module: string): FarmPoolState | undefined {
    return this.gates.get(module)?.pool;
  }

  private feed(g: GateSlot, event: Parameters<typeof stepFarmPool>[1]): void {
    const step = stepFarmPool(g.pool, event, this.deps.now());
    g.pool = step.state;
    if (step.actions.length === 0) return;
    for (const a of step.actions) this.deps.emit(g.module.name, a.reason, { node: a.node, from: a.from, to: a.to });
    g.engine.update(this.backends(g));
  }

  private backends(g: GateSlot): BackendState[] {
    const members = new Map(this.deps.config.nodes.map((n) => [n.name, n]));
    const weights = g.module.gate?.weights ?? {};
    return Object.entries(g.pool.nodes).map(([node, p]) => {
      const health = p.position === 'out' && !(p.inputs.admin === 'maint' && onlyAdminBlocks(p.inputs)) ? 'down' : 'up';
      return { node, host: members.get(node)!.address, port: g.module.port, weight: weights[node] ?? 1, health, admin: p.inputs.admin };
    });
  }

  private sendReport(g: GateSlot, to: string): void {
    if (!g.own) return;
    this.deps.send(to, { type: 'farm-report', module: g.module.name, run: this.run, seq: this.seq, ...g.own });
  }

  private broadcastAll(): void {
    for (const g of this.gates.values()) for (const n of g.module.nodes) if (n !== this.deps.self.name) this.sendReport(g, n);
  }
}

/** A node in maintenance that would otherwise be fit: its health is up, its admin state keeps it out. */
function onlyAdminBlocks(inputs: { member: MemberStatus; health: CheckerStatus; givenUp: boolean }): boolean {
  return (inputs.member === 'alive' || inputs.member === 'suspect') && inputs.health === 'healthy' && !inputs.givenUp;
}
