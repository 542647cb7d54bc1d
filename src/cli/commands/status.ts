/**
 * `skyha status --config FILE [--json]`: asks every member for its report
 * (`GET /v1/status` on its API port) and shows the cluster: members with
 * their labels and liveness (as the others see them), and each module's role
 * per node with epoch, lease, application and checkers. Each node is the
 * authority on its own role; a node that does not answer is shown as such.
 */
import type { Command } from 'commander';
import { SkyhaError } from '../../core/errors.js';
import type { ClusterStatus } from '../../api/cluster-view.js';
import { replicationNotes } from '../../api/replication-notes.js';

interface Options {
  config: string;
  json?: boolean;
  timeout: string;
  token?: string;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show the cluster: members and liveness, each module\'s role per node, epoch, lease, checkers')
    .requiredOption('--config <file>', 'the cluster config file')
    .option('--json', 'print the merged status as JSON')
    .option('--timeout <duration>', 'how long to wait for each member', '2s')
    .option('--token <token>', 'API bearer token (default: $SKYHA_TOKEN, else the certificate of a member whose key is readable here)')
    .action(async (opts: Options) => {
      const { requireConfig } = await import('../../config/load.js');
      const { parseDuration } = await import('../../core/duration.js');
      const timeout = parseDuration(opts.timeout);
      if (timeout === undefined) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--timeout: expected a duration such as 2s or 500ms, found ${JSON.stringify(opts.timeout)}`);
      const { config } = requireConfig(opts.config, { checkTls: false });
      const { gatherStatus } = await import('../../api/cluster-view.js');
      const { openApi } = await import('../api-access.js');
      const client = openApi(config, opts.token);
      const status = await gatherStatus(config, timeout, client).finally(() => client.close());
      if (!status.members.some((m) => m.answered)) {
        throw new SkyhaError('SKYHA_ERR_STATUS_UNREACHABLE', `no member of ${config.name} answered within ${opts.timeout}`, { details: status.members.map((m) => `${m.name}: ${m.error ?? 'no answer'}`) });
      }
      process.stdout.write(opts.json ? JSON.stringify(status, null, 2) + '\n' : renderStatus(status));
    });
}

export function renderStatus(s: ClusterStatus): string {
  const lines: string[] = [`cluster ${s.cluster} (profile ${s.profile})`, ''];
  lines.push(...table(
    ['MEMBER', 'ROLE', 'LABELS', 'STATE'],
    s.members.map((m) => {
      const others = s.members.filter((o) => o.answered && o.name !== m.name).length;
      const state = m.answered ? `up, seen alive by ${m.seenAliveBy.length}/${others}` : m.seenAliveBy.length > 0 ? `not answering (${m.error}), seen alive by ${m.seenAliveBy.length}/${others}` : `down? (${m.error ?? 'no answer'})${m.seenDeadBy.length ? `, dead for ${m.seenDeadBy.join(', ')}` : ''}`;
      return [m.name, m.role, Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-', state];
    }),
  ));
  lines.push('');
  const rows: string[][] = [];
  for (const mod of s.modules) {
    for (const n of mod.nodes) {
      if (!n.answered) {
        rows.push([mod.name, mod.kind, n.node, '?', '-', 'no answer', '-', '-', '-', '-']);
        continue;
      }
      const lease = n.leaseLeftMs !== undefined ? `holder, ${n.leaseLeftMs} ms left` : '-';
      const checks = (n.checkers ?? []).map((c) => `${c.name}:${c.status}`).join(' ') || '-';
      const restarts = n.restarts ? `${n.restarts.inWindow}/${n.restarts.max}${n.restarts.givenUp ? ' given up' : ''}` : '-';
      rows.push([mod.name, mod.kind, n.node, n.role ?? '?', String(n.epoch ?? 0), `${n.app?.status ?? '?'}${n.app?.pid ? ` (pid ${n.app.pid})` : ''}`, `${n.health?.code ?? '-'}`, checks, restarts, lease]);
    }
  }
  lines.push(...table(['MODULE', 'KIND', 'NODE', 'ROLE', 'EPOCH', 'APP', 'HEALTH', 'CHECKERS', 'RESTARTS', 'LEASE'], rows));
  // Mirror replication per node: where its data is, whether it is protected, resyncs under way (with a bar).
  const repl: string[][] = [];
  for (const mod of s.modules) {
    for (const n of mod.nodes) {
      const r = n.replication;
      if (!r) continue;
      const running = r.resyncsSent.running.map((p) => `resync to ${p.to} ${bar(p.paths ? p.done / p.paths : 0)} ${p.done}/${p.paths || '?'} paths, ${mib(p.bytes)}`).join('; ');
      const last = r.resyncsReceived.last ? `last resync in: ${mib(r.resyncsReceived.last.bytes)}${r.resyncsReceived.last.conflicts ? `, ${r.resyncsReceived.last.conflicts} kept aside` : ''}` : '';
      // What needs the operator first (an apply that failed, what only this node holds), then what is under way.
      const notes = [...replicationNotes(r, n.role), running || last].filter(Boolean);
      repl.push([mod.name, n.node, `${r.position.epoch}:${r.position.seq}`, r.readOnly.readOnly ? 'read-only' : n.role === 'primary' ? 'writable' : `writable (${r.readOnly.reason ?? 'primary'})`, `${r.watchedDirectories}${r.overflows ? ` (${r.overflows} overflows)` : ''}`, notes.join('; ') || '-']);
    }
  }
  if (repl.length > 0) {
    lines.push('');
    lines.push(...table(['MODULE', 'NODE', 'DATA AT', 'DIRECTORIES', 'WATCHED', 'REPLICATION'], repl));
  }
  return lines.join('\n') + '\n';
}

function bar(share: number, width = 20): string {
  const full = Math.round(Math.max(0, Math.min(1, share)) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${Math.floor(share * 100)}%`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}
