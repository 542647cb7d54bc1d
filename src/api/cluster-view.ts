/**
 * The cluster as its members report it: every member is asked for its own
 * status (`GET /v1/status`) and the answers are merged — each node is the
 * authority on its own role, a member that does not answer is shown as such.
 * `skyha status` and an agent's `GET /v1/cluster` both build it.
 */
import type { MemberStatusReport, ModuleReport } from '../agent/status.js';
import type { ClusterConfig } from '../config/model.js';
import { answerError, type ApiClient } from './client.js';

export interface ClusterStatus {
  cluster: string;
  profile: string;
  members: Array<{ name: string; role: 'node' | 'witness'; labels: Readonly<Record<string, string>>; answered: boolean; error?: string; seenAliveBy: string[]; seenDeadBy: string[] }>;
  modules: Array<{ name: string; kind: 'farm' | 'mirror'; epoch: number; leaseHolder?: string; leaseLeftMs?: number; nodes: Array<{ node: string; answered: boolean } & Partial<ModuleReport>> }>;
  reports: Record<string, MemberStatusReport>;
}

export async function gatherStatus(config: ClusterConfig, timeout: number, client: ApiClient, own?: MemberStatusReport): Promise<ClusterStatus> {
  const all = [...config.nodes, ...config.witnesses];
  const answers = await Promise.all(
    all.map(async (m): Promise<{ name: string; report?: MemberStatusReport; error?: string }> => {
      if (own && own.member === m.name) return { name: m.name, report: own };
      try {
        const answer = await client.request<MemberStatusReport>(m, 'GET', '/v1/status', undefined, timeout);
        if (answer.status !== 200) return { name: m.name, error: answerError(m.name, answer) };
        return { name: m.name, report: answer.body };
      } catch (err) {
        return { name: m.name, error: (err as Error).message };
      }
    }),
  );
  return mergeStatus(config, answers);
}

/** Merges members' own reports (or why each did not answer) into the cluster's view. */
export function mergeStatus(config: ClusterConfig, answers: ReadonlyArray<{ name: string; report?: MemberStatusReport; error?: string }>): ClusterStatus {
  const all = [...config.nodes, ...config.witnesses];
  const reports: Record<string, MemberStatusReport> = {};
  for (const a of answers) if (a.report) reports[a.name] = a.report;

  const members: ClusterStatus['members'] = all.map((m) => {
    const a = answers.find((x) => x.name === m.name)!;
    const views = Object.values(reports).flatMap((r) => r.members.filter((x) => x.name === m.name).map((x) => ({ by: r.member, liveness: x.liveness })));
    return {
      name: m.name,
      role: m.role,
      labels: m.labels,
      answered: Boolean(a.report),
      ...(a.error ? { error: a.error } : {}),
      seenAliveBy: views.filter((v) => v.liveness === 'alive' || v.liveness === 'suspect').map((v) => v.by),
      seenDeadBy: views.filter((v) => v.liveness === 'dead').map((v) => v.by),
    };
  });

  const modules: ClusterStatus['modules'] = config.modules.map((mod) => {
    const nodes = mod.nodes.map((node): { node: string; answered: boolean } & Partial<ModuleReport> => {
      const rep = reports[node]?.modules.find((x) => x.name === mod.name);
      return rep ? { node, answered: true, ...rep } : { node, answered: false };
    });
    const epoch = Math.max(0, ...nodes.map((n) => n.epoch ?? 0), ...Object.values(reports).flatMap((r) => r.votes.filter((v) => v.module === mod.name).map((v) => v.epoch)));
    const holder = nodes.find((n) => n.leaseLeftMs !== undefined);
    return { name: mod.name, kind: mod.kind, epoch, ...(holder ? { leaseHolder: holder.node, leaseLeftMs: holder.leaseLeftMs! } : {}), nodes };
  });
  return { cluster: config.name, profile: config.profile, members, modules, reports };
}
