/**
 * What a member offers its REST API (api/routes.ts ApiBackend): its status,
 * the cluster's (gathered from the others over the links), the cluster's
 * events, metrics, and operators' actions — carried out here, or passed over
 * the link to the node they concern (a restart to its node, a barrier to the
 * primary), so that any node's API can be asked anything.
 */
import type { ClusterStatus } from '../api/cluster-view.js';
import { mergeStatus } from '../api/cluster-view.js';
import type { ApiBackend } from '../api/routes.js';
import type { ClusterConfig } from '../config/model.js';
import type { ClusterEvents } from '../observe/cluster-events.js';
import type { MemberMetrics } from '../observe/metrics.js';
import type { ControlReply, ControlRequest } from './control-socket.js';
import type { PeerCalls } from './peer-calls.js';
import type { MemberStatusReport } from './status.js';

export interface MemberApiDeps {
  config: ClusterConfig;
  self: string;
  health(module: string): { code: number; healthy: boolean; why: string };
  status(): MemberStatusReport;
  events: ClusterEvents;
  metrics: MemberMetrics;
  calls: PeerCalls;
  /** Carries out a request on this member (the control socket's handler). */
  control(request: ControlRequest): Promise<ControlReply>;
  /** Who this member believes is the primary of a mirror module. */
  primaryOf(module: string): string | undefined;
}

export class MemberApi implements ApiBackend {
  readonly config: ClusterConfig;
  readonly member: string;
  readonly events: ClusterEvents;

  constructor(private readonly deps: MemberApiDeps) {
    this.config = deps.config;
    this.member = deps.self;
    this.events = deps.events;
  }

  health(module: string): { code: number; healthy: boolean; why: string } {
    return this.deps.health(module);
  }

  status(): MemberStatusReport {
    return this.deps.status();
  }

  async clusterStatus(timeoutMs: number): Promise<ClusterStatus> {
    const own = this.deps.status();
    const answers = await Promise.all(
      [...this.config.nodes, ...this.config.witnesses].map(async (m): Promise<{ name: string; report?: MemberStatusReport; error?: string }> => {
        if (m.name === this.member) return { name: m.name, report: own };
        try {
          return { name: m.name, report: await this.deps.calls.call(m.name, { op: 'status' }, timeoutMs) };
        } catch (err) {
          return { name: m.name, error: (err as Error).message };
        }
      }),
    );
    return mergeStatus(this.config, answers);
  }

  async operate(request: ControlRequest): Promise<ControlReply> {
    if (request.op === 'module' && request.node === undefined) return this.everyNode(request);
    const target = this.targetOf(request);
    if (target === undefined || target === this.member) return this.deps.control(request);
    const timeout = request.op === 'barrier' ? request.timeoutMs + 2000 : 5000;
    try {
      return await this.deps.calls.call(target, { op: 'control', request }, timeout);
    } catch (err) {
      return { ok: false, error: `${this.member} could not pass the ${request.op} to ${target}: ${(err as Error).message}` };
    }
  }

  /**
   * A stop or start on every node of the module. Stop: the secondaries first, then the primary, so
   * that none of them takes the role the primary releases. A node that cannot be reached is named.
   */
  private async everyNode(request: Extract<ControlRequest, { op: 'module' }>): Promise<ControlReply> {
    const spec = this.config.modules.find((m) => m.name === request.module);
    if (!spec) return { ok: false, error: `no module named ${request.module}` };
    const primary = this.deps.primaryOf(request.module);
    const waves = request.command === 'stop' && primary && spec.nodes.includes(primary) ? [spec.nodes.filter((n) => n !== primary), [primary]] : [spec.nodes];
    const done: string[] = [];
    const failed: string[] = [];
    for (const wave of waves) {
      const replies = await Promise.all(wave.map(async (node) => ({ node, reply: await this.operate({ ...request, node }) })));
      for (const { node, reply } of replies) {
        if (reply.ok) done.push(node);
        else failed.push(`${node}: ${reply.error}`);
      }
    }
    const verb = request.command === 'stop' ? 'stopped' : 'started';
    if (done.length === 0) return { ok: false, error: `${request.module} ${verb} nowhere (${failed.join('; ')})` };
    return { ok: true, member: this.member, detail: `${request.module} ${verb} on ${done.join(', ')}${failed.length ? `; not reached: ${failed.join('; ')} (it ${request.command === 'stop' ? 'starts again' : 'stays stopped'} there until asked once it is back)` : ''}` };
  }

  metrics(): Promise<{ contentType: string; text: string }> {
    return this.deps.metrics.text();
  }

  /** The member that carries out a request: the node it names, the primary for a barrier; else this one, which passes it on itself. */
  private targetOf(request: ControlRequest): string | undefined {
    switch (request.op) {
      case 'restart':
      case 'module':
        return request.node;
      case 'barrier':
        return this.deps.primaryOf(request.module);
      default:
        return undefined;
    }
  }
}
