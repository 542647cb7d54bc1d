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
    const target = this.targetOf(request);
    if (target === undefined || target === this.member) return this.deps.control(request);
    const timeout = request.op === 'barrier' ? request.timeoutMs + 2000 : 5000;
    try {
      return await this.deps.calls.call(target, { op: 'control', request }, timeout);
    } catch (err) {
      return { ok: false, error: `${this.member} could not pass the ${request.op} to ${target}: ${(err as Error).message}` };
    }
  }

  metrics(): Promise<{ contentType: string; text: string }> {
    return this.deps.metrics.text();
  }

  /** The member that carries out a request: the node it names, the primary for a barrier; else this one, which passes it on itself. */
  private targetOf(request: ControlRequest): string | undefined {
    switch (request.op) {
      case 'restart':
        return request.node;
      case 'barrier':
        return this.deps.primaryOf(request.module);
      default:
        return undefined;
    }
  }
}
